"""Profile ``dicomsniff analyze --json`` on a benchmark capture with cProfile.

``python -m bench.profiling bulk [--top 25] [--sort tottime] [--dump out.prof]``

Runs the CLI in-process (output to /dev/null) on ``bench/cache/NAME.pcap`` (or any file
path), prints the wall time without and with the profiler and the top functions.  cProfile
inflates per-call costs, so read it for where time goes, and time changes with ``python -m
bench`` (or a plain wall-clock run, printed first).  For a sampling view without that bias:
``py-spy record -r 2000 -f speedscope -o bulk.json -- dicomsniff analyze --json F``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

from . import corpus


def _analyze(path: str) -> None:
    from dicomsniff.cli import main

    main(["analyze", "--json", "-j", "1", "--no-progress", "-o", "/dev/null", path])  # one process


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profiling", description=__doc__)
    ap.add_argument("capture", help="bulk, chatty, big (from bench/cache) or a file path")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--sort", default="tottime", choices=("tottime", "cumulative", "ncalls"))
    ap.add_argument("--dump", type=Path, help="also save the raw profile (pstats/snakeviz)")
    args = ap.parse_args(argv)
    cached = corpus.CACHE_DIR / f"{args.capture}.pcap"
    path = str(cached if cached.is_file() else Path(args.capture))
    _analyze(path)  # imports and page cache out of the way
    t0 = time.perf_counter()
    _analyze(path)
    plain = time.perf_counter() - t0
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(_analyze, path)
    profiled = time.perf_counter() - t0
    print(f"{path}: {plain:.3f} s in-process (imports excluded), {profiled:.3f} s under "
          "cProfile")
    if args.dump:
        prof.dump_stats(args.dump)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(args.sort).print_stats(args.top)
    print(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
