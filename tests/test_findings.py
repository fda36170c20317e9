"""Findings rules on real captures: real dcmtk and pynetdicom peers producing each condition.

Two corpora: the sample captures (captures/, healthy exchanges plus a few classic failures) and
the findings captures (captures/findings/, made by the ``findings-*`` scenarios to misbehave).
Each rule is checked where a real peer produced its condition, with the frame it points at,
and on a capture where it must stay silent. Where tshark is installed, the packets a rule
points at are compared with what Wireshark's own analysis flags.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.rules import CODES, RuleConfig
from dicomsniff.analysis.run import analyze_source
from dicomsniff.model import Finding

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "captures"
FINDINGS = SAMPLES / "findings"
FINDINGS_MANIFEST = json.loads((FINDINGS / "manifest.json").read_text())["captures"]
TSHARK = shutil.which("tshark")


@cache
def _analysed(path: str, config: RuleConfig | None = None) -> Analyzer:
    a = Analyzer(rules=config)
    analyze_source(path, a)
    return a


def analysed(name: str, **cfg: object) -> Analyzer:
    """A capture of either corpus (``findings/x.pcap`` or ``x.pcap``), analysed once."""
    config = RuleConfig(**cfg) if cfg else None  # type: ignore[arg-type]
    return _analysed(str(SAMPLES / name), config)


def found(a: Analyzer, code: str) -> list[Finding]:
    return [f for f in a.findings if f.code == code]


def one(a: Analyzer, code: str) -> Finding:
    fs = found(a, code)
    assert len(fs) == 1, [f.message for f in fs]
    return fs[0]


def tshark_frames(path: Path, display_filter: str, *decode_as: str) -> list[int]:
    argv = [TSHARK or "tshark", "-r", str(path), "-Y", display_filter, "-T", "fields",
            "-e", "frame.number"]
    for d in decode_as:
        argv += ["-d", d]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [int(x) for x in out.split()]


needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed")


# -- the findings corpus itself ----------------------------------------------------------------

@pytest.mark.parametrize("entry", FINDINGS_MANIFEST, ids=[e["file"] for e in FINDINGS_MANIFEST])
def test_findings_capture_matches_its_manifest(entry: dict) -> None:
    """The committed pcap is the recorded one, and the analyzer sees what the peers did."""
    path = FINDINGS / entry["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    a = analysed(f"findings/{entry['file']}")
    assert a.stats.frames == entry["frames"]
    ours = sorted(a.associations, key=lambda x: x.first_frame or 0)
    assert [(x.calling_ae, x.called_ae, x.outcome) for x in ours] == [
        (t["calling_ae"], t["called_ae"], t["outcome"]) for t in entry["associations"]]
    for x, truth in zip(ours, entry["associations"], strict=True):
        got = [(t.command, "none" if t.status is None else f"0x{t.status:04X}")
               for t in x.transactions]
        assert got == [(o["op"], o["status"]) for o in truth["operations"]], entry["file"]
    assert not found(a, "RULE-FAILED")


def test_findings_corpus_stays_small() -> None:
    total = sum(e["size_bytes"] for e in FINDINGS_MANIFEST)
    assert total < 1 << 20, total


def test_every_code_raised_anywhere_is_in_the_catalogue() -> None:
    names = [e["file"] for e in json.loads((SAMPLES / "manifest.json").read_text())["captures"]]
    names += [f"findings/{e['file']}" for e in FINDINGS_MANIFEST]
    raised = {f.code for n in names for f in analysed(n).findings}
    assert raised <= set(CODES), raised - set(CODES)
    assert "RULE-FAILED" not in raised
    for c in CODES.values():
        if c.origin == "rules" and c.code != "RULE-FAILED":
            assert c.title and c.severity in ("error", "warning", "info")


# -- negotiation -------------------------------------------------------------------------------

def test_reject_says_what_to_check() -> None:
    a = analysed("associate-reject.pcap")
    called, refused = found(a, "ASSOC-REJECTED")
    assert called.frame == 8 and called.section == "PS3.8 9.3.4"
    assert "called AE 'WRONGAE'" in called.message and "calling AE 'ECHOSCU'" in called.message
    assert "What to check: The SCP does not answer to the called AE title" in called.message
    assert "permanent" in called.message
    assert "access rules" in refused.message  # reason 1: no reason given


def test_refused_sop_class_and_transfer_syntaxes() -> None:
    a = analysed("findings/negotiation.pcap")
    sop = one(a, "NEG-SOP-CLASS-REJECTED")
    assert "Secondary Capture Image Storage" in sop.message and sop.severity == "warning"
    assert "the SCP accepted CT Image Storage" in sop.message  # what it likely supports
    assert sop.section == "PS3.8 9.3.3.2" and sop.frame == a.associations[0].accept_frame
    ts = found(a, "NEG-TS-REJECTED")
    by_sev = {f.severity: f for f in ts}
    # MR: no context of it was accepted -> warning, with the syntaxes the SCP took elsewhere
    assert "MR Image Storage" in by_sev["warning"].message
    assert "JPEG Lossless, Non-Hierarchical (Process 14)" in by_sev["warning"].message
    assert "This SCP accepted Explicit VR Little Endian" in by_sev["warning"].message
    # CT: the P14 context was refused but CT went through uncompressed -> info
    assert "CT Image Storage" in by_sev["info"].message
    assert "must be converted" in by_sev["info"].message


def test_every_context_refused_is_an_error() -> None:
    a = analysed("findings/negotiation.pcap")
    f = one(a, "NEG-NO-CONTEXT-ACCEPTED")
    findscu = next(x for x in a.associations if x.calling_ae == "FINDSCU")
    assert f.association == findscu.id and f.severity == "error"
    assert "Study Root Query/Retrieve Information Model - FIND" in f.message
    # ... and findscu then dropped the TCP connection without a release
    closed = one(a, "ASSOC-CLOSED-NO-RELEASE")
    assert closed.association == findscu.id and "the requestor closed it first" in closed.message


def test_lossy_transfer_syntax_accepted_and_used() -> None:
    a = analysed("findings/negotiation.pcap")
    f = one(a, "NEG-LOSSY-TS")
    assert f.severity == "info" and "JPEG Extended (Process 2 and 4)" in f.message
    assert "1 data set(s) sent in it" in f.message
    for name in ("store-transfer-syntaxes.pcap", "store-large-pdu.pcap"):  # lossless only
        assert not found(analysed(name), "NEG-LOSSY-TS")


def test_no_negotiation_complaints_on_healthy_captures() -> None:
    for name in ("echo.pcap", "get.pcap", "move.pcap", "worklist.pcap", "mpps.pcap",
                 "storage-commitment-separate.pcap", "ipv6-store.pcap"):
        a = analysed(name)
        codes = {f.code for f in a.findings}
        assert not codes & {"NEG-SOP-CLASS-REJECTED", "NEG-TS-REJECTED", "NEG-CONTEXT-REJECTED",
                            "NEG-ROLE-REPLY", "NEG-EXTNEG-REPLY", "NEG-ROLE-NOT-NEGOTIATED",
                            "DIMSE-SOP-CLASS-MISMATCH", "DIMSE-DATASET-ENCODING"}, name


def test_query_identifiers_are_sniffed_and_match_their_context() -> None:
    """The encoding check really looks at C-FIND identifiers (collected, first bytes kept)."""
    a = Analyzer()
    seen = []
    a.on_association_start.append(lambda assoc: seen.append(assoc.id))
    analyze_source(SAMPLES / "worklist.pcap", a)
    assert seen and not found(a, "DIMSE-DATASET-ENCODING")


# -- protocol state --------------------------------------------------------------------------

def test_abort_after_the_requestor_gave_up_waiting() -> None:
    a = analysed("findings/no-answer.pcap")
    first = a.associations[0]
    abort = next(f for f in found(a, "ASSOC-ABORTED") if f.association == first.id)
    assert "sent by the requestor" in abort.message
    assert "it had waited 2.0 s for the response" in abort.message
    assert "What to check:" in abort.message
    nr = next(f for f in found(a, "DIMSE-NO-RESPONSE") if f.association == first.id)
    assert "waited 2.0 s until an A-ABORT from the requestor" in nr.message


def test_killed_peer_closes_without_release() -> None:
    a = analysed("findings/no-answer.pcap")
    killed = a.associations[1]
    assert killed.calling_ae == "KILLEDSCU" and killed.outcome == "closed"
    f = next(f for f in found(a, "ASSOC-CLOSED-NO-RELEASE") if f.association == killed.id)
    assert "the requestor closed it first" in f.message
    assert "C-STORE message 1 from the requestor" in f.message



def test_killed_scu_story_starts_at_its_fin_not_the_later_rst() -> None:
    """storescu killed 1 s after its C-STORE-RQ (killed-scu.pcap): its kernel's FIN is the
    moment it went away; the RST came 2 s later, when storescp answered the dead socket."""
    a = analysed("findings/killed-scu.pcap")
    f = one(a, "ASSOC-CLOSED-NO-RELEASE")
    fin, rst = 34, 37  # tshark: tcp.flags.fin / tcp.flags.reset from the requestor
    if TSHARK is not None:
        assert tshark_frames(FINDINGS / "killed-scu.pcap", "tcp.flags.fin==1") == [fin]
        assert tshark_frames(FINDINGS / "killed-scu.pcap", "tcp.flags.reset==1") == [rst]
    assert f"the requestor closed it first (FIN, frame {fin})" in f.message
    assert f"reset it later (RST, frame {rst})" in f.message
    t = a.associations[0].transactions[0]
    assert t.command == "C-STORE" and t.status is None
    waited = re.search(r"it had waited (\d+) ms for the response", f.message)
    assert waited and 900 <= int(waited.group(1)) <= 1100, f.message
    nr = one(a, "DIMSE-NO-RESPONSE")
    assert f"until the requestor closed the TCP connection (FIN, frame {fin})" in nr.message

def test_abort_in_the_middle_of_a_data_set() -> None:
    a = analysed("abort-mid-transfer.pcap")
    f = one(a, "ASSOC-ABORTED")
    assert "its data set had not been completely sent" in f.message
    assert "still incomplete at an A-ABORT from the acceptor" in one(
        a, "DIMSE-NO-RESPONSE").message


def test_idle_association_aborted_by_a_timeout() -> None:
    a = analysed("findings/idle-timeout.pcap", idle_threshold=0.5)
    idle = one(a, "PERF-IDLE")
    assert idle.severity == "warning"  # the acceptor then aborted: a timeout
    assert "before the association ended (aborted)" in idle.message
    assert "the acceptor then ended the association" in idle.message
    assert "idle for" in one(a, "ASSOC-ABORTED").message
    assert not found(analysed("findings/idle-timeout.pcap"), "PERF-IDLE")  # default 30 s


# -- DIMSE -------------------------------------------------------------------------------------

def test_every_failure_and_warning_status_with_its_meaning() -> None:
    a = analysed("findings/store-status.pcap")
    fails = {f.message.split("status ")[1][:6]: f for f in found(a, "DIMSE-STATUS-FAILURE")}
    warns = {f.message.split("status ")[1][:6]: f for f in found(a, "DIMSE-STATUS-WARNING")}
    assert set(fails) == {"0xA700", "0xA900", "0xC000", "0x0122"}
    assert set(warns) == {"0xB000", "0xB007"}
    assert "Out of resources" in fails["0xA700"].message
    assert "full disk" in fails["0xA700"].message
    assert "Coercion of data elements" in warns["0xB000"].message
    assert "SOP Class not supported" in fails["0x0122"].message
    txns = {t.status: t for t in a.associations[0].transactions}
    for st, f in [*fails.items(), *warns.items()]:
        assert f.frame == txns[int(st, 16)].response_frames[-1]
        assert f.section == "PS3.4 B.2.3"
        assert f.severity == ("error" if st in fails else "warning")


def test_move_failures_statuses() -> None:
    a = analysed("findings/move-failures.pcap")
    st = {f.message.split("status ")[1][:6]: f for f in found(a, "DIMSE-STATUS-FAILURE")}
    assert "Move destination unknown" in st["0xA801"].message
    assert "not configured on the SCP" in st["0xA801"].message
    assert "0xA702" in st and st["0xA702"].section == "PS3.4 C.4.2.1.5"


def test_lookup_that_found_nothing_is_a_warning() -> None:
    f = one(analysed("nget.pcap"), "DIMSE-STATUS-FAILURE")
    assert f.severity == "warning" and "No such object instance" in f.message


def test_cancel_and_what_followed() -> None:
    a = analysed("find-cancel.pcap")
    f = one(a, "DIMSE-CANCELLED")
    t = a.associations[0].transactions[0]
    assert f.frame == t.cancel_frame and f.frames == [t.response_frames[-1]]
    assert "confirmed with 0xFE00 Cancel" in f.message and f.severity == "info"


def test_requests_beyond_the_async_window() -> None:
    a = analysed("findings/async-burst.pcap")
    f = one(a, "DIMSE-ASYNC-WINDOW")
    assert f.severity == "error" and f.section == "PS3.7 D.3.3.3"
    assert "no window was negotiated" in f.message
    late = next(t for t in a.associations[0].transactions if t.request_frame == f.frame)
    assert late.message_id >= 2
    for name in ("store-concurrent.pcap", "find-pending.pcap", "get.pcap"):
        assert not found(analysed(name), "DIMSE-ASYNC-WINDOW"), name


def test_same_instance_stored_twice() -> None:
    a = analysed("findings/store-slow.pcap")
    f = one(a, "DIMSE-DUPLICATE-INSTANCE")
    txns = a.associations[0].transactions
    assert f.frame == txns[-1].request_frame and f.severity == "warning"
    assert f"first sent earlier on this association at frame {txns[2].request_frame}" in f.message
    retry = one(analysed("findings/no-answer.pcap"), "DIMSE-DUPLICATE-INSTANCE")
    assert retry.severity == "info" and "on association #1" in retry.message
    assert "retry" in retry.message



def test_slow_over_flags_an_scp_that_is_always_slow() -> None:
    """all-slow.pcap: three C-STOREs of 1.5 s each; the median is 1.5 s too, so the relative
    check is silent even with a factor of 2, and only the absolute threshold speaks."""
    assert not found(analysed("findings/all-slow.pcap", slow_factor=2.0, slow_min=0.5),
                     "DIMSE-SLOW-RESPONSE")
    a = analysed("findings/all-slow.pcap", slow_over=1.0)
    f = one(a, "DIMSE-SLOW-RESPONSE")
    stores = a.associations[0].transactions
    assert len(stores) == 3 and all(t.latency > 1.4 for t in stores)
    assert f.message.startswith("3 C-STORE response(s) from ARCHIVE (192.0.2.2:11112) took "
                                "1.0 s or longer (--slow-over)")
    assert f.frame in {t.request_frame for t in stores}
    assert not found(analysed("findings/all-slow.pcap", slow_over=2.0), "DIMSE-SLOW-RESPONSE")

def test_slow_response_against_the_median() -> None:
    a = analysed("findings/store-slow.pcap")
    f = one(a, "DIMSE-SLOW-RESPONSE")
    slow = a.associations[0].transactions[5]
    assert f.frame == slow.request_frame and slow.latency > 1.4
    assert "1.5 s" in f.message and "median" in f.message
    assert not found(analysed("findings/store-slow.pcap", slow_factor=1000.0),
                     "DIMSE-SLOW-RESPONSE")
    assert not found(analysed("findings/store-slow.pcap", slow_min=5.0), "DIMSE-SLOW-RESPONSE")


def test_suboperation_counts_agree_on_real_retrieves() -> None:
    for name in ("move.pcap", "get.pcap"):
        a = analysed(name)
        assert not found(a, "DIMSE-SUBOPS-MISMATCH"), name
        assert not found(a, "DIMSE-MOVE-NO-SUBASSOCIATION"), name


def test_move_destination_refused_the_connection() -> None:
    a = analysed("findings/move-failures.pcap")
    f = one(a, "DIMSE-MOVE-NO-SUBASSOCIATION")
    assert f.severity == "error" and "'DOWNDEST'" in f.message
    assert "192.0.2.1:11114 was refused" in f.message
    refused = found(a, "TCP-CONNECTION-REFUSED")
    assert {r.association for r in refused} == {None}
    by_port = {r.message.split(" and was refused")[0].rsplit(":", 1)[1]: r for r in refused}
    assert set(by_port) == {"11114", "104"}
    assert f.frames == [by_port["11114"].frame]


# -- workflow ----------------------------------------------------------------------------------

def test_mpps_never_completed() -> None:
    a = analysed("findings/mpps-open.pcap")
    fs = found(a, "WORKFLOW-MPPS-NOT-COMPLETED")
    assert len(fs) == 2 and all(f.association is None for f in fs)
    no_set, left_open = sorted(fs, key=lambda f: f.frame or 0)
    assert "no N-SET for it followed" in no_set.message
    assert "left it IN PROGRESS" in left_open.message  # decoded from the N-SET data set
    assert not found(analysed("mpps.pcap"), "WORKFLOW-MPPS-NOT-COMPLETED")


def test_storage_commitment_never_answered() -> None:
    a = analysed("findings/commit-no-report.pcap")
    f = one(a, "WORKFLOW-COMMIT-NO-REPORT")
    assert f.frame == a.associations[0].transactions[0].request_frame
    assert "1.2.826.0.1.3680043.8.498.777.10.2" in f.message  # Transaction UID, decoded
    assert "for 2 instance(s)" in f.message
    for name in ("storage-commitment.pcap", "storage-commitment-separate.pcap"):
        assert not found(analysed(name), "WORKFLOW-COMMIT-NO-REPORT"), name


def test_storage_commitment_report_with_failures() -> None:
    a = analysed("storage-commitment-separate.pcap")
    f = one(a, "WORKFLOW-COMMIT-FAILURES")
    report = a.associations[1].transactions[0]
    assert f.association == a.associations[1].id and f.frame == report.request_frame
    assert "1.2.826.0.1.3680043.8.498.777.20.2.999 (No such object instance)" in f.message
    assert "2 committed" in f.message
    assert not found(analysed("storage-commitment.pcap"), "WORKFLOW-COMMIT-FAILURES")


# -- throughput --------------------------------------------------------------------------------

def test_throughput_and_small_pdu() -> None:
    small = analysed("store-small-pdu.pcap")
    f = one(small, "PERF-SMALL-PDU")
    assert "4096 bytes" in f.message and "128 P-DATA-TF PDUs" in f.message
    t = one(small, "PERF-THROUGHPUT")
    assert "about 129 P-DATA PDU(s) each" in t.message and "% waiting for responses" in t.message
    large = analysed("store-large-pdu.pcap")
    assert not found(large, "PERF-SMALL-PDU")
    assert "about 5 P-DATA PDU(s) each" in one(large, "PERF-THROUGHPUT").message
    assert not found(analysed("echo.pcap"), "PERF-THROUGHPUT")


def test_nagle_and_delayed_ack_stall() -> None:
    f = one(analysed("store-transfer-syntaxes.pcap"), "PERF-DELAYED-ACK")
    assert "6 of 6 C-STORE exchanges waited about 40 ms before the response" in f.message
    pnd = one(analysed("mpps.pcap"), "PERF-DELAYED-ACK")  # pynetdicom: command, then data set
    assert "between the command and the end of its data set" in pnd.message
    for name in ("ipv6-store.pcap", "findings/store-slow.pcap", "echo.pcap"):
        assert not found(analysed(name), "PERF-DELAYED-ACK"), name


# -- transport ---------------------------------------------------------------------------------

def test_retransmission_points_at_the_segment() -> None:
    f = one(analysed("move.pcap"), "TCP-RETRANSMISSION")
    assert f.frame == 77 and f.severity == "info"


def test_zero_window() -> None:
    a = analysed("findings/zero-window.pcap")
    f = one(a, "TCP-ZERO-WINDOW")
    assert "the acceptor (ARCHIVE)" in f.message and "4 time(s)" in f.message
    assert f.frame == 17


# -- the same packets according to Wireshark -----------------------------------------------------

@needs_tshark
def test_tshark_flags_the_same_tcp_packets() -> None:
    zw = tshark_frames(FINDINGS / "zero-window.pcap", "tcp.analysis.zero_window")
    f = one(analysed("findings/zero-window.pcap"), "TCP-ZERO-WINDOW")
    assert f.frame == zw[0] and f"{len(zw)} time(s)" in f.message
    rt = tshark_frames(SAMPLES / "move.pcap", "tcp.analysis.retransmission")
    assert one(analysed("move.pcap"), "TCP-RETRANSMISSION").frame == rt[0]
    rst = tshark_frames(FINDINGS / "move-failures.pcap", "tcp.flags.reset == 1")
    refused = found(analysed("findings/move-failures.pcap"), "TCP-CONNECTION-REFUSED")
    assert sorted(r.frame for r in refused) == rst


@needs_tshark
def test_tshark_sees_the_same_statuses_and_aborts() -> None:
    from tests.oracle.tshark import tshark_dicom

    oracle = tshark_dicom(FINDINGS / "store-status.pcap", [11112])
    theirs = {m.frame: m.status for c in oracle.connections for m in c.messages
              if m.is_response and m.status not in (None, 0)}
    a = analysed("findings/store-status.pcap")
    ours = {f.frame: int(f.message.split("status ")[1][:6], 16) for f in a.findings
            if f.code.startswith("DIMSE-STATUS-")}
    assert ours == theirs
    port = "tcp.port==11112,dicom"
    ab = tshark_frames(FINDINGS / "no-answer.pcap", "dicom.pdu.type == 7", port)
    assert [f.frame for f in found(analysed("findings/no-answer.pcap"), "ASSOC-ABORTED")] == ab
