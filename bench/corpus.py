"""The benchmark's captures: recorded once with real peers, cached in ``bench/cache/``.

Each capture ``NAME`` is ``bench/cache/NAME.pcap`` next to ``NAME.json``, the recorder's manifest
entry (file facts and the peers' ground truth).  A cached capture is reused while its file size
and scenario parameters still match; otherwise it is recorded again (root needed), through
:mod:`captures.record` with namespace prefix ``dsbench`` (or ``$DICOMSNIFF_BENCH_NETNS``) so
other recorders are not disturbed.

Tiny mode uses committed sample captures from ``captures/`` instead: nothing is recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # captures/ is a plain directory package at the repo root
    sys.path.insert(0, str(ROOT))

CACHE_DIR = ROOT / "bench" / "cache"
SAMPLES_DIR = ROOT / "captures"
#: network namespace prefix of the recordings (``<prefix>-scu``/``-scp``); set
#: ``DICOMSNIFF_BENCH_NETNS`` so that several benchmarks on one machine do not collide
PREFIX = os.environ.get("DICOMSNIFF_BENCH_NETNS", "dsbench")
TCPDUMP_BUFFER_KIB = 262144  # the recorder's 32 MiB drops packets on a busy 2-core machine

#: the full benchmark's captures, in run order: name -> (recorder scenario, parameter overrides)
#: (chatty: 200 associations x (C-ECHO + 3 C-FINDs x 40 pending); query: the speed issue's
#: query-heavy load, 300 associations, 900 C-FINDs x 40 pending, 38,400 DIMSE messages)
FULL: dict[str, tuple[str, dict[str, Any]]] = {
    "bulk": ("bulk", {}),
    "query": ("bench-chatty", {"associations": 300}),
    "chatty": ("bench-chatty", {"associations": 200}),
    "big": ("big", {}),
    "dicomweb": ("bench-dicomweb", {}),
    # DICOM over TLS 1.3 with the client's key log (captures/tls_scenarios.py): decryption
    # speed against tshark given the same key log. Not in the default run: --only tls.
    "tls": ("tls-bulk", {}),
    # the same peers and images in clear: what decryption costs (bench/README.md)
    "tls-clear": ("tls-bulk-clear", {}),
}
#: tiny mode: bench name -> committed sample file standing in for it
TINY = {"bulk": "store-many-associations.pcap", "chatty": "find-pending.pcap",
        "tls": "tls/tls-suites.pcap"}


@dataclass(frozen=True)
class Capture:
    """One capture to time, with what the recorder knows about it."""

    name: str
    path: Path
    size: int
    frames: int
    ports: tuple[int, ...]
    truth: dict[str, Any]  # the manifest entry's "totals" (associations, operations...)
    recorded: bool  # recorded by this run (not taken from the cache)
    dissector: str = "dicom"  # what tshark is told the server ports carry

    @property
    def mb(self) -> float:
        return self.size / 1e6

    @property
    def keylog(self) -> Path | None:
        """The NSS key log recorded with a TLS capture (NAME.keys beside it), if any."""
        k = self.path.with_suffix(".keys")
        return k if k.is_file() else None


def _capture(name: str, path: Path, entry: dict[str, Any], recorded: bool) -> Capture:
    return Capture(name, path, path.stat().st_size, int(entry["frames"]),
                   tuple(entry["server_ports"]), entry.get("totals", {}), recorded,
                   entry.get("dissector", "dicom"))


def _cached(path: Path, meta: Path, params: dict[str, Any],
            scenario: str | None = None) -> dict[str, Any] | None:
    """The cached manifest entry if ``path`` is still the capture it describes, made by
    ``scenario`` (if given) with ``params``."""
    if not (path.is_file() and meta.is_file()):
        return None
    try:
        entry = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if entry.get("size_bytes") != path.stat().st_size:
        return None
    if scenario is not None and entry.get("scenario") != scenario:
        return None
    if any(entry.get("params", {}).get(k) != v for k, v in params.items()):
        return None
    return entry


def scenario_params(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The recorder's defaults for scenario ``name`` with ``overrides`` applied."""
    from captures import tls_scenarios  # noqa: F401 - registers the TLS recipes
    from captures.scenarios import SCENARIOS

    from . import scenarios  # noqa: F401 - registers the benchmark's own recipes

    if name not in SCENARIOS:
        raise KeyError(f"no recorder scenario {name!r} (see python3 captures/record.py --list)")
    return {**SCENARIOS[name].defaults, **overrides}


def ensure(name: str, cache_dir: Path = CACHE_DIR, *, rerecord: bool = False,
           overrides: dict[str, Any] | None = None,
           say: Callable[[str], None] = print) -> Capture:
    """Return capture ``name`` from the cache, recording it first if needed (root)."""
    scenario, defaults = FULL.get(name, (name, {}))
    params = scenario_params(scenario, {**defaults, **(overrides or {})})
    path = cache_dir / f"{name}.pcap"
    meta = cache_dir / f"{name}.json"
    entry = None if rerecord else _cached(path, meta, params, scenario)
    if entry is not None:
        return _capture(name, path, entry, recorded=False)
    from captures.netns import netns_available

    ok, why = netns_available()
    if not ok:
        raise RuntimeError(f"cannot record {name}: {why} (run as root, or use --tiny)")
    say(f"recording {name} into {path} (real peers in namespaces {PREFIX}-scu/-scp)...")
    entry = record(scenario, path, params, say=say)
    return _capture(name, path, entry, recorded=True)


