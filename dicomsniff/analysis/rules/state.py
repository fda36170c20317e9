"""What the rules remember across associations, bounded whatever the capture holds.

Some conclusions need more than one association: the C-STOREs of a C-MOVE travel on another
association, an MPPS is created on one and completed on another, a server's usual response
time is learned from all of them. Everything here is kept in insertion-ordered maps capped at
``RuleConfig.max_tracked`` entries (the oldest forgotten first, and counted), so memory stays
bounded by the caps, never by the capture's size.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any, Generic, TypeVar

from ...model import Association, Transaction

K = TypeVar("K")
V = TypeVar("V")

ASSOC_CAP = 16_384  # associations remembered for the cross-association rules
# Status category -> index in a tally [success, warning, failure, unanswered].
TALLY_INDEX = {"Success": 0, "Warning": 1, "Failure": 2, "Cancel": 2}


class Bounded(OrderedDict, Generic[K, V]):  # type: ignore[type-arg]
    """An insertion-ordered dict that forgets its oldest entries beyond ``cap``."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap
        self.forgotten = 0
        self.seq = 0

    def append(self, value: V) -> None:
        """Keep ``value`` under the next sequence number (a bounded list)."""
        self.seq += 1
        self.put(self.seq, value)  # type: ignore[arg-type]

    def put(self, key: K, value: V) -> None:
        self[key] = value
        if len(self) > self.cap:
            self.popitem(last=False)
            self.forgotten += 1


class AssocMeta:
    """The little that cross-association rules need about an association."""

    __slots__ = ("id", "calling_ae", "called_ae", "client", "server", "start", "first_frame",
                 "stores", "store_times", "lost")

    def __init__(self, aid: int, calling_ae: str | None, called_ae: str | None, client: str,
                 server: str, start: float | None, first_frame: int | None) -> None:
        self.id, self.calling_ae, self.called_ae = aid, calling_ae, called_ae
        self.client, self.server, self.start, self.first_frame = (client, server, start,
                                                                  first_frame)
        # C-STOREs it carried: (move originator AE, move originator message ID) -> tally
        # [success, warning, failure, unanswered]; (None, None): no originator named.
        self.stores: dict[tuple[str | None, int | None], list[int]] = {}
        self.store_times: list[float] = []  # first and last C-STORE request
        self.lost = False  # the capture lost bytes of it (TCP-GAP): its tallies are short

    @property
    def client_ip(self) -> str:
        return self.client.rsplit(":", 1)[0]

    @property
    def server_ip(self) -> str:
        return self.server.rsplit(":", 1)[0]


class ServerMemory:
    """What one SCP address accepted in the capture: the basis for 'it likely supports'."""

    __slots__ = ("abstract_syntaxes", "transfer_syntaxes", "called_aes")

    def __init__(self) -> None:
        self.abstract_syntaxes: set[str] = set()
        self.transfer_syntaxes: set[str] = set()
        self.called_aes: set[str] = set()  # called AE titles it accepted


class Refused:
    """TCP connection attempts answered by a reset before any SYN-ACK."""

    __slots__ = ("client", "server", "frames", "first_ts", "explained")

    def __init__(self, client: str, server: str, frames: list[int], first_ts: float) -> None:
        self.client, self.server, self.frames, self.first_ts = client, server, frames, first_ts
        self.explained = False  # already cited by a C-MOVE finding


