"""DICOMweb over one HTTP connection, and the set of such connections in a capture.

:class:`DicomwebConnection` is the :class:`~dissectors.http.stream.HttpHandler` of one
connection: it turns request and response heads into a :class:`WebTransaction`, streams the
bodies through a :class:`BodyReader` chosen by what PS3.18 says the body is, and when the
response ends hands the transaction to :mod:`.judge` for findings and then to the sink.
:class:`DicomwebAnalyzer` owns the connections, the ids, the hooks (``on_transaction``,
``on_finding``, ``on_connection``, mitmproxy style) and what is kept; a flow dispatcher creates
a connection with :meth:`DicomwebAnalyzer.open_connection` and feeds its two TCP sinks.
"""

from __future__ import annotations

from typing import Any

from dissectors.http.message import HttpMessage
from dissectors.http.stream import HttpConnection, HttpHandler

from ..model import Finding
from . import judge, payload, query
from .bodies import BodyReader
from .exchange import Exchange
from .model import HttpConnectionInfo, WebTransaction
from .services import QIDO, STOW, UPS, WADO_RS, WADO_URI, classify
from .status import category, meaning

MAX_QUERY_WORDS = 64
MAX_FINDINGS_PER_CONNECTION = 1000  # listed with the connection; all go to the host
_WADO_URI_UIDS = ("requesttype", "studyuid", "seriesuid", "objectuid")


