"""Synthetic DICOM material for the recordings: no real patient data ever goes on the wire.

Images are CT Image Storage objects with a gradient written by pydicom; UIDs are derived from
fixed strings (``generate_uid(entropy_srcs=...)``) so re-recording yields the same UIDs.  Other
transfer syntaxes are produced by dcmtk itself (dcmconv, dcmcjpeg, dcmcrle) so that what the
peers send is what dcmtk would send for such files.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

DCMTK = Path("/usr/bin")  # full paths: pynetdicom's apps of the same names shadow dcmtk on PATH

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
JPEG_LOSSLESS_P14 = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"

TS_NAMES = {
    IMPLICIT_LE: "Implicit VR Little Endian",
    EXPLICIT_LE: "Explicit VR Little Endian",
    DEFLATED_LE: "Deflated Explicit VR Little Endian",
    EXPLICIT_BE: "Explicit VR Big Endian",
    JPEG_LOSSLESS_P14: "JPEG Lossless, Non-Hierarchical (Process 14)",
    JPEG_LOSSLESS_SV1: "JPEG Lossless, Non-Hierarchical, First-Order Prediction (SV1)",
    RLE_LOSSLESS: "RLE Lossless",
}

# dcmtk command that turns an Explicit VR LE file into each transfer syntax.
_CONVERTERS: dict[str, list[str]] = {
    IMPLICIT_LE: [str(DCMTK / "dcmconv"), "+ti"],
    EXPLICIT_BE: [str(DCMTK / "dcmconv"), "+tb"],
    DEFLATED_LE: [str(DCMTK / "dcmconv"), "+td"],
    JPEG_LOSSLESS_SV1: [str(DCMTK / "dcmcjpeg"), "+e1"],
    JPEG_LOSSLESS_P14: [str(DCMTK / "dcmcjpeg"), "+el"],
    RLE_LOSSLESS: [str(DCMTK / "dcmcrle")],
}

PATIENTS = [
    ("SYNTHETIC^ALICE", "DSN0001", "19700101", "F"),
    ("SYNTHETIC^BOB", "DSN0002", "19650505", "M"),
    ("SYNTHETIC^CAROL", "DSN0003", "19801212", "F"),
    ("SYNTHETIC^DAVE", "DSN0004", "19550303", "M"),
    ("SYNTHETIC^ERIN", "DSN0005", "19900909", "F"),
    ("SYNTHETIC^FRANK", "DSN0006", "19751111", "M"),
]


def uid(*parts: object) -> UID:
    """A stable UID derived from ``parts`` (same parts, same UID, on every run)."""
    return generate_uid(entropy_srcs=["dicomsniff-captures", *map(str, parts)])


@dataclass(frozen=True)
class Image:
    """One written file and what was put in it (ground truth for the manifest)."""

    path: Path
    sop_class: str
    sop_instance: str
    study_uid: str
    series_uid: str
    patient_name: str
    patient_id: str
    transfer_syntax: str
    rows: int
    cols: int


def ct_dataset(*, key: str, index: int, rows: int, cols: int, patient: int = 0,
               study: int = 0, series: int = 0) -> Dataset:
    """A 16-bit (12 stored) CT image with a gradient that differs per ``index``.

    ``key`` namespaces the UIDs, so that different scenarios never share instances.
    """
    name, pid, birth, sex = PATIENTS[patient % len(PATIENTS)]
    study_uid = uid(key, "study", patient, study)
    series_uid = uid(key, "series", patient, study, series)
    sop_uid = uid(key, "image", patient, study, series, index)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240115"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = f"{90000 + study * 100:06d}"
    ds.AccessionNumber = f"ACC{patient:02d}{study:04d}"
    ds.Modality = "CT"
    ds.Manufacturer = "DICOMSNIFF SYNTHETIC"
    ds.InstitutionName = "Nowhere Test Lab"
    ds.ReferringPhysicianName = "SYNTHETIC^REFERRER"
    ds.StudyDescription = f"SYNTHETIC CT STUDY {study}"
    ds.SeriesDescription = f"SYNTHETIC AXIAL {series}"
    ds.PatientName = name
    ds.PatientID = pid
    ds.PatientBirthDate = birth
    ds.PatientSex = sex
    ds.SliceThickness = "1.0"
    ds.KVP = "120"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = f"{study + 1}"
    ds.SeriesNumber = series + 1
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [-125.0, -125.0, float(index)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = uid(key, "for", patient, study)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.PixelSpacing = [250.0 / rows, 250.0 / cols]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    y, x = np.mgrid[0:rows, 0:cols]
    pixels = ((x * 2048 // max(cols, 1) + y * 2047 // max(rows, 1) + index * 37) % 4096)
    ds.PixelData = pixels.astype("<u2").tobytes()
    return ds


def write_ct(path: Path, **kwargs: int | str) -> Image:
    """Write :func:`ct_dataset` as an Explicit VR Little Endian file."""
    ds = ct_dataset(**kwargs)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return Image(path, CTImageStorage, ds.SOPInstanceUID, ds.StudyInstanceUID,
                 ds.SeriesInstanceUID, str(ds.PatientName), ds.PatientID, EXPLICIT_LE,
                 ds.Rows, ds.Columns)


def convert(image: Image, ts: str, out: Path) -> Image:
    """Re-encode ``image`` into transfer syntax ``ts`` with dcmtk."""
    if ts == image.transfer_syntax:
        return image
    if image.transfer_syntax != EXPLICIT_LE or ts not in _CONVERTERS:
        raise ValueError(f"cannot convert {image.transfer_syntax} to {ts}")
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*_CONVERTERS[ts], str(image.path), str(out)], check=True,
                   capture_output=True)
    return Image(out, image.sop_class, image.sop_instance, image.study_uid, image.series_uid,
                 image.patient_name, image.patient_id, ts, image.rows, image.cols)


def ct_series(outdir: Path, *, key: str, count: int, rows: int, cols: int, patient: int = 0,
              study: int = 0, series: int = 0) -> list[Image]:
    """``count`` images of one series, written to ``outdir``."""
    return [
        write_ct(outdir / f"{key}-p{patient}-st{study}-se{series}-{i:04d}.dcm", key=key,
                 index=i, rows=rows, cols=cols, patient=patient, study=study, series=series)
        for i in range(count)
    ]


# -- dcmqrscp -------------------------------------------------------------------------------


def dcmqrscp_config(path: Path, *, port: int, aet: str, db_dir: Path,
                    hosts: dict[str, tuple[str, str, int]] | None = None,
                    max_pdu: int = 16384) -> Path:
    """Write a dcmqrscp config serving ``aet`` from ``db_dir``; ``hosts`` are move targets."""
    db_dir.mkdir(parents=True, exist_ok=True)
    host_lines = "\n".join(f"{name} = ({a}, {h}, {p})" for name, (a, h, p) in (hosts or {}).items())
    path.write_text(
        f"NetworkTCPPort  = {port}\n"
        f"MaxPDUSize      = {max_pdu}\n"
        "MaxAssociations = 16\n\n"
        f"HostTable BEGIN\n{host_lines}\nHostTable END\n\n"
        "VendorTable BEGIN\nVendorTable END\n\n"
        "AETable BEGIN\n"
        f"{aet} {db_dir} RW (500, 1024mb) ANY\n"
        "AETable END\n"
    )
    return path


def index_into(db_dir: Path, images: list[Image]) -> None:
    """Register files (already inside ``db_dir``) in dcmqrscp's index with dcmqridx."""
    for start in range(0, len(images), 200):
        chunk = [str(i.path) for i in images[start:start + 200]]
        subprocess.run([str(DCMTK / "dcmqridx"), str(db_dir), *chunk], check=True,
                       capture_output=True)


