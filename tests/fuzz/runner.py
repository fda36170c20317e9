"""Run a target under hypothesis with a fixed example budget or a time budget; replay crashes.

CI runs are derandomized (the same examples on every machine, no --hypothesis-seed needed).
Long runs draw fresh random batches until the time is up, and save any failing case under
tests/regressions/ so that the default test run replays it from then on.
"""

from __future__ import annotations

import ast
import hashlib
import time
import traceback
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hyp_seed

from .targets import TARGETS, Target

REGRESSIONS = Path(__file__).resolve().parent.parent / "regressions"


@dataclass
class RunStats:
    target: str
    executions: int = 0
    batches: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    saved: list[Path] = field(default_factory=list)


def hypothesis_test(target: Target, max_examples: int, *, derandomize: bool = True,
                    seed: int | None = None,
                    on_case: Callable[[Any], None] | None = None) -> Callable[[], None]:
    """A zero-argument hypothesis test of ``target`` with a fixed budget."""

    def body(case: Any) -> None:
        if on_case is not None:
            on_case(case)
        target.check(case)

    test = given(target.strategy())(body)
    test = settings(max_examples=max_examples, deadline=None, derandomize=derandomize,
                    database=None, suppress_health_check=list(HealthCheck),
                    report_multiple_bugs=False, print_blob=False)(test)
    if seed is not None and not derandomize:
        test = hyp_seed(seed)(test)
    return test


def _plain(x: Any) -> Any:
    if isinstance(x, tuple):  # NamedTuples included
        return tuple(_plain(v) for v in x)
    if isinstance(x, list):
        return [_plain(v) for v in x]
    return x


def case_literal(case: Any) -> str:
    """A NamedTuple case as a Python literal (ast.literal_eval can read it back)."""
    return repr(_plain(case))


def case_from_literal(cls: type, value: tuple) -> Any:
    """Rebuild a (possibly nested) NamedTuple case from its plain-tuple literal."""
    hints = typing.get_type_hints(cls)
    fields = []
    for name, v in zip(cls._fields, value, strict=True):  # type: ignore[attr-defined]
        t = hints.get(name)
        fields.append(case_from_literal(t, v) if hasattr(t, "_fields") else v)
    return cls(*fields)


def save_regression(target: Target, case: Any, label: str = "") -> Path:
    """Store a failing case in tests/regressions/<target>-<hash>.repr."""
    text = case_literal(case)
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    REGRESSIONS.mkdir(exist_ok=True)
    path = REGRESSIONS / f"{target.name}-{label or digest}.repr"
    path.write_text(text + "\n")
    return path


def load_case(path: Path) -> tuple[Target, Any]:
    """A regression file back into (target, case): .repr is a literal, .bin raw fuzzer bytes."""
    name = path.name.split("-", 1)[0]
    target = TARGETS[name]
    if path.suffix == ".repr":
        return target, case_from_literal(target.case, ast.literal_eval(path.read_text()))
    return target, target.from_bytes(path.read_bytes())


def run(target: Target, *, max_examples: int, seconds: float | None = None,
        save: bool = False, batch: int = 2000, first_seed: int = 0) -> RunStats:
    """Fixed budget (seconds None, derandomized) or batches of fresh seeds until time is up."""
    stats = RunStats(target.name)
    last: list[Any] = [None]

    def on_case(case: Any) -> None:
        stats.executions += 1
        last[0] = case

    t0 = time.monotonic()
    seed = first_seed
    while True:
        n = max_examples if seconds is None else batch
        test = hypothesis_test(target, n, derandomize=seconds is None, seed=seed,
                               on_case=on_case)
        stats.batches += 1
        try:
            test()
        except Exception as exc:  # noqa: BLE001 - report every failure, keep fuzzing others
            # Hypothesis replays the shrunk example last, so `last` is the minimal case.
            stats.failures.append(f"seed {seed}: {type(exc).__name__}: {exc}\n"
                                  + "".join(traceback.format_exception(exc)[-6:]))
            if save and last[0] is not None:
                stats.saved.append(save_regression(target, last[0]))
        seed += 1
        if seconds is None or time.monotonic() - t0 >= seconds:
            break
    stats.seconds = time.monotonic() - t0
    return stats
