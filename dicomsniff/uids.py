"""UID names from pydicom's data dictionary, without importing pydicom.

Importing the pydicom package costs ~0.2 s, which is more than analysing a small capture. Its UID
dictionary is a plain module; we load that one file by path, once, when a name is first asked.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

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


# -- well-known UIDs (one place: import them from here) ------------------------------------

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
UNCOMPRESSED = frozenset({IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN,
                          DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN})

MPPS = "1.2.840.10008.3.1.2.3.3"  # Modality Performed Procedure Step SOP Class
MPPS_RETRIEVE = "1.2.840.10008.3.1.2.3.4"
STORAGE_COMMITMENT_PUSH = "1.2.840.10008.1.20.1"  # Storage Commitment Push Model SOP Class


# -- transfer syntax properties --------------------------------------------------------------
# pydicom's definitions (pydicom.uid.UID.is_implicit_VR, is_little_endian, is_deflated,
# is_compressed) applied to pydicom's UID dictionary, without importing pydicom at start-up;
# tests/test_uids.py checks every transfer syntax of the dictionary against pydicom itself.


def is_transfer_syntax(uid: str | None) -> bool:
    """A registered transfer syntax."""
    return uid_type(uid) == "Transfer Syntax"


def is_implicit_vr(transfer_syntax: str) -> bool:
    """Implicit VR: Implicit VR Little Endian only (PS3.5 A.1)."""
    return transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN


def is_little_endian(transfer_syntax: str) -> bool:
    """Every standard transfer syntax but Explicit VR Big Endian (PS3.5 A.3, retired)."""
    return transfer_syntax != EXPLICIT_VR_BIG_ENDIAN


# The JPIP Referenced Deflate syntaxes encode their data set as Deflated Explicit VR Little
# Endian (PS3.5 A.7, A.9); pydicom 3.0's is_deflated names only A.5's own UID. Deflated Image
# Frame Compression (1.2.840.10008.1.2.8.1) deflates frames, not the data set: not here.
_REFERENCED_DEFLATE = frozenset({"1.2.840.10008.1.2.4.95", "1.2.840.10008.1.2.4.205"})


def is_deflated(transfer_syntax: str | None) -> bool:
    """The data set itself is deflated (PS3.5 A.5): inflate it before reading it."""
    return (transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
            or transfer_syntax in _REFERENCED_DEFLATE)


def is_compressed(transfer_syntax: str) -> bool:
    """Pixel data encapsulated (compressed), as pydicom says: all but the four native ones."""
    return transfer_syntax not in UNCOMPRESSED


def encoding(transfer_syntax: str | None) -> tuple[bool, bool] | None:
    """(explicit VR, little endian) of a data set on this transfer syntax, after inflating a
    deflated one; None for an unknown or private transfer syntax."""
    if not transfer_syntax or not is_transfer_syntax(transfer_syntax):
        return None
    return (not is_implicit_vr(transfer_syntax), is_little_endian(transfer_syntax))


@lru_cache(maxsize=256)  # the rules ask per accepted context: a few syntaxes, many contexts
def is_lossy(transfer_syntax: str | None) -> bool:
    """The transfer syntax may lose information (PS3.5 8.2): JPEG baseline and extended,
    JPEG-LS near-lossless, JPEG 2000 and HTJ2K unless "Lossless Only", MPEG and HEVC video.
    Read from the standard's names in pydicom's dictionary: what says Lossless is not lossy."""
    name = uid_name(transfer_syntax) if is_transfer_syntax(transfer_syntax) else None
    if name is None:
        return False
    if "Lossless" in name and "Near-Lossless" not in name:
        return False
    return any(w in name for w in ("JPEG", "MPEG", "HEVC", "Lossy"))


# Transfer syntaxes that lose information (PS3.5 section 8 / A.4): the archive gets lossy images.
LOSSY_TRANSFER_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.100",
    "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.103",
    "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105", "1.2.840.10008.1.2.4.106",
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",
})


def uid_keyword(uid: str | None) -> str | None:
    """pydicom's keyword for a registered UID ('CTImageStorage'), or None."""
    entry = _load().get(uid or "")
    return (entry[4] or None) if entry and len(entry) > 4 else None


_BY_TEXT: dict[str, str] | None = None
_UID_CHARS = frozenset("0123456789.")


def uid_from_text(text: str) -> str | None:
    """The UID that ``text`` names: a UID itself, a pydicom keyword ('CTImageStorage') or the
    standard's name ('CT Image Storage'), case-insensitive; None when it names nothing."""
    global _BY_TEXT
    t = text.strip()
    if not t:
        return None
    if set(t) <= _UID_CHARS:
        return t if len(t) <= 64 and not t.startswith(".") and ".." not in t else None
    if _BY_TEXT is None:
        _BY_TEXT = {}
        for uid, entry in _load().items():
            _BY_TEXT.setdefault(entry[0].lower(), uid)
            if len(entry) > 4 and entry[4]:
                _BY_TEXT.setdefault(entry[4].lower(), uid)
    return _BY_TEXT.get(t.lower())

