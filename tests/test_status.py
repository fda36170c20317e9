"""DIMSE status codes: categories (PS3.7 Annex C) and meanings per service (PS3.4)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from dissectors.dimse import status as st
from dissectors.dimse.status import category, failure_reason, format_status, meaning

COMMANDS = (
    "C-STORE",
    "C-FIND",
    "C-MOVE",
    "C-GET",
    "C-ECHO",
    "N-CREATE",
    "N-SET",
    "N-GET",
    "N-ACTION",
    "N-EVENT-REPORT",
    "N-DELETE",
)
UPS_PUSH = "1.2.840.10008.5.1.4.34.6.1"
MPPS = "1.2.840.10008.3.1.2.3.3"
MWL = "1.2.840.10008.5.1.4.31"
FILM_SESSION = "1.2.840.10008.5.1.1.1"
MEDIA_CREATION = "1.2.840.10008.5.1.1.33"
STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
RELEVANT_PATIENT = "1.2.840.10008.5.1.4.37.1"


# --- category ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0x0000, "Success"),
        (0x0001, "Warning"),
        (0x0107, "Warning"),
        (0x0116, "Warning"),
        (0x0105, "Failure"),
        (0x0106, "Failure"),
        (0x0122, "Failure"),
        (0x0124, "Failure"),
        (0x0213, "Failure"),
        # range edges
        (0x9FFF, "Failure"),  # not a class in Annex C: default
        (0xA000, "Failure"),
        (0xAFFF, "Failure"),
        (0xB000, "Warning"),
        (0xBFFF, "Warning"),
        (0xC000, "Failure"),
        (0xCFFF, "Failure"),
        (0xD000, "Failure"),  # not allowed by Annex C: default
        (0xFDFF, "Failure"),
        (0xFE00, "Cancel"),
        (0xFE01, "Failure"),
        (0xFEFF, "Failure"),
        (0xFF00, "Pending"),
        (0xFF01, "Pending"),
        (0xFF02, "Failure"),
        (0xFFFF, "Failure"),
        (0x0002, "Failure"),
        # PS3.7 Annex C: "01xx (except 0107 and 0116) or 02xx" are Failure even if unassigned
        (0x0100, "Failure"),
        (0x0101, "Failure"),
        (0x02FF, "Failure"),
    ],
)
def test_category(code: int, expected: str) -> None:
    assert category(code) == expected


def test_category_total_and_never_raises() -> None:
    allowed = {"Success", "Warning", "Failure", "Pending", "Cancel"}
    for code in range(0x10000):
        assert category(code) in allowed
    for odd in (-1, 0x10000, None, "0xA700", 1.5, [0]):
        assert category(odd) == "Failure"  # type: ignore[arg-type]


# --- meanings that differ by service ----------------------------------------------------


def test_a700_store_vs_move() -> None:
    assert meaning(0xA700, "C-STORE") == "Refused: Out of resources"
    assert meaning(0xA7FF, "C-STORE") == "Refused: Out of resources"  # A7xx range
    move = meaning(0xA700, "C-MOVE")
    assert move != meaning(0xA700, "C-STORE")
    assert "Out of resources" in move and "A701" in move  # A700 is not a C-MOVE code
    assert meaning(0xA700, "C-FIND") == "Refused: Out of resources"


@pytest.mark.parametrize("cmd", ["C-MOVE", "C-GET"])
def test_a701_a702_retrieve(cmd: str) -> None:
    assert "unable to calculate number of matches" in meaning(0xA701, cmd)
    assert "unable to perform sub-operations" in meaning(0xA702, cmd)
    # for C-STORE they are simply in the A7xx "out of resources" range
    assert meaning(0xA701, "C-STORE") == "Refused: Out of resources"


def test_a801_move_destination_unknown() -> None:
    assert meaning(0xA801, "C-MOVE") == "Refused: Move destination unknown"
    assert "Move destination" not in meaning(0xA801, "C-GET")  # C-GET has no destination
    assert category(0xA801) == "Failure"


def test_a900_store_vs_query() -> None:
    assert meaning(0xA900, "C-STORE") == "Error: Data Set does not match SOP Class"
    assert meaning(0xA9FF, "C-STORE") == "Error: Data Set does not match SOP Class"
    for cmd in ("C-FIND", "C-MOVE", "C-GET"):
        assert meaning(0xA900, cmd) == "Identifier does not match SOP Class"


def test_b000_store_vs_retrieve() -> None:
    assert meaning(0xB000, "C-STORE") == "Coercion of data elements"
    for cmd in ("C-MOVE", "C-GET"):
        assert meaning(0xB000, cmd) == "Sub-operations complete - one or more failures or warnings"


def test_b006_b007_follow_ps3_4_table_b2_1() -> None:
    # PS3.4 B.2.3 Table B.2-1: B007 "Data Set does not match SOP Class", B006 "Elements
    # Discarded". pynetdicom 3.0.4 (STORAGE_SERVICE_CLASS_STATUS) has these two swapped.
    assert meaning(0xB007, "C-STORE") == "Data Set does not match SOP Class"
    assert meaning(0xB006, "C-STORE") == "Elements discarded"
    assert category(0xB006) == category(0xB007) == "Warning"


def test_pending_and_cancel_per_service() -> None:
    assert "optional keys were not supported" in meaning(0xFF01, "C-FIND")
    assert "current match is supplied" in meaning(0xFF00, "C-FIND")
    assert meaning(0xFF00, "C-MOVE") == "Sub-operations are continuing"
    assert meaning(0xFE00, "C-FIND") == "Matching terminated due to Cancel request"
    assert meaning(0xFE00, "C-GET") == "Sub-operations terminated due to Cancel indication"
    assert meaning(0xFE00) == "Cancel"
    assert meaning(0xFF00) == "Pending"
    # MWL C-FIND uses the same wording as Query/Retrieve (PS3.4 K.4.1.1.4)
    assert meaning(0xFF01, "C-FIND", MWL) == meaning(0xFF01, "C-FIND")


def test_success_per_service() -> None:
    assert meaning(0x0000) == "Success"
    assert meaning(0x0000, "C-STORE") == "Success"
    assert meaning(0x0000, "C-FIND").startswith("Matching is complete")
    assert meaning(0x0000, "C-MOVE") == "Sub-operations complete - no failures"
    assert meaning(0x0000, "C-GET") == "Sub-operations complete - no failures or warnings"


def test_c000_store_vs_find() -> None:
    assert meaning(0xC000, "C-STORE") == "Error: Cannot understand"
    assert meaning(0xCFFF, "C-STORE") == "Error: Cannot understand"
    assert meaning(0xC000, "C-FIND") == "Unable to process"
    assert meaning(0xC123, "C-MOVE") == "Unable to process"
    assert meaning(0xC123, "C-GET") == "Unable to process"


def test_c123_fallback() -> None:
    text = meaning(0xC123)
    assert text.startswith("Failure (unknown status 0xC123")
    assert "Cannot understand" in text and "Unable to process" in text
    text = meaning(0xC123, "N-SET")
    assert text.startswith("Failure (unknown status 0xC123 for N-SET")
    assert meaning(0xC123, "C-STORE") == "Error: Cannot understand"


def test_general_codes_for_any_service() -> None:
    for cmd in (None, *COMMANDS):
        assert meaning(0x0122, cmd) == "Refused: SOP Class not supported"
        assert meaning(0x0124, cmd) == "Refused: Not authorized"
        assert meaning(0x0210, cmd).startswith("Duplicate invocation")
        assert meaning(0x0211, cmd) == "Unrecognized operation"
        assert meaning(0x0212, cmd) == "Mistyped argument"
        assert meaning(0x0213, cmd) == "Resource limitation"
    assert meaning(0x0105) == "No such attribute"
    assert meaning(0x0107) == "Attribute list error"
    assert meaning(0x0110) == "Processing failure"
    assert meaning(0x0112).startswith("No such object instance")
    assert meaning(0x0116) == "Attribute value out of range"
    assert meaning(0x0118) == "No such SOP Class"
    assert meaning(0x0119) == "Class-instance conflict"
    assert meaning(0x0123) == "No such action type"
    assert meaning(0x0001) == "Requested optional attributes are not supported"


def test_unknown_codes() -> None:
    assert (
        meaning(0x0002)
        == "Failure (unknown status 0x0002; PS3.7 Annex C does not allow this value)"
    )
    assert "unknown status 0xD000 for C-ECHO" in meaning(0xD000, "C-ECHO")
    assert "01xx/02xx" in meaning(0x0101)
    assert meaning(0xB123, "C-STORE").startswith("Warning (unknown status 0xB123 for C-STORE")
    assert "Axxx" in meaning(0xA123, "N-ACTION")


def test_command_spelling_is_forgiving() -> None:
    for spelling in ("c-store", "C-STORE-RSP", "C_STORE_RQ", " C-STORE "):
        assert meaning(0xB000, spelling) == "Coercion of data elements"
    assert meaning(0xB000, "X-UNKNOWN").startswith("Warning (unknown status 0xB000 for X-UNKNOWN")


# --- narrowing by SOP Class -------------------------------------------------------------


def test_ups_statuses() -> None:
    assert meaning(0xC300, "N-SET", UPS_PUSH) == "Refused: The UPS may no longer be updated"
    assert meaning(0xC312, "N-ACTION", UPS_PUSH) == "Refused: The performer cannot be contacted"
    assert meaning(0xB300, "N-CREATE", UPS_PUSH) == "The UPS was created with modifications"
    assert "CANCELED" in meaning(0xB304, "N-ACTION", UPS_PUSH)
    assert "COMPLETED" in meaning(0xB306, "N-ACTION", UPS_PUSH)
    # UPS query uses the general C-FIND words; unknown UPS Cxxx on C-FIND: unable to process
    assert meaning(0xFF00, "C-FIND", "1.2.840.10008.5.1.4.34.6.5") == meaning(0xFF00, "C-FIND")
    assert meaning(0xC3FF, "C-FIND", UPS_PUSH) == "Unable to process"
    # without the UPS SOP Class the code is just an unknown failure
    assert meaning(0xC300, "N-SET").startswith("Failure (unknown status 0xC300")


def test_mpps_n_set_0110() -> None:
    assert "may no longer be updated" in meaning(0x0110, "N-SET", MPPS)
    assert meaning(0x0110, "N-CREATE", MPPS) == "Processing failure"
    assert meaning(0x0110, "N-SET") == "Processing failure"
    # UIDs on the wire may carry a trailing NUL pad
    assert "may no longer be updated" in meaning(0x0110, "N-SET", MPPS + "\x00")


def test_print_and_media_creation() -> None:
    assert "print queue is full" in meaning(0xC601, "N-ACTION", FILM_SESSION)
    assert meaning(0xB600, "N-CREATE", FILM_SESSION) == "Memory allocation not supported"
    # Media Creation Management shares the Print UID prefix but has its own table
    assert meaning(0xC201, "N-ACTION", MEDIA_CREATION) == "Media creation request already completed"
    assert "print queue" not in meaning(0xC601, "N-ACTION", MEDIA_CREATION)


def test_relevant_patient_and_storage_commitment() -> None:
    assert meaning(0xC100, "C-FIND", RELEVANT_PATIENT) == "More than one match found"
    assert meaning(0xC100, "C-FIND") == "Unable to process"
    # Storage Commitment has no service-specific DIMSE statuses (PS3.4 J.3)
    assert meaning(0x0213, "N-ACTION", STORAGE_COMMITMENT) == "Resource limitation"
    assert failure_reason(0x0131) == "Duplicate transaction UID"
    assert failure_reason(0x0122) == "Referenced SOP Class not supported"
    assert failure_reason(0x0999) == "unknown (0x0999)"


# --- format_status ----------------------------------------------------------------------


def test_format_status() -> None:
    assert format_status(0xA700, "C-STORE") == "0xA700 Failure: Refused: Out of resources"
    assert format_status(0xB000, "C-STORE") == "0xB000 Warning: Coercion of data elements"
    assert format_status(0x0000) == "0x0000 Success"
    assert format_status(0xFE00) == "0xFE00 Cancel"
    assert format_status(0xFF00, "C-MOVE") == "0xFF00 Pending: Sub-operations are continuing"
    assert format_status(0xC123).startswith("0xC123 Failure (unknown status 0xC123")


def test_meaning_total_never_empty() -> None:
    for cmd in (None, "C-STORE", "C-FIND", "C-MOVE", "N-ACTION"):
        for code in range(0x10000):
            assert meaning(code, cmd)
    for odd in (-1, 0x10000, None, "x", [0]):
        assert meaning(odd)  # type: ignore[arg-type]
        assert format_status(odd)  # type: ignore[arg-type]
        assert failure_reason(odd)  # type: ignore[arg-type]
    for odd_command in (["C-STORE"], 7, ""):
        assert meaning(0xB000, odd_command)  # type: ignore[arg-type]
    assert meaning(0xB000, "C-STORE", ["uid"]) == "Coercion of data elements"  # type: ignore[arg-type]


# --- cross-check against pynetdicom -----------------------------------------------------


def _pynetdicom_tables() -> dict[str, dict[int, tuple[str, str]]]:
    pstatus = pytest.importorskip("pynetdicom.status")
    tables = {
        name: value
        for name, value in vars(pstatus).items()
        if name.endswith("_STATUS") and isinstance(value, dict)
    }
    assert "STORAGE_SERVICE_CLASS_STATUS" in tables
    return tables


def test_category_agrees_with_pynetdicom_tables() -> None:
    checked = 0
    for name, table in _pynetdicom_tables().items():
        for code, (their_category, _) in table.items():
            assert category(code) == their_category, f"{name} 0x{code:04X}"
            checked += 1
    assert checked > 1000


def test_category_agrees_with_pynetdicom_code_to_category() -> None:
    pstatus = pytest.importorskip("pynetdicom.status")
    differ = []
    for code in range(0x10000):
        theirs = pstatus.code_to_category(code)
        if theirs == "Unknown":
            # pynetdicom gives up; Annex C still classes these (01xx/02xx are Failure) and
            # forbids the rest, which we report as Failure.
            assert category(code) == "Failure"
            if (code >> 8) in (0x01, 0x02):
                differ.append(code)
            continue
        assert category(code) == theirs, f"0x{code:04X}"
    # pynetdicom leaves unassigned 01xx/02xx codes "Unknown"; PS3.7 Annex C makes them Failure
    assert 0x0101 in differ and 0x0214 in differ


def test_meanings_cover_pynetdicom_codes() -> None:
    """Every code pynetdicom knows has a real meaning for its service (not the fallback)."""
    tables = _pynetdicom_tables()
    n_ops = ("N-CREATE", "N-SET", "N-GET", "N-ACTION", "N-EVENT-REPORT")
    per_table: dict[str, tuple[tuple[str, ...], str | None]] = {
        "GENERAL_STATUS": (COMMANDS, None),
        "STORAGE_SERVICE_CLASS_STATUS": (("C-STORE",), None),
        "QR_FIND_SERVICE_CLASS_STATUS": (("C-FIND",), None),
        "QR_MOVE_SERVICE_CLASS_STATUS": (("C-MOVE",), None),
        "QR_GET_SERVICE_CLASS_STATUS": (("C-GET",), None),
        "MODALITY_WORKLIST_SERVICE_CLASS_STATUS": (("C-FIND",), MWL),
        "UNIFIED_PROCEDURE_STEP_SERVICE_CLASS_STATUS": (("C-FIND", *n_ops), UPS_PUSH),
        "PRINT_JOB_MANAGEMENT_SERVICE_CLASS_STATUS": (n_ops, FILM_SESSION),
        "MEDIA_CREATION_MANAGEMENT_SERVICE_CLASS_STATUS": (n_ops, MEDIA_CREATION),
        "RELEVANT_PATIENT_SERVICE_CLASS_STATUS": (("C-FIND",), RELEVANT_PATIENT),
        "APPLICATION_EVENT_LOGGING_SERVICE_CLASS_STATUS": (n_ops, "1.2.840.10008.1.40"),
        "RT_MACHINE_VERIFICATION_SERVICE_CLASS_STATUS": (n_ops, "1.2.840.10008.5.1.4.34.8"),
        "PROCEDURE_STEP_STATUS": (n_ops, MPPS),
        "NON_PATIENT_SERVICE_CLASS_STATUS": (("C-STORE",), None),
        "SUBSTANCE_ADMINISTRATION_SERVICE_CLASS_STATUS": (("C-FIND",), None),
        "STORAGE_COMMITMENT_SERVICE_CLASS_STATUS": (n_ops, STORAGE_COMMITMENT),
        # not covered: STORAGE_MANAGEMENT_SERVICE_CLASS_STATUS (0xB010), which falls back to
        # "Warning (unknown status 0xB010 ...)": still the right category.
    }
    for name, (commands, uid) in per_table.items():
        for code in tables[name]:
            texts = [meaning(code, cmd, uid) for cmd in commands]
            assert any("unknown status" not in t for t in texts), f"{name} 0x{code:04X}: {texts}"


# --- layering ---------------------------------------------------------------------------


def test_status_module_is_stdlib_only() -> None:
    tree = ast.parse(Path(st.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        else:
            continue
        for name in names:
            assert name.split(".")[0] in sys.stdlib_module_names, name
