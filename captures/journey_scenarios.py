"""Scenarios for captures/journey/: a study's whole journey with real peers, and broken variants.

One synthetic patient's CT study goes, as on a real night, through: the modality's worklist
query (dcmtk findscu -W against dcmtk wlmscpfs), its MPPS N-CREATE (pynetdicom, to a pynetdicom
RIS), the images (dcmtk storescu to a pynetdicom archive), the MPPS N-SET COMPLETED, a storage
commitment request answered on the same association, and the archive's Instance Availability
Notification to the RIS. The modality builds its images and MPPS from the worklist response it
received (read back from findscu's ``-X`` files), as a modality does; the broken variants change
one thing each (knobs below). Print management and Unified Procedure Step get scenarios of their
own: print with dcmtk's printer (dcmprscp) and dcmtk's SCU (dcmpsprt renders the job, dcmprscu
sends it) or pynetdicom's; the printer and print job status reports with a pynetdicom printer,
since dcmprscp sends no N-EVENT-REPORT at all; UPS with pynetdicom both sides (dcmtk has no UPS).

Layout: the modality and the RIS's IAN receiver (AE ``RISIAN``) sit in the SCU namespace, the
worklist (``WORKLIST``), RIS (``RIS``), archive (``ARCHIVE``), printer and UPS SCP in the SCP
namespace, so that every association crosses the captured veth. Not in ``record.py --all``::

    sudo python3 captures/record.py --out captures/journey --prefix dsstudy \\
        $(python3 captures/record.py --list | awk '/^(journey|print|ups)-/ {print $1}')
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage

from . import synth
from .netns import SCU
from .scenarios import BIN, Truth, association, op, pnd_json, scenario
from .session import PeerError, Session

PEERS = Path(__file__).with_name("journey_peers.py")
PND = Path(__file__).with_name("pnd_peers.py")
WL_PORT, RIS_PORT, ARCHIVE_PORT, IAN_PORT = 11120, 11121, 11112, 11130
PRINT_PORT, PRINT_CALLBACK, UPS_PORT = 11140, 11141, 11150
MPPS = "1.2.840.10008.3.1.2.3.3"
COMMIT = "1.2.840.10008.1.20.1"
IAN = "1.2.840.10008.5.1.4.33"
WORKLIST = "1.2.840.10008.5.1.4.31"
FILM_SESSION = "1.2.840.10008.5.1.1.1"
FILM_BOX = "1.2.840.10008.5.1.1.2"
IMAGE_BOX = "1.2.840.10008.5.1.1.4"
PRINTER = "1.2.840.10008.5.1.1.16"
PRINT_JOB = "1.2.840.10008.5.1.1.14"
UPS_PUSH = "1.2.840.10008.5.1.4.34.6.1"
UPS_WATCH = "1.2.840.10008.5.1.4.34.6.2"
UPS_PULL = "1.2.840.10008.5.1.4.34.6.3"
PATIENT = ("SYNTHETIC^IVAN", "DSJ0001", "19720202", "M")
OTHER = ("SYNTHETIC^JUDY", "DSJ0002", "19830303", "F")
EMERGENCY = ("SYNTHETIC^KARL", "DSJ0099", "19600606", "M")

_WL = """\
(0008,0005) CS [ISO_IR 100]
(0008,0050) SH [{accession}]
(0010,0010) PN [{name}]
(0010,0020) LO [{pid}]
(0010,0030) DA [{birth}]
(0010,0040) CS [{sex}]
(0020,000d) UI [{study}]
(0032,1060) LO [SYNTHETIC CT ABDOMEN]
(0040,0100) SQ
(fffe,e000) -
(0008,0060) CS [CT]
(0040,0001) AE [CTSCANNER]
(0040,0002) DA [20240115]
(0040,0003) TM [{time}]
(0040,0007) LO [SYNTHETIC CT ABDOMEN]
(0040,0009) SH [{sps}]
(fffe,e00d) -
(fffe,e0dd) -
(0040,1001) SH [{rp}]
"""


def peer(role: str, *args: str | int | Path) -> list[str]:
    return [sys.executable, str(PEERS), role, *map(str, args)]


def _worklist(root: Path, key: str) -> tuple[Path, list[dict[str, str]]]:
    """wlmscpfs data: the journey's patient and one other, each one scheduled step."""
    d = root / "WORKLIST"
    d.mkdir(parents=True, exist_ok=True)
    (d / "lockfile").touch()
    items = []
    for n, (name, pid, birth, sex) in enumerate((PATIENT, OTHER)):
        it = {"name": name, "pid": pid, "birth": birth, "sex": sex,
              "accession": f"JACC{n + 1:04d}", "study": str(synth.uid("journey", key, n)),
              "sps": f"JSPS{n + 1:04d}", "rp": f"JRP{n + 1:04d}", "time": f"{10 + n:02d}0000"}
        dump = d / f"wl{n}.dump"
        dump.write_text(_WL.format(**it))
        subprocess.run([str(BIN / "dump2dcm"), "+te", str(dump), str(d / f"wl{n}.wl")],
                             check=True, capture_output=True)
        dump.unlink()
        items.append(it)
    return root, items


