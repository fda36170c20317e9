"""What spans host pairs, computed after the shards are merged.

A shard (:mod:`.shard`) analyses the connections of some pairs of hosts. What DICOM ties
together across pairs needs every shard's associations: the C-MOVE <-> sub-association links
(:mod:`dicomsniff.analysis.moves`, a move to a third host), the rules that remember across
associations (checks registered with ``cross=True`` and every capture-end check: duplicate
instances, slow responses against the server's median, C-MOVE sub-operations, MPPS and
storage commitment across associations, what an SCP accepted elsewhere, refused connections),
and the study journey (:mod:`dicomsniff.analysis.journey`: worklist, modality, archive).

So a shard runs with ``RuleConfig.scope = "local"`` (those are off) and a :class:`Recorder`
writes down, in the order they happen and with the frame being read, what those consumers are
fed: an association started, a transaction ended, a data set the journey reads (or a
C-STORE response whose request came before the capture), an
association ended (the rules' view of it: transport facts and decoded data sets), a refused
connection attempt. Events are small; the associations themselves travel as before. After the
merge renumbered the associations (one process's ids), :func:`replay` feeds every shard's
events, in the order one process meets them (frame, then the shard's own order; at the end of
the capture, connections in the order they opened), to fresh consumers on the merged objects:
the links, findings and journey are those of one process (``tests/test_parallel.py``).

Used by ``--dask`` (:mod:`.cluster`) and by the one-machine workers (``-j N``) alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..analysis.journey.collect import JourneyPolicy
from ..model import Association, Finding, Transaction

__all__ = ["Recorder", "ShardEvents", "replay"]

_END = 1 << 62  # frame key of events at the end of the capture (connections closed by it)


class _Message:
    """What the journey reads of a message: its command and frame."""

    __slots__ = ("command", "frame")

    def __init__(self, command: dict[str, Any], frame: int | None) -> None:
        self.command, self.frame = command, frame


class _Header:
    """A C-STORE header as the journey reads it (``values``, ``error``)."""

    __slots__ = ("values", "error")

    def __init__(self, values: dict[str, Any], error: Any) -> None:
        self.values, self.error = values, error

    def __getstate__(self) -> tuple:
        return self.values, self.error

    def __setstate__(self, state: tuple) -> None:
        self.values, self.error = state


class _Small:
    """A small data set as the journey reads it (``buf``, ``partial``, ``size``)."""

    __slots__ = ("buf", "partial", "size")

    def __init__(self, buf: bytes | None, partial: bool, size: int) -> None:
        self.buf, self.partial, self.size = buf, partial, size

    def __getstate__(self) -> tuple:
        return self.buf, self.partial, self.size

    def __setstate__(self, state: tuple) -> None:
        self.buf, self.partial, self.size = state


class ShardEvents:
    """One shard's record: ``events`` as (frame, order, seq, kind, association id, payload),
    ids the shard's own."""

    __slots__ = ("events",)

    def __init__(self, events: list[tuple]) -> None:
        self.events = events

    def __getstate__(self) -> tuple:
        return (self.events,)

    def __setstate__(self, state: tuple) -> None:
        self.events = state[0]


class Recorder:
    """Attached to a shard's Analyzer (built with ``scope="local"``): records what the
    consumers across host pairs would have been fed. Wrap the shard's frames with
    :meth:`frames` so each event knows the frame being read."""

    def __init__(self, analyzer: Any) -> None:
        self.analyzer = analyzer
        self.frame = 0
        self.ended = False
        self.seq = 0
        self.events: list[tuple] = []
        analyzer.on_association_start.append(self._started)
        analyzer.on_transaction.append(self._transaction)
        analyzer.rules.on_view.append(self._closed)
        analyzer.collect(JourneyPolicy(self._data, self._cut))

    def frames(self, packets: Iterable) -> Iterator:
        for pkt in packets:
            self.frame += 1
            yield pkt
        self.ended = True

    def _add(self, a: Association, kind: str, payload: Any) -> None:
        self.seq += 1
        if self.ended:  # closed by the end of the capture: in the order the connections opened
            self.events.append((_END, a.first_frame or 0, self.seq, kind, a.id, payload))
        else:
            self.events.append((self.frame, 0, self.seq, kind, a.id, payload))

    def _started(self, a: Association) -> None:
        self._add(a, "start", None)

    def _transaction(self, a: Association, t: Transaction) -> None:
        self._add(a, "txn", t.id)

    def _closed(self, view: Any) -> None:
        self._add(view.assoc, "end", (view.ended_by, view.transport, view.datasets))

    def _cut(self, a: Association, m: Any) -> None:
        self._add(a, "cut", (dict(m.command), getattr(m, "frame", None)))

    def _data(self, a: Association, side: int, m: Any, got: Any) -> None:
        cmd = (dict(m.command), getattr(m, "frame", None))
        if isinstance(got, tuple):  # (SmallSink, transfer syntax)
            sink, ts = got
            value: Any = (_Small(None if sink.buf is None else bytes(sink.buf), sink.partial,
                                 sink.size), ts)
        else:  # a HeaderReader
            value = _Header(dict(got.values), got.error)
        self._add(a, "data", (side, cmd, value))

    def result(self) -> ShardEvents:
        """The events, with the refused connection attempts (engine facts the rules keep)."""
        events = list(self.events)
        for r in self.analyzer.rules.state.refused.values():
            events.append((r.frames[0], 0, 0, "refused", 0,
                           (r.client, r.server, list(r.frames), r.first_ts)))
        return ShardEvents(events)


