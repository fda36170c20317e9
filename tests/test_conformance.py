"""Conformance from the wire, checked against how real peers were configured.

The captures in captures/conformance/ hold dcmtk and pynetdicom peers whose supported SOP
classes, transfer syntaxes, preferences, roles and negotiation items we chose (see its
README); their manifest records what each association proposed and what was answered, taken
from the peers' own logs. These tests check what ``dicomsniff conformance`` derives against
that, the gap statuses against the requirement files written for those peers, the diff of the
before/after upgrade pair, and every output format (the workbook read back by openpyxl and by
a second reader, python-calamine).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from dicomsniff.conformance.facts import SCP, SCU, Facts
from dicomsniff.conformance.requirements import evaluate, read_requirements
from dicomsniff.conformance.run import build_facts
from dicomsniff.conformance.views import choice_notes
from dicomsniff.model import context_result_text

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "captures" / "conformance"
MANIFEST = json.loads((CONF / "manifest.json").read_text())
ENTRIES = {e["file"]: e for e in MANIFEST["captures"]}
REQS = CONF / "requirements"
ENTRY = "dicomsniff"

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
IMPLICIT, EXPLICIT = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
BIG, JPEG_LS1 = "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.70"
STUDY_FIND, STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.1", "1.2.840.10008.5.1.4.1.2.2.3"


@cache
def facts_of(*names: str) -> Facts:
    facts, damaged = build_facts([str(CONF / n) for n in names])
    assert not damaged
    return facts


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", ENTRY, *args], capture_output=True,
                          input=stdin, cwd=ROOT, timeout=120)


# -- conformance against the manifest (what the peers did) -----------------------------------


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_negotiation_facts_match_what_the_peers_did(name: str) -> None:
    """Every presentation context in the manifest shows up on the right AE, proposed in the
    requestor's order, answered with the acceptor's choice or refusal reason."""
    facts = facts_of(name)
    entry = ENTRIES[name]
    want_req: Counter[tuple[str, str, tuple[str, ...]]] = Counter()
    want_acc: Counter[tuple[str, str, str]] = Counter()
    want_ref: Counter[tuple[str, str, str]] = Counter()
    for a in entry["associations"]:
        assert a["called_ae"] in facts.aes and a["calling_ae"] in facts.aes
        assert (f"{a['acceptor']}:{a['server_port']}"
                in facts.aes[a["called_ae"]].addresses)
        for c in a["presentation_contexts"]:
            want_req[(a["calling_ae"], c["abstract_syntax"],
                      tuple(c["transfer_syntaxes"]))] += 1
            if c["result"] == 0:
                want_acc[(a["called_ae"], c["abstract_syntax"], c["transfer_syntax"])] += 1
            else:
                want_ref[(a["called_ae"], c["abstract_syntax"],
                          context_result_text(c["result"]))] += 1
    got_req: Counter[tuple[str, str, tuple[str, ...]]] = Counter()
    got_acc: Counter[tuple[str, str, str]] = Counter()
    got_ref: Counter[tuple[str, str, str]] = Counter()
    for title, ae in facts.aes.items():
        for sop, s in ae.services.items():
            for lst, n in s.ts_proposed.items():
                got_req[(title, sop, lst)] += n
            for ts, n in s.ts_accepted.items():
                got_acc[(title, sop, ts)] += n
            for why, n in s.refusals.items():
                got_ref[(title, sop, why)] += n
    assert got_req == want_req
    assert got_acc == want_acc
    assert got_ref == want_ref


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_dimse_facts_match_what_the_peers_did(name: str) -> None:
    """Requests sent (SCU) and answered (SCP) per AE, command and final status."""
    facts = facts_of(name)
    want_sent: Counter[tuple[str, str, str]] = Counter()
    want_answered: Counter[tuple[str, str, str]] = Counter()
    for a in ENTRIES[name]["associations"]:
        for o in a["operations"]:
            sender, performer = ((a["calling_ae"], a["called_ae"])
                                 if o["invoker"] == "requestor"
                                 else (a["called_ae"], a["calling_ae"]))
            want_sent[(sender, o["op"], o["status"])] += 1
            want_answered[(performer, o["op"], o["status"])] += 1
    got_sent: Counter[tuple[str, str, str]] = Counter()
    got_answered: Counter[tuple[str, str, str]] = Counter()
    for title, ae in facts.aes.items():
        for s in ae.services.values():
            for cmd, by in s.statuses[SCU].items():
                for code, n in by.items():
                    got_sent[(title, cmd, code)] += n
            for cmd, by in s.statuses[SCP].items():
                for code, n in by.items():
                    got_answered[(title, cmd, code)] += n
    assert got_sent == want_sent
    assert got_answered == want_answered


def test_storage_scps_chose_as_configured() -> None:
    """storescp default / +xs / +xi / CT-only profile, offered the same combined context."""
    aes = facts_of("conf-storage.pcap").aes
    assert dict(aes["ARCHIVE_JPEG"].services[CT].ts_accepted) == {JPEG_LS1: 1}
    assert dict(aes["ARCHIVE_IMPL"].services[MR].ts_accepted) == {IMPLICIT: 1}
    assert dict(aes["ARCHIVE_UNC"].services[CT].ts_accepted) == {EXPLICIT: 2}
    assert dict(aes["ARCHIVE_CT"].services[MR].refusals) == {
        context_result_text(3): 1}
    notes = choice_notes(aes["ARCHIVE_UNC"].services[CT])
    assert any("although JPEGLosslessSV1 was proposed: compression never negotiated" in n
               for n in notes)
    assert any("over the first choice ExplicitVRBigEndian" in n for n in notes)
    assert choice_notes(aes["ARCHIVE_JPEG"].services[CT]) == []  # took the first choice
    # The requestor's order of preference is kept.
    assert list(aes["MODALITY"].services[CT].ts_proposed) == [(JPEG_LS1, EXPLICIT, BIG,
                                                               IMPLICIT)]
    assert aes["MODALITY"].as_requestor == 4 and aes["MODALITY"].as_acceptor == 0
    assert aes["ARCHIVE_UNC"].as_acceptor == 2


def test_orthanc_restricted_to_uncompressed() -> None:
    """Orthanc with AcceptedTransferSyntaxes = Implicit, Explicit VR LE: never compression.
    Its answer to a JPEG-only CT context is result 3 (abstract syntax not supported), although
    it accepts CT in the other context: PS3.8 Table 9-18 has 4 for that; we report its words."""
    orthanc = facts_of("conf-orthanc.pcap").aes["ORTHANC"]
    ct = orthanc.services[CT]
    assert set(ct.ts_accepted) <= {IMPLICIT, EXPLICIT} and ct.accepted == 2
    assert dict(ct.refusals) == {context_result_text(3): 1}
    notes = choice_notes(ct)
    assert notes and all("compression never negotiated" in n for n in notes)


def test_roles_and_negotiation_items_as_configured() -> None:
    """conf-roles: role selection, extended negotiation, user identity, async window, PDU."""
    entry = ENTRIES["conf-roles.pcap"]["associations"][0]
    aes = facts_of("conf-roles.pcap").aes
    viewer, pacs = aes["VIEWER"], aes["PACS"]
    rs = entry["role_selection"][0]
    assert dict(viewer.roles["requestor"]) == {
        (rs["sop_class"], int(rs["requested"]["scu"]), int(rs["requested"]["scp"])): 1}
    assert dict(pacs.roles["acceptor"]) == {
        (rs["sop_class"], int(rs["accepted"]["scu"]), int(rs["accepted"]["scp"])): 1}
    ext = entry["extended_negotiation"]
    assert dict(viewer.extended["requestor"]) == {(ext["sop_class"], ext["requested"]): 1}
    assert dict(pacs.extended["acceptor"]) == {(ext["sop_class"], ext["accepted"]): 1}
    assert dict(viewer.user_identity["requestor"]) == {"username": 1}
    assert dict(viewer.async_ops["requestor"]) == {tuple(entry["async_ops"]["requested"]): 1}
    assert dict(pacs.async_ops["acceptor"]) == {tuple(entry["async_ops"]["accepted"]): 1}
    assert dict(viewer.max_pdu["requestor"]) == {entry["max_pdu"]["requestor"]: 1}
    assert dict(pacs.max_pdu["acceptor"]) == {entry["max_pdu"]["acceptor"]: 1}
    # Role selection gave the VIEWER the SCP role for CT (the C-GET's C-STORE came back).
    assert (SCP, CT) in viewer.evidence and (SCU, CT) in pacs.evidence
    assert viewer.services[CT].scp == {"C-STORE": 1}
    assert pacs.services[CT].scu == {"C-STORE": 1}
    assert pacs.services[STUDY_GET].scp == {"C-GET": 1}
    assert viewer.services[CT].used == 1 and viewer.services[CT].refused_by_peer == 1


def test_json_contract_records() -> None:
    """The README's --json contract: one ae record per AE title with the named fields."""
    out = cli("conformance", str(CONF / "conf-storage.pcap"), "--json")
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in out.stdout.splitlines()]
    aes = {r["ae_title"]: r for r in recs if r["type"] == "ae"}
    assert set(aes) == {"MODALITY", "WORKSTATION", "ARCHIVE_UNC", "ARCHIVE_JPEG",
                        "ARCHIVE_IMPL", "ARCHIVE_CT"}
    unc = aes["ARCHIVE_UNC"]
    assert unc["addresses"] == ["192.0.2.2:11112"]
    assert unc["implementations"] == [{"class_uid": "1.2.276.0.7230010.3.0.3.6.7",
                                       "version_name": "OFFIS_DCMTK_367"}]
    assert (unc["as_requestor"], unc["as_acceptor"]) == (0, 2)
    ct = next(s for s in unc["services"] if s["sop_class"] == CT)
    assert ct["sop_class_name"] == "CT Image Storage"
    assert (ct["proposed"], ct["accepted"], ct["refused"], ct["refused_by_peer"]) == (0, 2, 0, 0)
    assert ct["transfer_syntaxes_accepted"] == [EXPLICIT]
    assert ct["scp"] == {"C-STORE": 3} and ct["scu"] == {}
    assert ct["statuses"]["SCP"] == {"C-STORE": {"0x0000": 3}}
    mod = aes["MODALITY"]
    mr = next(s for s in mod["services"] if s["sop_class"] == MR)
    assert (mr["proposed"], mr["refused_by_peer"]) == (4, 1)
    assert mr["transfer_syntaxes_proposed"] == [[JPEG_LS1, EXPLICIT, BIG, IMPLICIT]]
    assert recs[-1]["type"] == "summary" and recs[-1]["associations"] == 5


