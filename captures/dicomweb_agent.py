"""DICOMweb user agent for the recordings: dicomweb-client (and raw requests for the cases the
library will not send), run inside the SCU namespace against Orthanc's DICOMweb plugin.

Usage: ``python3 dicomweb_agent.py PLAN BASE_URL FILES_DIR TRUTH_JSON``. Every HTTP exchange
is logged by a response hook (method, path, status, content type, body length as received) into
TRUTH_JSON: the ground truth the dissector's results are checked against.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from requests.exceptions import HTTPError

LOG: list[dict[str, Any]] = []


def _hook(resp: requests.Response, *args: Any, **kwargs: Any) -> None:
    req = resp.request
    path = req.path_url
    LOG.append({"method": req.method, "path": path, "status": resp.status_code,
                "content_type": resp.headers.get("Content-Type"),
                "bytes": len(resp.content)})


def _session() -> requests.Session:
    s = requests.Session()
    s.hooks["response"].append(_hook)
    s.headers["User-Agent"] = "dicomsniff-recorder (dicomweb-client)"
    return s


def _expect(fn, *args: Any, **kwargs: Any) -> Any:
    """Call a client method that may fail with an HTTP error (the error is the point)."""
    try:
        return fn(*args, **kwargs)
    except HTTPError:
        return None


def plan_stow(c: DICOMwebClient, s: requests.Session, base: str, files: list[Path]) -> None:
    """STOW-RS: two instances; the same again (duplicates); one failed instance among good."""
    ds = [pydicom.dcmread(f) for f in files]
    c.store_instances(ds[:2])
    c.store_instances(ds[:2])  # duplicates: Orthanc stores them again
    # A study-level STOW whose second instance belongs to another study: PS3.18 10.5 says the
    # origin server shall fail such an instance.
    _expect(c.store_instances, [ds[2], ds[4]], study_instance_uid=ds[2].StudyInstanceUID)
    # A part that is not DICOM at all, next to a good one.
    boundary = "dicomsniff-boundary-7"
    good = files[4].read_bytes()
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + good
            + f"\r\n--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + b"this is not a DICOM file" + f"\r\n--{boundary}--\r\n".encode())
    s.post(f"{base}/dicom-web/studies", data=body, headers={
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json"})
    # 415: a STOW with a media type the origin server does not take.
    s.post(f"{base}/dicom-web/studies", data=b"{}", headers={
        "Content-Type": "application/json", "Accept": "application/dicom+json"})


def plan_qido(c: DICOMwebClient, s: requests.Session, base: str, files: list[Path]) -> None:
    """QIDO-RS at each level, with matching parameters, and a search that matches nothing."""
    ds = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    c.search_for_studies()
    c.search_for_studies(search_filters={"PatientName": "SYNTHETIC^A*"}, fuzzymatching=False,
                         fields=["StudyDescription"], limit=10, offset=0)
    c.search_for_series(study_instance_uid=ds[0].StudyInstanceUID,
                        search_filters={"Modality": "CT"})
    c.search_for_instances(study_instance_uid=ds[0].StudyInstanceUID,
                           series_instance_uid=ds[0].SeriesInstanceUID, get_remaining=False)
    c.search_for_series(search_filters={"0020000D": ds[0].StudyInstanceUID},
                        fields=["all"])
    c.search_for_studies(search_filters={"PatientName": "NOBODY^HERE"})  # empty result
    s.get(f"{base}/dicom-web/studies?StudyDate=20240101-20241231&limit=2&offset=1",
          headers={"Accept": "application/dicom+json"})


def plan_wado(c: DICOMwebClient, s: requests.Session, base: str, files: list[Path]) -> None:
    """WADO-RS instance, metadata, frames, rendered, thumbnail; WADO-URI; 404 and 406."""
    ds = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    st, se, sop = ds[0].StudyInstanceUID, ds[0].SeriesInstanceUID, ds[0].SOPInstanceUID
    c.retrieve_instance(st, se, sop)
    c.retrieve_instance_metadata(st, se, sop)
    c.retrieve_series_metadata(st, se)
    _expect(c.retrieve_instance_frames, st, se, sop, frame_numbers=[1])  # library default
    c.retrieve_instance_frames(st, se, sop, frame_numbers=[1],
                               media_types=(("application/octet-stream", "*"),))
    c.retrieve_instance_rendered(st, se, sop, media_types=("image/jpeg",))
    s.get(f"{base}/dicom-web/studies/{st}/series/{se}/thumbnail", headers={"Accept": "image/png"})
    c.retrieve_study(st)
    # A transfer syntax Orthanc cannot produce (JPEG 2000 without a codec plugin): PS3.18 wants
    # 406; Orthanc 1.10 answers 500. A media type it cannot produce: Orthanc answers 400.
    s.get(f"{base}/dicom-web/studies/{st}/series/{se}/instances/{sop}", headers={
        "Accept": 'multipart/related; type="application/dicom"; '
                  "transfer-syntax=1.2.840.10008.1.2.4.90"})
    s.get(f"{base}/dicom-web/studies/{st}/series/{se}/instances/{sop}",
          headers={"Accept": "application/pdf"})
    s.get(f"{base}/dicom-web/studies/1.2.3.4.5.6.7.8.9/series", headers={
        "Accept": "application/dicom+json"})  # QIDO under an unknown study
    s.get(f"{base}/dicom-web/studies/1.2.3.4.5.6.7.8.9", headers={
        "Accept": 'multipart/related; type="application/dicom"'})  # 404
    # WADO-URI (PS3.18 chapter 9): default answer, then Part 10.
    q = f"requestType=WADO&studyUID={st}&seriesUID={se}&objectUID={sop}"
    s.get(f"{base}/wado?{q}")
    s.get(f"{base}/wado?{q}&contentType=application/dicom")
    s.get(f"{base}/wado?{q}&contentType=application%2Fdicom")  # Orthanc does not decode it
    s.get(f"{base}/wado?{q}&contentType=image%2Fjpeg")
    s.get(f"{base}/wado?requestType=WADO&studyUID=1.2.3&seriesUID=1.2.3.4&objectUID=1.2.3.4.5")


def plan_https(c: DICOMwebClient, s: requests.Session, base: str, files: list[Path]) -> None:
    """The same services through stunnel (TLS): a search, a retrieval, a store."""
    ds = [pydicom.dcmread(f) for f in files]
    c.search_for_studies(search_filters={"PatientID": "DSN0001"})
    c.retrieve_instance_metadata(ds[0].StudyInstanceUID, ds[0].SeriesInstanceUID,
                                 ds[0].SOPInstanceUID)
    c.retrieve_instance(ds[0].StudyInstanceUID, ds[0].SeriesInstanceUID, ds[0].SOPInstanceUID)
    c.store_instances([ds[1]])


def plan_bench(c: DICOMwebClient, s: requests.Session, base: str, files: list[Path]) -> None:
    """The benchmark's load (bench/scenarios.py): stores, searches, retrievals."""
    ds = [pydicom.dcmread(f) for f in files]
    st, se = ds[0].StudyInstanceUID, ds[0].SeriesInstanceUID
    for i in range(0, len(ds), 4):
        c.store_instances(ds[i:i + 4])
    for _ in range(20):
        c.search_for_studies(search_filters={"PatientID": "DSN0001"})
    for _ in range(10):
        c.search_for_instances(study_instance_uid=st, series_instance_uid=se)
    for _ in range(3):
        c.retrieve_study(st)
    for d in ds[:12]:
        c.retrieve_instance_metadata(st, se, d.SOPInstanceUID)
        c.retrieve_instance_frames(st, se, d.SOPInstanceUID, frame_numbers=[1],
                                   media_types=(("application/octet-stream", "*"),))


PLANS = {"bench": plan_bench, "stow": plan_stow, "qido": plan_qido, "wado": plan_wado,
         "https": plan_https}


def main(argv: list[str]) -> int:
    plan, base, files_dir, truth = argv
    files = sorted(Path(files_dir).glob("*.dcm"))
    s = _session()
    c = DICOMwebClient(f"{base}/dicom-web", session=s)
    for name in plan.split(","):
        PLANS[name](c, s, base, files)
    Path(truth).write_text(json.dumps(LOG, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
