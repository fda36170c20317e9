"""The PS3.8 upper layer state machine (9.2, Table 9-10) as data, for a passive observer.

h11 style (``h11/_state.py``): the states, events and actions are the standard's names, the
transitions a table keyed by (state, event), and a small class applies it. Each of the two
AEs of an association has its own machine: the association-requestor's and the
association-acceptor's. A PDU seen on the wire is two events: the sender's local request or
response primitive that made it send the PDU (Evt1+Evt2 for an A-ASSOCIATE-RQ, Evt7, Evt8,
Evt9, Evt11, Evt14, Evt15) and the receiver's "PDU received" event (Evt6, Evt3, Evt4, Evt10,
Evt12, Evt13, Evt16). An event with no transition from the AE's state is a protocol error:
a conformant peer would answer with A-ABORT (AA-8), and the observer reports it.

The machine also holds what the negotiation fixed for the rest of the association: each
side's Maximum Length (PS3.8 D.1), the largest P-DATA-TF PDU its peer may send it.
"""

from __future__ import annotations

from .pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    ACCEPTOR,
    P_DATA_TF,
    REQUESTOR,
    ROLES,
)

STATES: dict[str, str] = {
    "Sta1": "Idle",
    "Sta2": "Transport connection open (awaiting A-ASSOCIATE-RQ PDU)",
    "Sta3": "Awaiting local A-ASSOCIATE response primitive",
    "Sta4": "Awaiting transport connection opening to complete",
    "Sta5": "Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU",
    "Sta6": "Association established and ready for data transfer",
    "Sta7": "Awaiting A-RELEASE-RP PDU",
    "Sta8": "Awaiting local A-RELEASE response primitive",
    "Sta9": "Release collision requestor side; awaiting A-RELEASE response primitive",
    "Sta10": "Release collision acceptor side; awaiting A-RELEASE-RP PDU",
    "Sta11": "Release collision requestor side; awaiting A-RELEASE-RP PDU",
    "Sta12": "Release collision acceptor side; awaiting A-RELEASE response primitive",
    "Sta13": "Awaiting transport connection close indication",
}

EVENTS: dict[str, str] = {
    "Evt1": "A-ASSOCIATE request (local user)",
    "Evt2": "Transport connection confirm",
    "Evt3": "A-ASSOCIATE-AC PDU received",
    "Evt4": "A-ASSOCIATE-RJ PDU received",
    "Evt5": "Transport connection indication",
    "Evt6": "A-ASSOCIATE-RQ PDU received",
    "Evt7": "A-ASSOCIATE response primitive (accept)",
    "Evt8": "A-ASSOCIATE response primitive (reject)",
    "Evt9": "P-DATA request primitive",
    "Evt10": "P-DATA-TF PDU received",
    "Evt11": "A-RELEASE request primitive",
    "Evt12": "A-RELEASE-RQ PDU received",
    "Evt13": "A-RELEASE-RP PDU received",
    "Evt14": "A-RELEASE response primitive",
    "Evt15": "A-ABORT request primitive",
    "Evt16": "A-ABORT PDU received",
    "Evt17": "Transport connection closed indication",
}

ACTIONS: dict[str, str] = {
    "AE-1": "Issue TRANSPORT CONNECT request primitive",
    "AE-2": "Send A-ASSOCIATE-RQ PDU",
    "AE-3": "Issue A-ASSOCIATE confirmation (accept) primitive",
    "AE-4": "Issue A-ASSOCIATE confirmation (reject) primitive and close transport connection",
    "AE-5": "Issue transport connection response primitive; start ARTIM timer",
    "AE-6": "Stop ARTIM timer and issue A-ASSOCIATE indication primitive",
    "AE-7": "Send A-ASSOCIATE-AC PDU",
    "AE-8": "Send A-ASSOCIATE-RJ PDU and start ARTIM timer",
    "DT-1": "Send P-DATA-TF PDU",
    "DT-2": "Send P-DATA indication primitive",
    "AR-1": "Send A-RELEASE-RQ PDU",
    "AR-2": "Issue A-RELEASE indication primitive",
    "AR-3": "Issue A-RELEASE confirmation primitive and close transport connection",
    "AR-4": "Issue A-RELEASE-RP PDU and start ARTIM timer",
    "AR-5": "Stop ARTIM timer",
    "AR-6": "Issue P-DATA indication",
    "AR-7": "Issue P-DATA-TF PDU",
    "AR-8": "Issue A-RELEASE indication (release collision)",
    "AR-9": "Send A-RELEASE-RP PDU",
    "AR-10": "Issue A-RELEASE confirmation primitive",
    "AA-1": "Send A-ABORT PDU (service-user source) and start ARTIM timer",
    "AA-2": "Stop ARTIM timer if running; close transport connection",
    "AA-3": "Issue A-ABORT or A-P-ABORT indication and close transport connection",
    "AA-4": "Issue A-P-ABORT indication primitive",
    "AA-6": "Ignore PDU",
    "AA-8": "Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication",
}

