"""The study journey on real recordings: each study's timeline and each finding against what the
peers were made to do (captures/journey/manifest.json), silence on the clean journeys, the
header reader on every sample capture's C-STOREs, bounded state and the `studies` command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source
from dicomsniff.report.studies import is_journey_code

ROOT = Path(__file__).resolve().parent.parent
JOURNEY = ROOT / "captures" / "journey"
MANIFEST = {e["file"]: e for e in json.loads((JOURNEY / "manifest.json").read_text())["captures"]}
SAMPLES = json.loads((ROOT / "captures" / "manifest.json").read_text())["captures"]
STUDIES = [f for f, e in MANIFEST.items() if "journey" in e]


class Run:
    def __init__(self, path: Path) -> None:
        self.an = Analyzer()
        self.studies: list = []
        self.released_before_end: list[str] = []
        done = [False]
        self.an.journey.on_study.append(self.studies.append)
        self.an.journey.on_study.append(
            lambda st: None if done[0] else self.released_before_end.append(st.uid))
        orig = self.an.journey.finish

        def finish() -> None:
            done[0] = True
            orig()

        self.an.journey.finish = finish  # type: ignore[method-assign]
        analyze_source(str(path), self.an)

    def codes(self) -> list[str]:
        return [f.code for f in self.an.findings if is_journey_code(f.code)]

    def found(self, code: str) -> list:
        return [f for f in self.an.findings if f.code == code]


@cache
def run(name: str) -> Run:
    return Run(JOURNEY / name)


# -- the timeline ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", STUDIES)
def test_study_record_matches_what_the_peers_did(name: str) -> None:
    truth = MANIFEST[name]["journey"]
    r = run(name)
    recs = [st.record() for st in r.studies]
    assert [x["study_instance_uid"] for x in recs] == [truth["study_instance_uid"]]
    rec = recs[0]
    assert rec["type"] == "study"
    assert rec["patient_id"] == truth["patient_id"]
    assert rec["accession_number"] == (truth["accession_number"] or None)
    assert rec["instances"] == {
        "stored": len(truth["stored"]), "in_mpps": len(truth["in_mpps"]),
        "committed": len(truth["committed"]), "commit_failed": len(truth["commit_failed"]),
        "in_ian": len(truth["in_ian"])}
    assert [(m["sop_instance"], m["status"]) for m in rec["mpps"]] == [
        (m["sop_instance"], m["status"]) for m in truth["mpps"]]
    if truth["scheduled"] is None:
        assert rec["scheduled"] is None
    else:
        s = rec["scheduled"]
        assert (s["patient_id"], s["accession_number"], s["study_instance_uid"],
                s["requested_procedure_id"], s["sps_id"]) == (
            truth["scheduled"]["pid"], truth["scheduled"]["accession"],
            truth["scheduled"]["study"], truth["scheduled"]["rp"], truth["scheduled"]["sps"])
        assert (s["fetched_by"], s["worklist_ae"]) == ("CTSCANNER", "WORKLIST")
    st = r.studies[0]
    stored = {u for u, i in st.instances.items() if i.stored_ok}
    assert stored == set(truth["stored"])
    assert {u for u, i in st.instances.items() if i.in_ian} == set(truth["in_ian"])
    assert {u for u, i in st.instances.items() if i.committed is False} == set(
        truth["commit_failed"])
    assert [c["transaction_uid"] for c in rec["commitment"]] == [truth["transaction_uid"]]
    assert {s["series_instance_uid"] for s in rec["series"]} and all(
        s["stored_to"] == ["ARCHIVE"] for s in rec["series"])


@pytest.mark.parametrize("name", STUDIES)
def test_one_timeline_per_scheduled_procedure_step(name: str) -> None:
    """Worklist item -> MPPS IN PROGRESS -> images -> final MPPS -> commitment -> IAN, in
    capture order, grouped by the Scheduled Procedure Step ID each fact carries."""
    truth = MANIFEST[name]["journey"]
    rec = run(name).studies[0].record()
    steps = rec["procedure_steps"]
    for step in steps:
        frames = [e["frame"] for e in step["timeline"]]
        assert frames == sorted(frames)
    evs = [e for s in steps for e in s["timeline"]]
    stages = [(e["stage"], e.get("status")) for e in sorted(evs, key=lambda e: e["frame"])]
    assert stages.count(("scheduled", None)) == (truth["scheduled"] is not None)
    assert [st for sg, st in stages if sg == "performed"] == (
        ["IN PROGRESS"] if truth["mpps"][0]["status"] == "IN PROGRESS"
        else ["IN PROGRESS", truth["mpps"][0]["status"]])
    stored = [e for e in evs if e["stage"] == "stored"]
    assert sum(e["instances"] for e in stored) == len(truth["stored"])
    assert {e["to"] for e in stored} == {"ARCHIVE"}
    report = [e for e in evs if e["what"] == "storage commitment report"]
    assert [(e["committed"], e["failed"]) for e in report] == [
        (len(truth["committed"]), len(truth["commit_failed"]))]
    assert [e["instances"] for e in evs if e["stage"] == "available"] == [
        len(truth["in_ian"])]
    if name == "journey-new-study-uid.pcap":  # the MPPS names another SPS: two steps
        assert [(s["sps_id"], s["scheduled"], s["state"]) for s in steps] == [
            ("JSPS0001", True, "scheduled"), ("JSPS0009", False, "available")]
    elif truth["scheduled"] is None:
        assert [(s["sps_id"], s["scheduled"]) for s in steps] == [(None, False)]
    else:
        assert [(s["sps_id"], s["scheduled"]) for s in steps] == [(truth["scheduled"]["sps"],
                                                                   True)]
        order = [e["stage"] for e in steps[0]["timeline"]]
        assert order[0] == "scheduled" and order[-1] == "available"
        assert order.index("stored") < order.index("committed")
    assert rec["state"] == "available"


def test_a_complete_study_is_released_when_its_last_association_ends() -> None:
    """The clean journey is complete at its IAN: judged and released before the capture ends,
    and nothing is left behind."""
    r = run("journey-clean.pcap")
    assert r.released_before_end == [MANIFEST["journey-clean.pcap"]["journey"][
        "study_instance_uid"]]
    j = r.an.journey
    assert not j.studies and not j.pending and not j.touched and not j.pending_count


@pytest.mark.parametrize("name", ["journey-clean.pcap", "print-clean.pcap", "ups-clean.pcap",
                                  "print-dcmtk.pcap", "ups-item-subscriber.pcap"])
def test_clean_recordings_raise_no_journey_finding(name: str) -> None:
    assert run(name).codes() == []


# -- each finding on the recording that was made to produce it --------------------------------


def test_attributes_that_changed_along_the_way() -> None:
    r = run("journey-mismatch.pcap")
    by_attr = {f.uids["attribute"]: f for f in r.found("STUDY-ATTR-MISMATCH")}
    assert set(by_attr) == {"patient_id", "patient_name", "requested_procedure_id"}
    pid = by_attr["patient_id"].message
    assert "'DSJ0001'" in pid and "'DSJ-0001'" in pid and "CTSCANNER -> ARCHIVE" in pid
    assert "'SYNTHETIC^IVAN^J'" in by_attr["patient_name"].message
    assert "'JRP0009'" in by_attr["requested_procedure_id"].message
    for f in by_attr.values():
        assert f.section.startswith("IHE RAD CDIP 7.3") and len(f.frames) >= 2
        assert f.uids["study_instance_uid"] == MANIFEST["journey-mismatch.pcap"]["journey"][
            "study_instance_uid"]
    (acc,) = r.found("STUDY-ACCESSION-MISSING")
    assert "4 image(s)" in acc.message and "'JACC0001'" in acc.message
    assert len(acc.uids["sop_instances"]) == 4


def test_a_new_study_instance_uid_and_another_sps_id() -> None:
    """The images carry the modality's own Study Instance UID: the worklist item is found by
    Accession Number, and the change is named with both values; the MPPS's other SPS ID too."""
    truth = MANIFEST["journey-new-study-uid.pcap"]["journey"]
    r = run("journey-new-study-uid.pcap")
    assert [st.uid for st in r.studies] == [truth["study_instance_uid"]]
    assert r.studies[0].record()["scheduled_match"] == "accession_number"
    by_attr = {f.uids["attribute"]: f for f in r.found("STUDY-ATTR-MISMATCH")}
    assert set(by_attr) == {"study_instance_uid", "sps_id"}
    assert truth["scheduled"]["study"] in by_attr["study_instance_uid"].message
    assert truth["study_instance_uid"] in by_attr["study_instance_uid"].message
    assert "'JSPS0009'" in by_attr["sps_id"].message


