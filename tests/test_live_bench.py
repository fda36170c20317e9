"""Throughput of ``dicomsniff live``: a storage transfer at the full speed of a veth pair.

storescu sends 512x512 CT images (0.5 MB each) to ``storescp --ignore`` across a veth pair
between two network namespaces while ``dicomsniff live`` captures on the veth. Reported: MB/s
of the transfer, the kernel's drop count, and the CPU used by dicomsniff and by its capture
helper (from the summary record). Offloads are off (as in captures/netns.py), so every packet
is MTU-sized: the most packets per byte, the hardest case for a per-packet analyzer.

Slow (not in the default run). By hand, with a table for the README::

    python3 tests/test_live_bench.py [--mb 300] [--runs 3] [--offloads]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from captures import netns  # noqa: E402
from captures.netns import SCP, SCU, netns_available, stop_process, wait_listening  # noqa: E402

IMAGE_BYTES = 525_614  # one 512x512 16-bit CT image file from captures.synth
PORT = 11112
DICOMSNIFF = [sys.executable, "-m", "dicomsniff"]
NICE = 0  # --nice: run dicomsniff (and its helper) at another priority
BUFFER_MIB = 0  # --buffer-size for dicomsniff (0: its default)


def _images(work: Path, count: int = 4) -> list[Path]:
    from captures import synth

    return [im.path for im in synth.ct_series(work / "img", key="dslive-bench", count=count,
                                               rows=512, cols=512)]


def _ready(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    """Wait for dicomsniff's 'capturing on' line on stderr."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "capturing on" in line:
            return line
        if not line and proc.poll() is not None:
            break
    raise RuntimeError(f"dicomsniff did not start: {proc.stderr.read()}")


def limit_rate(bed: netns.Testbed, mb_s: float | None) -> None:
    """Shape the SCU's egress (the data direction) to ``mb_s`` MB/s with tbf; None: no limit."""
    dev = bed.iface(SCU)
    subprocess.run(["ip", "netns", "exec", bed.ns(SCU), "tc", "qdisc", "del", "dev", dev, "root"],
                   capture_output=True)
    if mb_s:
        subprocess.run(["ip", "netns", "exec", bed.ns(SCU), "tc", "qdisc", "add", "dev", dev,
                        "root", "tbf", "rate", f"{int(mb_s * 8)}mbit", "burst", "512kb",
                        "latency", "100ms"], check=True, capture_output=True)