def test_rejected_association_counts_as_proposed_only() -> None:
    """An AE seen only as the called AE of a rejected association still gets a record."""
    out = cli("conformance", str(ROOT / "captures" / "associate-reject.pcap"), "--json")
    recs = {r.get("ae_title"): r for r in map(json.loads, out.stdout.splitlines())}
    wrong = recs["WRONGAE"]
    assert (wrong["as_acceptor"], wrong["addresses"]) == (1, ["192.0.2.2:11112"])
    assert all(s["accepted"] == s["refused"] == 0 for s in wrong["services"])
    echo = next(s for s in recs["ECHOSCU"]["services"])
    assert (echo["proposed"], echo["refused_by_peer"]) == (1, 0)


# -- gap analysis -------------------------------------------------------------------------


def _expected(path: Path, capture: str) -> list[str]:
    with open(path, newline="") as f:
        return [row[f"expected {capture}"] for row in csv.DictReader(f)]


@pytest.mark.parametrize(("reqfile", "capture"), [
    ("storage.csv", "conf-storage.pcap"), ("roles.csv", "conf-roles.pcap"),
    ("upgrade.csv", "conf-before.pcap"), ("upgrade.csv", "conf-after.pcap"),
    ("orthanc.csv", "conf-orthanc.pcap")])
