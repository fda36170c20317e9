"""HTTP/2 (RFC 9113) on one captured connection, read passively with the h2 library.

h2 is a sans-IO state machine for one endpoint, like h11. A passive observer is neither, so
each direction gets the h2 endpoint that would receive it: the client's bytes go to an h2
*server* (it reads the connection preface, SETTINGS and requests), the server's bytes to an
h2 *client*. The client endpoint must have opened a stream before a response may arrive on
it, so every request the server endpoint reads is mirrored into the client endpoint
(``send_headers`` with the request's own header block; its end with ``end_stream``); what the
endpoints want to send back (SETTINGS ACKs, WINDOW_UPDATEs) is thrown away. Received data is
acknowledged at once, and both endpoints announce the largest windows and frame size, so flow
control never refuses what the real peers agreed on. HPACK state is h2's: a connection must
be read from its first frame (prior knowledge from the preface, h2c from the 101).

Messages go to the same :class:`~.stream.HttpHandler` as HTTP/1.1: a request and its response
share a stream, ``http_version`` is ``"2"``, a request whose HEADERS frame did not end the
stream is marked ``chunked`` (a body of unannounced length follows). Memory: h2 holds at most
one frame per direction (at most ``MAX_FRAME``, 1 MiB: a larger frame is a problem, though
RFC 9113 allows 16 MiB to a receiver that asks for it; peers send 16 KiB) plus the header
tables and ``max_held`` server bytes waiting for their request; streams
waiting for their response are capped (``max_streams``, oldest given up). Server push and
trailers are not reported; a protocol error ends the reading of the connection (a problem,
the streams still open unanswered).
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from .message import CLIENT, SERVER, HttpMessage, wire_text

MAX_WINDOW = 2**31 - 1
MAX_FRAME = 1 << 20  # accepted frame size: what one direction may hold (peers use 16 KiB)
DEFAULT_MAX_STREAMS = 1024
DEFAULT_MAX_HELD = 256 * 1024  # server bytes held while their stream's request is not read
_S = h2.settings.SettingCodes


def _endpoint(client_side: bool) -> h2.connection.H2Connection:
    cfg = h2.config.H2Configuration(client_side=client_side, header_encoding=None,
                                    validate_inbound_headers=False,
                                    normalize_inbound_headers=False,
                                    validate_outbound_headers=False,
                                    normalize_outbound_headers=False)
    c = h2.connection.H2Connection(cfg)
    c.local_settings = h2.settings.Settings(client=client_side, initial_values={
        _S.INITIAL_WINDOW_SIZE: MAX_WINDOW, _S.MAX_FRAME_SIZE: MAX_FRAME,
        _S.MAX_CONCURRENT_STREAMS: 2**31 - 1,
        **({_S.ENABLE_PUSH: 1} if client_side else {})})
    return c


def _split(headers: Any) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Pseudo-header fields (':method'...) and the others, as escaped text."""
    pseudo: dict[str, str] = {}
    regular: list[tuple[str, str]] = []
    for name, value in headers:
        n = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        v = value if isinstance(value, bytes) else str(value).encode("latin-1", "replace")
        if n.startswith(":"):
            pseudo.setdefault(n, wire_text(v))
        else:
            regular.append((wire_text(n.lower().encode("latin-1", "replace")), wire_text(v)))
    return pseudo, regular


class _Stream:
    __slots__ = ("request", "response", "request_ended")

    def __init__(self, request: HttpMessage | None) -> None:
        self.request = request
        self.response: HttpMessage | None = None
        self.request_ended = False