def test_mpps_and_stores_that_do_not_agree() -> None:
    truth = MANIFEST["journey-mpps-gaps.pcap"]["journey"]
    r = run("journey-mpps-gaps.pcap")
    (never,) = r.found("STUDY-MPPS-NOT-STORED")
    assert never.uids["sop_instances"] == sorted(set(truth["in_mpps"]) - set(truth["stored"]))
    assert truth["mpps"][0]["sop_instance"] in never.message
    (out,) = r.found("STUDY-STORED-NOT-IN-MPPS")
    assert out.uids["sop_instances"] == sorted(set(truth["stored"]) - set(truth["in_mpps"]))


def test_commitment_gaps() -> None:
    truth = MANIFEST["journey-commit-gaps.pcap"]["journey"]
    r = run("journey-commit-gaps.pcap")
    (skipped,) = r.found("STUDY-NOT-COMMITTED")
    assert skipped.uids["sop_instances"] == sorted(set(truth["stored"]) - set(
        truth["committed"]) - set(truth["commit_failed"]))
    (failed,) = r.found("WORKFLOW-COMMIT-FAILURES")  # folded in under its stable code
    assert truth["commit_failed"][0] in failed.message and "No such object instance" in (
        failed.message)
    rec = r.studies[0].record()
    (c,) = rec["commitment"]
    assert c["failures"][0]["reason_text"] == "No such object instance"


