"""The protocol dispatch seam: which analyzer a TCP connection (or a decrypted stream) goes to.

Zeek's idea of an analyzer tree, kept small. Each application protocol registers one
:class:`AppProtocol` in :data:`PROTOCOLS`: how to recognise its first bytes (``detect``), how
to recognise a connection picked up mid-stream (``pickup``) and how to build its per-connection
:class:`FlowAnalyzer` (``create``). The engine (:mod:`.engine`) and the flow table
(:mod:`.flows`) know nothing of the protocols beyond this table: adding one means writing a
FlowAnalyzer and calling :func:`register`, not touching the packet loop.

A FlowAnalyzer gets the two in-order byte streams of its connection, side 0 being the client
(the side that opened the TCP connection, or sent the first request). The engine's TCP
reassemblers deliver straight to its ``sinks`` (objects with ``feed(data, frame, ts)`` and
``gap(missing, frame, ts)``), then call :meth:`FlowAnalyzer.pump`. A parent analyzer delivers
with :meth:`FlowAnalyzer.feed` / :meth:`FlowAnalyzer.gap` instead: a TLS analyzer decrypts the
records and hands the plaintext of each side to an inner analyzer it chose with
:func:`choose` (DICOM or HTTP inside TLS), so the same table serves both levels.

The host (the :class:`~dicomsniff.analysis.engine.Analyzer`) gives each analyzer what it may
use: ``limits``, ``emit`` (a finding), ``next_association_id``, the hooks and the data set
collection policies (see :mod:`.collect`). See docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class FlowAnalyzer:
    """One connection's application-layer analyzer (base class; every method may be kept).

    ``sinks``: what the TCP reassemblers of sides 0 and 1 deliver to. ``verdict``: True once
    the bytes proved the protocol, None while a mid-stream pickup is still a guess, False when
    the guess proved wrong (the engine then forgets the connection).
    """

    __slots__ = ()
    protocol = ""
    sinks: tuple[Any, Any]
    verdict: bool | None = True

    def pump(self, side: int) -> None:
        """Bytes were delivered to ``sinks[side]``: hand out what they completed."""

    def feed(self, side: int, data: bytes | memoryview, frame: int, ts: float) -> None:
        """In-order bytes of ``side`` from a parent analyzer (e.g. TLS plaintext)."""
        self.sinks[side].feed(data, frame, ts)
        self.pump(side)

    def gap(self, side: int, missing: int, frame: int, ts: float) -> None:
        """``missing`` bytes of ``side`` never reached the capture (or could not be
        decrypted)."""
        self.sinks[side].gap(missing, frame, ts)
        self.pump(side)

    def judge(self) -> bool | None:
        """A mid-stream guess: True (it is this protocol), False (it is not) or None (not
        sure yet). Called by the engine after bytes arrive while ``verdict`` is None."""
        return self.verdict

    def close(self, how: str, frame: int, ts: float) -> None:
        """The connection ended: ``how`` is "fin", "rst" or "eof" (end of capture or evicted).
        Everything still pending is handed out."""


# detect(head, side) -> True (mine), False (not mine), None (need more bytes)
Detect = Callable[[bytes, int], "bool | None"]


class AppProtocol:
    """An application protocol in the dispatch table.

    ``detect(head, side)``: the first bytes ``side`` sent on a connection whose start was
    captured (side 0 opened it); True, False, or None for "show me more" (at most
    ``detect_bytes``; at a gap or at that size None counts as False).
    ``pickup(head, ports, forced_ports)``: for a connection already running when the capture
    started, from the first payload seen (``ports``: its sender's and receiver's): 0 if that
    sender is the client, 1 if it is the server, None if this is not the protocol
    (``forced_ports``: those given with --port). A protocol only recognised at a start leaves
    it None. ``create(host, conn, side, midstream, frame, ts)`` builds the FlowAnalyzer
    (``side``: the side whose bytes decided; ``conn.keys[0]`` is the client's flow key).
    ``ports``: well-known ports (a hint).
    ``priority``: lower is asked first by ``detect``; ``pickup_priority`` the same for
    ``pickup`` (DICOM's mid-stream guess is the catch-all, asked last: 100).
    """

    __slots__ = ("name", "detect", "pickup", "create", "ports", "priority", "pickup_priority",
                 "detect_bytes")

    def __init__(self, name: str, detect: Detect,
                 create: Callable[..., FlowAnalyzer], *,
                 pickup: Callable[[bytes, tuple[int, int], frozenset[int]], int | None]
                 | None = None,
                 ports: frozenset[int] = frozenset(), priority: int = 50,
                 pickup_priority: int | None = None, detect_bytes: int = 8192) -> None:
        self.name, self.detect, self.create, self.pickup = name, detect, create, pickup
        self.ports, self.priority, self.detect_bytes = ports, priority, detect_bytes
        self.pickup_priority = priority if pickup_priority is None else pickup_priority

    def __repr__(self) -> str:
        return f"AppProtocol({self.name!r}, priority={self.priority})"


PROTOCOLS: list[AppProtocol] = []


def register(protocol: AppProtocol) -> AppProtocol:
    """Add (or replace, by name) a protocol in the dispatch table."""
    PROTOCOLS[:] = [p for p in PROTOCOLS if p.name != protocol.name]
    PROTOCOLS.append(protocol)
    PROTOCOLS.sort(key=lambda p: p.priority)
    return protocol


def protocol(name: str) -> AppProtocol | None:
    for p in PROTOCOLS:
        if p.name == name:
            return p
    return None


def choose(head: bytes, side: int, final: bool = False) -> AppProtocol | None | bool:
    """The protocol whose ``detect`` claims ``head``: an AppProtocol; None while one still
    needs more bytes (never when ``final``); False when none does."""
    waiting = False
    for p in PROTOCOLS:
        v = p.detect(head, side)
        if v:
            return p
        if v is None and not final and len(head) < p.detect_bytes:
            waiting = True
    return None if waiting else False


def choose_pickup(head: bytes, ports: tuple[int, int],
                  forced_ports: frozenset[int] = frozenset()) -> tuple[AppProtocol, int] | None:
    """The protocol that takes a connection picked up mid-stream and the side (0: client) of
    the packet that showed ``head``, if any."""
    for p in sorted(PROTOCOLS, key=lambda p: p.pickup_priority):
        if p.pickup is not None:
            side = p.pickup(head, ports, forced_ports)
            if side is not None:
                return p, side
    return None


def well_known_ports() -> frozenset[int]:
    out: frozenset[int] = frozenset()
    for p in PROTOCOLS:
        out |= p.ports
    return out
