"""TLS on a flow: the analyzer around dissectors.tls, its record, its findings in plain words.

A :class:`TLSFlow` is what the engine attaches to a TCP connection whose first client bytes
are a TLS ClientHello (on any port). Its ``sinks`` take the reassembled bytes; with a key log
the plaintext goes to the inner DICOM upper-layer parsers that ``start_inner`` returns (the
engine makes them exactly as for a clear connection, so associations, transactions, findings,
diagrams and exports follow). When the connection ends, :meth:`TLSFlow.finish` builds the
:class:`TLSSession` record (``{"type": "tls", ...}`` in --json) and the ``TLS-`` findings,
each saying which side refused whom and what to check.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from dissectors._plain import Record
from dissectors.net import format_endpoint, key_ports
from dissectors.tls import tables as t
from dissectors.tls.connection import (
    Alert,
    Problem,
    Step,
    TLSConnection,
)
from dissectors.tls.keylog import KeyLog
from dissectors.ul.stream import PDU_NAMES, plausible_pdu

from ..model import Finding
from . import dispatch
from .dicom import WELL_KNOWN_PORTS as DICOM_PORTS
from .rules import tls as codes

SIDE_NAMES = ("client", "server")
_PROBLEM_CODES = {"RECORD-MALFORMED": codes.TLS_MALFORMED,
                  "HANDSHAKE-MALFORMED": codes.TLS_MALFORMED,
                  "ALERT-MALFORMED": codes.TLS_MALFORMED,
                  "CLEAR-APPDATA": codes.TLS_MALFORMED,
                  "HELLO-MISMATCH": codes.TLS_MALFORMED,
                  "HANDSHAKE-TOO-LARGE": codes.TLS_HANDSHAKE_TOO_LARGE,
                  "GAP": codes.TLS_GAP,
                  "DECRYPT-FAILED": codes.TLS_DECRYPT_FAILED,
                  "CIPHER-UNSUPPORTED": codes.TLS_CIPHER_UNSUPPORTED}
ENCRYPTED_ALERT_SIZES = frozenset({19, 24, 26, 34})  # 2-byte alert + type + AEAD tag (16/8)


def _resync(c: TLSConnection) -> dict[str, int] | None:
    """What the gaps in the capture did to this connection (None: no gap)."""
    d0, d1 = c.sides
    if not (d0.gaps or d1.gaps):
        return None
    return {"gaps": d0.gaps + d1.gaps, "inside_record": d0.inside_record + d1.inside_record,
            "resumed": d0.resumed + d1.resumed, "not_resumed": d0.not_resumed + d1.not_resumed,
            "records_skipped": d0.records_skipped + d1.records_skipped}


def _iso(d: _dt.datetime | None) -> str | None:
    return None if d is None else d.strftime("%Y-%m-%dT%H:%M:%SZ")


class TLSSession(Record):
    """One TLS connection as reported: the ``{"type": "tls"}`` record of --json."""

    _fields = ("id", "client", "server", "start", "end", "first_frame", "last_frame",
               "version", "cipher_suite", "sni", "alpn", "offered_versions",
               "offered_cipher_suites", "resumed", "hello_retry_request", "hello_retry_group",
               "certificate_requested", "client_certificate_sent", "certificates", "alerts",
               "outcome", "decrypted", "association", "bytes", "application_bytes", "ended_by",
               "handshake", "findings", "keylog", "midstream", "http_connection", "resync")
    __slots__ = _fields

    def __init__(self, **kw: Any) -> None:
        for f in self._fields:
            setattr(self, f, kw.get(f))

    def to_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {"type": "tls"}
        for f in self._fields:
            if f != "findings":
                rec[f] = getattr(self, f)
        rec["findings"] = len(self.findings or ())
        return rec

    def association_summary(self) -> dict[str, Any]:
        """The ``"tls"`` object of a decrypted association's record."""
        return {"id": self.id, "version": self.version, "cipher_suite": self.cipher_suite,
                "sni": self.sni, "alpn": self.alpn, "resumed": self.resumed,
                "hello_retry_request": self.hello_retry_request, "decrypted": self.decrypted,
                "client_certificate_sent": self.client_certificate_sent,
                "handshake": [[h["by"], h["message"], h["frame"]] for h in self.handshake or ()
                              if h["message"] != "application_data"]}


