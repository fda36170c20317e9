"""What the reader of a connection and the judge of its exchanges share.

:class:`Exchange` is one request and its response as they stream (the transaction being
filled, the two body readers); :class:`FindingSink` is all the judge needs of a connection (a
place to raise findings); :func:`accept_words` names an Accept header's media ranges. They live
here, below both :mod:`.analyzer` (which reads) and :mod:`.judge` (which decides), so neither
imports the other's module for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from dissectors.http.mediatype import parse_accept

if TYPE_CHECKING:
    from dissectors.http.message import HttpMessage

    from .bodies import BodyReader
    from .model import WebTransaction
    from .services import WebRequest


class FindingSink(Protocol):
    """Where the judge raises a finding (a :class:`~.analyzer.DicomwebConnection`)."""

    def finding(self, frame: int | None, severity: str, code: str, message: str,
                section: str | None) -> None: ...


class Exchange:
    """What a request carries between its head and its response's end."""

    __slots__ = ("txn", "request", "web", "req_body", "resp_body", "response", "request_ended",
                 "response_ended")

    def __init__(self, txn: WebTransaction, request: HttpMessage, web: WebRequest) -> None:
        self.txn = txn
        self.request = request
        self.web = web
        self.req_body: BodyReader | None = None
        self.resp_body: BodyReader | None = None
        self.response: HttpMessage | None = None
        self.request_ended = False
        self.response_ended = False


def accept_words(values: list[str]) -> list[str]:
    """Each media range of the Accept header(s), with its transfer-syntax named."""
    from pydicom.uid import UID

    out = []
    for v in values:
        for mtype, params in parse_accept(v):
            word = mtype
            inner = params.get("type")
            if inner:
                word += f" of {inner}"
            ts = params.get("transfer-syntax")
            if ts:
                name = UID(ts).name if ts != "*" else "any transfer syntax"
                word += f" in {name}" if name != ts else f" in transfer syntax {ts}"
            out.append(word)
    return out
