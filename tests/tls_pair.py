"""A real OpenSSL client and server (Python's ssl over memory BIOs), for fast decryption tests.

No sockets: the two SSLObjects exchange bytes through MemoryBIOs and every chunk each side
writes is recorded in order, with the key log the client's ``SSLContext.keylog_filename``
wrote. The bytes are OpenSSL's own, so the dissector is checked against a real implementation
for every suite this OpenSSL offers, in milliseconds; the netns captures cover real DICOM
peers on the wire.
"""

from __future__ import annotations

import ssl
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

from captures.tls_certs import make_set

SSL_OP_NO_ENCRYPT_THEN_MAC = 1 << 19  # OpenSSL 3 value; Python has no constant for it


@lru_cache(maxsize=1)
def cert_dir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="dstls-certs-"))
    make_set(d)
    return d


class Transcript:
    """chunks: [(side, bytes)] in the order written; keylog: the key log text."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, bytes]] = []
        self.keylog = ""
        self.version = ""
        self.cipher = ""
        self.received: list[bytes] = [b"", b""]
        self.error: str | None = None


def run_pair(client_data: bytes = b"hello from the client", server_data: bytes = b"hello back",
             *, version: ssl.TLSVersion | None = None, ciphers: str | None = None,
             etm: bool = True, server_key: str = "server", client_cert: bool = False,
             require_client_cert: bool = False,
             session=None, ca: str = "ca",
             return_session: bool = False, seclevel0: bool = False, alpn: list[str] = (),
             sni: str | None = None, contexts=None, server_groups: str | None = None,
             ) -> Transcript:
    """One connection. ``contexts`` (from a previous Transcript) reuses both SSLContexts, as
    resumption needs; ``server_groups`` restricts the server's ECDHE curve (HelloRetryRequest
    when the client's key share is x25519)."""
    d = cert_dir()
    if contexts is not None:
        cli, srv = contexts
        return _run(cli, srv, client_data, server_data, session, return_session, sni)
    cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if alpn:
        cli.set_alpn_protocols(list(alpn))
        srv.set_alpn_protocols(list(alpn))
    if server_groups:
        srv.set_ecdh_curve(server_groups)
    cli.load_verify_locations(d / f"{ca}.crt")
    cli.check_hostname = False
    srv.load_cert_chain(d / f"{server_key}.crt", d / f"{server_key}.key")
    if client_cert:
        cli.load_cert_chain(d / "client.crt", d / "client.key")
    if require_client_cert:
        srv.verify_mode = ssl.CERT_REQUIRED
        srv.load_verify_locations(d / "ca.crt")
    for ctx in (cli, srv):
        if version is not None:
            with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ctx.maximum_version = version
        if ciphers:
            ctx.set_ciphers(ciphers + (":@SECLEVEL=0" if seclevel0 else ""))
        elif seclevel0:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        if not etm:
            ctx.options |= SSL_OP_NO_ENCRYPT_THEN_MAC
    return _run(cli, srv, client_data, server_data, session, return_session, sni)


def _run(cli, srv, client_data, server_data, session, return_session, sni) -> Transcript:
    kl = tempfile.NamedTemporaryFile(prefix="dstls-keylog-", delete=False)
    kl.close()
    cli.keylog_filename = kl.name
    tr = Transcript()
    bios = [(ssl.MemoryBIO(), ssl.MemoryBIO()), (ssl.MemoryBIO(), ssl.MemoryBIO())]
    c = cli.wrap_bio(bios[0][0], bios[0][1], server_side=False, session=session,
                     server_hostname=sni)
    s = srv.wrap_bio(bios[1][0], bios[1][1], server_side=True)
    objs = (c, s)

    def pump() -> bool:
        moved = False
        for side in (0, 1):
            out = bios[side][1].read()
            if out:
                moved = True
                tr.chunks.append((side, out))
                bios[1 - side][0].write(out)
        return moved

    def step(obj) -> bool:
        try:
            obj.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False

    done = [False, False]
    try:
        for _ in range(50):
            for side in (0, 1):
                if not done[side]:
                    done[side] = step(objs[side])
            if not pump() and all(done):
                break
        c.write(client_data)
        pump()
        for _ in range(5):
            try:
                tr.received[1] += s.read(1 << 20)
            except ssl.SSLWantReadError:
                pass
            pump()
        s.write(server_data)
        pump()
        for _ in range(5):
            try:
                tr.received[0] += c.read(1 << 20)
            except ssl.SSLWantReadError:
                pass
            pump()
        for side in (0, 1):
            try:
                objs[side].unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass
            pump()
    except ssl.SSLError as exc:
        tr.error = str(exc)
        pump()
    tr.version = c.version() or ""
    tr.cipher = (c.cipher() or ("",))[0]
    tr.keylog = Path(kl.name).read_text()
    Path(kl.name).unlink()
    tr.session = c.session if return_session else None  # type: ignore[attr-defined]
    tr.contexts = (cli, srv)  # type: ignore[attr-defined]
    return tr
