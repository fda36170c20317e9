"""Record DICOM captures of real peers (dcmtk, pynetdicom) talking across two network namespaces.

CLI (root needed)::

    sudo python3 captures/record.py --all                 # the committed sample corpus
    sudo python3 captures/record.py echo move --out /tmp/x
    sudo python3 captures/record.py bulk --set images=50 --out /tmp/bench --no-manifest
    python3 captures/record.py --list

API (for the benchmark and tests)::

    from captures.record import Recorder, record_scenario
    entry = record_scenario("bulk", Path("/tmp/bulk.pcap"), prefix="dsbench", images=240)

Every call builds fresh namespaces (``<prefix>-scu``/``<prefix>-scp``) and removes them
afterwards, also on errors; leftovers from a crashed run with the same prefix are removed first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from captures import pcapfile  # noqa: E402
from captures.netns import Testbed  # noqa: E402
from captures.scenarios import SCENARIOS, copy_peer_logs, names  # noqa: E402
from captures.session import Session  # noqa: E402

CAPTURES_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


def tool_versions() -> dict[str, str]:
    """Versions of the peers and the capture tool, recorded once per manifest."""
    out: dict[str, str] = {"kernel": platform.release()}
    try:
        first = subprocess.run(["/usr/bin/storescp", "--version"], capture_output=True,
                               text=True, check=False).stdout.splitlines()
        out["dcmtk"] = first[0].split()[2].lstrip("v") if first else "unknown"
    except (OSError, IndexError):
        out["dcmtk"] = "unknown"
    for mod in ("pynetdicom", "pydicom"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = "missing"
    try:
        res = subprocess.run(["tcpdump", "--version"], capture_output=True, text=True,
                             check=False)
        out["tcpdump"] = res.stdout.split()[2] if res.stdout else "unknown"
    except (OSError, IndexError):
        out["tcpdump"] = "unknown"
    return out


def totals(associations: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums over associations: what a whole-capture summary should report."""
    outcome = Counter(a["outcome"] for a in associations)
    ops: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    pending = 0
    for a in associations:
        for o in a["operations"]:
            ops[o["op"]] += 1
            statuses[f"{o['op']} {o['status']}"] += 1
            pending += o.get("pending", 0)
    return {"associations": len(associations), "outcomes": dict(outcome),
            "operations": dict(ops), "final_statuses": dict(statuses),
            "pending_responses": pending}


def describe_pcap(path: Path) -> dict[str, Any]:
    """Size, hash, frame count and largest frame of a capture file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    count, largest, first_ts, last_ts = 0, 0, None, None
    for fr in pcapfile.frames(path):
        count += 1
        largest = max(largest, fr.orig_len)
        first_ts = fr.ts if first_ts is None else first_ts
        last_ts = fr.ts
    return {"size_bytes": path.stat().st_size, "sha256": h.hexdigest(), "frames": count,
            "max_frame_bytes": largest,
            "duration_s": round((last_ts or 0) - (first_ts or 0), 3)}


class Recorder:
    """Records scenarios into ``out_dir``, one fresh pair of namespaces per recording.

    ``prefix`` names the namespaces; pick a unique one when several recorders may run at once.
    ``keep_work`` keeps the scratch directory (synthetic files, peer logs) for debugging.
    """

    def __init__(self, out_dir: Path = CAPTURES_DIR, prefix: str = "dsrec", *,
                 keep_work: bool = False, work_root: Path | None = None,
                 verbose: bool = True) -> None:
        if not 0 < len(prefix) <= 32 or not prefix.replace("-", "").replace("_", "").isalnum():
            raise ValueError("prefix must be 1-32 characters of [A-Za-z0-9_-]")
        self.out_dir = Path(out_dir)
        self.prefix = prefix
        self.keep_work = keep_work
        self.work_root = work_root
        self.verbose = verbose

    def _say(self, msg: str) -> None:
        if self.verbose:
            print(msg, file=sys.stderr, flush=True)

    def record(self, name: str, out_path: Path | None = None, **params: Any) -> dict[str, Any]:
        """Record scenario ``name`` (knobs in ``params`` override its defaults).

        Returns the manifest entry: file facts plus the peers' ground truth.
        """
        if name not in SCENARIOS:
            raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
        sc = SCENARIOS[name]
        nodelay = bool(params.pop("nodelay", sc.nodelay))  # any scenario: Nagle off/on
        unknown = set(params) - set(sc.defaults)
        if unknown:
            raise TypeError(f"{name}: unknown parameter(s) {sorted(unknown)}; "
                            f"known: {sorted(sc.defaults)}")
        p = {**sc.defaults, **params}
        out = Path(out_path) if out_path else self.out_dir / sc.filename
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-{name}-", dir=self.work_root))
        self._say(f"recording {name} -> {out}")
        started = time.monotonic()
        tmp = out.with_name(out.name + ".part")
        try:
            with Testbed(prefix=self.prefix) as bed:
                s = Session(bed, work, tmp, nodelay=nodelay)
                try:
                    truth = sc.func(s, p)
                finally:
                    s.stop_servers()
                    if self.keep_work:
                        copy_peer_logs(s, work / "kept-logs")
                stats, offloads = s.tcpdump_stats, bed.offloads
            if stats.get("dropped_by_kernel", 0):
                raise RuntimeError(f"{name}: tcpdump dropped {stats['dropped_by_kernel']} "
                                   "packets; the capture is incomplete")
            tmp.replace(out)
            # tcpdump hands its file to its own user; give it the output directory's owner.
            st = out.parent.stat()
            os.chown(out, st.st_uid, st.st_gid)
        finally:
            tmp.unlink(missing_ok=True)
            if self.keep_work:
                self._say(f"  work dir kept: {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
        facts = describe_pcap(out)
        entry: dict[str, Any] = {
            "file": out.name,
            "scenario": name,
            "description": sc.description,
            "params": p,
            "ip_version": truth.pop("ip_version", 4),
            "server_ports": truth.pop("server_ports"),
            "starts_mid_association": truth.pop("starts_mid_association", False),
            **facts,
            "tcpdump": stats,
            "offloads": offloads,
            "tcp_nodelay": nodelay,
            **truth,
        }
        entry["totals"] = totals(entry["associations"])
        self._say(f"  {facts['frames']} frames, {facts['size_bytes']} bytes, "
                  f"{time.monotonic() - started:.1f}s")
        return entry

    def record_many(self, scenario_names: list[str], manifest: bool = True) -> list[dict]:
        """Record several scenarios and (optionally) merge them into ``out_dir/manifest.json``."""
        entries = [self.record(n) for n in scenario_names]
        if manifest:
            write_manifest(self.out_dir / MANIFEST, entries)
        return entries


def record_scenario(name: str, out_path: Path, prefix: str = "dsrec", **params: Any) -> dict:
    """Record one scenario to ``out_path``; returns its manifest entry (ground truth)."""
    return Recorder(Path(out_path).parent, prefix, verbose=False).record(name, out_path, **params)


def write_manifest(path: Path, entries: list[dict[str, Any]]) -> None:
    """Merge ``entries`` into the manifest at ``path`` (same file name replaces), in the
    scenarios' registry order."""
    old: dict[str, Any] = {}
    if path.exists():
        old = {e["file"]: e for e in json.loads(path.read_text()).get("captures", [])}
    for e in entries:
        old[e["file"]] = e
    order = {sc.filename: i for i, sc in enumerate(SCENARIOS.values())}
    captures = sorted(old.values(), key=lambda e: (order.get(e["file"], 999), e["file"]))
    doc = {
        "version": MANIFEST_VERSION,
        "generated_by": "captures/record.py",
        "network": {"scu": {"ipv4": "192.0.2.1", "ipv6": "2001:db8::1"},
                    "scp": {"ipv4": "192.0.2.2", "ipv6": "2001:db8::2"}, "mtu": 1500},
        "tools": tool_versions(),
        "captures": captures,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)