def test_ian_gaps() -> None:
    truth = MANIFEST["journey-ian-gaps.pcap"]["journey"]
    r = run("journey-ian-gaps.pcap")
    (ghost,) = r.found("STUDY-IAN-NOT-STORED")
    assert ghost.uids["sop_instances"] == sorted(set(truth["in_ian"]) - set(truth["stored"]))
    (lost,) = r.found("STUDY-IAN-MISSING")
    assert lost.uids["sop_instances"] == sorted(set(truth["stored"]) - set(truth["in_ian"]))
    assert "ARCHIVE to RISIAN" in lost.message


def test_mpps_never_completed_is_folded_in() -> None:
    r = run("journey-mpps-open.pcap")
    (f,) = r.found("WORKFLOW-MPPS-NOT-COMPLETED")
    assert r.studies[0].record()["mpps"][0]["status"] == "IN PROGRESS"
    assert MANIFEST["journey-mpps-open.pcap"]["journey"]["mpps"][0]["sop_instance"] in f.message


def test_unscheduled_study() -> None:
    r = run("journey-unscheduled.pcap")
    (f,) = r.found("STUDY-UNSCHEDULED")
    assert "modality CT" in f.message and "worklist items for CT" in f.message
    assert r.studies[0].record()["scheduled"] is None
    assert run("journey-clean.pcap").found("STUDY-UNSCHEDULED") == []


def test_print_lifecycle_faults() -> None:
    truth = MANIFEST["print-faults.pcap"]["print"]
    r = run("print-faults.pcap")
    never = next(f["film_box"] for f in truth["films"] if f["what"] == "never-printed")
    empty = next(f["film_box"] for f in truth["films"] if f["what"] == "empty-box")
    (np,) = r.found("PRINT-FILM-NOT-PRINTED")
    assert np.uids["film_box"] == never and np.association is not None
    (eb,) = r.found("PRINT-IMAGE-BOX-EMPTY")
    assert eb.uids["film_box"] == empty and "position(s) 2" in eb.message
    (st,) = r.found("PRINT-PRINTER-STATUS")
    assert st.severity == "error" and "FILM JAM (film jam)" in st.message
    # association findings join their association (report, JSON, TUI show them there)
    assert {f.code for a in r.an.associations for f in a.findings} >= {
        "PRINT-FILM-NOT-PRINTED", "PRINT-IMAGE-BOX-EMPTY", "PRINT-PRINTER-STATUS"}