def _mpps_create(item: dict[str, str] | None, patient: tuple[str, ...], pps_id: str,
                 overrides: dict[str, str]) -> Dataset:
    scheduled = {"StudyInstanceUID": item["study"], "AccessionNumber": item["accession"],
                 "RequestedProcedureID": item["rp"], "ScheduledProcedureStepID": item["sps"],
                 "ScheduledProcedureStepDescription": "SYNTHETIC CT ABDOMEN"} if item else {}
    ds = synth.mpps_in_progress(
        patient=(overrides.get("PatientName", patient[0]),
                 overrides.get("PatientID", patient[1]), *patient[2:4]),
        scheduled={**scheduled, **{k: v for k, v in overrides.items()
                                   if k != "ScheduledProcedureStepDescription"}},
        pps_id=pps_id, station="CTSCANNER", start_time="101500",
        description="SYNTHETIC CT ABDOMEN")
    ds.SpecificCharacterSet = "ISO_IR 100"
    return ds


def _mpps_set(status: str, series: dict[str, list[str]]) -> Dataset:
    return synth.mpps_final(status, "103000", [
        synth.mpps_series(uid, instances, description=f"SYNTHETIC AXIAL {n}",
                          protocol="ABDOMEN", retrieve_aet="ARCHIVE")
        for n, (uid, instances) in enumerate(series.items())])


def _write_json(path: Path, ds: Dataset) -> Path:
    path.write_text(json.dumps(ds.to_json_dict()))
    return path


def _images(work: Path, key: str, item: dict[str, str] | None, patient: tuple[str, ...],
            mpps_uid: str, pps_id: str, series: int, per_series: int,
            overrides: dict[str, str | None], unscheduled_study: str) -> list[synth.Image]:
    """The modality's images, their identifying attributes copied from the worklist item."""
    out = []
    for se in range(series):
        for i in range(per_series):
            ds = synth.ct_dataset(key=f"journey-{key}", index=i, rows=16, cols=16, series=se)
            ds.PatientName, ds.PatientID = patient[0], patient[1]
            ds.PatientBirthDate, ds.PatientSex = patient[2], patient[3]
            ds.StudyInstanceUID = item["study"] if item else unscheduled_study
            ds.AccessionNumber = item["accession"] if item else ""
            ds.StudyDescription = "SYNTHETIC CT ABDOMEN"
            ra = Dataset()
            ra.RequestedProcedureID = item["rp"] if item else ""
            ra.ScheduledProcedureStepID = item["sps"] if item else ""
            ra.AccessionNumber = item["accession"] if item else ""
            ra.StudyInstanceUID = ds.StudyInstanceUID
            ds.RequestAttributesSequence = [ra]
            ref = Dataset()
            ref.ReferencedSOPClassUID = MPPS
            ref.ReferencedSOPInstanceUID = mpps_uid
            ds.ReferencedPerformedProcedureStepSequence = [ref]
            ds.PerformedProcedureStepID = pps_id
            for kw, value in overrides.items():
                if value == "NEW":  # the modality's own UID instead of the worklist's
                    value = str(synth.uid("journey", key, "modality", kw))
                if value is None:
                    if kw in ds:
                        delattr(ds, kw)
                else:
                    setattr(ds, kw, value)
            path = work / "images" / f"se{se}-{i}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            out.append(synth.Image(path, CTImageStorage, ds.SOPInstanceUID,
                                   ds.StudyInstanceUID, ds.SeriesInstanceUID,
                                   str(ds.PatientName), ds.PatientID, synth.EXPLICIT_LE, 16, 16))
    return out


