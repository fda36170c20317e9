"""DIMSE response status codes: category (PS3.7 Annex C) and meaning per service (PS3.4).

Everything here is data: a few dicts looked up in O(1). ``category`` is on the analyzer's hot
path (called for every response) and costs one dict lookup plus one range test.

Meanings are chosen, most specific first, from:

1. the service class of the SOP Class UID (Print, UPS, MPPS, ...), for that command or any;
2. the DIMSE command (C-STORE, C-FIND, C-MOVE, C-GET; the rest only use general codes);
3. the general codes of PS3.7 Annex C (01xx, 02xx, 0000, 0001, FE00, FF00, FF01);
4. a fallback that still says what the code's class is and never raises.

Each table matches an exact code, then a "block" (``status >> 8``, for ``A7xx`` style ranges),
then a "family" (``status >> 12``, for ``Cxxx`` style ranges).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "CANCEL",
    "FAILURE",
    "PENDING",
    "SUCCESS",
    "WARNING",
    "category",
    "failure_reason",
    "format_status",
    "meaning",
]

SUCCESS = "Success"
WARNING = "Warning"
FAILURE = "Failure"
PENDING = "Pending"
CANCEL = "Cancel"

# --------------------------------------------------------------------------------------------
# Category - PS3.7 Annex C "Status Class" convention:
#   Success 0000; Warning 0001, Bxxx, 0107, 0116; Failure Axxx, Cxxx, 01xx (except 0107 and
#   0116), 02xx; Cancel FE00; Pending FF00 and FF01.
# Annex C also says implementations shall not use any other value, so anything else
# (0002, Dxxx, FEFF, FF02 ...) is a protocol violation: we call it a Failure, the safe guess.
# --------------------------------------------------------------------------------------------

_CATEGORY_EXACT: dict[int, str] = {
    0x0000: SUCCESS,
    0x0001: WARNING,
    0x0107: WARNING,
    0x0116: WARNING,
    0xFE00: CANCEL,
    0xFF00: PENDING,
    0xFF01: PENDING,
}


def category(status: int) -> str:
    """Status class of a DIMSE status code (PS3.7 Annex C); unknown codes are "Failure"."""
    try:
        cat = _CATEGORY_EXACT.get(status)
        if cat is not None:
            return cat
        if 0xB000 <= status <= 0xBFFF:
            return WARNING
    except TypeError:  # not a number at all (a missing Status element, say)
        pass
    return FAILURE


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


class _Table:
    """Meanings for one service: exact codes, then ``xx`` blocks, then ``xxx`` families."""

    _fields = ("exact", "blocks", "families")
    exact: Mapping[int, str]
    blocks: Mapping[int, str]
    families: Mapping[int, str]

    def __init__(
        self,
        exact: Mapping[int, str] | None = None,
        blocks: Mapping[int, str] | None = None,
        families: Mapping[int, str] | None = None,
    ) -> None:
        self.exact = {} if exact is None else exact
        self.blocks = {} if blocks is None else blocks
        self.families = {} if families is None else families

    def get(self, status: int) -> str | None:
        return (
            self.exact.get(status)
            or self.blocks.get(status >> 8)
            or self.families.get(status >> 12)
        )


_EMPTY = _Table()

# PS3.7 Annex C (C.1 success, C.3 cancel, C.4 warning, C.5 failure) and the status convention.
# These 01xx/02xx meanings "shall not be modified by a Service Class definition".
_GENERAL: dict[int, str] = {
    0x0000: "Success",
    0x0001: "Requested optional attributes are not supported",
    0x0105: "No such attribute",
    0x0106: "Invalid attribute value",
    0x0107: "Attribute list error",
    0x0110: "Processing failure",
    0x0111: "Duplicate SOP Instance",
    # PS3.7 calls it "No such object instance"; PS3.4 tables say "No such SOP Instance".
    0x0112: "No such object instance (no such SOP Instance)",
    0x0113: "No such event type",
    0x0114: "No such argument",
    0x0115: "Invalid argument value",
    0x0116: "Attribute value out of range",
    0x0117: "Invalid object instance (invalid SOP Instance UID)",
    0x0118: "No such SOP Class",
    0x0119: "Class-instance conflict",
    0x0120: "Missing attribute",
    0x0121: "Missing attribute value",
    0x0122: "Refused: SOP Class not supported",
    0x0123: "No such action type",
    0x0124: "Refused: Not authorized",
    0x0210: "Duplicate invocation (Message ID already in use)",
    0x0211: "Unrecognized operation",
    0x0212: "Mistyped argument",
    0x0213: "Resource limitation",
    0xFE00: "Cancel",
    0xFF00: "Pending",
    0xFF01: "Pending - warning: one or more optional keys were not supported",
}
_GENERAL_TABLE = _Table(exact=_GENERAL)

# --- Storage, PS3.4 B.2.3 Table B.2-1 (also Non-Patient Object Storage GG) -----------------
# NB: B007 is "Data Set does not match SOP Class" and B006 is "Elements discarded" in PS3.4.
_C_STORE = _Table(
    exact={
        0xB000: "Coercion of data elements",
        0xB006: "Elements discarded",
        0xB007: "Data Set does not match SOP Class",
    },
    blocks={
        0xA7: "Refused: Out of resources",
        0xA9: "Error: Data Set does not match SOP Class",
    },
    families={0xC: "Error: Cannot understand"},
)

# --- Query/Retrieve FIND, PS3.4 C.4.1.1.4 Table C.4-1; Repository Query C.6.4 --------------
_C_FIND = _Table(
    exact={
        0x0000: "Matching is complete - no final identifier is supplied",
        0xA710: "Invalid Prior Record Key (Repository Query)",
        0xB001: "Matching reached the response limit; a subsequent request may return "
        "additional matches (Repository Query)",
        0xFE00: "Matching terminated due to Cancel request",
        0xFF00: "Matches are continuing - current match is supplied and any optional keys "
        "were supported in the same manner as required keys",
        0xFF01: "Matches are continuing - warning: one or more optional keys were not "
        "supported for existence and/or matching for this identifier",
    },
    blocks={
        0xA7: "Refused: Out of resources",
        0xA9: "Identifier does not match SOP Class",
    },
    families={0xC: "Unable to process"},
)

# --- Query/Retrieve MOVE and GET, PS3.4 C.4.2.1.5 / C.4.3.1.4, frame/instance retrieve Y/Z ---
_RETRIEVE_COMMON: dict[int, str] = {
    0xA701: "Refused: Out of resources - unable to calculate number of matches",
    0xA702: "Refused: Out of resources - unable to perform sub-operations",
    0xA900: "Identifier does not match SOP Class",
    0xAA00: "None of the frames requested were found in the SOP Instance",
    0xAA01: "Unable to create new object for this SOP Class",
    0xAA02: "Unable to extract frames",
    0xAA03: "Time-based request received for a non-time-based original SOP Instance",
    0xAA04: "Invalid request",
    0xB000: "Sub-operations complete - one or more failures or warnings",
    0xFE00: "Sub-operations terminated due to Cancel indication",
    0xFF00: "Sub-operations are continuing",
}


def _retrieve_table(command: str, extra: Mapping[int, str]) -> _Table:
    return _Table(
        exact={**_RETRIEVE_COMMON, **extra},
        blocks={
            # PS3.4 defines only A701/A702 for retrieves; plain A7xx is still "out of resources".
            0xA7: f"Refused: Out of resources (not a standard {command} code; "
            "PS3.4 uses 0xA701/0xA702)",
            0xA9: "Identifier does not match SOP Class",
        },
        families={0xC: "Unable to process"},
    )


_C_MOVE = _retrieve_table(
    "C-MOVE",
    {
        0x0000: "Sub-operations complete - no failures",
        0xA801: "Refused: Move destination unknown",
    },
)
_C_GET = _retrieve_table("C-GET", {0x0000: "Sub-operations complete - no failures or warnings"})

_COMMAND_TABLES: dict[str, _Table] = {
    "C-STORE": _C_STORE,
    "C-FIND": _C_FIND,
    "C-MOVE": _C_MOVE,
    "C-GET": _C_GET,
    "C-ECHO": _EMPTY,  # PS3.7 9.1.5.1.4: general codes only
    "N-EVENT-REPORT": _EMPTY,
    "N-GET": _EMPTY,
    "N-SET": _EMPTY,
    "N-ACTION": _EMPTY,
    "N-CREATE": _EMPTY,
    "N-DELETE": _EMPTY,
}

# --- Service classes narrowed by SOP Class UID ---------------------------------------------

# Modality Performed Procedure Step, PS3.4 F.7.2.2 (N-SET).
_MPPS_N_SET = _Table(
    exact={
        0x0110: "Processing failure: Performed Procedure Step object may no longer be updated "
        "(it is already COMPLETED or DISCONTINUED)",
    }
)

# Print Management, PS3.4 Annex H (film session, film box, image box, printer).
_PRINT = _Table(
    exact={
        0xB600: "Memory allocation not supported",
        0xB601: "Film session printing (collation) is not supported",
        0xB602: "Film Session SOP Instance hierarchy does not contain Image Box SOP Instances "
        "(empty page)",
        0xB603: "Film Box SOP Instance hierarchy does not contain Image Box SOP Instances "
        "(empty page)",
        0xB604: "Image size is larger than image box size, the image has been demagnified",
        0xB605: "Requested Min Density or Max Density outside of printer's operating range; "
        "the printer uses its own minimum or maximum instead",
        0xB609: "Image size is larger than the image box size, the image has been cropped to fit",
        0xB60A: "Image size or combined print image size is larger than the image box size, "
        "the image has been decimated to fit",
        0xC600: "Film Session SOP Instance hierarchy does not contain Film Box SOP Instances",
        0xC601: "Unable to create Print Job SOP Instance; print queue is full",
        0xC602: "Unable to create Print Job SOP Instance; print queue is full",
        0xC603: "Image size is larger than image box size",
        0xC604: "Image position collision: multiple images assigned to a single image "
        "position (retired)",
        0xC605: "Insufficient memory in printer to store the image",
        0xC606: "More than one VOI LUT Box SOP Instance in an Image Box (retired)",
        0xC613: "Combined print image size is larger than the image box size",
        0xC616: "There is an existing film box that has not been printed and N-ACTION at the "
        "Film Session level is not supported; a new film box will not be created",
    }
)

# Unified Procedure Step, PS3.4 Annex CC (N-CREATE, N-SET, N-GET, N-ACTION, C-FIND).
_UPS = _Table(
    exact={
        0xB300: "The UPS was created with modifications",
        0xB301: "Deletion lock not granted",
        0xB304: "The UPS is already in the requested state of CANCELED",
        0xB305: "Coerced invalid values to valid values",
        0xB306: "The UPS is already in the requested state of COMPLETED",
        0xC300: "Refused: The UPS may no longer be updated",
        0xC301: "Refused: The correct Transaction UID was not provided",
        0xC302: "Refused: The UPS is already IN PROGRESS",
        0xC303: "Refused: The UPS may only become SCHEDULED via N-CREATE, not N-SET or N-ACTION",
        0xC304: "Refused: The UPS has not met final state requirements for the requested "
        "state change",
        0xC307: "Specified SOP Instance UID does not exist or is not a UPS Instance managed "
        "by this SCP",
        0xC308: "Receiving AE title is unknown to this SCP",
        0xC309: "Refused: The provided value of UPS State was not SCHEDULED",
        0xC310: "Refused: The UPS is not yet in the IN PROGRESS state",
        0xC311: "Refused: The UPS is already COMPLETED",
        0xC312: "Refused: The performer cannot be contacted",
        0xC313: "Refused: Performer chooses not to cancel",
        0xC314: "Refused: Specified action not appropriate for specified instance",
        0xC315: "Refused: SCP does not support Event Reports",
    },
    # Table CC.2.8-2 (C-FIND): any other Cxxx is "Unable to process"
    families={0xC: "Unable to process"},
)

# Media Creation Management, PS3.4 Annex S.
_MEDIA = _Table(
    exact={
        0xA510: "Refused: an Initiate Media Creation action has already been received for "
        "this SOP Instance",
        0xC201: "Media creation request already completed",
        0xC202: "Media creation request already in progress and cannot be interrupted",
        0xC203: "Cancellation denied for unspecified reason",
    }
)

# Application Event Logging (procedural and substance administration), PS3.4 Annex P.
_EVENT_LOG = _Table(
    exact={
        0xB101: "Specified Synchronization Frame of Reference UID does not match SCP "
        "Synchronization Frame of Reference",
        0xB102: "Study Instance UID coercion; event logged under a different Study Instance UID",
        0xB104: "IDs inconsistent in matching a current study; event logged",
        0xC101: "Procedural logging not available for specified Study Instance UID",
        0xC102: "Event information does not match template",
        0xC103: "Cannot match event to a current study",
        0xC104: "IDs inconsistent in matching a current study; event not logged",
        0xC10E: "Operator not authorized to add entry to Medication Administration Record",
        0xC110: "Patient cannot be identified from Patient ID (0010,0020) or Admission ID "
        "(0038,0010)",
        0xC111: "Update of Medication Administration Record failed",
    }
)

# Relevant Patient Information Query, PS3.4 Annex Q Table Q.2-1 (C-FIND).
_RELEVANT_PATIENT = _Table(
    exact={
        0xC100: "More than one match found",
        0xC200: "Unable to support requested template",
    }
)

# RT Machine Verification, PS3.4 Annex DD (N-CREATE, N-SET, N-GET, N-ACTION).
_RT_MACHINE_VERIFICATION = _Table(
    exact={
        0xC112: "No such object instance - applicable Machine Verification instance not found",
        0xC221: "The Referenced Fraction Group Number does not exist in the referenced plan",
        0xC222: "No beams exist within the referenced fraction group",
        0xC223: "SCU already verifying and cannot currently process this request",
        0xC224: "Referenced Beam Number not found within the referenced Fraction Group",
        0xC225: "Referenced device or accessory not supported",
        0xC226: "Referenced device or accessory not found within the referenced beam",
        0xC227: "No such object instance - Referenced RT Plan not found",
    }
)

# (service, command or None for "any command") -> table
_SERVICE_TABLES: dict[tuple[str, str | None], _Table] = {
    ("MPPS", "N-SET"): _MPPS_N_SET,
    ("PRINT", None): _PRINT,
    ("UPS", None): _UPS,
    ("MEDIA", None): _MEDIA,
    ("EVENT_LOG", None): _EVENT_LOG,
    ("RELEVANT_PATIENT", None): _RELEVANT_PATIENT,
    ("RT_MACHINE_VERIFICATION", None): _RT_MACHINE_VERIFICATION,
}

# SOP Class UID -> service. Exact UIDs first, then prefixes (Print, UPS).
_SOP_SERVICE: dict[str, str] = {
    "1.2.840.10008.3.1.2.3.3": "MPPS",
    "1.2.840.10008.5.1.1.33": "MEDIA",  # shares the Print prefix, so it is listed exactly
    "1.2.840.10008.1.40": "EVENT_LOG",
    "1.2.840.10008.1.42": "EVENT_LOG",
    "1.2.840.10008.5.1.4.37.1": "RELEVANT_PATIENT",
    "1.2.840.10008.5.1.4.37.2": "RELEVANT_PATIENT",
    "1.2.840.10008.5.1.4.37.3": "RELEVANT_PATIENT",
    "1.2.840.10008.5.1.4.34.2": "RT_MACHINE_VERIFICATION",  # trial, retired
    "1.2.840.10008.5.1.4.34.3": "RT_MACHINE_VERIFICATION",  # trial, retired
    "1.2.840.10008.5.1.4.34.8": "RT_MACHINE_VERIFICATION",
    "1.2.840.10008.5.1.4.34.9": "RT_MACHINE_VERIFICATION",
}
_SOP_PREFIX_SERVICE: tuple[tuple[str, str], ...] = (
    ("1.2.840.10008.5.1.1.", "PRINT"),
    ("1.2.840.10008.5.1.4.34.6.", "UPS"),
    ("1.2.840.10008.5.1.4.34.4.", "UPS"),  # UPS trial SOP classes, retired
)

# Storage Commitment Failure Reason (0008,1197), PS3.3 C.14.1.1. Storage Commitment itself has
# no service-specific DIMSE statuses (PS3.4 J.3): the per-instance reasons travel in the
# N-EVENT-REPORT data set, not in the Status element.
_FAILURE_REASONS: dict[int, str] = {
    0x0110: "Processing failure",
    0x0112: "No such object instance",
    0x0119: "Class/Instance conflict",
    0x0122: "Referenced SOP Class not supported",
    0x0131: "Duplicate transaction UID",
    0x0213: "Resource limitation",
}

# --------------------------------------------------------------------------------------------
# Lookups
# --------------------------------------------------------------------------------------------

_RANGE_NOTE: dict[int, str] = {
    0xA: "Axxx is a service-specific failure range",
    0xB: "Bxxx is a service-specific warning range",
    0xC: "Cxxx is the range for 'Error: Cannot understand' (C-STORE) and 'Unable to "
    "process' (C-FIND, C-MOVE, C-GET and others)",
}


def _norm_command(command: str | None) -> str | None:
    """'c-store-rsp', 'C_STORE_RQ' and 'C-STORE' all become 'C-STORE'."""
    if command is None or (isinstance(command, str) and command in _COMMAND_TABLES):
        return command
    cmd = str(command).strip().upper().replace("_", "-")
    for suffix in ("-RSP", "-RQ"):
        if cmd.endswith(suffix):
            cmd = cmd[: -len(suffix)]
            break
    return cmd


def _service(sop_class_uid: str | None) -> str | None:
    if not sop_class_uid:
        return None
    uid = str(sop_class_uid).rstrip("\x00 ")
    svc = _SOP_SERVICE.get(uid)
    if svc is not None:
        return svc
    for prefix, svc in _SOP_PREFIX_SERVICE:
        if uid.startswith(prefix):
            return svc
    return None


def meaning(status: int, command: str | None = None, sop_class_uid: str | None = None) -> str:
    """What a status code means for this DIMSE command and SOP Class; never raises.

    ``command`` is the request's DIMSE name ("C-STORE", "N-ACTION", ...; "-RQ"/"-RSP"
    suffixes are accepted). Unknown codes get a category-based description.
    """
    if not isinstance(status, int):
        return f"Failure (status {status!r} is not a number)"
    cmd = _norm_command(command)
    svc = _service(sop_class_uid)
    if svc is not None:
        for table in (_SERVICE_TABLES.get((svc, cmd)), _SERVICE_TABLES.get((svc, None))):
            if table is not None:
                found = table.get(status)
                if found:
                    return found
    if cmd is not None:
        table = _COMMAND_TABLES.get(cmd)
        if table is not None:
            found = table.get(status)
            if found:
                return found
    found = _GENERAL.get(status)
    if found:
        return found
    return _fallback(status, cmd)


def _fallback(status: int, cmd: str | None) -> str:
    where = f" for {cmd}" if cmd else ""
    if not 0 <= status <= 0xFFFF:
        return f"Failure (status {status} is outside the 16-bit range)"
    text = f"{category(status)} (unknown status 0x{status:04X}{where}"
    note = _RANGE_NOTE.get(status >> 12)
    if note:
        text += f"; {note}"
    elif (status >> 8) in (0x01, 0x02):
        text += "; 01xx/02xx codes are reserved for PS3.7 general failures"
    else:
        text += "; PS3.7 Annex C does not allow this value"
    return text + ")"


def format_status(status: int, command: str | None = None, sop_class_uid: str | None = None) -> str:
    """One line for a report, e.g. ``"0xA700 Failure: Refused: Out of resources"``."""
    cat = category(status)
    text = meaning(status, command, sop_class_uid)
    code = f"0x{status:04X}" if isinstance(status, int) and 0 <= status <= 0xFFFF else repr(status)
    if text == cat or text.startswith(cat + " "):
        return f"{code} {text}"
    return f"{code} {cat}: {text}"


def failure_reason(reason: int) -> str:
    """Storage Commitment Failure Reason (0008,1197) in words (PS3.3 C.14.1.1)."""
    text = _FAILURE_REASONS.get(reason) if isinstance(reason, int) else None
    if text is not None:
        return text
    return f"unknown ({reason:#06x})" if isinstance(reason, int) else f"unknown ({reason!r})"
