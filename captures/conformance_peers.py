"""pynetdicom peers with chosen conformance, for the conformance captures (captures/conformance/).

Run inside a namespace as ``python3 captures/conformance_peers.py ROLE [options]``. Servers run
until SIGTERM; clients print one JSON line with what they did. Roles:

* ``pacs``: an SCP supporting exactly Verification, CT Image Storage (Explicit then Implicit VR
  Little Endian), Study Root FIND and GET (Implicit VR Little Endian), accepting SCP/SCU Role
  Selection for CT Image Storage (so a C-GET can send the CT back on the same association),
  answering SOP Class Extended Negotiation for Study Root FIND (relational queries refused:
  0x00), the asynchronous operations window (1/1) and a username user identity (a positive
  response when asked). Max PDU 32768. Anything else is refused.
* ``viewer``: an SCU proposing Verification; CT Image Storage in Implicit VR Little Endian and
  again in JPEG 2000 only; MR Image Storage; Study Root FIND with extended negotiation; Study
  Root GET with the SCU and SCP roles for CT Image Storage; user identity (username,
  positive response requested); asynchronous window 2/1; max PDU 65536. Then C-ECHO, a
  C-STORE of one CT, a C-FIND and a C-GET of that study (its C-STORE sub-operation comes
  back on the association).
* ``archive``: a storage SCP accepting CT Image Storage in Explicit/Implicit VR Little Endian
  only (everything else refused), answering every C-STORE after ``--delay`` seconds with the
  statuses of ``--statuses`` in turn (the "after" of the before/after pair: another product
  behind the same AE title).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from pnd_common import TRANSFER, Roles, emit, serve
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian, JPEG2000Lossless
from pynetdicom import AE, build_role, evt
from pynetdicom.pdu_primitives import (
    AsynchronousOperationsWindowNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)


def pacs(args: argparse.Namespace) -> None:
    stored: list[Dataset] = []
    ae = AE(ae_title=args.aet)
    ae.maximum_pdu_size = 32768
    ae.add_supported_context(Verification, ImplicitVRLittleEndian)
    ae.add_supported_context(CTImageStorage, TRANSFER, scu_role=True, scp_role=True)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind, ImplicitVRLittleEndian)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet, ImplicitVRLittleEndian)

    def on_store(event: evt.Event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        stored.append(ds)
        return 0x0000

    def on_find(event: evt.Event):  # type: ignore[no-untyped-def]
        for ds in stored:
            rsp = Dataset()
            rsp.QueryRetrieveLevel = "STUDY"
            rsp.StudyInstanceUID = ds.StudyInstanceUID
            rsp.PatientID = ds.PatientID
            yield 0xFF00, rsp

    def on_get(event: evt.Event):  # type: ignore[no-untyped-def]
        uid = event.identifier.StudyInstanceUID
        matches = [ds for ds in stored if ds.StudyInstanceUID == uid]
        yield len(matches)
        for ds in matches:
            yield 0xFF00, ds

    def on_ext(event: evt.Event) -> dict[str, bytes]:
        return {uid: b"\x00" for uid in event.app_info}  # relational queries: not supported

    def on_user(event: evt.Event) -> tuple[bool, bytes | None]:
        return True, b"" if event.primary_field else None

    ae.require_calling_aet = []
    serve(ae, args.bind, args.port, [
        (evt.EVT_C_STORE, on_store), (evt.EVT_C_FIND, on_find), (evt.EVT_C_GET, on_get),
        (evt.EVT_SOP_EXTENDED, on_ext), (evt.EVT_USER_ID, on_user),
        (evt.EVT_ASYNC_OPS, lambda e: (1, 1))])


def viewer(args: argparse.Namespace) -> None:
    ds = dcmread(args.file)  # Implicit VR Little Endian, the syntax it proposes for CT
    ae = AE(ae_title=args.aet)
    ae.maximum_pdu_size = 65536
    ae.add_requested_context(Verification, ImplicitVRLittleEndian)
    ae.add_requested_context(CTImageStorage, ImplicitVRLittleEndian)
    ae.add_requested_context(CTImageStorage, JPEG2000Lossless)
    ae.add_requested_context(MRImageStorage, ImplicitVRLittleEndian)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind, ImplicitVRLittleEndian)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet, ImplicitVRLittleEndian)
    ext = SOPClassExtendedNegotiation()
    ext.sop_class_uid = StudyRootQueryRetrieveInformationModelFind
    ext.service_class_application_information = b"\x01"  # relational queries, please
    uid = UserIdentityNegotiation()
    uid.user_identity_type = 1
    uid.primary_field = b"viewer"
    uid.positive_response_requested = True
    window = AsynchronousOperationsWindowNegotiation()
    window.maximum_number_operations_invoked = 2
    window.maximum_number_operations_performed = 1
    received: list[str] = []

    def on_store(event: evt.Event) -> int:
        received.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    assoc = ae.associate(args.host, args.port, ae_title=args.called, max_pdu=65536,
                         ext_neg=[build_role(CTImageStorage, scu_role=True, scp_role=True),
                                  ext, uid, window],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    if not assoc.is_established:
        emit({"established": False})
        sys.exit(2)
    out: dict[str, Any] = {"established": True,
                           "accepted": sorted({f"{c.abstract_syntax} {c.transfer_syntax[0]}"
                                               for c in assoc.accepted_contexts}),
                           "rejected": sorted({f"{c.abstract_syntax} {c.result}"
                                               for c in assoc.rejected_contexts})}
    st = assoc.send_c_echo()
    out["C-ECHO"] = f"0x{st.Status:04X}"
    st = assoc.send_c_store(ds)
    out["C-STORE"] = f"0x{st.Status:04X}"
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.StudyInstanceUID = ""
    q.PatientID = ""
    finds = [f"0x{s.Status:04X}" for s, _ in
             assoc.send_c_find(q, StudyRootQueryRetrieveInformationModelFind) if s]
    out["C-FIND"] = finds
    g = Dataset()
    g.QueryRetrieveLevel = "STUDY"
    g.StudyInstanceUID = ds.StudyInstanceUID
    gets = [f"0x{s.Status:04X}" for s, _ in
            assoc.send_c_get(g, StudyRootQueryRetrieveInformationModelGet) if s]
    out["C-GET"] = gets
    out["received"] = received
    assoc.release()
    emit(out)


def archive(args: argparse.Namespace) -> None:
    statuses = [int(x, 16) for x in args.statuses.split(",")] if args.statuses else [0]
    count = [0]
    ae = AE(ae_title=args.aet)
    ae.maximum_pdu_size = args.max_pdu
    ae.add_supported_context(CTImageStorage, TRANSFER)
    ae.add_supported_context(Verification, TRANSFER)

    def on_store(event: evt.Event) -> int:
        n = count[0]
        count[0] += 1
        time.sleep(args.delay)
        return statuses[n % len(statuses)]

    serve(ae, args.bind, args.port, [(evt.EVT_C_STORE, on_store)])


def main(argv: list[str] | None = None) -> None:
    roles = Roles(__doc__, server_aet="PACS", client_aet="VIEWER")
    roles.server("pacs", pacs)
    sp = roles.server("archive", archive)
    sp.add_argument("--delay", type=float, default=0.0)
    sp.add_argument("--statuses", default="0x0000")
    sp.add_argument("--max-pdu", type=int, default=65536)
    roles.client("viewer", viewer).add_argument("file", type=Path)
    args = roles.parse(argv)
    args.func(args)


if __name__ == "__main__":
    main()
