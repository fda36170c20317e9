"""Upper Layer field values in words (PS3.8 section 9.3, PS3.7 annex D.3.3.7).

A-ASSOCIATE-RJ result/source/reason, A-ABORT source/reason, presentation context results,
user identity types and PDU type names, plus plain-English hints for a PACS administrator.
Every function accepts any value and returns a string: unknown values give ``"unknown (9)"``,
values the standard reserves give ``"reserved (4)"``. Nothing here raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .pdu import PDU_NAMES

__all__ = [
    "PDU_TYPE_NAMES",
    "abort_hint",
    "abort_reason",
    "abort_source",
    "context_result",
    "context_result_hint",
    "pdu_type_name",
    "reject_hint",
    "reject_reason",
    "reject_result",
    "reject_source",
    "user_identity_type",
]

PDU_TYPE_NAMES = PDU_NAMES  # the one table: dissectors/ul/pdu.py

# A-ASSOCIATE-RJ PDU fields, PS3.8 9.3.4 Table 9-21.
_REJECT_RESULT: dict[int, str] = {
    1: "rejected-permanent",
    2: "rejected-transient",
}
_REJECT_SOURCE: dict[int, str] = {
    1: "DICOM UL service-user",
    2: "DICOM UL service-provider (ACSE related function)",
    3: "DICOM UL service-provider (Presentation related function)",
}
# source -> reason -> words; reserved values are listed so they read "reserved (n)".
_REJECT_REASON: dict[int, dict[int, str]] = {
    1: {
        1: "no-reason-given",
        2: "application-context-name-not-supported",
        3: "calling-AE-title-not-recognized",
        7: "called-AE-title-not-recognized",
    },
    2: {
        1: "no-reason-given",
        2: "protocol-version-not-supported",
    },
    3: {
        1: "temporary-congestion",
        2: "local-limit-exceeded",
    },
}
_RESERVED_MARK: dict[tuple[int, int], str] = {
    **{(1, r): "reserved" for r in (4, 5, 6, 8, 9, 10)},
    **{(3, r): "reserved" for r in (0, 3, 4, 5, 6, 7)},
}
_REJECT_HINT: dict[tuple[int, int], str] = {
    (1, 1): "The SCP application refused the association without saying why; check the "
    "SCP's log and its access rules (allowed AE titles, IP addresses, ports).",
    (1, 2): "The SCP does not accept the proposed application context; every DICOM "
    "application uses 1.2.840.10008.3.1.1.1, so the caller may not be speaking DICOM.",
    (1, 3): "The SCP does not know the calling AE title: add it to the SCP's list of known "
    "AEs (with the caller's host and port), or fix the calling AE title configured on the SCU "
    "(case and trailing spaces count).",
    (1, 7): "The SCP does not answer to the called AE title: set the SCU's destination AE "
    "title to the one the SCP is configured with (case and trailing spaces count).",
    (2, 1): "The SCP's association layer refused the request without a reason; often a "
    "malformed A-ASSOCIATE-RQ or a local policy - check the SCP's log.",
    (2, 2): "The SCP does not support the protocol version in the A-ASSOCIATE-RQ; DICOM "
    "uses version 1 (bit 0 set).",
    (3, 1): "The SCP is temporarily overloaded: retry later, or raise its association or "
    "thread limits.",
    (3, 2): "The SCP has reached a configured limit, typically the maximum number of "
    "simultaneous associations (possibly per calling AE): close idle associations or raise "
    "the limit.",
}

# A-ABORT PDU fields, PS3.8 9.3.8 Table 9-26.
_ABORT_SOURCE: dict[int, str] = {
    0: "DICOM UL service-user (initiated abort)",
    1: "reserved",
    2: "DICOM UL service-provider (initiated abort)",
}
_ABORT_REASON: dict[int, str] = {
    0: "reason-not-specified",
    1: "unrecognized-PDU",
    2: "unexpected-PDU",
    3: "reserved",
    4: "unrecognized-PDU-parameter",
    5: "unexpected-PDU-parameter",
    6: "invalid-PDU-parameter-value",
}
_ABORT_HINT: dict[int, str] = {
    0: "The DICOM network layer aborted without a reason; timeouts (ARTIM, DIMSE or "
    "network) are the usual cause - compare the time of the abort with the peers' timeouts.",
    1: "A PDU of an unknown type arrived: the peer may not be speaking DICOM (for example "
    "TLS on one side and plain TCP on the other, or another protocol on the DICOM port).",
    2: "A valid PDU arrived at the wrong moment, for example P-DATA before the association "
    "was accepted or after a release was requested: a protocol bug in one of the peers.",
    4: "A PDU carried an item or parameter the receiver does not recognize: an encoding bug "
    "or an unsupported extension in the sender.",
    5: "A PDU carried an item or parameter that is not allowed there: an encoding bug in "
    "the sender.",
    6: "A PDU carried an invalid value, for example a wrong length or a PDU larger than the "
    "negotiated maximum PDU length: check both sides' maximum PDU settings.",
}
_ABORT_USER_HINT = (
    "One of the applications aborted the association itself (service-user abort); the reason "
    "is in that application's log, often a timeout, a shutdown or an error while processing."
)

# Presentation context result/reason in the A-ASSOCIATE-AC (item 0x21), PS3.8 9.3.3.2
# Table 9-18.
_CONTEXT_RESULT: dict[int, str] = {
    0: "acceptance",
    1: "user-rejection",
    2: "no-reason (provider rejection)",
    3: "abstract-syntax-not-supported (provider rejection)",
    4: "transfer-syntaxes-not-supported (provider rejection)",
}
_CONTEXT_HINT: dict[int, str] = {
    0: "Accepted.",
    1: "The SCP application chose not to accept this SOP Class or transfer syntax (a "
    "local policy); check which services the SCP has enabled for this caller.",
    2: "The SCP rejected this presentation context without a reason; check the SCP's log.",
    3: "The SCP does not support this SOP Class (abstract syntax): enable the service on "
    "the SCP, or stop proposing it.",
    4: "None of the proposed transfer syntaxes is acceptable to the SCP: propose Implicit VR "
    "Little Endian (1.2.840.10008.1.2), which every SCP must accept, or enable the "
    "compressed syntax on the SCP.",
}

# User Identity Negotiation sub-item (0x58) User-Identity-Type, PS3.7 D.3.3.7.1.
_USER_IDENTITY_TYPE: dict[int, str] = {
    1: "username",
    2: "username and passcode",
    3: "Kerberos service ticket",
    4: "SAML assertion",
    5: "JSON Web Token (JWT)",
}


def _unknown(value: object) -> str:
    return f"unknown ({value})"


def _lookup(table: Mapping[Any, str], value: object) -> str:
    try:
        text = table.get(value)
    except TypeError:  # unhashable
        text = None
    return text if text is not None else _unknown(value)


def pdu_type_name(pdu_type: int) -> str:
    """Name of a PDU type, e.g. 0x03 -> "A-ASSOCIATE-RJ"."""
    return _lookup(PDU_TYPE_NAMES, pdu_type)


def reject_result(result: int) -> str:
    """A-ASSOCIATE-RJ Result: "rejected-permanent" or "rejected-transient"."""
    return _lookup(_REJECT_RESULT, result)


def reject_source(source: int) -> str:
    """A-ASSOCIATE-RJ Source: which side of the peer refused (user, ACSE, presentation)."""
    return _lookup(_REJECT_SOURCE, source)


def reject_reason(source: int, reason: int) -> str:
    """A-ASSOCIATE-RJ Reason/Diag., whose meaning depends on the Source."""
    try:
        by_reason = _REJECT_REASON.get(source)
    except TypeError:
        by_reason = None
    if by_reason is None:
        return _unknown(reason)
    text = _lookup(by_reason, reason)
    if text.startswith("unknown") and _lookup(_RESERVED_MARK, (source, reason)) == "reserved":
        return f"reserved ({reason})"
    return text


def reject_hint(source: int, reason: int, result: int | None = None) -> str:
    """What a PACS administrator should check for this rejection (plain English)."""
    try:
        hint = _REJECT_HINT.get((source, reason))
    except TypeError:
        hint = None
    if hint is None:
        hint = (
            f"Rejected with source {reject_source(source)} and reason "
            f"{reject_reason(source, reason)}; check the SCP's log."
        )
    if result == 2:
        hint += " The rejection is transient: the same request may succeed later."
    elif result == 1:
        hint += " The rejection is permanent: retrying unchanged will fail again."
    return hint


def abort_source(source: int) -> str:
    """A-ABORT Source: service-user (an application) or service-provider (the UL itself)."""
    return _lookup(_ABORT_SOURCE, source)


def abort_reason(reason: int, source: int | None = None) -> str:
    """A-ABORT Reason/Diag.; only meaningful when the source is the service-provider (2).

    With ``source`` given and not 2, the field is not significant and the text says so.
    """
    if source is not None and source != 2:
        return f"not significant (source is not the service-provider; value {reason})"
    if reason == 3:
        return "reserved (3)"
    return _lookup(_ABORT_REASON, reason)


def abort_hint(source: int, reason: int) -> str:
    """What a PACS administrator should check for this abort (plain English)."""
    if source == 0:
        return _ABORT_USER_HINT
    if source == 2:
        hint = _lookup(_ABORT_HINT, reason)
        if not hint.startswith("unknown"):
            return hint
        return f"The DICOM network layer aborted with reason {abort_reason(reason)}."
    return f"Abort from source {abort_source(source)}; the source field is not valid."


def context_result(result: int) -> str:
    """Presentation context Result/Reason in an A-ASSOCIATE-AC (0 means accepted)."""
    return _lookup(_CONTEXT_RESULT, result)


_IMPLICIT_LE = "1.2.840.10008.1.2"
_NATIVE = frozenset({_IMPLICIT_LE, "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"})


def context_result_hint(result: int, proposed: list[str] | None = None) -> str:
    """What a PACS administrator should check for a rejected presentation context.

    ``proposed``: the context's proposed transfer syntaxes, which decide the advice for a
    transfer-syntaxes-not-supported refusal: "enable the compressed syntax" only when a
    compressed one was proposed; a refused Implicit VR Little Endian is the SCP's fault.
    """
    hint = _lookup(_CONTEXT_HINT, result)
    if hint.startswith("unknown"):
        return f"Presentation context result {hint} is not defined by PS3.8."
    if result == 4 and proposed:
        if _IMPLICIT_LE in proposed:
            return ("The SCP refused even Implicit VR Little Endian, which every SCP must "
                    "accept (PS3.5 10.1): the SCP is misconfigured or does not offer this "
                    "SOP Class at all; check its configuration.")
        if all(ts in _NATIVE for ts in proposed):
            return ("None of the proposed transfer syntaxes is acceptable to the SCP: propose "
                    "Implicit VR Little Endian (1.2.840.10008.1.2), which every SCP must "
                    "accept.")
    return hint


def user_identity_type(identity_type: int) -> str:
    """User Identity Negotiation type: username, passcode, Kerberos, SAML or JWT."""
    return _lookup(_USER_IDENTITY_TYPE, identity_type)