def run_once(bed: netns.Testbed, work: Path, images: list[Path], mb: int,
             mode: str) -> dict[str, Any]:
    """One transfer of about ``mb`` MB under capture mode ``mode``; returns the figures."""
    env = dict(os.environ, TCP_NODELAY="1")  # dcmtk: no Nagle (else 40 ms per image)
    repeat = max(1, round(mb * 1e6 / (IMAGE_BYTES * len(images))))
    scp = subprocess.Popen(bed.cmd(SCP, ["/usr/bin/storescp", "--ignore", "-pdu", "131072",
                                         str(PORT)]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env)
    live = None
    try:
        wait_listening(scp, PORT)
        if mode != "none":
            argv = [*DICOMSNIFF, "live", "-i", bed.iface(SCU), "--json"]
            if mode.startswith("pcap"):
                argv += ["-w", str(work / "bench.pcap")]
            if mode.endswith("dumpcap"):
                argv += ["--helper", "dumpcap"]
            if mode == "rich":
                argv.remove("--json")
            if BUFFER_MIB:
                argv += ["--buffer-size", str(BUFFER_MIB)]
            if NICE:
                argv = ["nice", "-n", str(NICE), *argv]
            out_file = open(work / "live.out", "w+")  # noqa: SIM115 - closed below
            live = subprocess.Popen(bed.cmd(SCU, argv), stdout=out_file,
                                    stderr=subprocess.PIPE, text=True, cwd=ROOT)
            _ready(live)
        t0 = time.monotonic()
        res = subprocess.run(bed.cmd(SCU, ["/usr/bin/storescu", "-pdu", "131072", "--repeat",
                                           str(repeat), "-aec", "STORESCP", bed.ip4(SCP),
                                           str(PORT), *map(str, images)]),
                             capture_output=True, text=True, env=env)
        wall = time.monotonic() - t0
        assert res.returncode == 0, res.stderr[-2000:]
        sent = repeat * len(images)
        out: dict[str, Any] = {"mode": mode, "images": sent,
                               "mb": round(sent * IMAGE_BYTES / 1e6, 1),
                               "seconds": round(wall, 2),
                               "mb_s": round(sent * IMAGE_BYTES / 1e6 / wall, 1)}
        if live is not None:
            live.send_signal(signal.SIGINT)
            live.communicate(timeout=120)
            out_file.seek(0)
            stdout = out_file.read()
            out_file.close()
            if mode == "rich":
                out["stores_seen"] = stdout.count("C-STORE ")
                return out
            recs = [json.loads(line) for line in stdout.splitlines()]
            summary = recs[-1]
            assert summary["type"] == "summary"
            out["stores_seen"] = sum(1 for r in recs if r["type"] == "transaction"
                                     and r["command"] == "C-STORE"
                                     and r["status_category"] == "Success")
            out["packets"] = summary["frames"]
            out["kernel_dropped"] = summary["kernel"]["dropped"]
            cpu = summary["cpu_seconds"]
            out["cpu_dicomsniff_pct"] = round(100 * cpu["dicomsniff"] / wall)
            out["cpu_helper_pct"] = round(100 * cpu["helper"] / wall)
            out["helper"] = summary["capture_helper"]
        return out
    finally:
        if live is not None and live.poll() is None:
            live.kill()
            live.wait()
        stop_process(scp)


class _Bed(netns.Testbed):
    """A testbed that can leave offloads on (then the capture sees 64 KB GSO packets)."""

    keep_offloads = False

    def _offloads_off(self, side: str) -> str:
        if self.keep_offloads:
            return "on"
        return super()._offloads_off(side)


def bench(work: Path, mb: int, runs: int, modes: list[str], offloads: bool,
          rates: list[float | None] | None = None) -> list[dict]:
    bed = _Bed(prefix=f"dslive-b{os.getpid()}", scu_if="dslb0", scp_if="dslb1")
    bed.keep_offloads = offloads
    images = _images(work)
    results = []
    with bed:
        for rate in rates or [None]:
            limit_rate(bed, rate)
            for _ in range(runs):
                for mode in modes:
                    r = run_once(bed, work, images, mb, mode)
                    r["limit_mb_s"] = rate
                    r["offloads"] = offloads
                    results.append(r)
                    print(json.dumps(r), flush=True)
    return results


@pytest.mark.slow
@pytest.mark.netns
@pytest.mark.parametrize("mode,buffer_mib", [("json", 0), ("pcap", 1024)])
def test_keeps_up_with_a_veth_storage_transfer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               mode: str, buffer_mib: int) -> None:
    """Full speed, MTU-sized packets: every C-STORE seen, no kernel drop (writing the file
    too needs a bigger buffer than the default on a 2-core machine)."""
    ok, why = netns_available()
    if not ok:
        pytest.skip(why)
    monkeypatch.setattr(sys.modules[__name__], "BUFFER_MIB", buffer_mib)
    (r,) = bench(tmp_path, 400, 1, [mode], offloads=False)
    assert r["stores_seen"] == r["images"]
    assert r["kernel_dropped"] == 0, r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--offloads", action="store_true", help="leave TSO/GSO/GRO on")
    ap.add_argument("--modes", default="none,json,pcap,rich,pcap-dumpcap")
    ap.add_argument("--rates", default="",
                    help="comma-separated MB/s limits (tbf on the veth); empty: full speed")
    ap.add_argument("--nice", type=int, default=0,
                    help="niceness for dicomsniff and its helper (e.g. -10: ahead of the peers "
                         "and of whatever else runs on the machine)")
    ap.add_argument("--buffer-size", type=int, default=0, metavar="MiB",
                    help="dicomsniff live --buffer-size (default: its own default)")
    ap.add_argument("--work", default="/tmp/dslive-bench")
    a = ap.parse_args()
    global NICE, BUFFER_MIB
    NICE, BUFFER_MIB = a.nice, a.buffer_size
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    rates = [float(x) for x in a.rates.split(",") if x] or None
    bench(work, a.mb, a.runs, a.modes.split(","), a.offloads, rates)


if __name__ == "__main__":
    main()
