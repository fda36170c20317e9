"""The passive HTTP/1.1 parser (dissectors/http/stream.py): framing as RFC 9112 says, whatever
the segmentation, and hostile input bounded.

Hand-built bytes here are for what Orthanc, curl and dicomweb-client do not send (pipelining,
1xx, HEAD with a Content-Length, lying lengths, floods); the real peers are in
test_dicomweb_captures.py.
"""

from __future__ import annotations

import tracemalloc

import pytest

from dissectors.http.stream import (
    DEFAULT_MAX_HEAD,
    HttpConnection,
    HttpHandler,
    looks_like_request,
)


class Log(HttpHandler):
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.bodies: dict[tuple[int, int], int] = {}
        self.ended: list = []

    def request(self, msg):
        self.events.append(("request", msg.method, msg.target))

    def response(self, msg):
        self.events.append(("response", msg.status, msg.request.target))

    def informational(self, request, status, frame, ts):
        self.events.append(("1xx", status, request.target))

    def body(self, msg, data):
        key = (msg.side, msg.index)
        self.bodies[key] = self.bodies.get(key, 0) + len(data)

    def body_gap(self, msg, n):
        self.events.append(("gap", msg.side, n))

    def end(self, msg):
        self.ended.append(msg)
        self.events.append(("end", msg.side, msg.index, msg.complete, msg.body_bytes))

    def problem(self, side, code, text, frame):
        self.events.append(("problem", side, code))

    def unanswered(self, request):
        self.events.append(("unanswered", request.target))

    def tunnel(self, frame):
        self.events.append(("tunnel",))


def run(client: bytes, server: bytes, step: int = 0, interleave: bool = False, **kw) -> Log:
    """Feed both directions (all client bytes first, or segment by segment alternately)."""
    log = Log()
    c = HttpConnection(log, **kw)
    cs = [client[i:i + step] for i in range(0, len(client), step)] if step else [client]
    ss = [server[i:i + step] for i in range(0, len(server), step)] if step else [server]
    if interleave:
        for i in range(max(len(cs), len(ss))):
            if i < len(cs):
                c.directions[0].feed(cs[i], i + 1, float(i))
            if i < len(ss):
                c.directions[1].feed(ss[i], i + 1, float(i))
    else:
        for i, d in enumerate(cs):
            c.directions[0].feed(d, i + 1, float(i))
        for i, d in enumerate(ss):
            c.directions[1].feed(d, 1000 + i, float(i))
    c.close(9999, 99.0)
    return log


def req(method: str, target: str, body: bytes = b"", extra: str = "") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nHost: pacs\r\n{extra}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def resp(status: int, body: bytes = b"", extra: str = "", length: bool = True) -> bytes:
    head = f"HTTP/1.1 {status} X\r\n{extra}"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def chunked(body: bytes, size: int = 7) -> bytes:
    out = b""
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


PIPELINE_CLIENT = (req("GET", "/a") + req("HEAD", "/b") + req("POST", "/c", b"x" * 100)
                   + req("GET", "/d", extra="Transfer-Encoding: chunked\r\n")[:-2]
                   + b"\r\n" + chunked(b"q" * 30))
PIPELINE_SERVER = (resp(200, b"abc") + resp(200, extra="Content-Length: 5000\r\n",
                                                   length=False)
                   + resp(100, length=False) + resp(204, length=False)
                   + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + chunked(b"z" * 1000, 97))


def summary(log: Log) -> tuple[list[tuple], list[tuple], dict]:
    """Each direction's events in order (interleaving changes only their relative order)."""
    client = [e for e in log.events if e[0] == "request" or (e[0] == "end" and e[1] == 0)]
    server = [e for e in log.events if e[0] in ("response", "1xx", "problem", "unanswered")
              or (e[0] == "end" and e[1] == 1)]
    return client, server, log.bodies