@pytest.mark.parametrize("name", ["print-dcmtk.pcap", "print-dcmtk-faults.pcap"])
def test_print_with_dcmtk_printer(name: str) -> None:
    """dcmtk's dcmprscp as the printer, with dcmtk's own SCU (dcmpsprt + dcmprscu) and
    pynetdicom's: film session, film box, image box N-SET, print, N-DELETE followed against
    what dcmprscp kept (a hardcopy image per image box set, a stored print per film printed)
    and what the pynetdicom SCU was made to do."""
    truth = MANIFEST[name]["print"]
    r = run(name)
    films = r.an.journey.printing.sessions
    boxes = [fb for rec in films for fb in rec["film_boxes"]]
    assert sum(fb["image_boxes_set"] for fb in boxes) == truth["dcmprscp"]["image_boxes_set"]
    assert sum(1 for fb in boxes if fb["printed_frame"]) == truth["dcmprscp"]["films_printed"]
    scus = [rec["scu"] for rec in films]
    assert scus == (["DCMPSTAT"] if truth["dcmprscp"]["images_rendered"] else []) + [
        "CTSCANNER"]
    pnd = {fb["sop_instance"]: fb for fb in films[-1]["film_boxes"]}
    assert set(pnd) == {f["film_box"] for f in truth["films"]}
    for f in truth["films"]:
        assert pnd[f["film_box"]]["image_boxes_set"] == len(f["boxes"])
        assert bool(pnd[f["film_box"]]["printed_frame"]) == ("N-ACTION" in f)
    never = [f["film_box"] for f in truth["films"] if f["what"] == "never-printed"]
    empty = [f["film_box"] for f in truth["films"] if f["what"] == "empty-box"]
    assert [f.uids["film_box"] for f in r.found("PRINT-FILM-NOT-PRINTED")] == never
    assert [f.uids["film_box"] for f in r.found("PRINT-IMAGE-BOX-EMPTY")] == empty
    assert not [c for c in r.codes() if c not in ("PRINT-FILM-NOT-PRINTED",
                                                  "PRINT-IMAGE-BOX-EMPTY")]


def test_print_report_without_role() -> None:
    r = run("print-report-no-role.pcap")
    (f,) = r.found("PRINT-REPORT-NO-ROLE")
    assert "PRINTER sent an N-EVENT-REPORT" in f.message and f.section.startswith("PS3.7")
    (w,) = r.found("PRINT-PRINTER-STATUS")
    assert w.severity == "warning" and "SUPPLY LOW" in w.message
    assert run("print-clean.pcap").found("PRINT-REPORT-NO-ROLE") == []


def test_ups_illegal_transitions_and_transaction_uid() -> None:
    truth = MANIFEST["ups-illegal.pcap"]["ups"]
    r = run("ups-illegal.pcap")
    ill = r.found("UPS-ILLEGAL-TRANSITION")
    assert [("SCHEDULED -> COMPLETED" in f.message, "0xC310" in f.message) for f in ill][0] == (
        True, True)
    assert any("IN PROGRESS -> IN PROGRESS" in f.message and "0xC302" in f.message for f in ill)
    assert len(ill) == 2
    (t,) = r.found("UPS-TRANSACTION-UID")
    assert truth["transaction"] in t.message and "0xC301" in t.message
    (item,) = r.an.journey.ups.records()
    assert item["sop_instance"] == truth["instance"] and item["state"] == "COMPLETED"
    assert [e["state"] for e in item["events"]] == truth["events"]


@pytest.mark.parametrize("name", ["ups-clean.pcap", "ups-missed-report.pcap",
                                  "ups-item-subscriber.pcap"])
