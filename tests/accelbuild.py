"""The compiled walker (dissectors/_runs.c) for tests that compare it with the Python path.

An installed build (``pip install``, ``python3 setup.py build_ext --inplace``) is used as it is;
a tree without one (a plain checkout run with PYTHONPATH) gets it compiled once into the
temporary directory, keyed by the source and the interpreter, so the comparison never depends
on how the tree was installed. No compiler there is a failure, not a skip: CI installs gcc and
the Python headers (.ci/run).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "dissectors" / "_runs.c"

_BUILD = """\
import sys
from setuptools import Extension, setup
setup(name="runs", ext_modules=[Extension("_runs", [sys.argv[1]])],
      script_args=["-q", "build_ext", "--build-lib", sys.argv[2], "--build-temp", sys.argv[3]])
"""

_walk: Callable[..., Any] | None = None
_module: Any = None


def compiled_walk() -> Callable[..., Any]:
    """``dissectors._runs.walk``, built here if the tree has no build of it."""
    global _walk
    if _walk is None:
        _walk = _compiled().walk
    return _walk


def compiled_skip() -> Callable[..., Any]:
    """``dissectors._runs.skip`` (the -j workers' skip of other shards' records), likewise."""
    return _compiled().skip


def _compiled() -> Any:
    global _module
    if _module is None:
        try:
            import dissectors._runs as mod
        except ImportError:
            mod = _build()
        _module = mod
    return _module


def _build() -> Any:
    src = SOURCE.read_bytes()
    key = hashlib.sha256(src + sys.version.encode()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"dicomsniff-runs-{key}"
    so = out / ("_runs" + sysconfig.get_config_var("EXT_SUFFIX"))
    if not so.exists():
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([sys.executable, "-c", _BUILD, str(SOURCE), tmp,
                                   os.path.join(tmp, "obj")], cwd=tmp, capture_output=True,
                                  text=True, timeout=300)
            built = Path(tmp) / so.name
            if done.returncode or not built.exists():
                raise RuntimeError("cannot compile dissectors/_runs.c (a C compiler and the "
                                   f"Python headers are needed): {done.stderr[-2000:]}")
            out.mkdir(exist_ok=True)
            os.replace(built, so)
    spec = importlib.util.spec_from_file_location("dissectors._runs", so)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
