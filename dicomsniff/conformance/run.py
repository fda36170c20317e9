"""Analyse one or more captures into one :class:`~.facts.Facts`.

The captures are opened as one set (:func:`~dicomsniff.sources.merge.open_capture`: files,
directories or globs, merged by time, a sensor's copies of the same segments kept once) and go
through one :class:`~dicomsniff.analysis.engine.Analyzer` with ``keep=False``: associations are
folded into the facts as they end, then dropped, so memory stays flat. Evidence names the file
and the frame in that file (``CaptureSet.locate``), as Wireshark numbers it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..analysis.engine import Analyzer, Limits
from ..analysis.run import analyze_source
from ..sources.capture import CaptureError
from ..sources.merge import CaptureSet, open_capture
from .facts import ConformanceBuilder, Facts


class FileProblem(Exception):
    """Captures that could not be read at all (the message names the file(s))."""


def build_facts(paths: Sequence[str] | CaptureSet, *, ports: Sequence[int] = (),
                limits: Limits | None = None, rules: Any = None,
                progress: Callable[[int, int], None] | None = None,
                tls_keylog: Any = None) -> tuple[Facts, list[str]]:
    """Facts of every capture in ``paths``; returns (facts, problems: files damaged part-way or
    unusable while others were read, one line each).

    ``paths`` may also be a capture already opened (the command line's ``open_input``).
    Raises :class:`FileProblem` when nothing can be read.
    """
    if isinstance(paths, CaptureSet):
        capture = paths
    else:
        try:
            capture = open_capture(list(paths))
        except CaptureError as exc:
            raise FileProblem(str(exc)) from None
    analyzer = Analyzer(ports=ports, limits=limits, keep=False, rules=rules,
                        tls_keylog=tls_keylog)
    facts = Facts()
    ConformanceBuilder(capture.paths, capture.locate, facts).attach(analyzer)
    try:
        result = analyze_source(capture, analyzer, progress)
    except CaptureError as exc:
        raise FileProblem(str(exc)) from None
    problems = list(capture.problems)
    if capture.single and result.reader_error:
        problems = [f"{capture.paths[0]}: capture damaged: {result.reader_error} (the "
                    f"{result.packets} frames before it were analysed)"]
    return facts, problems
