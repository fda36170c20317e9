"""The PS3.8 state machine as data (dissectors/ul/states.py): real peers walk it without a
single invalid step, and what the table has no transition for is a finding naming the
standard's state and event (PS3.8 9.2, Table 9-10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source
from dissectors.ul import events as ev
from dissectors.ul import pdu
from dissectors.ul.states import ACTIONS, EVENTS, STATES, TRANSITIONS, AssociationStates
from tests import builders as b

ROOT = Path(__file__).resolve().parent.parent
_TYPES = {ev.AssociateRQ: pdu.A_ASSOCIATE_RQ, ev.AssociateAC: pdu.A_ASSOCIATE_AC,
          ev.AssociateRJ: pdu.A_ASSOCIATE_RJ, ev.PDataTF: pdu.P_DATA_TF,
          ev.ReleaseRQ: pdu.A_RELEASE_RQ, ev.ReleaseRP: pdu.A_RELEASE_RP, ev.Abort: pdu.A_ABORT}


def test_the_table_uses_only_the_standards_names():
    for (state, event), (action, after) in TRANSITIONS.items():
        assert state in STATES and event in EVENTS and action in ACTIONS
        assert all(s in STATES for s in after.split("|"))
    assert len(STATES) == 13


def test_a_whole_association_walks_the_table():
    m = AssociationStates()
    script = [(pdu.REQUESTOR, pdu.A_ASSOCIATE_RQ, ["Sta5", "Sta3"]),
              (pdu.ACCEPTOR, pdu.A_ASSOCIATE_AC, ["Sta6", "Sta6"]),
              (pdu.REQUESTOR, pdu.P_DATA_TF, ["Sta6", "Sta6"]),
              (pdu.ACCEPTOR, pdu.P_DATA_TF, ["Sta6", "Sta6"]),
              (pdu.REQUESTOR, pdu.A_RELEASE_RQ, ["Sta7", "Sta8"]),
              (pdu.ACCEPTOR, pdu.A_RELEASE_RP, ["Sta1", "Sta13"])]
    for sender, t, want in script:
        assert all(s.valid for s in m.pdu(sender, t)), (sender, t)
        assert m.states == want
    assert [s.action for s in m.transport_closed()] == ["AR-5"]  # the acceptor's Sta13


def test_release_collision_goes_to_sta9_and_sta10():
    m = AssociationStates(midstream=True)
    m.pdu(pdu.REQUESTOR, pdu.P_DATA_TF)
    m.pdu(pdu.REQUESTOR, pdu.A_RELEASE_RQ)
    steps = m.pdu(pdu.ACCEPTOR, pdu.A_RELEASE_RQ)
    assert all(s.valid for s in steps) and [s.action for s in steps].count("AR-8") == 2
    assert m.states == ["Sta9", "Sta10"]
    assert all(s.valid for s in m.pdu(pdu.REQUESTOR, pdu.A_RELEASE_RP))  # AR-9 / AR-10
    assert all(s.valid for s in m.pdu(pdu.ACCEPTOR, pdu.A_RELEASE_RP))  # AR-4 / AR-3
    assert m.states == ["Sta1", "Sta13"]


RECORDED = ["echo.pcap", "move.pcap", "get.pcap", "find-cancel.pcap", "mpps.pcap",
            "storage-commitment.pcap", "store-concurrent.pcap", "associate-reject.pcap",
            "abort-by-requestor.pcap", "abort-mid-transfer.pcap", "worklist.pcap",
            "store-many-associations.pcap"]


@pytest.mark.parametrize("name", RECORDED)
def test_real_peers_never_leave_the_table(name: str) -> None:
    """dcmtk and pynetdicom, recorded: every PDU is a valid transition for both AEs, and a
    released association ends with the requestor in Sta1 and the acceptor in Sta13."""
    a = Analyzer(pdu_events=True)
    machines: dict[int, AssociationStates] = {}
    bad: list[str] = []

    def follow(assoc, side, evs) -> None:
        m = machines.setdefault(assoc.id, AssociationStates(midstream=assoc.midstream))
        for e in evs:
            t = _TYPES.get(type(e))
            if t is not None:
                bad.extend(s.describe() for s in m.pdu(side, t) if not s.valid)

    a.on_ul_events.append(follow)
    analyze_source(ROOT / "captures" / name, a)
    assert machines and not bad, bad
    for x in a.associations:
        if x.outcome == "released":
            assert machines[x.id].states == ["Sta1", "Sta13"], x.id
        if x.outcome == "rejected":
            assert machines[x.id].states == ["Sta1", "Sta13"], x.id
    assert not [f for f in a.findings if f.code.startswith("UL-STATE")]


# -- what the table refuses, on hand-built bytes (real peers do not send these) ---------------

def _run(*exchanges: tuple[int, bytes]) -> Analyzer:
    c = b.TcpConversation().handshake()
    for side, data in exchanges:
        c.send(side, data)
    c.close()
    a = Analyzer()
    for i, f in enumerate(c.frames):
        a.feed_frame(i + 1, 1000.0 + i * 0.01, 1, f)
    a.finish()
    return a


def _one(a: Analyzer, code: str):
    found = [f for f in a.findings if f.code == code]
    assert len(found) == 1, [f.code for f in a.findings]
    return found[0]


ECHO_RQ = b.p_data(b.pdv(1, 3, b.command_set(0x0030, message_id=1, sop_class=b.VERIFICATION)))


def test_p_data_before_the_association_is_accepted():
    f = _one(_run((0, b.associate_rq()), (0, ECHO_RQ), (1, b.associate_ac())),
             "UL-STATE-PDATA")
    assert "requestor in Sta5" in f.message and "Evt9" in f.message and f.section == "PS3.8 9.2"


def test_a_second_associate_rq_and_an_unexpected_ac():
    a = _run((0, b.associate_rq()), (1, b.associate_ac()), (0, b.associate_rq()),
             (1, b.associate_ac()))
    assert "Evt1" in _one(a, "UL-STATE-SECOND-RQ").message
    assert "requestor in Sta6" in _one(a, "UL-STATE-AC").message


def test_release_rp_without_rq_and_data_after_own_release_rq():
    a = _run((0, b.associate_rq()), (1, b.associate_ac()), (1, b.release_rp()))
    assert "Evt13" in _one(a, "UL-STATE-RP").message
    a = _run((0, b.associate_rq()), (1, b.associate_ac()), (0, b.release_rq()), (0, ECHO_RQ),
             (1, b.release_rp()))
    assert "requestor in Sta7" in _one(a, "UL-STATE-DATA-AFTER-RELEASE").message


def test_release_collision_is_reported_once():
    a = _run((0, b.associate_rq()), (1, b.associate_ac()), (0, b.release_rq()),
             (1, b.release_rq()), (0, b.release_rp()), (1, b.release_rp()))
    _one(a, "UL-RELEASE-COLLISION")
    assert a.associations[0].outcome == "released"


def test_any_pdu_sequence_is_total_and_named():
    """Hostile order: whatever PDUs come in whatever order, the machine never raises, every
    step names a standard state and event, and a refused event leaves the state as it was."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    types = [pdu.A_ASSOCIATE_RQ, pdu.A_ASSOCIATE_AC, pdu.A_ASSOCIATE_RJ, pdu.P_DATA_TF,
             pdu.A_RELEASE_RQ, pdu.A_RELEASE_RP, pdu.A_ABORT]

    @settings(max_examples=300, deadline=None)
    @given(st.booleans(), st.lists(st.tuples(st.integers(0, 1), st.sampled_from(types)),
                                   max_size=30))
    def run(midstream: bool, seq: list[tuple[int, int]]) -> None:
        m = AssociationStates(midstream=midstream)
        for sender, t in seq:
            for s in m.pdu(sender, t):
                assert s.before in STATES and s.event in EVENTS and s.after in STATES
                assert s.valid or s.after == s.before
                assert s.describe()
        for s in m.transport_closed():
            assert s.event == "Evt17"

    run()
