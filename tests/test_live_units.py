"""``dicomsniff live`` without root: filters, sizes, helper counters, the capture writer, and the
live pipeline fed from the sample captures (``-r``) or from a fake capture helper.

The real thing (namespaces, dcmtk peers, tcpdump) is in test_live.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dicomsniff import cli
from dicomsniff.sources import interfaces, live
from dicomsniff.sources.capture import CaptureReader
from dicomsniff.sources.live import (
    CaptureStats,
    CaptureWriter,
    build_filter,
    parse_duration,
    parse_size,
    parse_stats,
)

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = sorted((ROOT / "captures").glob("*.pcap"))


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def canonical(recs: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in recs if r["type"] != "summary")


# -- small parts ------------------------------------------------------------------------------


def test_filter_is_tcp_narrowed_by_ports_hosts_and_expression() -> None:
    assert build_filter() == "tcp"
    assert build_filter(ports=[11112, 104, 104]) == "tcp and (port 104 or port 11112)"
    assert build_filter(hosts=["10.0.0.1", "10.1.0.0/16"]) == \
        "tcp and (host 10.0.0.1 or net 10.1.0.0/16)"
    assert build_filter(ports=[104], bpf=" not host 10.9.9.9 ") == \
        "tcp and (port 104) and (not host 10.9.9.9)"
    # On Ethernet the same again inside one 802.1Q tag, unless the user handles tags.
    assert build_filter(ports=[104], vlan=True) == \
        "(tcp and (port 104)) or (vlan and tcp and (port 104))"
    assert build_filter(bpf="vlan 20", vlan=True) == "tcp and (vlan 20)"


@pytest.mark.parametrize("text,value", [("4096", 4096), ("100MB", 100_000_000),
                                        ("512kB", 512_000), ("64MiB", 64 << 20),
                                        ("1.5G", 1_500_000_000), ("2 gib", 2 << 30)])
def test_sizes(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text,value", [("90", 90), ("30s", 30), ("15m", 900), ("1h", 3600),
                                        ("1h30m", 5400), ("0.5s", 0.5), ("2d", 172800)])
def test_durations(text: str, value: float) -> None:
    assert parse_duration(text) == value


@pytest.mark.parametrize("bad", ["", "MB", "-1", "0", "10 parsecs", "1h x"])
def test_bad_sizes_and_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_helper_counters_are_parsed() -> None:
    s = CaptureStats()
    # tcpdump on SIGUSR1 (one line), then at exit (three lines)
    assert parse_stats("tcpdump: 2 packets captured, 4 packets received by filter, "
                       "1 packet dropped by kernel", s)
    assert (s.captured, s.received, s.dropped) == (2, 4, 1)
    for line in ("10 packets captured", "12 packets received by filter",
                 "2 packets dropped by kernel", "3 packets dropped by interface"):
        assert parse_stats(line, s)
    assert (s.captured, s.received, s.dropped, s.if_dropped) == (10, 12, 2, 3)
    d = CaptureStats()
    assert parse_stats("Packets received/dropped on interface 'Loopback: lo': 20/5 "
                       "(pcap:4/dumpcap:0/flushed:0/ps_ifdrop:1) (80.0%)", d)
    assert parse_stats("Packets captured: 20", d)
    assert (d.captured, d.received, d.dropped, d.if_dropped) == (20, 20, 4, 1)
    assert not parse_stats("tcpdump: listening on eth0, link-type EN10MB (Ethernet)", d)


# -- the writer -------------------------------------------------------------------------------


def _packets(path: Path) -> list[tuple[float, int, bytes, int]]:
    return [(ts, lt, bytes(data), olen) for ts, lt, data, olen in CaptureReader(path)]


def _read_all(path: Path) -> tuple[list[tuple[float, int, bytes, int]], CaptureReader]:
    r = CaptureReader(path)
    pkts = [(ts, lt, bytes(data), olen) for ts, lt, data, olen in r]
    return pkts, r


@pytest.mark.parametrize("suffix", [".pcap", ".pcapng"])
def test_writer_round_trips_every_packet(tmp_path: Path, suffix: str) -> None:
    src = _packets(ROOT / "captures" / "move.pcap")
    out = tmp_path / f"out{suffix}"
    w = CaptureWriter(out, interface="eth7")
    w.open()
    for p in src:
        w.write(p)
    files = w.close(CaptureStats(received=len(src), dropped=0))
    assert [f.path for f in files] == [str(out)]
    got, reader = _read_all(out)
    assert reader.format == suffix[1:] and reader.error is None and not reader.warnings
    assert [(round(t * 1e6), lt, d, o) for t, lt, d, o in got] == \
        [(round(t * 1e6), lt, d, o) for t, lt, d, o in src]
    assert files[0].packets == len(src) and files[0].bytes == out.stat().st_size


@pytest.mark.parametrize("suffix", [".pcap", ".pcapng"])
def test_writer_empty_capture_is_a_valid_file(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"empty{suffix}"
    w = CaptureWriter(out)
    w.open()
    w.close(CaptureStats(received=0, dropped=0), linktype=113)
    got, reader = _read_all(out)
    assert got == [] and reader.error is None


def test_writer_rotates_by_size_and_keeps_a_ring(tmp_path: Path) -> None:
    src = _packets(ROOT / "captures" / "store-many-associations.pcap")
    w = CaptureWriter(tmp_path / "ring.pcapng", rotate_size=20_000, ring=3)
    w.open()
    for p in src:
        w.write(p)
    files = w.close()
    on_disk = sorted(tmp_path.iterdir())
    assert len(files) == 3 and [Path(f.path) for f in files] == on_disk
    assert w.deleted > 0
    kept: list[tuple[float, int, bytes, int]] = []
    for f in files:
        got, reader = _read_all(Path(f.path))
        assert reader.error is None and got, f.path
        assert f.packets == len(got)
        kept += got
    # the ring holds the newest packets, in order, none missing between its files
    assert kept == src[-len(kept):]
    for f in files[:-1]:
        assert 20_000 <= f.bytes < 20_000 + 1600


def test_size_rotation_leaves_no_empty_file_when_the_capture_ends_on_a_full_one(
        tmp_path: Path) -> None:
    """The packet that fills a file does not open the next one: the next packet does. A file
    opened eagerly stayed empty when the capture ended there, and in a ring it pushed out a
    file of packets (seen as an empty newest file of ``live --ring`` under load)."""
    now = time.time()
    pkt = (now, 1, memoryview(bytes(1000)), 1000)  # 1032 bytes as a pcapng block
    w = CaptureWriter(tmp_path / "r.pcapng", rotate_size=10_000, ring=3)
    w.open()
    w.write(pkt)
    header = w.files[-1].bytes - 1032
    per_file = -(-(10_000 - header) // 1032)  # the last of these crosses the limit
    for _ in range(3 * per_file - 1):
        w.write(pkt)
    files = w.close()
    assert [f.packets for f in files] == [per_file] * 3 and w.deleted == 0
    for f in files:
        got, reader = _read_all(Path(f.path))
        assert reader.error is None and len(got) == per_file


def test_writer_rotates_by_time(tmp_path: Path) -> None:
    now = time.time()
    pkt = bytes(60)
    w = CaptureWriter(tmp_path / "t.pcap", rotate_time=10)
    w.open()
    for i in range(30):
        w.write((now + i, 1, memoryview(pkt), 60))  # one packet a second
    files = w.close()
    assert [f.packets for f in files] == [10, 10, 10]
    for i, f in enumerate(files):
        got, _ = _read_all(Path(f.path))
        assert [round(p[0] - now) for p in got] == list(range(10 * i, 10 * i + 10))


def test_tee_goes_on_when_the_disk_fails() -> None:
    """/dev/full: the write error surfaces once, every packet still reaches the analysis."""
    w = CaptureWriter("/dev/full")
    w.open()
    now = time.time()
    pkts = [(now + i / 1000, 1, memoryview(bytes(1500)), 1500) for i in range(4000)]  # 6 MB

    def slowly():  # the disk thread reports asynchronously: give it time to fail
        for i, p in enumerate(pkts):
            if i % 500 == 0:
                time.sleep(0.02)
            yield p

    errors: list[str] = []
    assert list(live.tee(slowly(), w, errors.append)) == pkts
    assert len(errors) == 1 and "No space left on device" in errors[0]
    with pytest.raises(live.LiveError):
        w.close()


def test_writer_reports_an_unwritable_path(tmp_path: Path) -> None:
    w = CaptureWriter(tmp_path / "no" / "such" / "dir" / "x.pcap")
    with pytest.raises(live.LiveError, match="cannot write"):
        w.open()


# -- the command, from files ------------------------------------------------------------------


@pytest.mark.parametrize("capture", CAPTURES, ids=[c.name for c in CAPTURES])
def test_live_json_records_equal_analyze_json(capture: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Live writes each record as soon as it is final; the records are those of analyze."""
    code, out, _ = run(["analyze", str(capture), "--json"], capsys)
    assert code == 0
    want = records(out)
    code, out, err = run(["live", "-r", str(capture), "--json"], capsys)
    assert code == 0, err
    got = records(out)
    assert canonical(got) == canonical(want)
    summary = got[-1]
    assert summary["type"] == "summary" and summary["stopped_by"] == "end of input"
    assert summary["frames"] == want[-1]["frames"]
    assert summary["associations"] == want[-1]["associations"]
    assert summary["outcomes"] == want[-1]["outcomes"]
    assert summary["services"] == want[-1]["services"]


