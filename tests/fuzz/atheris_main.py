"""Coverage-guided fuzzing of the same targets with atheris (libFuzzer), when it is installed.

Hypothesis explores structure; libFuzzer follows branch coverage and finds byte patterns no
strategy describes. Each target's ``from_bytes`` maps libFuzzer's bytes to a case, so a crash
file replays with tests/test_fuzz.py once copied to tests/regressions/<target>-<name>.bin.

    python -m tests.fuzz --atheris ul -- -runs=100000 -max_len=4096
    python -m tests.fuzz --atheris analyzer -- -max_total_time=600 corpus_dir/

Only the analyzer's own packages are instrumented (instrumenting hypothesis too would cost a
minute of start-up), so they are imported here, inside instrument_imports, before the targets.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

INSTRUMENTED = ("dissectors.net", "dissectors.tcp", "dissectors.ul.items", "dissectors.ul.stream",
                "dissectors.dimse.command", "dissectors.dimse.assembler",
                "dicomsniff.sources.capture", "dicomsniff.analysis.tracker",
                "dicomsniff.analysis.engine", "dicomsniff.analysis.run", "dicomsniff.cli",
                "dicomsniff.report.text", "dicomsniff.report.jsonl")


def available() -> bool:
    return importlib.util.find_spec("atheris") is not None


def fuzz(name: str, argv: list[str]) -> int:
    """Run target ``name`` under libFuzzer with ``argv`` (libFuzzer flags). On a crash libFuzzer
    writes crash-<sha1> and exits with its own status."""
    if not available():
        sys.stderr.write("atheris is not installed (pip install atheris); nothing to do\n")
        return 2
    import atheris

    already = [m for m in INSTRUMENTED if m in sys.modules]
    if already:
        sys.stderr.write(f"warning: {already[0]} imported before instrumentation\n")
    with atheris.instrument_imports(include=["dicomsniff", "dissectors"]):
        for mod in INSTRUMENTED:
            importlib.import_module(mod)
    from . import targets

    targets.USE_ALARM = False
    target = targets.TARGETS[name]

    def one_input(data: bytes) -> None:
        target.check(target.from_bytes(data))

    atheris.Setup(argv, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m tests.fuzz.atheris_main TARGET [libFuzzer flags]")
    sys.exit(fuzz(sys.argv[1], [sys.argv[0], *sys.argv[2:]]))
