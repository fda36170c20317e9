"""``dicomsniff live`` on a real interface: two network namespaces joined by a veth pair, dcmtk
peers talking across it, and ``dicomsniff live`` capturing on the veth inside the SCU namespace.

Every association and transaction the peers performed (as their own logs count them) must be
reported, in JSON Lines and in the lines output; the pcap written alongside must be complete and
tell ``dicomsniff analyze`` the same story; SIGINT and SIGTERM must leave complete files and a
summary. The namespaces (``dslive<pid>-scu``/``-scp``, 192.0.2.0/24, no routes) are removed in
all cases. Root, ``ip netns``, tcpdump and dcmtk are needed; otherwise the tests are skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # captures/ is a plain directory at the repo root
    sys.path.insert(0, str(ROOT))

from captures import netns, synth  # noqa: E402
from captures.netns import SCP, SCU, netns_available  # noqa: E402
from captures.session import Session  # noqa: E402
from dicomsniff.sources.capture import CaptureReader  # noqa: E402

pytestmark = pytest.mark.netns

# `python -m dicomsniff` runs this checkout's code whatever the installed (editable) package
# points at, and in whatever directory the process starts.
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
BIN = Path("/usr/bin")  # dcmtk by full path: pynetdicom's apps of the same names shadow it
STORE_PORT = 11112
QR_PORT = 11113
STUDIES = 3
TSHARK = shutil.which("tshark")


def _skip_reason() -> str | None:
    ok, why = netns_available()
    if not ok:
        return why
    for tool in ("storescp", "storescu", "echoscu"):
        if not (BIN / tool).exists():
            return f"dcmtk {tool} not found in /usr/bin (apt-get install dcmtk)"
    return None


@dataclass
class Lab:
    bed: netns.Testbed
    session: Session
    work: Path
    small: list[synth.Image]  # 64x64 CT images
    large: list[synth.Image]  # 512x512
    qr: bool  # dcmqrscp is serving STUDIES studies on QR_PORT


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    why = _skip_reason()
    if why:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("live")
    bed = netns.Testbed(prefix=f"dslive{os.getpid()}", scu_if="dsl0", scp_if="dsl1")
    try:
        bed.up()
        s = Session(bed, work, work / "unused.pcap", nodelay=True)
        try:
            recv = work / "received"
            recv.mkdir()
            s.server("storescp", [BIN / "storescp", "-v", "-aet", "STORESCP", "-od", recv,
                                  STORE_PORT], STORE_PORT)
            qr = (BIN / "dcmqrscp").exists() and (BIN / "dcmqridx").exists()
            if qr:
                db = work / "db"
                images = [im for n in range(STUDIES) for im in synth.ct_series(
                    db, key="dslive-qr", count=1, rows=16, cols=16, patient=n, study=n)]
                synth.index_into(db, images)
                cfg = synth.dcmqrscp_config(work / "dcmqrscp.cfg", port=QR_PORT, aet="ARCHIVE",
                                            db_dir=db)
                s.server("dcmqrscp", [BIN / "dcmqrscp", "-v", "-c", cfg, QR_PORT], QR_PORT)
            small = synth.ct_series(work / "small", key="dslive-small", count=4, rows=64,
                                    cols=64)
            large = synth.ct_series(work / "large", key="dslive-large", count=2, rows=512,
                                    cols=512)
            yield Lab(bed, s, work, small, large, qr)
        finally:
            s.stop_servers()
    finally:
        bed.down()


class Live:
    """``dicomsniff live`` running in the SCU namespace, started and waited for."""

    def __init__(self, lab: Lab, args: list[str], name: str) -> None:
        self.out_path = lab.work / f"{name}.out"
        self.err_lines: list[str] = []
        self._ready = threading.Event()
        argv = lab.bed.cmd(SCU, [sys.executable, "-m", "dicomsniff", "live",
                                 "-i", lab.bed.iface(SCU), *args])
        with open(self.out_path, "w") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, text=True,
                                         cwd=lab.work, env=ENV)
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(20) or self.proc.poll() is not None:
            self.proc.kill()
            raise AssertionError("dicomsniff live did not start: " + "".join(self.err_lines))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err_lines.append(line)
            if "capturing on" in line:
                self._ready.set()
        self._ready.set()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 20) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return "".join(self.err_lines)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines()]


def canonical(recs: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in recs if r["type"] != "summary")


def read_pcap(path: Path) -> tuple[int, CaptureReader]:
    r = CaptureReader(path)
    n = sum(1 for _ in r)
    return n, r


def tshark_frames(path: Path) -> int:
    """Frames tshark reads; fails if tshark says the file is cut short or damaged."""
    res = subprocess.run([TSHARK, "-r", str(path), "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "cut short" not in res.stderr and "appears to be damaged" not in res.stderr
    return len(res.stdout.split())


def count(log: str, pattern: str) -> int:
    return len(re.findall(pattern, log))


def store(lab: Lab, name: str, aet: str, images: list[synth.Image]) -> str:
    return lab.session.client(name, [BIN / "storescu", "-v", "-aet", aet, "-aec", "STORESCP",
                                     lab.bed.ip4(SCP), STORE_PORT, *[i.path for i in images]],
                              timeout=60)


# -- the tests --------------------------------------------------------------------------------


def test_every_association_and_transaction_in_json_and_pcap(lab: Lab) -> None:
    """SIGINT after echo, two storage associations and a C-FIND: JSON, pcap and analyze agree
    with the peers' logs. A second capture with --ae/--host/--port narrows to one peer."""
    pcap = lab.work / "all.pcap"
    full = Live(lab, ["--json", "-w", str(pcap)], "all")
    narrow = Live(lab, ["--json", "--ae", "STORE_B", "--host", lab.bed.ip4(SCP),
                        "--port", str(STORE_PORT)], "narrow")
    s = lab.session
    echo_log = s.client("echoscu", [BIN / "echoscu", "-v", "--repeat", "3", "-aet", "ECHOSCU",
                                    "-aec", "STORESCP", lab.bed.ip4(SCP), STORE_PORT],
                        timeout=60)
    log_a = store(lab, "storescu-a", "STORE_A", lab.small[:3])
    log_b = store(lab, "storescu-b", "STORE_B", lab.small[3:] + lab.large[:1])
    find_log = ""
    if lab.qr:
        keys = ["QueryRetrieveLevel=STUDY", "PatientName", "StudyInstanceUID"]
        find_log = s.client("findscu", [BIN / "findscu", "-v", "-S", "-aet", "FINDSCU", "-aec",
                                        "ARCHIVE", *[a for k in keys for a in ("-k", k)],
                                        lab.bed.ip4(SCP), QR_PORT], timeout=60)
    assert full.stop() == 0, full.stderr
    assert narrow.stop(signal.SIGTERM) == 0, narrow.stderr

    # what the peers say they did
    echoes = count(echo_log, r"Received Echo Response \(Success\)")
    stores = count(log_a + log_b, r"Received Store Response \(Success\)")
    received = count(s.read_log("storescp"), r"Received Store Request")
    pending = count(find_log, r"Find Response: \d+ \(Pending\)")
    assert (echoes, stores, received) == (3, 5, 5)
    assert pending == (STUDIES if lab.qr else 0)
    n_assoc = 3 + lab.qr

    recs = full.records()
    summary = recs[-1]
    assert summary["type"] == "summary", full.stdout[-2000:]
    assocs = [r for r in recs if r["type"] == "association"]
    txns = [r for r in recs if r["type"] == "transaction"]
    assert sorted(a["calling_ae"] for a in assocs) == sorted(
        ["ECHOSCU", "STORE_A", "STORE_B"] + (["FINDSCU"] if lab.qr else []))
    assert all(a["outcome"] == "released" for a in assocs)
    assert [t["status_category"] for t in txns if t["command"] == "C-ECHO"] == ["Success"] * 3
    stored = [t for t in txns if t["command"] == "C-STORE"]
    assert all(t["status"] == 0 and not t["dataset_partial"] for t in stored)
    assert sorted(t["sop_instance"] for t in stored) == sorted(
        i.sop_instance for i in lab.small + lab.large[:1])
    if lab.qr:
        (find,) = [t for t in txns if t["command"] == "C-FIND"]
        assert (find["pending"], find["status_category"]) == (pending, "Success")
    assert len(txns) == echoes + stores + (1 if lab.qr else 0)
    assert summary["associations"] == n_assoc and summary["outcomes"] == {"released": n_assoc}
    assert summary["transactions"] == len(txns)
    assert summary["kernel"]["dropped"] == 0 and summary["stopped_by"] == "SIGINT"
    findings = [r for r in recs if r["type"] == "finding"]
    # nothing lost or broken (the findings rules may still comment on timing)
    assert not [f for f in findings if f["severity"] == "error"
                or f["code"].startswith(("CAPTURE-", "TCP-GAP", "UL-", "DIMSE-"))], findings

    # the pcap: complete for every reader, the same frames, and the same story
    assert summary["files"] == [{"path": str(pcap), "packets": summary["frames"],
                                 "bytes": pcap.stat().st_size}]
    frames, reader = read_pcap(pcap)
    assert reader.error is None and frames == summary["frames"]
    if TSHARK:
        assert tshark_frames(pcap) == frames
    res = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", str(pcap), "--json"],
                         capture_output=True, text=True, timeout=60, env=ENV)
    assert res.returncode == 0, res.stderr
    assert canonical([json.loads(x) for x in res.stdout.splitlines()]) == canonical(recs)

    # the narrow capture: kernel filter on host and port, then --ae after decoding
    nrecs = narrow.records()
    nsum = nrecs[-1]
    assert nsum["filter"].startswith(f"(tcp and (port {STORE_PORT}) and (host 192.0.2.2))")
    assert [r["calling_ae"] for r in nrecs if r["type"] == "association"] == ["STORE_B"]
    assert sum(r["type"] == "transaction" for r in nrecs) == 2
    assert nsum["ignored_associations"] == 2  # echo and STORE_A; FINDSCU never captured
    assert nsum["stopped_by"] == "SIGTERM" and nsum["kernel"]["dropped"] == 0


