"""What every pynetdicom peer of the recordings shares (captures/pnd_peers.py,
findings_peers.py, journey_peers.py): one JSON line of ground truth, the status as the peer
saw it, a server that stops cleanly on SIGTERM, an association or exit 2, TCP_NODELAY, and
the command line of their roles (:class:`Roles`).

The peers run as scripts inside a namespace (``python3 captures/X_peers.py ROLE``), so their
own directory is on ``sys.path`` and they import this as ``pnd_common``.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

# Storage Commitment Push Model well-known SOP Instance (PS3.4 J.3.5).
COMMIT_INSTANCE = "1.2.840.10008.1.20.1.1"
TRANSFER = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


def emit(summary: dict[str, Any]) -> None:
    """The client's account of what it did: one JSON line, the recorder's ground truth."""
    print(json.dumps(summary, sort_keys=True), flush=True)


def status(ds: Dataset | None) -> str:
    return f"0x{ds.Status:04X}" if ds is not None and "Status" in ds else "none"


def serve(ae: AE, host: str, port: int, handlers: list[Any], rcvbuf: int = 0) -> None:
    """Serve until SIGTERM/SIGINT, then shut the server down cleanly. ``rcvbuf`` shrinks the
    listening socket's receive buffer (accepted sockets inherit it), so that a stalled
    reader shows a zero window quickly."""
    if rcvbuf:
        from pynetdicom import transport

        bind = transport.AssociationServer.server_bind

        def small_buffer(self: Any) -> None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            bind(self)

        transport.AssociationServer.server_bind = small_buffer  # type: ignore[method-assign]
    server = ae.start_server((host, port), block=False, evt_handlers=handlers)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()


def associate(args: argparse.Namespace, contexts: list[str], **kw: Any) -> Any:
    """An association from ``args.aet`` to ``args.called`` at ``args.host:args.port``
    proposing ``contexts``; when refused, ``{"established": false}`` and exit 2."""
    ae = AE(ae_title=args.aet)
    for sop in contexts:
        ae.add_requested_context(sop, TRANSFER)
    assoc = ae.associate(args.host, args.port, ae_title=args.called, **kw)
    if not assoc.is_established:
        emit({"established": False})
        sys.exit(2)
    return assoc


def enable_nodelay() -> None:
    """Set TCP_NODELAY on pynetdicom's sockets (it sends command and data set separately,
    which with Nagle costs a delayed-ACK wait per message: too slow for benchmark loads, and
    a finding of its own that would blur a capture made for something else)."""
    from pynetdicom import transport

    create = transport.AssociationSocket._create_socket

    def patched(self: Any, address: Any) -> socket.socket:
        sock = create(self, address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    transport.AssociationSocket._create_socket = patched  # type: ignore[method-assign]


class Roles:
    """A peer script's command line: one subcommand a role, which runs its function with the
    parsed arguments (``args.func(args)``). A server listens (``--bind``, ``--port``,
    ``--aet``); a client calls one (``--host``, ``--port``, ``--aet``, ``--called``, the
    servers' title by default). Each returns its parser for the role's own options."""

    def __init__(self, doc: str, server_aet: str = "PYSCP", client_aet: str = "PYSCU") -> None:
        self.parser = argparse.ArgumentParser(description=doc.splitlines()[0])
        self._roles = self.parser.add_subparsers(dest="role", required=True)
        self.server_aet, self.client_aet = server_aet, client_aet

    def server(self, name: str, func: Any) -> argparse.ArgumentParser:
        sp = self._roles.add_parser(name)
        sp.add_argument("--bind", default="")
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--aet", default=self.server_aet)
        sp.set_defaults(func=func)
        return sp

    def client(self, name: str, func: Any) -> argparse.ArgumentParser:
        sp = self._roles.add_parser(name)
        sp.add_argument("--host", required=True)
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--aet", default=self.client_aet)
        sp.add_argument("--called", default=self.server_aet)
        sp.set_defaults(func=func)
        return sp

    def parse(self, argv: list[str] | None) -> argparse.Namespace:
        return self.parser.parse_args(argv)
