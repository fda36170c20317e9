"""multipart/related bodies (RFC 2387, RFC 2046 section 5.1) read as a stream, bounded.

DICOMweb moves instances, frames and bulk data as multipart/related bodies that can be
gigabytes long, so the reader never holds a part: it finds each delimiter (CRLF, ``--``, the
boundary) with ``bytes.find`` over the new bytes plus a tail shorter than the delimiter, hands
part bytes to the handler as they pass and forgets them. The only buffers are that tail and one
part's header section, capped by ``max_head``. Hand-written because no well-kept library parses
multipart incrementally with a memory bound (the stdlib's ``email`` reads the whole body).
"""

from __future__ import annotations

from dissectors._plain import Record

from .mediatype import parse_media_type
from .message import wire_text

MAX_BOUNDARY = 200  # RFC 2046 allows 70 characters; more is refused, not searched for
DEFAULT_MAX_HEAD = 16 * 1024  # one part's header section

PREAMBLE, HEAD, BODY, AFTER, EPILOGUE, BROKEN = range(6)


class Part(Record):
    """One body part: its header fields and how many bytes it carried."""

    _fields = ("index", "headers", "content_type", "params", "bytes", "complete")
    __slots__ = _fields
    index: int
    headers: list[tuple[str, str]]
    content_type: str
    params: dict[str, str]
    bytes: int
    complete: bool

    def __init__(self, index: int, headers: list[tuple[str, str]]) -> None:
        self.index = index
        self.headers = headers
        ct = next((v for n, v in headers if n == "content-type"), None)
        self.content_type, self.params = parse_media_type(ct)
        self.bytes = 0
        self.complete = False

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name), None)


class MultipartHandler:
    """Receives parts as they stream (no-ops here)."""

    def part(self, part: Part) -> None:
        """A part's header section was read."""

    def part_data(self, part: Part, data: bytes) -> None:
        """Bytes of the part's body."""

    def part_end(self, part: Part) -> None:
        """The part ended (``part.complete``: at a delimiter, not cut off)."""

    def problem(self, code: str, text: str) -> None:
        """The body is not multipart as RFC 2046 says."""


def _parse_head(raw: bytes) -> list[tuple[str, str]] | None:
    out = []
    for line in raw.split(b"\r\n"):
        if not line:
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            return None
        out.append((wire_text(name).lower(), wire_text(value.strip())))
    return out


class MultipartReader:
    """Feed body bytes; the handler gets parts. ``close()`` at the end of the body."""

    __slots__ = ("handler", "delim", "state", "tail", "part", "parts", "max_head",
                 "preamble", "epilogue", "closed")

    def __init__(self, boundary: str, handler: MultipartHandler,
                 max_head: int = DEFAULT_MAX_HEAD) -> None:
        self.handler = handler
        self.max_head = max_head
        b = boundary.encode("latin-1", "replace")
        self.delim = b"\r\n--" + b
        self.state = PREAMBLE
        # The first delimiter may start the body: pretend a CRLF came before it.
        self.tail = b"\r\n"
        self.part: Part | None = None
        self.parts = 0
        self.preamble = 0
        self.epilogue = 0
        self.closed = False  # the close delimiter was seen
        if not boundary or len(b) > MAX_BOUNDARY:
            self._broken("MULTIPART-BOUNDARY",
                         f"boundary of {len(b)} characters (RFC 2046: 1 to 70)")

    def _broken(self, code: str, text: str) -> None:
        self.handler.problem(code, text)
        if self.part is not None:
            self.handler.part_end(self.part)
            self.part = None
        self.state = BROKEN
        self.tail = b""

    def feed(self, data: bytes) -> None:
        st = self.state
        if st == BROKEN or st == EPILOGUE:
            self.epilogue += len(data)
            return
        buf = self.tail + data if self.tail else bytes(data)
        self.tail = b""
        d = self.delim
        nd = len(d)
        i = 0
        n = len(buf)
        while i < n:
            st = self.state
            if st == BODY or st == PREAMBLE:
                j = buf.find(d, i)
                if j < 0:
                    keep = max(i, n - nd + 1)
                    self._emit(buf, i, keep)
                    self.tail = buf[keep:]
                    return
                self._emit(buf, i, j)
                i = j + nd
                self.state = AFTER
            elif st == AFTER:
                if n - i < 2:
                    self.tail = buf[i:]
                    return
                if buf[i:i + 2] == b"--":
                    self._end_part()
                    self.closed = True
                    self.state = EPILOGUE
                    self.epilogue += n - i - 2
                    return
                k = i
                while k < n and buf[k] in b" \t" and k - i < 256:
                    k += 1
                if n - k < 2 and k - i < 256:
                    self.tail = buf[i:]
                    return
                if buf[k:k + 2] != b"\r\n":
                    # "--boundary" followed by other bytes is not a delimiter (RFC 2046
                    # forbids the boundary inside a part): it is part data.
                    self.handler.problem("MULTIPART-DELIMITER",
                                         "boundary string followed by neither CRLF nor '--'")
                    self.state = BODY if self.part is not None else PREAMBLE
                    self._emit(d, 0, nd)
                    continue
                self._end_part()
                i = k + 2
                self.state = HEAD
            elif st == HEAD:
                if buf.startswith(b"\r\n", i):
                    head: bytes | None = b""
                    i += 2
                else:
                    j = buf.find(b"\r\n\r\n", i, i + self.max_head + 4)
                    if j < 0:
                        if n - i > self.max_head:
                            self._broken("MULTIPART-HEAD", "a part's header section is longer "
                                         f"than {self.max_head} bytes")
                            return
                        self.tail = buf[i:]
                        return
                    head, i = buf[i:j], j + 4
                headers = _parse_head(head) if head is not None else None
                if headers is None:
                    self._broken("MULTIPART-HEAD", "a part's header section is not header "
                                 "fields")
                    return
                self.part = Part(self.parts, headers)
                self.parts += 1
                self.handler.part(self.part)
                self.state = BODY
            else:
                return

    def _emit(self, buf: bytes, a: int, b: int) -> None:
        if b <= a:
            return
        p = self.part
        if p is None or self.state == PREAMBLE:
            self.preamble += b - a
            return
        p.bytes += b - a
        self.handler.part_data(p, buf[a:b])

    def _end_part(self) -> None:
        p = self.part
        if p is not None:
            p.complete = True
            self.part = None
            self.handler.part_end(p)

    def close(self) -> None:
        """The body ended: a part still open was cut off; no close delimiter is a problem."""
        if self.state == BROKEN:
            return
        if self.part is not None:
            if self.state == BODY and self.tail:
                self.part.bytes += len(self.tail)
                self.handler.part_data(self.part, self.tail)
            p, self.part = self.part, None
            self.handler.part_end(p)
        self.tail = b""
        if not self.closed:
            self.handler.problem("MULTIPART-UNTERMINATED",
                                 "the body ended without the close delimiter "
                                 "(--boundary--)" if self.parts else
                                 "no body part found: the boundary never appears")
        self.state = BROKEN
