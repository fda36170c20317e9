"""``dicomsniff show --transaction ID`` on the sample captures: the trees and what they point at.

Queries (find-pending), a worklist, MPPS, storage commitment on the same and on a separate
association, N-GET and a C-STORE of a C-GET: every message of the transaction in wire order,
its command set decoded, its data set as a dcmdump-like tree with the workflow's key
attributes marked '*', pixel data as a size. Also: a query is shown without copying the images
around it, de-identification, and the error paths.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import dissectors.ul.stream as ul_stream
from dicomsniff.cli import main

CAPTURES = Path(__file__).resolve().parent.parent / "captures"


def show(capsys: pytest.CaptureFixture[str], capture: str, *args: str) -> tuple[int, str, str]:
    rc = main(["show", str(CAPTURES / capture), "--no-progress", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def titles(out: str) -> list[str]:
    return [ln.split(",")[0] for ln in out.splitlines() if re.match(r"^[CN]-[A-Z-]+(RQ|RSP)", ln)]


def marked(out: str) -> set[str]:
    """Keywords of the lines marked as key attributes."""
    return {ln.rsplit("# ", 1)[1].split(" = ")[0] for ln in out.splitlines()
            if ln.startswith("*") and "# " in ln}


def test_find_every_response(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = show(capsys, "find-pending.pcap", "--transaction", "1")
    assert rc == 0
    t = titles(out)
    assert t[0] == "C-FIND-RQ" and len(t) == 38
    assert t[1] == "C-FIND-RSP 1 of 37" and t[-1] == "C-FIND-RSP 37 of 37"
    assert out.count(" identifier, ") == 37  # request + 36 pending; the final has none
    assert "(0010,0010) PN [SYNTHETIC*]" in out  # the query's wild card, as sent
    assert "# CommandField = C-FIND-RSP" in out and "Status = 0xFF00 Pending" in out
    assert "CommandDataSetType = no data set" in out.rsplit("C-FIND-RSP 37 of 37", 1)[1]
    assert {"QueryRetrieveLevel", "StudyInstanceUID", "PatientID"} <= marked(out)


def test_worklist_items(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = show(capsys, "worklist.pcap", "--transaction", "1")
    assert rc == 0 and len(titles(out)) == 7
    assert out.count("worklist item: SYNTHETIC^") == 5
    assert "(0040,0100) SQ (Sequence, 1 item)" in out
    assert "    (0008,0060) CS [CT]" in out.replace("*", " ")  # nested in the item
    assert {"ScheduledProcedureStepSequence", "Modality", "ScheduledStationAETitle",
            "PatientID", "AccessionNumber"} <= marked(out)


def test_mpps_key_items(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = show(capsys, "mpps.pcap", "--transaction", "1")
    assert rc == 0 and titles(out) == ["N-CREATE-RQ", "N-CREATE-RSP"]
    assert "  1 patient:   SYNTHETIC^DAVE (ID DSN0004)" in out
    assert "requested procedure RP0001" in out and "scheduled step SPS0001" in out
    assert "4 status:    IN PROGRESS" in out
    rc, out, _ = show(capsys, "mpps.pcap", "--transaction", "2")
    assert rc == 0 and titles(out) == ["N-SET-RQ", "N-SET-RSP"]
    set_rq = out.split("N-SET-RSP")[0]
    assert "4 status:    COMPLETED" in set_rq and "5 produced:  1 series, 1 image" in set_rq
    assert "1 patient:   not in this message" in set_rq
    assert {"PerformedProcedureStepStatus", "PerformedSeriesSequence",
            "ReferencedSOPInstanceUID", "SeriesInstanceUID"} <= marked(out)


@pytest.mark.parametrize(("capture", "committed", "failed"), [
    ("storage-commitment.pcap", 3, 0), ("storage-commitment-separate.pcap", 2, 1)])
def test_storage_commitment(capsys: pytest.CaptureFixture[str], capture: str, committed: int,
                            failed: int) -> None:
    rc, out, _ = show(capsys, capture, "--transaction", "1")
    assert rc == 0 and titles(out) == ["N-ACTION-RQ", "N-ACTION-RSP"]
    assert f"{committed + failed} instances to commit" in out
    assert "(0000,1008) US 1" in out and "# ActionTypeID" in out
    rc, out, _ = show(capsys, capture, "--transaction", "2")
    assert rc == 0 and titles(out) == ["N-EVENT-REPORT-RQ", "N-EVENT-REPORT-RSP"]
    assert f"{committed} committed, {failed} failed" in out
    assert {"TransactionUID", "ReferencedSOPSequence"} <= marked(out)
    if failed:
        assert "FailureReason = No such object instance" in out
        assert "association #2 ARCHIVE -> CTSCANNER" in out  # the report came back separately


def test_nget_failure_and_store_pixel_size(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = show(capsys, "nget.pcap", "--transaction", "2")
    assert rc == 0 and "status 0x0112 Failure" in out
    rc, out, _ = show(capsys, "get.pcap", "--transaction", "2")
    assert rc == 0 and titles(out) == ["C-STORE-RQ", "C-STORE-RSP"]
    assert "(7fe0,0010) OW (pixel data, 8192 bytes, not decoded)" in out
    assert "ARCHIVE -> GETSCU" in out  # a C-GET sub-operation runs the other way


def test_query_shown_without_copying_images(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """get.pcap carries three 9 kB images on the C-GET's association: none is copied, only
    the identifier's context (1) is (the analysis rules may peek at it as well), and each
    image's header, which the study journey reads before Pixel Data (one TCP segment's worth
    at most, docs/studies.md)."""
    copied: list[tuple[int, int]] = []
    real = ul_stream.PdvBytes

    def counting(frame, ts, ctx, data):  # noqa: ANN001, ANN202
        copied.append((ctx, len(data)))
        return real(frame, ts, ctx, data)

    monkeypatch.setattr(ul_stream, "PdvBytes", counting)
    rc, out, _ = show(capsys, "get.pcap", "--transaction", "1")
    assert rc == 0 and " identifier, 86 bytes" in out
    assert 1 in {ctx for ctx, _ in copied}
    assert sum(n for ctx, n in copied if ctx == 1) < 1000
    images = [n for ctx, n in copied if ctx != 1]
    # a header per image and pass (show reads the capture twice), never the image
    assert len(images) <= 6 and sum(images) <= 6 * 1500


def test_anonymized(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("dicomanonymizer")
    rc, out, _ = show(capsys, "mpps.pcap", "--transaction", "1", "--anonymize")
    assert rc == 0 and "de-identified" in out
    assert "SYNTHETIC^DAVE" not in out and "DSN0004" not in out
    assert "1.2.826.0.1.3680043.8.498.777.1" not in out  # the study UID


def test_unknown_transaction_and_bad_usage(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    rc, out, err = show(capsys, "mpps.pcap", "--transaction", "9")
    assert rc == 2 and not out
    assert err.strip() == (f"dicomsniff: {CAPTURES / 'mpps.pcap'}: no transaction #9: the "
                           "capture has transactions #1-#2 (ids as in 'dicomsniff analyze')")
    rc, _, err = show(capsys, "mpps.pcap")
    assert rc == 2 and "--transaction ID or --check-queries" in err
    assert main(["show", str(tmp_path / "nope.pcap"), "--transaction", "1"]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_print_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Basic Film Session N-CREATE (hand-built: no print peer in the sample corpus)."""
    from tests import builders as b
    from tests.test_objects_hostile import write_pcap
    from tests.test_objects_queries import ds, identifier

    session, meta = "1.2.840.10008.5.1.1.1", "1.2.840.10008.5.1.1.9"
    attrs = identifier(ds(NumberOfCopies="2", PrintPriority="HIGH", MediumType="BLUE FILM",
                          FilmDestination="MAGAZINE"))
    conv = b.TcpConversation(client=("192.0.2.1", 45000)).handshake()
    conv.send(0, b.associate_rq("PRINTER", "WORKSTATION", [(1, meta, [b.EXPLICIT_LE])]))
    conv.send(1, b.associate_ac("PRINTER", "WORKSTATION", [(1, 0, b.EXPLICIT_LE)]))
    conv.send(0, b.p_data(b.pdv(1, 3, b.command_set(0x0140, message_id=1, sop_class=session,
                                                    has_dataset=True)), b.pdv(1, 2, attrs)))
    conv.send(1, b.p_data(b.pdv(1, 3, b.command_set(0x8140, responded_to=1, sop_class=session,
                                                    sop_instance="1.2.3.4.77", status=0))))
    conv.send(0, b.release_rq()).send(1, b.release_rp()).close()
    cap = write_pcap(tmp_path / "print.pcap", conv.frames)
    assert main(["show", str(cap), "--transaction", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "transaction #1: N-CREATE" in out and "Basic Film Session SOP Class" in out
    assert titles(out) == ["N-CREATE-RQ", "N-CREATE-RSP"]
    assert {"NumberOfCopies", "PrintPriority", "MediumType", "FilmDestination"} <= marked(out)
    assert "AffectedSOPInstanceUID" in out and "[1.2.3.4.77]" in out


def test_anonymized_references_stay_consistent(capsys: pytest.CaptureFixture[str]) -> None:
    """Within one run the same original UID gets the same new UID, references included."""
    pytest.importorskip("dicomanonymizer")
    rc, out, _ = show(capsys, "mpps.pcap", "--transaction", "2", "--anonymize")
    assert rc == 0
    refs = re.findall(r"\[([\d.]+)\] # (ReferencedSOPInstanceUID|SeriesInstanceUID"
                      r"|RequestedSOPInstanceUID|AffectedSOPInstanceUID|SOPInstanceUID)", out)
    by_kind: dict[str, set[str]] = {}
    for uid, kind in refs:
        by_kind.setdefault(kind, set()).add(uid)
    assert all(uid.startswith("2.25.") for uid, _ in refs)
    # request and response name one MPPS instance, one series and one image: one UID each
    assert all(len(v) == 1 for v in by_kind.values()), by_kind
    assert by_kind["RequestedSOPInstanceUID"] == by_kind["AffectedSOPInstanceUID"] \
        == by_kind["SOPInstanceUID"]