class H2Reader:
    """Both directions of an HTTP/2 connection: ``feed(side, data, frame, ts)``, ``close``.

    ``upgraded``: the HTTP/1.1 request a 101 answered (h2c, RFC 7540 3.2): its response comes
    on stream 1; ``settings``: that request's HTTP2-Settings header.
    """

    def __init__(self, handler: Any, *, upgraded: HttpMessage | None = None,
                 settings: str | None = None, max_streams: int = DEFAULT_MAX_STREAMS) -> None:
        self.handler = handler
        self.max_streams = max_streams
        self.server = _endpoint(client_side=False)  # reads the client's bytes
        self.client = _endpoint(client_side=True)  # reads the server's bytes
        self.streams: dict[int, _Stream] = {}
        self.index = 0
        self.lost = False
        self.frame, self.ts = 0, 0.0
        self.bytes_in = [0, 0]
        # Bytes of each direction not yet handed to h2 (a frame header cut by the segment;
        # server bytes waiting for their stream's request); ``pass_left``: bytes still to come
        # of the frame being passed (the client's first 24 are the connection preface).
        self.pending = [bytearray(), bytearray()]
        self.pass_left = [24, 0]
        self.max_held = DEFAULT_MAX_HELD
        self.opened = 0  # highest client stream id read
        try:
            if upgraded is not None:
                self.server.initiate_upgrade_connection(
                    (settings or "").encode("latin-1", "replace") or None)
                self.client.initiate_upgrade_connection()
                s = self.streams[1] = _Stream(upgraded)
                s.request_ended = True
                self.opened = 1
            else:
                self.server.initiate_connection()
                self.client.initiate_connection()
            for ep in (self.server, self.client):  # the connection window, never the limit
                ep.increment_flow_control_window(MAX_WINDOW - ep.inbound_flow_control_window)
        except (h2.exceptions.H2Error, ValueError, TypeError) as exc:
            self._lose(CLIENT, f"the h2c upgrade cannot be followed: {exc}")
        self._discard()

    def _discard(self) -> None:
        self.server.clear_outbound_data_buffer()
        self.client.clear_outbound_data_buffer()

    # -- bytes in ---------------------------------------------------------------------------
    def feed(self, side: int, data: Any, frame: int, ts: float) -> None:
        self.bytes_in[side] += len(data)
        if self.lost or not len(data):
            return
        self.frame, self.ts = frame, ts
        self.pending[side] += data
        self._release(side)
        if side == CLIENT and self.pending[SERVER] and not self.lost:
            self._release(SERVER)  # a stream just opened may free held server bytes

    def _release(self, side: int) -> None:
        """Hand a direction's bytes to its h2 endpoint, frame header by frame header: a
        frame longer than ``MAX_FRAME`` ends the reading (h2 would wait for all of it), and
        server bytes wait from the first frame of a stream whose request is not read yet (a
        response, a WINDOW_UPDATE for its body: a capture can show them first)."""
        b = self.pending[side]
        p = min(self.pass_left[side], len(b))
        self.pass_left[side] -= p
        while not self.pass_left[side] and p + 9 <= len(b):
            length = int.from_bytes(b[p:p + 3], "big")
            sid = int.from_bytes(b[p + 5:p + 9], "big") & 0x7FFFFFFF
            if length > MAX_FRAME:
                self._lose(side, f"a frame of {length} bytes: larger than this reader takes "
                                 f"({MAX_FRAME})")
                return
            if side == SERVER and sid % 2 == 1 and sid > self.opened:
                break  # a frame of a stream whose request is not read yet
            take = min(9 + length, len(b) - p)
            self.pass_left[side] = 9 + length - take
            p += take
        if p:
            chunk = bytes(b[:p])
            del b[:p]
            self._receive(side, chunk)
        if side == SERVER and len(b) > self.max_held and not self.lost:
            self._lose(SERVER, f"the server sent more than {self.max_held} bytes on streams "
                               "whose request was never read")

    def _receive(self, side: int, data: Any) -> None:
        ep = self.server if side == CLIENT else self.client
        try:
            events = ep.receive_data(bytes(data))
        except (h2.exceptions.H2Error, ValueError, KeyError, IndexError) as exc:
            self._lose(side, f"not valid HTTP/2: {type(exc).__name__}: {str(exc)[:200]}")
            return
        try:
            for ev in events:
                if side == CLIENT:
                    self._from_client(ev)
                else:
                    self._from_server(ev)
        except (h2.exceptions.H2Error, ValueError, KeyError) as exc:
            self._lose(side, f"the streams cannot be followed: {type(exc).__name__}: "
                             f"{str(exc)[:200]}")
        self._discard()

    def gap(self, side: int, n: int, frame: int, ts: float) -> None:
        """Bytes missing: HTTP/2 framing and HPACK state cannot survive a hole."""
        if not self.lost:
            self.frame, self.ts = frame, ts
            self._lose(side, f"{n} bytes missing from the capture: HTTP/2 framing and header "
                             "compression state are lost, the rest of the connection is not "
                             "read")

    def close(self, frame: int, ts: float) -> None:
        self.frame, self.ts = frame, ts
        if not self.lost:
            if len(self.pending[SERVER]) >= 9:
                self.handler.problem(SERVER, "HTTP2-MALFORMED",
                                     f"{len(self.pending[SERVER])} server bytes on streams "
                                     "whose request was never read", frame)
            cut = [side for side in (CLIENT, SERVER) if self.bytes_in[side] and (
                self.pass_left[side] or 0 < len(self.pending[side]) < 9)]
            if cut:
                self.handler.problem(cut[0], "HTTP2-MALFORMED", "the connection ended inside "
                                     "an HTTP/2 frame", frame)
        self.pending[0].clear()
        self.pending[1].clear()
        for sid in list(self.streams):
            self._give_up(sid, "the connection ended")

    # -- events ---------------------------------------------------------------------------------
    def _from_client(self, ev: Any) -> None:
        t = type(ev)
        if t is h2.events.RequestReceived:
            pseudo, regular = _split(ev.headers)
            if ":authority" in pseudo and not any(n == "host" for n, _ in regular):
                regular.append(("host", pseudo[":authority"]))
            msg = HttpMessage(CLIENT, self.index, "2", regular, self.frame, self.ts,
                              method=pseudo.get(":method", "?"),
                              target=pseudo.get(":path", ""))
            self.index += 1
            ended = ev.stream_ended is not None
            msg.chunked = not ended and msg.content_length is None
            if len(self.streams) >= self.max_streams:
                oldest = next(iter(self.streams))
                self.handler.problem(SERVER, "HTTP-CAP-PIPELINE",
                                     f"more than {self.max_streams} HTTP/2 streams wait for "
                                     "a response: the oldest is given up", self.frame)
                self._give_up(oldest, "too many streams open")
            s = self.streams[ev.stream_id] = _Stream(msg)
            self.opened = max(self.opened, ev.stream_id)
            self.handler.request(msg)
            self.client.send_headers(ev.stream_id, ev.headers, end_stream=ended)
            if ended:
                self._end(msg)
                s.request_ended = True
        else:
            self._stream_event(CLIENT, ev)

    def _request_ended(self, sid: int) -> None:
        s = self.streams.get(sid)
        if s is None or s.request_ended:
            return
        s.request_ended = True
        if s.request is not None:
            self._end(s.request)
        try:
            self.client.end_stream(sid)
        except h2.exceptions.H2Error:
            pass
        if s.response is not None and s.response.complete:
            self.streams.pop(sid, None)

    def _from_server(self, ev: Any) -> None:
        t = type(ev)
        if t is h2.events.ResponseReceived:
            s = self.streams.get(ev.stream_id)
            if s is None or s.request is None:
                return
            pseudo, regular = _split(ev.headers)
            status = pseudo.get(":status", "")
            msg = HttpMessage(SERVER, s.request.index, "2", regular, self.frame, self.ts,
                              status=int(status) if status.isdigit() else None, reason="")
            msg.request = s.request
            s.response = msg
            self.handler.response(msg)
            if ev.stream_ended is not None:
                self._response_ended(ev.stream_id)
        elif t is h2.events.InformationalResponseReceived:
            s = self.streams.get(ev.stream_id)
            if s is not None and s.request is not None:
                pseudo, _ = _split(ev.headers)
                code = pseudo.get(":status", "")
                if code.isdigit():
                    self.handler.informational(s.request, int(code), self.frame, self.ts)
        else:
            self._stream_event(SERVER, ev)

    def _stream_event(self, side: int, ev: Any) -> None:
        """DATA, END_STREAM, RST_STREAM and GOAWAY mean the same from either peer: they go to
        that side's message of the stream (the request from the client, the response from
        the server)."""
        t = type(ev)
        who = "client" if side == CLIENT else "server"
        if t is h2.events.DataReceived:
            # the endpoint that read these bytes opens its flow-control window again
            reader = self.server if side == CLIENT else self.client
            reader.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            s = self.streams.get(ev.stream_id)
            msg = None if s is None else s.request if side == CLIENT else s.response
            if msg is not None and ev.data:
                msg.body_bytes += len(ev.data)
                self.handler.body(msg, ev.data)
            if ev.stream_ended is not None:
                self._side_ended(side, ev.stream_id)
        elif t is h2.events.StreamEnded:
            self._side_ended(side, ev.stream_id)
        elif t is h2.events.StreamReset:
            self._give_up(ev.stream_id, f"the {who} reset the stream (error {ev.error_code})")
        elif t is h2.events.ConnectionTerminated:
            self.handler.problem(side, "HTTP2-GOAWAY", f"the {who} ended the HTTP/2 "
                                 f"connection (GOAWAY, error {ev.error_code})", self.frame)

    def _side_ended(self, side: int, sid: int) -> None:
        if side == CLIENT:
            self._request_ended(sid)
        else:
            self._response_ended(sid)

    def _response_ended(self, sid: int) -> None:
        s = self.streams.get(sid)
        if s is None or s.response is None or s.response.complete:
            return
        self._end(s.response)
        if s.request_ended:
            self.streams.pop(sid, None)

    def _end(self, msg: HttpMessage) -> None:
        msg.complete = True
        msg.end_frame, msg.end_ts = self.frame, self.ts
        self.handler.end(msg)

    def _give_up(self, sid: int, why: str) -> None:
        s = self.streams.pop(sid, None)
        if s is None:
            return
        for msg, ended in ((s.request, s.request_ended),
                           (s.response, s.response is not None and s.response.complete)):
            if msg is not None and not ended:
                msg.error = why
                msg.end_frame, msg.end_ts = self.frame, self.ts
                self.handler.end(msg)
        if s.response is None and s.request is not None:
            self.handler.unanswered(s.request)

    def _lose(self, side: int, text: str) -> None:
        self.lost = True
        self.pending[0].clear()
        self.pending[1].clear()
        self.handler.problem(side, "HTTP2-MALFORMED", text, self.frame)
