"""The TLS dissector (dissectors/tls) against OpenSSL's own bytes, and against hostile bytes.

The transcripts come from a real OpenSSL client and server (Python's ssl over memory BIOs,
tests/tls_pair.py) with the key log the client wrote, so each suite is checked end to end:
handshake facts, then every plaintext byte recovered. The netns captures of DICOM peers are
checked in test_tls_captures.py.
"""

from __future__ import annotations

import datetime
import ssl
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dissectors.tls import tables as t
from dissectors.tls.connection import (
    MAX_RECORD,
    Alert,
    Problem,
    Step,
    TLSConnection,
    plausible_tls,
)
from dissectors.tls.crypto import hkdf_expand_label, next_traffic_secret, prf
from dissectors.tls.keylog import KeyLog
from tests.tls_pair import run_pair

V12, V13, V11, V10 = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_1,
                      ssl.TLSVersion.TLSv1)
CLIENT_DATA = bytes(range(256)) * 80  # 20 KB: more than one record
SERVER_DATA = b"\x02\x00\x00\x00\x00\x10" + b"acceptor says hi" * 3


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.gaps = 0
        self.closed = False

    def feed(self, data, frame: int, ts: float) -> None:
        self.data += data

    def gap(self, n: int, frame: int, ts: float) -> None:
        self.gaps += n

    def close(self, frame: int, ts: float) -> None:
        self.closed = True


def keylog_of(text: str) -> KeyLog:
    kl = KeyLog()
    kl.add_lines(text.splitlines())
    return kl


def replay(tr, keylog: KeyLog | None = None, chunk: int | None = None, use_keys: bool = True):
    sinks = (Sink(), Sink())
    kl = keylog if keylog is not None else (keylog_of(tr.keylog) if use_keys else None)
    conn = TLSConnection(kl, inner=lambda c: sinks)
    for i, (side, data) in enumerate(tr.chunks):
        if chunk is None:
            conn.sides[side].feed(data, i + 1, float(i))
        else:
            for k in range(0, len(data), chunk):
                conn.sides[side].feed(data[k:k + chunk], i + 1, float(i))
    for d in conn.sides:
        d.close(len(tr.chunks), 0.0)
    return conn, sinks


def problems(conn) -> list[Problem]:
    return [e for e in conn.events if isinstance(e, Problem)]


