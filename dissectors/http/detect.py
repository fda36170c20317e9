"""Is it HTTP? A request line at the start of a connection (the dispatch table's test).

Kept apart from the parser so that registering HTTP in the dispatch table costs a regular
expression, not h11's import, for a capture that holds no HTTP at all.
"""

from __future__ import annotations

import re

# A start line at the beginning of a line: where a lost direction picks up again. Compiled when
# first read (module __getattr__ below): every start imports this module, few captures hold HTTP.
_PATTERNS = {
    "REQUEST_LINE": rb"(?:^|(?<=\n))(?:GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE) "
                    rb"[\x21-\x7e]{1,8192} HTTP/1\.[01]\r?\n",
    "STATUS_LINE": rb"(?:^|(?<=\n))HTTP/1\.[01] [1-5][0-9][0-9][ \r\n]",
}
REQUEST_LINE: re.Pattern[bytes]
STATUS_LINE: re.Pattern[bytes]
# RFC 9113 3.4: a client speaking HTTP/2 with prior knowledge opens with this, not a request.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT",
           b"TRACE")


def looks_like_request(head: bytes) -> bool | None:
    """Is this the start of an HTTP/1.x request? None: too few bytes to tell.

    The detection a dispatcher uses: a request line, whatever the port (not a port number).
    """
    if not head:
        return None
    h2 = is_h2_preface(head)
    if h2 is not False:
        return h2
    sp = head.find(b" ", 0, 8)
    if sp < 0:
        if len(head) >= 8 or not any(m.startswith(head) for m in METHODS):
            return False
        return None
    if head[:sp] not in METHODS:
        return False
    eol = head.find(b"\n")
    if eol < 0:
        return None if len(head) < 8200 else False
    return __getattr__("REQUEST_LINE").match(head, 0, eol + 1) is not None




def is_h2_preface(head: bytes) -> bool | None:
    """Is this the HTTP/2 connection preface (RFC 9113 3.4)? None: a prefix of it, too short.

    Such a connection is HTTP all the same: the HTTP reader says it is HTTP/2 and what it
    leaves unread, instead of nobody saying anything.
    """
    n = min(len(head), len(H2_PREFACE))
    if bytes(head[:n]) != H2_PREFACE[:n]:
        return False
    return True if n == len(H2_PREFACE) else None


def __getattr__(name: str) -> re.Pattern[bytes]:
    """``REQUEST_LINE`` and ``STATUS_LINE``, compiled on first use and kept."""
    pattern = globals().get(name)
    if pattern is None:
        source = _PATTERNS.get(name)
        if source is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        pattern = globals()[name] = re.compile(source)
    return pattern  # type: ignore[no-any-return]
