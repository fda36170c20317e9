"""The attacks of issue 14, each through the command a user runs (tests/clirun.py).

Hand-built captures (tests/hostile_cases.py) where no real peer sends the bytes; each test
states the bound it holds the program to: exit status, no traceback, time and peak memory of
the child, and what it must say.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import builders as b
from tests import hostile_cases as h
from tests.clirun import Run, run_cli
from tests.fuzz.pcapwriter import write_pcap

GIB = 1 << 30
RSS_MB = 300  # a bomb's cap is 64 MiB: everything else is the interpreter and pydicom


def _ok(r: Run, where: str, codes: tuple[int, ...] = (0,)) -> None:
    assert r.code is not None, f"{where}: hung"
    assert "Traceback" not in r.stderr, f"{where}: {r.stderr[-2000:]}"
    assert r.code in codes, f"{where}: exit {r.code}\n{r.stderr[-2000:]}"
    assert r.rss_mb < RSS_MB, f"{where}: peak RSS {r.rss_mb:.0f} MB"


# -- decompression bombs (PS3.5 A.5 Deflated Explicit VR Little Endian) ------------------------

def _store_head() -> bytes:
    return (h.explicit(0x0008, 0x0016, "UI", b.CT_STORAGE.encode())
            + h.explicit(0x0008, 0x0018, "UI", b"1.2.3.4.5.6.7.8.1")
            + h.explicit(0x0010, 0x0010, "PN", b"DOE^JOHN"))


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bombs")
    query = h.deflate_bomb(h.find_identifier(), 4 * GIB)  # ~4 MB that inflate to 4 GiB
    assert len(query) < 5 << 20
    plain = h.deflate(h.find_identifier("DOE^JOHN", b"123"))
    return {
        "find": write_pcap(d / "find-bomb.pcap", h.find_association(query, [plain],
                                                                    ts=h.DEFLATED)),
        "find-rsp": write_pcap(d / "find-rsp-bomb.pcap", h.find_association(
            h.deflate(h.find_identifier()), [h.deflate_bomb(h.find_identifier("DOE^JOHN"),
                                                            GIB)], ts=h.DEFLATED)),
        "store": write_pcap(d / "store-bomb.pcap", h.store_association(
            h.deflate_bomb(_store_head(), 4 * GIB), ts=h.DEFLATED)),
        "mpps": write_pcap(d / "mpps-bomb.pcap", h.mpps_association(
            h.deflate_bomb(h.explicit(0x0008, 0x0060, "CS", b"CT"), 4 * GIB), ts=h.DEFLATED)),
        "small": write_pcap(d / "find-small.pcap", h.find_association(
            h.deflate(h.find_identifier()), [plain], ts=h.DEFLATED)),
    }


def _findings(r: Run) -> list[dict]:
    recs = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    return [x for x in recs if x.get("type") == "finding"]


@pytest.mark.parametrize("which", ["find", "find-rsp"])
def test_check_queries_reports_a_bomb_undecodable(bombs: dict[str, Path], which: str) -> None:
    r = run_cli("show", str(bombs[which]), "--check-queries", "--json")
    _ok(r, which)
    recs = _findings(r)
    bad = [f for f in recs if f["code"] == "QUERY-UNDECODABLE"]
    assert bad and "--max-inflate" in bad[0]["message"], recs
    assert r.seconds < 10


@pytest.mark.parametrize("which", ["store", "mpps"])
def test_show_reports_a_bomb_undecodable(bombs: dict[str, Path], which: str) -> None:
    r = run_cli("show", str(bombs[which]), "--transaction", "1")
    _ok(r, which)
    assert "--max-inflate" in r.stdout, r.stdout[-2000:]
    assert r.seconds < 10


def test_export_anonymize_refuses_a_bomb(bombs: dict[str, Path], tmp_path: Path) -> None:
    r = run_cli("export-objects", "--anonymize", str(bombs["store"]), str(tmp_path / "out"))
    _ok(r, "export --anonymize")
    assert "--max-inflate" in r.stdout and "(not written)" in r.stdout
    assert not list((tmp_path / "out").iterdir())
    plain = run_cli("export-objects", str(bombs["store"]), str(tmp_path / "raw"))
    _ok(plain, "export")  # without --anonymize the wire bytes are written as they came
    assert len(list((tmp_path / "raw").iterdir())) == 1


def test_max_inflate_is_the_cap(bombs: dict[str, Path]) -> None:
    """A small deflated query decodes under the default cap and not under a 16-byte one."""
    ok = run_cli("show", str(bombs["small"]), "--check-queries", "--json")
    _ok(ok, "default cap")
    assert not [f for f in _findings(ok) if f["code"] == "QUERY-UNDECODABLE"]
    tight = run_cli("show", str(bombs["small"]), "--check-queries", "--json",
                    "--max-inflate", "16")
    _ok(tight, "16-byte cap")
    assert [f for f in _findings(tight) if f["code"] == "QUERY-UNDECODABLE"]
    bad = run_cli("show", str(bombs["small"]), "--check-queries", "--max-inflate", "lots")
    assert bad.code == 2 and "Traceback" not in bad.stderr


def test_tui_detail_pane_inflates_within_the_cap() -> None:
    from dicomsniff.tui.dataset import CAP, Collected, decode

    data = h.deflate_bomb(h.find_identifier(), 3 * GIB)
    assert len(data) <= CAP  # the pane collects all of it
    c = Collected(0, 1, {}, bytearray(data), len(data))
    entries = decode(c, h.DEFLATED)
    assert "--max-inflate" in entries[0].label.plain
    small = Collected(0, 1, {}, bytearray(h.deflate(h.find_identifier("DOE^JOHN"))))
    small.total = len(small.data)
    text = " ".join(e.label.plain for e in decode(small, h.DEFLATED))
    assert "DOE^JOHN" in text


def test_inflate_never_produces_more_than_the_cap() -> None:
    from dicomsniff import inflate

    data = h.deflate_bomb(b"", 64 << 20)
    with pytest.raises(inflate.InflateLimitExceeded):
        inflate.inflate(data, 1 << 20)
    assert len(inflate.inflate(data, 65 << 20)) == (64 << 20) + 12
    with pytest.raises(inflate.InflateError):
        inflate.inflate(b"\xff" * 64, 1 << 20)
    cut = inflate.inflate(h.deflate(b"x" * 1000)[:-3], 1 << 20)  # a capture lost the end
    assert cut and set(cut) == {ord("x")}


# -- wild cards and multi-valued keys (PS3.4 C.2.2.2.4, C.2.2.2.2) ----------------------------

def _reference_wildcard(pattern: str, value: str) -> bool:
    """The obvious regular expression (exponential on hostile patterns: small inputs only)."""
    import re

    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.DOTALL) is not None


def test_wildcard_matching_agrees_with_the_definition() -> None:
    import random

    from dicomsniff.objects.matching import wildcard_match

    rnd = random.Random(14)
    for _ in range(20_000):
        p = "".join(rnd.choice("ab*?") for _ in range(rnd.randint(0, 7)))
        v = "".join(rnd.choice("ab") for _ in range(rnd.randint(0, 9)))
        assert wildcard_match(p, v) == _reference_wildcard(p, v), (p, v)
    assert wildcard_match("*DOE*", "JOHN DOE JR")
    assert wildcard_match("D?E^*", "DOE^JOHN") and not wildcard_match("D?E^*", "DOOE^JOHN")


def test_backtracking_pattern_checked_in_bounded_time(tmp_path: Path) -> None:
    """``*A*A*A...*B`` (1.7 KB) against 900 A's: a regex backtracks for ever; we answer."""
    query = h.find_identifier("*A" * 850 + "*B")
    assert len(query) > 1700
    cap = write_pcap(tmp_path / "redos.pcap", h.find_association(
        query, [h.find_identifier("A" * 900), h.find_identifier("A" * 899 + "B")]))
    r = run_cli("show", str(cap), "--check-queries", "--json")
    _ok(r, "wildcard")
    mism = [f for f in _findings(r) if f["code"] == "QUERY-VALUE-MISMATCH"]
    assert len(mism) == 1 and "1 of 2 responses" in mism[0]["message"], mism