JOURNEY_DEFAULTS: dict[str, Any] = {
    "series": 2, "per_series": 2, "mpps_final": "COMPLETED", "mpps_missing": 0,
    "mpps_extra": 0, "commit_skip": 0, "commit_extra": 0, "ian_drop": 0, "ian_extra": 0,
    "image_overrides": {}, "mpps_overrides": {}, "unscheduled": False,
}


def journey(s: Session, p: dict[str, Any]) -> Truth:
    key = p["key"]
    root, items = _worklist(s.work / "wl", key)
    s.server("wlmscpfs", [BIN / "wlmscpfs", "-v", "-dhl", "-dfp", root, WL_PORT], WL_PORT)
    s.server("ris", [sys.executable, str(PND), "nserver", "--port", RIS_PORT, "--aet", "RIS"],
             RIS_PORT)
    s.server("ian-receiver", peer("ian-receiver", "--port", IAN_PORT, "--aet", "RISIAN"),
             IAN_PORT, side=SCU)
    extra_ian = [str(synth.uid("journey", key, "ian-extra", n)) for n in range(p["ian_extra"])]
    s.server("archive", peer("archive", "--port", ARCHIVE_PORT, "--aet", "ARCHIVE",
                             "--ian-host", s.scu_ip, "--ian-port", IAN_PORT, "--ian-aet",
                             "RISIAN", "--ian-drop", p["ian_drop"],
                             *(["--ian-extra", *extra_ian] if extra_ian else [])),
             ARCHIVE_PORT)
    patient = EMERGENCY if p["unscheduled"] else PATIENT
    mpps_uid = str(synth.uid("journey", key, "mpps"))
    pps_id = f"JPPS-{key}"[:16]
    tuid = str(synth.uid("journey", key, "commit"))
    rsp = s.work / "wlrsp"
    rsp.mkdir()
    assocs: list[Truth] = []
    with s.capture():
        # 1. worklist query for today's CT steps of this station (as the modality's UI does)
        sps = "ScheduledProcedureStepSequence[0]."
        keys = ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                "StudyInstanceUID", "RequestedProcedureID", "RequestedProcedureDescription",
                f"{sps}Modality=CT", f"{sps}ScheduledStationAETitle=CTSCANNER",
                f"{sps}ScheduledProcedureStepStartDate=20240115",
                f"{sps}ScheduledProcedureStepID"]
        log = s.client("findscu", [BIN / "findscu", "-v", "-W", "-X", "-aet", "CTSCANNER",
                                   "-aec", "WORKLIST", *[a for k in keys for a in ("-k", k)],
                                   s.scp_ip, WL_PORT], cwd=rsp)
        got = [dcmread(f) for f in sorted(rsp.glob("rsp*.dcm"))]
        if len(got) != len(items):
            raise PeerError(f"findscu: {len(got)} worklist items, expected {len(items)}\n{log}")
        assocs.append(association(s, "CTSCANNER", "WORKLIST", WL_PORT, operations=[
            op("C-FIND", "0x0000", pending=len(items), sop_class=WORKLIST)]))
        chosen = None
        if not p["unscheduled"]:
            ds = next(d for d in got if d.PatientID == PATIENT[1])
            chosen = {"name": str(ds.PatientName), "pid": ds.PatientID,
                      "accession": ds.AccessionNumber, "study": ds.StudyInstanceUID,
                      "rp": ds.RequestedProcedureID,
                      "sps": ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID}
        # 2. MPPS IN PROGRESS
        study = str(synth.uid("journey", key, "unscheduled-study"))
        over = dict(p["mpps_overrides"])
        if chosen is None:  # unscheduled: the modality's own Study Instance UID (F.7.2.1)
            over.setdefault("StudyInstanceUID", study)
        create = _write_json(s.work / "create.json",
                             _mpps_create(chosen, patient, pps_id, over))
        res = pnd_json(s.client("mpps-create", peer(
            "mpps", "--host", s.scp_ip, "--port", RIS_PORT, "--aet", "CTSCANNER", "--called",
            "RIS", "--op", "create", "--instance", mpps_uid, "--dataset", create)))
        assocs.append(association(s, "CTSCANNER", "RIS", RIS_PORT, operations=[
            op("N-CREATE", res["create"], sop_class=MPPS, sop_instance=mpps_uid)]))
        # 3. the images
        images = _images(s.work, key, chosen, patient, mpps_uid, pps_id, p["series"],
                         p["per_series"], p["image_overrides"], study)
        log = s.client("storescu", [BIN / "storescu", "-v", "-R", "-aet", "CTSCANNER",
                                    "-aec", "ARCHIVE", s.scp_ip, ARCHIVE_PORT,
                                    *[i.path for i in images]])
        if log.count("Received Store Response (Success)") != len(images):
            raise PeerError("storescu: not every image stored\n" + log)
        assocs.append(association(s, "CTSCANNER", "ARCHIVE", ARCHIVE_PORT, operations=[
            op("C-STORE", sop_class=i.sop_class, sop_instance=i.sop_instance) for i in images]))
        # 4. MPPS final (or not)
        series: dict[str, list[str]] = {}
        listed = images[:len(images) - p["mpps_missing"]]
        for i in listed:
            series.setdefault(i.series_uid, []).append(i.sop_instance)
        never = [str(synth.uid("journey", key, "never-stored", n)) for n in range(p["mpps_extra"])]
        if never:
            series.setdefault(images[0].series_uid, []).extend(never)
        if p["mpps_final"]:
            nset = _write_json(s.work / "set.json", _mpps_set(p["mpps_final"], series))
            res = pnd_json(s.client("mpps-set", peer(
                "mpps", "--host", s.scp_ip, "--port", RIS_PORT, "--aet", "CTSCANNER",
                "--called", "RIS", "--op", "set", "--instance", mpps_uid, "--dataset", nset)))
            assocs.append(association(s, "CTSCANNER", "RIS", RIS_PORT, operations=[
                op("N-SET", res["set"], sop_class=MPPS, sop_instance=mpps_uid)]))
        # 5. storage commitment (report on the same association), then the archive's IAN
        asked = [i.sop_instance for i in images[:len(images) - p["commit_skip"]]]
        asked += [str(synth.uid("journey", key, "commit-extra", n))
                  for n in range(p["commit_extra"])]
        res = pnd_json(s.client("commit", peer(
            "commit", "--host", s.scp_ip, "--port", ARCHIVE_PORT, "--aet", "CTSCANNER",
            "--called", "ARCHIVE", "--transaction", tuid, "--instances", *asked)))
        if len(res["reports"]) != 1:
            raise PeerError(f"commitment: {res}")
        rep = res["reports"][0]
        assocs.append(association(s, "CTSCANNER", "ARCHIVE", ARCHIVE_PORT, operations=[
            op("N-ACTION", res["N-ACTION"], sop_class=COMMIT, action_type=1,
               references=len(asked)),
            op("N-EVENT-REPORT", "0x0000", invoker="acceptor", sop_class=COMMIT,
               event_type=rep["event_type"], committed=rep["committed"],
               failed=rep["failed"])]))
        deadline = time.monotonic() + 15
        while "IAN sent" not in s.read_log("archive"):  # the archive's IAN association
            if time.monotonic() > deadline:
                raise PeerError("the archive sent no IAN")
            time.sleep(0.1)
    stored = [i.sop_instance for i in images]
    in_ian = stored[:len(stored) - p["ian_drop"]] + extra_ian
    assocs.append(association(s, "ARCHIVE", "RISIAN", IAN_PORT, requestor="scp", operations=[
        op("N-CREATE", "0x0000", sop_class=IAN)]))
    return {"server_ports": [WL_PORT, RIS_PORT, ARCHIVE_PORT, IAN_PORT],
            "associations": assocs,
            "journey": {
                "study_instance_uid": images[0].study_uid,
                "accession_number": chosen["accession"] if chosen else "",
                "patient_id": patient[1],
                "scheduled": chosen, "mpps": [{"sop_instance": mpps_uid,
                                               "status": p["mpps_final"] or "IN PROGRESS"}],
                "stored": stored,
                "in_mpps": [u for v in series.values() for u in v] if p["mpps_final"] else [],
                "committed": [u for u in asked if u in stored],
                "commit_failed": [u for u in asked if u not in stored],
                "in_ian": in_ian, "transaction_uid": tuid,
            }}


