"""TCP connections of a capture to HTTP: detection by a request line, reassembly, hand-off.

A connection is HTTP when the first bytes its client sends are an HTTP/1.x request line
(:func:`dissectors.http.stream.looks_like_request`), whatever the port. Each direction is
reassembled by :class:`dissectors.tcp.TcpDirection` into the HTTP parser of that direction.
Connections whose start the capture missed are picked up at the first request line a side
sends (that side is the client). Everything else costs one dict lookup per packet after one
look. Memory: open connections (``max_streams``, oldest closed first), their reassembly
buffers (``max_tcp_buffer``) and the HTTP parsers' own caps.

HTTPS: with a key log (``keylog``), a connection whose client starts with a TLS handshake
record goes to :class:`dissectors.tls.connection.TLSConnection`, whose decrypted application
data is judged the same way (a request line) and handed to the HTTP reader.
"""

from __future__ import annotations

from dissectors.http.stream import looks_like_request
from dissectors.net import (
    ETH_IPV4,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    format_endpoint,
    l3_offset,
    reverse_key,
    tcp_segment,
)
from dissectors.tcp import DEFAULT_MAX_BUFFER, TcpDirection

from .analyzer import DicomwebConnection
from .session import DicomwebAnalyzer

_NOT_HTTP = object()
DETECT_BYTES = 8200  # a request line longer than this is not taken for one
MAX_INNER_HELD = 256 * 1024  # decrypted server bytes held until the client's show HTTP


class _Inner:
    """Decrypted application data of one TLS direction, until it shows HTTP or not."""

    __slots__ = ("flow", "role", "buf", "sink")

    def __init__(self, flow: _Flow, role: int) -> None:
        self.flow = flow
        self.role = role  # 0 client, 1 server
        self.buf = bytearray()
        self.sink = None  # the HTTP direction once decided; False: not HTTP

    def feed(self, data, frame: int, ts: float) -> None:
        if self.sink is not None:
            if self.sink is not False:
                self.sink.feed(data, frame, ts)
            return
        self.buf += data
        if self.role == 1:
            if len(self.buf) > MAX_INNER_HELD:
                self.sink, self.buf = False, bytearray()
            return
        verdict = looks_like_request(bytes(self.buf[:DETECT_BYTES]))
        if verdict is None:
            return
        other = self.flow.inner[1]  # type: ignore[index]
        if not verdict:
            self.sink = other.sink = False
            self.buf = other.buf = bytearray()
            return
        http = self.flow.open_http(0, frame, ts).http
        self.sink, other.sink = http.directions[0], http.directions[1]
        held, self.buf = bytes(self.buf), bytearray()
        self.sink.feed(held, frame, ts)
        if other.buf:
            held, other.buf = bytes(other.buf), bytearray()
            other.sink.feed(held, frame, ts)

    def gap(self, n: int, frame: int, ts: float) -> None:
        if self.sink:
            self.sink.gap(n, frame, ts)

    def close(self, frame: int, ts: float) -> None:
        if self.sink:
            self.sink.close(frame, ts)


class _Detector:
    """First bytes of one direction, until they are or are not a request line."""

    __slots__ = ("flow", "side", "buf")

    def __init__(self, flow: _Flow, side: int) -> None:
        self.flow = flow
        self.side = side
        self.buf = bytearray()

    def feed(self, data, frame: int, ts: float) -> None:
        flow = self.flow
        if flow.tls is not None:
            flow.tls.sides[flow.role(self.side)].feed(data, frame, ts)
            return
        if flow.http is not None:
            flow.http.http.directions[flow.role(self.side)].feed(data, frame, ts)
            return
        self.buf += data
        if (flow.owner.keylog is not None and self.buf[:1] == b"\x16"
                and self.buf[1:2] in (b"", b"\x03")):
            if len(self.buf) < 3:
                return
            flow.start_tls(self.side, bytes(self.buf), frame, ts)
            self.buf = bytearray()
            return
        verdict = looks_like_request(bytes(self.buf[:DETECT_BYTES]))
        if verdict is None:
            return
        self.flow.decide(self.side, verdict, bytes(self.buf), frame, ts)
        self.buf = bytearray()

    def gap(self, n: int, frame: int, ts: float) -> None:
        flow = self.flow
        if flow.tls is not None:
            flow.tls.sides[flow.role(self.side)].gap(n, frame, ts)
        elif flow.http is not None:
            flow.http.http.directions[flow.role(self.side)].gap(n, frame, ts)
        else:
            self.buf = bytearray()  # start again after the hole


