"""Record a small, known DICOM conversation on loopback, for testing the tshark oracle.

The oracle must be checked against traffic whose content we know, produced by real
implementations (DCMTK and pynetdicom) rather than by our own encoder, so that neither the
oracle nor the analyzer can agree with itself by construction.  Every scenario below is
listed in :data:`EXPECTED` so tests can assert ground truth.  Only synthetic data is used
(patient names like ``SYNTHETIC^BOB``) and only loopback ports 11190-11199.

Needs root (tcpdump on ``lo``), ``/usr/bin/tcpdump`` and DCMTK in ``/usr/bin``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynetdicom.transport import ThreadedAssociationServer

TCPDUMP = "/usr/bin/tcpdump"
DCMTK = {name: f"/usr/bin/{name}" for name in ("storescp", "storescu", "echoscu", "findscu",
                                               "movescu", "dcmcjpeg")}

STORE_PORT = 11191    # DCMTK storescp, accepts all transfer syntaxes, max PDU 4096
REFUSE_PORT = 11192   # DCMTK storescp --refuse: A-ASSOCIATE-RJ
ABORT_PORT = 11193    # DCMTK storescp --abort-after: A-ABORT from the acceptor
QR_PORT = 11194       # pynetdicom: C-FIND, C-MOVE (sub-association to STORE_PORT), N-CREATE/N-SET
TINY_PORT = 11195     # pynetdicom with a 64-byte max PDU: the command spans several PDVs
V6_PORT = 11196       # pynetdicom on ::1: C-ECHO over IPv6
PORTS = [STORE_PORT, REFUSE_PORT, ABORT_PORT, QR_PORT, TINY_PORT, V6_PORT]

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"
VERIFICATION = "1.2.840.10008.1.1"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
MPPS = "1.2.840.10008.3.1.2.3.3"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
FIND_MATCHES = 3


@dataclass(frozen=True)
class Expected:
    """Ground truth for one association of the loopback recording."""

    calling_ae: str
    called_ae: str
    server_port: int
    outcome: str                 # "released", "rejected", "aborted"
    commands: tuple[int, ...]    # command fields of requests and responses, in order
    statuses: tuple[int, ...] = ()  # statuses of the responses, in order
    # C-STORE-RSPs that tshark 4.0 misdecodes because they follow a data set it cannot
    # walk (JPEG-encapsulated or deflated) on the same presentation context.
    misdecoded_responses: int = 0
    ipv6: bool = False


# In the order the associations start (the C-MOVE sub-association starts inside the
# C-MOVE association, so it is listed right after it).
EXPECTED: tuple[Expected, ...] = (
    Expected("SYNECHO", "STORESCP", STORE_PORT, "released", (0x0030, 0x8030), (0,)),
    Expected("SYNSTORE", "STORESCP", STORE_PORT, "released",
             (0x0001, 0x8001, 0x0001, 0x8001), (0, 0)),
    Expected("SYNJPEG", "STORESCP", STORE_PORT, "released",
             (0x0001, 0x8001, 0x0001, 0x8001), (0, 0), misdecoded_responses=2),
    Expected("SYNREJECT", "STORESCP", REFUSE_PORT, "rejected", ()),
    Expected("SYNABORT", "STORESCP", ABORT_PORT, "aborted", (0x0001,)),
    Expected("SYNFIND", "QRSCP", QR_PORT, "released",
             (0x0020,) + (0x8020,) * (FIND_MATCHES + 1), (0xFF00,) * FIND_MATCHES + (0,)),
    Expected("SYNMOVE", "QRSCP", QR_PORT, "released",
             (0x0021, 0x8021, 0x8021, 0x8021), (0xFF00, 0xFF00, 0)),
    # pynetdicom proposes Deflated Explicit VR Little Endian and storescp +xa picks it.
    Expected("QRSCP", "STORESCP", STORE_PORT, "released",
             (0x0001, 0x8001, 0x0001, 0x8001), (0, 0), misdecoded_responses=2),
    Expected("SYNMPPS", "QRSCP", QR_PORT, "aborted",
             (0x0140, 0x8140, 0x0120, 0x8120), (0, 0)),
    Expected("SYNTINY", "TINYSCP", TINY_PORT, "released", (0x0001, 0x8001), (0,)),
    Expected("SYNV6", "V6SCP", V6_PORT, "released", (0x0030, 0x8030), (0,), ipv6=True),
)


@dataclass
class Recording:
    """A finished loopback capture and what it is known to contain."""

    pcap: Path
    ports: list[int]
    expected: tuple[Expected, ...] = EXPECTED
    log: list[str] = field(default_factory=list)


def missing_requirements() -> str | None:
    """Why a recording cannot be made here, or None if it can."""
    if os.geteuid() != 0:
        return "recording on loopback needs root (tcpdump)"
    for tool in (TCPDUMP, *DCMTK.values()):
        if not os.access(tool, os.X_OK):
            return f"{tool} is not installed"
    try:
        import pydicom  # noqa: F401
        import pynetdicom  # noqa: F401
    except ImportError as exc:
        return f"needs pydicom and pynetdicom: {exc}"
    busy = [p for p in PORTS if _port_busy(p) or _port_busy(p, v6=True)]
    if busy:
        return f"loopback ports {busy} are in use"
    return None


def _port_busy(port: int, v6: bool = False) -> bool:
    family, host = (socket.AF_INET6, "::1") if v6 else (socket.AF_INET, "127.0.0.1")
    with socket.socket(family) as sock:
        return sock.connect_ex((host, port)) == 0


def _wait_port(port: int, timeout: float = 10.0, v6: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while not _port_busy(port, v6):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")
        time.sleep(0.05)


def _synthetic_image(path: Path, sop_class: str, rows: int, bits: int, name: str) -> None:
    """Write a small synthetic image in Explicit VR Little Endian (no real patient data)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.PatientName = name
    ds.PatientID = "SYN-0001"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "CT" if sop_class == CT_IMAGE else "OT"
    ds.Rows = ds.Columns = rows
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = bytes((i * 7) % 251 for i in range(rows * rows * bits // 8))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


def _make_files(work: Path) -> dict[str, Path]:
    files = {
        "ct_large": work / "ct_large.dcm",  # 32 KiB of pixels: many P-DATA PDUs at 4096
        "ct_small": work / "ct_small.dcm",
        "sc": work / "sc.dcm",
        "sc_jpeg": work / "sc_jpeg.dcm",
    }
    _synthetic_image(files["ct_large"], CT_IMAGE, 128, 16, "SYNTHETIC^BOB")
    _synthetic_image(files["ct_small"], CT_IMAGE, 16, 16, "SYNTHETIC^BOB")
    _synthetic_image(files["sc"], SC_IMAGE, 32, 8, "SYNTHETIC^ALICE")
    subprocess.run([DCMTK["dcmcjpeg"], "+eb", str(files["sc"]), str(files["sc_jpeg"])],
                   check=True, capture_output=True)
    return files


def _run(log: list[str], *argv: str) -> None:
    """Run one DCMTK client; a failing client is logged, the capture tells the rest."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    log.append(f"$ {' '.join(argv)} -> {proc.returncode}\n{proc.stdout}{proc.stderr}")


@contextmanager
def _process(log: list[str], *argv: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process we own and stop it (by its own pid) afterwards."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        log.append(f"[{argv[0]} exit {proc.returncode}] {err.decode(errors='replace')[-500:]}")


@contextmanager
def _tcpdump(pcap: Path, ports: list[int]) -> Iterator[None]:
    expr = " or ".join(f"tcp port {p}" for p in ports)
    proc = subprocess.Popen([TCPDUMP, "-i", "lo", "-U", "-s", "0", "-w", str(pcap), expr],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode(errors="replace")  # "listening on lo, ..."
        if "listening" not in line:
            raise RuntimeError(f"tcpdump did not start: {line}")
        yield
        time.sleep(0.5)  # let the last FIN/ACKs be written
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _qr_server(files: dict[str, Path]) -> ThreadedAssociationServer:
    """pynetdicom Query/Retrieve + MPPS SCP with pending responses and a C-MOVE."""
    from pydicom import dcmread
    from pydicom.dataset import Dataset
    from pynetdicom import AE, evt

    def on_find(event: Any) -> Iterator[tuple[int, Dataset]]:
        for n in range(FIND_MATCHES):
            ds = Dataset()
            ds.QueryRetrieveLevel = "STUDY"
            ds.PatientName = f"SYNTHETIC^BOB{n}"
            ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.{n + 1}"
            yield 0xFF00, ds

    def on_move(event: Any) -> Iterator[Any]:
        yield "127.0.0.1", STORE_PORT
        yield 2
        for key in ("ct_small", "sc"):
            yield 0xFF00, dcmread(files[key])

    def on_n_create(event: Any) -> tuple[int, Dataset]:
        ds = Dataset()
        ds.PerformedProcedureStepStatus = "IN PROGRESS"
        return 0x0000, ds

    def on_n_set(event: Any) -> tuple[int, Dataset]:
        ds = Dataset()
        ds.PerformedProcedureStepStatus = "COMPLETED"
        return 0x0000, ds

    ae = AE(ae_title="QRSCP")
    ae.add_supported_context(STUDY_FIND)
    ae.add_supported_context(STUDY_MOVE)
    ae.add_supported_context(MPPS)
    ae.add_requested_context(CT_IMAGE)
    ae.add_requested_context(SC_IMAGE)
    ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 10
    handlers = [(evt.EVT_C_FIND, on_find), (evt.EVT_C_MOVE, on_move),
                (evt.EVT_N_CREATE, on_n_create), (evt.EVT_N_SET, on_n_set)]
    return ae.start_server(("127.0.0.1", QR_PORT), block=False, evt_handlers=handlers)


def _small_servers() -> list[ThreadedAssociationServer]:
    """A storage SCP with a 64-byte max PDU (IPv4) and a verification SCP on ::1."""
    from pynetdicom import AE, evt

    tiny = AE(ae_title="TINYSCP")
    tiny.maximum_pdu_size = 64
    tiny.add_supported_context(CT_IMAGE)
    v6 = AE(ae_title="V6SCP")
    v6.add_supported_context(VERIFICATION)
    return [
        tiny.start_server(("127.0.0.1", TINY_PORT), block=False,
                          evt_handlers=[(evt.EVT_C_STORE, lambda event: 0x0000)]),
        v6.start_server(("::1", V6_PORT, 0, 0), block=False),
    ]


def _v6_client(log: list[str]) -> None:
    from pynetdicom import AE

    ae = AE(ae_title="SYNV6")
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate("::1", V6_PORT, ae_title="V6SCP")
    if assoc.is_established:
        log.append(f"IPv6 C-ECHO status {assoc.send_c_echo()}")
        assoc.release()
    else:
        log.append("IPv6 association failed")


def _mpps_client(log: list[str]) -> None:
    """N-CREATE then N-SET, then an A-ABORT by the requestor instead of a release."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid
    from pynetdicom import AE

    ae = AE(ae_title="SYNMPPS")
    ae.add_requested_context(MPPS)
    assoc = ae.associate("127.0.0.1", QR_PORT, ae_title="QRSCP")
    if not assoc.is_established:
        log.append("MPPS association failed")
        return
    uid = generate_uid()
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PatientName = "SYNTHETIC^BOB"
    status, _ = assoc.send_n_create(ds, MPPS, uid)
    log.append(f"N-CREATE status {status}")
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "COMPLETED"
    status, _ = assoc.send_n_set(ds, MPPS, uid)
    log.append(f"N-SET status {status}")
    assoc.abort()


def record(out_dir: Path) -> Recording:
    """Record every scenario of :data:`EXPECTED` into ``out_dir/loopback.pcap``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pcap = out_dir / "loopback.pcap"
    log: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="oracle-rec-", dir=out_dir))
    try:
        files = _make_files(work)
        (work / "scp").mkdir()
        scp_common = ("-od", str(work / "scp"), "-aet", "STORESCP")
        with (
            _tcpdump(pcap, PORTS),
            _process(log, DCMTK["storescp"], *scp_common, "+xa", "-pdu", "4096",
                     str(STORE_PORT)),
            _process(log, DCMTK["storescp"], *scp_common, "--refuse", str(REFUSE_PORT)),
            _process(log, DCMTK["storescp"], *scp_common, "--abort-after", str(ABORT_PORT)),
        ):
            servers = [_qr_server(files), *_small_servers()]
            try:
                for port in PORTS:
                    _wait_port(port, v6=port == V6_PORT)
                ae = ("-aec", "STORESCP", "127.0.0.1")
                _run(log, DCMTK["echoscu"], "-aet", "SYNECHO", *ae, str(STORE_PORT))
                _run(log, DCMTK["storescu"], "-aet", "SYNSTORE", *ae, str(STORE_PORT),
                     str(files["ct_large"]), str(files["ct_small"]))
                # -R -xy: propose JPEG Baseline so the data set travels compressed.
                _run(log, DCMTK["storescu"], "-R", "-xy", "-aet", "SYNJPEG", *ae,
                     str(STORE_PORT), str(files["sc_jpeg"]), str(files["sc_jpeg"]))
                _run(log, DCMTK["echoscu"], "-aet", "SYNREJECT", *ae, str(REFUSE_PORT))
                _run(log, DCMTK["storescu"], "-aet", "SYNABORT", *ae, str(ABORT_PORT),
                     str(files["ct_small"]))
                qr = ("-S", "-aec", "QRSCP", "127.0.0.1", str(QR_PORT))
                _run(log, DCMTK["findscu"], "-aet", "SYNFIND", *qr,
                     "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=SYNTHETIC*",
                     "-k", "StudyInstanceUID")
                _run(log, DCMTK["movescu"], "-aet", "SYNMOVE", "-aem", "STORESCP", *qr,
                     "-k", "QueryRetrieveLevel=STUDY",
                     "-k", "StudyInstanceUID=1.2.826.0.1.3680043.8.498.1")
                _mpps_client(log)
                _run(log, DCMTK["storescu"], "-aet", "SYNTINY", "-aec", "TINYSCP", "127.0.0.1",
                     str(TINY_PORT), str(files["ct_small"]))
                _v6_client(log)
                time.sleep(0.3)
            finally:
                for server in servers:
                    server.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Recording(pcap=pcap, ports=list(PORTS), log=log)


# --- out-of-order variant -------------------------------------------------------------

def reorder_pcap(src: Path, dst: Path) -> list[tuple[int, int]]:
    """Copy a classic pcap, swapping pairs of same-direction TCP data segments.

    Swaps the first data segment of every multi-segment burst with the next one in the
    same direction, so the receiver-side order differs from sequence order, as after a
    retransmission or a reordering switch.  Returns the swapped 1-based frame numbers.
    Linux loopback captures only (Ethernet link type, IPv4).
    """
    data = src.read_bytes()
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
              b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}.get(data[:4])
    if endian is None:
        raise ValueError(f"{src} is not a classic pcap file")
    (linktype,) = struct.unpack(endian + "I", data[20:24])
    if linktype != 1:
        raise ValueError(f"{src}: link type {linktype}, only Ethernet is supported")
    records: list[bytes] = []
    flows: list[tuple[bytes, int] | None] = []  # (4-tuple bytes, payload length)
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        rec = data[off:off + 16 + incl]
        records.append(rec)
        flows.append(_tcp_flow(rec[16:]))
        off += 16 + incl
    swapped: list[tuple[int, int]] = []
    i = 0
    while i < len(records):
        flow = flows[i]
        if flow is not None and flow[1] > 0:
            # next data segment in the same direction, within a few frames
            for j in range(i + 1, min(i + 4, len(records))):
                other = flows[j]
                if other is not None and other[0] == flow[0] and other[1] > 0:
                    records[i], records[j] = records[j], records[i]
                    swapped.append((i + 1, j + 1))
                    i = j
                    break
        i += 1
    dst.write_bytes(data[:24] + b"".join(records))
    return swapped


def _tcp_flow(frame: bytes) -> tuple[bytes, int] | None:
    """(src ip+port, dst ip+port) bytes and TCP payload length of an Ethernet/IPv4 frame."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    ihl = (frame[14] & 0x0F) * 4
    total = struct.unpack(">H", frame[16:18])[0]
    tcp = 14 + ihl
    if len(frame) < tcp + 20:
        return None
    doff = (frame[tcp + 12] >> 4) * 4
    key = frame[26:34] + frame[tcp:tcp + 4]
    return key, total - ihl - doff


if __name__ == "__main__":  # manual use: python -m tests.oracle.loopback /tmp/dir
    import sys

    rec = record(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/oracle"))
    print(rec.pcap, rec.ports)
    for entry in rec.log:
        print(entry)
