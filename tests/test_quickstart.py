"""The README's install commands, run as written in a fresh virtual environment.

A new user's first contact is the quick start: if `pip install .` is refused (Debian 12's own
Python is externally managed, PEP 668) or a runtime dependency is missing from pyproject.toml,
nothing else matters. This test copies the tree, runs the README's block with bash and a fresh
HOME, and checks that the bundled capture is analysed. It needs the package index (as
`.ci/run` does).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", "cache", "results", "corpus",
              "build", "dist", ".pytest_cache", ".ruff_cache"}


def install_block() -> list[str]:
    """The shell lines of the first ```sh block under '## Install' in README.md."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Install", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's Install section has no ```sh block"
    return [ln.split("  #", 1)[0].strip() for ln in block.group(1).splitlines() if ln.strip()]


def test_install_block_is_what_a_debian_user_needs():
    lines = install_block()
    assert any(ln.startswith("sudo apt-get install") and "python3-venv" in ln for ln in lines)
    assert any("python3 -m venv" in ln for ln in lines)
    assert lines[-1].startswith("pip install . && dicomsniff analyze captures/")


def test_quick_start_in_a_fresh_venv(tmp_path):
    tree = tmp_path / "dicomsniff"
    shutil.copytree(ROOT, tree, ignore=lambda d, names: [n for n in names if n in _SKIP_DIRS
                                                         or n.endswith(".egg-info")])
    home = tmp_path / "home"
    home.mkdir()
    # apt is the machine's business (CI installed python3-venv); the rest runs as written.
    script = "set -e\n" + "\n".join(ln for ln in install_block() if not ln.startswith("sudo "))
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["HOME"] = str(home)
    # Debian's own Python first, as on a fresh machine (this is where `pip install .` outside
    # a venv is refused).
    env["PATH"] = "/usr/bin:/bin:" + env.get("PATH", "")
    res = subprocess.run(["bash", "-c", script], cwd=tree, env=env, capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "MOVESCU" in res.stdout and "RELEASED" in res.stdout, res.stdout[-2000:]
    # The console script is the venv's, not this tree's.
    assert (home / ".venvs" / "dicomsniff" / "bin" / "dicomsniff").exists()
