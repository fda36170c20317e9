"""Findings rules on hand-built bytes, for conditions no real peer here can produce.

dcmtk and pynetdicom encode correctly, never contradict a role or extended negotiation
request, never lie about C-MOVE/C-GET sub-operation counts and never send a request on a
context of another SOP class; these tests build such conversations with tests/builders.py.
Also here: rule plumbing (a rule that raises, disabled codes, cross-association memory
without data sets), the report digest and the CLI options.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.rules import RuleConfig, RuleSet, base
from dicomsniff.analysis.rules.base import AssocView, Hit
from dicomsniff.model import Association, Finding, Transaction
from dicomsniff.report.digest import digest
from tests import builders as b

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
MR = "1.2.840.10008.5.1.4.1.1.4"
SC = "1.2.840.10008.5.1.4.1.1.7"
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
GET = "1.2.840.10008.5.1.4.1.2.2.3"
MPPS = "1.2.840.10008.3.1.2.3.3"
COMMIT = "1.2.840.10008.1.20.1"


class Timeline:
    """Frames of one or more TCP conversations with the capture time of each."""

    def __init__(self, t0: float = 1000.0) -> None:
        self.t = t0
        self.frames: list[tuple[float, bytes]] = []

    def add(self, conv: b.TcpConversation, op: str, *args: object, dt: float = 0.001) -> None:
        n = len(conv.frames)
        getattr(conv, op)(*args)
        for f in conv.frames[n:]:
            self.frames.append((self.t, f))
        self.t += dt

    def wait(self, seconds: float) -> None:
        self.t += seconds

    def run(self, **kw: object) -> Analyzer:
        a = Analyzer(**kw)  # type: ignore[arg-type]
        for i, (ts, f) in enumerate(self.frames):
            a.feed_frame(i + 1, ts, 1, f)
        a.finish()
        return a


def codes(a: Analyzer) -> list[str]:
    return [f.code for f in a.findings]


def one(a: Analyzer, code: str) -> Finding:
    fs = [f for f in a.findings if f.code == code]
    assert len(fs) == 1, [f.message for f in a.findings]
    return fs[0]


def _uid(u: str) -> bytes:
    return u.encode() + (b"\x00" if len(u) % 2 else b"")


def role(sop: str, scu: int, scp: int) -> bytes:
    u = _uid(sop)
    return b.item(0x54, struct.pack("!H", len(u)) + u + bytes([scu, scp]))


def extneg(sop: str, info: bytes) -> bytes:
    u = _uid(sop)
    return b.item(0x56, struct.pack("!H", len(u)) + u + info)


def us(v: int) -> bytes:
    return struct.pack("<H", v)


def ae(title: str) -> bytes:
    return title.encode().ljust(16)


def conversation(rq: bytes, ac: bytes, steps: list[tuple[int, bytes]], *,
                 client=("192.0.2.1", 50000), server=("192.0.2.2", 104),
                 tl: Timeline | None = None, release: bool = True) -> Timeline:
    tl = tl or Timeline()
    c = b.TcpConversation(client=client, server=server)
    tl.add(c, "handshake")
    tl.add(c, "send", 0, rq)
    tl.add(c, "send", 1, ac)
    for side, data in steps:
        tl.add(c, "send", side, data)
    if release:
        tl.add(c, "send", 0, b.release_rq())
        tl.add(c, "send", 1, b.release_rp())
    tl.add(c, "close")
    return tl


# -- negotiation replies that contradict the request ----------------------------------------------

def test_role_and_extended_negotiation_replies_that_contradict_the_request() -> None:
    rq = b.associate_rq(user=b.user_info(extra=role(b.CT_STORAGE, 1, 0)))
    ac = b.associate_ac(user=b.user_info(extra=role(b.CT_STORAGE, 1, 1) + role(MR, 1, 0)
                                         + extneg(b.CT_STORAGE, b"\x01")))
    a = conversation(rq, ac, []).run()
    role_findings = [f for f in a.findings if f.code == "NEG-ROLE-REPLY"]
    assert len(role_findings) == 2
    granted, unasked = role_findings
    assert "granted the SCP role the requestor did not propose" in granted.message
    assert "MR Image Storage, which the A-ASSOCIATE-RQ did not propose" in unasked.message
    ext = one(a, "NEG-EXTNEG-REPLY")
    assert ext.section == "PS3.7 D.3.3.5 / D.3.3.6" and ext.frame == granted.frame
    # the same items, asked for and answered within what was asked: nothing to say
    rq = b.associate_rq(user=b.user_info(extra=role(b.CT_STORAGE, 1, 1)
                                         + extneg(b.CT_STORAGE, b"\x01")))
    ac = b.associate_ac(user=b.user_info(extra=role(b.CT_STORAGE, 0, 1)
                                         + extneg(b.CT_STORAGE, b"\x01")))
    assert not {"NEG-ROLE-REPLY", "NEG-EXTNEG-REPLY"} & set(codes(conversation(rq, ac, []).run()))


def test_acceptor_stores_without_the_scp_role() -> None:
    store = b.store_request(1, bytes(64), ctx=3)
    answer = b.store_response(1, ctx=3)
    a = conversation(b.associate_rq(), b.associate_ac(), [(1, store), (0, answer)]).run()
    f = one(a, "NEG-ROLE-NOT-NEGOTIATED")
    assert f.frame == a.associations[0].transactions[0].request_frame
    rq = b.associate_rq(user=b.user_info(extra=role(b.CT_STORAGE, 1, 1)))
    ac = b.associate_ac(user=b.user_info(extra=role(b.CT_STORAGE, 1, 1)))
    assert "NEG-ROLE-NOT-NEGOTIATED" not in codes(
        conversation(rq, ac, [(1, store), (0, answer)]).run())


def test_broad_proposal_refusals_are_summarised() -> None:
    sops = [b.CT_STORAGE, MR, SC] + [f"1.2.840.10008.5.1.4.1.1.{n}" for n in (1, 12, 20, 128,
                                                                              481)]
    rq = b.associate_rq(contexts=[(2 * i + 1, s, [b.IMPLICIT_LE]) for i, s in enumerate(sops)])
    ac = b.associate_ac(results=[(1, 0, b.IMPLICIT_LE)] + [(2 * i + 1, 3, b.IMPLICIT_LE)
                                                          for i in range(1, len(sops))])
    f = one(conversation(rq, ac, []).run(), "NEG-SOP-CLASS-REJECTED")
    assert f.severity == "info" and f.message.startswith("7 of the 8 proposed SOP classes")
    assert "the SCP accepted CT Image Storage" in f.message


# -- DIMSE requests that do not fit their context ---------------------------------------------

def test_request_for_another_sop_class_than_its_context() -> None:
    wrong = b.p_data(b.pdv(1, 3, b.command_set(0x0001, message_id=1, sop_class=b.CT_STORAGE,
                                                sop_instance="1.2.3", priority=0,
                                                has_dataset=True)), b.pdv(1, 2, bytes(32)))
    rsp = b.p_data(b.pdv(1, 3, b.command_set(0x8001, responded_to=1, sop_class=b.CT_STORAGE,
                                             status=0x0122)))
    a = conversation(b.associate_rq(), b.associate_ac(), [(0, wrong), (1, rsp)]).run()
    f = one(a, "DIMSE-SOP-CLASS-MISMATCH")
    assert "CT Image Storage" in f.message and "Verification SOP Class" in f.message
    assert f.severity == "error"
    assert "DIMSE-CONTEXT-NOT-ACCEPTED" not in codes(a)  # the context itself was accepted


def _find_conversation(identifier: bytes) -> Analyzer:
    rq = b.associate_rq(contexts=[(1, FIND, [b.IMPLICIT_LE])])
    ac = b.associate_ac(results=[(1, 0, b.IMPLICIT_LE)])
    find = b.p_data(b.pdv(1, 3, b.command_set(0x0020, message_id=1, sop_class=FIND, priority=0,
                                               has_dataset=True)), b.pdv(1, 2, identifier))
    rsp = b.p_data(b.pdv(1, 3, b.command_set(0x8020, responded_to=1, sop_class=FIND,
                                             status=0)))
    return conversation(rq, ac, [(0, find), (1, rsp)]).run()


def test_identifier_encoded_otherwise_than_its_context() -> None:
    explicit = b"\x08\x00\x52\x00CS\x06\x00STUDY " + b"\x10\x00\x10\x00PN\x02\x00* "
    a = _find_conversation(explicit)
    f = one(a, "DIMSE-DATASET-ENCODING")
    assert "encoded explicit VR little endian" in f.message
    assert "Implicit VR Little Endian (implicit VR little endian)" in f.message
    assert f.frame == a.associations[0].transactions[0].request_frame
    implicit = b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY " + b"\x10\x00\x10\x00\x02\x00\x00\x00* "
    assert "DIMSE-DATASET-ENCODING" not in codes(_find_conversation(implicit))
    big = b"\x00\x08\x00\x52CS\x00\x06STUDY "
    f = one(_find_conversation(big), "DIMSE-DATASET-ENCODING")
    assert "explicit VR big endian" in f.message


# -- retrieve sub-operations --------------------------------------------------------------------

def _subops(remaining: int, completed: int, failed: int, warning: int) -> dict[int, bytes]:
    return {0x1020: us(remaining), 0x1021: us(completed), 0x1022: us(failed), 0x1023: us(warning)}


def test_get_reports_more_than_it_sent() -> None:
    rq = b.associate_rq(contexts=[(1, GET, [b.IMPLICIT_LE]), (3, b.CT_STORAGE, [b.IMPLICIT_LE])],
                        user=b.user_info(extra=role(b.CT_STORAGE, 0, 1)))
    ac = b.associate_ac(results=[(1, 0, b.IMPLICIT_LE), (3, 0, b.IMPLICIT_LE)],
                        user=b.user_info(extra=role(b.CT_STORAGE, 0, 1)))
    get = b.p_data(b.pdv(1, 3, b.command_set(0x0010, message_id=7, sop_class=GET, priority=0,
                                              has_dataset=True)),
                   b.pdv(1, 2, b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY "))
    steps = [(0, get)]
    for n in (1, 2):
        steps += [(1, b.store_request(n, bytes(64), ctx=3, instance=f"1.2.3.{n}")),
                  (0, b.store_response(n, ctx=3, instance=f"1.2.3.{n}"))]
    steps.append((1, b.p_data(b.pdv(1, 3, b.command_set(0x8010, responded_to=7, sop_class=GET,
                                                        status=0, extra=_subops(0, 3, 0, 0))))))
    a = conversation(rq, ac, steps).run()
    f = one(a, "DIMSE-SUBOPS-MISMATCH")
    assert "reported 3 completed" in f.message and "2 successful" in f.message
    assert "NEG-ROLE-NOT-NEGOTIATED" not in codes(a)


def _move_conversation(tl: Timeline, completed: int) -> tuple[b.TcpConversation, Timeline]:
    rq = b.associate_rq(called="ARCHIVE", calling="MOVESCU",
                        contexts=[(1, MOVE, [b.IMPLICIT_LE])])
    ac = b.associate_ac(called="ARCHIVE", calling="MOVESCU", results=[(1, 0, b.IMPLICIT_LE)])
    m = b.TcpConversation(server=("192.0.2.2", 104))
    tl.add(m, "handshake")
    tl.add(m, "send", 0, rq)
    tl.add(m, "send", 1, ac)
    move = b.p_data(b.pdv(1, 3, b.command_set(0x0021, message_id=5, sop_class=MOVE, priority=0,
                                               move_destination="DEST", has_dataset=True)),
                    b.pdv(1, 2, b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY "))
    tl.add(m, "send", 0, move)
    return m, tl


def _finish_move(m: b.TcpConversation, tl: Timeline, completed: int) -> None:
    final = b.p_data(b.pdv(1, 3, b.command_set(0x8021, responded_to=5, sop_class=MOVE, status=0,
                                               extra=_subops(0, completed, 0, 0))))
    tl.add(m, "send", 1, final)
    tl.add(m, "send", 0, b.release_rq())
    tl.add(m, "send", 1, b.release_rp())
    tl.add(m, "close")


def test_move_reports_more_than_its_sub_association_carried() -> None:
    m, tl = _move_conversation(Timeline(), 2)
    # the sub-association: ARCHIVE opens one to DEST and stores one instance
    rq = b.associate_rq(called="DEST", calling="ARCHIVE")
    ac = b.associate_ac(called="DEST", calling="ARCHIVE")
    store = b.store_request(1, bytes(64), ctx=3)
    origin = {0x1030: ae("MOVESCU"), 0x1031: us(5)}
    store = b.p_data(b.pdv(3, 3, b.command_set(0x0001, message_id=1, sop_class=b.CT_STORAGE,
                                                sop_instance="1.2.3.1", priority=0,
                                                has_dataset=True, extra=origin)),
                     b.pdv(3, 2, bytes(64)))
    conversation(rq, ac, [(0, store), (1, b.store_response(1, ctx=3, instance="1.2.3.1"))],
                 client=("192.0.2.2", 40000), server=("192.0.2.1", 11113), tl=tl)
    _finish_move(m, tl, completed=2)
    a = tl.run()
    f = one(a, "DIMSE-SUBOPS-MISMATCH")
    move_assoc = next(x for x in a.associations if x.calling_ae == "MOVESCU")
    assert f.association == move_assoc.id
    assert "reported 2 completed" in f.message and "sub-association #2" in f.message
    assert "1 successful" in f.message
    assert "DIMSE-MOVE-NO-SUBASSOCIATION" not in codes(a)


def test_move_whose_destination_never_got_an_association() -> None:
    m, tl = _move_conversation(Timeline(), 2)
    tl.wait(0.5)
    _finish_move(m, tl, completed=2)
    f = one(tl.run(), "DIMSE-MOVE-NO-SUBASSOCIATION")
    assert f.severity == "warning" and "outside the capture" in f.message


# -- slow responses judged when the capture ends ------------------------------------------------

def test_slow_response_judged_once_the_server_median_is_known() -> None:
    tl = Timeline()
    port = [50000]

    def assoc(latencies: list[float]) -> None:
        c = b.TcpConversation(client=("192.0.2.1", port[0]), server=("192.0.2.2", 104))
        port[0] += 1
        tl.add(c, "handshake")
        tl.add(c, "send", 0, b.associate_rq())
        tl.add(c, "send", 1, b.associate_ac())
        for n, lat in enumerate(latencies, 1):
            tl.add(c, "send", 0, b.store_request(n, bytes(64), instance=f"1.2.9.{port[0]}.{n}"))
            tl.wait(lat)
            tl.add(c, "send", 1, b.store_response(n, instance=f"1.2.9.{port[0]}.{n}"))
        tl.add(c, "send", 0, b.release_rq())
        tl.add(c, "send", 1, b.release_rp())
        tl.add(c, "close")

    assoc([3.0])  # ends before the server has a median
    assoc([0.01] * 6)
    a = tl.run()
    f = one(a, "DIMSE-SLOW-RESPONSE")
    assert f.association is None and "(association #1)" in f.message and "3.0 s" in f.message


# -- rule plumbing ------------------------------------------------------------------------------

def test_a_rule_that_raises_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(v: AssocView) -> list[Hit]:
        raise ValueError("boom")

    from dicomsniff.analysis.rules import ruleset

    check = base.Check("broken", broken, ("PERF-IDLE",), "association")
    monkeypatch.setattr(ruleset, "CHECKS", [*base.CHECKS, check])
    a = conversation(b.associate_rq(), b.associate_ac(), []).run()
    f = one(a, "RULE-FAILED")
    assert "rule broken failed: ValueError: boom" in f.message
    assert a.associations[0].outcome == "released"


def test_disabled_codes_are_not_raised() -> None:
    store = b.store_request(1, bytes(64), ctx=3)
    steps = [(0, store), (1, b.store_response(1, 0xA700, ctx=3))]
    assert "DIMSE-STATUS-FAILURE" in codes(conversation(b.associate_rq(), b.associate_ac(),
                                                        steps).run())
    off = RuleConfig(disabled=frozenset({"DIMSE-STATUS-FAILURE"}))
    assert "DIMSE-STATUS-FAILURE" not in codes(
        conversation(b.associate_rq(), b.associate_ac(), steps).run(rules=off))


def _assoc(aid: int, calling: str, called: str, txns: list[Transaction]) -> Association:
    a = Association(aid, "192.0.2.1:5000", "192.0.2.2:104", calling, called, start=1.0, end=9.0,
                    outcome="released", midstream=True)
    a.transactions = txns
    return a


def _txn(aid: int, n: int, command: str, cf: int, sop: str, instance: str | None = None,
         t: float = 2.0, sent_by: str = "requestor", **kw: object) -> Transaction:
    return Transaction(n, aid, command, cf, n, 1, sent_by, sop, instance, request_frame=n * 10,
                       request_time=t, response_time=t + 0.1, response_frames=[n * 10 + 1],
                       status=0, status_category="Success", **kw)  # type: ignore[arg-type]


def test_workflow_rules_without_data_sets_fall_back_to_commands() -> None:
    """A capture that started mid-association has no data sets: N-SET counts as the update,
    and a commitment report matches its request by the AEs exchanging it."""
    out: list[Finding] = []
    rs = RuleSet(emit=out.append)
    a1 = _assoc(1, "CT", "RIS", [_txn(1, 1, "N-CREATE", 0x0140, MPPS, "1.2.1"),
                                 _txn(1, 2, "N-CREATE", 0x0140, MPPS, "1.2.2"),
                                 _txn(1, 3, "N-SET", 0x0120, MPPS, "1.2.2")])
    a2 = _assoc(2, "CT", "PACS", [_txn(2, 1, "N-ACTION", 0x0130, COMMIT, t=3.0),
                                  _txn(2, 2, "N-ACTION", 0x0130, COMMIT, t=3.5)])
    a3 = _assoc(3, "PACS", "CT", [_txn(3, 1, "N-EVENT-REPORT", 0x0100, COMMIT, t=5.0,
                                       event_type=1)])
    for a in (a1, a2, a3):
        rs.run_association(AssocView(a, rs.config, rs.state, "fin"))
    rs.finish()
    mpps = [f for f in out if f.code == "WORKFLOW-MPPS-NOT-COMPLETED"]
    assert len(mpps) == 1 and "1.2.1" in mpps[0].message
    commit = [f for f in out if f.code == "WORKFLOW-COMMIT-NO-REPORT"]
    assert len(commit) == 1 and "frame 20" in commit[0].message  # the second N-ACTION


# -- report digest and CLI ------------------------------------------------------------------------

def test_digest_groups_by_code_worst_first() -> None:
    fs = [Finding("warning", "PERF-DELAYED-ACK", "a", 5, 1),
          Finding("warning", "PERF-DELAYED-ACK", "b", 3, 2),
          Finding("info", "PERF-THROUGHPUT", "c", 1, 1),
          Finding("error", "TCP-CONNECTION-REFUSED", "d", 9, None)]
    rows = digest(fs)
    assert [r.code for r in rows] == ["TCP-CONNECTION-REFUSED", "PERF-DELAYED-ACK",
                                      "PERF-THROUGHPUT"]
    assert rows[1].count == 2 and rows[1].associations == {1, 2} and rows[1].frame == 3
    assert rows[0].capture_level


def test_cli_options_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    from dicomsniff.cli import main

    slow = str(CAPTURES / "findings" / "store-slow.pcap")
    assert main(["analyze", slow, "--findings-only"]) == 0
    out = capsys.readouterr().out
    assert "What went wrong (worst first)" in out and "DIMSE-SLOW-RESPONSE" in out
    assert main(["analyze", slow, "--findings-only", "--slow-factor", "1000"]) == 0
    assert "DIMSE-SLOW-RESPONSE" not in capsys.readouterr().out
    idle = str(CAPTURES / "findings" / "idle-timeout.pcap")
    assert main(["analyze", idle, "--idle-threshold", "0.5", "--json"]) == 0
    recs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    idle_recs = [r for r in recs if r["type"] == "finding" and r["code"] == "PERF-IDLE"]
    assert idle_recs and idle_recs[0]["association"] == 1
    mpps = str(CAPTURES / "findings" / "mpps-open.pcap")
    assert main(["analyze", mpps, "--json", "--disable-rule", "perf-delayed-ack"]) == 0
    recs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    codes_ = [r["code"] for r in recs if r["type"] == "finding"]
    assert codes_.count("WORKFLOW-MPPS-NOT-COMPLETED") == 2 and "PERF-DELAYED-ACK" not in codes_
    assert recs[-1]["type"] == "summary" and recs[-1]["by_severity"]["warning"] == 2
    status = str(CAPTURES / "findings" / "store-status.pcap")
    assert main(["analyze", status, "--fail-on", "error"]) == 1
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["analyze", status, "--slow-factor", "-1"])
    assert exc.value.code == 2


def test_zero_window_on_the_ipv4_fast_path_is_found():
    """Zero windows announced in plain IPv4-on-Ethernet ACKs (the engine's fast path) count.

    tshark's expert info shows 11 [TCP ZeroWindow] segments from the SCP in this capture.
    """
    from pathlib import Path

    from dicomsniff.analysis.engine import Analyzer
    from dicomsniff.analysis.run import analyze_source

    a = Analyzer()
    analyze_source(Path(__file__).parent.parent / "captures" / "store-small-pdu.pcap", a)
    zw = [f for f in a.findings if f.code == "TCP-ZERO-WINDOW"]
    assert len(zw) == 1 and "11 time(s)" in zw[0].message
