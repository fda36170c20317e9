"""C-MOVE <-> sub-association links in the model, --json and the text report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dicomsniff.analysis.moves import MoveLinker
from dicomsniff.model import Association, Transaction

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"


def _analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", *args],
                          capture_output=True, text=True, cwd=ROOT, env={
                              "COLUMNS": "100", "PATH": "/usr/bin:/bin",
                              "PYTHONPATH": str(ROOT)})


def test_move_capture_links_both_ways_in_json():
    """movescu -> dcmqrscp: the archive opens #2 to MOVESCU for the C-STOREs (dcmtk peers)."""
    recs = [json.loads(x) for x in _analyze("--json", str(CAPTURES / "move.pcap"))
            .stdout.splitlines()]
    assocs = {r["id"]: r for r in recs if r["type"] == "association"}
    move = next(r for r in recs if r["type"] == "transaction" and r["command"] == "C-MOVE")
    assert move["sub_associations"] == [2]
    assert assocs[2]["move_transaction"] == move["id"]
    assert assocs[1]["move_transaction"] is None
    stores = [r for r in recs if r["type"] == "transaction" and r["command"] == "C-STORE"]
    assert stores and all(r["association"] == 2 for r in stores)


def test_move_capture_links_both_ways_in_text():
    out = _analyze(str(CAPTURES / "move.pcap")).stdout
    block1, block2 = out.split("\n#1 ", 1)[1].split("\n#2 ", 1)
    assert "sub-association #2" in block1
    assert "C-STOREs of C-MOVE txn 1" in block2.splitlines()[0]


def _assoc(aid: int, calling: str, called: str, client: str, server: str,
           start: float) -> Association:
    a = Association(aid, client, server, calling_ae=calling, called_ae=called, start=start)
    a.outcome = "established"
    return a


def _move(tid: int, a: Association, dest: str, ts: float) -> Transaction:
    t = Transaction(tid, a.id, "C-MOVE", 0x21, tid, 1, "requestor", move_destination=dest,
                    request_time=ts)
    a.transactions.append(t)
    return t


def test_linker_picks_the_outstanding_move_to_that_destination():
    link = MoveLinker()
    scu1 = _assoc(1, "WS1", "PACS", "10.0.0.1:5000", "10.0.0.9:104", 0.0)
    scu2 = _assoc(2, "WS2", "PACS", "10.0.0.2:5000", "10.0.0.9:104", 0.0)
    link.started(scu1)
    link.started(scu2)
    done = _move(1, scu1, "WS1", 0.1)
    done.status, done.status_category = 0, "Success"  # answered: no longer a candidate
    m1 = _move(2, scu1, "WS1", 1.0)
    m2 = _move(3, scu2, "WS2", 1.1)
    sub = _assoc(3, "PACS", "WS2", "10.0.0.9:40000", "10.0.0.2:11112", 1.2)
    link.started(sub)
    assert sub.move_transaction == 3 and m2.sub_associations == [3]
    assert m1.sub_associations == [] and done.sub_associations == []
    # Another SCP's association to WS1 is not m1's sub-association.
    other = _assoc(4, "OTHER", "WS1", "10.0.0.7:40000", "10.0.0.1:11112", 1.3)
    link.started(other)
    assert other.move_transaction is None and m1.sub_associations == []
    # The move SCP's own one is, even under another AE title (same host).
    sub1 = _assoc(5, "PACS-STORE", "WS1", "10.0.0.9:40001", "10.0.0.1:11112", 1.4)
    link.started(sub1)
    assert sub1.move_transaction == 2 and m1.sub_associations == [5]
    link.ended(scu1)
    late = _assoc(6, "PACS", "WS1", "10.0.0.9:40002", "10.0.0.1:11112", 9.0)
    link.started(late)
    assert late.move_transaction is None


def test_partial_dataset_counts_missing_bytes_as_export_does(tmp_path):
    """A data set with a TCP segment missing from the capture: the report and --json say how
    many bytes are missing, and the .partial.dcm export holds exactly the rest."""
    from captures import pcapfile as pf

    src = CAPTURES / "move.pcap"
    header, _ = pf.read_header(src)
    data = [s for s in pf.segments(src) if s.sport == 47050 and len(s.payload) == 1448]
    dropped = data[10]  # inside the first C-STORE's data set (past the A-ASSOCIATE-RQ)
    cut = tmp_path / "cut.pcap"
    pf.write(cut, header, (f for f in pf.frames(src) if f.number != dropped.frame))
    recs = [json.loads(x) for x in _analyze("--json", str(cut)).stdout.splitlines()]
    stores = [r for r in recs if r["type"] == "transaction" and r["command"] == "C-STORE"]
    partial = [r for r in stores if r["dataset_partial"]]
    assert len(partial) == 1 and partial[0]["dataset_missing"] == len(dropped.payload)
    assert all(r["dataset_missing"] == 0 for r in stores if not r["dataset_partial"])
    text = _analyze(str(cut)).stdout
    assert f"({len(dropped.payload)} B missing)" in text
    out = tmp_path / "objects"
    subprocess.run([sys.executable, "-m", "dicomsniff", "export-objects", str(cut), str(out)],
                   capture_output=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT),
                                                       "PATH": "/usr/bin:/bin"})
    files = list(out.glob("*.partial.dcm"))
    assert len(files) == 1
    raw = files[0].read_bytes()
    assert raw[128:132] == b"DICM" and raw[132:136] == b"\x02\x00\x00\x00"
    meta_len = int.from_bytes(raw[140:144], "little")
    written = len(raw) - 144 - meta_len
    assert written == partial[0]["dataset_bytes"] - partial[0]["dataset_missing"]
