"""Negotiation and DIMSE facts cross-checked with tshark's DICOM dissector.

The same :class:`~dicomsniff.conformance.facts.ConformanceBuilder` is fed twice: with the
associations dicomsniff's engine built, and with associations built from what tshark decoded
(tests/oracle: AE titles, presentation contexts as proposed and answered, max PDU,
implementation class UID and version name, A-ASSOCIATE-RJ, DIMSE commands matched by Message
ID). Every AE record must agree on what both decoders see. Role selection, extended
negotiation, user identity and the asynchronous window are not in the oracle's model, and
latencies are timing, not decoding: those are left out of the comparison.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from dicomsniff.conformance.facts import ConformanceBuilder
from dicomsniff.conformance.run import build_facts
from dicomsniff.conformance.views import ae_records
from dicomsniff.model import Association, PresentationContext, Side, Transaction
from dissectors.dimse.status import category

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.oracle.tshark import tshark_dicom  # noqa: E402

CONF = ROOT / "captures" / "conformance"
MANIFEST = {e["file"]: e for e in json.loads((CONF / "manifest.json").read_text())["captures"]}
# A few corpus captures with rejections, role selection and sub-associations as well.
CORPUS = {"associate-reject.pcap": [11112, 11113], "get.pcap": [11112],
          "move.pcap": [11112, 11113], "storage-commitment-separate.pcap": [11112, 11113]}
CASES = [(CONF / n, e["server_ports"]) for n, e in sorted(MANIFEST.items())] + \
        [(ROOT / "captures" / n, ports) for n, ports in CORPUS.items()]
TSHARK = shutil.which("tshark") or ("/usr/bin/tshark" if Path("/usr/bin/tshark").exists() else None)
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed (apt-get install "
                                  "tshark): the Wireshark DICOM dissector is the oracle")

_COMMAND = {0x0001: "C-STORE", 0x0010: "C-GET", 0x0020: "C-FIND", 0x0021: "C-MOVE",
            0x0030: "C-ECHO", 0x0100: "N-EVENT-REPORT", 0x0110: "N-GET", 0x0120: "N-SET",
            0x0130: "N-ACTION", 0x0140: "N-CREATE", 0x0150: "N-DELETE"}


def _from_tshark(pcap: Path, ports: list[int]) -> list[Association]:
    """Model associations from the oracle's connections (only what tshark decoded)."""
    out = []
    for n, conn in enumerate(tshark_dicom(pcap, ports).dicom_connections(), 1):
        if conn.starts_mid_association:
            continue
        a = Association(n, conn.client, conn.server, conn.calling_ae, conn.called_ae)
        a.request_frame = next((p.frame for p in conn.pdus if p.pdu_type == 1), None)
        a.accept_frame = next((p.frame for p in conn.pdus if p.pdu_type in (2, 3)), None)
        a.outcome = conn.outcome
        if conn.reject is not None:
            a.outcome, a.reason = "rejected", "(tshark)"
        a.requestor = Side(conn.requestor.max_pdu, conn.requestor.class_uid,
                           conn.requestor.version_name)
        if a.accept_frame is not None and conn.reject is None:
            a.acceptor = Side(conn.acceptor.max_pdu, conn.acceptor.class_uid,
                              conn.acceptor.version_name)
        for c in conn.contexts.values():
            a.contexts[c.id] = PresentationContext(c.id, c.abstract_syntax,
                                                   list(c.transfer_syntaxes), c.result,
                                                   c.transfer_syntax)
        for i, ex in enumerate(conn.exchanges()):
            req, final = ex.request, ex.final
            t = Transaction(i, n, _COMMAND.get(req.command_field, "?"), req.command_field,
                            req.message_id, req.context_id, req.sender,
                            sop_class=req.affected_sop_class or req.requested_sop_class)
            if final is not None and final.status is not None:
                t.status, t.status_category = final.status, category(final.status)
            a.transactions.append(t)
        out.append(a)
    return out


def _comparable(records: list[dict[str, Any]]) -> dict[str, Any]:
    keep = ("proposed", "accepted", "refused", "refused_by_peer", "accepted_by_peer", "used",
            "offered", "transfer_syntaxes_proposed", "transfer_syntaxes_accepted",
            "transfer_syntaxes_accepted_by_peer", "choices", "scu", "scp", "statuses")
    out = {}
    for r in records:
        out[r["ae_title"]] = {
            "addresses": r["addresses"], "hosts": r["hosts"],
            "implementations": r["implementations"], "as_requestor": r["as_requestor"],
            "as_acceptor": r["as_acceptor"], "max_pdu": r["max_pdu"],
            "services": {s["sop_class"]: {k: s[k] for k in keep} for s in r["services"]}}
    return out


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize(("pcap", "ports"), CASES, ids=[c[0].name for c in CASES])
def test_conformance_agrees_with_tshark(pcap: Path, ports: list[int]) -> None:
    ours, _ = build_facts([str(pcap)])
    builder = ConformanceBuilder(str(pcap))
    assocs = _from_tshark(pcap, ports)
    assert assocs, "tshark decoded no association: the check would check nothing"
    for a in assocs:
        builder.association(a)
    theirs = _comparable(ae_records(builder.facts))
    assert _comparable(ae_records(ours)) == theirs
    # and the check is not vacuous: the captures have proposals, answers and requests
    services = [s for ae in theirs.values() for s in ae["services"].values()]
    assert any(s["proposed"] for s in services)
    if pcap.name != "associate-reject.pcap":  # both of its associations were rejected
        assert any(s["accepted"] for s in services) and any(s["scp"] for s in services)
