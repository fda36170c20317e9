"""The optional compiled accelerators: ``dissectors._runs.walk`` and ``dissectors._small.walk``
(``walk`` and ``small``), or None.

It walks a bulk run (data set segments nobody collects and the peer's bare ACKs) in the
reader's chunk in C, where the engine's Python fast path would count them one by one
(:meth:`dicomsniff.analysis.engine.Analyzer.consume`; figures in docs/performance.md). It is
built by ``pip install`` when a C compiler is there and left out quietly when not (setup.py);
``DICOMSNIFF_NO_ACCEL=1`` turns it off, so the two paths can be compared (tests/test_accel.py).

``small`` walks a run of small messages (query-heavy traffic: headers, command sets and small
data sets in segments of their own) of one connection, both directions, doing the engine's
in-order fast path and the upper-layer parser's common branches in C; the events it makes go
to the association tracker after the walk (tests/test_small_walk.py compares it with Python).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

walk: Callable[..., Any] | None = None
# ``-j`` workers: the records of other workers' connections passed over in C
# (dicomsniff/parallel/shard.py ConnectionFilter.skipper), or None
skip: Callable[..., Any] | None = None
small: Callable[..., Any] | None = None
OFF = os.environ.get("DICOMSNIFF_NO_ACCEL", "") not in ("", "0")
if not OFF:
    try:
        from dissectors._runs import skip, walk
    except ImportError:  # no compiler where it was installed: the Python path does it all
        walk = skip = None
    try:
        from dissectors._small import walk as small
    except ImportError:
        small = None


def describe() -> str:
    """Which path walks bulk runs, for ``dicomsniff --version`` and the benchmark."""
    if walk is not None:
        return "compiled walker" + (", small messages too" if small is not None else "")
    if OFF:
        return "pure Python, DICOMSNIFF_NO_ACCEL set"
    return "pure Python, no compiled walker built"