class TLSFlow:
    """The TLS analyzer of one TCP connection (client is side 0)."""

    __slots__ = ("id", "client", "server", "server_port", "conn", "sinks", "start_inner",
                 "association", "first_frame", "start", "keylog_given", "dicom_port",
                 "midstream", "http_connection")

    def __init__(self, flow_id: int, client: str, server: str, server_port: int,
                 keylog: KeyLog | None, start_inner: Callable[[TLSFlow], tuple | None] | None,
                 frame: int, ts: float, *, dicom_port: bool = False,
                 max_handshake: int | None = None, midstream: bool = False) -> None:
        self.id, self.client, self.server, self.server_port = flow_id, client, server, \
            server_port
        kw = {} if max_handshake is None else {"max_handshake": max_handshake}
        self.conn = TLSConnection(keylog, inner=self._inner, midstream=midstream, **kw)
        self.midstream = midstream
        self.sinks = self.conn.sides
        self.start_inner = start_inner
        self.association: int | None = None  # id of the decrypted association, if any
        self.http_connection: int | None = None  # id of the decrypted HTTP connection
        self.first_frame, self.start = frame, ts
        self.keylog_given = keylog is not None
        self.dicom_port = dicom_port or server_port in DICOM_PORTS

    def _inner(self, conn: TLSConnection) -> tuple | None:
        return None if self.start_inner is None else self.start_inner(self)

    # -- the record and its findings ------------------------------------------------------------
    def finish(self, ended_by: str, last_frame: int, end: float,
               server_first: bytes | None = None) -> TLSSession:
        """The connection is over (``ended_by``: fin, rst, eof). ``server_first``: the server's
        first bytes when they were not TLS (to say what a plain server answered)."""
        c = self.conn
        ch, sh = c.client_hello, c.server_hello
        certs = []
        for side, chain in enumerate(c.certificates):
            for cert in chain or ():
                certs.append({"sent_by": SIDE_NAMES[side], "subject": cert.subject,
                              "issuer": cert.issuer, "not_before": _iso(cert.not_before),
                              "not_after": _iso(cert.not_after), "key": cert.key,
                              "self_signed": cert.self_signed, "san": cert.san,
                              "error": cert.error})
        alerts = [{"by": SIDE_NAMES[a.side], "level": a.level, "description": a.description,
                   "frame": a.frame} for a in c.alerts]
        steps = [{"by": SIDE_NAMES[e.side], "message": e.name, "frame": e.frame,
                  "time": e.ts, "opaque": e.opaque} for e in c.events if isinstance(e, Step)]
        plain = [d.plain_bytes for d in c.sides]
        fatal = [a for a in c.alerts if a.level == "fatal"]
        if c.decrypted and any(plain):
            outcome = "decrypted"
        elif self.midstream and not fatal:
            outcome = "encrypted"
        elif fatal or sh is None or (c.version != t.TLS13 and not c.handshake_complete):
            outcome = "handshake_failed"
        else:
            outcome = "encrypted"
        s = TLSSession(
            id=self.id, client=self.client, server=self.server, start=self.start, end=end,
            first_frame=self.first_frame, last_frame=last_frame, version=c.version_name,
            cipher_suite=c.suite_name, sni=c.sni, alpn=c.alpn,
            offered_versions=[t.version_name(v) for v in (ch.versions or [ch.legacy_version])]
            if ch else [],
            offered_cipher_suites=[t.suite_name(x) for x in ch.cipher_suites[:64]] if ch else [],
            resumed=c.resumed, hello_retry_request=c.hrr,
            hello_retry_group=None if c.hrr_group is None else t.GROUPS.get(
                c.hrr_group, f"0x{c.hrr_group:04X}"),
            certificate_requested=c.certificate_requested,
            client_certificate_sent=c.client_certificate_sent, certificates=certs,
            alerts=alerts, outcome=outcome, decrypted=c.decrypted,
            association=self.association,
            bytes={"client": c.sides[0].bytes_in, "server": c.sides[1].bytes_in},
            application_bytes={"client": c.sides[0].app_bytes, "server": c.sides[1].app_bytes},
            ended_by=ended_by, handshake=steps, findings=[],
            keylog=None if not self.keylog_given else ("found" if c.keys else "missing"),
            midstream=self.midstream, http_connection=self.http_connection,
            resync=_resync(c))
        s.findings = self._findings(s, fatal, server_first, end)
        return s

    def _finding(self, s: TLSSession, code: str, message: str, frame: int | None,
                 severity: str | None = None) -> Finding:
        from .rules.base import CODES

        info = CODES[code]
        return Finding(severity or info.severity, code, message, frame, self.association,
                       info.section, [frame] if frame else [])

    def _findings(self, s: TLSSession, fatal: list[Alert], server_first: bytes | None,
                  end: float) -> list[Finding]:
        c = self.conn
        out: list[Finding] = []
        who = f"{self.client} -> {self.server}"
        for a in fatal:
            by, other = SIDE_NAMES[a.side], SIDE_NAMES[1 - a.side]
            advice = t.ALERT_ADVICE.get(a.description or "", "")
            refused = {"unknown_ca": f"the {other}'s certificate (issuer not trusted)",
                       "bad_certificate": f"the {other}'s certificate",
                       "certificate_expired": f"the {other}'s certificate (expired)",
                       "certificate_required": "a client without certificate",
                       "handshake_failure": f"the {other}'s handshake",
                       "protocol_version": f"the {other}'s TLS versions"}.get(
                           a.description or "", f"the {other}")
            out.append(self._finding(
                s, codes.TLS_ALERT_FATAL,
                f"TLS {who}: the {by} sent a fatal {a.description} alert, refusing "
                f"{refused}" + (f"; {advice}" if advice else ""), a.frame))
        when = _dt.datetime.fromtimestamp(end, _dt.timezone.utc) if end else None
        for side, chain in enumerate(c.certificates):
            for cert in (chain or [])[:1]:  # the end-entity certificate
                if when is None or cert.not_after is None or cert.not_before is None:
                    continue
                if cert.not_after < when or cert.not_before > when:
                    state = "expired on" if cert.not_after < when else "not valid before"
                    date = _iso(cert.not_after if cert.not_after < when else cert.not_before)
                    out.append(self._finding(
                        s, codes.TLS_CERT_EXPIRED,
                        f"TLS {who}: the {SIDE_NAMES[side]}'s certificate {cert.subject} "
                        f"{state} {date} (capture time {_iso(when)}): renew it, and check "
                        "both machines' clocks", self.first_frame))
        if c.certificate_requested and c.client_certificate_sent is False:
            out.append(self._finding(
                s, codes.TLS_CLIENT_CERT_MISSING,
                f"TLS {who}: the server asked for a client certificate and the client sent "
                "none: configure the client's certificate and key (or let the server accept "
                "clients without one)", self.first_frame))
        if c.version is not None and c.version < t.TLS12:
            out.append(self._finding(
                s, codes.TLS_OLD_VERSION,
                f"TLS {who}: {c.version_name} negotiated; TLS 1.0 and 1.1 are deprecated "
                "(RFC 8996) and refused by the BCP 195 profiles: enable TLS 1.2 or 1.3 on the "
                "older side", self.first_frame))
        if c.suite is not None and c.suite.weak:
            etm = bool(c.client_hello and c.server_hello and c.client_hello.etm
                       and c.server_hello.etm)
            if not (c.suite.cipher.endswith("CBC") and etm and c.suite.kex not in ("RSA",)):
                out.append(self._finding(
                    s, codes.TLS_WEAK_CIPHER,
                    f"TLS {who}: {c.suite_name} chosen: {c.suite.weak}", self.first_frame))
        if c.server_hello is None and c.client_hello is not None:
            if server_first:
                kind = plausible_pdu(server_first, 0)
                said = (f"a plain DICOM {PDU_NAMES[server_first[0]]}" if kind
                        and server_first[0] in PDU_NAMES else
                        f"{len(server_first)} bytes that are not TLS")
            else:
                said = {"rst": "a reset", "fin": "closing the connection"}.get(
                    s.ended_by, "nothing before the capture ended")
            out.append(self._finding(
                s, codes.TLS_NOT_TLS_SERVER,
                f"TLS {who}: the client sent a TLS ClientHello and the server answered with "
                f"{said}: it does not speak TLS on port {self.server_port} (a plain DICOM "
                "port?). Use the server's TLS port, or turn TLS off on the client",
                self.first_frame))
        srv = c.sides[1]
        # The server's protected flight is 4-5 records (EncryptedExtensions, CertificateRequest,
        # Certificate, CertificateVerify, Finished); one more of alert size, then the end.
        refused = (c.version == t.TLS13 and not c.keys and not fatal
                   and s.ended_by in ("rst", "fin") and srv.app_records <= 6
                   and srv.last_len in ENCRYPTED_ALERT_SIZES)
        if refused:
            out.append(self._finding(
                s, codes.TLS_LIKELY_REFUSED,
                f"TLS {who}: the TLS 1.3 connection ended right after the handshake; the "
                f"server's last record ({srv.last_len} bytes) has the size of an encrypted "
                "alert. In TLS 1.3 a refused client certificate (certificate_required) looks "
                "exactly like this; a key log would show the alert", srv.last_frame))
        if (self.keylog_given and c.keys is False and s.outcome == "encrypted"
                and not refused):
            rnd = c.client_hello.random.hex()[:16] if c.client_hello else "?"
            out.append(self._finding(
                s, codes.TLS_NO_KEY,
                f"TLS {who}: the key log has no secrets for this session (client random "
                f"{rnd}...): record the key log on the same run as the capture",
                self.first_frame))
        if s.outcome == "encrypted" and self.dicom_port and not refused:
            out.append(self._finding(
                s, codes.TLS_ENCRYPTED_DICOM,
                f"TLS {who}: {c.version_name or 'TLS'} on DICOM port {self.server_port}, "
                f"{s.application_bytes['client']} + {s.application_bytes['server']} bytes of "
                "encrypted data: DICOM not decoded (give --tls-keylog with the key log the "
                "client or server wrote)", self.first_frame))
        seen: set[tuple[int, str]] = set()
        for e in c.events:
            if isinstance(e, Problem) and (e.side, e.code) not in seen:
                seen.add((e.side, e.code))
                code = _PROBLEM_CODES.get(e.code, codes.TLS_MALFORMED)
                if code == codes.TLS_CIPHER_UNSUPPORTED and not self.keylog_given:
                    continue
                out.append(self._finding(s, code, f"TLS {who}, {SIDE_NAMES[e.side]}: "
                                         f"{e.message}", e.frame))
        return out


