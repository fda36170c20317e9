"""A huge WADO-RS response through the HTTP parser and the DICOMweb handler: memory stays flat.

``python3 -m bench.dicomweb_stream --size 2G [--chunk 65536] [--chunked]`` builds, on the fly,
the server side of ``GET .../instances/{uid}`` answered by ``multipart/related;
type="application/dicom"`` whose one part is a Part 10 instance of SIZE bytes (a real file
meta header, then filler pixel data), feeds it to :class:`DicomwebAnalyzer` in CHUNK-byte
pieces (the size TCP reassembly hands over), and prints time, throughput and peak RSS before
and after. Nothing is written to disk (unless ``--export DIR``: the instance is then written
out by ``export-objects``' DICOMweb policy, as the command does); the stream is generated as it
is fed.

The number that matters is ``rss_growth_mib``: the peak resident set after the stream minus
the one before it. Bodies are streamed and measured, never accumulated, so it is the same for
256 MiB and for 2 GiB (see docs/dicomweb.md for the figures).
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import sys
import time

SOP = "1.2.826.0.1.3680043.8.498.99999"
BOUNDARY = "bench-boundary-0123456789"


def _part10_head() -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = SOP
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, SOP
    ds.PatientName = "SYNTHETIC^HUGE"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(size: int, chunk: int = 65536, chunked: bool = False,
        export: str | None = None) -> dict:
    """Stream a ``size``-byte instance; returns the figures and what the analysis saw."""
    from dicomsniff.dicomweb.session import DicomwebAnalyzer

    head = _part10_head()
    web = DicomwebAnalyzer()
    written: list = []
    if export is not None:
        from dicomsniff.objects.export import Exporter
        from dicomsniff.objects.web import WebObjects

        WebObjects(Exporter(export, done=written.append)).attach(web)
    conn = web.open_connection("192.0.2.1:50000", "192.0.2.2:8042", 1, 0.0)
    req, resp = conn.http.directions
    req.feed(f"GET /dicom-web/studies/1/series/2/instances/{SOP} HTTP/1.1\r\nHost: pacs\r\n"
             "Accept: multipart/related; type=\"application/dicom\"\r\n\r\n".encode(), 1, 0.0)
    part_head = (f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n").encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    body_len = len(part_head) + size + len(tail)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {body_len}"
    resp.feed((f"HTTP/1.1 200 OK\r\nContent-Type: multipart/related; "
               f"type=\"application/dicom\"; boundary={BOUNDARY}\r\n{framing}\r\n\r\n").encode(),
              2, 0.0)
    filler = bytes(range(256)) * (chunk // 256 + 1)
    filler = filler[:chunk]

    def piece(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data

    rss0 = _rss_mib()
    t0 = time.perf_counter()
    frame = 3
    resp.feed(piece(part_head + head), frame, 0.0)
    left = size - len(head)
    while left > 0:
        n = min(left, chunk)
        frame += 1
        resp.feed(piece(filler[:n]), frame, 0.0)
        left -= n
    resp.feed(piece(tail) + (b"0\r\n\r\n" if chunked else b""), frame + 1, 0.0)
    seconds = time.perf_counter() - t0
    web.close_connection(conn, "fin", frame + 2, 0.0)
    t = web.transactions[0]
    return {"size": size, "chunk": chunk, "chunked": chunked, "seconds": round(seconds, 2),
            "mib_per_s": round(size / (1 << 20) / seconds, 1),
            "rss_before_mib": round(rss0, 1), "rss_peak_mib": round(_rss_mib(), 1),
            "rss_growth_mib": round(_rss_mib() - rss0, 1),
            "status": t.status, "response_bytes": t.response_bytes,
            "parts": len(t.parts), "part_bytes": t.parts[0]["bytes"] if t.parts else None,
            "sop_instance": t.instances[0]["sop_instance"] if t.instances else None,
            "findings": [f.code for f in web.findings],
            "exported": [(w.path, w.bytes, w.partial, w.status) for w in written]}


def _size(text: str) -> int:
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.upper().rstrip("IB")
    return int(float(text[:-1]) * mult[text[-1]]) if text[-1] in mult else int(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="2G", help="instance size (e.g. 256M, 2G)")
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--chunked", action="store_true", help="Transfer-Encoding: chunked")
    ap.add_argument("--export", metavar="DIR", help="write the instance to DIR as "
                                                    "export-objects does")
    args = ap.parse_args(argv)
    print(json.dumps(run(_size(args.size), args.chunk, args.chunked, args.export)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
