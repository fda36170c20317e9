"""The sample captures match their manifest: files, frames, and (via tshark) the DICOM inside.

The manifest's ground truth comes from the peers that made the traffic; these tests check that
each pcap really carries it, using tshark's DICOM dissector as an independent decoder, and that
the recorder itself still works (one tiny live recording, root only).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # captures/ is not an installed package
    sys.path.insert(0, str(ROOT))

from captures import pcapfile  # noqa: E402

CAPTURES = ROOT / "captures"
MANIFEST = json.loads((CAPTURES / "manifest.json").read_text())
ENTRIES = MANIFEST["captures"]
IDS = [e["file"] for e in ENTRIES]
TSHARK = shutil.which("tshark") or ("/usr/bin/tshark" if Path("/usr/bin/tshark").exists() else None)

# tshark 4.0 decodes a C-STORE-RSP command set that follows a deflated, JPEG or RLE data set on
# the same presentation context as garbage; those responses are counted from the raw PDUs.
TSHARK_MISREADS_RSP_AFTER_COMPRESSED = {"store-transfer-syntaxes.pcap"}

needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed (apt-get "
                                  "install tshark) - the Wireshark DICOM dissector is the oracle")


def entry_params():
    return pytest.mark.parametrize("entry", ENTRIES, ids=IDS)


# -- manifest and files ----------------------------------------------------------------------


@entry_params()
def test_file_exists_and_matches_manifest(entry: dict[str, Any]) -> None:
    path = CAPTURES / entry["file"]
    assert path.is_file(), f"{path} missing: re-record with captures/record.py"
    data = path.read_bytes()
    assert len(data) == entry["size_bytes"]
    assert hashlib.sha256(data).hexdigest() == entry["sha256"], "pcap and manifest out of sync"


@entry_params()
def test_frames_are_wire_sized(entry: dict[str, Any]) -> None:
    """Offloads were off: every frame fits the 1500-byte MTU (no 64 KB GSO super-packets)."""
    frames = list(pcapfile.frames(CAPTURES / entry["file"]))
    assert len(frames) == entry["frames"]
    assert max(f.orig_len for f in frames) <= 1514
    assert all(len(f.data) == f.orig_len for f in frames), "snaplen truncated a frame"


@entry_params()
def test_totals_are_consistent(entry: dict[str, Any]) -> None:
    assocs = entry["associations"]
    assert entry["totals"]["associations"] == len(assocs)
    ops = Counter(o["op"] for a in assocs for o in a["operations"])
    assert entry["totals"]["operations"] == dict(ops)
    for a in assocs:
        assert a["server_port"] in entry["server_ports"]
        assert a["outcome"] in {"released", "rejected", "aborted"}
        if a["outcome"] == "rejected":
            assert a["operations"] == [] and "reject" in a


def test_corpus_covers_the_required_cases() -> None:
    ports = {p for e in ENTRIES for p in e["server_ports"]}
    assert 104 in ports and ports - {104, 11112}, "need port 104 and an unusual port"
    assert any(e["ip_version"] == 6 for e in ENTRIES)
    assert any(e["starts_mid_association"] for e in ENTRIES)
    outcomes = {a["outcome"] for e in ENTRIES for a in e["associations"]}
    assert {"released", "rejected", "aborted"} <= outcomes
    ops = {o["op"] for e in ENTRIES for a in e["associations"] for o in a["operations"]}
    assert {"C-ECHO", "C-STORE", "C-FIND", "C-MOVE", "C-GET", "N-CREATE", "N-SET", "N-GET",
            "N-ACTION", "N-EVENT-REPORT"} <= ops
    syntaxes = {o.get("transfer_syntax") for e in ENTRIES for a in e["associations"]
                for o in a["operations"]}
    assert {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
            "1.2.840.10008.1.2.4.70"} <= syntaxes
    total = sum(e["size_bytes"] for e in ENTRIES)
    assert total < 10 * 2**20, f"sample corpus grew to {total} bytes; keep it a few MB"


def test_mid_association_capture_starts_inside_a_pdu() -> None:
    for e in (e for e in ENTRIES if e["starts_mid_association"]):
        segs = list(pcapfile.segments(CAPTURES / e["file"]))
        assert not any(s.syn for s in segs), "a mid-association capture must not see the SYN"
        first = next(s for s in segs if s.payload)
        assert first.frame == 1, "the capture should begin with a data segment"
        # A PDU would start with type 0x01..0x07 and a zero reserved byte; this is PDV value.
        assert e["cut"]["first_segment_offset_in_pdu"] > 12
        assert not (1 <= first.payload[0] <= 7 and first.payload[1] == 0
                    and int.from_bytes(first.payload[2:6], "big") < 1 << 20)


# -- tshark ------------------------------------------------------------------------------------


def _decode_as(entry: dict[str, Any]) -> list[str]:
    return [a for p in entry["server_ports"] for a in ("-d", f"tcp.port=={p},dicom")]


@cache
def _tshark_fields(file: str, fields: tuple[str, ...], display: str = "dicom") -> list[list[str]]:
    entry = next(e for e in ENTRIES if e["file"] == file)
    cmd = [TSHARK, "-r", str(CAPTURES / file), *_decode_as(entry), "-Y", display, "-T",
           "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


@cache
def _tshark_verbose(file: str) -> str:
    entry = next(e for e in ENTRIES if e["file"] == file)
    cmd = [TSHARK, "-r", str(CAPTURES / file), *_decode_as(entry), "-Y", "dicom", "-O", "dicom"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def _pdu_types(file: str) -> Counter[int]:
    types: Counter[int] = Counter()
    for (cell,) in _tshark_fields(file, ("dicom.pdu.type",)):
        types.update(int(v, 0) for v in cell.split(",") if v)
    return types


def _visible(op: dict[str, Any]) -> str:
    return op.get("visible", "complete")


@needs_tshark
@pytest.mark.tshark
@entry_params()
def test_tshark_sees_association_pdus(entry: dict[str, Any]) -> None:
    assocs = entry["associations"]
    seen = [a for a in assocs if a.get("start_visible", True)]
    types = _pdu_types(entry["file"])
    assert types[0x01] == len(seen), "A-ASSOCIATE-RQ count"
    assert types[0x02] == sum(a["outcome"] != "rejected" for a in seen), "A-ASSOCIATE-AC"
    assert types[0x03] == sum(a["outcome"] == "rejected" for a in seen), "A-ASSOCIATE-RJ"
    assert types[0x07] == sum(a["outcome"] == "aborted" for a in assocs), "A-ABORT count"
    released = sum(a["outcome"] == "released" for a in assocs)
    assert types[0x06] == released, "A-RELEASE-RP count"
    if not entry["starts_mid_association"]:  # tshark cannot resync a stream begun mid-PDU
        assert types[0x05] == released, "A-RELEASE-RQ count"

    rq = _tshark_fields(entry["file"], ("dicom.assoc.ae.calling", "dicom.assoc.ae.called"),
                        "dicom.pdu.type == 1")
    got = sorted((c.strip(), d.strip()) for c, d in rq)
    assert got == sorted((a["calling_ae"], a["called_ae"]) for a in seen)


@needs_tshark
@pytest.mark.tshark
@entry_params()
def test_tshark_sees_rejects_and_aborts(entry: dict[str, Any]) -> None:
    assocs = entry["associations"]
    rj = _tshark_fields(entry["file"], ("dicom.assoc.reject.result", "dicom.assoc.reject.source",
                                        "dicom.assoc.reject.reason"), "dicom.pdu.type == 3")
    want = [a["reject"] for a in assocs if a["outcome"] == "rejected"]
    assert sorted(tuple(int(v, 0) for v in row) for row in rj) == sorted(
        (r["result"], r["source"], r["reason"]) for r in want)

    ab = _tshark_fields(entry["file"], ("ip.src", "ipv6.src", "dicom.assoc.abort.source"),
                        "dicom.pdu.type == 7")
    aborted = [a for a in assocs if a["outcome"] == "aborted"]
    assert len(ab) == len(aborted)
    for row, a in zip(ab, aborted, strict=True):
        src = row[0] or row[1]
        assert src == a[a["aborted_by"]], "A-ABORT sent by the wrong side"
        assert int(row[2], 0) == a["abort"]["source"]


def _expected_dimse(entry: dict[str, Any]) -> tuple[Counter[str], Counter[int]]:
    """Command fields and response statuses tshark should show, from the ground truth."""
    cmds: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    for a in entry["associations"]:
        for o in a["operations"]:
            if _visible(o) == "complete":
                cmds[o["op"] + "-RQ"] += 1
                if "cancelled_after" in o:
                    cmds["C-CANCEL-RQ"] += 1
            if _visible(o) != "none" and o.get("completed", True):
                cmds[o["op"] + "-RSP"] += 1 + o.get("pending", 0)
                statuses[int(o["status"], 16)] += 1
                if o.get("pending"):
                    statuses[0xFF00] += o["pending"]
    return cmds, statuses


@needs_tshark
@pytest.mark.tshark
@entry_params()
def test_tshark_sees_the_dimse_messages(entry: dict[str, Any]) -> None:
    text = _tshark_verbose(entry["file"])
    got = Counter(re.findall(r"\(0000,0100\)\s+\d+ Command Field\s+(\S+)", text))
    status = Counter(int(v, 16) for v in
                     re.findall(r"\(0000,0900\)\s+\d+ Status\s+.*\((0x[0-9a-fA-F]+)\)", text))
    want, want_status = _expected_dimse(entry)
    if entry["file"] in TSHARK_MISREADS_RSP_AFTER_COMPRESSED:
        assert {k: v for k, v in got.items() if k.endswith("-RQ")} == {
            k: v for k, v in want.items() if k.endswith("-RQ")}
        # Responses, counted from the raw PDUs instead: command PDVs from the acceptor.
        rsp = _command_pdvs(entry, from_server=True)
        assert rsp == sum(v for k, v in want.items() if k.endswith("-RSP"))
        return
    if entry["starts_mid_association"]:
        # tshark never resyncs the direction that begins mid-PDU, so it shows none of the
        # later requests; the responses (other direction) must all be there.
        want = Counter({k: v for k, v in want.items() if k.endswith("-RSP")})
    assert dict(got) == dict(want)
    assert dict(status) == dict(want_status)


@needs_tshark
@pytest.mark.tshark
@entry_params()
def test_tshark_sees_the_sop_classes(entry: dict[str, Any]) -> None:
    """Every SOP Class UID the manifest names appears in a command set on the wire."""
    text = _tshark_verbose(entry["file"])
    seen = set(re.findall(r"\(0000,000[23]\)\s+\d+ (?:Affected|Requested) SOP Class UID\s+"
                          r"([0-9.]+)", text))
    want = {o["sop_class"] for a in entry["associations"] for o in a["operations"]
            if "sop_class" in o and _visible(o) != "none"}
    assert want <= seen


def _command_pdvs(entry: dict[str, Any], from_server: bool) -> int:
    path = CAPTURES / entry["file"]
    segs = list(pcapfile.segments(path))
    n = 0
    for syn in (s for s in segs if s.syn and not s.flags & 0x10):
        c, s = (syn.src, syn.sport), (syn.dst, syn.dport)
        data, _ = pcapfile.stream(segs, *((s, c) if from_server else (c, s)))
        n += sum(1 for u in pcapfile.pdus(data) for _x, ctl, _l in u.pdvs if ctl == 0x03)
    return n


@needs_tshark
@pytest.mark.tshark
def test_tshark_sees_transfer_syntaxes_and_refused_context() -> None:
    entry = next(e for e in ENTRIES if e["scenario"] == "store-transfer-syntaxes")
    (row,) = _tshark_fields(entry["file"], ("dicom.pctx.id", "dicom.pctx.result"),
                            "dicom.pdu.type == 2")
    got = dict(zip((int(v, 0) for v in row[0].split(",")),
                   (int(v, 0) for v in row[1].split(",")), strict=True))
    want = {pc["id"]: pc["result"] for pc in entry["associations"][0]["presentation_contexts"]}
    assert got == want
    # Each C-STORE goes on the context whose single transfer syntax is the data set's.
    ctx_of = {pc["transfer_syntax"]: pc["id"] for pc in
              entry["associations"][0]["presentation_contexts"]}
    rows = _tshark_fields(entry["file"], ("dicom.pdv.ctx", "dicom.pdv.flags"),
                          "dicom.pdv.flags == 3 && ip.src == 192.0.2.1")
    ctxs = [int(c.split(",")[0], 0) for c, _f in rows]
    ops = entry["associations"][0]["operations"]
    assert ctxs == [ctx_of[o["transfer_syntax"]] for o in ops]


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("scenario", ["store-small-pdu", "store-large-pdu"])
def test_tshark_sees_pdu_size_limits(scenario: str) -> None:
    entry = next(e for e in ENTRIES if e["scenario"] == scenario)
    limit = entry["associations"][0]["max_pdu"]["acceptor"]
    rows = _tshark_fields(entry["file"], ("dicom.pdu.type", "dicom.pdu.len", "dicom.max_pdu_len"))
    maxes = {int(r[2]) for r in rows if r[2]}
    assert maxes == {limit}
    pdata = [int(ln) for r in rows for t, ln in zip(r[0].split(","), r[1].split(","),
                                                     strict=True) if int(t, 0) == 4]
    assert max(pdata) <= limit
    image = 512 * 512 * 2
    assert len(pdata) >= image // limit, "the image should span many P-DATA PDUs"


@needs_tshark
@pytest.mark.tshark
def test_tshark_sees_ipv6() -> None:
    for entry in (e for e in ENTRIES if e["ip_version"] == 6):
        rows = _tshark_fields(entry["file"], ("ipv6.src", "ip.src"), "dicom.pdu.type == 1")
        assert rows and all(r[0] == entry["associations"][0]["requestor"] and not r[1]
                            for r in rows)


# -- live recording ------------------------------------------------------------------------


def _netns_skip_reason() -> str | None:
    from captures.netns import netns_available

    ok, why = netns_available()
    return None if ok else why


@pytest.mark.netns
def test_record_echo_live(tmp_path: Path) -> None:
    """Record the tiny echo scenario with a unique namespace prefix and check the pcap."""
    why = _netns_skip_reason()
    if why:
        pytest.skip(f"cannot record live: {why}")
    if not Path("/usr/bin/echoscu").exists():
        pytest.skip("dcmtk not installed (/usr/bin/echoscu)")
    from captures.record import record_scenario

    prefix = f"dst{uuid.uuid4().hex[:6]}"
    out = tmp_path / "echo.pcap"
    entry = record_scenario("echo", out, prefix=prefix, port=11112)
    frames = list(pcapfile.frames(out))
    assert frames and entry["frames"] == len(frames)
    segs = list(pcapfile.segments(out))
    assert any(s.syn and s.dport == 11112 for s in segs)
    data, _ = pcapfile.stream(segs, ("192.0.2.1", next(s.sport for s in segs if s.syn)),
                              ("192.0.2.2", 11112))
    assert [u.type for u in pcapfile.pdus(data)] == [0x01, 0x04, 0x05]  # RQ, C-ECHO, release
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert prefix not in names, "namespaces left behind"
    assert os.stat(out).st_uid == os.stat(tmp_path).st_uid
