"""Every sample capture analysed and compared with what the peers themselves did.

captures/manifest.json records, per capture, the associations and operations that the dcmtk and
pynetdicom peers performed (from their own logs and parameters). This is ground truth that
does not depend on any dissector, ours or Wireshark's.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
MANIFEST = CAPTURES / "manifest.json"
ENTRIES = json.loads(MANIFEST.read_text())["captures"] if MANIFEST.exists() else []


@cache
def analysed(name: str) -> Analyzer:
    a = Analyzer()
    analyze_source(CAPTURES / name, a)
    return a


def _port(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def _match(entry: dict, a: Analyzer) -> list[tuple[dict, object]]:
    """Pair each association of the truth with ours by AE titles and server port, in order."""
    ours = list(a.associations)
    pairs = []
    for truth in entry["associations"]:
        for x in ours:
            if (_port(x.server) == truth["server_port"]
                    and (entry.get("starts_mid_association")
                         or (x.calling_ae, x.called_ae) == (truth["calling_ae"],
                                                            truth["called_ae"]))):
                pairs.append((truth, x))
                ours.remove(x)
                break
        else:
            pytest.fail(f"{entry['file']}: no association {truth['calling_ae']} -> "
                        f"{truth['called_ae']} on port {truth['server_port']}")
    assert not ours, f"{entry['file']}: associations the peers did not make: {ours}"
    return pairs


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_capture_matches_what_the_peers_did(entry):
    a = analysed(entry["file"])
    assert a.stats.frames == entry["frames"]
    for truth, ours in _match(entry, a):
        where = f"{entry['file']}: {ours.calling_ae} -> {ours.called_ae}"
        assert ours.outcome == truth["outcome"], where
        txns = [t for t in ours.transactions if t.command != "C-CANCEL"]
        ops = truth["operations"]
        if entry.get("starts_mid_association"):
            assert ours.midstream
            ops = ops[len(ops) - len(txns):]  # only what followed the first captured packet
            assert txns, where
        assert [t.command for t in txns] == [o["op"] for o in ops], where
        for t, o in zip(txns, ops, strict=True):
            status = None if o["status"] in (None, "none") else int(o["status"], 16)
            assert t.status == status, f"{where}: {t.command} {t.message_id}"
            assert t.sent_by == o["invoker"], where
            if "pending" in o:
                assert t.pending == o["pending"], where
            if o.get("sop_instance"):
                assert t.sop_instance == o["sop_instance"], where
            if o.get("sop_class"):
                assert t.sop_class == o["sop_class"], where
            if o.get("transfer_syntax") and not ours.midstream:  # negotiation not captured
                assert t.transfer_syntax == o["transfer_syntax"], where
            if o.get("move_destination"):
                assert t.move_destination == o["move_destination"], where
            if o.get("sub_operations"):
                for k, v in o["sub_operations"].items():
                    assert t.suboperations and t.suboperations[k] == v, f"{where}: {k}"
            if t.status is not None and t.status_category not in ("Pending",):
                assert t.latency is not None and t.latency >= 0


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_capture_has_no_unexpected_errors(entry):
    """Healthy exchanges produce no error findings; failures produce the right ones."""
    a = analysed(entry["file"])
    errors = [f.code for f in a.findings if f.severity == "error"]
    outcomes = {x["outcome"] for x in entry["associations"]}
    expected = set()
    if "rejected" in outcomes:
        expected.add("ASSOC-REJECTED")
    if "aborted" in outcomes:
        expected.add("ASSOC-ABORTED")
    assert set(errors) <= expected, f"{entry['file']}: {errors}"
    for code in expected - {"ASSOC-ABORTED"}:  # a user abort is a warning, a provider's an error
        assert code in errors


def test_json_and_text_reports_for_every_capture(capsys):
    from dicomsniff.cli import main

    for entry in ENTRIES:
        path = str(CAPTURES / entry["file"])
        assert main(["analyze", path, "--json"]) == 0
        lines = capsys.readouterr().out.splitlines()
        recs = [json.loads(line) for line in lines]
        assert recs[-1]["type"] == "summary"
        n_assoc = sum(1 for r in recs if r["type"] == "association")
        assert n_assoc == len(entry["associations"])
        assert main(["analyze", path]) == 0
        out = capsys.readouterr().out
        assert "association(s)" in out