def test_sigterm_lines_and_rotating_pcapng_ring(lab: Lab, tmp_path: Path) -> None:
    """Lines output, SIGTERM mid-way through nothing: every transaction line, a summary, and a
    ring of complete pcapng files holding the newest packets."""
    ring_dir = tmp_path / "ring"
    ring_dir.mkdir()
    live = Live(lab, ["-w", str(ring_dir / "cap.pcapng"), "--rotate-size", "300kB",
                      "--ring", "3"], "lines")
    s = lab.session
    s.client("echoscu-2", [BIN / "echoscu", "-aet", "ECHOSCU", "-aec", "STORESCP",
                           lab.bed.ip4(SCP), STORE_PORT], timeout=60)
    log = store(lab, "storescu-ring", "STORE_R", lab.large + lab.small[:2])
    assert count(log, r"Received Store Response \(Success\)") == 4
    assert live.stop(signal.SIGTERM) == 0, live.stderr
    out = live.stdout
    events = [ln for ln in out.splitlines() if re.match(r"\d\d:\d\d:\d\d\.\d{3}  #\d", ln)]
    assert sum(" C-ECHO " in ln and "0x0000 Success" in ln for ln in events) == 1
    stores = [ln for ln in events if " C-STORE " in ln]
    assert len(stores) == 4 and all("0x0000 Success" in ln and "STORE_R -> STORESCP" in ln
                                    for ln in stores)
    assert sum(" ASSOCIATE " in ln and "accepted" in ln for ln in events) == 2
    assert sum(" RELEASED " in ln for ln in events) == 2
    assert "stopped by SIGTERM" in out
    assert "kernel: 0 dropped" in out
    assert "2 association(s) (2 released); 5 transaction(s) (5 Success)" in out
    files = sorted(ring_dir.iterdir())
    assert len(files) == 3, files  # 1 MB+ of traffic in 300 kB files: older ones removed
    assert "older file(s) removed by --ring" in out
    for f in files:
        assert f"wrote {f}" in out
        n, reader = read_pcap(f)
        assert reader.format == "pcapng" and reader.error is None and n > 0
        if TSHARK:
            assert tshark_frames(f) == n
    for f in files[:-1]:
        assert 300_000 <= f.stat().st_size < 300_000 + 70_000