def replay(shards: Sequence[tuple[dict[int, Association], dict[int, Transaction], ShardEvents]],
           *, ports: Iterable[int] = (), rules: Any = None,
           studies: list[dict[str, Any]] | None = None) -> list[Finding]:
    """Feed the shards' events, merged into one process's order, to fresh consumers across
    host pairs working on the merged associations (``shards``: each shard's associations and
    transactions by the shard's own ids, already renumbered). Sets the C-MOVE links; adds the
    rules' and the journey's findings to their associations; returns every finding raised
    (those of no association are capture-level)."""
    from ..analysis.dicom import WELL_KNOWN_PORTS
    from ..analysis.journey import Journey
    from ..analysis.moves import MoveLinker
    from ..analysis.rules import RuleConfig, RuleSet
    from ..analysis.rules.base import AssocView
    from ..analysis.rules.state import Refused

    config = (rules or RuleConfig())._replace(scope="cross")
    found: list[Finding] = []
    ruleset = RuleSet(config, emit=found.append,
                      dicom_ports=WELL_KNOWN_PORTS | frozenset(ports))
    journey = Journey(found.append, max_tracked=config.max_tracked, disabled=config.disabled)
    if studies is not None:  # each study's record as it is released (the store's studies)
        journey.on_study.append(lambda st: studies.append(st.record()))
    done: set[int] = set()  # transactions whose end was replayed (id())
    now = [0]  # the frame being replayed

    def known(a: Association) -> list[Transaction]:
        txns = a.transactions
        n = len(txns)
        while n and (txns[n - 1].request_frame or 0) > now[0]:
            n -= 1
        return txns if n == len(txns) else txns[:n]

    linker = MoveLinker(known=known, done=lambda t: id(t) in done)
    merged: list[tuple] = []
    for k, (assocs, txns, rec) in enumerate(shards):
        for a in assocs.values():  # links come from the replay alone
            a.move_transaction = None
            for t in a.transactions:
                t.sub_associations = []
        for ev in rec.events:
            frame, order, seq, kind, aid, payload = ev
            merged.append((frame, order, k, seq, kind, assocs.get(aid), txns, payload))
    merged.sort(key=lambda e: e[:4])
    for frame, _order, _k, _seq, kind, a, txns, payload in merged:
        now[0] = frame
        if kind == "refused":
            client, server, frames, ts = payload
            r = Refused(client, server, frames, ts)
            ruleset.state.refused.put((client.rsplit(":", 1)[0], server), r)
            continue
        if a is None:
            continue
        if kind == "start":
            ruleset.association_started(a)
            linker.started(a)
        elif kind == "txn":
            t = txns.get(payload)
            if t is not None:
                done.add(id(t))
                ruleset.transaction(a, t)
                journey.on_transaction(a, t)
        elif kind == "data":
            side, (cmd, at), value = payload
            journey.on_data(a, side, _Message(cmd, at), value)
        elif kind == "cut":
            cmd, at = payload
            journey.on_cut(a, _Message(cmd, at))
        elif kind == "end":
            ended_by, transport, datasets = payload
            counts: dict[str, int] = {}
            for f in a.findings:
                counts[f.code] = counts.get(f.code, 0) + 1
            ruleset.run_association(AssocView(a, config, ruleset.state, ended_by, transport,
                                              datasets, None), counts)
            linker.ended(a)
            journey.on_association(a)
    journey.finish()
    ruleset.finish()
    return found
