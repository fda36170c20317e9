"""What the study journey reads, by SOP class: the one table the journey's collection policy
(:mod:`.collect`) and its stand-in (:mod:`.lazy`) both ask.

Light on purpose: the stand-in asks it on every association to decide whether the journey is
needed at all, and a capture with no storage, worklist, MPPS, commitment, IAN, UPS or print
traffic never imports the rest of the journey.
"""

from __future__ import annotations

from ...uids import MPPS, uid_name
from ...uids import STORAGE_COMMITMENT_PUSH as COMMITMENT

IAN = "1.2.840.10008.5.1.4.33"
WORKLIST = "1.2.840.10008.5.1.4.31"
UPS_PREFIX = "1.2.840.10008.5.1.4.34.6."
PRINT_PREFIX = "1.2.840.10008.5.1.1."

_KINDS: dict[str, str | None] = {}  # abstract syntax -> kind (a few dozen entries at most)


def kind(abstract_syntax: str | None) -> str | None:
    """What the journey reads on a context: 'store', 'small' or None."""
    if not abstract_syntax:
        return None
    try:
        return _KINDS[abstract_syntax]
    except KeyError:
        pass
    k = _kind(abstract_syntax)
    if len(_KINDS) < 4096:  # wire strings: bounded
        _KINDS[abstract_syntax] = k
    return k


def _kind(abstract_syntax: str) -> str | None:
    if abstract_syntax in (MPPS, COMMITMENT, IAN, WORKLIST) or abstract_syntax.startswith(
            (UPS_PREFIX, PRINT_PREFIX)):
        return "small"
    name = uid_name(abstract_syntax) or ""
    if name.endswith("Storage") and "Commitment" not in name:
        return "store"
    return None


def files(command: str | None, sop_class: str | None) -> bool:
    """Whether :meth:`.core.Journey.on_transaction` files a transaction of this DIMSE command
    and SOP class anywhere (a C-STORE, or a worklist, MPPS, commitment, IAN, UPS or print
    one); any other it leaves alone."""
    if command == "C-STORE":
        return True
    if not sop_class:
        return False
    return sop_class in (WORKLIST, MPPS, COMMITMENT, IAN) or sop_class.startswith(
        (UPS_PREFIX, PRINT_PREFIX))
