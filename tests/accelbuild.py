"""The compiled walkers (dissectors/_runs.c, dissectors/_small.c) and file windows
(dicomsniff/sources/_mapped.c) for tests that compare them with the Python path.

An installed build (``pip install``, ``python3 setup.py build_ext --inplace``) is used as it is;
a tree without one (a plain checkout run with PYTHONPATH) gets it compiled once into the
temporary directory, keyed by the source, the headers beside it (dissectors/_records.h) and the
interpreter, so the comparison never depends on how the tree was installed. No compiler there is
a failure, not a skip: CI installs gcc and the Python headers (.ci/run).
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
MAPPED = ROOT / "dicomsniff" / "sources" / "_mapped.c"
SMALL = ROOT / "dissectors" / "_small.c"

_BUILD = """\
import sys
from setuptools import Extension, setup
setup(name=sys.argv[4], ext_modules=[Extension(sys.argv[4], [sys.argv[1]])],
      script_args=["-q", "build_ext", "--build-lib", sys.argv[2], "--build-temp", sys.argv[3]])
"""

_walk: Callable[..., Any] | None = None
_module: Any = None
_mapped: Any = None
_small: Callable[..., Any] | None = None


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
            mod = _build(SOURCE, "dissectors._runs")
        _module = mod
    return _module


def compiled_small() -> Callable[..., Any]:
    """``dissectors._small.walk`` (the walker of small-message runs), built here if the tree
    has no build of it."""
    global _small
    if _small is None:
        try:
            import dissectors._small as mod
        except ImportError:
            mod = _build(SMALL, "dissectors._small")
        _small = mod.walk
    return _small


def compiled_mapped() -> Any:
    """The module ``dicomsniff.sources._mapped`` (``Window``, ``live``, ``PAGE``), built here if
    the tree has no build of it."""
    global _mapped
    if _mapped is None:
        try:
            from dicomsniff.sources import _mapped as mod  # type: ignore[attr-defined]
        except ImportError:
            mod = _build(MAPPED, "dicomsniff.sources._mapped")
        _mapped = mod
    return _mapped


def _build(source: Path, qualified: str) -> Any:
    name = qualified.rsplit(".", 1)[1]
    src = source.read_bytes() + b"".join(h.read_bytes() for h in sorted(source.parent.glob("*.h")))
    key = hashlib.sha256(src + sys.version.encode()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"dicomsniff-{name.strip('_')}-{key}"
    so = out / (name + sysconfig.get_config_var("EXT_SUFFIX"))
    if not so.exists():
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([sys.executable, "-c", _BUILD, str(source), tmp,
                                   os.path.join(tmp, "obj"), name], cwd=tmp,
                                  capture_output=True, text=True, timeout=300)
            built = Path(tmp) / so.name
            if done.returncode or not built.exists():
                raise RuntimeError(f"cannot compile {source.relative_to(ROOT)} (a C compiler "
                                   f"and the Python headers are needed): {done.stderr[-2000:]}")
            out.mkdir(exist_ok=True)
            os.replace(built, so)
    spec = importlib.util.spec_from_file_location(qualified, so)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def analyze_json(monkeypatch, capsys, path, extra=(), **walkers) -> list[str]:
    """``analyze --json`` of ``path`` in this process with ``dicomsniff.analysis.accel``'s
    walkers set as given (``walk=...``, ``small=...``; None: the pure-Python path), its JSON
    Lines. A damaged capture (status 3) is still analysed."""
    from dicomsniff.analysis import accel
    from dicomsniff.cli import main

    for name, walker in walkers.items():
        monkeypatch.setattr(accel, name, walker)
    code = main(["analyze", "--json", *extra, str(path)])
    out = capsys.readouterr().out
    assert code in (0, 1, 3), code  # 3: the capture is damaged (reported, analysed)
    return out.splitlines()