class _Flow:
    """One TCP connection seen by the HTTP dispatcher."""

    __slots__ = ("owner", "keys", "tcp", "http", "client_side", "fin", "last_frame",
                 "last_ts", "first_frame", "first_ts", "looked", "tls", "inner")

    def __init__(self, owner: HttpFlows, key: bytes, frame: int, ts: float) -> None:
        self.owner = owner
        self.keys = (key, reverse_key(key))  # side 0 is the direction of the first packet
        lim = owner.max_tcp_buffer
        self.tcp = (TcpDirection(_Detector(self, 0), lim), TcpDirection(_Detector(self, 1), lim))
        self.http: DicomwebConnection | None = None
        self.client_side: int | None = None
        self.fin = [False, False]
        self.first_frame, self.first_ts = frame, ts
        self.last_frame, self.last_ts = frame, ts
        self.looked = [0, 0]
        self.tls = None  # a TLSConnection when the client started a handshake (with keys)
        self.inner: tuple[_Inner, _Inner] | None = None

    def role(self, side: int) -> int:
        """0 for the client's direction, 1 for the server's."""
        return 0 if side == self.client_side else 1

    def decide(self, side: int, is_request: bool, head: bytes, frame: int, ts: float) -> None:
        if not is_request:
            self.looked[side] = 1
            if all(self.looked) or self.client_side is not None:
                self.owner.drop(self)
            return
        self.client_side = side
        self.open_http(side, frame, ts)
        self.http.http.directions[0].feed(head, frame, ts)  # type: ignore[union-attr]
        other = self.tcp[1 - side].sink
        if isinstance(other, _Detector) and other.buf:  # the server spoke first (reordering)
            held, other.buf = bytes(other.buf), bytearray()
            self.http.http.directions[1].feed(held, frame, ts)


    def open_http(self, side: int, frame: int, ts: float) -> DicomwebConnection:
        side = self.client_side if self.client_side is not None else side
        client = format_endpoint(self.keys[side], 0)
        server = format_endpoint(self.keys[side], 1)
        self.http = self.owner.web.open_connection(client, server, self.first_frame,
                                                   self.first_ts)
        return self.http

    def start_tls(self, side: int, head: bytes, frame: int, ts: float) -> None:
        """The client began a TLS handshake and there is a key log: read HTTP inside."""
        from dissectors.tls.connection import TLSConnection

        self.client_side = side
        self.inner = (_Inner(self, 0), _Inner(self, 1))
        self.tls = TLSConnection(self.owner.keylog, inner=lambda _conn: self.inner)
        self.tls.sides[0].feed(head, frame, ts)
        other = self.tcp[1 - side].sink
        if isinstance(other, _Detector) and other.buf:
            held, other.buf = bytes(other.buf), bytearray()
            self.tls.sides[1].feed(held, frame, ts)

    def end_direction(self, side: int, frame: int, ts: float) -> None:
        """FIN: this direction's bytes are over."""
        if self.tls is not None and self.inner is not None:
            self.inner[self.role(side)].close(frame, ts)
        elif self.http is not None:
            self.http.http.directions[self.role(side)].close(frame, ts)


class HttpFlows:
    """Feed frames; HTTP connections go to a :class:`DicomwebAnalyzer`."""

    def __init__(self, web: DicomwebAnalyzer | None = None, *, max_streams: int = 10_000,
                 max_tcp_buffer: int = DEFAULT_MAX_BUFFER, keylog=None) -> None:
        self.web = web if web is not None else DicomwebAnalyzer()
        self.keylog = keylog  # dissectors.tls.keylog.KeyLog: read HTTP inside TLS
        self.max_streams = max_streams
        self.max_tcp_buffer = max_tcp_buffer
        self.flows: dict[bytes, object] = {}
        self.open: dict[_Flow, None] = {}
        self.frames = 0

    def consume(self, packets, frame: int = 0) -> int:
        """``(ts, linktype, data, orig_len)`` tuples, as CaptureReader yields them."""
        for ts, linktype, buf, _olen in packets:
            frame += 1
            self.feed_frame(frame, ts, linktype, buf)
        self.frames = frame
        return frame

    def feed_frame(self, frame: int, ts: float, linktype: int, buf) -> None:
        if linktype == 1 and len(buf) > 14 and buf[12] == 8 and buf[13] == 0:
            etype, off = ETH_IPV4, 14
        else:
            etype, off = l3_offset(linktype, buf)
            if off < 0:
                return
        seg = tcp_segment(buf, etype, off)
        if seg is None:
            return
        key, seq, _ack, flags, ps, pe, wire_len, _window = seg
        entry = self.flows.get(key)
        if entry is _NOT_HTTP:
            if not flags & TCP_SYN:
                return
            self._forget(key)
            entry = None
        if entry is None:
            if pe <= ps and not flags & TCP_SYN:
                return
            flow = _Flow(self, key, frame, ts)
            self.flows[flow.keys[0]] = (flow, 0)
            self.flows[flow.keys[1]] = (flow, 1)
            self.open[flow] = None
            if len(self.open) > self.max_streams:
                self.close(next(iter(self.open)), "evicted")
            entry = self.flows[key]
        flow, side = entry  # type: ignore[misc]
        flow.last_frame, flow.last_ts = frame, ts
        d = flow.tcp[side]
        if flags & TCP_SYN:
            d.syn(seq)
            return
        if pe > ps or wire_len:
            d.segment(seq, buf[ps:pe], frame, ts)
        if flags & (TCP_FIN | TCP_RST):
            flow.fin[side] = True
            if flow.client_side is not None and not d.held and flags & TCP_FIN:
                # the end of this direction's bytes: a body read until close ends here
                flow.end_direction(side, frame, ts)
            if flags & TCP_RST or all(flow.fin):
                self.close(flow, "rst" if flags & TCP_RST else "fin", frame, ts)

    def drop(self, flow: _Flow) -> None:
        """Not HTTP: remembered as such until a new SYN reuses the addresses."""
        self.open.pop(flow, None)
        for k in flow.keys:
            self.flows[k] = _NOT_HTTP
        flow.tcp = ()  # type: ignore[assignment]

    def _forget(self, key: bytes) -> None:
        self.flows.pop(key, None)
        self.flows.pop(reverse_key(key), None)

    def close(self, flow: _Flow, how: str, frame: int | None = None,
              ts: float | None = None) -> None:
        if flow not in self.open:
            return
        del self.open[flow]
        frame = flow.last_frame if frame is None else frame
        ts = flow.last_ts if ts is None else ts
        for k in flow.keys:
            if self.flows.get(k, (None,))[0] is flow:  # type: ignore[index]
                del self.flows[k]
        for d in flow.tcp:
            d.flush(frame, ts)
        if flow.http is not None:
            self.web.close_connection(flow.http, how, frame, ts)

    def finish(self) -> None:
        """End of capture: every open connection ends as it is."""
        for flow in list(self.open):
            self.close(flow, "eof")