def test_ups_subscribers_get_their_reports(name: str) -> None:
    """Each subscriber AE's State Reports against what its pynetdicom watcher received; the
    one the SCP was made to forget (WATCHER2: SCHEDULED only) is the only finding; one that
    subscribed to the workitem and unsubscribed before COMPLETED is owed no more."""
    truth = MANIFEST[name]["ups"]
    r = run(name)
    (item,) = r.an.journey.ups.records()
    got = {"WORKSTATION": truth["events"]} | {
        ae: w["events"] for ae, w in (truth.get("watchers") or {}).items()}
    scope = {ae: "global" for ae in got}
    reader = MANIFEST[name]["params"].get("item_watcher")
    if reader:
        got[reader], scope[reader] = truth["item_events"], "workitem"
        assert truth["item_events"] == ["IN PROGRESS"]
    assert {s["ae"]: s["reports"] for s in item["subscriptions"]} == {
        ae: len(ev) for ae, ev in got.items()}
    assert {s["ae"]: s["scope"] for s in item["subscriptions"]} == scope
    assert [s["until_frame"] is not None for s in item["subscriptions"]] == [
        ae == reader for ae in got]
    missing = r.found("UPS-REPORT-MISSING")
    forgot = MANIFEST[name]["params"].get("forget", [])
    assert [f.uids["subscriber"] for f in missing] == forgot
    for f in missing:
        assert f.uids["sop_instance"] == truth["instance"]
        assert "IN PROGRESS" in f.message and "COMPLETED" in f.message
        assert "SCHEDULED" not in f.message.split("for ")[1]


# -- the header reader on every C-STORE of the sample corpus ------------------------------------


@pytest.mark.parametrize("entry", [e for e in SAMPLES if not e.get("starts_mid_association")],
                         ids=lambda e: e["file"])
def test_every_c_store_header_is_read(entry: dict) -> None:
    """Implicit, explicit LE and BE, deflated, JPEG, RLE, C-GET sub-operations: every C-STORE's
    header gives its SOP Instance UID, as the peers sent it."""
    an = Analyzer()
    studies: list = []
    an.journey.on_study.append(studies.append)
    analyze_source(str(ROOT / "captures" / entry["file"]), an)
    sent = {o["sop_instance"] for a in entry["associations"] for o in a["operations"]
            if o["op"] == "C-STORE"}
    assert an.journey.headers_failed == 0
    assert an.journey.headers_read == sum(1 for a in entry["associations"]
                                          for o in a["operations"] if o["op"] == "C-STORE")
    got = {u for st in studies for u, i in st.instances.items() if i.stored is not None}
    assert got == sent


def _attrs(an: Analyzer, studies: list) -> dict:
    return {u: (st.uid, i.attrs) for st in studies for u, i in st.instances.items()}


@pytest.mark.parametrize("name", ["store-transfer-syntaxes.pcap", "get.pcap",
                                  "store-small-pdu.pcap"])
def test_encoding_told_from_the_bytes_matches_the_negotiated_one(name: str, monkeypatch) -> None:
    """What a capture begun mid-association relies on: every C-STORE read with the encoding
    told from its first bytes (SniffingReader) gives the values the negotiated transfer
    syntax gives; a deflated one is refused (unreadable), never misread."""
    from dicomsniff.analysis.journey import collect
    from dicomsniff.analysis.journey.headers import SniffingReader

    entry = next(e for e in SAMPLES if e["file"] == name)
    base, runs = Analyzer(), []
    runs.append([])
    base.journey.on_study.append(runs[0].append)
    analyze_source(str(ROOT / "captures" / name), base)
    monkeypatch.setattr(collect, "HeaderReader", lambda *a, **k: SniffingReader())
    sniff = Analyzer()
    runs.append([])
    sniff.journey.on_study.append(runs[1].append)
    analyze_source(str(ROOT / "captures" / name), sniff)
    deflated = {o["sop_instance"] for a in entry["associations"] for o in a["operations"]
                if o["op"] == "C-STORE" and "1.2.840.10008.1.2.1.99" == o.get("transfer_syntax")}
    assert sniff.journey.headers_failed == len(deflated)
    want = {u: v for u, v in _attrs(base, runs[0]).items() if u not in deflated}
    assert want and _attrs(sniff, runs[1]) == want