class KeyLogError(Exception):
    """A key log file that cannot be read (the CLI prints it as one line, exit 2)."""


class FollowedKeyLog(KeyLog):
    """Key log files that peers are still writing (``live --tls-keylog``): a session it has
    no secrets for makes it read what was appended since (complete lines, at most
    ``MAX_FOLLOW_READ`` bytes a look, at most every ``every`` seconds), so sessions
    that start after the capture did are decrypted too. A file cut short starts over."""

    __slots__ = ("offsets", "every", "_last")
    MAX_FOLLOW_READ = 1 << 20

    def __init__(self, paths: list[str], every: float = 0.005) -> None:
        super().__init__()
        self.offsets = dict.fromkeys(paths, 0)
        self.every = every  # seconds between looks at the files
        self._last = -every

    def follow(self) -> bool:
        """Read what the files gained; True if there was anything."""
        import os
        import time

        now = time.monotonic()
        if now - self._last < self.every:
            return False
        self._last = now
        grew = False
        for path, done in self.offsets.items():
            try:
                with open(path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    if size < done:  # truncated or replaced: from the start
                        done = 0
                    if size == done:
                        continue
                    f.seek(done)
                    chunk = f.read(self.MAX_FOLLOW_READ)
            except OSError:
                continue
            end = chunk.rfind(b"\n") + 1  # complete lines only: the rest is being written
            if end:
                self.add_lines(chunk[:end].splitlines())
                self.offsets[path] = done + end
                grew = True
        return grew

    def secrets(self, client_random: bytes) -> dict[str, bytes] | None:
        got = super().secrets(client_random)
        if got is None and self.follow():
            got = super().secrets(client_random)
        return got


def load_keylogs(paths: list[str], follow: bool = False) -> KeyLog | None:
    """Every ``--tls-keylog FILE`` into one KeyLog (None when none was given). ``follow``
    (live): the files are followed as peers append to them, and may be empty at the start."""
    if not paths:
        return None
    if follow:
        fk = FollowedKeyLog(list(paths))
        for p in paths:
            try:
                with open(p, "rb"):
                    pass
            except OSError as exc:
                raise KeyLogError(f"cannot read key log {p}: {exc.strerror or exc}") from None
        fk.follow()
        return fk
    kl = KeyLog()
    for p in paths:
        try:
            kl.add_file(p)
        except OSError as exc:
            raise KeyLogError(f"cannot read key log {p}: {exc.strerror or exc}") from None
    if not len(kl):
        raise KeyLogError(f"no TLS secrets in {', '.join(paths)} ({kl.malformed} malformed "
                          "line(s)): expected the NSS key log format that SSLKEYLOGFILE "
                          "writes (CLIENT_RANDOM ... / CLIENT_TRAFFIC_SECRET_0 ...)")
    return kl


# -- the analyzer in the dispatch table ---------------------------------------------------------

MAX_PLAIN_HEAD = 8192  # plaintext held while the inner protocol is not yet recognised


class _Plain:
    """Where one side's decrypted bytes go: held until the dispatch table recognises the
    inner protocol (DICOM, or HTTP for DICOMweb), then straight to the inner analyzer."""

    __slots__ = ("tls", "side")

    def __init__(self, tls: TLSAnalyzer, side: int) -> None:
        self.tls, self.side = tls, side

    def feed(self, data, frame: int, ts: float) -> None:
        self.tls.plaintext(self.side, data, frame, ts)

    def gap(self, missing: int, frame: int, ts: float) -> None:
        inner = self.tls.inner
        if inner is not None:
            inner.gap(self.side, missing, frame, ts)

    def close(self, frame: int, ts: float) -> None:
        """The inner analyzer is closed once, by TLSAnalyzer.close."""


class TLSAnalyzer(dispatch.FlowAnalyzer):
    """TLS on a connection (dispatch table entry "tls"), an outer analyzer: the records are
    dissected (and decrypted with the host's key log, ``host.tls_keylog``), the plaintext goes
    to an inner analyzer chosen by the same table. When the connection ends its
    :class:`TLSSession` goes to ``host.on_tls``; a decrypted association is returned to the
    engine like a clear one, carrying the TLS facts and findings."""

    protocol = "tls"
    __slots__ = ("host", "conn", "flow", "sinks", "inner", "head", "verdict", "_plain_dead")

    def __init__(self, host: Any, conn: Any, side: int, midstream: bool, frame: int,
                 ts: float) -> None:
        self.host, self.conn = host, conn
        _sp, dp = key_ports(conn.keys[0])
        self.flow = TLSFlow(host.next_tls_id(), format_endpoint(conn.keys[0], 0),
                            format_endpoint(conn.keys[0], 1), dp,
                            getattr(host, "tls_keylog", None), self._sinks, frame, ts,
                            dicom_port=dp in host.ports, midstream=midstream)
        self.sinks = self.flow.sinks
        self.inner: dispatch.FlowAnalyzer | None = None
        self.head = [bytearray(), bytearray()]
        self.verdict = True
        self._plain_dead = False

    @property
    def tracker(self) -> Any:
        """The inner DICOM association's tracker (the engine's rules read its counts)."""
        return getattr(self.inner, "tracker", None)

    def _sinks(self, flow: TLSFlow) -> tuple:
        return (_Plain(self, 0), _Plain(self, 1))

    def plaintext(self, side: int, data, frame: int, ts: float) -> None:
        if self.inner is not None:
            self.inner.feed(side, data, frame, ts)
            return
        if self._plain_dead:
            return
        head = self.head[side]
        taken = min(len(data), MAX_PLAIN_HEAD - len(head))
        head += data[:taken]
        proto = dispatch.choose(bytes(head), side, final=len(head) >= MAX_PLAIN_HEAD)
        if proto is None:
            return
        if proto is False or proto.name == "tls":
            self._plain_dead = True  # decrypted, but nothing we analyse inside
            return
        self.inner = inner = proto.create(self.host, self.conn, side, False, frame, ts)
        other = self.head[1 - side]
        self.head = [bytearray(), bytearray()]
        inner.feed(side, bytes(head), frame, ts)
        if taken < len(data):
            inner.feed(side, data[taken:], frame, ts)
        if other:  # the other side spoke first (reordered capture): its bytes follow
            inner.feed(1 - side, bytes(other), frame, ts)
        assoc = getattr(inner, "assoc", None)
        if assoc is not None:
            self.flow.association = assoc.id
        http = getattr(inner, "http", None)  # analysis/http.py: HTTPS carrying DICOMweb
        if http is not None and getattr(http, "info", None) is not None:
            self.flow.http_connection = http.info.id

    def close(self, how: str, frame: int, ts: float) -> Any:
        conn, flow = self.conn, self.flow
        if conn.tcp is not None:
            for side in (0, 1):
                conn.tcp[side].flush(frame, ts)
        server_first = bytes(self.sinks[1].head) if self.sinks[1].state == 3 else None
        a = self.inner.close(how, frame, ts) if self.inner is not None else None
        session = flow.finish(how, conn.last_frame or frame, conn.last_ts or ts,
                              server_first=server_first)
        host = self.host
        tracker = self.tracker
        alone = a is None or tracker is None
        if not alone:
            a.tls = session.association_summary()
            for f in session.findings:
                tracker.finding(f.severity, f.code, f.message, f.frame, f.section)
        else:
            for f in session.findings:
                f.tls = session.id
        tell(host, session)  # the connection first, then its findings (live output order)
        if alone:
            for f in session.findings:
                host.emit(f)
        return a


def tell(host: Any, session: TLSSession) -> None:
    """A TLS connection ended: remembered (a server that answered in TLS, for
    TLS-PLAIN-TO-TLS-PORT), kept, and handed to ``host.on_tls``. Also what the ``-j`` merge
    calls on the command's engine (parallel/local.py), in capture order."""
    if session.version is not None and len(host.tls_servers) < host.limits.max_ignored:
        host.tls_servers.add(session.server)
    if host.keep:
        host.tls_sessions.append(session)
    for cb in host.on_tls:
        cb(session)