# -- Modality Performed Procedure Step (PS3.4 F.7) -----------------------------------------

_SCHEDULED = ("StudyInstanceUID", "AccessionNumber", "RequestedProcedureID",
              "ScheduledProcedureStepID", "ScheduledProcedureStepDescription")


def mpps_in_progress(*, patient: tuple[str, ...], scheduled: dict[str, str], pps_id: str,
                     station: str, start_time: str, description: str) -> Dataset:
    """An MPPS N-CREATE attribute list, IN PROGRESS (PS3.4 F.7.2.1): the patient (name, ID,
    birth date, sex), the scheduled step it performs (``_SCHEDULED`` keywords, empty for an
    unscheduled one), the station's AE title, the start on 2024-01-15, no series yet."""
    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = patient
    step = Dataset()
    for kw in _SCHEDULED:
        setattr(step, kw, scheduled.get(kw, ""))
    ds.ScheduledStepAttributesSequence = [step]
    ds.PerformedProcedureStepID = pps_id
    ds.PerformedStationAETitle = station
    ds.PerformedStationName = "CTROOM1"
    ds.PerformedLocation = "ROOM1"
    ds.PerformedProcedureStepStartDate = "20240115"
    ds.PerformedProcedureStepStartTime = start_time
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepDescription = description
    ds.PerformedProcedureTypeDescription = ""
    ds.PerformedProcedureStepEndDate = None
    ds.PerformedProcedureStepEndTime = None
    ds.Modality = "CT"
    ds.StudyID = "1"
    ds.PerformedSeriesSequence = []
    return ds