def test_capture_begun_inside_a_c_store() -> None:
    """The sensor started in the middle of the 2nd C-STORE's data set (no negotiation): the
    study comes from the later instances, read with the encoding told from their bytes; the
    cut one is flagged with the SOP Instance UID its response names, its study not guessed."""
    entry = next(e for e in SAMPLES if e["file"] == "mid-association.pcap")
    ops = entry["associations"][0]["operations"]
    an = Analyzer()
    studies: list = []
    an.journey.on_study.append(studies.append)
    analyze_source(str(ROOT / "captures" / "mid-association.pcap"), an)
    complete = {o["sop_instance"] for o in ops if o["visible"] == "complete"}
    (cut,) = [o["sop_instance"] for o in ops if o["visible"] == "response-only"]
    (st,) = studies
    assert {u for u, i in st.instances.items() if i.stored_ok} == complete
    assert an.journey.headers_read == len(complete) and an.journey.headers_failed == 0
    rec = st.record()
    assert rec["patient_id"] and rec["study_instance_uid"].startswith("1.2.826.0.1.3680043.8.498.")
    assert rec["capture_began_inside"] and [c["sop_instance"] for c in rec["cut_stores"]] == [cut]
    assert cut not in st.instances  # not attributed
    (f,) = [f for f in an.findings if f.code == "STUDY-STORE-CUT"]
    assert f.uids["sop_instances"] == [cut] and f.uids["association_studies"] == [st.uid]
    assert "not guessed" in f.message
    assert not [f for f in an.findings
                if f.code.startswith("STUDY-") and f.code != "STUDY-STORE-CUT"]


def test_header_reading_stops_at_the_header() -> None:
    """A C-STORE's bytes are copied only until its header is read: on the large-PDU capture
    (a 512 KB image) the collection is switched off long before the data set ends."""
    from dicomsniff.analysis.journey import collect

    copied = [0]
    orig = collect.StoreSink.write

    def counting(self, data: bytes) -> None:
        copied[0] += len(data)
        orig(self, data)

    collect.StoreSink.write = counting  # type: ignore[method-assign]
    try:
        an = Analyzer()
        analyze_source(str(ROOT / "captures" / "store-large-pdu.pcap"), an)
    finally:
        collect.StoreSink.write = orig  # type: ignore[method-assign]
    assert an.journey.headers_read == 1
    assert 0 < copied[0] < 70_000  # at most one large PDU's worth, of a 524 KB data set


# -- bounded state -----------------------------------------------------------------------------


def test_study_cap_raises_a_finding_and_judges_the_oldest() -> None:
    an = Analyzer()
    an.journey.max_studies = 1
    released: list = []
    an.journey.on_study.append(released.append)
    # Two studies; the first never settles (an instance never committed), so with a cap of 1
    # it is judged when the second begins (the captures were recorded in this order).
    from dicomsniff.sources.merge import open_capture

    analyze_source(open_capture([str(JOURNEY / "journey-commit-gaps.pcap"),
                                 str(JOURNEY / "journey-unscheduled.pcap")]), an)
    assert [f.code for f in an.findings if f.code == "STUDY-CAP"] == ["STUDY-CAP"]
    assert len(released) == 2 and an.journey.evicted >= 1


# -- the command -------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dicomsniff", "studies", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_studies_json_on_several_captures() -> None:
    p = _cli(str(JOURNEY / "journey-clean.pcap"), str(JOURNEY / "journey-mismatch.pcap"),
             str(JOURNEY / "ups-illegal.pcap"), "--json")
    assert p.returncode == 0, p.stderr
    recs = [json.loads(line) for line in p.stdout.splitlines()]
    studies = [r for r in recs if r["type"] == "study"]
    assert {s["study_instance_uid"] for s in studies} == {
        MANIFEST[n]["journey"]["study_instance_uid"] for n in ("journey-clean.pcap",
                                                               "journey-mismatch.pcap")}
    for s in studies:
        for key in ("study_instance_uid", "accession_number", "patient_id", "scheduled", "mpps",
                    "instances"):
            assert key in s
        assert set(s["instances"]) == {"stored", "in_mpps", "committed", "commit_failed",
                                       "in_ian"}
    assert [r["type"] for r in recs].count("workitem") == 1
    codes = {r["code"] for r in recs if r["type"] == "finding"}
    assert {"STUDY-ATTR-MISMATCH", "UPS-ILLEGAL-TRANSITION"} <= codes
    assert recs[-1]["type"] == "summary" and recs[-1]["studies"] == 2


