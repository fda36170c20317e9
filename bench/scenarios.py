"""Benchmark-only recipes registered next to the recorder's scenarios (nothing in captures/
is edited: they are added to its registry at import time).

``bench-chatty`` is the recorder's ``chatty`` load (pynetdicom SCU against dcmqrscp: hundreds of
short associations, each a C-ECHO and C-FINDs answered by one pending response per study) with
a different check.  ``chatty`` trusts the pynetdicom client's count of pending responses, and
that client now and then misses a few (seen: 35 993 and 35 995 of 36 000) although every one is
on the wire, so it refuses good recordings.  Here the pending responses are counted in the
capture itself (the Status (0000,0900) = FF00 element in the acceptor's reassembled streams,
with :mod:`captures.pcapfile`), which must give associations x finds x studies; the client's
counts are kept as ``client_counts`` for the record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from captures import pcapfile
from captures.scenarios import (
    DICOM_PORT,
    OK,
    SCENARIOS,
    STUDY_FIND,
    association,
    op,
    pnd_json,
    qr_archive,
    scenario,
)
from captures.session import PeerError, Session

CLIENT_TOLERANCE = 0.01  # fraction of pending responses the client may miss
# Status (0000,0900), VR US implicit little endian, length 2, value 0xFF00 (pending)
PENDING_STATUS = bytes.fromhex("00000009020000" "0000ff")


def pending_on_wire(pcap: Path, port: int) -> int:
    """Pending C-FIND statuses sent by the acceptor on ``port``, counted in the capture."""
    segs = list(pcapfile.segments(pcap))
    total = 0
    for syn in (g for g in segs if g.syn and not g.flags & 0x10 and g.dport == port):
        data, _ = pcapfile.stream(segs, (syn.dst, syn.dport), (syn.src, syn.sport))
        total += bytes(data).count(PENDING_STATUS)
    return total


def _chatty(s: Session, p: dict[str, Any]) -> dict[str, Any]:
    qr_archive(s, studies=p["studies"], images_per_study=1, rows=8, cols=8)
    with s.capture():
        log = s.client("chatty", s.python("chatty", "--host", s.scp_ip, "--port", DICOM_PORT,
                                          "--aet", "CHATTY", "--called", "ARCHIVE",
                                          "--associations", p["associations"],
                                          "--finds", p["finds"]))
    res = pnd_json(log)
    n, f, st = p["associations"], p["finds"], p["studies"]
    want = n * f * st
    client = res.get("C-FIND-RSP 0xFF00", 0)
    wire = pending_on_wire(s.pcap, DICOM_PORT)
    if (res.get("associations") != n or res.get("C-FIND-RSP 0x0000") != n * f
            or client < want * (1 - CLIENT_TOLERANCE) or wire != want):
        raise PeerError(f"chatty load incomplete: client {res}, {wire} pending on the wire")
    ops = [op("C-ECHO")] + [op("C-FIND", OK, pending=st, sop_class=STUDY_FIND)] * f
    one = association(s, "CHATTY", "ARCHIVE", DICOM_PORT, operations=ops)
    return {"server_ports": [DICOM_PORT], "associations": [one] * n, "client_counts": res}


if "bench-chatty" not in SCENARIOS:
    base = SCENARIOS["chatty"]
    scenario("bench-chatty", "chatty.pcap", base.description + " (benchmark: pending "
             "responses counted on the wire)", sample=False, nodelay=base.nodelay,
             **base.defaults)(_chatty)


def _dicomweb(s: Session, p: dict[str, Any]) -> dict[str, Any]:
    """Orthanc's DICOMweb plugin and dicomweb-client (captures/dicomweb_record.py's peers):
    STOW-RS of the images 4 per request, QIDO-RS searches, WADO-RS study retrievals, metadata
    and frames. The ground truth is the user agent's own log of its requests."""
    import json
    import sys
    from collections import Counter

    from captures import synth
    from captures.dicomweb_record import CLIENT, HTTP_PORT, ORTHANC, orthanc_config
    from dicomsniff.dicomweb.services import classify

    files = s.work / "dicomweb-files"
    synth.ct_series(files, key="bench-dicomweb", count=p["images"], rows=p["rows"],
                    cols=p["rows"])
    s.server("orthanc", [ORTHANC, orthanc_config(s.work)], [HTTP_PORT])
    truth = s.work / "dicomweb-truth.json"
    with s.capture():
        s.client("dicomweb-bench", [sys.executable, CLIENT, "bench",
                                    f"http://{s.scp_ip}:{HTTP_PORT}", files, truth])
    log = json.loads(truth.read_text())
    if any(e["status"] != 200 for e in log):
        raise PeerError(f"dicomweb load: unexpected statuses {Counter(e['status'] for e in log)}")
    ops = Counter(classify(e["method"], e["path"]).service or "HTTP" for e in log)
    return {"server_ports": [HTTP_PORT], "associations": [], "web_operations": dict(ops),
            "dissector": "http"}


if "bench-dicomweb" not in SCENARIOS:
    scenario("bench-dicomweb", "dicomweb.pcap", "dicomweb-client -> Orthanc DICOMweb: STOW-RS, "
             "QIDO-RS, WADO-RS study/metadata/frames (benchmark load)", sample=False,
             images=48, rows=512)(_dicomweb)