def mpps_series(uid: str, instances: list[str], *, description: str, protocol: str,
                retrieve_aet: str) -> Dataset:
    """One Performed Series Sequence item: the CT images the step made in series ``uid``."""
    s = Dataset()
    s.PerformingPhysicianName = "SYNTHETIC^TECH"
    s.ProtocolName = protocol
    s.OperatorsName = "SYNTHETIC^OPERATOR"
    s.SeriesInstanceUID = uid
    s.SeriesDescription = description
    s.RetrieveAETitle = retrieve_aet
    s.ReferencedImageSequence = []
    for sop in instances:
        ref = Dataset()
        ref.ReferencedSOPClassUID = CTImageStorage
        ref.ReferencedSOPInstanceUID = sop
        s.ReferencedImageSequence.append(ref)
    s.ReferencedNonImageCompositeSOPInstanceSequence = []
    return s


def mpps_final(status: str, end_time: str, series: list[Dataset]) -> Dataset:
    """An MPPS N-SET modification list ending the step (PS3.4 F.7.2.2): COMPLETED or
    DISCONTINUED on 2024-01-15, with its series (:func:`mpps_series`)."""
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = "20240115"
    ds.PerformedProcedureStepEndTime = end_time
    ds.PerformedSeriesSequence = series
    return ds


# -- modality worklist ----------------------------------------------------------------------

_WL_TEMPLATE = """\
(0008,0005) CS [ISO_IR 100]
(0008,0050) SH [{accession}]
(0010,0010) PN [{name}]
(0010,0020) LO [{pid}]
(0010,0030) DA [{birth}]
(0010,0040) CS [{sex}]
(0020,000d) UI [{study_uid}]
(0032,1032) PN [SYNTHETIC^REQUESTER]
(0032,1060) LO [SYNTHETIC CT EXAM {n}]
(0040,0100) SQ
(fffe,e000) -
(0008,0060) CS [CT]
(0040,0001) AE [{station}]
(0040,0002) DA [20240115]
(0040,0003) TM [{time}]
(0040,0006) PN [SYNTHETIC^TECH]
(0040,0007) LO [SYNTHETIC SCHEDULED STEP {n}]
(0040,0009) SH [SPS{n:04d}]
(0040,0010) SH [STATION{n}]
(0040,0011) SH [ROOM{n}]
(fffe,e00d) -
(fffe,e0dd) -
(0040,1001) SH [RP{n:04d}]
(0040,1003) SH [ROUTINE]
"""


def worklist_dir(root: Path, aet: str, count: int, station: str = "CTSCANNER") -> Path:
    """A wlmscpfs data directory (``root/<aet>/*.wl`` + lockfile) with ``count`` items."""
    d = root / aet
    d.mkdir(parents=True, exist_ok=True)
    (d / "lockfile").touch()
    for n in range(count):
        name, pid, birth, sex = PATIENTS[n % len(PATIENTS)]
        dump = d / f"wl{n:03d}.dump"
        dump.write_text(_WL_TEMPLATE.format(
            accession=f"WLACC{n:04d}", name=name, pid=pid, birth=birth, sex=sex,
            study_uid=uid("worklist", n), station=station,
            time=f"{8 + n // 4:02d}{n % 4 * 15:02d}00", n=n))
        subprocess.run([str(DCMTK / "dump2dcm"), "+te", str(dump), str(d / f"wl{n:03d}.wl")],
                       check=True, capture_output=True)
        dump.unlink()
    return root
