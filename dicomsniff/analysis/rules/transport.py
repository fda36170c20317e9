"""Transport rules: what TCP says about an association (loss, stalls, refused connections).

The engine's fast path handles in-order data segments and bare ACKs of known connections
without decoding the TCP window, so zero windows are only seen on frames that take the slow
path (IPv6, VLAN-tagged, SLL and other link types, SYN/FIN/RST, out-of-order segments): a
missing TCP-ZERO-WINDOW finding on a plain IPv4 Ethernet capture proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from dissectors.ul.pdu import ROLES

from .base import AssocView, Hit, RuleConfig, check, code
from .state import CaptureState

SIDES = ROLES  # by side (dissectors/ul/pdu.py)

TCP_RETRANSMISSION = code(
    "TCP-RETRANSMISSION", "info", "RFC 9293 3.10.7",
    "TCP segments sent again: packet loss on the path (or a capture that saw them twice)")
TCP_ZERO_WINDOW = code(
    "TCP-ZERO-WINDOW", "warning", "RFC 9293 3.8.6.2",
    "a peer advertised a zero TCP receive window: it stopped reading (overloaded or stalled)")
TCP_REFUSED = code(
    "TCP-CONNECTION-REFUSED", "error", "PS3.8 9.1.1 / RFC 9293 3.5",
    "a TCP connection to a DICOM port was refused (SYN answered by RST): nothing listening")
code("TCP-GAP", "warning", None,
     "bytes missing from the capture (not from the peers): capture loss or a late start",
     origin="tracker")
code("TCP-OVERLAP-CONFLICT", "warning", None,
     "a retransmitted TCP segment carried different bytes than the first copy", "tracker")
code("TCP-RST-IGNORED", "warning", "RFC 5961 3.2",
     "a RST outside what the receiver expected: dropped or challenged, the association went on",
     "tracker")
code("TCP-SYN-IGNORED", "warning", "RFC 5961 4.2",
     "a SYN in the middle of a connection: challenged, the association went on", "tracker")
code("CAP-TCP-BUFFER", "warning", None,
     "out-of-order data beyond --max-tcp-buffer: the hole was declared a gap", "tracker")
code("CAP-OUTSTANDING", "warning", "PS3.7 D.3.3.3",
     "more requests waiting for responses at once than the cap per association: the rest were "
     "counted, not followed", "tracker")



class ConnFacts:
    """Transport facts of one connection that only the engine's slow path sees."""

    __slots__ = ("rst", "fin", "rst_ts", "fin_ts", "zero_windows", "zero_window_frames")

    def __init__(self) -> None:
        self.rst: tuple[int, int] | None = None  # (side, frame) of the first RST
        self.fin: tuple[int, int] | None = None  # (side, frame) of the first FIN
        self.rst_ts: float | None = None
        self.fin_ts: float | None = None
        self.zero_windows = [0, 0]
        self.zero_window_frames: list[int | None] = [None, None]


def first_end(facts: ConnFacts | None) -> tuple[str, int, int, float | None] | None:
    """The first FIN or RST of a connection: (``"FIN"``|``"RST"``, side, frame, time).

    A killed process's kernel sends FIN at once; the RST comes later, when the other side
    writes to the dead socket. Telling the story from the RST would move the moment the peer
    went away to whenever the other side next spoke."""
    if facts is None:
        return None
    ends = [(kind, who[0], who[1], ts) for kind, who, ts in
            (("FIN", facts.fin, facts.fin_ts), ("RST", facts.rst, facts.rst_ts)) if who]
    return min(ends, key=lambda e: e[2]) if ends else None


@check(TCP_RETRANSMISSION)
def retransmissions(v: AssocView) -> Iterator[Hit]:
    if v.tcp is None:
        return
    parts = [f"the {SIDES[s]} {d.retransmissions}" for s, d in enumerate(v.tcp)
             if d.retransmissions]
    if not parts:
        return
    total = sum(d.retransmissions for d in v.tcp)
    frames = sorted(f for d in v.tcp for f in getattr(d, "retransmission_frames", ()))
    yield Hit(TCP_RETRANSMISSION,
              f"{total} TCP segment(s) retransmitted ({' and '.join(parts)}): packets were lost "
              "between the peers, and each loss stalls the transfer for a retransmission "
              "timeout; check the network path (duplex mismatch, a congested link or "
              "firewall). Wireshark shows them with tcp.analysis.retransmission",
              frames[0] if frames else v.assoc.first_frame, frames[1:20],
              severity="warning" if total >= 10 else None)


@check(TCP_ZERO_WINDOW)
def zero_windows(v: AssocView) -> Iterator[Hit]:
    f = v.transport
    if f is None:
        return
    for s in (0, 1):
        if f.zero_windows[s]:
            ae = v.assoc.calling_ae if s == 0 else v.assoc.called_ae
            yield Hit(TCP_ZERO_WINDOW,
                      f"the {SIDES[s]} ({ae or '?'}) advertised a zero TCP receive window "
                      f"{f.zero_windows[s]} time(s), first at frame {f.zero_window_frames[s]}: "
                      "its application stopped reading from the connection, so the other side "
                      "had to wait; the receiving system was overloaded or stuck (disk, "
                      "database, CPU) - look at its log and load at that time",
                      f.zero_window_frames[s])


@check(TCP_REFUSED, phase="finish")
def refused_connections(state: CaptureState, config: RuleConfig) -> Iterator[Hit]:
    for r in state.refused.values():
        port = int(r.server.rsplit(":", 1)[1])
        known = state.hosted_dicom(r.server)
        if not (known or r.explained or port in state.dicom_ports):
            continue
        why = (" although DICOM associations to it were seen in this capture" if known
               else "")
        yield Hit(TCP_REFUSED,
                  f"{r.client.rsplit(':', 1)[0]} tried to open a TCP connection to {r.server} "
                  f"and was refused {len(r.frames)} time(s) (its SYN answered by RST), first at "
                  f"frame {r.frames[0]}{why}: nothing was listening on that port - the DICOM "
                  "application there was not running, or is configured on another port or "
                  "address", r.frames[0], r.frames[1:])