def test_pipelined_requests_matched_in_order_with_head_1xx_204_and_chunked() -> None:
    log = run(PIPELINE_CLIENT, PIPELINE_SERVER)
    assert [e for e in log.events if e[0] == "response"] == [
        ("response", 200, "/a"), ("response", 200, "/b"), ("response", 204, "/c"),
        ("response", 200, "/d")]
    assert ("1xx", 100, "/c") in log.events
    # RFC 9110 9.3.2: a response to HEAD has no body whatever its Content-Length says.
    assert log.bodies.get((1, 1), 0) == 0
    assert log.bodies[(0, 2)] == 100 and log.bodies[(0, 3)] == 30  # chunk framing removed
    assert log.bodies[(1, 0)] == 3 and log.bodies[(1, 3)] == 1000
    assert not [e for e in log.events if e[0] in ("problem", "unanswered")]
    assert all(m.complete for m in log.ended) and len(log.ended) == 8


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 1460])
@pytest.mark.parametrize("interleave", [False, True])
def test_same_events_whatever_the_segmentation(step: int, interleave: bool) -> None:
    whole = summary(run(PIPELINE_CLIENT, PIPELINE_SERVER))
    assert summary(run(PIPELINE_CLIENT, PIPELINE_SERVER, step, interleave)) == whole


def test_response_bytes_before_their_request_are_held_then_read() -> None:
    log = Log()
    c = HttpConnection(log)
    c.directions[1].feed(resp(200, b"hello"), 1, 0.0)
    assert not log.events
    c.directions[0].feed(req("GET", "/late"), 2, 0.1)
    assert ("response", 200, "/late") in log.events


def test_response_without_any_request_is_capped() -> None:
    log = Log()
    c = HttpConnection(log, max_held=1000)
    c.directions[1].feed(b"HTTP/1.1 200 OK\r\n" + b"x" * 2000, 1, 0.0)
    assert ("problem", 1, "HTTP-RESPONSE-WITHOUT-REQUEST") in log.events
    assert len(c.responses.held) == 0


def test_read_until_close_response_and_unanswered_request() -> None:
    log = run(req("GET", "/old") + req("GET", "/never"),
              b"HTTP/1.0 200 OK\r\n\r\n" + b"b" * 500)
    assert log.bodies[(1, 0)] == 500
    assert ("end", 1, 0, True, 500) in log.events  # RFC 9112 6.3 rule 8: ends at close
    assert ("unanswered", "/never") in log.events


def test_lying_content_length_longer_than_the_body_is_truncated_at_close() -> None:
    log = run(req("GET", "/x"), b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"a" * 10)
    end = [m for m in log.ended if m.side == 1][0]
    assert not end.complete and end.body_bytes == 10 and end.error


def test_lying_content_length_shorter_than_the_body_loses_then_finds_framing() -> None:
    server = resp(200, b"abc", extra="")[:-3] + b"abcGARBAGE-NOT-HTTP\r\n" + resp(404, b"nf")
    server = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdefgh garbage\r\n"
              + resp(404, b"nf"))
    log = run(req("GET", "/1") + req("GET", "/2") + req("GET", "/3"), server)
    codes = [e[2] for e in log.events if e[0] == "problem"]
    assert "HTTP-MALFORMED-RESPONSE" in codes and "HTTP-RESYNC" in codes
    # framing found again: the 404 is read (paired with the next request waiting)
    assert any(e[0] == "response" and e[1] == 404 for e in log.events)


def test_gap_inside_a_content_length_body_is_skipped_not_fatal() -> None:
    log = Log()
    c = HttpConnection(log)
    c.directions[0].feed(req("GET", "/big"), 1, 0.0)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n"
    c.directions[1].feed(head + b"a" * 1000, 2, 0.1)
    c.directions[1].gap(200_000, 3, 0.2)
    c.directions[1].feed(b"b" * 99_000, 4, 0.3)
    c.directions[0].feed(req("GET", "/next"), 5, 0.4)
    c.directions[1].feed(resp(204, length=False), 6, 0.5)
    c.close(7, 0.6)
    first = [m for m in log.ended if m.side == 1 and m.index == 0][0]
    assert first.complete and first.body_bytes == 100_000 and first.body_missing == 200_000
    assert log.bodies[(1, 0)] == 100_000  # the handler never saw the filler
    assert ("response", 204, "/next") in log.events
    assert not [e for e in log.events if e[0] == "problem"]


