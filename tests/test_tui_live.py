"""``dicomsniff live --tui``: the TUI fed by the live pipeline.

Driven with textual's Pilot: a ``-r FILE`` replay (the live pipeline without a capture helper),
a fake tcpdump that keeps "capturing" until it is told to stop (quitting must stop it cleanly
and leave a complete ``-w`` file), the command in a real terminal (tmux), and, as root, a real
capture on a veth between two network namespaces (``dslt<pid>-scu``/``-scp``, 192.0.2.0/24)
with dcmtk peers talking across it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomsniff.cli import build_parser
from dicomsniff.sources import interfaces
from dicomsniff.sources import live as live_mod
from dicomsniff.sources.capture import CaptureReader
from dicomsniff.sources.live import CaptureWriter
from dicomsniff.tui.app import DicomBrowser
from dicomsniff.tui.live import QUIT, LiveSource
from dicomsniff.tui.screens.ladder import LadderScreen
from tests.test_live_units import FAKE_TCPDUMP
from tests.test_tui import SIZE, pilot_test, screen_text, wait_for

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
if str(ROOT) not in sys.path:  # captures/ is a plain directory at the repo root
    sys.path.insert(0, str(ROOT))
# `python -m dicomsniff` runs this checkout's code whatever the installed (editable) package
# points at.
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))


def live_args(*argv: str):
    """The LiveOptions of ``dicomsniff live --tui ARGV``."""
    from dicomsniff.cli.live import options

    return options(build_parser().parse_args(["live", "--tui", *argv]))


def frames_in(path: Path) -> int:
    r = CaptureReader(path)
    n = sum(1 for _ in r)
    assert r.error is None, r.error
    return n


async def wait_done(source: LiveSource, timeout: float = 15.0) -> None:
    assert await asyncio.to_thread(source.done.wait, timeout), "the capture never finished"


# -- -r FILE through the live pipeline ---------------------------------------------------------


@pilot_test
async def test_replay_fills_the_list_and_the_written_file_feeds_the_detail(tmp_path: Path):
    out = tmp_path / "copy.pcap"
    source = LiveSource.from_options(live_args("-r", str(CAPTURES / "move.pcap"), "-w", str(out)))
    assert source.capture_path == str(out) and source.label.endswith("move.pcap (replay)")
    source.live.start()
    app = DicomBrowser(source)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        await pilot.pause()
        t = app.screen.table
        assert [a.id for a in t.rows] == [1, 2]
        text = screen_text(app)
        assert "MOVESCU" in text and "1 C-MOVE" in text and "4 C-STORE" in text
        assert "150 frames" in text and "move.pcap (replay)" in text
        # the detail pane reads the -w file: the data set and the PDU bytes
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, LadderScreen)
        items = screen.view.ladder.items
        screen.view.cursor = next(k for k, it in enumerate(items)
                                  if it.lines[0].endswith("C-MOVE-RQ"))
        await pilot.press("3")
        await wait_for(pilot, lambda: "Study Instance UID" in screen_text(app))
        await pilot.press("4")
        await wait_for(pilot, lambda: "P-DATA-TF" in screen_text(app))
        await pilot.press("q")
    await wait_done(source)
    assert source.error is None and source.live.frame == 150
    assert frames_in(out) == 150
    assert source.counts()["associations"] == 2 and source.counts()["transactions"] == 5


@pilot_test
async def test_rule_options_reach_the_live_analyzer():
    cap = str(CAPTURES / "findings" / "idle-timeout.pcap")
    source = LiveSource.from_options(live_args("-r", cap, "--idle-threshold", "0.5"))
    quiet = LiveSource.from_options(live_args("-r", cap, "--disable-rule", "perf-idle",
                                           "--idle-threshold", "0.5"))
    for s, want in ((source, True), (quiet, False)):
        s.live.start()
        app = DicomBrowser(s)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda app=app: app.loaded)
            assert any(f.code == "PERF-IDLE" for f in app.store.findings) is want
            await pilot.press("q")
        await wait_done(s)


@pilot_test
async def test_tui_command_takes_the_same_rule_options():
    from dicomsniff.cli.args import limits_from, rules_from
    from dicomsniff.tui.feed import FileSource

    cap = str(CAPTURES / "findings" / "idle-timeout.pcap")
    args = build_parser().parse_args(["tui", cap, "--idle-threshold", "0.5",
                                      "--max-findings", "50"])
    assert limits_from(args).max_findings == 50
    app = DicomBrowser(FileSource(cap, args.port, limits=limits_from(args),
                                  rules=rules_from(args)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        assert any(f.code == "PERF-IDLE" for f in app.store.findings)


# -- a capture helper that runs until it is stopped --------------------------------------------


@pytest.fixture
def fake_tcpdump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """tcpdump replaced by a script that writes ``capture`` to the pipe, then waits for SIGINT
    and prints its counters (42 captured) as tcpdump does when it stops."""
    def make(capture: Path) -> None:
        (tmp_path / "fake.py").write_text(FAKE_TCPDUMP)
        script = tmp_path / "tcpdump"
        script.write_text(f"#!/bin/sh\nexec {sys.executable} {tmp_path / 'fake.py'} "
                          f"{capture} 0 run\n")
        script.chmod(0o755)
        monkeypatch.setattr(interfaces, "find_helper",
                            lambda name: str(script) if name == "tcpdump" else None)
        monkeypatch.setattr(interfaces, "interface_exists", lambda iface: True)
        monkeypatch.setattr(live_mod.HelperCapture, "grace", property(lambda self: 0.1))
    return make


def first_frames(src: Path, dst: Path, n: int) -> None:
    """The first ``n`` packets of ``src``: an association still open when the capture 'ends'."""
    w = CaptureWriter(dst)
    w.open()
    for i, p in enumerate(CaptureReader(src)):
        if i == n:
            break
        w.write(p)
    w.close()


@pilot_test
async def test_quit_stops_the_helper_cleanly_and_closes_the_file(fake_tcpdump, tmp_path: Path):
    cap = tmp_path / "running.pcap"
    first_frames(CAPTURES / "mid-association.pcap", cap, 100)
    fake_tcpdump(cap)
    out = tmp_path / "live.pcapng"
    source = LiveSource.from_options(live_args("-i", "fake0", "--helper", "tcpdump", "-w",
                                            str(out)))
    source.live.start()
    assert source.capture_path == str(out) and source.label == "fake0 (live)"
    app = DicomBrowser(source)
    async with app.run_test(size=SIZE) as pilot:
        # running when the capture started: shown with its first transaction, not at its end
        await wait_for(pilot, lambda: len(app.screen.table.rows) == 1)
        await wait_for(pilot, lambda: "capturing: 100 frames" in screen_text(app))
        (a,) = app.screen.table.rows
        assert a.transactions and app.store.summary(a).state == "open"
        assert not app.loaded and not source.done.is_set()
        assert source.live.capture.proc.poll() is None  # the helper is still capturing
        await pilot.press("q")
    await wait_done(source)
    live = source.live
    assert source.stopped_by == QUIT and source.error is None
    assert live.kernel.captured == 42  # the helper printed its counters: it stopped, not died
    assert live.capture.exit_status == 0 and live.failure is None
    assert live.record(source.stopped_by, source.counts())["stopped_by"] == QUIT
    assert [f.path for f in live.files] == [str(out)]
    assert frames_in(out) == 100 == live.frame  # complete, with the statistics block
    data = out.read_bytes()
    assert data.rfind(struct.pack("<I", 5) + data[-4:]) > 0
    assert source.counts()["associations"] == 1  # reported as it stood


@pilot_test
async def test_capture_errors_without_the_command_are_the_apps_error(tmp_path: Path):
    source = LiveSource.from_options(live_args("-r", str(tmp_path / "missing.pcap")))
    app = DicomBrowser(source)  # not started first: run() starts it and reports the failure
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        await pilot.press("q")
    assert source.done.is_set() and "missing.pcap" in (source.error or "")


# -- the command in a terminal -----------------------------------------------------------------

TMUX = shutil.which("tmux")
_terminals = itertools.count(1)


def terminal(*args: str):
    """``python -m dicomsniff ARGS`` of this checkout in tmux, on a server socket of its own (a
    socket name reused right after ``kill-server`` can meet the dying server)."""
    from tests.test_tui_tmux import Terminal

    class _Terminal(Terminal):
        def __init__(self, command: list[str]) -> None:
            self.socket = f"dslt{os.getpid()}-{next(_terminals)}"
            self.name = "tui"
            line = (f"env -u COLUMNS -u LINES PYTHONPATH={shlex.quote(ENV['PYTHONPATH'])} "
                    + shlex.join(command) + "; echo EXIT=$?; sleep 60")
            self.tmux("new-session", "-d", "-s", self.name, "-x", "160", "-y", "40", "-c",
                      str(ROOT), line)

        def close(self) -> None:
            path = self.tmux("display-message", "-p", "#{socket_path}").strip()
            super().close()
            if path.endswith(self.socket):  # kill-server leaves the socket file behind
                Path(path).unlink(missing_ok=True)

    return _Terminal([sys.executable, "-m", "dicomsniff", *args])


@pytest.mark.skipif(TMUX is None, reason="needs tmux (apt-get install tmux)")
def test_live_tui_command_quits_with_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "w.pcapng"
    term = terminal("live", "--tui", "-r", str(CAPTURES / "move.pcap"), "-w", str(out),
                    "--ae", "movescu")
    try:
        first = term.wait("2 shown of 2 associations")
        assert "ae:movescu" in first  # --ae is the initial filter
        term.keys("q")
        screen = term.wait("EXIT=0")
        assert "2 association(s) (2 released)" in screen
        assert f"wrote {out} (150 packets" in screen
    finally:
        term.close()
    assert frames_in(out) == 150


@pytest.mark.skipif(TMUX is None, reason="needs tmux (apt-get install tmux)")
def test_live_tui_sigterm_ends_it_like_q(tmp_path: Path) -> None:
    """A FIFO keeps the input open, as a remote capture would: SIGTERM ends the app, then the
    command waits for the input to end before its summary."""
    fifo = tmp_path / "remote.pcap"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)  # a writer that stays, without blocking
    term = None
    try:
        os.write(fd, (CAPTURES / "echo.pcap").read_bytes())
        term = terminal("live", "--tui", "-r", str(fifo))
        term.wait("1 shown of 1 associations")
        shell = int(term.tmux("list-panes", "-t", term.name, "-F", "#{pane_pid}").split()[0])
        kids = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        assert len(kids) == 1
        os.kill(int(kids[0]), signal.SIGTERM)
        term.wait("waiting for the capture to end")
        os.close(fd)
        fd = -1
        screen = term.wait("EXIT=0")
        assert "stopped by SIGTERM" in screen and "1 association(s) (1 released)" in screen
    finally:
        if fd >= 0:
            os.close(fd)
        if term is not None:
            term.close()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv (util-linux) to drop the capture capability")
def test_no_permission_is_one_line_before_any_screen(tmp_path: Path) -> None:
    """Without CAP_NET_RAW (dropped from the bounding set, so no helper can have it)."""
    pcap = tmp_path / "never.pcap"
    res = subprocess.run(["setpriv", "--bounding-set", "-net_raw,-net_admin", sys.executable,
                          "-m", "dicomsniff", "live", "--tui", "-i", "lo", "-w", str(pcap)],
                         capture_output=True, text=True, cwd=ROOT, timeout=30,
                         stdin=subprocess.DEVNULL, env=ENV)
    assert res.returncode == 2 and res.stdout == ""
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("dicomsniff live: no permission to capture on lo")
    assert not pcap.exists()


# -- as root: a real capture between two network namespaces -------------------------------------

BIN = Path("/usr/bin")  # dcmtk by full path: pynetdicom's apps of the same names shadow it
PORT = 11112


def _netns_skip() -> str | None:
    from captures.netns import netns_available

    ok, why = netns_available()
    if not ok:
        return why
    for tool in ("storescp", "storescu", "echoscu"):
        if not (BIN / tool).exists():
            return f"dcmtk {tool} not found in /usr/bin (apt-get install dcmtk)"
    return None


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple]:
    why = _netns_skip()
    if why:
        pytest.skip(why)
    from captures import netns, synth
    from captures.session import Session

    bed = netns.Testbed(prefix=f"dslt{os.getpid()}", scu_if="dslt0", scp_if="dslt1")
    try:
        bed.up()
        s = Session(bed, tmp_path, tmp_path / "unused.pcap", nodelay=True)
        try:
            recv = tmp_path / "received"
            recv.mkdir()
            s.server("storescp", [BIN / "storescp", "-aet", "STORESCP", "-od", recv, PORT],
                     PORT)
            images = synth.ct_series(tmp_path / "images", key="dslt", count=3, rows=64,
                                     cols=64)
            yield bed, s, images
        finally:
            s.stop_servers()
    finally:
        bed.down()


@pytest.mark.netns
@pilot_test
async def test_real_capture_on_a_veth_fills_the_tui(lab, tmp_path: Path):
    from captures.netns import SCP, SCU

    bed, session, images = lab
    out = tmp_path / "veth.pcapng"
    source = LiveSource.from_options(
        live_args("-i", bed.iface(SCU), "--port", str(PORT), "--helper", "tcpdump",
                  "--buffer-size", "16", "-w", str(out)),
        wrap=bed.cmd(SCU, []))
    source.live.start()  # returns once tcpdump listens: nothing sent after it is missed
    app = DicomBrowser(source)
    scp = bed.ip4(SCP)
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.to_thread(session.client, "echoscu", [
            BIN / "echoscu", "-aet", "ECHOSCU", "-aec", "STORESCP", scp, PORT], timeout=30)
        await wait_for(pilot, lambda: len(app.screen.table.rows) == 1)
        await asyncio.to_thread(session.client, "storescu", [
            BIN / "storescu", "-aet", "STORESCU", "-aec", "STORESCP", scp, PORT,
            *[i.path for i in images]], timeout=30)
        await wait_for(pilot, lambda: len(app.screen.table.rows) == 2
                       and len(app.store.ended) == 2)
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "ECHOSCU" in text and "STORESCU" in text and "STORESCP" in text
        assert "1 C-ECHO" in text and "3 C-STORE" in text
        assert "capturing:" in text and not app.loaded  # still capturing
        assert {app.store.summary(a).state for a in app.screen.table.rows} == {"success"}
        t0 = time.monotonic()
        await pilot.press("q")
    await wait_done(source)
    assert time.monotonic() - t0 < 10
    live = source.live
    assert source.stopped_by == QUIT and source.error is None
    assert live.capture.exit_status == 0 and live.kernel.dropped == 0
    assert frames_in(out) == live.frame > 0
    counts = source.counts()
    assert counts["associations"] == 2 and counts["transactions"] == 4
    res = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", str(out), "--json"],
                         capture_output=True, text=True, timeout=60, env=ENV)
    assert res.returncode == 0 and res.stdout.count('"type":"transaction"') == 4