def record(scenario: str, path: Path, params: dict[str, Any], *, attempts: int = 3,
           say: Callable[[str], None] = print) -> dict[str, Any]:
    """Record ``scenario`` into ``path`` and write its manifest entry next to it (``.json``).

    The recorder's own loop (:meth:`captures.record.Recorder.record`) with three changes for
    big loads on a busy machine: tcpdump gets a 256 MiB buffer instead of 32 MiB, the capture
    ends only once tcpdump has written everything (:func:`_draining_session`), and a recording
    in which tcpdump dropped packets or did not write some is tried again (up to ``attempts``
    times).
    """
    from captures.netns import Testbed
    from captures.record import describe_pcap, totals
    from captures.scenarios import SCENARIOS

    sc = SCENARIOS[scenario]
    p = dict(params)
    nodelay = bool(p.pop("nodelay", sc.nodelay))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    for attempt in range(1, attempts + 1):
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-{scenario}-"))
        try:
            with Testbed(prefix=PREFIX) as bed:
                s = _draining_session()(bed, work, tmp, nodelay=nodelay,
                                        buffer_kib=TCPDUMP_BUFFER_KIB)
                try:
                    truth = sc.func(s, p)
                finally:
                    s.stop_servers()
                stats, offloads = s.tcpdump_stats, bed.offloads
        finally:
            shutil.rmtree(work, ignore_errors=True)
        dropped = stats.get("dropped_by_kernel", 0)
        # Received but never written: tcpdump was stopped with packets still in its buffer.
        unwritten = stats.get("received_by_filter", 0) - stats.get("captured", 0)
        if not dropped and unwritten <= 0:
            break
        tmp.unlink(missing_ok=True)
        say(f"  tcpdump dropped {dropped} and did not write {max(unwritten, 0)} packets "
            f"(busy machine?); attempt {attempt} of {attempts} failed")
    else:
        raise RuntimeError(f"{scenario}: tcpdump kept dropping packets; try when the machine "
                           "is quieter")
    tmp.replace(path)
    st = path.parent.stat()  # tcpdump hands its file to its own user
    os.chown(path, st.st_uid, st.st_gid)
    facts = describe_pcap(path)
    entry: dict[str, Any] = {
        "file": path.name, "scenario": scenario, "description": sc.description, "params": p,
        "server_ports": truth.pop("server_ports"), **facts, "tcpdump": stats,
        "offloads": offloads, "tcp_nodelay": nodelay, **truth,
    }
    entry["totals"] = totals(entry["associations"])
    entry["totals"]["operations"].update(entry.get("web_operations", {}))  # DICOMweb loads
    # Per-association ground truth of hundreds of identical associations is not worth keeping.
    entry["associations"] = entry["associations"][:3]
    path.with_suffix(".json").write_text(json.dumps(entry, indent=1) + "\n")
    say(f"  {facts['frames']} frames, {facts['size_bytes']} bytes, "
        f"{time.monotonic() - started:.1f} s")
    return entry


def _draining_session() -> type:
    """:class:`captures.session.Session` whose capture waits for tcpdump to write everything.

    The recorder stops tcpdump 0.3 s after the last client exits; with a big load tcpdump
    (which writes every packet with its own system call) can be seconds behind, and what is
    still in its buffer at SIGINT is lost.  Here the capture file must stop growing first.
    """
    from captures.netns import SCU, Tcpdump
    from captures.session import Session

    class DrainingSession(Session):
        @contextmanager
        def capture(self, side: str = SCU, pcap: Path | None = None) -> Iterator[Tcpdump]:
            td = Tcpdump(self.bed, pcap or self.pcap, side=side, buffer_kib=self.buffer_kib)
            td.start()
            try:
                yield td
            finally:
                wait_settled(td.out)
                self.tcpdump_stats = td.stop()

    return DrainingSession


def wait_settled(path: Path, quiet: float = 0.6, limit: float = 300.0) -> None:
    """Return once ``path`` has not grown for ``quiet`` seconds (or after ``limit``)."""
    deadline = time.monotonic() + limit
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.exists() else 0
        now = time.monotonic()
        if size != last:
            last, since = size, now
        elif now - since >= quiet:
            return
        time.sleep(0.1)


def tiny(name: str) -> Capture:
    """A committed sample capture standing in for ``name`` in tiny mode."""
    fname = TINY[name]
    path = SAMPLES_DIR / fname  # captures/tls/ has its own manifest
    manifest = json.loads((path.parent / "manifest.json").read_text())
    entry = next(e for e in manifest["captures"] if e["file"] == path.name)
    return _capture(name, SAMPLES_DIR / fname, entry, recorded=False)
