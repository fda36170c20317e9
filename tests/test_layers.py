"""The layering rules of docs/architecture.md, enforced: the import-linter contracts in
pyproject.toml (dissectors pure, only the TUI imports textual, analysis never imports
presentation, no import cycles), and ruff."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    r = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import "
                        "lint_imports_command; sys.exit(lint_imports_command())"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout and r.stdout.count(" KEPT") >= 4


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or "ruff"  # test extras
    r = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-4000:]
