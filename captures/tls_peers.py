"""pynetdicom peers over TLS, for the captures in captures/tls/ (run inside a namespace).

``python3 captures/tls_peers.py server --port 2762 --cert server.crt --key server.key ...``
serves Verification and CT storage over TLS until SIGTERM. ``client`` opens associations over
TLS with an ``ssl.SSLContext`` whose ``keylog_filename`` writes the NSS key log, sends C-ECHOs
and C-STOREs of small synthetic CT images, and prints one JSON line per association with what
the TLS layer negotiated (version, cipher, whether the session was resumed) and the statuses.

``--resume`` hands each association's TLS session to the next one (Python's ``session=``),
so the second handshake is abbreviated (TLS 1.2 session id or TLS 1.3 ticket). TLS 1.0/1.1
need ``--seclevel0`` (OpenSSL 3 refuses them at its default security level).
"""

from __future__ import annotations

import argparse
import json
import signal
import ssl
import sys
import threading
import warnings
from typing import Any

if __package__ in (None, ""):
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian  # noqa: E402
from pynetdicom import AE, evt  # noqa: E402
from pynetdicom.sop_class import Verification  # noqa: E402

SSL_OP_NO_ENCRYPT_THEN_MAC = 1 << 19  # OpenSSL 3's value; Python has no constant
UID_ROOT = "1.2.826.0.1.3680043.8.498.919."  # fixed, synthetic
VERSIONS = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
            "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class _ResumingContext(ssl.SSLContext):
    """Hands the last session to the next wrap_socket (pynetdicom calls wrap_socket itself)."""

    session: ssl.SSLSession | None = None

    def wrap_socket(self, sock, *a: Any, **kw: Any):  # type: ignore[override]
        if self.session is not None:
            kw["session"] = self.session
        return super().wrap_socket(sock, *a, **kw)


def _context(args: argparse.Namespace, server: bool) -> ssl.SSLContext:
    ctx = (ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER) if server
           else _ResumingContext(ssl.PROTOCOL_TLS_CLIENT))
    if args.tls_version:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = VERSIONS[args.tls_version]
    if args.ciphers or args.seclevel0:
        ctx.set_ciphers((args.ciphers or "DEFAULT") + (":@SECLEVEL=0" if args.seclevel0
                                                         else ""))
    if args.seclevel0 and not args.tls_version:
        with warnings.catch_warnings():  # Python's default floor is TLS 1.2
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
    if args.no_etm:
        ctx.options |= SSL_OP_NO_ENCRYPT_THEN_MAC
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    if args.ca:
        ctx.load_verify_locations(args.ca)
    if server:
        ctx.verify_mode = ssl.CERT_REQUIRED if args.require_client_cert else ssl.CERT_NONE
        if args.groups:
            ctx.set_ecdh_curve(args.groups)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED if args.ca else ssl.CERT_NONE
    return ctx


def ct(index: int, size: int) -> Dataset:
    """A small synthetic CT image (SYNTHETIC^TLS), ``size`` bytes of pixel data."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = f"{UID_ROOT}1.{index}"
    ds.StudyInstanceUID = f"{UID_ROOT}2"
    ds.SeriesInstanceUID = f"{UID_ROOT}3"
    ds.PatientName = "SYNTHETIC^TLS"
    ds.PatientID = "TLS0001"
    ds.Modality = "CT"
    side = int((size // 2) ** 0.5)
    ds.Rows = ds.Columns = side
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes((i * 7 + index) & 0xFF for i in range(side * side * 2))
    return ds


def server(args: argparse.Namespace) -> None:
    ae = AE(ae_title=args.aet)
    ae.add_supported_context(Verification, ExplicitVRLittleEndian)
    ae.add_supported_context(CTImageStorage, ExplicitVRLittleEndian)
    srv = ae.start_server((args.bind, args.port), block=False,
                          ssl_context=None if args.plain else _context(args, True),
                          evt_handlers=[(evt.EVT_C_STORE, lambda e: 0x0000)])
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    srv.shutdown()


def client(args: argparse.Namespace) -> None:
    ctx = None if args.plain else _context(args, False)
    if ctx is not None:
        ctx.keylog_filename = args.keylog
    ae = AE(ae_title=args.aet)
    ae.add_requested_context(Verification, ExplicitVRLittleEndian)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    failed = 0
    for n in range(args.associations):
        assoc = ae.associate(args.host, args.port, ae_title=args.called,
                             tls_args=None if ctx is None else (ctx, args.sni))
        out: dict[str, Any] = {"association": n + 1, "established": assoc.is_established}
        if assoc.is_established and ctx is not None:
            sock = assoc.dul.socket.socket
            out.update(tls_version=sock.version(), cipher=sock.cipher()[0],
                       resumed=sock.session_reused)
        if assoc.is_established:
            out["C-ECHO"] = [f"0x{assoc.send_c_echo().Status:04X}" for _ in range(args.echo)]
            stores = []
            for i in range(args.store):
                st = assoc.send_c_store(ct(args.instance_base + n * 100 + i, args.size))
                stores.append(f"0x{st.Status:04X}" if "Status" in st else None)
            out["C-STORE"] = stores
            if args.resume:
                ctx.session = sock.session  # type: ignore[attr-defined]
            assoc.release()
        else:
            failed += 1
        print(json.dumps(out), flush=True)
    sys.exit(1 if failed and not args.expect_fail else 0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="role", required=True)
    for name in ("server", "client"):
        sp = sub.add_parser(name)
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--cert")
        sp.add_argument("--key")
        sp.add_argument("--ca")
        sp.add_argument("--tls-version", choices=sorted(VERSIONS))
        sp.add_argument("--ciphers")
        sp.add_argument("--seclevel0", action="store_true")
        sp.add_argument("--no-etm", action="store_true")
        sp.add_argument("--plain", action="store_true",
                        help="no TLS (the clear twin of a TLS recording, for the benchmark)")
        if name == "server":
            sp.add_argument("--bind", default="")
            sp.add_argument("--aet", default="TLSSCP")
            sp.add_argument("--require-client-cert", action="store_true")
            sp.add_argument("--groups")
        else:
            sp.add_argument("--host", required=True)
            sp.add_argument("--aet", default="TLSSCU")
            sp.add_argument("--called", default="TLSSCP")
            sp.add_argument("--keylog", required=True)
            sp.add_argument("--sni")
            sp.add_argument("--associations", type=int, default=1)
            sp.add_argument("--echo", type=int, default=1)
            sp.add_argument("--store", type=int, default=1)
            sp.add_argument("--size", type=int, default=8192)
            sp.add_argument("--instance-base", type=int, default=0,
                            help="first SOP Instance UID number (distinct runs, distinct UIDs)")
            sp.add_argument("--resume", action="store_true")
            sp.add_argument("--expect-fail", action="store_true")
    args = p.parse_args(argv)
    (server if args.role == "server" else client)(args)


if __name__ == "__main__":
    main()