def _implicit(group: int, elem: int, value: bytes) -> bytes:
    import struct

    value += b"\x00" * (len(value) % 2)
    return struct.pack("<HHI", group, elem, len(value)) + value


@pytest.mark.parametrize("hit", [False, True])
def test_multi_valued_keys_are_not_compared_pairwise(tmp_path: Path, hit: bool) -> None:
    """200k UIDs asked, 100k returned: pairwise that is 2e10 comparisons (hours)."""
    asked = b"\\".join(b"1.2.%d" % i for i in range(200_000))
    got = [b"1.3.%d" % i for i in range(100_000)]
    if hit:
        got[-1] = b"1.2.199999"
    q = _implicit(0x0008, 0x0052, b"STUDY ") + _implicit(0x0020, 0x000D, asked)
    rsp = _implicit(0x0008, 0x0052, b"STUDY ") + _implicit(0x0020, 0x000D, b"\\".join(got))
    cap = write_pcap(tmp_path / "multi.pcap", h.find_association(q, [rsp], ts=b.IMPLICIT_LE))
    r = run_cli("show", str(cap), "--check-queries", "--json")
    _ok(r, "multi-valued")
    mism = [f for f in _findings(r) if f["code"] == "QUERY-VALUE-MISMATCH"]
    assert bool(mism) != hit, mism
    if mism:
        assert "(200000 values)" in mism[0]["message"] and len(mism[0]["message"]) < 2000


# -- one escaping for every output path (dissectors/wiretext.py) ------------------------------

def _no_marks(text: str, where: str) -> None:
    for m in h.EVIL_MARKS:
        if m in ("\r", "\n"):
            continue  # the output's own line ends: checked per line below
        assert m not in text, f"{where}: {m!r} reached the output"
    assert "FAKE 0 findings" not in [ln.strip() for ln in text.splitlines()], (
        f"{where}: a wire CR+LF made a line of its own")