def _journey_scenario(name: str, filename: str, description: str, **knobs: Any) -> None:
    defaults = {**JOURNEY_DEFAULTS, **knobs, "key": name}
    scenario(name, filename, description, sample=False, **defaults)(journey)


_journey_scenario("journey-clean", "journey-clean.pcap",
                  "a whole CT study: worklist C-FIND (findscu -W -> wlmscpfs), MPPS N-CREATE, 4 "
                  "C-STOREs in 2 series (storescu -> pynetdicom archive), MPPS N-SET COMPLETED, "
                  "storage commitment with its report, the archive's IAN to the RIS")
_journey_scenario("journey-mpps-open", "journey-mpps-open.pcap",
                  "the clean journey, but the modality never sends the MPPS N-SET: the "
                  "procedure step stays IN PROGRESS", mpps_final=None)
_journey_scenario("journey-mpps-gaps", "journey-mpps-gaps.pcap",
                  "the MPPS N-SET COMPLETED lists an instance that was never stored and leaves "
                  "out one that was", mpps_missing=1, mpps_extra=1)
_journey_scenario("journey-commit-gaps", "journey-commit-gaps.pcap",
                  "storage commitment asks for one instance that was never stored (the archive "
                  "fails it, 0x0112) and leaves a stored one out", commit_skip=1, commit_extra=1)