_ESTABLISHED_TO_RELEASED = ("Sta2", "Sta3", "Sta5", "Sta6", "Sta7", "Sta8", "Sta9", "Sta10",
                            "Sta11", "Sta12")

# (state, event) -> (action, next state). Collision states depend on the role: Sta7 + Evt12
# goes to Sta9 for the association-requestor and Sta10 for the acceptor (AR-8).
TRANSITIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("Sta1", "Evt1"): ("AE-1", "Sta4"),
    ("Sta4", "Evt2"): ("AE-2", "Sta5"),
    ("Sta1", "Evt5"): ("AE-5", "Sta2"),
    ("Sta2", "Evt6"): ("AE-6", "Sta3"),
    ("Sta3", "Evt7"): ("AE-7", "Sta6"),
    ("Sta3", "Evt8"): ("AE-8", "Sta13"),
    ("Sta5", "Evt3"): ("AE-3", "Sta6"),
    ("Sta5", "Evt4"): ("AE-4", "Sta1"),
    ("Sta6", "Evt9"): ("DT-1", "Sta6"),
    ("Sta6", "Evt10"): ("DT-2", "Sta6"),
    ("Sta6", "Evt11"): ("AR-1", "Sta7"),
    ("Sta6", "Evt12"): ("AR-2", "Sta8"),
    ("Sta7", "Evt10"): ("AR-6", "Sta7"),
    ("Sta7", "Evt12"): ("AR-8", "Sta9|Sta10"),
    ("Sta7", "Evt13"): ("AR-3", "Sta1"),
    ("Sta8", "Evt9"): ("AR-7", "Sta8"),
    ("Sta8", "Evt14"): ("AR-4", "Sta13"),
    ("Sta9", "Evt14"): ("AR-9", "Sta11"),
    ("Sta10", "Evt13"): ("AR-10", "Sta12"),
    ("Sta11", "Evt13"): ("AR-3", "Sta1"),
    ("Sta12", "Evt14"): ("AR-4", "Sta13"),
    ("Sta13", "Evt17"): ("AR-5", "Sta1"),
    ("Sta13", "Evt16"): ("AA-2", "Sta1"),
    ("Sta13", "Evt10"): ("AA-6", "Sta13"),
    ("Sta13", "Evt12"): ("AA-6", "Sta13"),
    ("Sta13", "Evt13"): ("AA-6", "Sta13"),
    **{(s, "Evt15"): ("AA-1", "Sta13") for s in _ESTABLISHED_TO_RELEASED},
    **{(s, "Evt16"): ("AA-3", "Sta1") for s in _ESTABLISHED_TO_RELEASED},
    **{(s, "Evt17"): ("AA-4", "Sta1") for s in _ESTABLISHED_TO_RELEASED},
}

# A PDU seen on the wire: (the sender's events, the receiver's event).
SENT: dict[int, tuple[str, ...]] = {
    A_ASSOCIATE_RQ: ("Evt1", "Evt2"),
    A_ASSOCIATE_AC: ("Evt7",),
    A_ASSOCIATE_RJ: ("Evt8",),
    P_DATA_TF: ("Evt9",),
    A_RELEASE_RQ: ("Evt11",),
    A_RELEASE_RP: ("Evt14",),
    A_ABORT: ("Evt15",),
}
RECEIVED: dict[int, str] = {
    A_ASSOCIATE_RQ: "Evt6",
    A_ASSOCIATE_AC: "Evt3",
    A_ASSOCIATE_RJ: "Evt4",
    P_DATA_TF: "Evt10",
    A_RELEASE_RQ: "Evt12",
    A_RELEASE_RP: "Evt13",
    A_ABORT: "Evt16",
}


class Step:
    """One event applied to one AE's machine. ``action`` is None when the table has no
    transition: a protocol error (the state is then left as it was)."""

    __slots__ = ("side", "event", "before", "action", "after")

    def __init__(self, side: int, event: str, before: str, action: str | None,
                 after: str) -> None:
        self.side, self.event, self.before, self.action, self.after = (side, event, before,
                                                                       action, after)

    @property
    def valid(self) -> bool:
        return self.action is not None

    def describe(self) -> str:
        """'requestor in Sta6 (...): Evt3 (...)' for a finding."""
        return (f"{ROLES[self.side]} in {self.before} ({STATES[self.before]}): {self.event} "
                f"({EVENTS[self.event]})")

    def __repr__(self) -> str:
        return f"Step({ROLES[self.side]}, {self.event}, {self.before}->{self.after}, " \
               f"{self.action})"


