"""Upper Layer field values in words (PS3.8 9.3, PS3.7 D.3.3.7)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from dissectors.ul import reasons as rs
from dissectors.ul.reasons import (
    PDU_TYPE_NAMES,
    abort_hint,
    abort_reason,
    abort_source,
    context_result,
    context_result_hint,
    pdu_type_name,
    reject_hint,
    reject_reason,
    reject_result,
    reject_source,
    user_identity_type,
)

ODD_VALUES = (-1, 9, 255, 0x10000, None, "1", 1.0, [1], b"\x01")


def test_pdu_type_names() -> None:
    assert PDU_TYPE_NAMES == {
        0x01: "A-ASSOCIATE-RQ",
        0x02: "A-ASSOCIATE-AC",
        0x03: "A-ASSOCIATE-RJ",
        0x04: "P-DATA-TF",
        0x05: "A-RELEASE-RQ",
        0x06: "A-RELEASE-RP",
        0x07: "A-ABORT",
    }
    assert pdu_type_name(0x07) == "A-ABORT"
    assert pdu_type_name(0x08) == "unknown (8)"
    assert pdu_type_name(0) == "unknown (0)"


def test_reject_result_and_source() -> None:
    assert reject_result(1) == "rejected-permanent"
    assert reject_result(2) == "rejected-transient"
    assert reject_result(0) == "unknown (0)"
    assert reject_result(3) == "unknown (3)"
    assert reject_source(1) == "DICOM UL service-user"
    assert reject_source(2) == "DICOM UL service-provider (ACSE related function)"
    assert reject_source(3) == "DICOM UL service-provider (Presentation related function)"
    assert reject_source(4) == "unknown (4)"


@pytest.mark.parametrize(
    ("source", "reason", "expected"),
    [
        (1, 1, "no-reason-given"),
        (1, 2, "application-context-name-not-supported"),
        (1, 3, "calling-AE-title-not-recognized"),
        (1, 7, "called-AE-title-not-recognized"),
        (1, 4, "reserved (4)"),
        (1, 10, "reserved (10)"),
        (1, 11, "unknown (11)"),
        (1, 0, "unknown (0)"),
        (2, 1, "no-reason-given"),
        (2, 2, "protocol-version-not-supported"),
        (2, 3, "unknown (3)"),
        (3, 1, "temporary-congestion"),
        (3, 2, "local-limit-exceeded"),
        (3, 0, "reserved (0)"),
        (3, 7, "reserved (7)"),
        (3, 8, "unknown (8)"),
        (0, 1, "unknown (1)"),  # source 0 does not exist
        (9, 9, "unknown (9)"),
    ],
)
def test_reject_reason(source: int, reason: int, expected: str) -> None:
    assert reject_reason(source, reason) == expected


def test_reject_hints_are_specific() -> None:
    calling = reject_hint(1, 3)
    assert "calling AE title" in calling and "known AEs" in calling
    assert "called AE title" in reject_hint(1, 7)
    assert "retry later" in reject_hint(3, 1)
    assert "limit" in reject_hint(3, 2)
    assert "version" in reject_hint(2, 2)
    assert "transient" in reject_hint(3, 1, result=2)
    assert "permanent" in reject_hint(1, 3, result=1)
    hints = {reject_hint(s, r) for s, r in [(1, 1), (1, 2), (1, 3), (1, 7), (2, 1), (2, 2)]}
    assert len(hints) == 6  # one distinct hint per defined reason
    assert "unknown (9)" in reject_hint(9, 9)


def test_abort() -> None:
    assert abort_source(0) == "DICOM UL service-user (initiated abort)"
    assert abort_source(1) == "reserved"
    assert abort_source(2) == "DICOM UL service-provider (initiated abort)"
    assert abort_source(3) == "unknown (3)"
    expected = {
        0: "reason-not-specified",
        1: "unrecognized-PDU",
        2: "unexpected-PDU",
        3: "reserved (3)",
        4: "unrecognized-PDU-parameter",
        5: "unexpected-PDU-parameter",
        6: "invalid-PDU-parameter-value",
        7: "unknown (7)",
    }
    for reason, words in expected.items():
        assert abort_reason(reason) == words
        assert abort_reason(reason, source=2) == words
    # the reason is only significant when the service-provider aborted (PS3.8 Table 9-26)
    assert abort_reason(0, source=0).startswith("not significant")
    assert abort_reason(2, source=0).startswith("not significant")


def test_abort_hints() -> None:
    assert "application" in abort_hint(0, 0)
    assert abort_hint(0, 5) == abort_hint(0, 0)  # reason ignored for a service-user abort
    assert "not be speaking DICOM" in abort_hint(2, 1)
    assert "maximum PDU length" in abort_hint(2, 6)
    assert abort_hint(2, 3)  # reserved reason still gets a sentence
    assert abort_hint(1, 0)


def test_context_results() -> None:
    assert context_result(0) == "acceptance"
    assert context_result(1) == "user-rejection"
    assert context_result(2) == "no-reason (provider rejection)"
    assert context_result(3) == "abstract-syntax-not-supported (provider rejection)"
    assert context_result(4) == "transfer-syntaxes-not-supported (provider rejection)"
    assert context_result(5) == "unknown (5)"
    assert "1.2.840.10008.1.2" in context_result_hint(4)
    assert "SOP Class" in context_result_hint(3)
    assert "unknown (5)" in context_result_hint(5)


def test_user_identity_types() -> None:
    assert user_identity_type(1) == "username"
    assert user_identity_type(2) == "username and passcode"
    assert user_identity_type(3) == "Kerberos service ticket"
    assert user_identity_type(4) == "SAML assertion"
    assert user_identity_type(5) == "JSON Web Token (JWT)"
    assert user_identity_type(6) == "unknown (6)"
    assert user_identity_type(0) == "unknown (0)"


@pytest.mark.parametrize("odd", ODD_VALUES)
def test_never_raises(odd: object) -> None:
    one_arg = (
        pdu_type_name,
        reject_result,
        reject_source,
        abort_source,
        abort_reason,
        context_result,
        context_result_hint,
        user_identity_type,
    )
    for fn in one_arg:
        assert isinstance(fn(odd), str)  # type: ignore[operator]
    for a, b in ((odd, 1), (1, odd), (odd, odd)):
        assert isinstance(reject_reason(a, b), str)  # type: ignore[arg-type]
        assert isinstance(reject_hint(a, b), str)  # type: ignore[arg-type]
        assert isinstance(abort_hint(a, b), str)  # type: ignore[arg-type]
        assert isinstance(abort_reason(a, source=b), str)  # type: ignore[arg-type]


# --- cross-check against pynetdicom's PDU classes ---------------------------------------


def _words(text: str) -> str:
    """Compare wording loosely: letters only, US spelling."""
    text = text.lower().replace("recognised", "recognized")
    return re.sub(r"[^a-z]", "", text)


def test_reject_words_agree_with_pynetdicom() -> None:
    pdu = pytest.importorskip("pynetdicom.pdu")
    rj = pdu.A_ASSOCIATE_RJ()
    for result in (1, 2):
        rj.result = result
        assert _words(reject_result(result)) == _words(rj.result_str)
    for source in (1, 2, 3):
        rj.source = source
        for reason in range(0, 12):
            rj.reason_diagnostic = reason
            try:
                theirs = rj.reason_str
            except ValueError:  # pynetdicom raises for values it does not list
                assert reject_reason(source, reason).startswith("unknown")
                continue
            ours = reject_reason(source, reason)
            if theirs == "Reserved":
                assert ours == f"reserved ({reason})"
            else:
                assert _words(ours) == _words(theirs)


def test_abort_and_context_keys_agree_with_pynetdicom() -> None:
    pdu = pytest.importorskip("pynetdicom.pdu")
    items = pytest.importorskip("pynetdicom.pdu_items")
    ab = pdu.A_ABORT_RQ()
    ab.source = 2
    for reason in range(0, 10):
        ab.reason_diagnostic = reason
        known_to_them = ab.reason_str != "(no value available)"
        known_to_us = not abort_reason(reason, source=2).startswith("unknown")
        assert known_to_them == known_to_us, reason
        # wording differs for 0: PS3.8 Table 9-26 says "reason-not-specified", pynetdicom
        # says "No reason given" (the A-ASSOCIATE-RJ wording). We keep PS3.8's.
        if known_to_them and reason not in (0, 3):
            assert _words(abort_reason(reason)) == _words(ab.reason_str)
    ctx = items.PresentationContextItemAC()
    for result in range(0, 8):
        ctx.result_reason = result
        known_to_them = ctx.result_str != "(no value available)"
        assert known_to_them == (not context_result(result).startswith("unknown")), result
    uid = items.UserIdentitySubItemRQ()
    for kind in range(0, 8):
        uid.user_identity_type = kind
        known_to_them = uid.id_type_str != "(no value available)"
        assert known_to_them == (not user_identity_type(kind).startswith("unknown")), kind


def test_reasons_module_is_stdlib_only() -> None:
    tree = ast.parse(Path(rs.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        else:
            continue
        for name in names:
            assert name.split(".")[0] in sys.stdlib_module_names, name