class Reservoir:
    """A bounded, deterministic sample of latencies: enough for a median on any capture."""

    __slots__ = ("values", "count", "cap")

    def __init__(self, cap: int = 2048) -> None:
        self.values: list[float] = []
        self.count = 0
        self.cap = cap

    def add(self, v: float) -> None:
        self.count += 1
        if len(self.values) < self.cap:
            self.values.append(v)
        else:  # deterministic stand-in for random replacement (Knuth's multiplicative hash)
            slot = ((self.count * 2654435761) & 0xFFFFFFFF) % self.count
            if slot < self.cap:
                self.values[slot] = v

    def median(self) -> float | None:
        if not self.values:
            return None
        s = sorted(self.values)
        return s[len(s) // 2]


class CaptureState:
    """Capture-wide memory of the rules, fed by the analyzer's hooks as associations go by."""

    def __init__(self, max_tracked: int) -> None:
        cap = max_tracked
        # Associations are the one memory that grows with every association of a capture (80,000
        # short ones would be 60 MB at the general cap): the sub-associations of a C-MOVE come
        # within seconds of it, so the last ASSOC_CAP are enough (docs/limits.md).
        self.assocs: Bounded[int, AssocMeta] = Bounded(min(cap, ASSOC_CAP))
        self.servers: Bounded[str, ServerMemory] = Bounded(cap)
        self.instances: Bounded[tuple[str, str], tuple[int, int | None, str | None]] = Bounded(
            cap)
        self.latency: Bounded[tuple[str, str], Reservoir] = Bounded(max(64, cap // 100))
        self.unjudged: list[tuple[tuple[str, str], float, int, Transaction]] = []
        self.mpps: Bounded[str, dict[str, Any]] = Bounded(cap)
        self.commit_requests: Bounded[int, dict[str, Any]] = Bounded(cap)
        self.commit_reports: Bounded[int, dict[str, Any]] = Bounded(cap)
        self.refused: Bounded[tuple[str, str], Refused] = Bounded(cap)
        self.endpoints: Bounded[str, None] = Bounded(cap)  # addresses that spoke DICOM
        self.by_called: Bounded[str, deque[int]] = Bounded(cap)  # called AE -> recent ids
        self.dicom_ports: frozenset[int] = frozenset()  # well-known and --port ports
        self.cap = cap

    # -- hooks ------------------------------------------------------------------------------
    def on_start(self, a: Association) -> None:
        """Negotiation answered (A-ASSOCIATE-AC or -RJ): remember who talked to whom."""
        self.assocs.put(a.id, AssocMeta(a.id, a.calling_ae, a.called_ae, a.client, a.server,
                                        a.start, a.first_frame))
        self.endpoints.put(a.server, None)
        if a.called_ae:
            recent = self.by_called.get(a.called_ae)
            if recent is None:
                recent = deque(maxlen=256)
                self.by_called.put(a.called_ae, recent)
            recent.append(a.id)
        if a.outcome == "rejected":
            return
        mem = self.servers.get(a.server)
        if mem is None:
            mem = ServerMemory()
            self.servers.put(a.server, mem)
        if a.called_ae and len(mem.called_aes) < 64:
            mem.called_aes.add(a.called_ae)
        for c in a.contexts.values():
            if c.accepted and len(mem.abstract_syntaxes) < 1024:
                if c.abstract_syntax:
                    mem.abstract_syntaxes.add(c.abstract_syntax)
                if c.transfer_syntax:
                    mem.transfer_syntaxes.add(c.transfer_syntax)

    def on_transaction(self, t: Transaction) -> None:
        """A request got its final response (or never will): tally C-STOREs per association
        and Move Originator, for the C-MOVE sub-operation check."""
        if t.command != "C-STORE":
            return
        meta = self.assocs.get(t.association)
        if meta is None:
            return
        cmd = t.request_command or {}
        orig_ae = cmd.get("MoveOriginatorApplicationEntityTitle")
        orig_id = cmd.get("MoveOriginatorMessageID")
        key = (orig_ae if isinstance(orig_ae, str) else None,
               orig_id if isinstance(orig_id, int) else None)
        tally = meta.stores.get(key)
        if tally is None:
            tally = meta.stores[key] = [0, 0, 0, 0]
        tally[TALLY_INDEX.get(t.status_category or "", 3)] += 1
        if t.request_time is not None:
            if not meta.store_times:
                meta.store_times[:] = [t.request_time, t.request_time]
            else:
                meta.store_times[1] = max(meta.store_times[1], t.request_time)

    def refused_attempt(self, client: str, server: str, frame: int, ts: float) -> None:
        key = (client.rsplit(":", 1)[0], server)
        r = self.refused.get(key)
        if r is None:
            self.refused.put(key, Refused(client, server, [frame], ts))
        elif len(r.frames) < 100:
            r.frames.append(frame)

    def hosted_dicom(self, server: str) -> bool:
        """Did this address:port accept (or reject) an association in the capture?"""
        return server in self.endpoints