class DicomwebConnection(HttpHandler):
    """HTTP events of one connection in, transactions and findings out."""

    def __init__(self, owner: Any, info: HttpConnectionInfo,
                 midstream: bool = False) -> None:
        self.owner = owner
        self.info = info
        self.close_frame: int | None = None  # a message said Connection: close
        self.txns: list[WebTransaction] = []  # handed out with the connection at its end
        self.found: list[Finding] = []
        self.switching: Exchange | None = None  # the request a 101 answered
        self.http = HttpConnection(self, midstream=midstream)

    # -- requests -----------------------------------------------------------------------------
    def request(self, msg: HttpMessage) -> None:
        info = self.info
        info.requests += 1
        if info.user_agent is None:
            info.user_agent = msg.header("user-agent")
        if self.close_frame is not None:
            self.finding(msg.head_frame, "warning", "DICOMWEB-HTTP-AFTER-CLOSE",
                         f"request {msg.method} after 'Connection: close' (frame "
                         f"{self.close_frame}): the connection should have ended there",
                         "RFC 9112 9.6")
        if _says_close(msg):
            self.close_frame = msg.head_frame
        web = classify(msg.method or "", msg.target or "")
        txn = WebTransaction(self.owner.next_id(), info.id, web.service or "HTTP", web.action,
                             msg.method or "", (msg.target or "")[:2048], msg.http_version,
                             msg.head_frame, msg.head_ts)
        txn.level, txn.study, txn.series, txn.instance = (web.level, web.study, web.series,
                                                          web.instance)
        txn.frames, txn.workitem = web.frames[:64], web.workitem
        if web.service == QIDO:
            txn.query = query.describe(web.params)
        elif web.service is not None:  # WADO-URI's UIDs are shown as UIDs, not parameters
            txn.query = [f"{k}={v}"[:200] for k, v in web.params[:MAX_QUERY_WORDS]
                         if web.service != WADO_URI or k.lower() not in _WADO_URI_UIDS]
        txn.accept = [v[:300] for v in msg.header_all("accept")[:8]]
        txn.request_content_type = msg.header("content-type")
        txn.user_agent = msg.header("user-agent")
        ex = Exchange(txn, msg, web)
        if msg.chunked or msg.content_length:
            cap = payload.JSON_CAP if web.service in (UPS, STOW) else 0
            wanted = (self.owner.instance_factory(info, txn, 0) if web.service == STOW
                      else None)
            ex.req_body = BodyReader(txn.request_content_type, copy_cap=cap,
                                     content_encoding=msg.header("content-encoding"),
                                     instances=wanted)
        msg.tag = ex

    # -- responses ----------------------------------------------------------------------------
    def response(self, msg: HttpMessage) -> None:
        info = self.info
        info.responses += 1
        if info.server_software is None:
            info.server_software = msg.header("server")
        if _says_close(msg) and self.close_frame is None:
            self.close_frame = msg.head_frame
        ex = msg.request.tag if msg.request is not None else None
        if not isinstance(ex, Exchange):
            return
        msg.tag = ex
        ex.response = msg
        txn = ex.txn
        txn.status = msg.status
        txn.reason_phrase = msg.reason
        txn.status_category = category(msg.status)
        txn.status_meaning = meaning(msg.status, ex.web.service)
        txn.response_content_type = msg.header("content-type")
        txn.response_time = msg.head_ts
        txn.response_frames.append(msg.head_frame)
        status = msg.status or 0
        service = ex.web.service
        ctype, coding = txn.response_content_type, msg.header("content-encoding")
        if status >= 400:
            ex.resp_body = BodyReader(ctype, copy_cap=payload.TEXT_CAP * 4,
                                      content_encoding=coding)
        elif service in (QIDO, STOW, UPS) or (service == WADO_RS
                                              and txn.action.endswith("Metadata")):
            ex.resp_body = BodyReader(ctype, copy_cap=payload.JSON_CAP, content_encoding=coding)
        elif service in (WADO_RS, WADO_URI):
            ex.resp_body = BodyReader(ctype, head_cap=payload.HEAD_BYTES,
                                      content_encoding=coding,
                                      instances=self.owner.instance_factory(info, txn, 1))
        else:
            ex.resp_body = BodyReader(ctype, content_encoding=coding)

    def informational(self, request: HttpMessage, status: int, frame: int, ts: float) -> None:
        ex = request.tag
        if isinstance(ex, Exchange):
            ex.txn.informational.append(status)
            if status == 101:  # the final answer, unless the new protocol is read
                self.switching = ex
                ex.txn.response_time = ts
                ex.txn.response_frames.append(frame)

    # -- bodies -------------------------------------------------------------------------------
    def body(self, msg: HttpMessage, data: bytes) -> None:
        ex = msg.tag
        if isinstance(ex, Exchange):
            r = ex.req_body if msg.side == 0 else ex.resp_body
            if r is not None:
                r.feed(data)

    def body_gap(self, msg: HttpMessage, n: int) -> None:
        ex = msg.tag
        if isinstance(ex, Exchange):
            ex.txn.bytes_missing += n
            r = ex.req_body if msg.side == 0 else ex.resp_body
            if r is not None:
                r.gap()

    def end(self, msg: HttpMessage) -> None:
        ex = msg.tag
        if not isinstance(ex, Exchange):
            return
        txn = ex.txn
        if msg.side == 0:
            txn.request_end_frame, txn.request_end_time = msg.end_frame, msg.end_ts
            txn.request_bytes = msg.body_bytes
            txn.request_complete = msg.complete
            if ex.req_body is not None:
                ex.req_body.close(msg.complete and not msg.body_missing)
            judge.request_done(self, ex)
            if msg.error:
                self.finding(msg.end_frame or msg.head_frame, "warning",
                             "DICOMWEB-HTTP-TRUNCATED", f"{txn.command} {txn.action}: the "
                             f"request ended early: {msg.error}", "RFC 9112 6")
            ex.request_ended = True
            if ex.response_ended:  # the server answered before the request body ended
                self._finish(ex)
            return
        txn.response_end_time = msg.end_ts
        if msg.end_frame is not None and msg.end_frame != msg.head_frame:
            txn.response_frames.append(msg.end_frame)
        txn.response_bytes = msg.body_bytes
        txn.response_complete = msg.complete
        if ex.resp_body is not None:
            ex.resp_body.close(msg.complete and not msg.body_missing)
        if msg.error:
            self.finding(msg.end_frame or msg.head_frame, "warning", "DICOMWEB-HTTP-TRUNCATED",
                         f"{txn.command} {txn.action}: the response (status {txn.status}) "
                         f"ended early after {msg.body_bytes} body bytes: {msg.error}",
                         "RFC 9112 6")
        ex.response_ended = True
        if ex.request_ended:
            self._finish(ex)

    def _finish(self, ex: Exchange) -> None:
        """Both messages are over: judge the exchange, hand the transaction out."""
        judge.response_done(self, ex)
        self._emit(ex)

    def unanswered(self, request: HttpMessage) -> None:
        ex = request.tag
        if not isinstance(ex, Exchange) or ex.response is not None:
            return
        txn = ex.txn
        self.finding(request.head_frame, "warning", "DICOMWEB-UNANSWERED",
                     f"{txn.command} {txn.action}: no response seen for {txn.method} "
                     f"{_short(txn.target)}", "RFC 9112 9.3")
        self._emit(ex)

    def problem(self, side: int, code: str, text: str, frame: int) -> None:
        who = "client" if side == 0 else "server"
        sev = "info" if code == "HTTP-RESYNC" else "error"
        self.finding(frame, sev, "DICOMWEB-" + code, f"{who}: {text}", "RFC 9112")

    def tunnel(self, frame: int) -> None:
        self.info.tunnelled = True

    def http2(self, how: str, frame: int, decoded: bool = False) -> None:
        """HTTP/2 (RFC 9113): read on by the h2 reader (``decoded``: its exchanges come as
        HTTP/1.1 ones do, ``http_version`` "2"), else said, with what it hides."""
        self.info.http2 = how
        if decoded:
            self.switching = None  # h2c: the upgraded request's response comes on stream 1
            return
        ex, self.switching = self.switching, None
        if how == "prior knowledge":
            text = ("the client opened the connection with the HTTP/2 preface (prior knowledge, "
                    "RFC 9113 3.3): its requests and responses are not decoded")
        else:
            text = ("the server switched the connection to HTTP/2 (101 to 'Upgrade: h2c', "
                    "RFC 7540 3.2): the response to the upgraded request and every exchange "
                    "after it are not decoded")
        self.finding(frame, "warning", "DICOMWEB-H2-NOT-DECODED", text, "RFC 9113")
        if ex is not None and ex.response is None:
            # The answer to the upgraded request comes on HTTP/2 stream 1: not read here.
            txn = ex.txn
            txn.status = 101
            txn.status_category = category(101)
            txn.status_meaning = ("Switching Protocols: answered over HTTP/2 (h2c), "
                                  "not decoded")
            self._emit(ex)

    # -- out ----------------------------------------------------------------------------------
    def finding(self, frame: int | None, severity: str, code: str, message: str,
                section: str | None) -> None:
        self.info.findings += 1
        f = Finding(severity, code, message, frame, self.info.id, section,
                    [frame] if frame else [])
        if len(self.found) < MAX_FINDINGS_PER_CONNECTION:
            self.found.append(f)
        self.owner.emit_finding(f)

    def _emit(self, ex: Exchange) -> None:
        ex.request.tag = None
        if ex.response is not None:
            ex.response.tag = None
        ex.req_body = ex.resp_body = None
        self.info.transactions += 1
        self.txns.append(ex.txn)
        self.owner.emit_transaction(self.info, ex.txn)

    def close(self, how: str, frame: int, ts: float) -> None:
        self.http.close(frame, ts)
        self.info.outcome = ("http2" if self.info.http2 and self.info.tunnelled
                             else "tunnelled" if self.info.tunnelled else how)


def _says_close(msg: HttpMessage) -> bool:
    if any("close" in v.lower() for v in msg.header_all("connection")):
        return True
    return msg.http_version == "1.0" and not any(
        "keep-alive" in v.lower() for v in msg.header_all("connection"))


def _short(target: str, n: int = 100) -> str:
    return target if len(target) <= n else target[:n - 3] + "..."