def test_gap_statuses_match_the_peers_configuration(reqfile: str, capture: str) -> None:
    reqs = evaluate(read_requirements(str(REQS / reqfile)), facts_of(capture))
    assert [r.status for r in reqs] == _expected(REQS / reqfile, capture)
    for r in reqs:
        if r.status == "not_observed":
            assert r.evidence is None
        else:  # evidence names the association and the frame of its A-ASSOCIATE-AC
            assert r.evidence is not None and r.evidence.frame and r.evidence.association
        if r.status == "refused":
            assert r.reason


def test_gap_reasons_say_why() -> None:
    reqs = evaluate(read_requirements(str(REQS / "storage.csv")), facts_of("conf-storage.pcap"))
    by = {(r.ae, r.sop_class, r.transfer_syntax): r for r in reqs}
    why = by[("ARCHIVE_UNC", CT, JPEG_LS1)].reason
    assert why == "accepted with ExplicitVRLittleEndian instead"
    assert by[("ARCHIVE_CT", MR, None)].reason == context_result_text(3)


def test_gap_analysis_over_several_captures_at_once(tmp_path: Path) -> None:
    """Two captures are one set of facts: each file's rows keep their statuses."""
    both = tmp_path / "both.csv"
    rows = []
    for name, cap in (("storage.csv", "conf-storage.pcap"), ("roles.csv", "conf-roles.pcap")):
        with open(REQS / name, newline="") as f:
            for r in csv.DictReader(f):
                rows.append([r["ae"], r["role"], r["sop_class"], r["transfer_syntax"],
                             r[f"expected {cap}"]])
    with open(both, "w", newline="") as f:
        csv.writer(f).writerows([["ae", "role", "sop_class", "transfer_syntax", "expected"],
                                 *rows])
    out = cli("conformance", str(CONF / "conf-storage.pcap"), str(CONF / "conf-roles.pcap"),
              "--require", str(both), "--json")
    assert out.returncode == 0, out.stderr
    got = [r["status"] for r in map(json.loads, out.stdout.splitlines())
           if r["type"] == "requirement"]
    assert got == [r[4] for r in rows]


