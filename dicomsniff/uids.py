"""UID names from pydicom's data dictionary, without importing pydicom.

Importing the pydicom package costs ~0.2 s, which is more than analysing a small capture. Its UID
dictionary is a plain module; we load that one file by path, once, when a name is first asked.
"""

from __future__ import annotations

import importlib.util
import os

_UIDS: dict[str, tuple] | None = None


def _load() -> dict[str, tuple]:
    global _UIDS
    if _UIDS is None:
        _UIDS = {}
        spec = importlib.util.find_spec("pydicom")
        if spec is not None and spec.origin:
            path = os.path.join(os.path.dirname(spec.origin), "_uid_dict.py")
            mspec = importlib.util.spec_from_file_location("_dicomsniff_uid_dict", path)
            if mspec is not None and mspec.loader is not None:
                mod = importlib.util.module_from_spec(mspec)
                try:
                    mspec.loader.exec_module(mod)
                    _UIDS = dict(mod.UID_dictionary)
                except (OSError, SyntaxError, AttributeError):
                    _UIDS = {}
    return _UIDS


def uid_name(uid: str | None) -> str | None:
    """The standard's name for a UID ('CT Image Storage'), or None if unknown."""
    if not uid:
        return None
    entry = _load().get(uid)
    return entry[0] if entry else None


def uid_label(uid: str | None) -> str:
    """'CT Image Storage (1.2.840...)' or the bare UID when it has no registered name."""
    if not uid:
        return "-"
    name = uid_name(uid)
    return f"{name} ({uid})" if name else uid


def uid_type(uid: str | None) -> str | None:
    """'SOP Class', 'Transfer Syntax', ... for a registered UID."""
    entry = _load().get(uid or "")
    return entry[1] if entry else None


# Transfer syntaxes that lose information (PS3.5 section 8 / A.4): the archive gets lossy images.
LOSSY_TRANSFER_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.100",
    "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.103",
    "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105", "1.2.840.10008.1.2.4.106",
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",
})