def test_live_lines_one_per_event(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["live", "-r", str(ROOT / "captures" / "move.pcap")], capsys)
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if re.match(r"\d\d:\d\d:\d\d\.\d{3}  #\d", ln)]
    assert sum(" C-STORE " in ln and "0x0000" in ln for ln in lines) == 4
    assert sum(" C-MOVE " in ln for ln in lines) == 1
    assert sum(" ASSOCIATE " in ln and "accepted" in ln for ln in lines) == 2
    assert sum(" RELEASED " in ln for ln in lines) == 2
    assert "2 association(s) (2 released); 5 transaction(s) (5 Success)" in out
    assert "\x1b[" not in out  # no colour codes when not a terminal


def test_live_lines_reject_abort_and_midstream(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["live", "-r", str(ROOT / "captures" / "associate-reject.pcap")], capsys)
    assert code == 0 and out.count("REJECTED by") == 2
    code, out, _ = run(["live", "-r", str(ROOT / "captures" / "abort-mid-transfer.pcap")],
                       capsys)
    assert code == 0 and "ABORTED" in out and "no response" in out
    code, out, _ = run(["live", "-r", str(ROOT / "captures" / "mid-association.pcap")], capsys)
    assert code == 0 and "already running when the capture started" in out


def test_live_ae_filter(capsys: pytest.CaptureFixture[str]) -> None:
    cap = str(ROOT / "captures" / "store-many-associations.pcap")
    code, out, _ = run(["live", "-r", cap, "--json"], capsys)
    everything = records(out)
    aes = sorted({r["calling_ae"] for r in everything if r["type"] == "association"})
    assert len(aes) > 1
    code, out, _ = run(["live", "-r", cap, "--json", "--ae", aes[0].lower()], capsys)
    assert code == 0
    got = records(out)
    assoc = [r for r in got if r["type"] == "association"]
    assert [a["calling_ae"] for a in assoc] == [aes[0]]
    assert {r["association"] for r in got if r["type"] == "transaction"} == {assoc[0]["id"]}
    assert got[-1]["ae_filter"] == [aes[0]] and got[-1]["ignored_associations"] == len(aes) - 1