def test_studies_text_and_filter() -> None:
    p = _cli(str(JOURNEY / "journey-clean.pcap"), str(JOURNEY / "journey-ian-gaps.pcap"),
             "--study", MANIFEST["journey-ian-gaps.pcap"]["journey"]["study_instance_uid"])
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("Study 1.2.") == 1 and "STUDY-IAN-MISSING" in p.stdout
    block = p.stdout.split("\n\n")[0]
    assert all(len(line) <= 80 for line in block.splitlines())


def test_studies_filter_by_scheduled_procedure_step() -> None:
    """--study also takes a Scheduled Procedure Step ID: the one the MPPS changed to
    (JSPS0009) finds the new-study-uid journey, not the clean one."""
    p = _cli(str(JOURNEY / "journey-clean.pcap"), str(JOURNEY / "journey-new-study-uid.pcap"),
             "--study", "JSPS0009", "--json")
    assert p.returncode == 0, p.stderr
    studies = [json.loads(x) for x in p.stdout.splitlines() if '"type": "study"' in x]
    assert [s["study_instance_uid"] for s in studies] == [
        MANIFEST["journey-new-study-uid.pcap"]["journey"]["study_instance_uid"]]


def test_studies_bad_input_is_one_line() -> None:
    p = _cli(str(ROOT / "README.md"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    p = _cli("/nonexistent.pcap")
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_analyze_json_carries_the_journey_findings_with_their_uids() -> None:
    p = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", "--json",
                        str(JOURNEY / "journey-ian-gaps.pcap")], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    fs = [json.loads(x) for x in p.stdout.splitlines()]
    fs = [f for f in fs if f["type"] == "finding" and f["code"].startswith("STUDY-")]
    assert {f["code"] for f in fs} == {"STUDY-IAN-NOT-STORED", "STUDY-IAN-MISSING"}
    assert all(f["uids"]["study_instance_uid"] and f["frames"] for f in fs)


# -- the TUI and the diagrams show the journey's findings ----------------------------------------


def test_tui_findings_panel_lists_the_journey_findings() -> None:
    import asyncio

    from dicomsniff.tui.app import DicomBrowser
    from dicomsniff.tui.feed import FileSource
    from dicomsniff.tui.screens.findings import FindingsScreen

    async def go() -> list[str]:
        app = DicomBrowser(FileSource(str(JOURNEY / "journey-mismatch.pcap")))
        async with app.run_test(size=(150, 40)) as pilot:
            for _ in range(500):
                if app.loaded:
                    break
                await pilot.pause(0.02)
            await pilot.pause()
            await pilot.press("f")
            assert isinstance(app.screen, FindingsScreen)
            return [f.code for f in app.screen.table.rows]

    codes = asyncio.run(go())
    assert {"STUDY-ATTR-MISMATCH", "STUDY-ACCESSION-MISSING"} <= set(codes)


def test_diagram_notes_the_journey_findings(tmp_path: Path) -> None:
    out = tmp_path / "j.puml"
    p = subprocess.run([sys.executable, "-m", "dicomsniff", "diagram",
                        str(JOURNEY / "journey-ian-gaps.pcap"), "-o", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert "STUDY-IAN-NOT-STORED" in text and "STUDY-IAN-MISSING" in text


# -- ULStream.pause: the rest of one data set is counted, the next one copied again -------------


def _copied(ul, data: bytes, chunk: int, pause_after: int | None) -> list[bytes]:
    """Feed ``data`` in chunks, collecting context 3; pause it once ``pause_after`` bytes of
    data set 1 were copied (as the engine does: between chunks, after draining)."""
    from dissectors.ul.events import DataComplete, PdvBytes

    got: list[bytearray] = [bytearray()]
    paused = False
    for i in range(0, len(data), chunk):
        ul.feed(data[i:i + chunk], 1, 0.0)
        for e in ul.events:
            if isinstance(e, PdvBytes):
                got[-1] += e.data
            elif isinstance(e, DataComplete):
                got.append(bytearray())
                if paused:
                    ul.resume(3)
                    paused = False
        ul.events = []
        if (pause_after is not None and len(got) == 1 and len(got[0]) >= pause_after
                and not paused):
            ul.pause(3)
            paused = True
    return [bytes(g) for g in got[:-1]]


@pytest.mark.parametrize("chunk", [7, 1448, 20000, 1 << 20])
def test_pause_stops_copying_one_data_set_only(chunk: int) -> None:
    from dissectors.ul.stream import ULStream
    from tests import builders as b

    one, two = bytes(range(256)) * 200, bytes(reversed(range(256))) * 200
    data = (b.store_request(1, one, max_fragment=4096) + b.store_response(1)
            + b.store_request(2, two, max_fragment=4096))
    ul = ULStream()
    ul.collect(contexts={3})
    first, second = _copied(ul, data, chunk, pause_after=100)
    assert one.startswith(first)
    if chunk < len(one) // 2:  # cut after the header's worth (a chunk holding it all: no cut)
        assert len(first) < len(one) and len(first) <= 100 + chunk + 4096
    assert second == two  # the next data set on the context is copied whole
    ul2 = ULStream()
    ul2.collect(contexts={3})
    assert _copied(ul2, data, chunk, pause_after=None) == [one, two]


def test_codes_in_the_catalogue_and_disable_rule() -> None:
    from dicomsniff.analysis.rules import catalogue

    names = {c.code for c in catalogue()}
    assert {"STUDY-ATTR-MISMATCH", "STUDY-UNSCHEDULED", "PRINT-REPORT-NO-ROLE",
            "UPS-TRANSACTION-UID"} <= names
    p = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", "--json",
                        "--disable-rule", "STUDY-ATTR-MISMATCH",
                        str(JOURNEY / "journey-mismatch.pcap")], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    codes = {json.loads(x).get("code") for x in p.stdout.splitlines()}
    assert "STUDY-ATTR-MISMATCH" not in codes and "STUDY-ACCESSION-MISSING" in codes


def test_print_job_failure() -> None:
    truth = MANIFEST["print-job-failed.pcap"]["print"]
    assert truth["reports"] == [4]  # the SCU received a Print Job FAILURE event
    r = run("print-job-failed.pcap")
    (f,) = r.found("PRINT-JOB-FAILED")
    assert f.severity == "error" and "SUPPLY EMPTY (film supply empty)" in f.message
    assert r.found("PRINT-FILM-NOT-PRINTED") == []


def _keys(obj: object, out: set[str]) -> set[str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(k)
            _keys(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _keys(v, out)
    return out


def test_docs_name_every_studies_json_field() -> None:
    """docs/json.md names every field `studies --json` writes, nested ones too (finding
    records are checked by tests/test_docs.py)."""
    p = _cli(*(str(JOURNEY / n) for n in MANIFEST), str(ROOT / "captures" / "mid-association.pcap"),
             "--json")
    assert p.returncode == 0, p.stderr
    doc = (ROOT / "docs" / "json.md").read_text()
    keys: set[str] = set()
    for line in p.stdout.splitlines():
        rec = json.loads(line)
        if rec["type"] == "finding":
            continue
        _keys(rec, keys)
    # Keys that are values from the wire (availability, statuses by their names).
    keys -= {"ONLINE", "NEARLINE", "OFFLINE", "UNAVAILABLE", "Success", "Warning", "Failure",
             "unanswered", "?"}
    missing = sorted(k for k in keys if k != "type" and f"`{k}`" not in doc)
    assert not missing, f"docs/json.md does not name: {missing}"
