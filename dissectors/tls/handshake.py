"""Handshake message bodies: ClientHello, ServerHello, Certificate (RFC 8446 4, RFC 5246 7.4).

Every vector length is checked against what remains of its enclosing vector before it is read
(``_Reader``): a lying length is a ``BadMessage`` naming the field, never an over-read or an
allocation. Certificates are handed to ``cryptography``'s X.509 parser, at most MAX_CERTS per
message; what reaches a report (names, SNI, ALPN) is escaped by ``wire_str``.
"""

from __future__ import annotations

import datetime as _dt
import struct

from dissectors._plain import Record
from dissectors.ul.items import wire_str

from . import tables as t

MAX_CERTS = 10


class BadMessage(ValueError):
    """A handshake message whose fields do not fit its length."""


class _Reader:
    __slots__ = ("buf", "pos", "end", "what")

    def __init__(self, buf: bytes, what: str, pos: int = 0, end: int | None = None) -> None:
        self.buf, self.pos, self.what = buf, pos, what
        self.end = len(buf) if end is None else end

    def left(self) -> int:
        return self.end - self.pos

    def take(self, n: int, field: str) -> bytes:
        if n > self.end - self.pos:
            raise BadMessage(f"{self.what}: {field} needs {n} bytes, {self.end - self.pos} "
                             "left")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def uint(self, width: int, field: str) -> int:
        return int.from_bytes(self.take(width, field), "big")

    def vector(self, width: int, field: str) -> _Reader:
        n = self.uint(width, field + " length")
        if n > self.end - self.pos:
            raise BadMessage(f"{self.what}: {field} length {n} overruns the "
                             f"{self.end - self.pos} bytes left")
        r = _Reader(self.buf, self.what, self.pos, self.pos + n)
        self.pos += n
        return r


def _extensions(r: _Reader) -> list[tuple[int, _Reader]]:
    out = []
    if not r.left():
        return out  # extensions are optional before TLS 1.3
    ext = r.vector(2, "extensions")
    while ext.left():
        etype = ext.uint(2, "extension type")
        out.append((etype, ext.vector(2, f"extension {etype} data")))
    return out


class ClientHello(Record):
    _fields = ("legacy_version", "random", "session_id", "cipher_suites", "extensions",
               "sni", "alpn", "versions", "groups", "key_shares", "etm", "ems", "ticket",
               "psk", "early_data")
    __slots__ = _fields


class ServerHello(Record):
    _fields = ("legacy_version", "random", "session_id", "cipher_suite", "extensions",
               "version", "key_share", "etm", "ems", "alpn", "hrr", "psk")
    __slots__ = _fields


def _alpn_list(r: _Reader) -> list[str]:
    lst = r.vector(2, "ALPN list")
    out = []
    while lst.left():
        out.append(wire_str(lst.vector(1, "ALPN name").take_all()))
    return out


def _take_all(self: _Reader) -> bytes:
    return self.take(self.left(), "data")


_Reader.take_all = _take_all  # type: ignore[attr-defined]


def parse_client_hello(body: bytes) -> ClientHello:
    r = _Reader(body, "ClientHello")
    h = ClientHello.__new__(ClientHello)
    h.legacy_version = r.uint(2, "version")
    h.random = r.take(32, "random")
    h.session_id = r.vector(1, "session id").take_all()
    if len(h.session_id) > 32:
        raise BadMessage(f"ClientHello: session id of {len(h.session_id)} bytes (at most 32)")
    cs = r.vector(2, "cipher suites")
    h.cipher_suites = []
    while cs.left() >= 2:
        c = cs.uint(2, "cipher suite")
        if not t.is_grease(c):
            h.cipher_suites.append(c)
    r.vector(1, "compression methods")
    h.extensions, h.sni, h.alpn, h.versions, h.groups = [], None, [], [], []
    h.key_shares = []
    h.etm = h.ems = h.ticket = h.psk = h.early_data = False
    for etype, e in _extensions(r):
        if t.is_grease(etype):
            continue
        h.extensions.append(etype)
        if etype == t.EXT_SERVER_NAME and e.left():
            names = e.vector(2, "server name list")
            while names.left():
                kind = names.uint(1, "name type")
                name = names.vector(2, "host name").take_all()
                if kind == 0 and h.sni is None:
                    h.sni = wire_str(name)
        elif etype == t.EXT_ALPN:
            h.alpn = _alpn_list(e)
        elif etype == t.EXT_SUPPORTED_VERSIONS:
            v = e.vector(1, "supported versions")
            while v.left() >= 2:
                x = v.uint(2, "version")
                if not t.is_grease(x):
                    h.versions.append(x)
        elif etype == t.EXT_SUPPORTED_GROUPS:
            g = e.vector(2, "supported groups")
            while g.left() >= 2:
                x = g.uint(2, "group")
                if not t.is_grease(x):
                    h.groups.append(x)
        elif etype == t.EXT_KEY_SHARE:
            ks = e.vector(2, "key shares")
            while ks.left():
                grp = ks.uint(2, "key share group")
                ks.vector(2, "key exchange")
                if not t.is_grease(grp):
                    h.key_shares.append(grp)
        elif etype == t.EXT_ENCRYPT_THEN_MAC:
            h.etm = True
        elif etype == t.EXT_EXTENDED_MASTER_SECRET:
            h.ems = True
        elif etype == t.EXT_SESSION_TICKET:
            h.ticket = e.left() > 0  # a non-empty ticket: the client tries to resume
        elif etype == t.EXT_PRE_SHARED_KEY:
            h.psk = True
        elif etype == t.EXT_EARLY_DATA:
            h.early_data = True
    return h