def test_live_writes_what_it_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = ROOT / "captures" / "get.pcap"
    out_file = tmp_path / "copy.pcapng"
    code, out, _ = run(["live", "-r", str(cap), "--json", "-w", str(out_file)], capsys)
    assert code == 0
    summary = records(out)[-1]
    assert summary["files"] == [{"path": str(out_file), "packets": summary["frames"],
                                 "bytes": out_file.stat().st_size}]
    code, again, _ = run(["analyze", str(out_file), "--json"], capsys)
    assert canonical(records(again)) == canonical(records(out))


def test_live_disk_full_is_exit_3_and_the_analysis_goes_on(
        capsys: pytest.CaptureFixture[str]) -> None:
    cap = ROOT / "captures" / "store-large-pdu.pcap"
    code, out, err = run(["live", "-r", str(cap), "--json", "-w", "/dev/full"], capsys)
    assert code == 3
    assert "cannot write /dev/full: No space left on device" in err
    got = records(out)
    assert got[-1]["file_error"].startswith("cannot write /dev/full")
    assert sum(r["type"] == "transaction" for r in got) == 1


@pytest.mark.parametrize("argv,message", [
    (["live", "--tui", "--json", "-i", "lo"], "--tui and --json are two different outputs"),
    (["live", "--tui", "-r", "-"], "--tui reads the keyboard on standard input"),
    (["live", "--tui", "-i", "no-such-if0"], "no such interface: no-such-if0 (interfaces here:"),
    (["live", "--tui", "-r", "/no/such.pcap"], "/no/such.pcap"),
    (["live", "--tui", "-i", "lo", "-w", "/no/such/dir/x.pcap"], "cannot write /no/such/dir"),
    (["live"], "give an interface"),
    (["live", "-i", "lo", "-r", "x.pcap"], "give an interface"),
    (["live", "-i", "lo", "-w", "-"], "-w -"),
    (["live", "-i", "lo", "--rotate-size", "1MB"], "need -w"),
    (["live", "-i", "lo", "-w", "x.pcap", "--ring", "3"], "--ring needs"),
    (["live", "-i", "no-such-if0"], "no such interface: no-such-if0 (interfaces here:"),
])
def test_live_usage_errors_exit_2(argv: list[str], message: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert message in err and out == ""
    assert len(err.strip().splitlines()) == 1


def test_live_lists_interfaces_that_exist(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["live", "-i", "no-such-if0"], capsys)
    assert code == 2
    for name in os.listdir("/sys/class/net"):
        assert name in err


# -- a fake capture helper: stopping, counters, failure ---------------------------------------

FAKE_TCPDUMP = """\
import os, signal, sys, time
capture, drops, die = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "die"
stop = []
signal.signal(signal.SIGINT, lambda *a: stop.append(1))
signal.signal(signal.SIGUSR1, lambda *a: sys.stderr.write(
    f"tcpdump: 5 packets captured, 5 packets received by filter, {drops} packets dropped "
    "by kernel\\n"))
data = open(capture, "rb").read()
sys.stderr.write("tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length "
                 "262144 bytes\\n")
sys.stderr.flush()
out = sys.stdout.buffer
out.write(data)
out.flush()
if die:
    sys.stderr.write("tcpdump: pcap_loop: The interface disappeared\\n")
    sys.exit(1)
while not stop:
    time.sleep(0.02)
sys.stderr.write(f"42 packets captured\\n{42 + drops} packets received by filter\\n"
                 f"{drops} packets dropped by kernel\\n")
"""


@pytest.fixture
def fake_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def make(capture: Path, drops: int, die: bool = False) -> None:
        script = tmp_path / "tcpdump"
        script.write_text(f"#!/bin/sh\nexec {sys.executable} {tmp_path / 'fake.py'} "
                          f"{capture} {drops} {'die' if die else 'run'}\n")
        (tmp_path / "fake.py").write_text(FAKE_TCPDUMP)
        script.chmod(0o755)
        monkeypatch.setattr(interfaces, "find_helper",
                            lambda name: str(script) if name == "tcpdump" else None)
        monkeypatch.setattr(interfaces, "interface_exists", lambda iface: True)
        monkeypatch.setattr(live.HelperCapture, "grace", property(lambda self: 0.1))
    return make


def test_fake_helper_duration_drops_and_file(fake_helper, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    cap = ROOT / "captures" / "store-concurrent.pcap"
    fake_helper(cap, drops=7)
    out_file = tmp_path / "o.pcapng"
    t0 = time.monotonic()
    code, out, err = run(["live", "-i", "fake0", "--json", "--duration", "0.3", "--helper",
                          "tcpdump", "-w", str(out_file)], capsys)
    assert code == 0, err
    assert time.monotonic() - t0 < 5
    got = records(out)
    code2, want, _ = run(["analyze", str(cap), "--json"], capsys)
    drops = [r for r in got if r["type"] == "finding" and r["code"] == "CAPTURE-KERNEL-DROPS"]
    assert len(drops) == 1 and "7 packets" in drops[0]["message"]
    assert canonical([r for r in got if r not in drops]) == canonical(records(want))
    summary = got[-1]
    assert summary["kernel"] == {"captured": 42, "received": 49, "dropped": 7,
                                 "interface_dropped": None}
    assert summary["stopped_by"] == "duration" and summary["capture_helper"] == "tcpdump"
    assert "kernel dropped 7" in err
    # pcapng: every packet, then the interface statistics block with the drop count
    pkts, reader = _read_all(out_file)
    assert reader.error is None and len(pkts) == summary["frames"]
    data = out_file.read_bytes()
    isb = data.rfind(struct.pack("<I", 5) + data[-4:])
    assert isb > 0 and struct.pack("<HHQ", 5, 8, 7) in data[isb:]


def test_fake_helper_sigterm_stops_cleanly(fake_helper, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    fake_helper(ROOT / "captures" / "echo.pcap", drops=0)
    timer = __import__("threading").Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        code, out, err = run(["live", "-i", "fake0"], capsys)
    finally:
        timer.cancel()
    assert code == 0, err
    assert "stopped by SIGTERM" in out and "kernel: 0 dropped of 42 received" in out
    assert sum(" C-ECHO " in ln and "0x0000 Success" in ln for ln in out.splitlines()) == 1
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_fake_helper_dying_is_exit_3(fake_helper, capsys: pytest.CaptureFixture[str]) -> None:
    fake_helper(ROOT / "captures" / "echo.pcap", drops=0, die=True)
    code, out, err = run(["live", "-i", "fake0", "--json"], capsys)
    assert code == 3
    assert "The interface disappeared" in err
    got = records(out)
    assert any(r["type"] == "finding" and r["code"] == "CAPTURE-STOPPED" for r in got)
    assert [r["command"] for r in got if r["type"] == "transaction"] == ["C-ECHO"]
