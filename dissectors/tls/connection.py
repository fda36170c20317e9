"""One TLS connection, sans-IO: two record-layer directions and the handshake facts they share.

``TLSConnection.sides[0]`` (the client) and ``sides[1]`` (the server) are TCP sinks
(``feed(data, frame, ts)``, ``gap(n, frame, ts)``, ``close(frame, ts)``), like the DICOM
upper-layer parser, so the TCP reassembler does not know which it feeds. What they learn lands
on the connection: versions and suites offered and chosen, SNI, ALPN, certificates, whether a
client certificate was asked for and sent, alerts, resumption, HelloRetryRequest; milestones
and problems are appended to ``events`` for the caller to drain.

With a key log, records are decrypted one at a time (never per packet) and the application
data goes to ``inner`` sinks (the DICOM parser of the decrypted stream). Without keys,
application data records are counted and skipped without being buffered: an encrypted DICOM
night costs one header parse per record.

Bounds: a record is at most 2^14 + 2048 bytes (RFC 5246 6.2.3; anything longer stops that
direction with a finding, since a lying length leaves no way to find the next header); a
handshake message at most ``max_handshake`` bytes (longer ones are skipped, counted and
reported); at most MAX_EVENTS events and MAX_ALERTS alerts are kept per connection.
"""

from __future__ import annotations

from collections.abc import Callable

from dissectors._plain import Record

from . import tables as t
from .crypto import (
    DecryptError,
    NullUnverified,
    Protection,
    next_traffic_secret,
    supported,
    tls12_protections,
)
from .handshake import (
    BadMessage,
    CertInfo,
    ClientHello,
    ServerHello,
    handshake_header,
    parse_certificate,
    parse_client_hello,
    parse_encrypted_extensions,
    parse_server_hello,
)
from .keylog import KeyLog
from .records import MAX_RECORD
from .records import RECORD_HEADER as _REC
from .records import plausible_tls as plausible_tls  # re-exported
from .records import plausible_tls_record as plausible_tls_record

DEFAULT_MAX_HANDSHAKE = 256 * 1024  # a handshake message; certificate chains are ~2-20 KB
MAX_EVENTS = 200
MAX_ALERTS = 20

HEADER, BODY, SKIP, LOST, RESYNC = 0, 1, 2, 3, 4
# After a gap that crosses a record boundary: how far to look for the next record header, the
# smallest protected record (header + AEAD tag: bounds how many records the gap can hide) and
# how many sequence numbers to try when decryption resumes (each is one AEAD/MAC check).
RESYNC_WINDOW = 2 * (MAX_RECORD + 5) + 5
MIN_PROTECTED_RECORD = 5 + 16
MAX_SEQ_TRIALS = 2048
MAX_LATE_TRIES = 8  # key log lookups after the ServerHello (a key log still being written)


class Step(Record):
    """A handshake milestone (client_hello, server_hello, certificate, finished, ...).

    ``opaque``: seen only as an encrypted record (no keys), so named by its place."""

    _fields = ("side", "name", "frame", "ts", "opaque")
    __slots__ = _fields

    def __init__(self, side: int, name: str, frame: int, ts: float,
                 opaque: bool = False) -> None:
        self.side, self.name, self.frame, self.ts, self.opaque = side, name, frame, ts, \
            opaque


class Alert(Record):
    """An alert record; level and description are None when it was encrypted and unreadable."""

    _fields = ("side", "level", "description", "frame", "ts")
    __slots__ = _fields

    def __init__(self, side: int, level: str | None, description: str | None, frame: int,
                 ts: float) -> None:
        self.side, self.level, self.description, self.frame, self.ts = (
            side, level, description, frame, ts)


class Problem(Record):
    """Something wrong with the bytes or the keys: ``code`` is the finding's code suffix."""

    _fields = ("side", "code", "message", "frame")
    __slots__ = _fields

    def __init__(self, side: int, code: str, message: str, frame: int) -> None:
        self.side, self.code, self.message, self.frame = side, code, message, frame


