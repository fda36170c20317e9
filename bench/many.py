"""Many captures: one big file against the same capture rotated into pieces, the merge against
mergecap, memory with many files, DuckDB query times, and the Dask speed-up.

    python3 -m bench.many BIG.pcap [--pieces 10] [--small 1000] [--out bench/results/many.json]

BIG.pcap is any capture (``python3 -m bench`` records ``big``, about 1 GB, in bench/cache). The
pieces are cut with editcap into a scratch directory next to it. Each measurement runs in a child
process through bench/spawn.py (wall clock and peak RSS), one run each: on a shared machine
repeat and compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .timing import Spawner

ITERATE = ("import sys; from dicomsniff.sources.merge import open_capture; "
           "n = sum(1 for _ in open_capture(sys.argv[1:])); print(n)")
QUERIES = {
    "failed C-STOREs": """
        SELECT a.calling_ae, t.sop_instance, t.status, t.file, t.file_frame
        FROM transactions t JOIN associations a ON a.run_id = t.run_id AND a.id = t.association
        WHERE t.command = 'C-STORE' AND coalesce(t.status_category, 'none') <> 'Success'""",
    "latency per AE and command": """
        SELECT a.called_ae, t.command, count(*), median(t.latency),
               quantile_cont(t.latency, 0.95)
        FROM transactions t JOIN associations a ON a.run_id = t.run_id AND a.id = t.association
        WHERE t.latency IS NOT NULL GROUP BY ALL""",
    "rejected and aborted": """
        SELECT calling_ae, called_ae, outcome, source, reason, count(*) FROM associations
        WHERE outcome IN ('rejected', 'aborted') GROUP BY ALL""",
}


def _ds(*args: str) -> list[str]:
    return [sys.executable, "-m", "dicomsniff", *args]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("big", type=Path)
    ap.add_argument("--pieces", type=int, default=10)
    ap.add_argument("--small", type=int, default=1000, help="pieces for the memory run")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("bench/results/many.json"))
    ap.add_argument("--skip", default="", help="comma list: analyze,merge,small,db,dask")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    work = args.work or Path(tempfile.mkdtemp(prefix="many-", dir=args.big.parent))
    frames = int(subprocess.run(["capinfos", "-c", "-M", "-T", str(args.big)], check=True,
                                capture_output=True, text=True).stdout.split()[-1])
    rot = work / "rot"
    if not rot.exists():
        rot.mkdir(parents=True)
        subprocess.run(["editcap", "-c", str(-(-frames // args.pieces)), str(args.big),
                        str(rot / "ct.pcap")], check=True)
    pieces = sorted(str(p) for p in rot.iterdir())
    sp = Spawner()
    out: dict = {"capture": str(args.big), "size": args.big.stat().st_size, "frames": frames,
                 "pieces": len(pieces)}

    def run(name: str, argv: list[str]) -> dict:
        r = sp.run(name, argv, stdout=os.devnull).to_dict()
        print(f"{name:34} {r['wall']:8.2f} s  {r['maxrss_kb'] / 1024:7.0f} MiB  rc {r['rc']}",
              flush=True)
        out[name] = r
        return r

    if "analyze" not in skip:
        run("analyze one file", _ds("analyze", str(args.big), "--json", "--no-progress"))
        run(f"analyze {len(pieces)} pieces", _ds("analyze", *pieces, "--json", "--no-progress"))
    if "merge" not in skip:
        run("read one file", [sys.executable, "-c", ITERATE, str(args.big)])
        run(f"merge {len(pieces)} pieces", [sys.executable, "-c", ITERATE, *pieces])
        if shutil.which("mergecap"):
            run(f"mergecap {len(pieces)} pieces", ["mergecap", "-w", os.devnull, *pieces])
    if "small" not in skip:
        small = work / "small"
        if not small.exists():
            small.mkdir()
            subprocess.run(["editcap", "-c", str(-(-frames // args.small)), str(args.big),
                            str(small / "ct.pcap")], check=True)
        n = len(os.listdir(small))
        run(f"analyze {n} pieces", _ds("analyze", str(small), "--json", "--no-progress"))
    if "db" not in skip:
        import duckdb

        db = work / "big.duckdb"
        db.unlink(missing_ok=True)
        run("analyze --db", _ds("analyze", str(args.big), "--db", str(db), "--json",
                                "--no-progress"))
        con = duckdb.connect(str(db), read_only=True)
        import time

        out["queries"] = {}
        for name, q in QUERIES.items():
            t0 = time.perf_counter()
            rows = con.execute(q).fetchall()
            dt = time.perf_counter() - t0
            out["queries"][name] = {"seconds": round(dt, 4), "rows": len(rows)}
            print(f"query {name:28} {dt * 1000:8.1f} ms  {len(rows)} rows", flush=True)
        out["db_rows"] = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                          for t in ("associations", "transactions", "findings")}
    if "dask" not in skip:
        run("dask local, 2 workers", _ds("analyze", str(args.big), "--dask", "local",
                                         "--workers", "2", "--json", "--no-progress"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