def test_fail_on_gap_exit_status(tmp_path: Path) -> None:
    met = tmp_path / "met.csv"
    met.write_text("ae,role,sop_class,transfer_syntax\nARCHIVE_JPEG,SCP,CTImageStorage,"
                   "JPEGLosslessSV1\n")
    cap = str(CONF / "conf-storage.pcap")
    assert cli("conformance", cap, "--require", str(met), "--fail-on-gap").returncode == 0
    gap = cli("conformance", cap, "--require", str(REQS / "storage.csv"), "--fail-on-gap")
    assert gap.returncode == 1
    assert gap.stderr.decode().strip().endswith("requirement(s) not met")


def test_requirements_from_xlsx(tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Requirements"
    ws.append(["AE Title", "Role", "SOP Class", "Transfer Syntax"])
    ws.append(["PACS", "scp", "CT Image Storage", "JPEG 2000 Image Compression (Lossless Only)"])
    ws.append(["PACS", "SCP", "Verification", None])
    path = tmp_path / "needs.xlsx"
    wb.save(path)
    reqs = evaluate(read_requirements(str(path)), facts_of("conf-roles.pcap"))
    assert [r.status for r in reqs] == ["refused", "met"]


def test_template_round_trip(tmp_path: Path) -> None:
    """--require-template writes what was observed; read back, every row is met."""
    for ext in ("csv", "xlsx"):
        tpl = tmp_path / f"tpl.{ext}"
        out = cli("conformance", str(CONF / "conf-roles.pcap"), "--require-template", str(tpl),
                  "--json")
        assert out.returncode == 0, out.stderr
        reqs = evaluate(read_requirements(str(tpl)), facts_of("conf-roles.pcap"))
        assert reqs and all(r.status == "met" for r in reqs)
        assert {(r.ae, r.role) for r in reqs} >= {("VIEWER", "SCP"), ("PACS", "SCU")}


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"ae,role\nX,SCP\n", "lacks column(s) sop_class"),
    (b"ae,role,sop_class\nX,MASTER,CTImageStorage\n", "row 2: role must be SCU or SCP"),
    (b"ae,role,sop_class\nX,SCP,NoSuchClass\n", "row 2: unknown SOP class"),
    (b"ae,role,sop_class,transfer_syntax\nX,SCP,CTImageStorage,Zip\n",
     "row 2: unknown transfer syntax"),
    (b"ae,role,sop_class\n,SCP,CTImageStorage\n", "row 2: no AE title"),
    (b"\xff\xfe\x00garbage\x00\x00", "header row lacks"),
    (b"PK\x03\x04not a zip", "not a readable xlsx"),
])
def test_bad_requirements_file_is_one_line_exit_2(tmp_path: Path, content: bytes,
                                                  message: str) -> None:
    path = tmp_path / ("needs.xlsx" if content.startswith(b"PK") else "needs.csv")
    path.write_bytes(content)
    out = cli("conformance", str(CONF / "conf-roles.pcap"), "--require", str(path))
    err = out.stderr.decode()
    assert out.returncode == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and message in err, err


