"""Longer fuzzing runs of the same harnesses as tests/test_fuzz.py.

Usage (from the repository root)::

    python -m tests.fuzz --minutes 10              # every target, time split evenly
    python -m tests.fuzz --minutes 5 --only ul tcp # some targets
    python -m tests.fuzz --list                    # targets and what they fuzz
    python -m tests.fuzz --examples 5000           # fixed, derandomized budget (like CI, bigger)
    python -m tests.fuzz --atheris ul -- -runs=100000   # coverage-guided, if atheris installed

Hypothesis mode draws fresh random batches (seeds 0, 1, 2, ... so a run is reproducible with
--first-seed) until the time is up; a failing batch ends early and the next seed starts, so a
shallow bug is reported once per batch. Each failure is shrunk, printed and saved as
tests/regressions/<target>-<hash>.repr, which the default test run then replays
(tests/test_fuzz.py::test_regression). Atheris crash files (crash-*) can be copied to
tests/regressions/<target>-<name>.bin for the same replay. Exit status: 0 no failure, 1 failures.
"""

from __future__ import annotations

import argparse
import sys

TARGET_NAMES = ("analyzer", "assembler", "assoc", "capture", "cli", "command", "h2", "headers",
                "http", "merge", "multipart", "nativexml", "part10head", "small", "smallwalk",
                "tcp", "tls", "ul")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--atheris" in argv:  # before anything imports the code that atheris instruments
        i = argv.index("--atheris")
        if i + 1 >= len(argv) or argv[i + 1] not in TARGET_NAMES:
            sys.exit(f"--atheris needs a target: {', '.join(TARGET_NAMES)}")
        from .atheris_main import fuzz

        flags = [a for a in argv[i + 2:] if a != "--"]
        return fuzz(argv[i + 1], [sys.argv[0], *flags])

    from .runner import run
    from .targets import TARGETS

    assert set(TARGETS) == set(TARGET_NAMES)
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=None,
                   help="total time budget, split evenly between the targets")
    p.add_argument("--examples", type=int, default=None,
                   help="fixed derandomized budget per target instead of a time budget")
    p.add_argument("--only", nargs="+", choices=sorted(TARGETS), default=None)
    p.add_argument("--first-seed", type=int, default=0, help="seed of the first random batch")
    p.add_argument("--batch", type=int, default=2000, help="examples per random batch")
    p.add_argument("--no-save", action="store_true", help="do not write tests/regressions/")
    p.add_argument("--list", action="store_true", help="list the targets and exit")
    p.add_argument("--atheris", metavar="TARGET", choices=sorted(TARGETS), default=None,
                   help="run TARGET under atheris (libFuzzer); arguments after -- go to it")
    args = p.parse_args(argv)
    if args.list:
        for t in TARGETS.values():
            print(f"{t.name:10} {t.doc} (CI: {t.ci_examples} examples)")
        return 0
    names = args.only or list(TARGETS)
    if args.examples is None and args.minutes is None:
        args.minutes = 10.0
    per = None if args.minutes is None else args.minutes * 60 / len(names)
    total_fail = 0
    print(f"{'target':10} {'executions':>10} {'seconds':>8} {'exec/s':>8}  failures")
    for name in names:
        stats = run(TARGETS[name], max_examples=args.examples or 0, seconds=per,
                    save=not args.no_save, batch=args.batch, first_seed=args.first_seed)
        rate = stats.executions / stats.seconds if stats.seconds else 0.0
        print(f"{name:10} {stats.executions:>10} {stats.seconds:>8.1f} {rate:>8.0f}  "
              f"{len(stats.failures)}", flush=True)
        for f in stats.failures:
            print("  " + f.replace("\n", "\n  ")[:4000])
        for path in sorted(set(stats.saved)):
            print(f"  saved {path}")
        total_fail += len(stats.failures)
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main())
