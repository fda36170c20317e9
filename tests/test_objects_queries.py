"""``show --check-queries``: C-FIND responses against their query (PS3.4 C.2.2.2).

The matching rules one by one on pydicom data sets, then a hand-built C-FIND whose SCP
returns a wrong patient, a study outside the date range, another modality and forgets a
return key: each is a finding with its code, frame and section; the sample queries are clean.
"""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.filewriter import write_dataset

from dicomsniff.cli import main
from dicomsniff.objects.matching import check
from tests import builders as b
from tests.test_objects_hostile import write_pcap

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


def ds(**kw: object) -> Dataset:
    d = Dataset()
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def problems(query: Dataset, response: Dataset) -> list[tuple[str, str, str]]:
    return [(p.kind, p.path.split(" ")[0], p.rule) for p in check(query, response)]


@pytest.mark.parametrize(("query", "response", "ok"), [
    (ds(PatientName="SMITH*"), ds(PatientName="Smith^John"), True),  # PN: case-insensitive
    (ds(PatientName="SM?TH^JOHN"), ds(PatientName="SMYTH^JOHN"), True),
    (ds(PatientName="SMITH*"), ds(PatientName="JONES^BOB"), False),
    (ds(PatientName="*"), ds(PatientName="ANYONE"), True),  # "*" alone is universal
    (ds(PatientID=""), ds(PatientID="X"), True),  # universal matching: a return key
    (ds(PatientID="A1"), ds(PatientID="A1 "), True),  # padding is not significant
    (ds(PatientID="A1"), ds(PatientID="a1"), False),  # LO is case-sensitive
    (ds(StudyDate="20240101-20240131"), ds(StudyDate="20240131"), True),
    (ds(StudyDate="20240101-20240131"), ds(StudyDate="20240201"), False),
    (ds(StudyDate="-20240101"), ds(StudyDate="19991231"), True),
    (ds(StudyTime="0900-1000"), ds(StudyTime="100059.5"), True),  # 1000 covers its minute
    (ds(StudyTime="0900-1000"), ds(StudyTime="101000"), False),
    (ds(StudyDate="20240115"), ds(StudyDate="20240116"), False),
    (ds(StudyInstanceUID=["1.2.3", "1.2.4"]), ds(StudyInstanceUID="1.2.4"), True),
    (ds(StudyInstanceUID=["1.2.3", "1.2.4"]), ds(StudyInstanceUID="1.2.5"), False),
    (ds(ModalitiesInStudy="CT"), ds(ModalitiesInStudy=["MR", "CT"]), True),  # any value
    (ds(NumberOfStudyRelatedInstances="3"), ds(NumberOfStudyRelatedInstances="03"), True),
    (ds(PatientName="SMITH"), ds(PatientName=""), False),  # an empty value matches nothing
])
def test_matching_rules(query: Dataset, response: Dataset, ok: bool) -> None:
    assert (check(query, response) == []) is ok


def test_missing_keys_and_sequences() -> None:
    q = ds(PatientID="", AccessionNumber="",
           ScheduledProcedureStepSequence=[ds(Modality="CT", ScheduledStationAETitle="")])
    good = ds(PatientID="1", AccessionNumber="A",
              ScheduledProcedureStepSequence=[ds(Modality="MR", ScheduledStationAETitle="X"),
                                              ds(Modality="CT", ScheduledStationAETitle="Y")])
    assert check(q, good) == []
    bad = ds(PatientID="1", ScheduledProcedureStepSequence=[ds(Modality="MR")])
    assert problems(q, bad) == [
        ("missing", "AccessionNumber", "missing"),
        ("missing", "ScheduledProcedureStepSequence[1].ScheduledStationAETitle", "missing"),
        ("mismatch", "ScheduledProcedureStepSequence", "single")]
    assert problems(ds(ReferencedStudySequence=[]), ds()) == [
        ("missing", "ReferencedStudySequence", "missing")]


# -- end to end on a hand-built capture -------------------------------------------------------

def identifier(d: Dataset) -> bytes:
    fp = BytesIO()
    from pydicom.filebase import DicomFileLike

    f = DicomFileLike(fp)
    f.is_little_endian, f.is_implicit_VR = True, False
    write_dataset(f, d)
    return fp.getvalue()


QUERY = ds(QueryRetrieveLevel="STUDY", PatientName="SMITH*", StudyDate="20240101-20240131",
           StudyInstanceUID="", ModalitiesInStudy="CT", AccessionNumber="")
