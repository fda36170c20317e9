"""HTTP/1.1 on one captured TCP connection, both directions, parsed by h11 without I/O.

h11 is a connection state machine for *one* party. A passive observer is neither, so each
direction gets its own h11 object playing the receiving party: the client's bytes go to an h11
``SERVER`` (it parses requests) and the server's bytes to an h11 ``CLIENT`` (it parses
responses). How a response is framed depends on the request it answers (a response to HEAD
has no body, a 2xx to CONNECT or a 101 to an Upgrade ends HTTP on the connection), so before
the response parser reads a response it is told, through h11's own ``send``, which request it
"sent": method and upgrade intent, nothing else. Each message gets a fresh h11 object and the
previous one's ``trailing_data`` is handed over, so pipelined requests are read as they come
(before their responses exist) and keep-alive, ``Connection: close`` and HTTP/1.0 are judged
by us, as findings, not by h11 refusing more bytes.

Bodies stream: every ``Data`` event goes to the handler and is then dropped; nothing here holds
more than h11's bounded buffer (a head is capped by ``max_head``), a few held bytes while the
request a response answers is not yet known (``max_held``) and the queue of pipelined requests
(``max_pending``). A gap inside a body whose end is known (Content-Length, or read until the
connection closes) is skipped by feeding h11 that many zero bytes that the handler never sees
as data (it gets ``body_gap``); any other gap, or bytes h11 rejects, loses the framing: the
direction hunts for the next request line or status line and carries on from there.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import h11

from .detect import (  # noqa: F401
    H2_PREFACE,
    METHODS,
    REQUEST_LINE,
    STATUS_LINE,
    is_h2_preface,
    looks_like_request,
)
from .message import CLIENT, SERVER, HttpMessage, wire_text

DEFAULT_MAX_HEAD = 64 * 1024  # a request or response head (start line + header fields)
DEFAULT_MAX_PENDING = 1024  # pipelined requests still waiting for their response
DEFAULT_MAX_HELD = 256 * 1024  # bytes held while the parser must wait for the other side
_ZEROS = bytes(1 << 16)
_HUNT_CARRY = 8 * 1024

class HttpHandler:
    """What the connection tells its user; every method may be overridden (all no-ops here).

    Calls arrive in wire order per direction. ``body`` gets each piece of decoded body bytes
    (chunk framing removed) once; keep what you need, the parser keeps nothing.
    """

    def request(self, msg: HttpMessage) -> None:
        """A request head was read."""

    def response(self, msg: HttpMessage) -> None:
        """A final (non-1xx) response head was read; ``msg.request`` is the request."""

    def informational(self, request: HttpMessage, status: int, frame: int, ts: float) -> None:
        """A 1xx interim response to ``request``."""

    def body(self, msg: HttpMessage, data: bytes) -> None:
        """Body bytes of ``msg``."""

    def body_gap(self, msg: HttpMessage, n: int) -> None:
        """``n`` body bytes of ``msg`` are missing from the capture."""

    def end(self, msg: HttpMessage) -> None:
        """``msg`` is over: ``msg.complete`` says whether its end was seen."""

    def problem(self, side: int, code: str, text: str, frame: int) -> None:
        """Something on the wire that is not HTTP/1.1 as RFC 9112 says (``code``: stable)."""

    def unanswered(self, request: HttpMessage) -> None:
        """The connection ended (or the queue overflowed) before ``request`` got a response."""

    def tunnel(self, frame: int) -> None:
        """The connection left HTTP (101 Switching Protocols, CONNECT): no more messages."""

    def http2(self, how: str, frame: int, decoded: bool = False) -> None:
        """The connection speaks HTTP/2 from here on (``how``: ``"prior knowledge"``, the
        client's connection preface, or ``"h2c upgrade"``, a 101 to ``Upgrade: h2c``).
        ``decoded``: its messages come on through this handler (:mod:`.h2`); else it is not
        read further (``tunnel`` follows)."""


def _headers(headers) -> list[tuple[str, str]]:
    """h11's headers (names lower-cased by h11) as text."""
    return [(wire_text(n), wire_text(v)) for n, v in headers]


class _Direction:
    """Common part of both directions: the h11 object, hunting after lost framing.

    ``_run`` is a loop, not a recursion: a message's end hands the bytes after it (h11's
    ``trailing_data``) back to the loop, and so does lost framing (the bytes after the bad
    start, to hunt in), so a thousand pipelined messages or broken heads in one segment cost
    a thousand turns, not a thousand stack frames.
    """

    __slots__ = ("conn", "side", "parser", "msg", "lost", "carry", "bytes_in", "filler",
                 "frame", "ts", "hunt_skipped", "replay", "headbuf", "closed", "h2_ready")

    def __init__(self, conn: HttpConnection, side: int) -> None:
        self.conn = conn
        self.side = side
        self.parser: h11.Connection | None = None
        self.msg: HttpMessage | None = None
        self.lost = False
        self.carry = b""
        self.bytes_in = 0
        self.filler = 0  # zero bytes fed to h11 for a gap, not yet returned as Data
        self.frame = 0
        self.ts = 0.0
        self.hunt_skipped = 0
        self.replay: bytes | None = None  # bytes to go round the loop again
        # What the parser got since its message started, until the head is read: where to
        # hunt when the head is bad (h11 drops the lines it has read). At most max_head plus
        # one segment, since h11 refuses a longer head.
        self.headbuf = bytearray()
        self.closed = False
        # HTTP/2 is being read and this direction's HTTP/1.1 is over (the server's at once;
        # the client's once the upgraded request has ended): its bytes go to the H2Reader.
        self.h2_ready = False

    # -- the TCP sink interface --------------------------------------------------------------
    def feed(self, data, frame: int, ts: float) -> None:
        self.bytes_in += len(data)
        self.frame, self.ts = frame, ts
        h2r = self.conn.h2
        if h2r is not None and self.h2_ready:
            h2r.feed(self.side, data, frame, ts)
            return
        self._run(data)

    def gap(self, n: int, frame: int, ts: float) -> None:
        self.frame, self.ts = frame, ts
        if self.conn.h2 is not None and self.h2_ready:
            self.conn.h2.gap(self.side, n, frame, ts)
            return
        if self.conn.tunnelled or self.lost:
            self.carry = b""
            return
        msg = self.msg
        if msg is not None and self._skippable(msg, n):
            msg.body_missing += n
            self.conn.handler.body_gap(msg, n)
            self.filler += n
            while n and not self.lost:
                k = min(n, len(_ZEROS))
                self._run(memoryview(_ZEROS)[:k])
                n -= k
            return
        self._lose("HTTP-GAP", f"{n} bytes missing from the capture where HTTP framing was "
                   "needed: looking for the next message")
        self.replay = None

    def close(self, frame: int, ts: float) -> None:
        """This direction ended (FIN): a body read until close ends here. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.frame, self.ts = frame, ts
        if self.conn.tunnelled or self.lost or self.parser is None:
            return
        try:
            self.parser.receive_data(b"")
        except RuntimeError:
            return
        self._pump()
        self.replay = None
        if self.msg is not None:  # the connection closed inside a message
            self._abandon(self.msg, "the connection closed before the message ended")

    # -- internals ---------------------------------------------------------------------------
    def _run(self, data) -> None:
        while data is not None and len(data):
            if self.conn.tunnelled and (self.h2_ready or self.conn.h2 is None):
                return
            if self.lost:
                data = self._hunt(bytes(data))
                if data is None:
                    return
            self.replay = None
            self._step(data)
            data, self.replay = self.replay, None

    def _skippable(self, msg: HttpMessage, n: int) -> bool:
        if msg.chunked or self.parser is None:
            return False
        if msg.content_length is not None:
            return msg.content_length - msg.body_bytes - msg.body_missing >= n
        # no length: a response read until the connection closes
        return msg.status is not None and self.parser.their_state is h11.SEND_BODY

    def _hunt(self, data: bytes) -> bytes | None:
        """Lost framing: skip to the next start line; None while none is found."""
        buf = self.carry + data
        m = (REQUEST_LINE if self.side == CLIENT else STATUS_LINE).search(buf)
        if m is None:
            self.hunt_skipped += len(data)
            self.carry = buf[-_HUNT_CARRY:]
            return None
        self.carry = b""
        self.lost = False
        self.parser = None
        self.conn.handler.problem(self.side, "HTTP-RESYNC",
                                  "framing found again at a start line after "
                                  f"{self.hunt_skipped} unreadable bytes", self.frame)
        self.hunt_skipped = 0
        return buf[m.start():]

    def _lose(self, code: str, text: str) -> None:
        """Framing lost: report, abandon the message, hunt in what h11 had not read."""
        self.conn.handler.problem(self.side, code, text, self.frame)
        leftover = b""
        if self.headbuf:
            leftover = bytes(self.headbuf)
        elif self.parser is not None:
            leftover = self.parser.trailing_data[0]
        self.headbuf = bytearray()
        if self.msg is not None:
            self._abandon(self.msg, text)
        self.parser = None
        self.lost = True
        self.carry = b""
        self.filler = 0
        self.replay = leftover[1:] or None  # not the broken start itself again

    def _abandon(self, msg: HttpMessage, why: str) -> None:
        msg.error = why
        msg.end_frame, msg.end_ts = self.frame, self.ts
        self.msg = None
        self.conn.handler.end(msg)

    def _body(self, msg: HttpMessage, data: bytes) -> None:
        n = len(data)
        if self.filler:
            k = min(n, self.filler)
            self.filler -= k
            if k == n:
                return
            data = data[k:]
            n -= k
        msg.body_bytes += n
        self.conn.handler.body(msg, data)

    def _step(self, data) -> None:
        raise NotImplementedError

    def _pump(self) -> None:
        raise NotImplementedError


class RequestDirection(_Direction):
    """Client to server: requests, each read by a fresh h11 SERVER."""

    __slots__ = ("index", "held", "hold", "upgrade_answer")

    def __init__(self, conn: HttpConnection) -> None:
        super().__init__(conn, CLIENT)
        self.index = 0
        self.held = bytearray()
        self.hold = False  # an Upgrade/CONNECT request: wait for the answer before reading on
        self.upgrade_answer: bool | None = None  # came before the request's end was read

    def _step(self, data) -> None:
        if self.hold:
            if len(self.held) + len(data) > self.conn.max_held:
                self.hold = False
                self.held.clear()
                self._lose("HTTP-CAP-HELD", "client bytes after an Upgrade or CONNECT "
                           "request exceed the holding cap before the answer came")
                self.replay = None
                return
            self.held += data
            return
        if self.parser is None:
            if self.index == 0 and not self.lost and (self.headbuf or data[:1] == b"P"):
                head = bytes(self.headbuf) + bytes(data[:len(H2_PREFACE)])
                h2 = is_h2_preface(head)
                if h2 is None:  # a preface cut by the segment: wait for the rest
                    self.headbuf += data
                    return
                if h2:
                    everything = bytes(self.headbuf) + bytes(data)
                    self.headbuf = bytearray()
                    self.conn.switch_to_http2("prior knowledge", self.frame,
                                              client_bytes=everything)
                    return
                if self.headbuf:  # bytes held for the test go to the parser with these
                    data, self.headbuf = bytes(self.headbuf) + bytes(data), bytearray()
            self.parser = h11.Connection(h11.SERVER,
                                         max_incomplete_event_size=self.conn.max_head)
        if self.msg is None:
            self.headbuf += data
        self.parser.receive_data(data)
        self._pump()

    def resume(self, switched: bool) -> None:
        """The answer to an Upgrade/CONNECT request came: go on reading, or stop (tunnel)."""
        if not self.hold:
            self.upgrade_answer = switched
            return
        self.hold = False
        held, self.held = bytes(self.held), bytearray()
        if not switched and held:
            self._run(held)

    def _pump(self) -> None:
        p = self.parser
        conn = self.conn
        while p is not None:
            try:
                ev = p.next_event()
            except h11.RemoteProtocolError as e:
                self._lose("HTTP-MALFORMED-REQUEST", f"not a valid HTTP/1.1 request: {e}")
                return
            t = type(ev)
            if t is h11.Data:
                self._body(self.msg, ev.data)  # type: ignore[arg-type]
            elif ev is h11.NEED_DATA:
                return
            elif t is h11.Request:
                msg = HttpMessage(CLIENT, self.index, ev.http_version.decode("ascii"),
                                  _headers(ev.headers), self.frame, self.ts,
                                  method=ev.method.decode("ascii"),
                                  target=wire_text(ev.target))
                self.index += 1
                self.msg = msg
                self.headbuf = bytearray()
                self.upgrade_answer = None
                conn.handler.request(msg)
                conn.responses.expect(msg)
            elif t is h11.EndOfMessage:
                msg = self.msg
                self.msg = None
                if msg is not None:
                    msg.complete = True
                    msg.end_frame, msg.end_ts = self.frame, self.ts
                    conn.handler.end(msg)
                    if conn.h2 is not None:  # h2c answered before this request's end was read
                        trailing = p.trailing_data[0]
                        self.parser, self.headbuf, self.h2_ready = None, bytearray(), True
                        if trailing:
                            conn.h2.feed(CLIENT, trailing, self.frame, self.ts)
                        return
                    if _switch_intent(msg):
                        if self.upgrade_answer is None:
                            self.hold = True
                        elif self.upgrade_answer:
                            return  # already a tunnel
                trailing = p.trailing_data[0]
                self.parser = None
                self.headbuf = bytearray()
                self.replay = trailing or None
                return
            elif t is h11.ConnectionClosed or ev is h11.PAUSED:
                return


class ResponseDirection(_Direction):
    """Server to client: responses, each read by a fresh h11 CLIENT told its request."""

    __slots__ = ("pending", "answering", "held")

    def __init__(self, conn: HttpConnection) -> None:
        super().__init__(conn, SERVER)
        self.pending: deque[HttpMessage] = deque()
        self.answering: HttpMessage | None = None
        self.held = bytearray()

    def expect(self, request: HttpMessage) -> None:
        """A request head was read on the other direction: its response comes in order."""
        if len(self.pending) >= self.conn.max_pending:
            old = self.pending.popleft()
            self.conn.handler.problem(SERVER, "HTTP-CAP-PIPELINE",
                                      f"more than {self.conn.max_pending} pipelined requests "
                                      "wait for a response: the oldest is given up",
                                      self.frame)
            self.conn.handler.unanswered(old)
        self.pending.append(request)
        if self.parser is None and self.held and not self.lost:
            held, self.held = bytes(self.held), bytearray()
            self._run(held)

    def _arm(self) -> bool:
        """Tell a fresh h11 CLIENT which request it 'sent'; False when none is known yet."""
        if not self.pending:
            if not (self.conn.midstream and self.conn.requests.index == 0):
                return False
            # Picked up mid-stream: answers to requests before the capture started.
            self.pending.append(HttpMessage(CLIENT, -1, "1.1", [], self.frame, self.ts,
                                            method="GET", target=""))
        req = self.pending.popleft()
        self.answering = req
        p = h11.Connection(h11.CLIENT, max_incomplete_event_size=self.conn.max_head)
        headers = [("host", "h")]
        if req.method == "CONNECT":
            target = "h:1"
        else:
            target = "/"
            upgrade = req.header("upgrade")
            if upgrade is not None and _switch_intent(req):
                headers += [("connection", "upgrade"), ("upgrade", upgrade)]
        p.send(h11.Request(method=req.method, target=target, headers=headers))
        p.send(h11.EndOfMessage())
        self.parser = p
        return True

    def _step(self, data) -> None:
        if self.parser is None and not self._arm():
            if len(self.held) + len(data) > self.conn.max_held:
                self.held.clear()
                self._lose("HTTP-RESPONSE-WITHOUT-REQUEST",
                           "the server sent more than "
                           f"{self.conn.max_held} bytes with no request to answer")
                self.replay = None
                return
            self.held += data
            return
        if self.msg is None:
            self.headbuf += data
        self.parser.receive_data(data)  # type: ignore[union-attr]
        self._pump()

    def _pump(self) -> None:
        p = self.parser
        conn = self.conn
        while p is not None:
            try:
                ev = p.next_event()
            except h11.RemoteProtocolError as e:
                req = None if self.msg is not None else self.answering
                self.answering = None
                self._lose("HTTP-MALFORMED-RESPONSE", f"not a valid HTTP/1.1 response: {e}")
                if req is not None:
                    conn.handler.unanswered(req)
                return
            t = type(ev)
            if t is h11.Data:
                self._body(self.msg, ev.data)  # type: ignore[arg-type]
            elif ev is h11.NEED_DATA:
                return
            elif t is h11.Response:
                msg = HttpMessage(SERVER, self.answering.index,  # type: ignore[union-attr]
                                  ev.http_version.decode("ascii"),
                                  _headers(ev.headers), self.frame, self.ts,
                                  status=ev.status_code, reason=wire_text(ev.reason))
                msg.request = self.answering
                self.msg = msg
                self.headbuf = bytearray()
                conn.handler.response(msg)
            elif t is h11.InformationalResponse:
                self.headbuf = bytearray(p.trailing_data[0])
                req = self.answering
                req.informational.append((ev.status_code, self.frame))  # type: ignore
                conn.handler.informational(req, ev.status_code, self.frame,  # type: ignore
                                           self.ts)
                if ev.status_code == 101:
                    self._switched(req)
                    return
            elif t is h11.EndOfMessage:
                msg = self.msg
                self.msg = None
                self.answering = None
                if msg is not None:
                    msg.complete = True
                    msg.end_frame, msg.end_ts = self.frame, self.ts
                    conn.handler.end(msg)
                    if msg.request is not None and _switch_intent(msg.request):
                        if p.their_state is h11.SWITCHED_PROTOCOL or (
                                msg.request.method == "CONNECT" and 200 <= msg.status < 300):
                            self._switched(msg.request)
                            return
                        conn.requests.resume(False)
                trailing = p.trailing_data[0]
                self.parser = None
                self.headbuf = bytearray()
                self.replay = trailing or None
                return
            elif ev is h11.PAUSED:
                if p.their_state is h11.SWITCHED_PROTOCOL:
                    self._switched(self.answering)
                return
            elif t is h11.ConnectionClosed:
                return

    def _switched(self, request: HttpMessage | None) -> None:
        rest = bytes(self.parser.trailing_data[0]) if self.parser is not None else b""
        if self.msg is not None:
            msg, self.msg = self.msg, None
            msg.complete = True
            msg.end_frame, msg.end_ts = self.frame, self.ts
            self.conn.handler.end(msg)
        self.parser = None
        self.answering = None
        held = bytes(self.conn.requests.held)
        self.conn.requests.resume(True)
        if request is not None and request.method != "CONNECT" and any(
                t.strip().lower() == "h2c" for v in request.header_all("upgrade")
                for t in v.split(",")):
            self.conn.switch_to_http2("h2c upgrade", self.frame, upgraded=request,
                                      client_bytes=held, server_bytes=rest)
        else:
            self.conn.tunnelled = True
            self.conn.handler.tunnel(self.frame)

    def close(self, frame: int, ts: float) -> None:
        if self.closed:
            return
        super().close(frame, ts)
        h = self.conn.handler
        if self.answering is not None and self.msg is None:
            h.unanswered(self.answering)
        self.answering = None
        while self.pending:
            h.unanswered(self.pending.popleft())


def _switch_intent(req: HttpMessage) -> bool:
    if req.method == "CONNECT":
        return True
    if req.header("upgrade") is None:
        return False
    return any("upgrade" in v.lower() for v in req.header_all("connection"))


class HttpConnection:
    """Both directions of one HTTP/1.x connection; ``directions`` are the TCP sinks."""

    __slots__ = ("handler", "requests", "responses", "directions", "tunnelled", "max_head",
                 "max_pending", "max_held", "midstream", "http2", "h2", "decode_h2")

    def __init__(self, handler: HttpHandler | None = None, *, max_head: int = DEFAULT_MAX_HEAD,
                 max_pending: int = DEFAULT_MAX_PENDING, max_held: int = DEFAULT_MAX_HELD,
                 midstream: bool = False, decode_h2: bool = True) -> None:
        """``midstream``: the capture started inside the connection, so responses may come
        whose requests were never captured (read as answers to an unseen GET)."""
        self.handler = handler if handler is not None else HttpHandler()
        self.midstream = midstream
        self.max_head = max_head
        self.max_pending = max_pending
        self.max_held = max_held
        self.tunnelled = False
        self.http2: str | None = None  # how the connection went to HTTP/2, if it did
        self.decode_h2 = decode_h2  # read HTTP/2 with the h2 library (else only say it)
        self.h2: Any = None  # the H2Reader, once HTTP/2 is being read
        self.requests = RequestDirection(self)
        self.responses = ResponseDirection(self)
        self.directions: tuple[_Direction, _Direction] = (self.requests, self.responses)

    def switch_to_http2(self, how: str, frame: int, *, upgraded: HttpMessage | None = None,
                        client_bytes: bytes = b"", server_bytes: bytes = b"") -> None:
        """HTTP/2 from here on: read by :class:`~.h2.H2Reader` (the bytes already seen after
        the switch handed to it), or, without the h2 library, said once and not read."""
        if self.http2 is not None:
            return
        self.http2 = how
        self.tunnelled = True  # no more HTTP/1.1 parsing on either direction
        reader = None
        if self.decode_h2:
            try:
                from .h2 import H2Reader
            except ImportError:  # pragma: no cover - h2 is a dependency; said, not read
                H2Reader = None  # type: ignore[assignment]  # noqa: N806
            if H2Reader is not None:
                settings = upgraded.header("http2-settings") if upgraded is not None else None
                reader = H2Reader(self.handler, upgraded=upgraded, settings=settings)
        self.handler.http2(how, frame, reader is not None)
        if reader is None:
            self.handler.tunnel(frame)
            return
        self.h2 = reader
        self.responses.h2_ready = True
        self.requests.h2_ready = self.requests.msg is None  # else: at the request's end
        held = bytes(self.responses.held)
        self.responses.held = bytearray()
        for side, data in ((0, client_bytes), (1, held + server_bytes)):
            if data:
                reader.feed(side, data, frame, self.requests.ts if side == 0
                            else self.responses.ts)

    def close(self, frame: int, ts: float) -> None:
        """The connection is over (FIN, RST, end of capture): finish both directions."""
        self.requests.close(frame, ts)
        self.responses.close(frame, ts)
        if self.h2 is not None:
            self.h2.close(frame, ts)