def parse_server_hello(body: bytes) -> ServerHello:
    r = _Reader(body, "ServerHello")
    h = ServerHello.__new__(ServerHello)
    h.legacy_version = r.uint(2, "version")
    h.random = r.take(32, "random")
    h.session_id = r.vector(1, "session id").take_all()
    h.cipher_suite = r.uint(2, "cipher suite")
    r.uint(1, "compression method")
    h.extensions, h.version, h.key_share, h.etm, h.ems, h.alpn = [], h.legacy_version, None, \
        False, False, None
    h.hrr = h.random == t.HRR_RANDOM
    h.psk = False
    for etype, e in _extensions(r):
        h.extensions.append(etype)
        if etype == t.EXT_SUPPORTED_VERSIONS:
            h.version = e.uint(2, "selected version")
        elif etype == t.EXT_KEY_SHARE:
            h.key_share = e.uint(2, "key share group")
        elif etype == t.EXT_ENCRYPT_THEN_MAC:
            h.etm = True
        elif etype == t.EXT_EXTENDED_MASTER_SECRET:
            h.ems = True
        elif etype == t.EXT_ALPN:
            names = _alpn_list(e)
            h.alpn = names[0] if names else None
        elif etype == t.EXT_PRE_SHARED_KEY:
            h.psk = True
    return h


def parse_encrypted_extensions(body: bytes) -> str | None:
    """TLS 1.3 EncryptedExtensions: the ALPN the server chose (the rest is not needed)."""
    for etype, e in _extensions(_Reader(body, "EncryptedExtensions")):
        if etype == t.EXT_ALPN:
            names = _alpn_list(e)
            return names[0] if names else None
    return None


class CertInfo(Record):
    """What a report says about one certificate (all strings escaped; times as UTC)."""

    _fields = ("subject", "issuer", "not_before", "not_after", "key", "serial",
               "self_signed", "san", "error")
    __slots__ = _fields

    def __init__(self, subject: str | None = None, issuer: str | None = None,
                 not_before: _dt.datetime | None = None, not_after: _dt.datetime | None = None,
                 key: str | None = None, serial: str | None = None,
                 self_signed: bool = False, san: list[str] | None = None,
                 error: str | None = None) -> None:
        self.subject, self.issuer = subject, issuer
        self.not_before, self.not_after = not_before, not_after
        self.key, self.serial, self.self_signed = key, serial, self_signed
        self.san = san or []
        self.error = error


def _safe(s: str) -> str:
    return wire_str(s.encode("utf-8", "replace"), strip_nul=False)


def describe_certificate(der: bytes) -> CertInfo:
    """Subject, issuer, validity and key of a DER certificate, via cryptography's x509."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    try:
        c = x509.load_der_x509_certificate(bytes(der))
        subject = _safe(c.subject.rfc4514_string())
        issuer = _safe(c.issuer.rfc4514_string())
        nb = getattr(c, "not_valid_before_utc", None) or c.not_valid_before.replace(
            tzinfo=_dt.timezone.utc)
        na = getattr(c, "not_valid_after_utc", None) or c.not_valid_after.replace(
            tzinfo=_dt.timezone.utc)
        serial = f"{c.serial_number:x}"
    except Exception as exc:  # noqa: BLE001 - any parse failure is a finding, not a crash
        return CertInfo(error=_safe(f"certificate does not parse: {exc}")[:200])
    key = None
    try:
        pk = c.public_key()
        if isinstance(pk, rsa.RSAPublicKey):
            key = f"RSA {pk.key_size}"
        elif isinstance(pk, ec.EllipticCurvePublicKey):
            key = f"EC {pk.curve.name}"
        elif isinstance(pk, ed25519.Ed25519PublicKey):
            key = "Ed25519"
        elif isinstance(pk, ed448.Ed448PublicKey):
            key = "Ed448"
        elif isinstance(pk, dsa.DSAPublicKey):
            key = f"DSA {pk.key_size}"
        else:
            key = type(pk).__name__
    except Exception:  # noqa: BLE001 - an unsupported key type is reported as unknown
        key = "unknown"
    san: list[str] = []
    try:
        ext = c.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        for name in list(ext.value)[:20]:
            san.append(_safe(str(getattr(name, "value", name))))
    except Exception:  # noqa: BLE001 - absent or malformed SAN: nothing to list
        pass
    return CertInfo(subject, issuer, nb, na, key, serial, c.subject == c.issuer, san)


def parse_certificate(body: bytes, tls13: bool) -> list[CertInfo]:
    """The certificates of a Certificate message (empty list: the peer sent none)."""
    r = _Reader(body, "Certificate")
    if tls13:
        r.vector(1, "certificate request context")
    lst = r.vector(3, "certificate list")
    out = []
    while lst.left():
        der = lst.vector(3, "certificate").take_all()
        if tls13:
            lst.vector(2, "certificate entry extensions")
        if len(out) < MAX_CERTS:
            out.append(describe_certificate(der))
    return out


_HS = struct.Struct("!I")


def handshake_header(buf, pos: int) -> tuple[int, int]:
    """(type, length) of the 4-byte handshake header at buf[pos]."""
    v = _HS.unpack_from(buf, pos)[0]
    return v >> 24, v & 0xFFFFFF
