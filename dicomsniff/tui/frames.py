"""Going back to the capture file: one connection's packets, a message's PDUs, a pcap export.

The model keeps frame numbers, never bytes. What the detail pane shows in hex and what the
pcap export writes is read again from the file: packets are matched to an association by its
TCP four-tuple within its frame range (from its SYN when the capture has it), so a port reused
by a later connection is not mixed in.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from dissectors.net import TCP_ACK, TCP_SYN, l3_offset, reverse_key, tcp_segment
from dissectors.tcp import TcpDirection
from dissectors.ul import events as ev
from dissectors.ul import pdu
from dissectors.ul.pdu import PDU_NAMES
from dissectors.ul.stream import ULStream

from ..model import Association
from ..sources.capwriter import PcapWriter
from ..sources.merge import open_frames

LOOKBEHIND = 256  # frames before an association's first data frame searched for its SYN
LOOKAHEAD = 64  # frames after its last one searched for the closing ACKs
MAX_PDU_BYTES = 1 << 16  # bytes kept of one PDU for the hex view
Check = Callable[[], None]  # raises to stop (a cancelled worker)


def _endpoint_bytes(endpoint: str) -> tuple[bytes, bytes]:
    host, _, port = endpoint.rpartition(":")
    addr = ipaddress.ip_address(host.strip("[]"))
    return addr.packed, struct.pack("!H", int(port))


def flow_key(client: str, server: str) -> bytes:
    """The flow key (as dissectors.net builds it) of the client -> server direction."""
    ca, cp = _endpoint_bytes(client)
    sa, sp = _endpoint_bytes(server)
    return ca + sa + cp + sp


@dataclass(slots=True)
class Packet:
    frame: int
    ts: float
    linktype: int
    data: bytes
    orig_len: int
    side: int  # 0 client -> server, 1 server -> client
    seq: int
    flags: int
    payload: tuple[int, int]  # start, end of the TCP payload in data


@dataclass
class _Window:
    assoc: Association
    keys: tuple[bytes, bytes]
    lo: int
    hi: int
    pre: list[Packet] = field(default_factory=list)  # since the last SYN before lo


def connection_packets(path: str, associations: Iterable[Association], *,
                       check: Check | None = None, until: int | None = None,
                       ) -> Iterator[tuple[Association, Packet]]:
    """Packets of the associations' TCP connections, in capture order.

    From the client's last SYN before the first data frame (when within ``LOOKBEHIND``) to
    the closing ACKs after the last frame; ``until`` stops early at that frame.
    """
    wins: dict[bytes, list[_Window]] = {}
    lo_all, hi_all = 1 << 62, 0
    for a in associations:
        if a.first_frame is None:
            continue
        k = flow_key(a.client, a.server)
        w = _Window(a, (k, reverse_key(k)), a.first_frame, (a.last_frame or a.first_frame))
        for key in w.keys:
            wins.setdefault(key, []).append(w)
        lo_all = min(lo_all, w.lo - LOOKBEHIND)
        hi_all = max(hi_all, w.hi + LOOKAHEAD)
    if not wins:
        return
    if until is not None:
        hi_all = min(hi_all, until)
    reader = open_frames(path)
    try:
        frame = 0
        for ts, linktype, buf, olen in reader:
            frame += 1
            if frame < lo_all:
                continue
            if frame > hi_all:
                break
            if check is not None and not frame & 0x3FFF:
                check()
            etype, off = l3_offset(linktype, buf)
            if off < 0:
                continue
            seg = tcp_segment(buf, etype, off)
            if seg is None or seg[0] not in wins:
                continue
            key, seq, _ack, flags, ps, pe, _wl, _win = seg
            for w in wins[key]:
                pkt = _in_window(w, key, frame, ts, linktype, buf, olen, seq, flags, ps, pe)
                if pkt is not None:
                    for p in pkt:
                        yield w.assoc, p
                    break
    finally:
        reader.close()


def _in_window(w: _Window, key: bytes, frame: int, ts: float, linktype: int, buf,
               olen: int, seq: int, flags: int, ps: int, pe: int) -> list[Packet] | None:
    side = 0 if key == w.keys[0] else 1
    if frame < w.lo - LOOKBEHIND or frame > w.hi + LOOKAHEAD:
        return None
    pkt = Packet(frame, ts, linktype, bytes(buf), olen, side, seq, flags, (ps, pe))
    if frame < w.lo:
        if side == 0 and flags & TCP_SYN and not flags & TCP_ACK:
            w.pre = [pkt]  # a new connection on this four-tuple starts here
        elif w.pre:
            w.pre.append(pkt)
        return []
    if frame > w.hi:
        if pe > ps or flags & TCP_SYN:
            return None  # data or a new connection: not ours any more
        return [pkt]
    if w.pre:
        pre, w.pre = w.pre, []
        return [*pre, pkt]
    return [pkt]


@dataclass
class RawPdu:
    side: int
    type: int
    length: int  # the PDU length field (the PDU is 6 bytes more)
    frames: list[int]
    data: bytes  # at most MAX_PDU_BYTES of it
    complete: bool = True

    @property
    def name(self) -> str:
        return PDU_NAMES.get(self.type, f"PDU type {self.type}")


# PDU events of the parser and the size of their PDU on the wire (header included). Fixed-size
# PDUs whose length field says otherwise come with a Malformed event: the walker stops there.
_SIZED = {ev.PDataTF: None, ev.AssociateRQ: None, ev.AssociateAC: None, ev.AssociateRJ: 10,
          ev.ReleaseRQ: 10, ev.ReleaseRP: 10, ev.Abort: 10}
_TYPE = {ev.PDataTF: pdu.P_DATA_TF, ev.AssociateRQ: pdu.A_ASSOCIATE_RQ,
         ev.AssociateAC: pdu.A_ASSOCIATE_AC, ev.AssociateRJ: pdu.A_ASSOCIATE_RJ,
         ev.ReleaseRQ: pdu.A_RELEASE_RQ, ev.ReleaseRP: pdu.A_RELEASE_RP, ev.Abort: pdu.A_ABORT}


class _PduWalker:
    """TCP sink that splits one direction into PDUs with the analysis' own parser (a
    :class:`~dissectors.ul.stream.ULStream` that reports every P-DATA-TF header), and keeps the
    bytes (up to ``MAX_PDU_BYTES`` each) of the PDUs touching frame ``target``.

    PDUs follow each other on the stream, so each one's offset is the sum of the sizes before
    it; the parser's events give type and size in stream order. Anything unusual (a malformed
    PDU, a resynchronisation, a gap) stops the walk: the bytes are then shown as captured."""

    def __init__(self, side: int, target: int) -> None:
        self.side = side
        self.target = target
        self.ul = ULStream(pdata_events=True)
        self.offset = 0  # stream bytes fed
        self.next_pdu = 0  # offset of the next PDU's header
        self.segments: list[tuple[int, int]] = []  # (offset, frame) of the bytes kept
        self.buf = bytearray()  # stream bytes from buf_at on
        self.buf_at = 0
        self.open: list[tuple[RawPdu, int]] = []  # PDUs not yet whole: (pdu, its offset)
        self.found: list[RawPdu] = []
        self.lost = False
        self.past = False  # a PDU wholly after the target was seen

    def feed(self, data, frame: int, ts: float) -> None:
        if self.lost:
            return
        self.segments.append((self.offset, frame))
        self.buf += data
        self.offset += len(data)
        ul = self.ul
        ul.feed(data, frame, ts)
        for e in ul.events:
            t = type(e)
            if t not in _SIZED:
                if t is ev.Malformed or t is ev.Resync or t is ev.StreamGap:
                    self.lost = True
                continue
            size = _SIZED[t] or 6 + e.length
            raw = RawPdu(self.side, _TYPE[t], size - 6, [], b"")
            self.open.append((raw, self.next_pdu))
            self.next_pdu += size
        ul.events = []
        self._settle()

    def _frames(self, start: int, end: int) -> list[int]:
        """Frames whose bytes fall in [start, end) of the stream."""
        out: list[int] = []
        segs = self.segments
        for k, (off, frame) in enumerate(segs):
            nxt = segs[k + 1][0] if k + 1 < len(segs) else self.offset
            if off < end and nxt > start and frame not in out:
                out.append(frame)
        return out

    def _settle(self, final: bool = False) -> None:
        """Hand out the PDUs now whole (or all, at the end); forget bytes no PDU needs."""
        still = []
        for raw, start in self.open:
            end = start + raw.length + 6
            if end > self.offset and not final:
                still.append((raw, start))
                continue
            raw.frames = self._frames(start, end)
            raw.complete = end <= self.offset
            if self.target in raw.frames:
                lo = start - self.buf_at
                raw.data = bytes(self.buf[lo:lo + min(raw.length + 6, MAX_PDU_BYTES)])
                self.found.append(raw)
            elif raw.frames and raw.frames[0] > self.target:
                self.past = True
        self.open = still
        keep = self.open[0][1] if self.open else self.next_pdu
        if keep > self.buf_at:  # bytes before the oldest open PDU are no longer needed
            del self.buf[:keep - self.buf_at]
            self.buf_at = keep
            segs = self.segments
            first = 0
            while first + 1 < len(segs) and segs[first + 1][0] <= keep:
                first += 1
            del segs[:first]

    def gap(self, missing: int, frame: int, ts: float) -> None:
        self.lost = True

    @property
    def done(self) -> bool:
        """Past the target: nothing later can touch it."""
        return self.lost or (self.past and not self.open) or (
            bool(self.found) and not self.open)

    def partial(self) -> list[RawPdu]:
        """The PDUs touching the target; one the capture cut short is marked incomplete."""
        self._settle(final=True)
        return self.found


def message_pdus(path: str, a: Association, side: int, frame: int,
                 check: Check | None = None) -> tuple[list[RawPdu], list[Packet]]:
    """The PDUs sent by ``side`` that have bytes in ``frame``, and that frame's packets.

    When the stream cannot be split into PDUs (a capture that starts inside the
    association, lost segments) the PDU list is empty and the packets still come back.
    """
    walker = _PduWalker(side, frame)
    tcp = TcpDirection(walker)
    if a.midstream:
        walker.lost = True
    hit: list[Packet] = []
    for _a, p in connection_packets(path, [a], check=check):
        if p.frame == frame:
            hit.append(p)
        if p.side != side:
            if p.frame > frame and walker.done:
                break
            continue
        if p.flags & TCP_SYN:
            tcp.syn(p.seq)
            continue
        if p.payload[1] > p.payload[0]:
            tcp.segment(p.seq, p.data[p.payload[0]:p.payload[1]], p.frame, p.ts)
        if p.frame > frame and (walker.done or p.frame > frame + 4096):
            break
    return walker.partial(), hit


def read_frame(path: str, number: int) -> tuple[float, int, bytes] | None:
    """Frame ``number`` (1-based) of the capture: time, link type, bytes."""
    reader = open_frames(path)
    try:
        for n, (ts, linktype, buf, _olen) in enumerate(reader, 1):
            if n == number:
                return ts, linktype, bytes(buf)
    finally:
        reader.close()
    return None


def hexdump(data: bytes, start: int = 0, limit: int = 1 << 16, per_line: int = 16) -> list[str]:
    """Classic hex dump lines: offset, ``per_line`` bytes in hex, the printable ones as text."""
    out = []
    view = data[:limit]
    half = per_line // 2 * 3 - 1
    width = per_line * 3
    for off in range(0, len(view), per_line):
        chunk = view[off:off + per_line]
        hx = " ".join(f"{b:02x}" for b in chunk)
        if len(chunk) > per_line // 2:
            hx = hx[:half] + " " + hx[half:]
        txt = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        out.append(f"{start + off:08x}  {hx:<{width}}  {txt}")
    if len(data) > limit:
        out.append(f"... {len(data) - limit} more bytes")
    return out


def export_pcap(path: str, associations: Iterable[Association], out_path: str,
                check: Check | None = None) -> tuple[int, int]:
    """Write the packets of the associations' connections to ``out_path`` (pcap).

    Returns (packets written, packets skipped because of another link type).
    """
    writer: PcapWriter | None = None
    skipped = 0
    seen: set[int] = set()
    with open(out_path, "wb") as out:
        for _a, p in connection_packets(path, associations, check=check):
            if p.frame in seen:
                continue
            seen.add(p.frame)
            if writer is None:
                writer = PcapWriter(out, p.linktype)
            if p.linktype != writer.linktype:
                skipped += 1
                continue
            writer.write(p.ts, p.data, p.orig_len)
        if writer is None:
            PcapWriter(out, 1)
    return (writer.count if writer else 0), skipped
