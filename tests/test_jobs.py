"""``analyze -j N`` (dicomsniff/parallel/local.py): worker processes, each analysing its share
of the connections, whose merged output is exactly what one process writes: the same JSON
Lines and the same report, byte for byte, on every capture under captures/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dicomsniff.cli import main
from dicomsniff.parallel.local import run_worker
from dicomsniff.parallel.options import (
    MIN_BYTES,
    MIN_RECORDS,
    SAMPLE_BYTES,
    Shape,
    decide,
    default_jobs,
    jobs_for,
    sample_shape,
)
from dicomsniff.parallel.shard import flow_shard
from dicomsniff.sources.merge import open_capture
from tests import builders as b
from tests import hostile_cases as h
from tests.fuzz.pcapwriter import write_pcap

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
EVERY = sorted(p for p in CAPTURES.rglob("*") if p.suffix in (".pcap", ".pcapng"))


def outputs(capsys, path: Path | str, jobs: int, *extra: str) -> tuple[str, str]:
    """The JSON Lines and the report of ``analyze -j jobs``."""
    code = main(["analyze", str(path), "--json", "-j", str(jobs), *extra])
    js = capsys.readouterr().out
    assert main(["analyze", str(path), "-j", str(jobs), "--all-contexts", *extra]) == code
    return js, capsys.readouterr().out


@pytest.mark.parametrize("path", EVERY, ids=lambda p: str(p.relative_to(CAPTURES)))
def test_two_workers_write_what_one_process_writes(path: Path, capsys) -> None:
    one = outputs(capsys, path, 1)
    assert one[0].rstrip().splitlines()[-1].startswith('{"type":"summary"')
    assert outputs(capsys, path, 2) == one


def _associations(path: Path, index: int, count: int) -> int:
    log = run_worker(open_capture(str(path)), index, count, {})
    return sum(1 for ev in log.events if ev[3] == "assoc")


def test_the_comparison_really_spreads_connections_over_workers() -> None:
    """Connections between the same two hosts go to different workers (the hash includes the
    ports), so the comparison above covers links made after the merge: C-MOVE and its
    sub-association, storage commitment across associations, the study journey."""
    spread = {p.name for p in EVERY
              if all(_associations(p, i, 2) for i in range(2))}
    for name in ("move.pcap", "journey-clean.pcap", "store-many-associations.pcap"):
        assert name in spread, name
    assert len(spread) >= 15


def test_connections_are_dealt_out_evenly_and_both_directions_go_together() -> None:
    from dicomsniff.parallel.shard import ConnectionFilter
    from dissectors.net import reverse_key

    keys = [bytes([10, 0, 0, 1, 10, 0, 0, 2]) + p.to_bytes(2, "big") + b"\x2b\x67"
            for p in range(40000, 40200)]
    filters = [ConnectionFilter(i, 2) for i in range(2)]
    for k in keys:  # both workers see the connections in the same order
        mine = [f.owns(k) for f in filters]
        assert sorted(mine) == [False, True]  # exactly one worker
        assert [f.owns(reverse_key(k)) for f in filters] == mine
    assert sum(filters[0].owns(k) for k in keys) == 100  # one pair of hosts, even shares
    # the hash beyond the dealt table: also one worker, both directions
    assert [flow_shard(k, 2) for k in keys] == [
        flow_shard(reverse_key(k), 2) for k in keys]


def _echo_on(port: int) -> list[bytes]:
    rq, ac = b.echo_exchange()
    c = b.TcpConversation(client=("192.0.2.1", port), server=("192.0.2.2", 104)).handshake()
    c.send(0, b.associate_rq(), mss=9000)
    c.send(1, b.associate_ac()).send(0, rq[len(b.associate_rq()):])
    c.send(1, ac[len(b.associate_ac()):])
    return c.close().frames


def test_ip_fragments_reach_the_worker_of_their_connection(tmp_path: Path, capsys) -> None:
    """Every worker is given every fragment; the datagram is analysed by its connection's
    worker only, and fragment findings are said once."""
    a, c = 50001, 50002  # dealt to worker 0 and worker 1
    frames: list[bytes] = []
    for port in (a, c):
        conv = _echo_on(port)
        rq = next(i for i, f in enumerate(conv) if len(f) > 100)  # the A-ASSOCIATE-RQ
        frames += conv[:rq] + h.ipv4_fragments(conv[rq], 3, overlap_with=b"X" * 200) + \
            conv[rq + 1:]
    frames += h.ipv4_fragments(_echo_on(a + 1000)[3], 3)[:1]  # never completed
    path = write_pcap(tmp_path / "frag.pcap", frames)
    one = outputs(capsys, path, 1)
    recs = [json.loads(line) for line in one[0].splitlines()]
    assert sum(r["type"] == "association" for r in recs) == 2
    codes = [r["code"] for r in recs if r["type"] == "finding"]
    assert codes.count("IP-FRAGMENT-CONFLICT") == 1 and "IP-FRAGMENT-INCOMPLETE" in codes
    assert outputs(capsys, path, 2) == one


def test_many_host_pairs_compressed_and_several_files(tmp_path: Path, capsys) -> None:
    """Ten captures moved onto ten host pairs and merged, also gzipped; and two sensors'
    files read as one capture: -j 2 and -j 3 write what one process writes."""
    from tests.test_parallel import hosts_apart

    path = hosts_apart(tmp_path)
    one = outputs(capsys, path, 1)
    assert outputs(capsys, path, 3) == one
    import gzip

    packed = tmp_path / "hosts.pcap.gz"  # each worker decompresses it itself
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert outputs(capsys, packed, 2) == one
    sensors = sorted(str(p) for p in (CAPTURES / "sensors").glob("*.pcap"))
    code = main(["analyze", *sensors, "--json", "-j", "1"])
    js = capsys.readouterr().out
    assert main(["analyze", *sensors, "--json", "-j", "2"]) == code
    assert capsys.readouterr().out == js


def test_standard_input_and_small_captures_use_one_process(tmp_path: Path) -> None:
    echo = str(CAPTURES / "echo.pcap")
    asked: list[int] = []

    def sample() -> Shape:
        asked.append(1)
        return Shape(3000, 500_000, 10)  # query-heavy

    assert jobs_for(None, [echo], MIN_BYTES - 1, sample) == 1  # below MIN_BYTES: no look
    assert not asked
    assert jobs_for(3, [echo], 24_000) == 3  # asked for: done (the tests above)
    assert jobs_for(4, ["-"], MIN_BYTES, sample) == 1  # standard input cannot be read twice
    with open(echo, "rb") as f:
        assert jobs_for(4, [f], MIN_BYTES) == 1  # nor can a stream
    assert not asked
    res = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", "-", "--json", "-j",
                          "2"], stdin=open(echo, "rb"), capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count('"type":"association"') == 1


def test_the_default_takes_workers_where_they_pay(monkeypatch) -> None:
    """Workers for many small records of several connections (query-heavy: the benchmark's
    query capture samples as about 98,000 records of 172 bytes on 5 connections); one process
    for bulk C-STORE traffic (1,277 bytes a record: one process walks it in C, every worker
    would read every byte), one connection, too few records, or an unreadable start; the free
    cores decide how many (docs/performance.md, "Which the default takes")."""
    monkeypatch.setenv("DICOMSNIFF_JOBS", "2")  # two free cores, whatever the load now
    query = Shape(1507, 262_192, 5)
    size = 18_624_972
    assert decide(None, ["q.pcap"], size, lambda: query) == (
        2, "about 98035 records of 173 bytes on 5+ connections; 2 core(s) free")
    assert jobs_for(None, ["b.pcap"], 134_960_814, lambda: Shape(259, 263_278, 4)) == 1
    assert decide(None, ["b.pcap"], size, lambda: Shape(259, 263_278, 4))[1] == (
        "records of 1016 bytes on average: bulk")
    assert decide(None, ["one.pcap"], size, lambda: Shape(1507, 262_192, 1))[1] == (
        "one TCP connection at its start")
    per = (query.captured + 16 * query.records) / query.records  # file bytes a record
    few = int((MIN_RECORDS - 1) * per)
    assert MIN_RECORDS - 3 <= query.estimate(few) < MIN_RECORDS
    assert jobs_for(None, ["q.pcap"], few, lambda: query) == 1
    assert jobs_for(None, ["q.pcap"], few + 2 * int(per), lambda: query) == 2
    assert jobs_for(None, ["q.pcap"], size, lambda: None) == 1  # damaged at its start
    assert jobs_for(None, ["q.pcap"], size) == 1  # nothing to look at
    assert jobs_for(2, ["b.pcap"], 134_960_814, lambda: Shape(259, 263_278, 4)) == 2
    monkeypatch.setenv("DICOMSNIFF_JOBS", "1")  # no core free
    assert jobs_for(None, ["q.pcap"], size, lambda: query) == 1


def test_the_sample_is_the_start_of_the_capture(tmp_path: Path) -> None:
    """What sample_shape reads: the records of the first SAMPLE_BYTES captured bytes, their
    bytes, their connections (both directions one; IPv6 too); gzipped files alike."""
    import gzip

    for name, records, connections in (("move.pcap", 150, 2), ("ipv6-store.pcap", 53, 1),
                                       ("store-concurrent.pcap", None, 3)):
        path = CAPTURES / name
        shape = sample_shape(str(path))
        assert shape is not None and shape.connections == connections, name
        cap = open_capture([str(path)])
        sizes = [len(p[2]) for p in cap]
        cap.close()
        if records is not None:  # the whole capture is under the budget
            assert (shape.records, shape.captured) == (records, sum(sizes)) == (
                len(sizes), sum(sizes))
        else:  # the first records up to the budget
            assert SAMPLE_BYTES <= shape.captured == sum(sizes[:shape.records])
            assert sum(sizes[:shape.records - 1]) < SAMPLE_BYTES
        packed = tmp_path / (name + ".gz")
        packed.write_bytes(gzip.compress(path.read_bytes()))
        assert sample_shape(str(packed)) == shape
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    assert sample_shape(str(bad)) is None


def test_the_free_cores_are_those_not_running_tasks_now(monkeypatch, tmp_path: Path) -> None:
    """Tasks running at this moment (/proc/loadavg's running count, this process one of
    them), not the minute's load average: a benchmark running one analysis after another
    keeps the average near one while the second core is idle."""
    import dicomsniff.parallel.options as options

    monkeypatch.delenv("DICOMSNIFF_JOBS", raising=False)
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("1.02 0.95 0.90 3/412 12345\n")
    assert options._busy(str(loadavg)) == 2  # two besides this one
    loadavg.write_text("1.02 0.95 0.90 1/412 12345\n")
    assert options._busy(str(loadavg)) == 0
    monkeypatch.setattr(options.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    for busy, free in ((0, 2), (1, 1), (2, 1), (0.4, 2)):
        monkeypatch.setattr(options, "_busy", lambda b=busy: b)
        assert default_jobs() == free
    monkeypatch.setenv("DICOMSNIFF_JOBS", "3")
    assert default_jobs() == 3


def test_analyze_decides_from_the_capture(monkeypatch, capsys, tmp_path: Path) -> None:
    """``analyze`` without -j samples its first file: the sample captures are small, so the
    floors are lowered here; a capture of small records on two connections gets workers (and
    writes what one process writes), bulk C-STOREs and one connection get one process."""
    import dicomsniff.parallel.options as options

    seen: list[int] = []
    decide_ = options.jobs_for

    def spy(*a, **k):
        n = decide_(*a, **k)
        seen.append(n)
        return n

    monkeypatch.setattr(options, "jobs_for", spy)
    monkeypatch.setattr(options, "MIN_BYTES", 0)
    monkeypatch.setattr(options, "MIN_RECORDS", 0)
    monkeypatch.setenv("DICOMSNIFF_JOBS", "2")
    for name, jobs in (("move.pcap", 2), ("storage-commitment-separate.pcap", 2),
                       ("store-concurrent.pcap", 1), ("store-large-pdu.pcap", 1),
                       ("echo.pcap", 1)):
        path = str(CAPTURES / name)
        assert main(["analyze", path, "--json"]) in (0, 1)
        default = capsys.readouterr().out
        assert seen.pop() == jobs, name
        assert main(["analyze", path, "--json", "-j", "1"]) in (0, 1)
        assert capsys.readouterr().out == default
    sensors = sorted(str(p) for p in (CAPTURES / "sensors").glob("*.pcap"))
    assert main(["analyze", *sensors, "--json"]) in (0, 1)  # several files: the first sampled
    capsys.readouterr()
    assert seen.pop() == (2 if options.sample_shape(sensors[0]).why_one(1 << 30) is None
                          else 1)


def test_workers_walk_the_bulk_runs_of_their_own_connections(monkeypatch, capsys) -> None:
    """-j workers hand their connections' bulk runs to the compiled walker, as one process
    does (parallel/local.py ``_WalkedRun``): the walker takes most records of the stores, the
    filter still numbers every frame where it is in the capture, and the records written
    are those of one process without the walker."""
    from dicomsniff.analysis import accel
    from tests.test_accel import Counting

    for name in ("store-large-pdu.pcap", "store-many-associations.pcap"):
        path = CAPTURES / name
        monkeypatch.setattr(accel, "walk", None)
        pure = outputs(capsys, path, 1)
        frames = json.loads(pure[0].rstrip().splitlines()[-1])["frames"]
        walker = Counting()
        monkeypatch.setattr(accel, "walk", walker)
        logs = [run_worker(open_capture(str(path)), i, 2, {}) for i in range(2)]
        assert walker.records > frames // 5, (name, walker.records, frames)
        for log in logs:
            assert log.stats["frames"] == frames == log.filt.frame, name
        assert sum(log.filt.kept for log in logs) >= frames, name  # shared: to both
        assert outputs(capsys, path, 2) == pure, name  # the forked workers walk too


def test_bad_job_counts_and_live_are_refused_in_one_line() -> None:
    for bad in ("0", "-2", "two"):
        res = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze",
                              str(CAPTURES / "echo.pcap"), "-j", bad], capture_output=True,
                             text=True, check=False)
        assert res.returncode == 2 and "-j" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze",
                          str(CAPTURES / "echo.pcap"), "-j", "2", "--dask", "local"],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 2 and "choose one" in res.stderr
    for cmd in (["live", "-i", "lo"], ["tui", str(CAPTURES / "echo.pcap")]):
        res = subprocess.run([sys.executable, "-m", "dicomsniff", *cmd, "-j", "2"],
                             capture_output=True, text=True, check=False)
        assert res.returncode == 2 and "-j" in res.stderr and "Traceback" not in res.stderr


def _resident(size: int):
    """``size`` bytes surely made resident: fresh anonymous pages, each written (a bytearray
    may come from heap memory freed earlier in the process, already resident, when earlier
    tests raised the allocator's mmap threshold)."""
    import mmap

    m = mmap.mmap(-1, size)
    for i in range(0, size, mmap.PAGESIZE):
        m[i] = 1
    return m


def test_workers_past_their_memory_cap_give_way_to_one_process(monkeypatch, capsys) -> None:
    """A worker holds its records until the merge; past MAX_WORKER_RSS_KB the capture is
    analysed by one process instead, which streams: same output, a line on stderr."""
    from dicomsniff.parallel import local

    path = CAPTURES / "store-many-associations.pcap"
    one = outputs(capsys, path, 1)
    monkeypatch.setattr(local, "MAX_WORKER_RSS_KB", 1 << 10)
    monkeypatch.setattr(local, "_CHECK_EVERY", 1)
    real = local.run_worker
    held: list = []

    def holding(capture, index, count, config, *a, **kw):  # 2 MiB more per association
        def setup(an) -> None:
            an.on_association.append(lambda _a: held.append(_resident(2 << 20)))

        config = {**config, "setup": [*config.get("setup", ()), setup]}
        return real(capture, index, count, config, *a, **kw)

    monkeypatch.setattr(local, "run_worker", holding)
    code = main(["analyze", str(path), "--json", "-j", "2"])
    held.clear()
    got = capsys.readouterr()
    assert code == 0 and got.out == one[0]
    assert "-j 2: a worker's records passed" in got.err and "one process" in got.err


def test_the_parents_share_is_kept_unpickled_up_to_its_own_cap(monkeypatch, capsys) -> None:
    """The parent's own share (worker 0) keeps its ended associations as objects (nothing to
    unpickle at the merge) while it has grown less than LIVE_KB, then pickles them as the
    other workers do: the same records either way, and past the cap nothing more is kept."""
    from dicomsniff.parallel import local

    path = CAPTURES / "store-many-associations.pcap"  # 5 associations: shares of 3 and 2
    one = outputs(capsys, path, 1)
    seen: dict[str, tuple[int, int]] = {}
    real = local.run_worker

    def noting(capture, index, count, config, *a, **kw):
        log = real(capture, index, count, config, *a, **kw)
        if index == 0:
            seen[mode] = (len(log.blobs), log.ended)
        return log

    monkeypatch.setattr(local, "run_worker", noting)
    monkeypatch.setattr(local, "_CHECK_EVERY", 1)
    for mode, cap in (("live", 1 << 30), ("past the cap", -1)):
        monkeypatch.setattr(local, "LIVE_KB", cap)
        assert outputs(capsys, path, 2) == one, mode
    assert seen["live"] == (0, 3)  # none pickled
    assert seen["past the cap"] == (2, 3)  # the first kept (the cap is checked after it)


def test_the_memory_cap_counts_what_the_task_added_not_the_process_peak(monkeypatch) -> None:
    """A long-lived Dask worker (or a parent that once read something big) is not over its
    cap for ever: the cap is on the growth of the resident size since the task began. A
    process that peaked 48 MiB above where it is now analyses under a 32 MiB cap; a task
    that holds more than 32 MiB (here: 12 MiB per association, on a hook of its own) gives
    way."""
    from dicomsniff.parallel import local

    path = CAPTURES / "store-many-associations.pcap"  # 5 associations
    block = bytearray(b"\x01") * (48 << 20)  # written: resident
    del block  # a large block is unmapped when freed: the peak stays, the size falls
    assert local._maxrss_kb() - local._rss_kb() > 32 << 10
    monkeypatch.setattr(local, "MAX_WORKER_RSS_KB", 32 << 10)
    monkeypatch.setattr(local, "_CHECK_EVERY", 1)
    log = run_worker(open_capture(str(path)), 0, 1, {})
    assert sum(ev[3] == "assoc" for ev in log.events) == 5  # checked at each one

    held: list = []

    def hold(an) -> None:
        an.on_association.append(lambda a: held.append(_resident(12 << 20)))

    with pytest.raises(local.TooBig, match="passed 32 MiB"):
        run_worker(open_capture(str(path)), 0, 1, {"setup": [hold]})
    assert 3 <= len(held) < 5  # it gave up as the growth passed the cap, not at the end
    held.clear()


def test_a_failing_worker_is_one_line(monkeypatch, capsys) -> None:
    """A worker that cannot do its share (here: the capture cannot be opened again) stops the
    run with one line and exit status 2, never a traceback."""
    from dicomsniff.sources import merge
    from dicomsniff.sources.capture import CaptureError

    real = merge.open_capture
    calls = []

    def second_fails(*a, **kw):
        calls.append(1)
        if len(calls) > 1:
            raise CaptureError("gone")
        return real(*a, **kw)

    monkeypatch.setattr(merge, "open_capture", second_fails)
    code = main(["analyze", str(CAPTURES / "move.pcap"), "--json", "-j", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "-j 2: a worker failed: CaptureError: gone" in err
    assert "Traceback" not in err


def test_connections_open_at_the_end_close_in_the_order_they_opened(tmp_path, capsys) -> None:
    """At the end of the capture one engine closes what is still open oldest first (the order
    the connections were registered, not the order their associations began): A's SYN comes
    before B's, B's A-ASSOCIATE-RQ before A's, neither ends. Dealt to different workers, the
    merge must still write A first."""
    rq, ac = b.echo_exchange()
    conv = {}
    for port in (50001, 50002):  # dealt to worker 0 and worker 1
        c = b.TcpConversation(client=("192.0.2.1", port), server=("192.0.2.2", 104))
        conv[port] = c.handshake()
    frames = list(conv[50001].frames) + list(conv[50002].frames)
    for port in (50002, 50001):
        c = conv[port]
        n = len(c.frames)
        c.send(0, b.associate_rq()).send(1, b.associate_ac())
        frames += c.frames[n:]
    path = write_pcap(tmp_path / "open.pcap", frames)
    one = outputs(capsys, path, 1)
    recs = [json.loads(line) for line in one[0].splitlines()]
    assert [r["client"] for r in recs if r["type"] == "association"] == [
        "192.0.2.1:50001", "192.0.2.1:50002"]
    assert outputs(capsys, path, 2) == one


@pytest.mark.parametrize("cut", [24, 1000, 30_000])
def test_an_empty_or_damaged_capture_is_told_as_one_process_tells_it(tmp_path, capsys,
                                                                     cut) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes((CAPTURES / "store-concurrent.pcap").read_bytes()[:cut])
    got = []
    for jobs in ("1", "2"):
        code = main(["analyze", str(path), "--json", "-j", jobs])
        got.append((code, capsys.readouterr()))
    assert got[0] == got[1]
    assert got[0][0] == (0 if cut == 24 else 3)


def test_the_store_holds_what_one_process_stores(tmp_path) -> None:
    duckdb = pytest.importorskip("duckdb")
    files = [str(CAPTURES / "store-concurrent.pcap"), str(CAPTURES / "move.pcap")]
    tables = []
    for jobs in ("1", "2"):
        db = tmp_path / f"j{jobs}.duckdb"
        assert main(["analyze", *files, "-j", jobs, "--db", str(db), "-o",
                     str(tmp_path / "report.txt")]) == 0
        con = duckdb.connect(str(db), read_only=True)
        got = {}
        for t in ("associations", "transactions", "findings"):
            cols = [d[0] for d in con.execute(f"SELECT * FROM {t} LIMIT 0").description
                    if d[0] != "run_id"]
            quoted = ", ".join(f'"{c}"' for c in cols)
            got[t] = con.execute(f"SELECT {quoted} FROM {t} ORDER BY ALL").fetchall()
        con.close()
        tables.append(got)
    assert tables[0] == tables[1] and len(tables[0]["associations"]) == 5


@pytest.mark.parametrize("extra", [
    ("--findings-only",), ("--csv", "transactions"), ("--csv", "findings"),
    ("--ae", "ARCHIVE", "--status", "success"), ("--since", "+0.5s"), ("--command", "C-STORE"),
])
def test_selections_and_csv_are_those_of_one_process(capsys, extra) -> None:
    files = [str(CAPTURES / "move.pcap"), str(CAPTURES / "store-concurrent.pcap")]
    got = []
    for jobs in ("1", "2"):
        code = main(["analyze", *files, "-j", jobs, *extra])
        got.append((code, capsys.readouterr().out))
    assert got[0] == got[1] and got[0][1].strip()


def test_an_interrupted_run_says_what_it_reports(monkeypatch, capsys) -> None:
    """Ctrl-C before a worker could begin: the workers are stopped, and nothing of theirs
    is reported (there is no whole set of logs to merge); stderr says so, exit status 130."""
    from dicomsniff.parallel import local

    real = local.run_worker

    def interrupted_here(capture, index, *a, **kw):
        if index == 0:  # the parent's own share
            raise KeyboardInterrupt
        return real(capture, index, *a, **kw)

    monkeypatch.setattr(local, "run_worker", interrupted_here)
    import signal

    before = signal.getsignal(signal.SIGTERM)
    try:  # an interrupted analyze leaves SIGTERM ignored (it is about to exit)
        code = main(["analyze", str(CAPTURES / "move.pcap"), "--json", "-j", "2"])
    finally:
        signal.signal(signal.SIGTERM, before)
    got = capsys.readouterr()
    assert code == 130
    assert "-j 2 reports nothing: the run was stopped before" in got.err
    assert '"interrupted":true' in got.out.splitlines()[-1]


SEVERAL = [CAPTURES / n for n in ("move.pcap", "store-concurrent.pcap", "mpps.pcap",
                                   "store-many-associations.pcap", "find-cancel.pcap",
                                   "get.pcap", "worklist.pcap", "abort-mid-transfer.pcap")]


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_an_interrupted_run_reports_what_the_workers_read(monkeypatch, capsys,
                                                          signum: str) -> None:
    """A real signal as a worker's third association ends: SIGINT in the forked worker
    alone (Ctrl-C reaches each process of the terminal's group, each at its own point),
    SIGTERM in the parent, which passes it on. Each worker stops reading, ends its
    connections as the end of a capture would, and sends what it read; the report covers
    that, as -j 1 reports what it read (issue 14)."""
    import os
    import signal

    from dicomsniff.parallel import local

    sig = getattr(signal, signum)
    files = [str(p) for p in SEVERAL]
    assert main(["analyze", *files, "--json", "-j", "1"]) == 0
    whole = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    by_first = {r["first_frame"]: r for r in whole if r["type"] == "association"}
    real = local.run_worker

    def stop_at_third(capture, index, count, config, *a, **kw):
        ended = []

        def setup(an) -> None:
            def third(_a) -> None:
                ended.append(1)
                if len(ended) == 3 and (index == 0) == (sig == signal.SIGTERM):
                    os.kill(os.getpid(), sig)

            an.on_association.append(third)

        config = {**config, "setup": [*config.get("setup", ()), setup]}
        return real(capture, index, count, config, *a, **kw)

    monkeypatch.setattr(local, "run_worker", stop_at_third)
    before = signal.getsignal(signal.SIGTERM)
    try:
        code = main(["analyze", *files, "--json", "-j", "2"])
    finally:
        signal.signal(signal.SIGTERM, before)
    got = capsys.readouterr()
    assert code == (130 if sig == signal.SIGINT else 128 + signal.SIGTERM), got.err
    assert "the report covers what the 2 workers read: the first" in got.err
    recs = [json.loads(x) for x in got.out.splitlines()]
    assert recs[-1]["type"] == "summary" and recs[-1]["interrupted"] is True
    assocs = [r for r in recs if r["type"] == "association"]
    # the signalled worker's three (or more: those still open when it stopped), the other's
    # share as far as it read; not all
    assert 3 <= len(assocs) < len(by_first)
    released = [r for r in assocs if r["outcome"] == "released"]
    assert len(released) >= 2
    for r in released:  # what was read is told as one process tells it (ids aside)
        one = by_first[r["first_frame"]]
        assert {k: v for k, v in r.items() if k not in ("id", "move_transaction")} == {
            k: v for k, v in one.items() if k not in ("id", "move_transaction")}


def test_records_cut_by_the_snapshot_length_are_counted_over_every_worker(
        tmp_path: Path, capsys) -> None:
    """Each worker counts the cut records of its own connections; the one CAPTURE-TRUNCATED
    finding sums them, as one process counts them all."""
    frames = [(ts, bytes(buf)) for ts, _lt, buf, _ in open_capture(
        str(CAPTURES / "store-concurrent.pcap"))]
    cut = [(ts, f[:96], len(f)) for ts, f in frames]
    path = write_pcap(tmp_path / "concurrent-s96.pcap", cut)
    want = sum(1 for _, f in frames if len(f) > 96)
    one = outputs(capsys, path, 1)
    assert outputs(capsys, path, 2) == one
    found = [json.loads(x) for x in one[0].splitlines()
             if '"CAPTURE-TRUNCATED"' in x]
    assert len(found) == 1 and found[0]["message"].startswith(f"{want} record(s) cut")