def update_readme_table(readme: Path, manifest: Path) -> None:
    """Rewrite the capture table between the README's table markers from the manifest."""
    start, end = "<!-- table:start -->", "<!-- table:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        return
    rows = []
    for e in json.loads(manifest.read_text())["captures"]:
        size = e["size_bytes"]
        human = f"{size / 1024:.1f} KB" if size < 1 << 20 else f"{size / 2**20:.1f} MB"
        ports = ", ".join(map(str, e["server_ports"])) + (" (IPv6)" if e["ip_version"] == 6
                                                           else "")
        rows.append(f"| `{e['file']}` | {human} | {e['frames']} | {ports} | "
                    f"{e['description']} |")
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    readme.write_text(f"{head}{start}\n" + "\n".join(rows) + f"\n{end}{tail}")


def _parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Record DICOM sample captures between two "
                                 "network namespaces (needs root).")
    ap.add_argument("scenarios", nargs="*", help="scenario names (see --list)")
    ap.add_argument("--all", action="store_true", help="record every sample scenario")
    ap.add_argument("--list", action="store_true", help="list scenarios and their parameters")
    ap.add_argument("--out", type=Path, default=CAPTURES_DIR, help="output directory")
    ap.add_argument("--prefix", default="dsrec", help="namespace name prefix (default dsrec)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a scenario parameter (all named scenarios must have it)")
    ap.add_argument("--no-manifest", action="store_true", help="do not touch manifest.json")
    ap.add_argument("--keep-work", action="store_true", help="keep scratch dirs and peer logs")
    args = ap.parse_args(argv)

    if args.list:
        for n, sc in SCENARIOS.items():
            tag = "sample" if sc.sample else "bench "
            knobs = " ".join(f"{k}={v}" for k, v in sc.defaults.items())
            print(f"{n:28} {tag} {sc.filename:34} {knobs}")
        return 0
    chosen = names(sample_only=True) if args.all else args.scenarios
    if not chosen:
        ap.error("name scenarios or use --all (see --list)")
    params = {k: _parse_value(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    args.out.mkdir(parents=True, exist_ok=True)
    # Stage everything, then swap it in with the manifest: readers of --out (tests, other
    # engineers) never see pcaps and manifest out of step for the length of a whole run.
    stage = Path(tempfile.mkdtemp(prefix=".recording-", dir=args.out))
    try:
        rec = Recorder(stage, args.prefix, keep_work=args.keep_work)
        entries = [rec.record(n, **params) for n in chosen]
        st = args.out.stat()
        for e in entries:
            (stage / e["file"]).replace(args.out / e["file"])
            os.chown(args.out / e["file"], st.st_uid, st.st_gid)
        if not args.no_manifest:
            write_manifest(args.out / MANIFEST, entries)
            if (args.out / "README.md").exists():
                update_readme_table(args.out / "README.md", args.out / MANIFEST)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    for e in entries:
        print(f"{e['file']:34} {e['size_bytes']:>10} bytes {e['frames']:>7} frames  "
              f"{e['totals']['operations']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