_journey_scenario("journey-mismatch", "journey-mismatch.pcap",
                  "attributes changed along the way: the images carry another Patient ID and "
                  "no Accession Number, the MPPS another Patient's Name and Requested "
                  "Procedure ID than the worklist item",
                  image_overrides={"PatientID": "DSJ-0001", "AccessionNumber": None},
                  mpps_overrides={"PatientName": "SYNTHETIC^IVAN^J",
                                  "RequestedProcedureID": "JRP0009"})
_journey_scenario("journey-new-study-uid", "journey-new-study-uid.pcap",
                  "the modality puts a Study Instance UID of its own in the images instead of "
                  "the worklist item's, and its MPPS another Scheduled Procedure Step ID",
                  image_overrides={"StudyInstanceUID": "NEW"},
                  mpps_overrides={"ScheduledProcedureStepID": "JSPS0009"})
_journey_scenario("journey-ian-gaps", "journey-ian-gaps.pcap",
                  "the archive's IAN leaves out one stored instance and lists one it never "
                  "received", ian_drop=1, ian_extra=1)
_journey_scenario("journey-unscheduled", "journey-unscheduled.pcap",
                  "an emergency patient with no worklist item: the modality queried the "
                  "worklist (two CT items, neither for this patient), then performed and sent "
                  "an unscheduled study", unscheduled=True)


# -- print management ----------------------------------------------------------------------------

def printing(s: Session, p: dict[str, Any]) -> Truth:
    scp = ["--port", PRINT_PORT, "--aet", "PRINTER"]
    if p["status"]:
        scp += ["--status", p["status"], "--status-info", p["status_info"]]
    if p.get("job_failure"):
        scp += ["--job-failure", p["job_failure"]]
    if p["callback"]:
        scp += ["--status-new-association", "--callback-host", s.scu_ip, "--callback-port",
                PRINT_CALLBACK, "--callback-aet", "CTSCANNER"]
    s.server("print-scp", peer("print-scp", *scp), PRINT_PORT)
    scu = ["--host", s.scp_ip, "--port", PRINT_PORT, "--aet", "CTSCANNER", "--called",
           "PRINTER", "--films", *p["films"]]
    if p["get_printer"]:
        scu.append("--get-printer")
    if p["delete_session"]:
        scu.append("--delete-session")
    if p["callback"]:
        scu += ["--listen", PRINT_CALLBACK, "--linger", "1.5"]
    with s.capture():
        res = pnd_json(s.client("print-scu", peer("print-scu", *scu)))
    ops = [op("N-GET", res["N-GET"], sop_class=PRINTER)] if p["get_printer"] else []
    ops.append(op("N-CREATE", res["session"], sop_class=FILM_SESSION))
    reports = list(res["reports"])
    for film in res["films"]:
        ops.append(op("N-CREATE", film["N-CREATE"], sop_class=FILM_BOX,
                      sop_instance=film["film_box"]))
        ops += [op("N-SET", st, sop_class=IMAGE_BOX) for st in film["boxes"]]
        if "N-ACTION" in film:
            ops.append(op("N-ACTION", film["N-ACTION"], sop_class=FILM_BOX, action_type=1))
            if (p["status"] or p.get("job_failure")) and not p["callback"]:
                ops.append(op("N-EVENT-REPORT", "0x0000", invoker="acceptor",
                              sop_class=PRINT_JOB if p.get("job_failure") else PRINTER,
                              event_type=reports.pop(0)))
            ops.append(op("N-DELETE", film["N-DELETE"], sop_class=FILM_BOX))
    if p["delete_session"]:
        ops.append(op("N-DELETE", res["session_delete"], sop_class=FILM_SESSION))
    assocs = [association(s, "CTSCANNER", "PRINTER", PRINT_PORT, operations=ops)]
    if p["callback"]:
        assocs.append(association(s, "PRINTER", "CTSCANNER", PRINT_CALLBACK, requestor="scp",
                                  operations=[op("N-EVENT-REPORT", "0x0000", sop_class=PRINTER,
                                                 event_type=reports.pop(0))]))
    return {"server_ports": [PRINT_PORT] + ([PRINT_CALLBACK] if p["callback"] else []),
            "associations": assocs, "print": res}


