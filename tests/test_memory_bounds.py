"""Memory bounded by caps, never by the length of an association or of a capture.

Structural, not timed: the number of live transaction objects an association holds stays under
its cap however many it carries (those reported are retired, handed to ``on_retire``), the
requests followed at once and the response frames listed are capped and the rest counted, the
rules remember a bounded number of associations, and what the writers produce is the same as
when nothing is retired. Captures are built from the PDUs of the real dcmtk echo recording
(``bench/scale.py``); the figures at 400,000 C-ECHOs and 80,000 associations are in
docs/performance.md (``python -m bench.scale``).
"""

from __future__ import annotations

import gc
import io
import json
import math
import random
from pathlib import Path

import pytest

from bench import scale
from dicomsniff.analysis.engine import Analyzer, Limits
from dicomsniff.analysis.rules.state import ASSOC_CAP, CaptureState
from dicomsniff.analysis.summary import EXACT_LATENCIES, Summary, _percentile, _Row
from dicomsniff.cli import main
from dicomsniff.model import Association, Transaction
from dicomsniff.sources.capture import CaptureReader

ROOT = Path(__file__).resolve().parent.parent


def _run(path: Path, limits: Limits, **hooks) -> Analyzer:
    a = Analyzer(limits=limits, keep=False)
    for name, cb in hooks.items():
        getattr(a, name).append(cb)
    with CaptureReader(str(path)) as r:
        a.consume(r)
    a.finish()
    return a


def test_a_long_association_keeps_at_most_its_cap(tmp_path: Path) -> None:
    pcap = tmp_path / "echoes.pcap"
    scale.write_echoes(pcap, 3000)
    cap = 100
    most = [0]
    retired: list[int] = []
    ended: list[Association] = []

    def live() -> int:
        return sum(1 for o in gc.get_objects() if type(o) is Transaction)

    gc.collect()
    before = live()  # left by anything that ran before in this process

    def seen(a: Association, t: Transaction) -> None:
        most[0] = max(most[0], len(a.transactions))
        # live Transaction objects: what the association holds, not what it carried
        if t.message_id % 500 == 0:
            gc.collect()
            most[0] = max(most[0], live() - before)

    _run(pcap, Limits(max_transactions=cap), on_transaction=seen,
         on_retire=lambda a, t: retired.append(t.id), on_association=ended.append)
    assert most[0] <= cap + 1  # the one just reported, before the retirement
    (a,) = ended
    assert a.transactions_retired + len(a.transactions) == 3000
    assert len(a.transactions) <= cap
    assert retired == sorted(retired) and len(retired) == a.transactions_retired  # in order
    assert a.to_record()["transactions"] == 3000


def _cli(*args: str) -> str:
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        main(list(args))
    return out.getvalue()


@pytest.mark.parametrize("fmt", [("--json",), ("--csv", "transactions"),
                                 ("--csv", "associations"), ("--json", "--command", "c-echo")])
def test_writers_give_the_same_output_when_transactions_are_retired(tmp_path: Path,
                                                                    fmt: tuple) -> None:
    pcap = tmp_path / "echoes.pcap"
    scale.write_echoes(pcap, 700)
    kept = _cli("analyze", *fmt, "--no-progress", "--max-transactions", "100000", str(pcap))
    retired = _cli("analyze", *fmt, "--no-progress", "--max-transactions", "50", str(pcap))
    assert retired == kept
    assert kept.count("C-ECHO") >= 700 or fmt[-1] == "associations"


def test_workers_keep_what_one_process_retires(tmp_path: Path) -> None:
    """-j: a worker ships its associations whole, so the merge has every transaction."""
    pcap = tmp_path / "echoes.pcap"
    scale.write_echoes(pcap, 700)
    one = _cli("analyze", "--json", "--no-progress", "-j", "1", "--max-transactions", "50",
               str(pcap))
    two = _cli("analyze", "--json", "--no-progress", "-j", "2", "--max-transactions", "50",
               str(pcap))
    assert two == one and one.count('"type":"transaction"') == 700


def test_summary_counts_retired_transactions(tmp_path: Path) -> None:
    pcap = tmp_path / "echoes.pcap"
    scale.write_echoes(pcap, 500)
    tables = []
    for cap in (10, 100000):
        s = Summary()
        _run(pcap, Limits(max_transactions=cap), on_association=s.add, on_retire=s.retire)
        tables.append(s.table())
    assert tables[0] == tables[1] and tables[0][0]["count"] == 500