SUITES = [
    ("TLS 1.3", dict(), "TLS_AES_256_GCM_SHA384"),
    ("TLS 1.2", dict(version=V12, ciphers="ECDHE-RSA-AES128-GCM-SHA256"),
     "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("TLS 1.2", dict(version=V12, ciphers="ECDHE-RSA-AES256-GCM-SHA384"),
     "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ("TLS 1.2", dict(version=V12, ciphers="ECDHE-RSA-CHACHA20-POLY1305"),
     "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("TLS 1.2", dict(version=V12, ciphers="ECDHE-RSA-AES128-SHA256"),
     "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    ("TLS 1.2", dict(version=V12, ciphers="ECDHE-RSA-AES128-SHA256", etm=False),
     "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    ("TLS 1.2", dict(version=V12, ciphers="ECDHE-RSA-AES256-SHA384", etm=False),
     "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    ("TLS 1.2", dict(version=V12, ciphers="ECDHE-RSA-AES256-SHA"),
     "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    ("TLS 1.2", dict(version=V12, ciphers="AES128-GCM-SHA256"), "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    ("TLS 1.2", dict(version=V12, ciphers="AES256-SHA256", etm=False),
     "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    ("TLS 1.2", dict(version=V12, ciphers="AES128-CCM"), "TLS_RSA_WITH_AES_128_CCM"),
    ("TLS 1.2", dict(version=V12, server_key="server-ec"),
     "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    ("TLS 1.2", dict(version=V12, server_key="server-ec", ciphers="ECDHE-ECDSA-AES128-CCM8"),
     "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"),
    ("TLS 1.2", dict(version=V12, server_key="server-ec", ciphers="ECDHE-ECDSA-AES256-CCM8",
                     seclevel0=True), "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8"),
    ("TLS 1.2", dict(version=V12, ciphers="NULL-SHA256", seclevel0=True),
     "TLS_RSA_WITH_NULL_SHA256"),
    ("TLS 1.2", dict(version=V12, ciphers="ECDHE-RSA-NULL-SHA", seclevel0=True),
     "TLS_ECDHE_RSA_WITH_NULL_SHA"),
    ("TLS 1.1", dict(version=V11, seclevel0=True), "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    ("TLS 1.0", dict(version=V10, seclevel0=True), "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    ("TLS 1.0", dict(version=V10, seclevel0=True, etm=False),
     "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
]


@pytest.mark.parametrize(("version", "kw", "suite"), SUITES,
                         ids=[f"{v}-{s}-{'etm' if k.get('etm', True) else 'mte'}"
                              for v, k, s in SUITES])
def test_decrypts_every_suite(version: str, kw: dict, suite: str) -> None:
    tr = run_pair(CLIENT_DATA, SERVER_DATA, **kw)
    assert tr.error is None, tr.error
    conn, sinks = replay(tr)
    assert (conn.version_name, conn.suite_name) == (version, suite)
    assert conn.keys is True and conn.decrypted
    assert bytes(sinks[0].data) == CLIENT_DATA and bytes(sinks[1].data) == SERVER_DATA
    assert not problems(conn)
    assert conn.handshake_complete
    # Both sides ended with close_notify, decrypted (TLS 1.2 alerts after CCS are protected).
    assert [(a.side, a.description) for a in conn.alerts] == [(0, "close_notify"),
                                                              (1, "close_notify")]
    subjects = [c.subject for c in conn.certificates[1]]
    assert subjects[0].startswith("CN=ARCHIVE")


def test_null_cipher_is_readable_without_keys() -> None:
    """PS3.15 B.2 (retired "authenticated unencrypted"): NULL suites carry the DICOM in clear,
    so it is analysed without a key log (the MACs cannot be checked without one)."""
    tr = run_pair(CLIENT_DATA, SERVER_DATA, version=V12, ciphers="NULL-SHA", seclevel0=True)
    conn, sinks = replay(tr, use_keys=False)
    assert conn.suite_name == "TLS_RSA_WITH_NULL_SHA" and conn.keys is None
    assert bytes(sinks[0].data) == CLIENT_DATA and bytes(sinks[1].data) == SERVER_DATA
    assert [(a.side, a.description) for a in conn.alerts] == [(0, "close_notify"),
                                                              (1, "close_notify")]


def test_split_at_every_size_gives_the_same_result() -> None:
    tr = run_pair(CLIENT_DATA, SERVER_DATA, version=V12, ciphers="ECDHE-RSA-AES128-SHA256",
                  etm=False)
    whole, ws = replay(tr)
    for chunk in (1, 2, 3, 5, 7, 13, 4096):
        conn, sinks = replay(tr, chunk=chunk)
        assert bytes(sinks[0].data) == CLIENT_DATA and bytes(sinks[1].data) == SERVER_DATA
        assert [type(e) for e in conn.events] == [type(e) for e in whole.events]


def test_handshake_facts_without_keys() -> None:
    tr = run_pair(CLIENT_DATA, SERVER_DATA, version=V12, sni="archive.test", alpn=["dicom"])
    conn, sinks = replay(tr, use_keys=False)
    ch = conn.client_hello
    assert conn.sni == "archive.test" and conn.alpn == "dicom"
    assert t.TLS12 in ch.versions or ch.legacy_version == t.TLS12
    assert 0xC030 in ch.cipher_suites and conn.suite_code == 0xC030
    assert conn.keys is None and not conn.decrypted and not sinks[0].data
    # Application data counted, never buffered: the 20 KB went by as records.
    assert conn.sides[0].app_bytes >= len(CLIENT_DATA) and conn.sides[0].plain_bytes == 0
    cert = conn.certificates[1][0]
    assert cert.key == "RSA 2048" and cert.not_before < cert.not_after
    assert "archive.test" in cert.san
    # TLS 1.2 close_notify after ChangeCipherSpec is encrypted: seen, not readable.
    assert [(a.side, a.description) for a in conn.alerts] == [(0, None), (1, None)]


def test_tls13_without_keys_shows_hello_only() -> None:
    tr = run_pair(CLIENT_DATA, SERVER_DATA, sni="archive.test")
    conn, _ = replay(tr, use_keys=False)
    assert conn.version_name == "TLS 1.3" and conn.certificates == [None, None]
    assert conn.sni == "archive.test"
    names = [e.name for e in conn.events if isinstance(e, Step)]
    assert names[:3] == ["client_hello", "server_hello", "encrypted_records"]


def test_key_not_in_key_log() -> None:
    other = run_pair(version=V12)
    tr = run_pair(CLIENT_DATA, SERVER_DATA, version=V12)
    conn, sinks = replay(tr, keylog=keylog_of(other.keylog))
    assert conn.keys is False and not conn.decrypted and not sinks[0].data


def test_wrong_key_is_a_problem_and_a_gap() -> None:
    tr = run_pair(CLIENT_DATA, SERVER_DATA, version=V12)
    rnd, secret = tr.keylog.splitlines()[-1].split()[1:]
    bad = f"CLIENT_RANDOM {rnd} {'00' * 48}\n"
    conn, sinks = replay(tr, keylog=keylog_of(bad))
    codes = [p.code for p in problems(conn)]
    assert codes == ["DECRYPT-FAILED", "DECRYPT-FAILED"]  # one per side, not one per record
    assert not sinks[0].data and not sinks[0].gaps  # no plaintext ever: no inner stream
    assert conn.sides[0].decrypt_failures >= 3


def test_corrupt_record_is_a_gap_and_the_rest_decrypts() -> None:
    tr = run_pair(CLIENT_DATA, SERVER_DATA, version=V12)
    conn0, _ = replay(tr)
    # The client's application data: its 20 KB go out as two records in one chunk.
    i = next(k for k, (side, data) in enumerate(tr.chunks) if side == 0 and len(data) > 16000)
    side, data = tr.chunks[i]
    first = struct.unpack_from("!H", data, 3)[0]
    bad = bytearray(data)
    bad[5 + first + 40] ^= 0xFF  # inside the second record's ciphertext
    tr.chunks[i] = (side, bytes(bad))
    conn, sinks = replay(tr)
    assert [p.code for p in problems(conn)] == ["DECRYPT-FAILED"]
    second = len(CLIENT_DATA) - (first - 8 - 16)
    assert bytes(sinks[0].data) == CLIENT_DATA[:len(CLIENT_DATA) - second]
    assert sinks[0].gaps == second + 8 + 16  # the record's length as it travelled
    assert bytes(sinks[1].data) == SERVER_DATA  # the other side is unaffected


@pytest.mark.parametrize("version", [V12, V13])
def test_client_certificate_demanded_and_missing(version) -> None:
    tr = run_pair(version=version, require_client_cert=True)
    conn, _ = replay(tr)
    assert conn.certificate_requested and conn.client_certificate_sent is False
    want = "handshake_failure" if version == V12 else "certificate_required"
    assert [(a.side, a.level, a.description) for a in conn.alerts] == [(1, "fatal", want)]
    # TLS 1.3: the client's Finished goes out before the server judges its (empty) Certificate,
    # so both Finished messages exist and only the server's alert says it failed.
    assert conn.handshake_complete is (version == V13)


def test_client_certificate_sent() -> None:
    tr = run_pair(version=V12, require_client_cert=True, client_cert=True)
    conn, _ = replay(tr, use_keys=False)
    assert conn.certificate_requested and conn.client_certificate_sent is True
    assert conn.certificates[0][0].subject.startswith("CN=MODALITY")


def test_untrusted_and_expired_server_certificates() -> None:
    tr = run_pair(version=V12, server_key="rogue-server")
    conn, _ = replay(tr, use_keys=False)
    assert [(a.side, a.description) for a in conn.alerts] == [(0, "unknown_ca")]
    assert conn.certificates[1][0].issuer.startswith("CN=Untrusted Rogue CA")
    # TLS 1.3: the client refuses before switching keys, so its alert is in clear; with the
    # server's handshake secret the certificate itself is read too.
    tr = run_pair(server_key="expired")
    conn, _ = replay(tr)
    assert [(a.side, a.level, a.description) for a in conn.alerts] == [
        (0, "fatal", "certificate_expired")]
    cert = conn.certificates[1][0]
    assert cert.subject.startswith("CN=ARCHIVE-EXPIRED")
    assert cert.not_after < datetime.datetime.now(datetime.timezone.utc)


def test_expired_certificate_at_capture_time() -> None:
    """RFC 5280 4.1.2.5: TLS 1.2 sends the certificate in clear, so its validity is checked
    against the capture's clock without keys (TLS-CERT-EXPIRED), beside the client's alert."""
    from dicomsniff.analysis.tls import TLSFlow

    tr = run_pair(version=V12, server_key="expired")
    flow = TLSFlow(1, "192.0.2.1:40000", "192.0.2.2:2762", 2762, None, None, 1, 0.0)
    for i, (side, data) in enumerate(tr.chunks):
        flow.sinks[side].feed(data, i + 1, float(i))
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    s = flow.finish("rst", len(tr.chunks), now)
    codes = [f.code for f in s.findings]
    assert codes == ["TLS-ALERT-FATAL", "TLS-CERT-EXPIRED"]
    assert "expired on" in s.findings[1].message and "ARCHIVE-EXPIRED" in s.findings[1].message
    assert s.alerts[0]["description"] == "certificate_expired" and s.outcome == "handshake_failed"


def test_hello_retry_request() -> None:
    """RFC 8446 4.1.4: the server wants another group; keys follow the second ServerHello."""
    tr = run_pair(CLIENT_DATA, SERVER_DATA, server_groups="secp384r1")
    conn, sinks = replay(tr)
    assert conn.hrr and t.GROUPS[conn.hrr_group] == "secp384r1" and conn.client_hellos == 2
    names = [e.name for e in conn.events if isinstance(e, Step)]
    assert names[:4] == ["client_hello", "hello_retry_request", "client_hello", "server_hello"]
    assert bytes(sinks[0].data) == CLIENT_DATA and not problems(conn)


@pytest.mark.parametrize("version", [V12, V13])
def test_resumed_session(version) -> None:
    first = run_pair(version=version, return_session=True)
    tr = run_pair(CLIENT_DATA, SERVER_DATA, contexts=first.contexts, session=first.session)
    conn, sinks = replay(tr)
    assert conn.resumed and conn.certificates == [None, None]
    assert bytes(sinks[0].data) == CLIENT_DATA and bytes(sinks[1].data) == SERVER_DATA


# -- TLS 1.3 KeyUpdate: hand-built (Python's ssl cannot ask OpenSSL for one) ------------------

def _record(ctype: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", ctype, version, len(body)) + body


def _hs(htype: int, body: bytes) -> bytes:
    return struct.pack("!I", htype << 24 | len(body)) + body


def client_hello(random: bytes = b"\x11" * 32, suites=(0x1301,), exts: bytes = b"") -> bytes:
    body = (b"\x03\x03" + random + b"\x00" + struct.pack("!H", 2 * len(suites))
            + b"".join(struct.pack("!H", s) for s in suites) + b"\x01\x00"
            + struct.pack("!H", len(exts)) + exts)
    return _hs(1, body)


def server_hello(random: bytes = b"\x22" * 32, suite: int = 0x1301, tls13: bool = True) -> bytes:
    exts = struct.pack("!HHH", 43, 2, 0x0304) if tls13 else b""
    body = (b"\x03\x03" + random + b"\x00" + struct.pack("!H", suite) + b"\x00"
            + struct.pack("!H", len(exts)) + exts)
    return _hs(2, body)


class _Seal13:
    def __init__(self, secret: bytes) -> None:
        self.key = hkdf_expand_label("SHA256", secret, b"key", b"", 16)
        self.iv = hkdf_expand_label("SHA256", secret, b"iv", b"", 12)
        self.seq = 0

    def seal(self, ctype: int, data: bytes) -> bytes:
        inner = data + bytes([ctype])
        n = len(inner) + 16
        nonce = self.iv[:4] + bytes(a ^ b for a, b in zip(self.iv[4:],
                                                          struct.pack("!Q", self.seq),
                                                          strict=True))
        self.seq += 1
        return _record(23, AESGCM(self.key).encrypt(nonce, inner,
                                                    struct.pack("!BHH", 23, 0x0303, n)))


def test_tls13_key_update() -> None:
    """RFC 8446 4.6.3 / 7.2: after KeyUpdate the sender's next records use secret N+1."""
    rnd = b"\x11" * 32
    secrets = {k: bytes([i + 1]) * 32 for i, k in enumerate(
        ["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
         "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"])}
    kl = keylog_of("".join(f"{k} {rnd.hex()} {v.hex()}\n" for k, v in secrets.items()))
    sinks = (Sink(), Sink())
    conn = TLSConnection(kl, inner=lambda c: sinks)
    c, s = conn.sides
    c.feed(_record(22, client_hello(rnd), 0x0301), 1, 0.0)
    s.feed(_record(22, server_hello()), 2, 0.0)
    shs = _Seal13(secrets["SERVER_HANDSHAKE_TRAFFIC_SECRET"])
    s.feed(shs.seal(22, _hs(8, b"\x00\x00") + _hs(20, b"\x00" * 32)), 3, 0.0)
    chs = _Seal13(secrets["CLIENT_HANDSHAKE_TRAFFIC_SECRET"])
    c.feed(_record(20, b"\x01") + chs.seal(22, _hs(20, b"\x00" * 32)), 4, 0.0)
    app = _Seal13(secrets["CLIENT_TRAFFIC_SECRET_0"])
    c.feed(app.seal(23, b"before update;"), 5, 0.0)
    c.feed(app.seal(22, _hs(24, b"\x00")), 6, 0.0)
    upd = _Seal13(next_traffic_secret("SHA256", secrets["CLIENT_TRAFFIC_SECRET_0"]))
    c.feed(upd.seal(23, b"after update"), 7, 0.0)
    assert bytes(sinks[0].data) == b"before update;after update"
    assert not problems(conn) and conn.handshake_complete
    assert "key_update" in [e.name for e in conn.events if isinstance(e, Step)]


def test_prf_known_answer() -> None:
    """TLS 1.2 PRF (SHA-256) test vector published with the IETF TLS WG's PRF test vectors."""
    secret = bytes.fromhex("9bbe436ba940f017b17652849a71db35")
    seed = bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c")
    out = prf(0x0303, "SHA256", secret, b"test label", seed, 100)
    assert out.hex().startswith("e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61e"
                                "db5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797"
                                "c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e"
                                "5a5110fff70187347b66")


# -- hostile bytes ---------------------------------------------------------------------------

def test_plausible_tls() -> None:
    hello = _record(22, client_hello(), 0x0301)
    assert plausible_tls(hello) is True
    assert plausible_tls(hello[:4]) is None
    assert plausible_tls(b"\x01\x00\x00\x00\x00\xcd\x00\x01\x00\x00") is False  # A-ASSOCIATE-RQ
    assert plausible_tls(b"GET / HTTP/1.1\r\n") is False
    assert plausible_tls(b"\x16\x03\x01\xff\xff" + hello[5:]) is False  # length over a record


def test_lying_record_length_stops_the_direction() -> None:
    conn = TLSConnection()
    d = conn.sides[0]
    d.feed(_record(22, client_hello(), 0x0301) + b"\x17\x03\x03\xff\xff" + b"x" * 100, 1, 0.0)
    p = problems(conn)
    assert [x.code for x in p] == ["RECORD-MALFORMED"] and "65535" in p[0].message
    d.feed(b"y" * 10_000, 2, 0.0)
    assert d.lost_bytes >= 10_000 and len(d.body) == 0 and len(problems(conn)) == 1


def test_huge_handshake_message_is_skipped_not_buffered() -> None:
    conn = TLSConnection(max_handshake=4096)
    d = conn.sides[1]
    # A certificate message claiming 16 MB, sent as many full records: nothing is kept.
    d.feed(_record(22, struct.pack("!I", 11 << 24 | 0xFFFFFF) + b"\x00" * 16000), 1, 0.0)
    for i in range(40):
        d.feed(_record(22, b"\x00" * 16384), 2 + i, 0.0)
        assert len(d.hs) <= 4096 + MAX_RECORD
    assert [x.code for x in problems(conn)] == ["HANDSHAKE-TOO-LARGE"]
    assert d.hs_discard == 0xFFFFFF - 16000 - 40 * 16384


def test_lying_vector_lengths_in_hello() -> None:
    ch = bytearray(client_hello())
    ch[4 + 2 + 32 + 1:4 + 2 + 32 + 3] = b"\xff\xff"  # cipher suites length overruns
    conn = TLSConnection()
    conn.sides[0].feed(_record(22, bytes(ch), 0x0301), 1, 0.0)
    p = problems(conn)
    assert [x.code for x in p] == ["HANDSHAKE-MALFORMED"] and "cipher suites" in p[0].message


def test_garbage_and_gaps() -> None:
    conn = TLSConnection()
    conn.sides[0].feed(b"\x16\x03\x01\x00\x05" + b"\x01\x00\x00\x01\x00", 1, 0.0)
    conn.sides[1].feed(bytes(range(256)) * 4, 2, 0.0)
    conn.sides[0].gap(100, 3, 0.0)
    codes = [(p.side, p.code) for p in problems(conn)]
    assert (1, "RECORD-MALFORMED") in codes and (0, "GAP") in codes
    # Two-byte alert records, an odd one, and an unknown alert code.
    conn = TLSConnection()
    conn.sides[1].feed(_record(21, b"\x02\x30") + _record(21, b"\x02\xee\x01"), 1, 0.0)
    alerts = [e for e in conn.events if isinstance(e, Alert)]
    assert [(a.level, a.description) for a in alerts] == [("fatal", "unknown_ca"),
                                                          ("fatal", "alert 238")]
    assert [p.code for p in problems(conn)] == ["ALERT-MALFORMED"]


def test_hostile_strings_are_escaped() -> None:
    name = b"\x1b[31mevil\x1b[0m.example"
    sni = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    exts = struct.pack("!HH", 0, len(sni)) + sni
    conn = TLSConnection()
    conn.sides[0].feed(_record(22, client_hello(exts=exts), 0x0301), 1, 0.0)
    assert conn.sni is not None and "\x1b" not in conn.sni and conn.sni.isprintable()


def test_keylog_lines() -> None:
    rnd = "ab" * 32
    kl = keylog_of("\n".join([
        "# comment", "", f"CLIENT_RANDOM {rnd} {'cd' * 48}",
        f"CLIENT_RANDOM {rnd} {'cd' * 47}",  # master secret of the wrong length
        f"SERVER_HANDSHAKE_TRAFFIC_SECRET {rnd} {'ef' * 48}",
        f"RSA {'00' * 8} {'11' * 48}",  # a label we do not use
        "CLIENT_RANDOM zz yy", "garbage", "X" * 5000,
    ]))
    assert set(kl.secrets(bytes.fromhex(rnd))) == {"CLIENT_RANDOM",
                                                    "SERVER_HANDSHAKE_TRAFFIC_SECRET"}
    assert kl.malformed == 4 and kl.first_malformed == 4 and kl.unknown_labels == 1
    small = KeyLog(max_sessions=1)
    small.add_lines([f"CLIENT_RANDOM {'01' * 32} {'cd' * 48}",
                     f"CLIENT_RANDOM {'02' * 32} {'cd' * 48}"])
    assert len(small) == 1 and small.dropped == 1


def test_keylog_file_with_an_overlong_line(tmp_path) -> None:
    p = tmp_path / "keys.log"
    rnd = "ab" * 32
    p.write_bytes(b"A" * 1_000_000 + b"\n" + f"CLIENT_RANDOM {rnd} {'cd' * 48}\n".encode())
    kl = KeyLog()
    kl.add_file(str(p))
    assert kl.malformed == 1 and kl.secrets(bytes.fromhex(rnd)) is not None
