"""Capture loss is not a protocol violation (issue 14).

Real dcmtk and pynetdicom runs recorded whole and, at the same time, with ``tcpdump -s 96``;
from the whole ones editcap dropped what a busy sensor drops (captures/lossy.py,
captures/hostile/lossy/index.json says what each file lost). The peers accepted every PDU:
nothing here may blame them. The loss is told once per side of an association, with what
the state machine says it carried, and cut records once per capture.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source, open_capture
from tests.clirun import run_cli

LOSSY = Path(__file__).resolve().parent.parent / "captures" / "hostile" / "lossy"
INDEX = json.loads((LOSSY / "index.json").read_text())
DAMAGED = sorted(name for name, info in INDEX.items() if "lost" in info)
# What a lost PDU makes a naive observer say about peers that did nothing wrong.
BLAME = {"UL-STATE-PDATA", "UL-STATE-AC", "UL-STATE-RP", "UL-STATE-SECOND-RQ",
         "UL-STATE-DATA-AFTER-RELEASE", "UL-AC-UNKNOWN-CONTEXT", "DIMSE-RSP-UNMATCHED",
         "DIMSE-NO-RESPONSE", "DIMSE-DATA-ORPHAN", "DIMSE-ASYNC-WINDOW", "UL-RESYNC",
         "ASSOC-CLOSED-NO-RELEASE", "DIMSE-SUBOPS-MISMATCH", "DIMSE-MOVE-NO-SUBASSOCIATION",
         "DIMSE-CONTEXT-NOT-ACCEPTED", "DIMSE-CANCEL-UNMATCHED", "NEG-ROLE-REPLY",
         "NEG-ROLE-NOT-NEGOTIATED", "WORKFLOW-COMMIT-NO-REPORT", "DIMSE-DUPLICATE-MESSAGE-ID",
         "DIMSE-RSP-MISMATCH"}
# What the state machine must name as probably lost, by variant.
CARRIED = {"no-rq": r"the A-ASSOCIATE-RQ", "no-ac": r"the A-ASSOCIATE-AC",
           "no-release-rq": r"the A-RELEASE-RQ", "no-request": r"-RQ \(message 2\)",
           "no-response": r"-RSP \(message \d+\)"}


def _path(name: str) -> Path:
    """A file of the lossy corpus, or the recording of captures/ it was derived from."""
    info = INDEX.get(name, {})
    return LOSSY.parent.parent.parent / info["from_path"] if "from_path" in info else (
        LOSSY / name)


def _whole(name: str) -> Path:
    """The whole recording a damaged file was made from."""
    info = INDEX[name]
    return LOSSY.parent.parent.parent / info["from_path"] if "from_path" in info else (
        LOSSY / info["from"])


def _analyze(name: str | Path) -> Analyzer:
    an = Analyzer()
    analyze_source(open_capture([str(name if isinstance(name, Path) else LOSSY / name)]), an)
    return an


@cache
def _tshark(name: str) -> list[tuple[int, int, int, str]]:
    """(frame, caplen, length on the wire, Info) of every frame, by tshark."""
    return [row[:4] for row in _tshark_segments(name)]


@cache
def _tshark_segments(name: str | Path) -> list[tuple[int, int, int, str, set[int], str]]:
    """The same, with the frames of the PDU a frame completes (``tcp.segment``) and its TCP
    stream."""
    path = name if isinstance(name, Path) else LOSSY / name
    out = subprocess.run(["tshark", "-r", str(path), "-d", "tcp.port==104,dicom",
                          "-d", "tcp.port==11112,dicom", "-d", "tcp.port==11113,dicom",
                          "-T", "fields", "-e", "frame.number",
                          "-e", "frame.cap_len", "-e", "frame.len", "-e", "_ws.col.Info",
                          "-e", "tcp.segment", "-e", "tcp.stream"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        n, cap, wire, info, segs, stream = (line.split("\t") + [""] * 6)[:6]
        made = {int(x) for x in segs.split(",") if x} or {int(n)}
        rows.append((int(n), int(cap), int(wire), info, made, stream))
    return rows


def _needs_tshark() -> None:
    try:
        subprocess.run(["tshark", "-v"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("tshark is not installed (CI installs it)")


@pytest.mark.parametrize("name", DAMAGED)
def test_loss_never_blames_the_peers(name: str) -> None:
    an = _analyze(name)
    blamed = [f"{f.code}: {f.message}" for f in an.findings
              if f.code in BLAME or f.severity == "error"]
    assert not blamed, blamed
    whole = _analyze(_whole(name))
    assert len(an.associations) == len(whole.associations) or name.endswith("-s54.pcap")


@pytest.mark.parametrize("name", [n for n in DAMAGED if "dropped_frames" in INDEX[n]])
def test_a_lost_segment_is_told_once_with_what_it_carried(name: str) -> None:
    an = _analyze(name)
    gaps = [f for f in an.findings if f.code == "TCP-GAP"]
    sides = [(f.association, f.message.split(":")[0]) for f in gaps]
    assert len(sides) == len(set(sides)), [f.message for f in gaps]  # once a side
    # (a 1% random drop may hit only ACKs, or a frame no association holds)
    assert gaps or "random" in INDEX[name]["lost"]
    for f in gaps:
        assert re.search(r"\d+ bytes missing from the capture in \d+ place", f.message)
        assert "not at fault" in f.message and f.severity == "warning"
    variant = name.split("-", 1)[1].removesuffix(".pcap")
    if variant in CARRIED:
        text = " ".join(f.message for f in gaps)
        assert re.search(CARRIED[variant], text), text


@pytest.mark.parametrize("name", [n for n in DAMAGED if "dropped_frames" in INDEX[n]])
def test_requests_kept_are_those_tshark_sees_outside_the_dropped_frames(name: str) -> None:
    """Oracle: tshark on the whole capture says which requests the dropped frames carried
    (a frame of the PDU that begins them: ``tcp.segment``); every other request is still a
    transaction, with the loss in between."""
    _needs_tshark()
    whole = _tshark_segments(_whole(name))
    dropped = set(INDEX[name]["dropped_frames"])
    rx = re.compile(r"\b([CN]-[A-Z]+(?:-[A-Z]+)?)-RQ ID=(\d+)")
    expect = len({(n, m) for n, _, _, info, made, _ in whole if not made & dropped
                  for m in rx.findall(info)})
    got = sum(len(a.transactions) for a in _analyze(name).associations)
    assert got == expect, (got, expect)


@pytest.mark.parametrize("name", [n for n in DAMAGED if re.search(r"-s(54|96)\.pcap$", n)])
def test_cut_records_are_reported_once_per_capture(name: str) -> None:
    an = _analyze(name)
    cut = [f for f in an.findings if f.code == "CAPTURE-TRUNCATED"]
    assert len(cut) == 1, [f.code for f in an.findings]
    assert not [f for f in an.findings if f.code == "CAPTURE-WARNING"]  # said once
    m = re.match(r"(\d+) record\(s\) cut by the capture's snapshot length \(at most (\d+) "
                 r"bytes kept of a packet\): (\d+) bytes on the wire were not captured "
                 r"\(frames ([\d, ]+)", cut[0].message)
    assert m, cut[0].message
    _needs_tshark()
    rows = _tshark(name)
    short = [(n, cap, wire) for n, cap, wire, _ in rows if cap < wire]
    assert int(m.group(1)) == len(short)  # tshark counts the same records
    assert int(m.group(2)) == max(cap for _, cap, _ in short)
    assert int(m.group(3)) == sum(wire - cap for _, cap, wire in short)
    assert [int(x) for x in re.findall(r"\d+", m.group(4))] == [n for n, _, _ in short][:5]
    for f in an.findings:  # one finding per side and association, never one per packet
        assert f.code in ("CAPTURE-TRUNCATED", "TCP-GAP", "CAPTURE-UNDECODED",
                          "PERF-DELAYED-ACK"), f"{f.code}: {f.message}"


def test_a_record_with_no_bytes_is_counted() -> None:
    """caplen 0 (what some sensors write for a packet they could not copy)."""
    an = Analyzer()
    frames = list(open_capture([str(LOSSY / "echo.pcap")]))
    for i, (ts, lt, buf, olen) in enumerate(frames, 1):
        if i == 8:  # the A-ASSOCIATE-AC's record, kept with no bytes
            an.feed_frame(i, ts, lt, b"", olen)
        else:
            an.feed_frame(i, ts, lt, buf, olen)
    an.finish()
    cut = [f for f in an.findings if f.code == "CAPTURE-TRUNCATED"]
    assert len(cut) == 1 and "1 record(s) with no bytes at all (caplen 0)" in cut[0].message
    assert not [f for f in an.findings if f.code in BLAME or f.severity == "error"]
    gap = [f for f in an.findings if f.code == "TCP-GAP"]
    assert len(gap) == 1 and "the A-ASSOCIATE-AC was probably among them" in gap[0].message


def test_the_cli_tells_the_loss_in_text_and_json() -> None:
    r = run_cli("analyze", str(LOSSY / "store-no-ac.pcap"), "--no-progress")
    assert r.code == 0, r.stderr
    assert "TCP-GAP" in r.stdout and "UL-STATE" not in r.stdout
    r = run_cli("analyze", str(LOSSY / "store-no-response.pcap"), "--json", "--no-progress")
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    lost = [x for x in recs if x.get("type") == "transaction" and x.get("response_lost")]
    assert len(lost) == 1 and lost[0]["status"] is None


# -- an answer captured before the segment it answers (a port mirror's two queues) -----------

REORDERED = sorted(name for name, info in INDEX.items() if "moved_frames" in info)


def _story(an: Analyzer) -> tuple:
    """What an analysis says about the peers: associations, their transactions (command,
    message ID, status, data set bytes, pending responses) and the codes of its findings
    (their figures may differ: the moved frames have later time stamps)."""
    return ([(a.calling_ae, a.called_ae, a.outcome, [(t.command, t.message_id, t.status,
                                                        t.dataset_bytes, t.pending)
                                                     for t in a.transactions])
             for a in an.associations], sorted(f.code for f in an.findings))


@pytest.mark.parametrize("name", REORDERED)
def test_an_answer_seen_before_what_it_answers_is_no_loss(name: str) -> None:
    """Each data segment is captured after the other side's segment that acknowledges it
    (captures/lossy.py reordered): nothing was lost, so the story is the whole capture's,
    with no TCP-GAP and no retransmission."""
    an = _analyze(name)
    assert not [f for f in an.findings if f.code.startswith("TCP-")], \
        [(f.code, f.message) for f in an.findings]
    assert _story(an) == _story(_analyze(INDEX[name]["from"]))


@pytest.mark.parametrize("name", REORDERED)
def test_tshark_reads_the_reordered_requests_only_when_told_to_reorder(name: str) -> None:
    """The oracle: tshark decodes every request of the reordered capture with
    tcp.reassemble_out_of_order, as in the whole one; without it, it misses those moved
    (they come as "spurious retransmissions" of bytes an answer already acknowledged)."""
    _needs_tshark()

    def requests(path: Path, *opts: str) -> set:
        out = subprocess.run(["tshark", "-r", str(path), "-d", "tcp.port==104,dicom",
                              "-d", "tcp.port==11112,dicom", *opts, "-T", "fields",
                              "-e", "_ws.col.Info"], capture_output=True, text=True,
                             check=True).stdout
        return set(re.findall(r"\b(A-ASSOCIATE request|C-[A-Z]+-RQ ID=\d+)", out))

    whole = requests(LOSSY / INDEX[name]["from"])
    assert requests(LOSSY / name, "-o", "tcp.reassemble_out_of_order:TRUE") == whole
    assert requests(LOSSY / name) < whole