def test_bad_capture_and_usage_exit_2(tmp_path: Path) -> None:
    missing = cli("conformance", str(tmp_path / "nope.pcap"))
    assert missing.returncode == 2 and "no such file" in missing.stderr.decode()
    assert cli("conformance", str(CONF / "conf-roles.pcap"), "--fail-on-gap").returncode == 2
    assert cli("diff", str(CONF / "conf-roles.pcap")).returncode == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    out = cli("diff", str(empty), str(CONF))
    assert out.returncode == 2 and "no capture files" in out.stderr.decode()


# -- outputs ------------------------------------------------------------------------------


ALL = [str(CONF / n) for n in sorted(ENTRIES)]


def test_every_format_on_every_capture_and_all_at_once(tmp_path: Path) -> None:
    for caps in [[c] for c in ALL] + [ALL]:
        for fmt in ("text", "markdown", "csv"):
            out = cli("conformance", *caps, "--format", fmt)
            assert out.returncode == 0, out.stderr
            text = out.stdout.decode()
            for name in {a["called_ae"] for c in caps
                         for a in ENTRIES[Path(c).name]["associations"]}:
                assert (name.replace("_", "\\_") if fmt == "markdown" else name) in text
        x = tmp_path / "c.xlsx"
        assert cli("conformance", *caps, "--format", "xlsx", "-o", str(x)).returncode == 0
        assert x.stat().st_size > 0


def test_markdown_tables_are_well_formed() -> None:
    out = cli("conformance", *ALL, "--format", "markdown", "--require",
              str(REQS / "storage.csv")).stdout.decode()
    assert out.startswith("# Conformance observed on the wire")
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|---"):
            width = line.count("|")
            j = i + 1
            while j < len(lines) and lines[j].startswith("| "):
                # escaped pipes do not count as cell separators
                assert lines[j].replace("\\|", "").count("|") == width
                j += 1
    assert "## Requirements" in out and "not\\_observed" in out


def test_csv_views_parse() -> None:
    out = cli("conformance", str(CONF / "conf-storage.pcap"), "--format", "csv")
    rows = list(csv.reader(io.StringIO(out.stdout.decode())))
    assert rows[0][:3] == ["AE", "SOP class", "SOP class UID"]
    assert any(r[0] == "ARCHIVE_CT" and r[2] == MR and r[11] == "1" for r in rows[1:])
    out = cli("conformance", str(CONF / "conf-storage.pcap"), "--format", "csv", "--view",
              "compatibility")
    rows = list(csv.reader(io.StringIO(out.stdout.decode())))
    assert rows[0][:2] == ["SCU (calling AE)", "SCP (called AE)"]


