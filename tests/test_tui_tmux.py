"""The installed ``dicomsniff tui`` in a real terminal (tmux): keys in, screen out."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="needs tmux (apt-get install tmux)")


def dicomsniff_argv() -> list[str]:
    script = Path(sys.executable).with_name("dicomsniff")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "dicomsniff"]


class Terminal:
    """A detached tmux session on a private server socket."""

    def __init__(self, command: list[str], width: int = 140, height: int = 40) -> None:
        self.socket = f"dstui{os.getpid()}"
        self.name = "tui"
        # The terminal's size comes from tmux, not from a COLUMNS pytest may have set.
        line = "env -u COLUMNS -u LINES " + shlex.join(command) + "; echo EXIT=$?; sleep 60"
        self.tmux("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                  line)

    def tmux(self, *args: str) -> str:
        r = subprocess.run([TMUX or "tmux", "-L", self.socket, *args], capture_output=True,
                           text=True, timeout=20)
        return r.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def wait(self, text: str, timeout: float = 20.0) -> str:
        t0 = time.monotonic()
        while True:
            out = self.screen()
            if text in out:
                return out
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"{text!r} never appeared; the screen:\n{out}")
            time.sleep(0.05)

    def keys(self, *keys: str) -> None:
        for k in keys:
            self.tmux("send-keys", "-t", self.name, k)
            time.sleep(0.15)  # Escape followed by a letter would read as Alt+letter

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def terminal():
    made: list[Terminal] = []

    def start(*args: str) -> Terminal:
        t = Terminal([*dicomsniff_argv(), *args])
        made.append(t)
        return t

    yield start
    for t in made:
        t.close()


def test_browse_a_capture_with_the_keyboard(terminal):
    t0 = time.monotonic()
    term = terminal("tui", str(CAPTURES / "move.pcap"))
    first = term.wait("2 shown of 2 associations")
    assert time.monotonic() - t0 < 15
    assert "MOVESCU" in first and "ARCHIVE" in first and "1 C-MOVE" in first
    term.keys("Enter")
    out = term.wait("C-MOVE-RQ")
    assert "C-STORE-RQ x 4" in out and "Negotiation" in out
    term.keys("4")
    term.wait("00000000  01 00 00 00")  # the A-ASSOCIATE-RQ in hex
    term.keys("Escape")
    term.wait("2 shown of 2 associations")
    term.keys("/", "calling:archive", "Enter")
    term.wait("1 shown of 2 associations")
    term.keys("?")
    term.wait("this help")
    term.keys("Escape", "q")
    term.wait("EXIT=0")


def test_errors_come_before_the_screen(terminal, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    r = subprocess.run([*dicomsniff_argv(), "tui", str(bad)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "not a pcap" in r.stderr
    r = subprocess.run([*dicomsniff_argv(), "tui", str(tmp_path / "missing.pcap")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no such file" in r.stderr and r.stderr.count("\n") == 1
    r = subprocess.run([*dicomsniff_argv(), "tui", str(CAPTURES / "echo.pcap"), "--filter",
                        "colour:red"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown filter key" in r.stderr