class TLSDirection:
    """The record layer of one direction: a TCP sink."""

    __slots__ = ("conn", "side", "state", "hdr", "body", "need", "ctype", "rversion", "skip",
                 "bytes_in", "records", "app_records", "app_bytes", "plain_bytes", "hs",
                 "hs_discard", "encrypted", "protect", "secret", "finished", "lost_bytes",
                 "decrypt_failures", "_first_app", "last_len", "last_frame", "head",
                 "last_ver", "rbuf", "rscan", "rlost", "gap_problem", "await_seq",
                 "chain_broken", "gaps", "resumed", "not_resumed", "records_skipped",
                 "inside_record", "protected_seen")

    def __init__(self, conn: TLSConnection, side: int) -> None:
        self.conn, self.side = conn, side
        self.state = HEADER
        self.hdr = bytearray()
        self.body = bytearray()
        self.need = 0
        self.ctype = 0
        self.rversion = 0
        self.skip = 0
        self.bytes_in = 0
        self.records = 0
        self.app_records = 0
        self.app_bytes = 0  # application data record bytes (ciphertext)
        self.plain_bytes = 0  # decrypted application data bytes
        self.hs = bytearray()
        self.hs_discard = 0
        self.encrypted = False  # records from now on are protected
        self.protect: Protection | NullUnverified | None = None  # None: no keys
        self.secret: bytes | None = None  # TLS 1.3 current traffic secret (KeyUpdate)
        self.finished = False
        self.lost_bytes = 0
        self.decrypt_failures = 0
        self._first_app = True
        self.last_len = 0  # length of the last record header seen (an encrypted alert's size)
        self.last_frame = 0
        self.head = bytearray()  # the first bytes (to say what a peer that is not TLS sent)
        # after a gap (see gap()): the bytes searched for the next header, how far the search
        # got, the bytes lost since the last whole record, the GAP problem (its message says
        # how it ended), the sequence number to re-derive, the TLS 1.0 IV chain broken
        self.last_ver: int | None = None
        self.rbuf = bytearray()
        self.rscan = 0
        self.rlost = 0
        self.gap_problem: Problem | None = None
        self.await_seq: tuple[int, int, bool] | None = None  # see gap()
        self.chain_broken = False
        self.gaps = self.resumed = self.not_resumed = self.records_skipped = 0
        self.inside_record = 0  # gaps inside one record: framing kept, that record lost
        self.protected_seen = 0  # protected records passed without keys (counted, skipped)

    # -- TCP sink ---------------------------------------------------------------------------
    def feed(self, data, frame: int, ts: float) -> None:
        n = len(data)
        if self.bytes_in < 16:
            self.head += data[:16 - self.bytes_in]
        self.bytes_in += n
        if self.state == LOST:
            self.lost_bytes += n
            return
        if self.state == RESYNC:
            self._resync(data, frame, ts)
            return
        self._consume(data, frame, ts)

    def _consume(self, data, frame: int, ts: float) -> None:
        n = len(data)
        mv = memoryview(data)
        i = 0
        while i < n:
            st = self.state
            if st == SKIP:
                k = min(self.skip, n - i)
                self.skip -= k
                i += k
                if not self.skip:
                    self.state = HEADER
            elif st == HEADER:
                take = min(5 - len(self.hdr), n - i)
                self.hdr += mv[i:i + take]
                i += take
                if len(self.hdr) < 5:
                    return
                ctype, ver, length = _REC.unpack_from(self.hdr, 0)
                self.hdr.clear()
                self.last_ver = ver
                if not 20 <= ctype <= 24 or ver >> 8 != 3 or length > MAX_RECORD or (
                        length == 0 and ctype != t.APPLICATION_DATA):
                    self._lose(f"not a TLS record header (type {ctype}, version 0x{ver:04X}, "
                               f"length {length}) after {self.records} record(s): the rest of "
                               "this direction cannot be followed", frame, n - i + 5)
                    return
                self.records += 1
                self.last_len = length
                self.last_frame = frame
                if (ctype == t.APPLICATION_DATA and self.encrypted and self.protect is None
                        and not self.protected_seen and self.conn.keys is False):
                    self.conn._late_keys(frame)  # the key log may have the session by now
                if ctype == t.APPLICATION_DATA and self.encrypted and self.protect is None:
                    self.protected_seen += 1
                    self._app_counted(length, frame, ts)
                    if length:
                        self.skip = length
                        self.state = SKIP
                    continue
                self.ctype, self.rversion, self.need = ctype, ver, length
                if length == 0:
                    self._record(ctype, ver, b"", frame, ts)
                else:
                    self.state = BODY
            elif st == BODY:
                take = min(self.need - len(self.body), n - i)
                self.body += mv[i:i + take]
                i += take
                if len(self.body) == self.need:
                    payload = bytes(self.body)
                    self.body.clear()
                    self.state = HEADER
                    self._record(self.ctype, self.rversion, payload, frame, ts)
                    if self.state == LOST:
                        self.lost_bytes += n - i
                        return
            else:  # LOST while processing a record
                self.lost_bytes += n - i
                return

    def gap(self, missing: int, frame: int, ts: float) -> None:
        """``missing`` bytes never reached the capture. Inside one record the framing
        survives: that record is lost (its sequence number still counted) and the next one
        decrypts as usual. A gap that crosses a record boundary hides the next headers: the
        bytes that follow are searched for a plausible record header (followed by another,
        or ending where a segment ends), and decryption resumes by re-deriving the sequence
        number (see :meth:`Protection.resume`)."""
        if missing <= 0:
            return
        if self.state == LOST:
            self.lost_bytes += missing
            return
        self.lost_bytes += missing
        self.gaps += 1
        msg = f"{missing} byte(s) missing from the capture"
        if self.state == RESYNC:  # another hole while looking for a header
            self.rlost += len(self.rbuf) + missing
            self.rbuf.clear()
            self.rscan = 0
            if self.gap_problem is not None:
                self.gap_problem.message += f"; {missing} more missing (frame {frame})"
            return
        if self.state == SKIP and missing <= self.skip:  # inside a record counted, not kept
            self.inside_record += 1
            self.skip -= missing
            if not self.skip:
                self.state = HEADER
            self._problem_gap(msg + " inside an encrypted record: the record boundaries are "
                              "kept", frame)
            return
        if self.state == BODY and missing <= self.need - len(self.body):
            # inside a record being read: that record is lost, the framing is kept
            rest = self.need - len(self.body) - missing
            self.inside_record += 1
            self._lost_record(len(self.body) + missing, frame, ts)
            self.body.clear()
            self.skip, self.state = rest, (SKIP if rest else HEADER)
            self._problem_gap(msg + f" inside a record ({t.CONTENT_TYPES.get(self.ctype, '?')})"
                              ": that record is lost, the record boundaries are kept", frame)
            return
        # bytes lost from the first record whose sequence number is not yet counted (the one
        # being read, or, after a record being skipped, the next one) to the next header
        cut_body = self.state == BODY
        if self.state == SKIP:
            lost = missing - self.skip
        else:
            lost = len(self.hdr) + len(self.body) + missing
        self.hdr.clear()
        self.body.clear()
        self.hs.clear()
        self.state = RESYNC
        self.rbuf.clear()
        self.rscan = 0
        self.rlost = lost
        protect = self.protect
        if self.encrypted and protect is not None:
            # (next sequence number, lost bytes; known at the header; the first lost record's
            # header was seen: its 5 bytes are not in the lost bytes)
            self.await_seq = (protect.seq, 0, cut_body)
            if protect.chained_iv:
                self.chain_broken = True
        self._problem_gap(msg + " across a record boundary: looking for the next record "
                          "header", frame)

    def _problem_gap(self, message: str, frame: int) -> None:
        conn = self.conn
        self.gap_problem = Problem(self.side, "GAP", message, frame)
        conn._event(self.gap_problem)

    def _lost_record(self, lost: int, frame: int, ts: float) -> None:
        """The record being read lost ``lost`` of its bytes (its header was seen)."""
        protect = self.protect
        if not self.encrypted or (self.conn.version == t.TLS13
                                  and self.ctype != t.APPLICATION_DATA):
            if self.ctype == t.HANDSHAKE:
                self.hs.clear()
            return
        if protect is None:
            if self.ctype == t.APPLICATION_DATA:
                self.app_records += 1
                self.app_bytes += self.need
            return
        protect.seq += 1  # the record consumed its sequence number at the sender
        if protect.chained_iv:
            self.chain_broken = True  # TLS 1.0: its last block, the next IV, is lost
        if self.ctype == t.APPLICATION_DATA or self.conn.version == t.TLS13:
            self.app_records += 1
            self.app_bytes += self.need
            inner = self.conn.inner
            if inner is not None:
                inner[self.side].gap(max(1, self.need - protect.overhead), frame, ts)

    def _resync(self, data, frame: int, ts: float) -> None:
        """RESYNC: the next plausible record header in what follows a gap."""
        buf = self.rbuf
        buf += data
        n, i, ver = len(buf), self.rscan, self.last_ver
        while i + 5 <= n:
            ctype, v, length = _REC.unpack_from(buf, i)
            if 20 <= ctype <= 24 and 0 < length <= MAX_RECORD and (
                    v == ver if ver is not None else v >> 8 == 3):
                end = i + 5 + length
                if end == n:
                    break  # ends where this segment ends: taken, but wait for one more
                if end + 5 <= n:
                    c2, v2, l2 = _REC.unpack_from(buf, end)
                    if 20 <= c2 <= 24 and v2 == v and 0 < l2 <= MAX_RECORD:
                        break
                else:
                    self.rscan = i
                    return self._resync_bound(frame)
            i += 1
        else:
            self.rscan = max(i, 0)
            return self._resync_bound(frame)
        # a header at i
        self.rlost += i
        self.lost_bytes += i
        rest = bytes(buf[i:])
        buf.clear()
        self.rscan = 0
        self.state = HEADER
        if self.gap_problem is not None:
            self.gap_problem.message += (f"; the next record header is {self.rlost} bytes "
                                         f"after the last whole record (frame {frame})")
        if self.await_seq is not None:
            self.await_seq = (self.await_seq[0], self.rlost, self.await_seq[2])
        else:
            self.resumed += 1
            if self.gap_problem is not None:
                self.gap_problem.message += ", followed from there"
        self._consume(rest, frame, ts)

    def _resync_bound(self, frame: int) -> None:
        if len(self.rbuf) <= RESYNC_WINDOW:
            return
        lost = len(self.rbuf)
        self.rbuf.clear()
        self.not_resumed += 1
        if self.await_seq is not None:
            self.await_seq = None
            inner = self.conn.inner
            if inner is not None:
                inner[self.side].gap(self.rlost + lost, frame, 0.0)
        if self.gap_problem is not None:
            self.gap_problem.message += (f"; no record header in the {lost} bytes after it: "
                                         "the rest of this direction is not followed")
        self.state = LOST
        self.lost_bytes += lost

    def close(self, frame: int, ts: float) -> None:
        inner = self.conn.inner
        if inner is not None:
            inner[self.side].close(frame, ts)

    # -- records ----------------------------------------------------------------------------
    def _lose(self, message: str, frame: int, count: int, code: str = "RECORD-MALFORMED") -> None:
        self.state = LOST
        self.lost_bytes += count
        self.body.clear()
        self.hs.clear()
        self.conn._problem(self.side, code, message, frame)

    def _app_counted(self, length: int, frame: int, ts: float) -> None:
        self.app_records += 1
        self.app_bytes += length
        if self._first_app:
            self._first_app = False
            # TLS 1.3 without keys: the first protected records are the rest of the handshake.
            name = ("encrypted_records" if self.conn.version == t.TLS13 and self.protect is None
                    else "application_data")
            self.conn._event(Step(self.side, name, frame, ts, self.protect is None))

    def _record(self, ctype: int, ver: int, payload: bytes, frame: int, ts: float) -> None:
        conn = self.conn
        if conn.first_version is None:
            conn.first_version = ver
        if ctype == t.CHANGE_CIPHER_SPEC:
            if conn.version == t.TLS13 or (conn.hrr and conn.version is None):
                return  # RFC 8446 D.4: middlebox compatibility, no meaning
            conn._event(Step(self.side, "change_cipher_spec", frame, ts))
            self.encrypted = True
            if conn.keys is False:
                conn._late_keys(frame)
            self.protect = conn._pending[self.side]
            self.hs.clear()
            return
        # TLS 1.3 protects exactly the records whose outer type is application_data
        # (RFC 8446 5.2): an alert sent before a side switched keys travels in clear.
        if self.encrypted and (ctype == t.APPLICATION_DATA or conn.version != t.TLS13):
            if self.protect is None:
                self.protected_seen += 1
                if ctype == t.ALERT:
                    conn._alert(Alert(self.side, None, None, frame, ts))
                elif ctype == t.HANDSHAKE:
                    name = "finished" if not self.finished else "handshake"
                    if name == "finished":
                        self.finished = True
                    conn._event(Step(self.side, name, frame, ts, True))
                return
            if self.await_seq is not None or self.chain_broken:
                got = self._resume(ctype, ver, payload, frame, ts)
                if got is None:
                    return
                ctype, payload = got
            else:
                got = None
            try:
                if got is None:
                    ctype, payload = self.protect.decrypt(ctype, ver, payload)
            except DecryptError as exc:
                self.decrypt_failures += 1
                if self.decrypt_failures == 1:
                    conn._problem(self.side, "DECRYPT-FAILED",
                                  f"record {self.records} does not decrypt: {exc}", frame)
                if ctype == t.APPLICATION_DATA:
                    self.app_records += 1
                    self.app_bytes += len(payload)
                    inner = conn.inner
                    if inner is not None:
                        inner[self.side].gap(len(payload), frame, ts)
                return
            conn.decrypted = True
        if ctype == t.APPLICATION_DATA:
            self._app_counted(len(payload), frame, ts)
            if not self.encrypted:
                conn._problem(self.side, "CLEAR-APPDATA",
                              "application data before the handshake protected the "
                              "connection", frame)
                return
            self.plain_bytes += len(payload)
            if payload:
                inner = conn._inner_sinks()
                if inner is not None:
                    inner[self.side].feed(payload, frame, ts)
        elif ctype == t.ALERT:
            for k in range(0, len(payload) - 1, 2):
                level, desc = payload[k], payload[k + 1]
                conn._alert(Alert(self.side, t.ALERT_LEVELS.get(level, f"level {level}"),
                                  t.alert_name(desc), frame, ts))
            if len(payload) % 2:
                conn._problem(self.side, "ALERT-MALFORMED",
                              f"alert record of {len(payload)} bytes (alerts are 2 bytes)",
                              frame)
        elif ctype == t.HANDSHAKE:
            self._handshake(payload, frame, ts)
        elif ctype == t.HEARTBEAT:
            conn._event(Step(self.side, "heartbeat", frame, ts))

    def _resume(self, ctype: int, ver: int, payload: bytes, frame: int,
                ts: float) -> tuple[int, bytes] | None:
        """The first protected record after lost records: its sequence number by trial (and,
        in TLS 1.3, the next traffic secret, in case a KeyUpdate was lost). None: this record
        is not decrypted (told to the inner stream as a gap)."""
        protect = self.protect
        assert protect is not None
        inner = self.conn.inner
        problem = self.gap_problem
        if self.chain_broken:
            # TLS 1.0 CBC: this record's IV was the lost record's last block. It cannot be
            # read; its own last block is the next record's IV.
            self.chain_broken = False
            protect.resume_iv(payload)
            if self.await_seq is None:
                protect.seq += 1
            else:
                before, lost, seen = self.await_seq
                self.await_seq = (before, lost + 5 + len(payload), seen)
            if problem is not None:
                problem.message += ("; TLS 1.0 CBC: the record after the loss cannot be "
                                    "decrypted (its IV was in the lost bytes)")
            if inner is not None:
                inner[self.side].gap(max(1, len(payload) - protect.overhead), frame, ts)
            return None
        before, lost, seen = self.await_seq if self.await_seq is not None else (
            protect.seq, 0, False)
        self.await_seq = None
        records = self.app_records or 1
        avg = (self.app_bytes / records if self.app_records else 1024.0) + 5
        lo = before + 1
        hi = before + lost // MIN_PROTECTED_RECORD + 1
        guess = before + max(1, round(lost / avg))
        got = protect.resume(ctype, ver, payload, guess, lo, hi, MAX_SEQ_TRIALS)
        how = ""
        if got is None and self.conn.version == t.TLS13 and self.secret and self.conn.suite:
            secret = next_traffic_secret(self.conn.suite.prf, self.secret)
            nxt = Protection.tls13(self.conn.suite, secret)
            got = nxt.resume(ctype, ver, payload, 0, 0, hi - lo, MAX_SEQ_TRIALS)
            if got is not None:
                self.protect, self.secret, protect = nxt, secret, nxt
                how = " with the next traffic secret (a KeyUpdate was in the lost bytes)"
        if got is None:
            self.not_resumed += 1
            if problem is not None:
                problem.message += (f"; decryption cannot resume: no record sequence number "
                                    f"from {lo} to {hi} authenticates the next record "
                                    f"({min(hi - lo + 1, MAX_SEQ_TRIALS)} tried); the rest of "
                                    "this direction is counted, not decrypted")
            self.protect = None
            if inner is not None:
                inner[self.side].gap(max(1, lost), frame, ts)
            if ctype == t.APPLICATION_DATA:
                self._app_counted(len(payload), frame, ts)
            return None
        skipped = protect.seq - 1 - before
        self.resumed += 1
        self.records_skipped += skipped
        if problem is not None:
            problem.message += (f"; decryption resumed at record sequence number "
                                f"{protect.seq - 1}{how} ({skipped} record(s) lost)")
        if inner is not None:
            headers = skipped - (1 if seen else 0)  # in the lost bytes
            inner[self.side].gap(max(1, lost - skipped * protect.overhead - 5 * headers),
                                 frame, ts)
        return got

    def _handshake(self, payload: bytes, frame: int, ts: float) -> None:
        if self.hs_discard:
            k = min(self.hs_discard, len(payload))
            self.hs_discard -= k
            payload = payload[k:]
        hs = self.hs
        hs += payload
        cap = self.conn.max_handshake
        while len(hs) >= 4:
            htype, hlen = handshake_header(hs, 0)
            if hlen > cap:
                self.conn._problem(self.side, "HANDSHAKE-TOO-LARGE",
                                   f"{t.HANDSHAKE_TYPES.get(htype, f'type {htype}')} message "
                                   f"of {hlen} bytes is over the {cap}-byte cap: skipped",
                                   frame)
                have = len(hs) - 4
                if have >= hlen:
                    del hs[:4 + hlen]
                    continue
                self.hs_discard = hlen - have
                hs.clear()
                return
            if len(hs) < 4 + hlen:
                return
            body = bytes(hs[4:4 + hlen])
            del hs[:4 + hlen]
            self._message(htype, body, frame, ts)
            if self.state == LOST:
                return

    def _message(self, htype: int, body: bytes, frame: int, ts: float) -> None:
        conn = self.conn
        name = t.HANDSHAKE_TYPES.get(htype, f"handshake type {htype}")
        tls13 = conn.version == t.TLS13
        try:
            if htype == t.CLIENT_HELLO and self.side == 0:
                conn._client_hello(parse_client_hello(body), frame, ts)
                return
            if htype == t.SERVER_HELLO and self.side == 1:
                conn._server_hello(parse_server_hello(body), frame, ts)
                return
            if htype == t.CERTIFICATE:
                certs = parse_certificate(body, tls13)
                conn.certificates[self.side] = certs
                if self.side == 0:
                    conn.client_certificate_sent = bool(certs)
            elif htype == t.CERTIFICATE_REQUEST and self.side == 1:
                conn.certificate_requested = True
            elif htype == t.ENCRYPTED_EXTENSIONS and self.side == 1:
                conn.alpn = parse_encrypted_extensions(body) or conn.alpn
            elif htype == t.NEW_SESSION_TICKET and self.side == 1:
                conn.tickets += 1
            elif htype == t.FINISHED:
                self.finished = True
        except BadMessage as exc:
            conn._problem(self.side, "HANDSHAKE-MALFORMED", str(exc), frame)
        conn._event(Step(self.side, name, frame, ts))
        if tls13 and self.encrypted and self.protect is not None:
            if htype == t.FINISHED and not conn._app_keyed[self.side]:
                conn._app_keyed[self.side] = True  # RFC 8446 7.3: application keys follow
                self._tls13_keys(conn._app_secret[self.side], frame)
            elif htype == t.KEY_UPDATE and conn.suite is not None and self.secret:
                self._tls13_keys(next_traffic_secret(conn.suite.prf, self.secret), frame)

    def _tls13_keys(self, secret: bytes | None, frame: int) -> None:
        conn = self.conn
        if secret is None or conn.suite is None:
            self.protect = None  # application data is counted as encrypted from here
            return
        self.secret = secret
        self.protect = Protection.tls13(conn.suite, secret)


