"""``export-objects`` for DICOMweb: the instances of STOW-RS requests and WADO responses.

An :class:`~dicomsniff.dicomweb.instances.InstancePolicy` on the capture's DICOMweb session:
each ``application/dicom`` part of a STOW-RS request (sent by the user agent) and of a WADO-RS
or WADO-URI response (sent by the origin server) streams into a temporary file through the
export's :class:`~.export.ObjectSink`, byte for byte (a part is a PS3.10 file already), and is
named once its end shows its SOP Instance UID: ``A0004_192.0.2.1-to-192.0.2.2_<UID>.dcm``
(the HTTP connection's id and the sender's and receiver's addresses). ``--sop-class`` is
decided then (a file not wanted is removed); ``--ae`` selects DIMSE associations only, so
with it no DICOMweb instance is written. The status column says the HTTP status and, for
STOW-RS, what the origin server said of that instance (stored, failed...).
"""

from __future__ import annotations

from typing import Any

from . import names
from .export import Exported, Exporter, ObjectSink


def _host(endpoint: str) -> str:
    """``192.0.2.1`` of ``192.0.2.1:41342`` (``[2001:db8::1]:80`` -> ``2001:db8::1``)."""
    host = endpoint.rsplit(":", 1)[0] if ":" in endpoint else endpoint
    return host.strip("[]")


class WebObjectSink(ObjectSink):
    """One instance's bytes into a file; named when it ends (its UID is read from its head)."""

    __slots__ = ()

    def close(self, complete: bool, header: dict[str, Any] | None = None) -> None:  # type: ignore[override]
        info = self.info
        exporter = self.exporter
        if header:
            info.sop_class = header.get("sop_class") or info.sop_class
            info.sop_instance = header.get("sop_instance") or info.sop_instance
            info.transfer_syntax = header.get("transfer_syntax") or info.transfer_syntax
        if not exporter.filters.sop_class(info.sop_class):
            exporter.drop(self)
            return
        if header is None:
            exporter.skip(self, "labelled application/dicom but not a PS3.10 file (no 'DICM' "
                                "after the 128-byte preamble)")
            return
        self.stem = names.object_name(info.association, info.sender, info.receiver,
                                      info.sop_instance)
        super().close(not complete)


class WebObjects:
    """The export policy for DICOMweb instances; ``attach`` it to a DICOMweb session."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter

    def attach(self, session: Any) -> None:
        session.instance_policies.append(self)
        session.on_transaction.append(self.transaction)
        session.on_connection.append(self.connection)

    def instance(self, connection: Any, transaction: Any, side: int,
                 part: int | None) -> WebObjectSink | None:
        f = self.exporter.filters
        if f.aes or (f.associations and connection.id not in f.associations):
            return None
        client, server = _host(connection.client), _host(connection.server)
        sender, receiver = (client, server) if side == 0 else (server, client)
        info = Exported(None, connection.id, sender, receiver, None, None, None, 0, False)
        key = ("web", connection.id, transaction.id, part)
        if side == 1 and transaction.status is not None:
            info.status = f"HTTP {transaction.status} ({transaction.command})"
        else:
            self.exporter.expect(key, info)
        return WebObjectSink(self.exporter, key, info, "", None)

    def transaction(self, connection: Any, transaction: Any) -> None:
        """A STOW-RS answered: each stored part gets the server's word on it."""
        outcome = {i.get("part"): i.get("outcome") for i in transaction.instances
                   if i.get("part") is not None}
        status = (f"HTTP {transaction.status}" if transaction.status is not None
                  else "no response")
        for key in self.exporter.waiting(("web", connection.id, transaction.id)):
            part = key[3]
            said = outcome.get(part + 1 if part is not None else None)
            self.exporter.answer(key, f"{status} ({transaction.command}"
                                 + (f": {said})" if said else ")"))

    def connection(self, connection: Any, transactions: Any, findings: Any) -> None:
        for key in self.exporter.waiting(("web", connection.id)):
            self.exporter.answer(key, "no response")