scenario("print-clean", "print-clean.pcap",
         "pynetdicom Basic Grayscale Print: N-GET printer status (NORMAL), film session, two "
         "film boxes of two image boxes each, every box N-SET, N-ACTION print, N-DELETE",
         sample=False, films=["ok", "ok"], status=None, status_info="NORMAL", callback=False,
         get_printer=True, delete_session=True)(printing)
scenario("print-faults", "print-faults.pcap",
         "print with faults: a film box created and never printed, a film box printed with one "
         "image box left empty, the printer reporting FAILURE (FILM JAM) by N-EVENT-REPORT "
         "after each print", sample=False, films=["never-printed", "empty-box"],
         status="FAILURE", status_info="FILM JAM", callback=False, get_printer=False,
         delete_session=False)(printing)
scenario("print-job-failed", "print-job-failed.pcap",
         "one film printed; the printer reports the print job FAILURE (SUPPLY EMPTY) by a "
         "Print Job N-EVENT-REPORT (event type 4) on the print association", sample=False,
         films=["ok"], status=None, status_info="NORMAL", callback=False, get_printer=False,
         delete_session=True, job_failure="SUPPLY EMPTY")(printing)
scenario("print-report-no-role", "print-report-no-role.pcap",
         "the printer sends its WARNING (SUPPLY LOW) N-EVENT-REPORT on a new association it "
         "opens to the SCU, without SCP/SCU role selection", sample=False, films=["ok"],
         status="WARNING", status_info="SUPPLY LOW", callback=True, get_printer=False,
         delete_session=True)(printing)


# -- print management with dcmtk -------------------------------------------------------------------

DCMTK_PRINTER = """\
[[GENERAL]]
[PRINT]
Directory = spool
DetailedLog = true
BinaryLog = false
DeletePrintJobs = false
[DATABASE]
Directory = database
[[COMMUNICATION]]
[{name}]
Aetitle = PRINTER
Description = dicomsniff test printer (synthetic)
Hostname = {host}
Port = {port}
Type = {kind}
DisplayFormat = 1,1\\1,2\\2,2
FilmSizeID = 8INX10IN\\14INX17IN
FilmDestination = MAGAZINE\\PROCESSOR
MediumType = PAPER\\CLEAR FILM\\BLUE FILM
MagnificationType = REPLICATE\\BILINEAR\\CUBIC\\NONE
MaxDensity = 320
MinDensity = 20
MaxPDU = 16384
ImplicitOnly = false
DisableNewVRs = false
Supports12Bit = true
SupportsPresentationLUT = true
PresentationLUTMatchRequired = false
SupportsImageSize = true
SupportsDecimateCrop = true
SupportsTrim = true
"""


def _dcmtk_print_dir(root: Path, name: str, host: str, kind: str) -> Path:
    d = root / name
    for sub in ("spool", "database"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "dcmpstat.cfg").write_text(DCMTK_PRINTER.format(name=name.upper(), host=host,
                                                         port=PRINT_PORT, kind=kind))
    return d