def test_count_and_duration_stop_by_themselves(lab: Lab) -> None:
    """--count ends after N packets, --duration after the time, each with a valid file."""
    by_count = Live(lab, ["--json", "--count", "8", "-w", str(lab.work / "count.pcap")],
                    "count")
    quiet = Live(lab, ["--json", "--duration", "1", "--port", "1", "-w",
                       str(lab.work / "quiet.pcap")], "quiet")
    lab.session.client("echoscu-3", [BIN / "echoscu", "-aec", "STORESCP", lab.bed.ip4(SCP),
                                     STORE_PORT], timeout=60)
    assert by_count.wait() == 0, by_count.stderr
    summary = by_count.records()[-1]
    assert summary["frames"] == 8 and summary["stopped_by"] == "count"
    n, reader = read_pcap(lab.work / "count.pcap")
    assert n == 8 and reader.error is None
    t0 = time.monotonic()
    assert quiet.wait() == 0, quiet.stderr
    assert time.monotonic() - t0 < 5
    summary = quiet.records()[-1]
    assert (summary["frames"], summary["stopped_by"]) == (0, "duration")
    n, reader = read_pcap(lab.work / "quiet.pcap")
    assert n == 0 and reader.error is None and reader.format == "pcap"


def test_no_such_interface_lists_those_that_exist(lab: Lab) -> None:
    res = subprocess.run(lab.bed.cmd(SCU, [sys.executable, "-m", "dicomsniff", "live", "-i",
                                           "eth9"]), capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "dicomsniff live: no such interface: eth9 (interfaces here: dsl0, lo, or 'any')"]


def test_no_permission_says_how_to_get_it(lab: Lab) -> None:
    """Without CAP_NET_RAW (dropped from the bounding set, so the helpers cannot have it)."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) not found")
    pcap = lab.work / "never.pcap"
    res = subprocess.run(lab.bed.cmd(SCU, ["setpriv", "--bounding-set", "-net_raw,-net_admin",
                                           sys.executable, "-m", "dicomsniff", "live", "-i",
                                           "dsl0", "-w", str(pcap)]),
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 2
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("dicomsniff live: no permission to capture on dsl0")
    assert "run as root" in line and "setcap cap_net_raw,cap_net_admin=eip" in line
    assert "wireshark group" in line
    assert not pcap.exists()