class TLSConnection:
    """Facts of one TLS connection, fed by its two directions (0: client, 1: server)."""

    def __init__(self, keylog: KeyLog | None = None,
                 inner: Callable[[TLSConnection], tuple | None] | None = None,
                 max_handshake: int = DEFAULT_MAX_HANDSHAKE, midstream: bool = False) -> None:
        """``inner(conn)`` is called at the first decrypted application data and returns the
        two sinks (client, server) that receive plaintext, or None to only count it.
        ``midstream``: the capture starts after the handshake; every record is protected."""
        self.keylog = keylog
        self.inner_factory = inner
        self.inner: tuple | None = None
        self.max_handshake = max_handshake
        self.sides = (TLSDirection(self, 0), TLSDirection(self, 1))
        self.events: list[Record] = []
        self.events_dropped = 0
        self.first_version: int | None = None
        self.client_hello: ClientHello | None = None
        self.server_hello: ServerHello | None = None
        self.client_hellos = 0
        self.hrr = False
        self.hrr_group: int | None = None
        self.version: int | None = None
        self.suite_code: int | None = None
        self.suite: t.Suite | None = None
        self.sni: str | None = None
        self.alpn: str | None = None
        self.resumed = False
        self.certificates: list[list[CertInfo] | None] = [None, None]
        self.certificate_requested = False
        self.client_certificate_sent: bool | None = None  # None: no Certificate seen
        self.alerts: list[Alert] = []
        self.tickets = 0
        self.keys: bool | None = None  # None: not looked up; False: not in the key log
        self.decrypted = False
        self._pending: list[Protection | NullUnverified | None] = [None, None]
        self._app_secret: list[bytes | None] = [None, None]
        self._app_keyed = [False, False]
        self._late_tries = 0
        self.midstream = midstream
        if midstream:
            for d in self.sides:
                d.encrypted = True

    # -- facts --------------------------------------------------------------------------------
    @property
    def handshake_complete(self) -> bool:
        return self.sides[0].finished and self.sides[1].finished

    @property
    def version_name(self) -> str | None:
        return t.version_name(self.version)

    @property
    def suite_name(self) -> str | None:
        return None if self.suite_code is None else t.suite_name(self.suite_code)

    def _event(self, ev: Record) -> None:
        if len(self.events) < MAX_EVENTS:
            self.events.append(ev)
        else:
            self.events_dropped += 1

    def _problem(self, side: int, code: str, message: str, frame: int) -> None:
        self._event(Problem(side, code, message, frame))

    def _alert(self, a: Alert) -> None:
        if len(self.alerts) < MAX_ALERTS:
            self.alerts.append(a)
        self._event(a)

    def _inner_sinks(self) -> tuple | None:
        if self.inner is None and self.inner_factory is not None:
            self.inner = self.inner_factory(self)
            self.inner_factory = None
        return self.inner

    def _client_hello(self, ch: ClientHello, frame: int, ts: float) -> None:
        self.client_hellos += 1
        self._event(Step(0, "client_hello", frame, ts))
        if self.client_hello is None or self.hrr:
            first = self.client_hello
            self.client_hello = ch
            if first is not None and first.random != ch.random:
                self._problem(0, "HELLO-MISMATCH", "the ClientHello after the "
                              "HelloRetryRequest has a different random (RFC 8446 4.1.2)",
                              frame)
            self.sni = ch.sni

    def _server_hello(self, sh: ServerHello, frame: int, ts: float) -> None:
        ch = self.client_hello
        if sh.hrr:
            self.hrr = True
            self.hrr_group = sh.key_share
            self._event(Step(1, "hello_retry_request", frame, ts))
            return
        self._event(Step(1, "server_hello", frame, ts))
        if self.server_hello is not None:
            return  # a renegotiation: the first handshake's facts stand
        self.server_hello = sh
        self.version = sh.version
        self.suite_code = sh.cipher_suite
        self.suite = t.SUITES.get(sh.cipher_suite)
        if sh.alpn:
            self.alpn = sh.alpn
        if sh.version == t.TLS13:
            self.resumed = sh.psk
            for d in self.sides:
                d.encrypted = True
                d.hs.clear()
        else:
            self.resumed = bool(ch is not None and sh.session_id
                                and sh.session_id == ch.session_id)
        suite = self.suite
        if (suite is not None and suite.cipher == "NULL" and suite.mac in ("SHA1", "SHA256")
                and sh.version != t.TLS13):
            # Readable by anyone; with a key log the MACs are checked below instead.
            self._pending = [NullUnverified(suite), NullUnverified(suite)]
        if ch is None or self.keylog is None:
            return
        self._use_secrets(frame)

    def _use_secrets(self, frame: int, late: bool = False) -> None:
        """The session's secrets from the key log, if it has them now. ``late``: asked again
        after the ServerHello (a key log still being written, in a live capture): only a side
        that has not yet sent a protected record, or a TLS 1.2 side whose protected records
        were counted (their sequence numbers are then known), is given keys."""
        ch, sh = self.client_hello, self.server_hello
        assert ch is not None and sh is not None and self.keylog is not None
        secrets = self.keylog.secrets(ch.random)
        if not secrets:
            self.keys = False
            return
        if not supported(self.suite) or (self.suite.kex == "TLS13") != (sh.version == t.TLS13):
            self.keys = False
            self._problem(1, "CIPHER-UNSUPPORTED",
                          f"{t.suite_name(sh.cipher_suite)} cannot be decrypted here", frame)
            return
        assert self.suite is not None
        if sh.version == t.TLS13:
            chs = secrets.get("CLIENT_HANDSHAKE_TRAFFIC_SECRET")
            shs = secrets.get("SERVER_HANDSHAKE_TRAFFIC_SECRET")
            self._app_secret = [secrets.get("CLIENT_TRAFFIC_SECRET_0"),
                                secrets.get("SERVER_TRAFFIC_SECRET_0")]
            # Each side on its own: a client that gives up while checking the server's
            # certificate has logged only the server's handshake secret.
            self.keys = chs is not None or shs is not None
            for d, s in zip(self.sides, (chs, shs), strict=True):
                if s is not None and not (late and d.protected_seen):
                    d.secret = s
                    d.protect = Protection.tls13(self.suite, s)
            return
        master = secrets.get("CLIENT_RANDOM")
        if master is None:
            self.keys = False
            return
        self.keys = True
        self._pending = list(tls12_protections(self.suite, sh.version, master, ch.random,
                                               sh.random, bool(ch.etm and sh.etm)))
        if late:  # a side past its ChangeCipherSpec: its next record's number is known
            for d, p in zip(self.sides, self._pending, strict=True):
                if d.encrypted and d.protect is None and p is not None:
                    p.seq = d.protected_seen
                    d.protect = p
                    d.chain_broken = bool(d.protected_seen and p.chained_iv)

    def _late_keys(self, frame: int) -> None:
        """A session the key log had no line for: ask again (a live capture reads the key log
        while the peer writes it; the key log re-reads its files when asked, bounded)."""
        if (self.keys is False and self.keylog is not None and self.server_hello is not None
                and self.client_hello is not None and self._late_tries < MAX_LATE_TRIES
                and supported(self.suite)):
            self._late_tries += 1
            self._use_secrets(frame, late=True)