def _print_image(path: Path, n: int) -> Path:
    """A small synthetic 12-bit CT image for dcmpsprt to render into a print job."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["journey-print-dcmtk", str(n)])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName, ds.PatientID = "SYNTHETIC^HEIDI", "DSJ0042"
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["journey-print-dcmtk", "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["journey-print-dcmtk", "series"])
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    ds.PixelData = bytes((i * (7 + n)) % 256 if i % 2 == 0 else 0 for i in range(64 * 64 * 2))
    ds.save_as(path, enforce_file_format=True)
    return path


def printing_dcmtk(s: Session, p: dict[str, Any]) -> Truth:
    """dcmtk's print SCP (dcmprscp) with dcmtk's print SCU (dcmpsprt renders the job,
    dcmprscu sends it) and/or pynetdicom's print SCU. dcmprscp answers N-CREATE, N-SET,
    N-ACTION, N-DELETE and N-GET, but sends no N-EVENT-REPORT at all (no printer or print job
    status reports): those faults are only in the pynetdicom printer's recordings."""
    scp = _dcmtk_print_dir(s.work, "printer", "localhost", "LOCALPRINTER")
    scu = _dcmtk_print_dir(s.work, "remote", s.scp_ip, "PRINTER")
    s.server("dcmprscp", [f"{BIN}/dcmprscp", "-c", "dcmpstat.cfg", "-p", "PRINTER", "-v"],
             PRINT_PORT, cwd=scp)
    assocs: list[Truth] = []
    out: dict[str, Any] = {}
    if p["dcmtk_scu"]:
        images = [_print_image(s.work / f"print{n}.dcm", n) for n in range(p["dcmtk_scu"])]
        s.client("dcmpsprt", [f"{BIN}/dcmpsprt", "-c", "dcmpstat.cfg", "-p", "REMOTE", "-v",
                              *images], cwd=scu)
        (job,) = sorted((scu / "database").glob("SP_*.dcm"))
        with s.capture():
            s.client("dcmprscu", [f"{BIN}/dcmprscu", "-c", "dcmpstat.cfg", "-p", "REMOTE",
                                  "-v", "--destination", "MAGAZINE", job], cwd=scu)
            if p["films"]:
                out = pnd_json(s.client("print-scu", peer(
                    "print-scu", "--host", s.scp_ip, "--port", PRINT_PORT, "--aet", "CTSCANNER",
                    "--called", "PRINTER", "--films", *p["films"],
                    *(["--delete-session"] if p["delete_session"] else []))))
    else:
        with s.capture():
            out = pnd_json(s.client("print-scu", peer(
                "print-scu", "--host", s.scp_ip, "--port", PRINT_PORT, "--aet", "CTSCANNER",
                "--called", "PRINTER", "--films", *p["films"],
                *(["--delete-session"] if p["delete_session"] else []))))
    time.sleep(0.3)
    # What dcmprscp kept: one hardcopy image per image box it was given (HG_*), one stored
    # print object per film box it printed (SP_*).
    received = {"image_boxes_set": len(list((scp / "database").glob("HG_*.dcm"))),
                "films_printed": len(list((scp / "database").glob("SP_*.dcm"))),
                "images_rendered": p["dcmtk_scu"]}
    if p["dcmtk_scu"]:
        assocs.append(association(s, "DCMPSTAT", "PRINTER", PRINT_PORT))
    if p["films"]:
        ops = [op("N-CREATE", out["session"], sop_class=FILM_SESSION)]
        for film in out["films"]:
            ops.append(op("N-CREATE", film["N-CREATE"], sop_class=FILM_BOX,
                          sop_instance=film["film_box"]))
            ops += [op("N-SET", st, sop_class=IMAGE_BOX) for st in film["boxes"]]
            if "N-ACTION" in film:
                ops.append(op("N-ACTION", film["N-ACTION"], sop_class=FILM_BOX, action_type=1))
                ops.append(op("N-DELETE", film["N-DELETE"], sop_class=FILM_BOX))
        if p["delete_session"]:
            ops.append(op("N-DELETE", out["session_delete"], sop_class=FILM_SESSION))
        assocs.append(association(s, "CTSCANNER", "PRINTER", PRINT_PORT, operations=ops))
    return {"server_ports": [PRINT_PORT], "associations": assocs,
            "print": {**out, "dcmprscp": received}}


scenario("print-dcmtk", "print-dcmtk.pcap",
         "dcmtk print: dcmpsprt renders a synthetic CT image into a print job, dcmprscu sends "
         "it to dcmprscp (N-GET printer, film session, presentation LUT, film box, image box "
         "N-SET, print, N-DELETEs); then a pynetdicom SCU prints a film of two image boxes on "
         "the same dcmprscp", sample=False, dcmtk_scu=1, films=["ok"],
         delete_session=True)(printing_dcmtk)
scenario("print-dcmtk-faults", "print-dcmtk-faults.pcap",
         "pynetdicom print SCU against dcmtk's dcmprscp: a film box created and never printed, "
         "a film box printed with one image box left empty", sample=False, dcmtk_scu=0,
         films=["never-printed", "empty-box"], delete_session=False)(printing_dcmtk)


# -- unified procedure step -----------------------------------------------------------------------