def test_workbook_read_by_openpyxl_and_calamine(tmp_path: Path) -> None:
    """The workbook opens in two independent readers with the same cells."""
    from openpyxl import load_workbook
    from python_calamine import CalamineWorkbook

    path = tmp_path / "conformance.xlsx"
    out = cli("conformance", *ALL, "--require", str(REQS / "storage.csv"), "--format", "xlsx",
              "-o", str(path))
    assert out.returncode == 0, out.stderr
    wb = load_workbook(path, read_only=True)
    cal = CalamineWorkbook.from_path(str(path))
    assert wb.sheetnames == cal.sheet_names
    assert wb.sheetnames[0] == "AEs" and wb.sheetnames[-1] == "Requirements"
    for name in wb.sheetnames:
        ours = [[("" if v is None else v) for v in row]
                for row in wb[name].iter_rows(values_only=True)]
        theirs = cal.get_sheet_by_name(name).to_python()
        assert len(ours) == len(theirs) > 1
        for a, b in zip(ours, theirs, strict=True):
            b = b + [""] * (len(a) - len(b))
            assert [str(x) if not isinstance(x, (int, float)) else float(x) for x in a] == \
                   [str(x) if not isinstance(x, (int, float)) else float(x) for x in b]
    req = [r for r in wb["Requirements"].iter_rows(values_only=True)]
    assert [r[4] for r in req[1:]] == _expected(REQS / "storage.csv", "conf-storage.pcap")


def test_xlsx_on_stdout_when_redirected() -> None:
    out = cli("conformance", str(CONF / "conf-roles.pcap"), "--format", "xlsx")
    assert out.returncode == 0 and out.stdout[:2] == b"PK"


def test_terminal_view_fits_80_columns_and_collapses_unused_contexts() -> None:
    from rich.console import Console

    from dicomsniff.conformance.render import print_terminal
    from dicomsniff.conformance.views import all_tables

    facts, _ = build_facts([str(ROOT / "captures" / "get.pcap")])
    buf = io.StringIO()
    print_terminal(Console(file=buf, width=80, highlight=False), facts, all_tables(facts))
    text = buf.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert re.search(r"\d+ other SOP\s+classes,\s+not\s+used", text)  # getscu proposes ~120
    assert "CT Image Storage" in text


# -- diff ---------------------------------------------------------------------------------


def _diff(*args: str) -> tuple[int, list[dict[str, Any]]]:
    out = cli("diff", *args, "--json")
    return out.returncode, [json.loads(line) for line in out.stdout.splitlines()]


def test_diff_before_after_upgrade() -> None:
    """What the upgrade changed, as configured: implementation, PDU, chosen syntax, MR
    refused, a failure status and rate, slower responses, finding codes."""
    rc, changes = _diff(str(CONF / "conf-before.pcap"), str(CONF / "conf-after.pcap"))
    assert rc == 1
    by = {(c["ae"], c["peer"], c["what"], c.get("sop_class")): c for c in changes}
    impl = by[("ARCHIVE", None, "implementation", None)]
    assert impl["before"] == ["1.2.276.0.7230010.3.0.3.6.7 OFFIS_DCMTK_367"]
    assert impl["after"][0].endswith("PYNETDICOM_304")
    assert by[("ARCHIVE", None, "max PDU as acceptor", None)]["after"] == [65536]
    chosen = by[("ARCHIVE", None, "transfer syntax chosen (as acceptor)", CT)]
    assert (chosen["before"], chosen["after"]) == ([JPEG_LS1], [EXPLICIT])
    assert by[("ARCHIVE", None, "refuses (as acceptor)", MR)]["after"] is True
    st = by[("ARCHIVE", None, "final statuses (SCP C-STORE)", CT)]
    assert st["before"] == ["0x0000"] and st["after"] == ["0x0000", "0xA700"]
    rate = by[("ARCHIVE", None, "failure rate % (SCP C-STORE)", CT)]
    assert (rate["before"], rate["after"]) == (0.0, 33.3)
    p50 = by[("ARCHIVE", None, "latency p50 s (SCP C-STORE)", CT)]
    assert p50["after"] >= 0.12 > p50["before"]
    assert by[("MODALITY", "ARCHIVE", "refused", MR)]["after"]
    assert "NEG-SOP-CLASS-REJECTED" in by[("MODALITY", "ARCHIVE", "finding codes", None)]["after"]
    # Nothing about MODALITY's own implementation or proposal changed.
    assert not any(c["ae"] == "MODALITY" and c["what"] in ("implementation",
                                                           "transfer syntaxes proposed")
                   for c in changes)


