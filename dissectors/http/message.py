"""One HTTP message (a request or a response) as the passive parser knows it.

A message is a head (start line and header fields) plus counters for its body: the body itself
is never kept here. Whoever wants body bytes gets them as they pass through the handler (see
:class:`dissectors.http.stream.HttpHandler`). Header names are lower-cased by h11; values are
the wire bytes, decoded as Latin-1 (RFC 9110 section 5.5: field values are octets, and Latin-1
maps each to one character, so nothing is lost or invented), then escaped by ``wire_text``.
"""

from __future__ import annotations

from dissectors._plain import Record
from dissectors.wiretext import from_bytes

CLIENT = 0  # the side that sent the first request: its bytes are requests
SERVER = 1



def wire_text(raw: bytes) -> str:
    """Wire octets as text for people: :func:`dissectors.wiretext.from_bytes`, the escaping
    every output shares (printable ASCII kept, every other octet and the backslash as
    ``\\xNN``)."""
    return from_bytes(raw)


def safe_text(text: str) -> str:
    """A string decoded from the wire (percent-decoding, JSON, a data set) escaped the same
    way: its UTF-8 octets through :func:`wire_text`."""
    return from_bytes(text.encode("utf-8", "backslashreplace"))


class HttpMessage(Record):
    """A request (``method``, ``target``) or a response (``status``, ``reason``)."""

    _fields = ("side", "index", "method", "target", "status", "reason", "http_version",
               "headers", "head_frame", "head_ts", "end_frame", "end_ts", "body_bytes",
               "body_missing", "complete", "chunked", "content_length", "informational",
               "request", "error")
    __slots__ = _fields + ("tag",)  # tag: whatever the handler attaches (not compared)
    side: int
    index: int  # 0-based position on its connection (a response shares its request's index)
    method: str | None
    target: str | None
    status: int | None
    reason: str | None
    http_version: str
    headers: list[tuple[str, str]]
    head_frame: int
    head_ts: float
    end_frame: int | None
    end_ts: float | None
    body_bytes: int  # body octets after transfer decoding (chunk framing excluded)
    body_missing: int  # octets of the body the capture never had (TCP gaps)
    complete: bool  # the end of the body was seen
    chunked: bool
    content_length: int | None
    informational: list[tuple[int, int]]  # 1xx responses before it: (status, frame)
    request: HttpMessage | None  # for a response: the request it answers
    error: str | None  # why the message could not be read to its end

    def __init__(self, side: int, index: int, http_version: str,
                 headers: list[tuple[str, str]], head_frame: int, head_ts: float, *,
                 method: str | None = None, target: str | None = None,
                 status: int | None = None, reason: str | None = None) -> None:
        self.side = side
        self.index = index
        self.method = method
        self.target = target
        self.status = status
        self.reason = reason
        self.http_version = http_version
        self.headers = headers
        self.head_frame = head_frame
        self.head_ts = head_ts
        self.end_frame = None
        self.end_ts = None
        self.body_bytes = 0
        self.body_missing = 0
        self.complete = False
        self.chunked = False
        self.content_length = None
        self.informational = []
        self.request = None
        self.error = None
        self.tag: object = None
        for name, value in headers:
            if name == "transfer-encoding" and "chunked" in value.lower():
                self.chunked = True
            elif name == "content-length" and value.strip().isdigit():
                self.content_length = int(value.strip())

    @property
    def is_request(self) -> bool:
        return self.side == CLIENT

    def header(self, name: str) -> str | None:
        """The first value of a header field (``name`` in lower case), or None."""
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name]