def ups(s: Session, p: dict[str, Any]) -> Truth:
    forget = p.get("forget", [])
    watchers = p.get("watchers", [])
    s.server("ups-scp", peer("ups-scp", "--port", UPS_PORT, "--aet", "UPSSCP",
                             *(["--forget-subscriber", *forget] if forget else [])), UPS_PORT)
    with s.capture():
        res = pnd_json(s.client("ups-scu", peer(
            "ups-scu", "--host", s.scp_ip, "--port", UPS_PORT, "--aet", "WORKSTATION",
            "--called", "UPSSCP", "--seed", p["seed"], "--script", *p["script"],
            *(["--watcher", *watchers] if watchers else []),
            *(["--item-watcher", p["item_watcher"]] if p.get("item_watcher") else []))))
    watch = [op("N-ACTION", res["subscribe"], sop_class=UPS_WATCH, action_type=3)]
    watch += [op("N-EVENT-REPORT", "0x0000", invoker="acceptor", sop_class=UPS_PUSH,
                 event_type=1, state=state) for state in res["events"]]
    push = [op("N-CREATE", res["create"], sop_class=UPS_PUSH, sop_instance=res["instance"])]
    for step, st in res["steps"]:
        if step == "unsubscribe-item":
            continue  # on the item watcher's association, below
        cmd = "N-SET" if step == "set" else "N-ACTION"
        cls = UPS_PUSH if step == "cancel-late" else UPS_PULL
        push.append(op(cmd, st, sop_class=cls, sop_instance=res["instance"], step=step))
    more = []
    for aet in watchers:
        got = res["watchers"][aet]
        ops = [op("N-ACTION", got["subscribe"], sop_class=UPS_WATCH, action_type=3)]
        ops += [op("N-EVENT-REPORT", "0x0000", invoker="acceptor", sop_class=UPS_PUSH,
                   event_type=1, state=state) for state in got["events"]]
        more.append(association(s, aet, "UPSSCP", UPS_PORT, operations=ops))
    if p.get("item_watcher"):
        ops = [op("N-ACTION", res["item_subscribe"], sop_class=UPS_WATCH, action_type=3,
                  sop_instance=res["instance"])]
        ops += [op("N-EVENT-REPORT", "0x0000", invoker="acceptor", sop_class=UPS_PUSH,
                   event_type=1, state=state) for state in res["item_events"]]
        ops += [op("N-ACTION", st, sop_class=UPS_WATCH, action_type=4,
                   sop_instance=res["instance"])
                for step, st in res["steps"] if step == "unsubscribe-item"]
        more.append(association(s, p["item_watcher"], "UPSSCP", UPS_PORT, operations=ops))
    return {"server_ports": [UPS_PORT], "ups": res, "associations": [
        association(s, "WORKSTATION", "UPSSCP", UPS_PORT, operations=watch), *more,
        association(s, "WORKSTATION", "UPSSCP", UPS_PORT, operations=push)]}


scenario("ups-clean", "ups-clean.pcap",
         "pynetdicom UPS: a watcher subscribes globally; a workitem is pushed (N-CREATE "
         "SCHEDULED), claimed (N-ACTION IN PROGRESS with a Transaction UID), updated (N-SET), "
         "COMPLETED; the SCP sends a state report to the watcher for each",
         sample=False, seed="clean", script=["claim", "set", "complete"])(ups)
scenario("ups-illegal", "ups-illegal.pcap",
         "UPS with illegal requests: COMPLETED while SCHEDULED (0xC310), claimed, claimed again "
         "(0xC302), COMPLETED with a wrong Transaction UID (0xC301), cancel while IN PROGRESS "
         "(0xC312), then COMPLETED properly", sample=False, seed="illegal",
         script=["complete-early", "claim", "claim-again", "wrong-tuid", "cancel-late",
                 "complete"])(ups)
scenario("ups-missed-report", "ups-missed-report.pcap",
         "UPS with two more watchers (WATCHER1, WATCHER2) subscribed globally; the SCP sends "
         "WATCHER2 the SCHEDULED report only, never the IN PROGRESS and COMPLETED ones",
         sample=False, seed="missed", script=["claim", "complete"],
         watchers=["WATCHER1", "WATCHER2"], forget=["WATCHER2"])(ups)
scenario("ups-item-subscriber", "ups-item-subscriber.pcap",
         "UPS: a reading room (READROOM) subscribes to one workitem after it is pushed, gets "
         "the IN PROGRESS report, unsubscribes, and is rightly sent no COMPLETED report",
         sample=False, seed="item", script=["claim", "unsubscribe-item", "complete"],
         item_watcher="READROOM")(ups)
