"""HTTP in the protocol dispatch table: a connection whose client starts with a request line
goes to :class:`HttpFlowAnalyzer`, whatever its port (see :mod:`.dispatch`); what it carries
is read as DICOMweb by :mod:`dicomsniff.dicomweb`.

The flow analyzer is thin: its sinks are the two directions of a
:class:`~dissectors.http.stream.HttpConnection` whose handler is a
:class:`~.analyzer.DicomwebConnection`. Ids come from the host (one sequence for associations
and HTTP connections, one for transactions), findings go through the host's ``emit`` (counted
with the DICOM ones, ``--fail-on`` sees them), and the connection's transactions are handed to
the :class:`~.analyzer.DicomwebAnalyzer` of the host (:func:`session`), whose hooks the outputs
subscribe to. Inside TLS, the TLS analyzer picks this protocol with ``dispatch.choose`` on the
plaintext and feeds it through :meth:`FlowAnalyzer.feed`.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from dissectors.http import detect as _detect
from dissectors.http.detect import looks_like_request
from dissectors.net import format_endpoint

from .dispatch import AppProtocol, FlowAnalyzer, register

if TYPE_CHECKING:
    from ..dicomweb.analyzer import DicomwebConnection
    from ..dicomweb.session import DicomwebAnalyzer

WELL_KNOWN_PORTS = frozenset({80, 8042, 8080})  # a hint only: detection is by request line
_SESSIONS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def session(host: Any) -> DicomwebAnalyzer:
    """The DICOMweb side of an engine (``Analyzer``): its hooks and what it keeps, sharing
    the host's ids, finding sink and ``keep``. A :class:`WebSession`: subscribing to it costs
    no import; the DICOMweb analyzer behind it is made when the first HTTP connection is."""
    web = _SESSIONS.get(host)
    if web is None:
        web = _SESSIONS[host] = WebSession(host)
    return web  # type: ignore[no-any-return]


class WebSession:
    """Stands for a host's :class:`~dicomsniff.dicomweb.session.DicomwebAnalyzer` until the
    capture shows HTTP: its hook lists (``on_transaction``, ``on_finding``, ``on_connection``,
    ``instance_policies``) are there from the start, and are the real analyzer's once it is
    made (:meth:`real`: by the first HTTP connection, or by reading any other attribute), so
    subscribers keep their order whenever they subscribed. A capture with no HTTP never loads
    the DICOMweb package."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.on_transaction: list[Any] = []
        self.on_finding: list[Any] = []
        self.on_connection: list[Any] = []
        self.instance_policies: list[Any] = []
        self._web: DicomwebAnalyzer | None = None

    def real(self) -> DicomwebAnalyzer:
        """The DICOMweb analyzer, made now if need be (the host's ids and ``keep`` as they
        are now: a -j worker has put its own id counters in by then)."""
        web = self._web
        if web is None:
            from ..dicomweb.session import DicomwebAnalyzer

            host = self.host
            web = DicomwebAnalyzer(keep=host.keep, next_id=host.next_transaction_id,
                                   emit=host.emit)
            web.on_transaction, web.on_finding = self.on_transaction, self.on_finding
            web.on_connection, web.instance_policies = self.on_connection, self.instance_policies
            self._web = web
        return web

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.real(), name)


class HttpFlowAnalyzer(FlowAnalyzer):
    """One HTTP connection in the engine: side 0 the client, side 1 the server."""

    protocol = "http"
    __slots__ = ("host", "conn", "web", "http", "sinks", "verdict", "closed")

    def __init__(self, host: Any, conn: Any, side: int, midstream: bool, frame: int,
                 ts: float) -> None:
        self.host = host
        self.conn = conn
        self.web = session(host).real()  # type: ignore[attr-defined]
        client, server = format_endpoint(conn.keys[0], 0), format_endpoint(conn.keys[0], 1)
        self.http: DicomwebConnection = self.web.open_connection(
            client, server, frame, ts, conn_id=host.next_association_id(), midstream=midstream)
        self.sinks = self.http.http.directions
        self.verdict: bool | None = True
        self.closed = [False, False]

    def pump(self, side: int) -> None:
        # A FIN ends that direction's bytes: a response read until the close ends here (not
        # at the other side's FIN), as RFC 9112 6.3 says and tshark reports.
        conn = self.conn
        if conn.fin[side] and not self.closed[side] and conn.tcp is not None and \
                not conn.tcp[side].held:
            self.closed[side] = True
            self.sinks[side].close(conn.last_frame, conn.last_ts)

    def close(self, how: str, frame: int, ts: float) -> None:
        conn = self.conn
        if conn.tcp is not None:
            for side in (0, 1):
                conn.tcp[side].flush(frame, ts)
        self.web.close_connection(self.http, how, frame, ts)
        return None  # not an association: the DICOMweb session hands the connection out


def detect(head: bytes, side: int) -> bool | None:
    """The client's first bytes are an HTTP/1.x request line."""
    if side != 0:
        return False
    return looks_like_request(head)


def pickup(head: bytes, ports: tuple[int, int], forced_ports: frozenset[int]) -> int | None:
    """A connection already running: a request line (its sender is the client) or a status
    line (its sender is the server) at the start of the first payload seen."""
    h = bytes(head[:8200])
    if looks_like_request(h):
        return 0
    if _detect.STATUS_LINE.match(h):
        return 1
    return None


def create(host: Any, conn: Any, side: int, midstream: bool, frame: int,
           ts: float) -> HttpFlowAnalyzer:
    return HttpFlowAnalyzer(host, conn, side, midstream, frame, ts)


HTTP = register(AppProtocol("http", detect, create, pickup=pickup, ports=WELL_KNOWN_PORTS,
                            priority=20, pickup_priority=20, detect_bytes=8200))
