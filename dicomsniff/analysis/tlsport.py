"""TLS in the dispatch table: how a TLS connection is recognised, and the one TLS finding about
clear traffic (TLS-PLAIN-TO-TLS-PORT).

The analyzer itself (:mod:`.tls`: the record layer, the handshake parser, certificates,
decryption) is imported when the first ClientHello or TLS record is seen, so a capture without
TLS never loads it (nor ``hmac``, ``hashlib``, ``datetime``).
"""

from __future__ import annotations

from typing import Any

from dissectors.tls.records import plausible_tls, plausible_tls_record

from ..model import Finding
from . import dispatch
from .dicom import WELL_KNOWN_PORTS as DICOM_PORTS  # PS3.15 B.1: 2762 for TLS
from .rules import tls as codes

TLS_PORTS = frozenset({2762, 2761})  # conventionally TLS


def detect(head: bytes, side: int) -> bool | None:
    """A connection whose start was captured is TLS when the client's first record is a
    handshake record carrying a ClientHello (RFC 8446 5.1, 4.1.2), whatever the port."""
    if side != 0:
        return False
    return plausible_tls(head)


def pickup(head: bytes, ports: tuple[int, int], forced_ports: frozenset[int]) -> int | None:
    """A connection already running whose first payload is a TLS record header: the sender is
    the server if it sends from a DICOM/TLS port (or a lower port)."""
    if not plausible_tls_record(head):
        return None
    sp, dp = ports
    known = DICOM_PORTS | forced_ports
    if sp in known and dp not in known:
        return 1
    if dp in known and sp not in known:
        return 0
    return 1 if sp < dp else 0


def create(host: Any, conn: Any, side: int, midstream: bool, frame: int, ts: float) -> Any:
    """The TLSAnalyzer of a connection (:mod:`.tls`, loaded now)."""
    from .tls import TLSAnalyzer

    return TLSAnalyzer(host, conn, side, midstream, frame, ts)


TLS = dispatch.register(dispatch.AppProtocol(
    "tls", detect, create, pickup=pickup, ports=TLS_PORTS, priority=5, pickup_priority=50,
    detect_bytes=9))


def plain_to_tls_port(server: str, server_port: int, tls_servers: set[str],
                      answered: bool, ended_by: str, frame: int | None,
                      association: int | None) -> Finding | None:
    """A plain A-ASSOCIATE-RQ to a server that speaks TLS there (seen in this capture, or the
    conventional port 2762), left unanswered: the finding that says so."""
    if answered or not (server in tls_servers or server_port in TLS_PORTS):
        return None
    how = {"rst": "reset the connection", "fin": "closed the connection"}.get(
        ended_by, "did not answer")
    known = ("it speaks TLS there in other connections of this capture" if server in
             tls_servers else f"port {server_port} is the DICOM-over-TLS port")
    info = codes.TLS_PLAIN_TO_TLS_PORT
    from .rules.base import CODES

    c = CODES[info]
    return Finding(c.severity, info,
                   f"plain DICOM A-ASSOCIATE-RQ to {server}, which {how} without an "
                   f"A-ASSOCIATE-AC/RJ: {known}. Enable TLS on the client (with the CA and, "
                   "if required, a client certificate) or use the server's plain port",
                   frame, association, c.section, [frame] if frame else [])


class PlainToTLSPort:
    """Subscriber (``on_association``): an A-ASSOCIATE-RQ nobody answered, sent in clear to a
    server that speaks TLS there (TLS-PLAIN-TO-TLS-PORT), said in the association's
    findings before it is written out."""

    def __init__(self, host: Any) -> None:
        self.host = host

    def attach(self, host: Any) -> PlainToTLSPort:
        host.on_association.insert(0, self.on_association)
        return self

    def on_association(self, a: Any) -> None:
        if a.pdus.get("acceptor") or a.request_frame is None or a.tls is not None:
            return
        if any(f.code == codes.TLS_PLAIN_TO_TLS_PORT for f in a.findings):
            return  # judged already (by a Dask shard, whose associations are handed on)
        port = int(a.server.rsplit(":", 1)[1])
        how = "rst" if a.outcome == "closed" and "reset" in " ".join(
            f.message for f in a.findings if f.code == "ASSOC-CLOSED-NO-RELEASE") else "fin"
        f = plain_to_tls_port(a.server, port, self.host.tls_servers, False, how,
                              a.request_frame, a.id)
        if f is not None:
            a.findings.append(f)
            self.host.emit(f)