def test_diff_without_changes_exits_0() -> None:
    cap = str(CONF / "conf-storage.pcap")
    rc, changes = _diff(cap, cap)
    assert (rc, changes) == (0, [])
    text = cli("diff", cap, cap)
    assert text.returncode == 0 and "no change" in text.stdout.decode()


def test_diff_of_two_sets() -> None:
    """Sets of captures: the unchanged capture in both sets adds no change."""
    rc, changes = _diff("--before", str(CONF / "conf-before.pcap"), str(CONF / "conf-roles.pcap"),
                        "--after", str(CONF / "conf-after.pcap"), str(CONF / "conf-roles.pcap"))
    _, alone = _diff(str(CONF / "conf-before.pcap"), str(CONF / "conf-after.pcap"))
    assert rc == 1 and changes == alone


def test_diff_every_format(tmp_path: Path) -> None:
    a, b = str(CONF / "conf-before.pcap"), str(CONF / "conf-after.pcap")
    for fmt in ("text", "markdown", "csv"):
        out = cli("diff", a, b, "--format", fmt)
        assert out.returncode == 1 and b"PYNETDICOM" in out.stdout
    x = tmp_path / "d.xlsx"
    assert cli("diff", a, b, "--format", "xlsx", "-o", str(x)).returncode == 1
    from python_calamine import CalamineWorkbook

    rows = CalamineWorkbook.from_path(str(x)).get_sheet_by_name("Changes").to_python()
    assert rows[0] == ["AE", "peer", "what", "SOP class", "before", "after"] and len(rows) > 5


def test_docs_name_every_json_field() -> None:
    """docs/conformance.md is the contract: it names every field the records carry."""
    doc = (ROOT / "docs" / "conformance.md").read_text()
    keys: set[str] = set()
    out = cli("conformance", *ALL, "--require", str(REQS / "storage.csv"), "--json")
    for rec in map(json.loads, out.stdout.splitlines()):
        keys.update(rec)
        for s in rec.get("services", []):
            keys.update(s)
        if rec.get("evidence"):
            keys.update(rec["evidence"])
    _, changes = _diff(str(CONF / "conf-before.pcap"), str(CONF / "conf-after.pcap"))
    for c in changes:
        keys.update(c)
    missing = sorted(k for k in keys if k != "type" and f"`{k}`" not in doc)
    assert not missing, f"docs/conformance.md does not name: {missing}"


def test_every_sample_capture_in_every_format(tmp_path: Path) -> None:
    """The sample corpus and the findings captures: each one's records, and all of them at
    once in every format (the workbook read back by python-calamine)."""
    from python_calamine import CalamineWorkbook

    corpus = sorted(str(p) for p in (ROOT / "captures").glob("*.pcap")) + \
        sorted(str(p) for p in (ROOT / "captures" / "findings").glob("*.pcap"))
    assert len(corpus) > 20
    for cap in corpus:
        out = cli("conformance", cap, "--json")
        assert out.returncode == 0, (cap, out.stderr)
        recs = [json.loads(line) for line in out.stdout.splitlines()]
        assert recs[-1]["type"] == "summary" and recs[-1]["associations"] >= 1
    for fmt in ("text", "markdown", "csv"):
        out = cli("conformance", *corpus, "--format", fmt)
        assert out.returncode == 0 and out.stdout and not out.stderr, out.stderr
    x = tmp_path / "all.xlsx"
    assert cli("conformance", *corpus, "--format", "xlsx", "-o", str(x)).returncode == 0
    assert len(CalamineWorkbook.from_path(str(x)).get_sheet_by_name("AEs").to_python()) > 10