def test_gap_in_a_head_loses_framing_and_resynchronises() -> None:
    log = Log()
    c = HttpConnection(log)
    c.directions[0].feed(b"GET /a HTTP/1.1\r\nHos", 1, 0.0)
    c.directions[0].gap(50, 2, 0.1)
    c.directions[0].feed(b"tail of something\r\n\r\n" + req("GET", "/b"), 3, 0.2)
    codes = [e[2] for e in log.events if e[0] == "problem"]
    assert codes[:2] == ["HTTP-GAP", "HTTP-RESYNC"]
    assert ("request", "GET", "/b") in log.events


def test_endless_chunk_streams_in_bounded_memory() -> None:
    """A chunk announcing 2**40 bytes: streamed as data, never buffered."""
    log = Log()
    c = HttpConnection(log)
    c.directions[0].feed(req("GET", "/x"), 1, 0.0)
    c.directions[1].feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"10000000000\r\n", 2, 0.0)
    block = b"z" * 65536
    tracemalloc.start()
    for i in range(400):  # 25 MiB
        c.directions[1].feed(block, 3 + i, 0.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert log.bodies[(1, 0)] == 400 * 65536
    assert peak < 2 * 1024 * 1024


def test_header_flood_is_a_problem_not_memory() -> None:
    flood = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-A: " + b"b" * 100 + b"\r\n"
    flood += b"X-B: c\r\n" * 50_000
    log = Log()
    c = HttpConnection(log)
    tracemalloc.start()
    for i in range(0, len(flood), 1460):
        c.directions[0].feed(flood[i:i + 1460], 1, 0.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert ("problem", 0, "HTTP-MALFORMED-REQUEST") in log.events
    assert peak < 4 * DEFAULT_MAX_HEAD + 512 * 1024


def test_pipeline_depth_is_capped() -> None:
    log = run(req("GET", "/r") * 50, b"", max_pending=10)
    assert ("problem", 1, "HTTP-CAP-PIPELINE") in log.events
    assert sum(1 for e in log.events if e[0] == "unanswered") == 50


def test_upgrade_answered_101_ends_http_on_the_connection() -> None:
    client = req("GET", "/ws", extra="Connection: Upgrade\r\nUpgrade: websocket\r\n")
    log = run(client + b"\x81\x05hello-not-http", resp(101, length=False,
                                                        extra="Connection: Upgrade\r\n"
                                                        "Upgrade: websocket\r\n")
              + b"\x82\x03abc")
    assert ("tunnel",) in log.events
    assert not [e for e in log.events if e[0] == "problem"]


def test_upgrade_refused_continues_reading_requests() -> None:
    client = req("GET", "/ws", extra="Connection: Upgrade\r\nUpgrade: h2c\r\n") + req("GET", "/n")
    log = run(client, resp(200, b"no") + resp(200, b"ok"), interleave=True, step=5)
    assert ("response", 200, "/n") in log.events and ("tunnel",) not in log.events


def test_connect_2xx_is_a_tunnel() -> None:
    log = run(b"CONNECT pacs:443 HTTP/1.1\r\nHost: pacs:443\r\n\r\n\x16\x03\x01tls",
              b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03tls")
    assert ("tunnel",) in log.events
    assert not [e for e in log.events if e[0] == "problem"]


def test_control_characters_in_heads_are_escaped() -> None:
    log = Log()
    c = HttpConnection(log)
    c.directions[0].feed(b"GET /a HTTP/1.1\r\nHost: a\r\nUser-Agent: x\x85\xff[31m\r\n\r\n", 1, 0)
    msg = c.responses.pending[0]
    ua = msg.header("user-agent")
    assert ua == "x\\x85\\xff[31m"


@pytest.mark.parametrize("head,verdict", [
    (b"GET /dicom-web/studies HTTP/1.1\r\n", True),
    (b"POST /x?y HTTP/1.0\r\n", True),
    (b"GE", None),
    (b"GET /abc", None),
    (b"\x01\x00\x00\x00\x00\xcd\x00\x01", False),  # an A-ASSOCIATE-RQ
    (b"\x16\x03\x01\x02\x00\x01", False),  # a TLS ClientHello
    (b"GET / FOO/1.1\r\n", False),
    (b"HTTP/1.1 200 OK\r\n", False),  # a response is not how a client starts
])
def test_detection_by_request_line(head: bytes, verdict: bool | None) -> None:
    assert looks_like_request(head) is verdict