class AssociationStates:
    """Both AEs' machines of one association, driven by the PDUs seen on the wire.

    ``states[REQUESTOR]``, ``states[ACCEPTOR]``: current states. A connection picked up
    mid-stream starts with both unknown (None) and is taken as established (Sta6) at its first
    PDU unless that PDU is an A-ASSOCIATE-RQ. ``max_pdu[side]``: the Maximum Length ``side``
    announced (0: no limit), the largest P-DATA-TF PDU it accepts.
    """

    __slots__ = ("states", "max_pdu", "_crossing")

    def __init__(self, *, midstream: bool = False) -> None:
        self.states: list[str | None] = [None, None] if midstream else ["Sta1", "Sta2"]
        self.max_pdu = [0, 0]
        # per side: (state before, event) of the last PDU it received, until it sends
        self._crossing: list[tuple[str, str] | None] = [None, None]

    def pdu(self, sender: int, pdu_type: int) -> list[Step]:
        """Apply a PDU ``sender`` sent: the sender's events, then the receiver's.

        The tap sees the two directions interleaved, not as each AE lived them: a PDU may
        have crossed one coming the other way (both AEs sent A-RELEASE-RQ, the release
        collision of PS3.8 7.2.2; P-DATA still in flight when the peer's A-ABORT was sent).
        A send the table refuses is therefore tried once more in the order the sender lived
        it: its send first, then the PDU it had received but not yet read."""
        if self.states[REQUESTOR] is None:  # mid-stream: what did we walk in on?
            if pdu_type == A_ASSOCIATE_RQ:
                self.states = ["Sta1", "Sta2"]
            else:
                self.states = ["Sta6", "Sta6"]
        steps = self._send(sender, SENT[pdu_type])
        receiver = 1 - sender
        before = self.states[receiver]
        step = self._apply(receiver, RECEIVED[pdu_type])
        if step.valid and before is not None:
            self._crossing[receiver] = (before, step.event)
        steps.append(step)
        return steps

    def copy(self) -> AssociationStates:
        """The same machines, to try PDUs on without touching these."""
        c = AssociationStates()
        c.states = list(self.states)
        c.max_pdu = list(self.max_pdu)
        c._crossing = list(self._crossing)
        return c

    def _send(self, side: int, events: tuple[str, ...]) -> list[Step]:
        state = self.states[side]
        assert state is not None
        if self._valid(side, state, events):
            self._crossing[side] = None
            return [self._apply(side, e) for e in events]
        crossed = self._crossing[side]
        if crossed is not None and self._valid(side, crossed[0], events):
            self.states[side] = crossed[0]
            steps = [self._apply(side, e) for e in events]
            steps.append(self._apply(side, crossed[1]))  # the PDU it read after sending
            return steps  # more may have crossed it: _crossing stays until a plain send
        return [self._apply(side, e) for e in events]

    def _valid(self, side: int, state: str, events: tuple[str, ...]) -> bool:
        for e in events:
            nxt = self._next(state, e, side)
            if nxt is None:
                return False
            state = nxt
        return True

    @staticmethod
    def _next(state: str, event: str, side: int = REQUESTOR) -> str | None:
        t = TRANSITIONS.get((state, event))
        if t is None:
            return None
        after = t[1]
        return ("Sta9" if side == REQUESTOR else "Sta10") if after == "Sta9|Sta10" else after

    def transport_closed(self) -> list[Step]:
        """Evt17 for the AEs that did not close it themselves (FIN or RST seen): Sta1 is
        an AE that already closed the connection (AE-4, AR-3, AA-2...)."""
        return [self._apply(side, "Evt17") for side in (REQUESTOR, ACCEPTOR)
                if self.states[side] not in (None, "Sta1")]

    def _apply(self, side: int, event: str) -> Step:
        before = self.states[side]
        assert before is not None
        t = TRANSITIONS.get((before, event))
        if t is None:
            return Step(side, event, before, None, before)
        action, after = t
        if after == "Sta9|Sta10":
            after = "Sta9" if side == REQUESTOR else "Sta10"
        self.states[side] = after
        return Step(side, event, before, action, after)

    def established(self, side: int) -> bool:
        return self.states[side] in ("Sta6", "Sta7", "Sta8", "Sta9", "Sta10", "Sta11",
                                     "Sta12")