def test_outstanding_requests_are_capped_and_counted(tmp_path: Path) -> None:
    pcap = tmp_path / "pipelined.pcap"
    scale.write_pipelined(pcap, 300)
    ended: list[Association] = []
    a = _run(pcap, Limits(max_outstanding=50), on_association=ended.append)
    (assoc,) = ended
    assert len(assoc.transactions) == 50  # the rest were counted, not followed
    codes = [f.code for f in a.findings]
    assert "CAP-OUTSTANDING" in codes and "DIMSE-RSP-UNMATCHED" not in codes
    cap = next(f for f in a.findings if f.code == "CAP-OUTSTANDING")
    assert cap.message.startswith("250 request(s)") and "250 response(s)" in cap.message
    # under the cap, every request is followed and nothing is raised
    ended.clear()
    a = _run(pcap, Limits(), on_association=ended.append)
    assert len(ended[0].transactions) == 300
    assert not [f for f in a.findings if f.code in ("CAP-OUTSTANDING", "DIMSE-RSP-UNMATCHED")]


def test_response_frames_are_capped_and_counted() -> None:
    pcap = ROOT / "captures" / "find-pending.pcap"
    txns: list[Transaction] = []
    _run(pcap, Limits(max_response_frames=3), on_transaction=lambda a, t: txns.append(t))
    finds = [t for t in txns if t.command == "C-FIND" and t.pending > 3]
    assert finds
    for t in finds:
        assert len(t.response_frames) == 3
        assert t.response_frames_dropped == t.pending + 1 - 3  # pending and the final
        assert t.to_record()["response_frames_dropped"] == t.response_frames_dropped
    full: list[Transaction] = []
    _run(pcap, Limits(), on_transaction=lambda a, t: full.append(t))
    assert all("response_frames_dropped" not in t.to_record() for t in full)


def test_many_associations_leave_nothing_behind(tmp_path: Path) -> None:
    live = []
    for n in (40, 400):
        pcap = tmp_path / f"many-{n}.pcap"
        scale.write_associations(pcap, n)
        a = _run(pcap, Limits())
        assert a.stats.connections == n and not a.associations  # keep=False
        gc.collect()
        live.append(sum(1 for o in gc.get_objects() if type(o) in (Association, Transaction)))
    assert live[1] == live[0]  # what is left (from anything before) does not grow with them
    state = CaptureState(1_000_000)
    assert state.assocs.cap == ASSOC_CAP  # the rules remember a bounded number of them
    assert len(a.rules.state.assocs) == 400 <= ASSOC_CAP


def test_latency_sketch_is_exact_below_its_cap_and_close_above() -> None:
    rng = random.Random(7)
    vals = [rng.lognormvariate(-4, 1.5) for _ in range(EXACT_LATENCIES + 50_000)]
    row = _Row()
    for v in vals[:1000]:
        row.latency(v)
    exact = sorted(vals[:1000])
    assert row.stats() == (exact[0], _percentile(exact, 50), _percentile(exact, 95), exact[-1])
    for v in vals[1000:]:
        row.latency(v)
    assert row.sketch is not None and len(row.latencies) == 0
    assert len(row.sketch) < 2000  # constant space: buckets, not values
    s = sorted(vals)
    lo, med, p95, hi = row.stats()  # type: ignore[misc]
    assert (lo, hi) == (s[0], s[-1])
    assert math.isclose(med, _percentile(s, 50), rel_tol=0.011)
    assert math.isclose(p95, _percentile(s, 95), rel_tol=0.011)
    # merging another process's row (-j) keeps both
    other = _Row()
    for v in vals[:10]:
        other.latency(v)
    row.merge_latencies(other)
    assert sum(row.sketch.values()) == len(vals) + 10


def test_json_records_of_a_retiring_run_are_complete(tmp_path: Path) -> None:
    pcap = tmp_path / "echoes.pcap"
    scale.write_echoes(pcap, 1200)
    recs = [json.loads(x) for x in _cli("analyze", "--json", "--no-progress",
                                          "--max-transactions", "100", str(pcap)).splitlines()]
    txns = [r for r in recs if r["type"] == "transaction"]
    assert [r["id"] for r in txns] == sorted(r["id"] for r in txns) and len(txns) == 1200
    assoc = next(r for r in recs if r["type"] == "association")
    assert assoc["transactions"] == 1200
    assert recs.index(assoc) < recs.index(txns[0])  # the association record first, as always


def test_the_report_keeps_associations_whole(tmp_path: Path) -> None:
    """The terminal report keeps its associations (it prints them): nothing is retired."""
    pcap = tmp_path / "echoes.pcap"
    scale.write_echoes(pcap, 300)
    text = _cli("analyze", "--no-progress", "-j", "1", "--max-transactions", "10", str(pcap))
    assert text.count("C-ECHO  msg") == 300
    ended: list[Association] = []
    a = Analyzer(limits=Limits(max_transactions=10))  # keep=True
    a.on_association.append(ended.append)
    with CaptureReader(str(pcap)) as r:
        a.consume(r)
    a.finish()
    assert len(ended[0].transactions) == 300 and ended[0].transactions_retired == 0


# -- the delivered segments kept for overlap checks pin no reader chunk (issue 14) --------------

_CHUNK = 32 << 10  # the reader's chunk in these tests: small, so that the capture stays small


