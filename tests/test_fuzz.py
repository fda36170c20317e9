"""Fuzzing every parser entry point with hypothesis, plus the hostile input shapes of the issue.

Why: a sniffer parses whatever the wire carries, so no input may raise, hang or grow memory
without bound. The hypothesis budgets (derandomized: the same examples on every run) keep this
file near a minute; ``python -m tests.fuzz --minutes 10`` runs the same harnesses for longer.
The shape tests pin down properties random inputs rarely hit: linear work on adversarial
segment orders, allocation independent of length fields, exact skipped-byte accounting.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dicomsniff.analysis.engine import Analyzer
from dissectors.tcp import TcpDirection
from dissectors.ul import events as ev
from dissectors.ul.items import parse_associate
from dissectors.ul.stream import ULStream
from tests import builders as b
from tests.fuzz import seeds
from tests.fuzz.atheris_main import available as atheris_available
from tests.fuzz.runner import REGRESSIONS, load_case, run
from tests.fuzz.targets import TARGETS, check_cli, time_limit

# -- hypothesis harnesses (budgets in targets.TARGETS[...].ci_examples) ---------------------------


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz(name: str) -> None:
    target = TARGETS[name]
    stats = run(target, max_examples=target.ci_examples)
    assert not stats.failures, "\n".join(stats.failures)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_long(name: str) -> None:
    """Ten times the CI budget, still derandomized (the long random run is python -m tests.fuzz)."""
    target = TARGETS[name]
    stats = run(target, max_examples=10 * target.ci_examples)
    assert not stats.failures, "\n".join(stats.failures)


# -- atheris (optional): the same targets under libFuzzer ----------------------------------------

_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_from_bytes_decoders(name: str) -> None:
    """The byte decoders atheris uses turn any input into a checkable case (and pass)."""
    import random

    target = TARGETS[name]
    rng = random.Random(name)
    n = 40 if name in ("cli", "analyzer") else 300
    for _ in range(n):
        data = rng.randbytes(rng.randrange(0, 600))
        case = target.from_bytes(data)
        assert isinstance(case, target.case)
        if name == "assoc" and not case.pdu:
            continue  # parse_associate(b"") is test_parse_associate_never_raises_on_short_input
        target.check(case)


@pytest.mark.skipif(not atheris_available(), reason="atheris not installed (pip install atheris)")
def test_atheris_entry_point() -> None:
    """A few hundred libFuzzer runs: the coverage-guided entry point starts and runs."""
    p = subprocess.run([sys.executable, "-m", "tests.fuzz", "--atheris", "ul", "--", "-runs=300",
                        "-max_len=2048"], cwd=_ROOT, capture_output=True, timeout=120)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, err[-3000:]
    assert "Done 300 runs" in err


# -- replay of saved crashing inputs ------------------------------------------------------------

_REGRESSION_FILES = sorted(p for p in REGRESSIONS.glob("*-*") if p.suffix in (".repr", ".bin"))


@pytest.mark.parametrize("path", _REGRESSION_FILES, ids=[p.name for p in _REGRESSION_FILES])
def test_regression(path: Path) -> None:
    target, case = load_case(path)
    target.check(case)


# -- TCP reassembly: linear work and bounded memory on adversarial segment orders ---------------

class _Count:
    def __init__(self) -> None:
        self.data = 0
        self.gaps = 0

    def feed(self, data: bytes, frame: int, ts: float) -> None:
        self.data += len(data)

    def gap(self, missing: int, frame: int, ts: float) -> None:
        self.gaps += missing


def _reverse(d: TcpDirection, n: int) -> None:
    """n 1-byte segments, last byte first: every one is held until the first arrives."""
    for i in range(n - 1, -1, -1):
        d.segment(1000 + i, b"x", i, 0.0)


def _sparse_then_flush(d: TcpDirection, n: int) -> None:
    """Every other byte lost, the rest arriving in reverse: flush() must close n holes."""
    for i in range(n - 1, 0, -1):
        d.segment(1000 + 2 * i, b"x", i, 0.0)
    d.flush(n, 0.0)


def _ack_storm(d: TcpDirection, n: int) -> None:
    """Sparse held segments, then one ACK past them per segment (a lossy capture)."""
    for i in range(n - 1, 0, -1):
        d.segment(1000 + 2 * i, b"x", i, 0.0)
    for i in range(n):
        d.acked(1000 + 2 * n, n + i, 0.0)


@pytest.mark.parametrize("shape", [_reverse, _sparse_then_flush, _ack_storm],
                         ids=["reverse-order", "sparse-flush", "ack-storm"])
def test_tcp_reassembly_work_is_linear(shape: Callable[[TcpDirection, int], None]) -> None:
    """20000 one-byte segments (a 1.3 MB capture) must take well under a second, not minutes.

    Found by these tests; fixed in d9d14d8. Was
    (dissectors/tcp.py): _drain() scans every held segment per delivered segment
    and skip_to_held() takes min() over all of them, so these orders are quadratic.
    """
    sink = _Count()
    d = TcpDirection(sink)
    d.syn(999)
    t0 = time.perf_counter()
    with time_limit(3.0):
        shape(d, 20_000)
    assert time.perf_counter() - t0 < 3.0
    assert sink.data + sink.gaps >= 19_999


def test_tcp_held_segments_memory_follows_the_buffer_cap() -> None:
    """max_tcp_buffer bounds memory, not just payload bytes: 1-byte segments must not cost 100x.

    Found by these tests; fixed in d9d14d8. Was
    (dissectors/tcp.py): held_bytes counts payload only; each held segment also
    costs a dict entry, a tuple, a bytes object and a float (~150 bytes), so the default 4 MiB
    cap lets one direction hold ~600 MB.
    """
    cap = 64 * 1024
    d = TcpDirection(_Count(), cap)
    d.syn(999)
    tracemalloc.start()
    try:
        for i in range(cap - 1):  # stays under the cap: nothing is delivered or dropped
            d.segment(1002 + 2 * i, b"x", i, 0.0)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert d.held_bytes <= cap  # the cap counts each held segment's bookkeeping too
    assert held <= 8 * cap, f"{held / cap:.0f} bytes of memory per byte of buffer cap"


def test_tcp_huge_sequence_jump_is_one_gap() -> None:
    """A jump of 2**31 - 1 in the sequence space is a gap, not 2 GB of anything."""
    sink = _Count()
    d = TcpDirection(sink)
    d.syn(999)
    d.segment(1000, b"abcd", 1, 0.0)
    d.segment((1004 + 0x7FFFFFFF) & 0xFFFFFFFF, b"efgh", 2, 0.0)
    d.flush(3, 0.0)
    assert (sink.data, sink.gaps, d.gaps) == (8, 0x7FFFFFFF, 1)


# -- UL stream: allocation independent of length fields, exact accounting ---------------------

@pytest.mark.parametrize("ptype", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("length", [0xFFFFFFFF, 0x7FFFFFFF, 1 << 28])
def test_huge_pdu_length_allocates_nothing(ptype: int, length: int) -> None:
    u = ULStream()
    tracemalloc.start()
    try:
        u.feed(struct.pack("!BxI", ptype, length) + bytes(4096), 1, 0.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, f"{peak} bytes allocated for a {length}-byte length field"


def _drain(u: ULStream, data: bytes, chunk: int = 1460) -> list:
    out: list = []
    for i in range(0, len(data), chunk):
        u.feed(data[i:i + chunk], 1, 0.0)
        out += u.events
        u.events = []
    u.close(2, 0.0)
    return out + u.events


def test_thousands_of_one_byte_pdvs_are_linear_and_bounded() -> None:
    c = b.TcpConversation().handshake()
    c.send(0, b.associate_rq()).send(1, b.associate_ac())
    c.send(0, b.p_data(b.pdv(3, 3, b.command_set(0x0001, message_id=1, sop_class=b.CT_STORAGE,
                                                sop_instance="1.2", has_dataset=True))))
    c.send(0, b.pdu(4, b.pdv(3, 0, b"\x00") * 100_000))  # the last-fragment bit never comes
    a = Analyzer()
    with time_limit(10.0):
        a.consume((1.0 + i, 1, memoryview(f), len(f)) for i, f in enumerate(c.close().frames))
        a.finish()
    (assoc,) = a.associations
    codes = [f.code for f in assoc.findings]
    assert codes.count("UL-PDV-ODD") <= 20, "per-code finding cap"
    assert assoc.transactions[0].dataset_bytes == 100_000
    assert assoc.transactions[0].dataset_partial


def test_unsyncable_stream_is_one_finding() -> None:
    """Noise without a PDU boundary: one Resync counting every byte, whatever the segmenting."""
    noise = bytes(range(8, 256)) * 4000  # no byte pair looks like a PDU header
    for chunk in (1, 7, 1460, 65536):
        evs = _drain(ULStream(synced=False), noise[:50_000], chunk)
        assert [(type(e), e.skipped) for e in evs] == [(ev.Resync, 50_000)], chunk


def test_resync_counts_every_skipped_byte() -> None:
    """Bytes before the resynchronisation point are all counted, the bad header included.

    Found by these tests; fixed in d9d14d8. Was
    (dissectors/ul/stream.py, _feed: ``rest = bytes(hdr[1:])``): the first byte of
    a rejected PDU header is skipped but not counted, so Resync.skipped is one short.
    """
    garbage = b"\xee" + bytes(range(8, 40))
    evs = _drain(ULStream(), garbage + b.release_rq())
    resync = [e for e in evs if type(e) is ev.Resync]
    assert [e.skipped for e in resync] == [len(garbage)]
    assert type(evs[-1]) is ev.ReleaseRQ


def test_zero_length_associate_pdu_is_reported_not_swallowed() -> None:
    """An A-ASSOCIATE-RQ with length 0 is a short PDU, not an exception caught defensively.

    Found by these tests; fixed in d9d14d8. Was
    (dissectors/ul/stream.py _on_pdu_header: ``self._on_pdu(b"", ...)`` for a
    zero length): parse_associate gets b"" instead of the 6-byte header, raises IndexError at
    items.py ``ptype = pdu[0]``, and the stream's catch-all turns it into UL-ASSOC-PARSE
    "index out of range".
    """
    for ptype in (1, 2):
        evs = _drain(ULStream(), struct.pack("!BxI", ptype, 0) + b.release_rq())
        codes = [e.code for e in evs if type(e) is ev.Malformed]
        assert codes == ["UL-ASSOC-SHORT"], codes


def test_parse_associate_never_raises_on_short_input() -> None:
    """'a broken negotiation is reported, never raised' (items.py docstring), even for b''."""
    for pdu in (b"", b"\x01", b"\x02\x00\x00\x00"):
        problems: list[tuple[str, str]] = []
        assert parse_associate(pdu, 1, 0.0, problems) is None
        assert problems and problems[0][0] == "UL-ASSOC-SHORT"


def test_user_identity_passcode_never_reaches_the_model() -> None:
    rq = b.associate_rq(user=seeds.rich_user_info(password=seeds.SECRET))
    problems: list[tuple[str, str]] = []
    res = parse_associate(rq, 1, 0.0, problems)
    assert res is not None and not problems
    assert res.user.identity_username == "alice"
    assert seeds.SECRET not in repr(res)


# -- the whole pipeline on special captures -----------------------------------------------------

def test_pcapng_far_future_timestamp_is_reported_not_raised() -> None:
    """pcapng timestamps are 64-bit: year 572367 is a legal (if odd) capture time.

    Found by these tests; fixed in d9d14d8. Was
    (dicomsniff/report/text.py _time: datetime.fromtimestamp raises ValueError
    'year 572367 is out of range'): the text report ends in a traceback.
    """
    from tests.fuzz.targets import AnalyzerCase, CliCase

    conv = AnalyzerCase([("echo", 104, 1460, 1000, 5000, 50000)], [], [], (0, 0, 0))
    check_cli(CliCase(conv, "pcapng", [], 1.8e13, False))


def test_hostile_strings_in_process() -> None:
    from tests.fuzz.targets import AnalyzerCase, CliCase

    conv = AnalyzerCase([("store", 11112, 536, 7, 9, 40000)], [], [], (0, 0, 0))
    check_cli(CliCase(conv, "pcap", [], 1_700_000_000.0, True))


def test_pdu_right_after_an_overlong_pdata_is_still_found() -> None:
    """A P-DATA-TF one byte too long swallows the first byte of the next PDU; the parser must
    still find that PDU (the rest of the capture is analysed).

    Found by these tests; fixed in d9d14d8. Was
    (dissectors/ul/stream.py _feed, rejected PDV header): hunting resumes at
    ``hdr[1:]``, one byte past a PDU header that starts exactly at the rejected PDV header, so
    the A-RELEASE-RQ is lost ("skipped 9 bytes ... no PDU boundary found").
    """
    pd = b.p_data(b.pdv(1, 3, b.command_set(0x0030, message_id=1, sop_class=b.VERIFICATION)))
    overlong = pd[:2] + struct.pack("!I", len(pd) - 6 + 1) + pd[6:]
    evs = _drain(ULStream(), overlong + b.release_rq())
    kinds = [type(e).__name__ for e in evs]
    assert "Malformed" in kinds and kinds[-1] == "ReleaseRQ", kinds


def _engine(frames: list[bytes], **kw: Any) -> Analyzer:
    a = Analyzer(**kw)
    a.consume((1.0 + i * 0.001, 1, memoryview(f), len(f)) for i, f in enumerate(frames))
    a.finish()
    return a


@pytest.mark.parametrize("ports", [(), (104,)], ids=["detected", "forced-port"])
def test_findings_of_a_discarded_connection_are_not_counted(ports: tuple[int, ...]) -> None:
    """Stats (the summary, --fail-on) count exactly the findings that are reported.

    Still failing, forced-port case (dicomsniff/analysis/engine.py): _start_dicom holds a
    mid-stream candidate's findings only ``if midstream and not conn.forced``, but _close still
    discards a forced mid-stream connection that never yielded a PDU ("it was not DICOM after
    all"), so with --port 104 its UL-RESYNC/ASSOC-CLOSED-NO-RELEASE findings are counted in
    the summary ("1 warning, 2 info", and --fail-on) yet appear in no report. Related:
    _judge_midstream releases held findings as soon as a stream is ``synced`` while _close
    drops associations without a parsed PDU (store-small-pdu-editcap.pcapng in the corpus).
    """
    from tests.mutate_corpus import _plain_tcp

    noise = bytes(range(8, 256)) * 200
    a = _engine(_plain_tcp([(0, noise), (1, noise)], syn=False) + seeds.conversation("echo"),
                ports=ports)
    shown = {x.id for x in a.associations}
    orphans = [f.code for f in a.findings if f.association is not None
               and f.association not in shown]
    assert not orphans, f"findings of discarded associations: {orphans}"
    assert a.stats.findings == len(a.findings) + a.stats.findings_dropped


def test_bad_first_pdu_on_the_dicom_port_is_a_finding() -> None:
    """An A-ASSOCIATE-RQ with a 4 GB length on port 104: a malformed PDU, so a finding.

    Found by these tests; fixed in d9d14d8. Was
    (dicomsniff/analysis/engine.py _decide): the first bytes fail plausible_pdu,
    so the connection is ignored as "not DICOM" without any finding, and the acceptor's valid
    A-ASSOCIATE-AC and everything after it are never analysed (tshark reports "Invalid
    Association Item Length" here).
    """
    rq = b.associate_rq()
    bad = rq[:2] + struct.pack("!I", 0xFFFFFFFF) + rq[6:]
    c = b.TcpConversation().handshake()
    c.send(0, bad).send(1, b.associate_ac()).send(0, b.release_rq()).send(1, b.release_rp())
    a = _engine(c.close().frames)
    assert any(f.code.startswith("UL-") for f in a.findings), [f.code for f in a.findings]


def test_syn_flood_is_one_cap_finding() -> None:
    """Hitting --max-streams is one finding with a count, not one per evicted connection.

    Found by these tests; fixed in d9d14d8. Was
    (dicomsniff/analysis/engine.py _register): CAP-STREAMS is emitted on every
    eviction; 3000 SYNs with max_streams=100 give 2900 identical findings (30000 SYNs with the
    default cap: 20000 lines in the text report).
    """
    from dicomsniff.analysis.engine import Limits

    flood = [b.ipv4_tcp("198.51.100.1", "192.0.2.2", 1024 + i, 104, i, 0, 0x02)
             for i in range(3000)]
    a = _engine(flood, limits=Limits(max_streams=100))
    caps = [f for f in a.findings if f.code == "CAP-STREAMS"]
    assert a.stats.evicted == 2900
    assert 1 <= len(caps) <= 10, f"{len(caps)} CAP-STREAMS findings"


def test_fuzz_command_knows_every_target() -> None:
    """``python -m tests.fuzz`` lists its targets without importing them (for --atheris): the
    list must name every target, or the command stops on its own consistency check."""
    out = subprocess.run([sys.executable, "-m", "tests.fuzz", "--help"], capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-400:]
    for name in TARGETS:
        assert name in out.stdout
