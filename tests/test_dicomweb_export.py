"""``export-objects`` on DICOMweb (dicomsniff/objects/web.py): the instances of STOW-RS requests
and WADO-RS / WADO-URI responses written as Part 10 files, byte for byte.

Oracle: tshark's own HTTP object export (``--export-objects http``) of the same captures; the
multipart bodies it writes are split here with the standard library's email parser, and every
``application/dicom`` part that is a PS3.10 file must be one of our files, byte for byte.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pydicom
import pytest

from dicomsniff.cli import main

DIR = Path(__file__).resolve().parent.parent / "captures" / "dicomweb"


def export(tmp_path: Path, capture: str, *extra: str) -> tuple[int, list[str], Path]:
    out = tmp_path / "out"
    lines: list[str] = []
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["export-objects", str(DIR / capture), str(out), "--no-progress", *extra])
    lines = [line for line in buf.getvalue().splitlines() if line]
    return rc, lines, out


def digests(paths) -> Counter[str]:
    return Counter(hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths)


def tshark_instances(capture: str, tmp: Path) -> Counter[str]:
    """PS3.10 files inside the HTTP bodies tshark exports (requests and responses)."""
    objs = tmp / "tshark"
    objs.mkdir()
    subprocess.run(["tshark", "-r", str(DIR / capture), "-d", "tcp.port==8042,http", "-d",
                    "tcp.port==8043,http", "-q", "--export-objects", f"http,{objs}"],
                   check=True, capture_output=True)
    found: Counter[str] = Counter()
    for f in objs.iterdir():
        data = f.read_bytes()
        if len(data) >= 132 and data[128:132] == b"DICM":  # a single-part body
            found[hashlib.sha256(data).hexdigest()] += 1
            continue
        first = data.lstrip(b"\r\n").split(b"\r\n", 1)[0]  # dicomweb-client sends a CRLF first
        if not first.startswith(b"--"):
            continue
        boundary = first[2:].decode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b'Content-Type: multipart/related; boundary="' + boundary.encode() + b'"\r\n\r\n'
            + data)
        for part in msg.iter_parts():
            body = part.get_payload(decode=True) or b""
            if part.get_content_type() == "application/dicom" and body[128:132] == b"DICM":
                found[hashlib.sha256(body).hexdigest()] += 1
    return found


@pytest.mark.tshark
@pytest.mark.parametrize("capture", ["stow.pcap", "wado.pcap", "tinypacs.pcap"])
def test_instances_are_byte_exact_against_tshark(capture: str, tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.fail("tshark is needed (installed by .ci/run)")
    rc, lines, out = export(tmp_path, capture)
    assert rc == 0
    files = sorted(out.glob("*.dcm"))
    assert files and len(files) == sum(1 for line in lines if not line.startswith("("))
    assert digests(files) == tshark_instances(capture, tmp_path)
    for f in files:  # each a readable Part 10 file named after its SOP Instance UID
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        assert f.name.split("_", 2)[2].removesuffix(".dcm").split("-")[0] == ds.SOPInstanceUID


def test_stow_statuses_say_what_the_server_said(tmp_path: Path) -> None:
    rc, lines, out = export(tmp_path, "stow.pcap")
    status = [line.split("\t")[4] for line in lines]
    assert status.count("HTTP 200 (STOW-RS: stored)") == 4
    assert "HTTP 409 (STOW-RS: failed)" in status  # the instance of another study
    # the part that is not a PS3.10 file is reported, not written
    [bad] = [line for line in lines if line.startswith("(not written)")]
    assert "not a PS3.10 file" in bad
    assert all(name.name.startswith("A0001_192.0.2.1-to-192.0.2.2_")
               for name in out.glob("*.dcm"))  # the user agent sent them to the server


def test_wado_names_the_server_as_sender_and_mixed_capture_exports_both(tmp_path: Path) -> None:
    rc, lines, out = export(tmp_path, "mixed-dimse-dicomweb.pcap")
    names = sorted(p.name for p in out.glob("*.dcm"))
    assert [n.split("_")[1] for n in names] == ["STORESCU-to-ORTHANC", "STORESCU-to-ORTHANC",
                                                "192.0.2.2-to-192.0.2.1"]
    # The instance C-STOREd, then retrieved over WADO-RS: the same data set either way.
    dimse = pydicom.dcmread(out / names[0])
    uid = names[2].split("_", 2)[2].removesuffix(".dcm")
    web = pydicom.dcmread(out / names[2])
    stored = next(pydicom.dcmread(p) for p in out.glob("A0001_*.dcm")
                  if uid in p.name)
    assert web.SOPInstanceUID == stored.SOPInstanceUID == uid
    assert web.PixelData == stored.PixelData
    assert dimse.SOPClassUID == web.SOPClassUID


def test_selection_and_anonymize(tmp_path: Path) -> None:
    rc, lines, out = export(tmp_path, "wado.pcap", "--ae", "ORTHANC")
    assert rc == 0 and not list(out.glob("*.dcm"))  # --ae selects DIMSE associations only
    rc, lines, out2 = export(tmp_path / "b", "wado.pcap", "--sop-class", "MR Image")
    assert rc == 0 and not list(out2.glob("*.dcm"))  # no MR instance: temporary files gone
    assert not list(out2.glob("*.tmp"))
    rc, lines, out3 = export(tmp_path / "c", "wado.pcap", "--sop-class", "CT Image",
                             "--association", "2")
    assert rc == 0 and [p.name[:5] for p in out3.glob("*.dcm")] == ["A0002"]
    rc, lines, plain = export(tmp_path / "e", "stow.pcap")
    originals = [pydicom.dcmread(f) for f in plain.glob("*.dcm")]
    assert all(str(o.PatientID).startswith("DSN") for o in originals)
    rc, lines, out4 = export(tmp_path / "d", "stow.pcap", "--anonymize")
    files = list(out4.glob("*.dcm"))
    assert rc == 0 and len(files) == len(originals)
    for f in files:
        ds = pydicom.dcmread(f)
        assert not str(ds.get("PatientID", "")).startswith("DSN")
        assert ds.SOPInstanceUID in f.name  # named after the new UID
        assert all(ds.SOPInstanceUID != o.SOPInstanceUID for o in originals)


def test_a_gap_inside_a_part_writes_it_partial(tmp_path: Path) -> None:
    """A hole in the capture inside a WADO-RS part: .partial.dcm with what came, nothing
    held in memory; the parts after the gap are not read (the framing is lost)."""
    from bench.dicomweb_stream import _part10_head
    from dicomsniff.dicomweb.session import DicomwebAnalyzer
    from dicomsniff.objects.export import Exporter
    from dicomsniff.objects.web import WebObjects

    written = []
    web = DicomwebAnalyzer()
    WebObjects(Exporter(str(tmp_path), done=written.append)).attach(web)
    conn = web.open_connection("192.0.2.1:5", "192.0.2.2:8042", 1, 0.0)
    req, resp = conn.http.directions
    req.feed(b"GET /dicom-web/studies/1/series/2/instances/3 HTTP/1.1\r\nHost: p\r\n\r\n",
             1, 0.0)
    head = _part10_head() + b"\x00" * 1000
    body = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + head + b"\r\n--b--\r\n"
    resp.feed(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/related; type=\"application/dicom\""
              b"; boundary=b\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
              + body[:len(body) - 600], 2, 0.0)
    resp.gap(500, 3, 0.0)
    resp.feed(body[len(body) - 100:], 4, 0.0)
    web.close_connection(conn, "fin", 5, 0.0)
    [w] = written
    assert w.partial and w.path.endswith(".partial.dcm")
    came = body[body.index(b"\r\n\r\n") + 4:len(body) - 600]
    got = Path(w.path).read_bytes()
    # what came before the gap, less at most the tail the multipart reader holds back while
    # it may be the start of a delimiter ("\r\n--b")
    assert came.startswith(got) and len(came) - len(got) < len(b"\r\n--b")