def _quiet_connections_between_a_transfer(path: Path, quiet: int) -> None:
    """``quiet`` real echoscu associations (echo.pcap, to the C-ECHO-RSP, never released; each
    on its own client port) each followed by more than a chunk of a real storescu transfer
    (hostile/store-240.pcap, in order): every quiet connection's last segments lie in a chunk
    of their own, which the reader has long left when the capture ends."""
    from captures import pcapfile

    echo = [f for f in pcapfile.frames(ROOT / "captures" / "echo.pcap")][2:16]
    store_path = ROOT / "captures" / "hostile" / "store-240.pcap"
    store = iter(f for f in pcapfile.frames(store_path) if len(f.data) > 60)
    header, _link = pcapfile.read_header(store_path)
    out: list[pcapfile.Frame] = []
    t = 1.0
    for k in range(quiet):
        port = (20000 + k).to_bytes(2, "big")
        for f in echo:
            data = bytearray(f.data)
            at = 34 if data[34:36] == (45022).to_bytes(2, "big") else 36
            data[at:at + 2] = port
            t += 1e-4
            out.append(pcapfile.Frame(0, t, bytes(data), len(data)))
        size = 0
        while size < _CHUNK + 4096:
            f = next(store)
            t += 1e-4
            out.append(pcapfile.Frame(0, t, f.data, f.orig_len))
            size += len(f.data)
    pcapfile.write(path, header, out)


def _chunks_referenced(a: Analyzer) -> int:
    """Distinct buffers the reassemblers' rings look into, by reference."""
    seen = set()
    for entry in list(a.flows.values()):
        if type(entry) is not tuple or entry[0].tcp is None:
            continue
        for slot in entry[0].tcp[entry[1]].rbuf:
            view = slot[1] if type(slot) is tuple else slot
            if type(view) is memoryview:
                seen.add(id(view.obj))
    return len(seen)


def test_quiet_connections_pin_no_reader_chunk(tmp_path: Path) -> None:
    """Each quiet connection keeps its last segments for TCP-OVERLAP-CONFLICT, but once the
    reader has left their chunk, as copies: at most the chunks of the last few hundred frames
    are referenced, however many connections are open (before: one chunk per connection,
    2 x RECENT chunks per connection at worst, 1 MiB each)."""
    quiet = 20
    pcap = tmp_path / "quiet.pcap"
    _quiet_connections_between_a_transfer(pcap, quiet)
    a = Analyzer(keep=False)
    most = [0]

    def watched(packets):
        for i, p in enumerate(packets):
            if not i & 31:
                most[0] = max(most[0], _chunks_referenced(a))
            yield p

    with CaptureReader(str(pcap), chunk_size=_CHUNK) as r:
        a.consume(watched(r))
    assert len(a.open) == quiet + 1  # every quiet connection still open
    # the chunks of the last RELEASE_EVERY frames (48 KB here) and the current one
    assert most[0] <= 4, f"{most[0]} reader chunks referenced at once"
    # what the copies cost: within RECENT_BYTES (and one segment) per direction
    from dissectors.tcp import RECENT_BYTES

    for conn in a.open:
        for d in conn.tcp:
            kept = [s[1] for s in d.rbuf if s is not None]
            assert all(type(p) is bytes for p in kept)  # consume left no reference behind
            assert sum(map(len, kept)) <= RECENT_BYTES + 1500
    a.finish()


def test_a_copy_differing_from_a_released_segment_is_still_a_conflict(tmp_path: Path) -> None:
    """The copies keep TCP-OVERLAP-CONFLICT whole: the A-ASSOCIATE-RQ of the first quiet
    connection sent again, long after the reader left its chunk, once the same (a plain
    retransmission) and once with another calling AE title."""
    from captures import pcapfile

    pcap = tmp_path / "quiet.pcap"
    _quiet_connections_between_a_transfer(pcap, 3)
    frames = list(pcapfile.frames(pcap))
    rq = next(f for f in frames if len(f.data) > 200 and f.data[66] == 0x01)  # A-ASSOCIATE-RQ
    other = bytearray(rq.data)
    other[66 + 26:66 + 42] = b"INTRUDER".ljust(16)  # Calling AE Title (PS3.8 9.3.2)
    last = frames[-1].ts
    again = frames + [pcapfile.Frame(0, last + 1, rq.data, rq.orig_len),
                      pcapfile.Frame(0, last + 2, bytes(other), len(other))]
    header, _link = pcapfile.read_header(pcap)
    pcapfile.write(pcap, header, again)
    a = Analyzer(keep=True)
    with CaptureReader(str(pcap), chunk_size=_CHUNK) as r:
        a.consume(r)
    a.finish()
    conflicts = [f for f in a.findings if f.code == "TCP-OVERLAP-CONFLICT"]
    assert len(conflicts) == 1, [f.code for f in a.findings]
    assert str(rq.number) in conflicts[0].message and str(len(frames) + 2) in conflicts[0].message