@pytest.fixture(scope="module")
def evil(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pcap(tmp_path_factory.mktemp("evil") / "evil-find.pcap", h.evil_find())


def test_check_queries_text_escapes_wire_values(evil: Path) -> None:
    r = run_cli("show", str(evil), "--check-queries")
    _ok(r, "check-queries")
    _no_marks(r.stdout, "show --check-queries")


def test_check_queries_json_escapes_wire_values(evil: Path) -> None:
    r = run_cli("show", str(evil), "--check-queries", "--json")
    _ok(r, "check-queries --json")
    msgs = [f["message"] for f in _findings(r)]
    assert msgs
    for m in msgs:
        _no_marks(m, "check-queries JSON message")
        assert "\r" not in m and "\n" not in m
    lt = next(m for m in msgs if "PatientComments" in m)
    assert "\\x5cx1bLIT\\x1b[31mRED" in lt and "\\u202e" in lt and "\\x0d\\x0a" in lt


def test_show_tree_escapes_wire_values(evil: Path) -> None:
    r = run_cli("show", str(evil), "--transaction", "1")
    _ok(r, "show")
    _no_marks(r.stdout, "show")
    assert "\\u202e" in r.stdout and "\\u2028" in r.stdout and "\\x5c" in r.stdout


def test_tui_dataset_tree_escapes_wire_values() -> None:
    from dicomsniff.tui.dataset import Collected, decode

    c = Collected(0, 1, {}, bytearray(h.evil_identifier()))
    c.total = len(c.data)
    text = "\n".join(e.label.plain for e in decode(c, h.EXPLICIT))
    _no_marks(text, "TUI data set")
    # pydicom decodes a UTF-8 value holding ESC as ISO 2022, falling back to Latin-1: the
    # override then shows as its three octets, still escaped where they are controls
    assert "\\x5cx1bLIT\\x1b[31mRED" in text and "\\x0d\\x0a" in text


def test_escape_covers_every_invisible_class() -> None:
    from dissectors.wiretext import escape, from_bytes

    assert escape("A\u202eB") == "A\\u202eB"
    assert escape("a\\b") == "a\\x5cb" and from_bytes(b"a\\b") == "a\\x5cb"
    assert escape("\U000e0001tag") == "\\U000e0001tag"  # a language tag (Cf) is invisible
    assert escape("山田^太郎") == "山田^太郎"  # printable text of any script is kept
    assert from_bytes("é".encode()) == "\\xc3\\xa9"


@pytest.fixture(scope="module")
def long_strings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pcap(tmp_path_factory.mktemp("long") / "long.pcap",
                      h.long_strings_association())


def test_long_wire_strings_are_cut_in_text_and_whole_in_json(long_strings: Path,
                                                              tmp_path: Path) -> None:
    text = run_cli("analyze", str(long_strings), "--no-progress")
    _ok(text, "analyze")
    assert "V" * 65 not in text.stdout and "V...(2000" in text.stdout
    assert "3" * 65 not in text.stdout
    js = run_cli("analyze", str(long_strings), "--json", "--no-progress")
    _ok(js, "analyze --json")
    assert "V" * 2000 in js.stdout
    live = run_cli("live", "-r", str(long_strings))
    _ok(live, "live -r")
    assert "V" * 65 not in live.stdout
    svg = tmp_path / "d.svg"
    d = run_cli("diagram", str(long_strings), "-o", str(svg))
    _ok(d, "diagram")
    assert "V" * 65 not in svg.read_text()


# -- time stamps a capture's clock cannot make us crash on ----------------------------------

async def drive_tui(path: Path, *, wait: float = 15.0) -> str:
    """The TUI on ``path`` as a user would go through it: the list, the ladder of the first
    association, each message's command set, data set and bytes tab, the findings. Returns
    what the screen showed last; raises whatever the app raised."""
    from tests.test_tui import app_for, loaded, screen_text

    app = app_for(path)
    seen = []
    async with app.run_test(size=(150, 40)) as pilot:
        await loaded(pilot)
        seen.append(screen_text(app))
        if app.screen.table.rows:
            await pilot.press("enter")
            screen = app.screen
            items = getattr(getattr(screen, "view", None), "ladder", None)
            for i in range(min(len(items.items) if items else 0, 12)):
                screen.view.cursor = i
                for key in ("1", "3", "4"):
                    await pilot.press(key)
                    await pilot.pause(0.05)
                seen.append(screen_text(app))
            await pilot.press("escape")
        await pilot.press("f")
        await pilot.pause(0.1)
        seen.append(screen_text(app))
        await pilot.press("q")
    return "\n".join(seen)


@pytest.mark.parametrize("tsresol,tsoffset", [(0, 1 << 40), (0, -(1 << 40)), (0x80, 1 << 62)])
def test_out_of_range_times_are_shown_not_raised(tmp_path: Path, tsresol: int,
                                                 tsoffset: int) -> None:
    """``if_tsresol``/``if_tsoffset`` that put times past year 9999 (or before year 1)."""
    import asyncio

    from tests.fuzz import seeds

    cap = tmp_path / "clock.pcapng"
    cap.write_bytes(h.pcapng_with_clock(seeds.conversation("echo"), tsresol, tsoffset))
    for args in (("analyze", "--no-progress"), ("analyze", "--json", "--no-progress"),
                 ("live", "-r"), ("live", "--json", "-r"), ("diagram",)):
        r = run_cli(*args[:-1], args[-1], str(cap)) if args[-1] == "-r" else run_cli(
            *args, str(cap))
        _ok(r, " ".join(args))
        assert "C-ECHO" in r.stdout or "echo" in r.stdout.lower(), (args, r.stdout[:500])
    text = asyncio.run(drive_tui(cap))
    assert "MODALITY" in text


# -- export naming ------------------------------------------------------------------------------

def test_ten_thousand_objects_with_one_uid_are_all_written(tmp_path: Path) -> None:
    n = 10_050
    cap = write_pcap(tmp_path / "same-uid.pcap", h.same_uid_stores(n))
    out = tmp_path / "out"
    (out).mkdir()
    squatter = out / "A0001_STORESCU-to-STORESCP_1.2.3.4.5.6.7.8.1-7.dcm"
    squatter.write_bytes(b"not ours")  # a file already there is never replaced
    r = run_cli("export-objects", str(cap), str(out), timeout=120)
    _ok(r, "export-objects")
    files = list(out.iterdir())
    assert len(files) == n + 1, r.stderr[-500:]
    assert squatter.read_bytes() == b"not ours"
    assert r.seconds < 60


# -- findings that said the wrong thing -------------------------------------------------------

def _analyze(frames: list[bytes]):
    from dicomsniff.analysis.engine import Analyzer

    an = Analyzer()
    for i, f in enumerate(frames, 1):
        an.feed_frame(i, 1000.0 + i * 0.01, 1, f)
    an.finish()
    return an


def _with(an, code: str) -> list:
    return [f for f in an.findings if f.code == code]


def _store_then(end: bytes | None, side: int = 0, cut: bool = False) -> list[bytes]:
    """A C-STORE whose data set was sent (whole, or ``cut``) and never answered, then
    ``end`` (an A-ABORT) or, when None, the connection closes (FIN)."""
    ctx = [(1, b.CT_STORAGE, [b.IMPLICIT_LE])]
    ds = struct.pack("<HHI", 0x0010, 0x0010, 8) + b"LOST^IMG"
    rq = b.store_request(1, ds, ctx=1)
    if cut:
        rq = rq[:-4]
    c = b.TcpConversation(client=("192.0.2.1", 50020), server=("192.0.2.2", 104)).handshake()
    c.send(0, b.associate_rq("STORESCP", "MODALITY", ctx))
    c.send(1, b.associate_ac("STORESCP", "MODALITY", [(1, 0, b.IMPLICIT_LE)]))
    c.send(0, rq)
    if end is not None:
        c.send(side, end)
    return c.close().frames


@pytest.mark.parametrize("end,side,cut", [
    (b.abort(0, 0), 0, False),  # the SCU gave up
    (b.abort(0, 0), 1, False),  # the SCP aborted instead of answering
    (b.abort(2, 2), 1, True),  # the provider aborted mid data set
    (None, 0, False),  # FIN without A-RELEASE
])
def test_an_unacknowledged_store_at_the_end_is_an_error(end, side, cut) -> None:
    an = _analyze(_store_then(end, side, cut))
    code = "ASSOC-ABORTED" if end is not None else "ASSOC-CLOSED-NO-RELEASE"
    f = _with(an, code)
    assert len(f) == 1 and f[0].severity == "error", [(x.code, x.severity) for x in an.findings]
    assert "1 C-STORE sent without a response: that image was not delivered" in f[0].message


def test_an_abort_after_every_store_was_answered_stays_a_warning() -> None:
    ctx = [(1, b.CT_STORAGE, [b.IMPLICIT_LE])]
    ds = struct.pack("<HHI", 0x0010, 0x0010, 8) + b"GOOD^IMG"
    c = b.TcpConversation(client=("192.0.2.1", 50021), server=("192.0.2.2", 104)).handshake()
    c.send(0, b.associate_rq("STORESCP", "MODALITY", ctx))
    c.send(1, b.associate_ac("STORESCP", "MODALITY", [(1, 0, b.IMPLICIT_LE)]))
    c.send(0, b.store_request(1, ds, ctx=1)).send(1, b.store_response(1, ctx=1))
    c.send(0, b.abort(0, 0))
    f = _with(_analyze(c.close().frames), "ASSOC-ABORTED")
    assert len(f) == 1 and f[0].severity == "warning"


def test_provider_abort_with_a_reason_does_not_guess_a_timeout() -> None:
    """A-ABORT from the requestor's provider, source 2 reason 4 (unrecognized-PDU-parameter,
    PS3.8 Table 9-26): the reason is given, no 'DIMSE timeout' is invented."""
    frames = _store_then(b.abort(2, 4), side=0)
    f = _with(_analyze(frames), "ASSOC-ABORTED")[0]
    assert "timeout" not in f.message.split("What to check")[0], f.message
    assert "unrecognized" in f.message.lower()


@pytest.mark.parametrize("which", ["called", "calling"])
def test_sixteen_space_ae_title_is_forbidden(which: str) -> None:
    """PS3.8 9.3.2 (Table 9-11): the value of 16 spaces shall not be used."""
    kw = {which: " " * 16}
    rq = b.associate_rq(**kw)
    rq_echo, ac_echo = b.echo_exchange()
    frames = conversation_frames(rq, b.associate_ac(**kw), rq_echo[len(b.associate_rq()):],
                                 ac_echo[len(b.associate_ac()):])
    an = _analyze(frames)
    f = _with(an, "UL-AE-BLANK")
    assert len(f) == 1 and f[0].severity == "error" and which in f[0].message, [
        (x.code, x.message) for x in an.findings]
    assert "9.3.2" in f[0].message


def conversation_frames(*parts: bytes) -> list[bytes]:
    c = b.TcpConversation(client=("192.0.2.1", 50030), server=("192.0.2.2", 104)).handshake()
    for i, p in enumerate(parts):
        c.send(i % 2, p)
    return c.close().frames


def test_cut_user_information_is_said_to_be_cut() -> None:
    ac = bytearray(b.associate_ac())
    # the user information item (0x50) is last: claim 40 more bytes than the PDU holds
    pos = bytes(ac).rindex(b"\x50\x00")
    length = int.from_bytes(ac[pos + 2:pos + 4], "big")
    ac[pos + 2:pos + 4] = (length + 40).to_bytes(2, "big")
    an = _analyze(conversation_frames(b.associate_rq(), bytes(ac), b.release_rq(),
                                      b.release_rp()))
    f = _with(an, "UL-NO-USERINFO")
    assert len(f) == 1 and "cut short" in f[0].message and "9.3.3.3" in f[0].message, [
        (x.code, x.message) for x in an.findings]
    assert "has no user information" not in f[0].message
    ac2 = b.pdu(2, bytes(b.associate_ac())[6:pos])  # an AC without the item at all
    an2 = _analyze(conversation_frames(b.associate_rq(), ac2, b.release_rq(), b.release_rp()))
    f2 = _with(an2, "UL-NO-USERINFO")
    assert len(f2) == 1 and "has no user information item (PS3.8 9.3.3.3)" in f2[0].message


def test_refusal_hint_from_other_associations_says_so() -> None:
    """The SCP refused Verification here, accepted it on another association."""
    ok_rq, ok_ac = b.echo_exchange()
    first = conversation_frames(b.associate_rq(calling="TRUSTED"),
                                b.associate_ac(calling="TRUSTED"),
                                ok_rq[len(b.associate_rq()):], ok_ac[len(b.associate_ac()):])
    ctx = [(1, b.VERIFICATION, [b.IMPLICIT_LE])]
    c = b.TcpConversation(client=("192.0.2.1", 50031), server=("192.0.2.2", 104)).handshake()
    c.send(0, b.associate_rq(calling="STRANGER", contexts=ctx))
    c.send(1, b.associate_ac(calling="STRANGER", results=[(1, 3, b.IMPLICIT_LE)]))
    c.send(0, b.release_rq()).send(1, b.release_rp())
    an = _analyze(first + c.close().frames)
    f = _with(an, "NEG-NO-CONTEXT-ACCEPTED")
    assert len(f) == 1
    assert "on other associations" in f[0].message and "The SCP accepted" not in f[0].message


def test_a_context_never_proposed_is_not_called_refused_with_placeholders() -> None:
    rq = b.associate_rq(contexts=[(1, b.VERIFICATION, [b.IMPLICIT_LE])])
    ac = b.associate_ac(results=[(1, 0, b.IMPLICIT_LE), (3, 3, b.IMPLICIT_LE)])
    an = _analyze(conversation_frames(rq, ac, b.release_rq(), b.release_rp()))
    assert _with(an, "UL-AC-UNKNOWN-CONTEXT")
    for f in an.findings:
        assert "? was refused" not in f.message and "proposed with )" not in f.message, (
            f.code, f.message)
    assert not _with(an, "NEG-SOP-CLASS-REJECTED")


def test_status_failure_names_both_aes() -> None:
    ctx = [(1, b.CT_STORAGE, [b.IMPLICIT_LE])]
    ds = struct.pack("<HHI", 0x0010, 0x0010, 8) + b"FAIL^IMG"
    c = b.TcpConversation(client=("192.0.2.1", 50032), server=("192.0.2.2", 104)).handshake()
    c.send(0, b.associate_rq("ARCHIVE", "CT_SCANNER", ctx))
    c.send(1, b.associate_ac("ARCHIVE", "CT_SCANNER", [(1, 0, b.IMPLICIT_LE)]))
    c.send(0, b.store_request(1, ds, ctx=1)).send(1, b.store_response(1, 0xA700, ctx=1))
    c.send(0, b.release_rq()).send(1, b.release_rp())
    f = _with(_analyze(c.close().frames), "DIMSE-STATUS-FAILURE")[0]
    assert "CT_SCANNER" in f.message and "ARCHIVE" in f.message


@pytest.mark.parametrize("proposed,good,bad", [
    (["1.2.840.10008.1.2.2"],  # Explicit VR Big Endian: native, nothing to "enable"
     "propose Implicit VR Little Endian", "compressed syntax"),
    (["1.2.840.10008.1.2.4.50"], "enable the compressed syntax", None),
    ([b.IMPLICIT_LE], "must accept", "compressed syntax"),
])
def test_transfer_syntax_advice_fits_what_was_proposed(proposed, good, bad) -> None:
    rq = b.associate_rq(contexts=[(1, b.CT_STORAGE, proposed)])
    ac = b.associate_ac(results=[(1, 4, proposed[0])])
    an = _analyze(conversation_frames(rq, ac, b.release_rq(), b.release_rp()))
    msgs = " ".join(f.message for f in an.findings if f.code.startswith("NEG-"))
    assert good in msgs, msgs
    if bad:
        assert bad not in msgs, msgs


# -- a lying P-DATA-TF length (PS3.8 9.3.5, D.1) ----------------------------------------------

STORE_240 = Path(__file__).resolve().parent.parent / "captures" / "hostile" / "store-240.pcap"


def _stores(r: Run) -> tuple[int, list[str]]:
    recs = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    kept = sum(1 for x in recs if x.get("type") == "transaction"
               and x.get("command") == "C-STORE" and x.get("status") == 0)
    return kept, [x["code"] for x in recs if x.get("type") == "finding"]


def test_the_clean_240_image_capture_keeps_every_store() -> None:
    r = run_cli("analyze", str(STORE_240), "--json", "--no-progress")
    _ok(r, "clean")
    kept, codes = _stores(r)
    assert kept == 240 and not [c for c in codes if c.startswith(("UL-", "DIMSE-"))], codes


@pytest.mark.parametrize("which,high", [(0.2, 0x7F), (0.5, 0xFF), (0.9, 0x01)])
def test_one_lying_pdata_length_costs_nothing(tmp_path: Path, which: float, high: int) -> None:
    """One byte changed in a real storescu capture: the P-DATA-TF claims up to 4 GB when
    16 KB was negotiated. The PDV items and the next PDU header say where it really ends."""
    data, frame = h.lying_pdata(STORE_240.read_bytes(), which, high)
    cap = tmp_path / "lie.pcap"
    cap.write_bytes(data)
    r = run_cli("analyze", str(cap), "--json", "--no-progress")
    _ok(r, "lying length")
    kept, codes = _stores(r)
    assert kept >= 230, (kept, codes)
    assert codes.count("UL-PDU-LENGTH-LIE") == 1, codes
    assert "DIMSE-RSP-UNMATCHED" not in codes and "UL-STATE-RP" not in codes, codes


def test_a_lying_length_without_a_known_maximum() -> None:
    """The association's start was not captured: no maximum is known, yet a 2 GB P-DATA-TF
    whose single PDV is followed by a P-DATA-TF header is cut where its items end."""
    from dissectors.ul.events import Malformed, PdvCommand
    from dissectors.ul.stream import ULStream

    cmd = b.command_set(0x0030, message_id=1, sop_class=b.VERIFICATION)
    one = b.p_data(b.pdv(1, 3, cmd))
    lie = bytearray(one)
    lie[2] = 0x7F  # the length field's high byte
    u = ULStream()
    u.feed(bytes(lie) + one + one, 1, 0.0)
    cmds = [e for e in u.events if isinstance(e, PdvCommand)]
    lies = [e for e in u.events if isinstance(e, Malformed) and e.code == "UL-PDU-LENGTH-LIE"]
    assert len(cmds) == 3 and len(lies) == 1, u.events


def test_a_long_pdu_with_believable_items_is_not_cut() -> None:
    """Past the maximum but honest: every PDV item fits, so the PDU is read whole."""
    from dissectors.ul.events import Malformed, PdvData
    from dissectors.ul.stream import ULStream

    pdu = b.p_data(*[b.pdv(1, 0, bytes(1000)) for _ in range(40)], b.pdv(1, 2, bytes(10)))
    u = ULStream()
    u.pdata_limit = 16384
    u.feed(pdu + b.p_data(b.pdv(1, 2, bytes(10))), 1, 0.0)
    assert [e.code for e in u.events if isinstance(e, Malformed)] == ["UL-PDU-TOO-LONG"]
    assert len([e for e in u.events if isinstance(e, PdvData)]) == 42


# -- injected RST and SYN (RFC 5961) ------------------------------------------------------------

def _echo_with(inject: Callable[[b.TcpConversation], None]) -> list[bytes]:
    """An association of two C-ECHOs; ``inject`` adds frames between them."""
    rq, ac = b.echo_exchange()
    ar, aa = b.associate_rq(), b.associate_ac()
    echo_rq, echo_rsp = rq[len(ar):-10], ac[len(aa):-10]
    c = b.TcpConversation(client=("192.0.2.1", 50040), server=("192.0.2.2", 104)).handshake()
    c.send(0, ar).send(1, aa).send(0, echo_rq).send(1, echo_rsp)
    inject(c)
    c.send(0, echo_rq.replace(b"\x10\x01\x02\x00\x00\x00\x01\x00",
                              b"\x10\x01\x02\x00\x00\x00\x02\x00"))
    c.send(1, echo_rsp.replace(b"\x20\x01\x02\x00\x00\x00\x01\x00",
                               b"\x20\x01\x02\x00\x00\x00\x02\x00"))
    c.send(0, b.release_rq()).send(1, b.release_rp())
    return c.close().frames


@pytest.mark.parametrize("side,offset", [(0, 70_000_000), (1, -5000), (0, 1 << 31)])
def test_out_of_window_rst_is_ignored(side: int, offset: int) -> None:
    def rst(c: b.TcpConversation) -> None:
        c.frames.append(c._frame(side, c.RST, seq=(c.seq[side] + offset) & 0xFFFFFFFF))

    an = _analyze(_echo_with(rst))
    assert len(an.associations) == 1, [a.calling_ae for a in an.associations]
    a = an.associations[0]
    assert a.outcome == "released" and len(a.transactions) == 2
    assert [f.code for f in an.findings if f.code == "TCP-RST-IGNORED"] == ["TCP-RST-IGNORED"]
    assert not _with(an, "ASSOC-CLOSED-NO-RELEASE")


def test_an_exact_rst_still_ends_the_association() -> None:
    def rst(c: b.TcpConversation) -> None:
        c.frames.append(c._frame(0, c.RST))

    an = _analyze(_echo_with(rst))
    assert an.associations[0].outcome == "closed"
    assert _with(an, "ASSOC-CLOSED-NO-RELEASE") and not _with(an, "TCP-RST-IGNORED")


@pytest.mark.parametrize("side", [0, 1])
def test_a_syn_mid_association_is_ignored(side: int) -> None:
    def syn(c: b.TcpConversation) -> None:
        c.frames.append(c._frame(side, c.SYN, seq=123456))

    an = _analyze(_echo_with(syn))
    assert len(an.associations) == 1
    a = an.associations[0]
    assert a.outcome == "released" and len(a.transactions) == 2 and a.calling_ae == "MODALITY"
    assert _with(an, "TCP-SYN-IGNORED")


# -- interrupted input: what was read is reported --------------------------------------------

def _waiting_on_stdin(pid: int, pipe: int) -> bool:
    """Whether process ``pid`` has taken every byte of ``pipe`` (its standard input) and its
    main thread sits in read(0): the reader reads what is there in one call, so it has
    analysed every frame and waits for more (Linux: /proc/PID/syscall, x86-64 and arm64
    number read 0 and 63)."""
    import array
    import fcntl
    import termios

    left = array.array("i", [0])
    fcntl.ioctl(pipe, termios.FIONREAD, left)
    try:
        call = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return left[0] == 0 and len(call) > 1 and call[0] in ("0", "63") and int(call[1], 16) == 0


@pytest.mark.parametrize("sig,code", [("SIGINT", 130), ("SIGTERM", 143)])
@pytest.mark.parametrize("json_out", [True, False])
def test_interrupted_stdin_reports_what_was_read(sig: str, code: int, json_out: bool,
                                                 tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.fuzz import seeds
    from tests.fuzz.pcapwriter import pcap_bytes

    frames = []
    for i in range(40):  # 40 whole associations, then the pipe stays open
        frames += seeds.conversation("echo", client=("192.0.2.1", 40000 + i))
    data = pcap_bytes(frames)
    args = [sys.executable, "-m", "dicomsniff", "analyze", "-", "--no-progress"]
    out_path = tmp_path / "out"
    with out_path.open("wb") as out:  # a file: output never holds the reader back
        # SIGINT as a terminal's Ctrl-C finds it: a test run started in the background
        # (``pytest &`` in a script) passes SIGINT on ignored, and a child that ignores it
        # would read on until its input ends (returning 0).
        p = subprocess.Popen(args + (["--json"] if json_out else []), stdin=subprocess.PIPE,
                             stdout=out, stderr=subprocess.PIPE,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert p.stdin is not None
    p.stdin.write(data)
    p.stdin.flush()
    # The signal once every frame is analysed and the reader waits for more: not after a
    # guessed time (a loaded machine may not even have started Python by then).
    deadline = time.monotonic() + 60
    while not _waiting_on_stdin(p.pid, p.stdin.fileno()):
        assert p.poll() is None and time.monotonic() < deadline, "never read its input"
        time.sleep(0.02)
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=60)
    text = out_path.read_text()
    assert p.returncode == code, (p.returncode, err.decode())
    assert "Traceback" not in err.decode()
    assert f"{len(frames)} frames" in err.decode()
    if json_out:
        assert text.count('"type":"association"') == 40
        summary = json.loads(text.splitlines()[-1])
        assert summary["type"] == "summary" and summary["interrupted"]
        assert summary["frames"] == len(frames) and summary["associations"] == 40
    else:
        assert text.startswith(f"40 association(s) (40 released) in {len(frames)} frames"), \
            text[:200]


# -- IP fragments and IPv6 extension headers (dissectors/net.py) ------------------------------

def _summary(an) -> tuple[int, list[str]]:
    return len(an.associations), sorted(f.code for f in an.findings)


def test_an_associate_rq_in_three_ipv4_fragments_is_reassembled() -> None:
    frames, i = h.echo_frames()
    clean = _summary(_analyze(frames))
    frags = h.ipv4_fragments(frames[i], 3)
    assert len(frags) == 3
    got = _summary(_analyze(frames[:i] + frags + frames[i + 1:]))
    assert got == clean, (got, clean)
    assert _analyze(frames[:i] + frags[::-1] + frames[i + 1:]).associations[0].calling_ae == \
        "MODALITY"  # out of order too


def test_ipv4_fragments_overlapping_with_other_bytes_are_a_finding() -> None:
    frames, i = h.echo_frames()
    frags = h.ipv4_fragments(frames[i], 3, overlap_with=b"X" * 200)
    an = _analyze(frames[:i] + frags + frames[i + 1:])
    assert _with(an, "IP-FRAGMENT-CONFLICT")
    assert an.associations and an.associations[0].calling_ae == "MODALITY"  # first copy kept


def test_a_missing_fragment_is_reported_once() -> None:
    frames, i = h.echo_frames()
    frags = h.ipv4_fragments(frames[i], 3)
    an = _analyze(frames[:i] + frags[:1] + frags[2:] + frames[i + 1:])
    assert len(_with(an, "IP-FRAGMENT-INCOMPLETE")) == 1


@pytest.mark.parametrize("ext", [
    [(60, b"")] * 10,  # ten Destination Options headers
    [(44, b"\x00\x00\x00\x00\x00\x2a")],  # an atomic fragment header (offset 0, M 0)
    [(0, b""), (43, b"\x00\x00" + b"\x00" * 4), (60, b"\x01" * 30), (44, bytes(6))],
])
def test_ipv6_behind_extension_headers_is_seen(ext) -> None:
    frames, _ = h.echo_frames()
    clean = _summary(_analyze(frames))
    v6 = [h.ipv4_to_ipv6(f, ext) for f in frames]
    assert _summary(_analyze(v6)) == clean


def test_ipv6_fragments_are_reassembled() -> None:
    frames, i = h.echo_frames()
    v6 = [h.ipv4_to_ipv6(f) for f in frames]
    frags = h.ipv6_fragments(v6[i], 3)
    assert len(frags) == 3
    assert _summary(_analyze(v6[:i] + frags + v6[i + 1:])) == _summary(_analyze(frames))


def test_fragment_memory_is_bounded() -> None:
    """100,000 first fragments that never complete: held bytes stay under the cap and
    every datagram given up is counted."""
    from dissectors.net import ETH_IPV4, Fragments

    frames, i = h.echo_frames()
    first = bytearray(h.ipv4_fragments(frames[i], 3)[0])
    fr = Fragments(max_datagrams=1000, max_bytes=1 << 20)
    peak = 0
    for n in range(100_000):
        struct.pack_into("!H", first, 14 + 4, n & 0xFFFF)  # IP identification
        first[14 + 12] = n >> 16 & 0xFF  # and another source address beyond 65535
        fr.add(bytes(first), ETH_IPV4, 14, n, float(n) * 0.001)
        peak = max(peak, fr.held)
    assert peak <= 1 << 20 and len(fr.pending) <= 1000
    fr.finish(0)
    assert fr.expired == 100_000 and fr.held == 0


# -- overlapping copies that differ ---------------------------------------------------------------

def _retransmitted_rq(how: str) -> list[bytes]:
    """The A-ASSOCIATE-RQ's bytes sent again with another calling AE title.

    ``last``: right after the original (the last segment delivered); ``older``: after the
    requestor's next segment was delivered too (compared with the recent bytes, not the last
    segment); ``held``: out of order, the RQ's first 20 bytes lost until later, its rest held,
    and a copy starting 4 bytes into the held rest arriving while it waits."""
    frames, i = h.echo_frames()
    if how == "held":
        rq, _ac = b.echo_exchange()
        head = b.associate_rq()
        c = b.TcpConversation(client=("192.0.2.1", 50050), server=("192.0.2.2", 104))
        c.handshake()
        n = len(c.frames)
        c.send(0, head[:20]).send(0, head[20:], mss=9000)
        forged_head = head.replace(b"MODALITY        ", b"ATTACKER        ")
        forged = c._frame(0, c.ACK, forged_head[24:], seq=c.seq[0] - len(head) + 24)
        c.send(1, b.associate_ac()).send(0, rq[len(head):])
        c.send(1, _ac[len(b.associate_ac()):])
        fr = c.close().frames
        return fr[:n] + [fr[n + 1], forged, fr[n]] + fr[n + 2:]
    forged = frames[i].replace(b"MODALITY        ", b"ATTACKER        ")
    assert forged != frames[i]
    if how == "older":  # the AC and the requestor's next segment come between
        return frames[:i + 3] + [forged] + frames[i + 3:]
    return frames[:i + 1] + [forged] + frames[i + 1:]


@pytest.mark.parametrize("how", ["last", "older", "held"])
def test_a_retransmission_with_other_bytes_is_a_conflict(tmp_path: Path, how: str) -> None:
    frames = _retransmitted_rq(how)
    an = _analyze(frames)
    f = _with(an, "TCP-OVERLAP-CONFLICT")
    assert len(f) == 1 and "frame" in f[0].message, [x.code for x in an.findings]
    assert not [x for x in an.findings if x.severity == "error"], [x.code for x in an.findings]
    assert an.associations[0].calling_ae == "MODALITY"  # the copy a receiver keeps
    cap = write_pcap(tmp_path / "overlap.pcap", frames)  # and through the fast path
    r = run_cli("analyze", str(cap), "--json", "--no-progress")
    _ok(r, "analyze")
    assert "TCP-OVERLAP-CONFLICT" in _stores(r)[1]


# -- the fast path and the slow path: TSO total length 0, TCP data offset below 5 -------------

_REAL_STORE = Path(__file__).resolve().parent.parent / "captures" / "hostile" / "lossy" / \
    "store.pcap"


def _story(frames: list[tuple[float, bytes]]) -> tuple:
    from dicomsniff.analysis.engine import Analyzer

    an = Analyzer()
    an.consume((ts, 1, f, len(f)) for ts, f in frames)  # the fast path where it may
    an.finish()
    tx = [(t.command, t.sop_instance, t.status, t.dataset_bytes, t.dataset_partial)
          for a in an.associations for t in a.transactions]
    return tx, sorted(f.code for f in an.findings)


@pytest.mark.parametrize("mutate", ["tso_capture", "short_offset_capture"])
def test_tso_and_short_offsets_read_as_a_receiver_reads_them(mutate: str,
                                                              tmp_path: Path) -> None:
    """IPv4 total length 0 (TSO, captured on the sender) is read up to the captured end; a
    segment whose TCP data offset is below 5 is dropped. Either way the real 12-image
    storescu capture tells the same story as the clean one: same C-STOREs, data sets whole,
    no TCP-GAP, no conflict."""
    clean = _story(h._real_frames(_REAL_STORE))
    assert len(clean[0]) == 12 and all(t[2] == 0 and not t[4] for t in clean[0])
    frames = getattr(h, mutate)(_REAL_STORE)
    assert frames != h._real_frames(_REAL_STORE)
    assert _story(frames) == clean
    cap = write_pcap(tmp_path / "x.pcap", frames)  # and the command, to the export
    r = run_cli("export-objects", str(cap), str(tmp_path / "out"))
    _ok(r, "export-objects")
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 12


# -- wire strings quoted in findings: cut in text, whole in JSON ------------------------------

# any of the 2000-character values uncut (show's data set tree cuts element values at its
# own, longer, limit: objects/dump.py MAX_VALUE, with the same shorten())
_LONG_RUN = re.compile(r"([0-9CD7])\1{120,}")


def test_findings_quote_wire_values_cut_in_text_whole_in_json(tmp_path: Path) -> None:
    """Abstract and transfer syntax UIDs, an Error Comment and a Move Destination of 2000
    characters: every finding that quotes one shows it cut to the shared limit in text
    output (analyze, live -r, diagram, show) and whole in JSON."""
    from dissectors.wiretext import DISPLAY_LIMIT

    cap = write_pcap(tmp_path / "long.pcap", h.long_wire_values_association())
    j = run_cli("analyze", str(cap), "--json", "--no-progress")
    _ok(j, "analyze --json")
    found = {x["code"]: x["message"] for x in map(json.loads, j.stdout.splitlines())
             if x.get("type") == "finding"}
    quoted = {"UL-AC-TS-NOT-PROPOSED": "7" * 2000, "NEG-SOP-CLASS-REJECTED": "9" * 1996,
              "DIMSE-STATUS-FAILURE": "C" * 2000, "DIMSE-MOVE-NO-SUBASSOCIATION": "D" * 2000}
    for code, value in quoted.items():
        assert value in found[code] and "chars)" not in found[code], code
    for args in (("analyze", str(cap), "--no-progress"), ("live", "-r", str(cap)),
                 ("diagram", str(cap)), ("show", str(cap), "--transaction", "1"),
                 ("show", str(cap), "--transaction", "2")):
        r = run_cli(*args)
        _ok(r, " ".join(args[:1]))
        flat = re.sub(r"\s+", "", r.stdout)  # wrapped lines joined
        assert not _LONG_RUN.search(flat), (args, _LONG_RUN.search(flat).group()[:40])
        if args[0] == "analyze":
            assert flat.count("...(2000chars)") >= 3, r.stdout[-2000:]
    assert DISPLAY_LIMIT < 80


# -- eviction of the oldest stream in constant time --------------------------------------------

def test_evicting_the_oldest_connection_does_not_walk_the_table() -> None:
    """A plain dict finds its first key by walking the slots its deletions emptied (O(open
    connections) per eviction): 150,000 evictions at 50,000 open connections cost 20x the
    same registrations without eviction that way, under 2x with the OrderedDict's linked
    list. Measured as that ratio, so a loaded machine slows both sides alike."""
    import time

    from dicomsniff.analysis.flows import Connection, FlowTable

    n = 50_000
    keys = [struct.pack("!4s4sHH", b"\xc6\x33\x64\x01", b"\xc0\x00\x02\x02", i & 0xFFFF,
                        104 + (i >> 16)) for i in range(4 * n)]
    plain = FlowTable(frozenset(), 1 << 30, 1 << 30)  # the same work, never evicting
    t0 = time.process_time()
    for k in keys[:3 * n]:
        c = Connection(k, False)
        assert plain.register(c) is None
        plain.remove(c)
    linear = time.process_time() - t0
    table = FlowTable(frozenset(), n, 1 << 30)
    for k in keys[:n]:
        assert table.register(Connection(k, False)) is None
    t0 = time.process_time()
    for k in keys[n:]:
        oldest = table.register(Connection(k, False))
        assert oldest is not None and oldest.keys[0] != k
        table.remove(oldest)
    spent = time.process_time() - t0
    assert len(table.open) == n
    assert spent < 6 * linear, f"{spent:.2f} s for {3 * n} evictions, {linear:.2f} s without"