RESPONSES = [
    ds(QueryRetrieveLevel="STUDY", PatientName="SMITH^JOHN", StudyDate="20240115",
       StudyInstanceUID="1.2.3.1", ModalitiesInStudy=["CT", "SR"], AccessionNumber="A1"),
    ds(QueryRetrieveLevel="STUDY", PatientName="JONES^BOB", StudyDate="20231231",
       StudyInstanceUID="1.2.3.2", ModalitiesInStudy="CT"),
    ds(QueryRetrieveLevel="STUDY", PatientName="SMITHERS^W", StudyDate="20240102",
       StudyInstanceUID="1.2.3.3", ModalitiesInStudy="MR"),
]


def find_capture(path: Path) -> tuple[Path, list[int]]:
    """One C-FIND association; returns the capture and the frames of request and responses."""
    ctx = [(1, STUDY_FIND, [b.EXPLICIT_LE])]
    conv = b.TcpConversation(client=("192.0.2.1", 44000)).handshake()
    conv.send(0, b.associate_rq("ARCHIVE", "WORKSTATION", ctx))
    conv.send(1, b.associate_ac("ARCHIVE", "WORKSTATION", [(1, 0, b.EXPLICIT_LE)]))
    conv.send(0, b.p_data(b.pdv(1, 3, b.command_set(0x0020, message_id=7, sop_class=STUDY_FIND,
                                                    priority=0, has_dataset=True)),
                          b.pdv(1, 2, identifier(QUERY))))
    frames = [len(conv.frames)]  # the request's frame, then each response's
    for r in RESPONSES:
        conv.send(1, b.p_data(b.pdv(1, 3, b.command_set(0x8020, responded_to=7,
                                                        sop_class=STUDY_FIND, status=0xFF00,
                                                        has_dataset=True)),
                              b.pdv(1, 2, identifier(r))))
        frames.append(len(conv.frames))
    conv.send(1, b.p_data(b.pdv(1, 3, b.command_set(0x8020, responded_to=7,
                                                    sop_class=STUDY_FIND, status=0))))
    conv.send(0, b.release_rq()).send(1, b.release_rp()).close()
    return write_pcap(path, conv.frames), frames


def test_check_queries_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap, frames = find_capture(tmp_path / "find.pcap")
    assert main(["show", str(cap), "--check-queries", "--json", "--no-progress"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = records.pop()
    assert summary == {"type": "summary", "queries": 1, "responses": 3, "findings": 4}
    got = {(r["code"], r["message"].split(": ")[1].split(" (")[0], r["frame"], r["section"])
           for r in records}
    assert got == {
        ("QUERY-KEY-MISSING", "return key AccessionNumber", frames[2],
         "PS3.4 C.2.2.2.3 / C.4.1.1.3.2"),
        ("QUERY-VALUE-MISMATCH", "PatientName", frames[2], "PS3.4 C.2.2.2.4"),
        ("QUERY-VALUE-MISMATCH", "StudyDate", frames[2], "PS3.4 C.2.2.2.5"),
        ("QUERY-VALUE-MISMATCH", "ModalitiesInStudy", frames[3], "PS3.4 C.2.2.2.1"),
    }
    for r in records:
        assert r["type"] == "finding" and r["association"] == 1
        assert r["frames"][0] == frames[0]  # the request
        assert set(r) == {"type", "association", "severity", "code", "message", "frame",
                          "section", "frames"}
    missing = next(r for r in records if r["code"] == "QUERY-KEY-MISSING")
    assert "2 of 3 responses" in missing["message"]
    assert missing["frames"] == [frames[0], frames[3]]
    date = next(r for r in records if "StudyDate" in r["message"])
    assert "asked 20240101-20240131, got 20231231" in date["message"]


def test_check_queries_text_and_anonymized(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    cap, _ = find_capture(tmp_path / "find.pcap")
    assert main(["show", str(cap), "--check-queries", "--anonymize", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "QUERY-VALUE-MISMATCH" in out and "QUERY-KEY-MISSING" in out
    assert "1 C-FIND query checked, 3 response identifiers, 4 findings" in out
    assert "JONES" not in out and "values withheld" in out


@pytest.mark.parametrize("capture", ["find-pending.pcap", "find-cancel.pcap", "worklist.pcap"])
def test_sample_queries_are_clean(capture: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(CAPTURES / capture), "--check-queries", "--no-progress"]) == 0
    assert "no findings" in capsys.readouterr().out


def test_check_one_transaction(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(CAPTURES / "find-pending.pcap"), "--check-queries",
                 "--transaction", "1", "--json", "--no-progress"]) == 0
    (summary,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert summary["queries"] == 1 and summary["responses"] == 36
    assert main(["show", str(CAPTURES / "mpps.pcap"), "--check-queries",
                 "--transaction", "1"]) == 2
    assert "not a C-FIND" in capsys.readouterr().err
