"""pynetdicom peers for what dcmtk's command-line tools cannot do (or not over IPv6).

Run inside a namespace as ``python3 captures/pnd_peers.py ROLE [options]``.  Servers run until
SIGTERM; clients print one JSON line with what they sent and the statuses they received, which
the recorder stores as ground truth.  Roles:

* ``nserver``: MPPS (N-CREATE/N-SET), MPPS Retrieve (N-GET), Storage Commitment (N-ACTION, then
  N-EVENT-REPORT on the same association or on a new one back to the requestor), Verification.
* ``mpps``, ``nget``, ``commit``: the matching SCUs (``commit --listen`` waits for the
  N-EVENT-REPORT on its own listener).
* ``store-server``/``store``: Verification + CT storage (used for the IPv6 capture).
* ``chatty``: many short associations, each with a C-ECHO and some C-FINDs (benchmark load).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import synth
from pnd_common import (
    COMMIT_INSTANCE,
    TRANSFER,
    Roles,
    associate,
    emit,
    enable_nodelay,
    serve,
    status,
)
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    CTImageStorage,
)
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    ModalityPerformedProcedureStep,
    ModalityPerformedProcedureStepRetrieve,
    StorageCommitmentPushModel,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

UID_ROOT = "1.2.826.0.1.3680043.8.498.777."  # fixed, synthetic


# -- N-service server ------------------------------------------------------------------------


def nserver(args: argparse.Namespace) -> None:
    """MPPS + MPPS Retrieve + Storage Commitment SCP with an in-memory instance store."""
    instances: dict[str, Dataset] = {}
    if args.preload:
        ds = Dataset()
        ds.PerformedProcedureStepStatus = "COMPLETED"
        ds.PerformedProcedureStepID = "PPS-PRELOADED"
        ds.PerformedStationAETitle = "CTSCANNER"
        ds.PatientName = "SYNTHETIC^ERIN"
        ds.PatientID = "DSN0005"
        ds.Modality = "CT"
        instances[args.preload] = ds

    def on_create(event: evt.Event) -> tuple[int, Dataset | None]:
        uid = event.request.AffectedSOPInstanceUID
        if uid in instances:
            return 0x0111, None  # Duplicate SOP Instance
        ds = event.attribute_list
        ds.SOPClassUID = event.request.AffectedSOPClassUID
        ds.SOPInstanceUID = uid
        instances[uid] = ds
        return 0x0000, ds

    def on_set(event: evt.Event) -> tuple[int, Dataset | None]:
        uid = event.request.RequestedSOPInstanceUID
        if uid not in instances:
            return 0x0112, None  # No Such SOP Instance
        ds = instances[uid]
        if ds.get("PerformedProcedureStepStatus") != "IN PROGRESS":
            return 0x0110, None  # Processing failure: already final
        for elem in event.modification_list:
            ds[elem.tag] = elem
        return 0x0000, ds

    def on_get(event: evt.Event) -> tuple[int, Dataset | None]:
        uid = event.request.RequestedSOPInstanceUID
        if uid not in instances:
            return 0x0112, None
        wanted = event.request.AttributeIdentifierList or []
        src, out = instances[uid], Dataset()
        for tag in wanted:
            if tag in src:
                out[tag] = src[tag]
        return 0x0000, out

    pending: list[tuple[Any, Dataset]] = []

    def on_action(event: evt.Event) -> tuple[int, Dataset | None]:
        info = event.action_information
        pending.append((event.assoc, info))
        return 0x0000, None

    def report(info: Dataset) -> tuple[int, Dataset]:
        """Commit every referenced instance except those whose UID ends in '.999'."""
        refs = info.ReferencedSOPSequence
        ok = [i for i in refs if not i.ReferencedSOPInstanceUID.endswith(".999")]
        bad = [i for i in refs if i.ReferencedSOPInstanceUID.endswith(".999")]
        ds = Dataset()
        ds.TransactionUID = info.TransactionUID
        ds.ReferencedSOPSequence = ok
        if bad:
            for item in bad:
                item.FailureReason = 0x0112
            ds.FailedSOPSequence = bad
        return (2 if bad else 1), ds

    def send_report(assoc: Any, info: Dataset) -> None:
        event_type, ds = report(info)
        if args.callback_port:
            # Separate association: the SCP asks for the SCP role of the push model.
            cb = AE(ae_title=args.aet)
            cb.add_requested_context(StorageCommitmentPushModel, TRANSFER)
            role = build_role(StorageCommitmentPushModel, scu_role=False, scp_role=True)
            time.sleep(args.callback_delay)
            back = cb.associate(args.callback_host, args.callback_port,
                                ae_title=args.callback_aet, ext_neg=[role])
            if back.is_established:
                back.send_n_event_report(ds, event_type, StorageCommitmentPushModel,
                                         COMMIT_INSTANCE)
                back.release()
        else:
            assoc.send_n_event_report(ds, event_type, StorageCommitmentPushModel,
                                      COMMIT_INSTANCE)

    armed: list[tuple[Any, Dataset]] = []

    def on_dimse_sent(event: evt.Event) -> None:
        # EVT_DIMSE_SENT fires before the message is encoded and queued; arm for its PDU.
        if type(event.message).__name__ == "N_ACTION_RSP" and pending:
            armed.append(pending.pop(0))

    def on_pdu_sent(event: evt.Event) -> None:
        # EVT_PDU_SENT fires after the socket send: the N-ACTION-RSP (one command-only P-DATA
        # PDU) is on the wire, so the N-EVENT-REPORT can follow it.
        if armed and type(event.pdu).__name__ == "P_DATA_TF":
            assoc, info = armed.pop(0)
            threading.Thread(target=send_report, args=(assoc, info), daemon=True).start()

    ae = AE(ae_title=args.aet)
    for sop in (ModalityPerformedProcedureStep, ModalityPerformedProcedureStepRetrieve,
                Verification):
        ae.add_supported_context(sop, TRANSFER)
    ae.add_supported_context(StorageCommitmentPushModel, TRANSFER, scu_role=True, scp_role=True)
    handlers = [(evt.EVT_N_CREATE, on_create), (evt.EVT_N_SET, on_set),
                (evt.EVT_N_GET, on_get), (evt.EVT_N_ACTION, on_action),
                (evt.EVT_DIMSE_SENT, on_dimse_sent),
                (evt.EVT_PDU_SENT, on_pdu_sent)]
    serve(ae, args.bind, args.port, handlers)


# -- clients ---------------------------------------------------------------------------------


def mpps(args: argparse.Namespace) -> None:
    """N-CREATE an MPPS IN PROGRESS, N-SET it to COMPLETED."""
    uid = args.instance
    ds = synth.mpps_in_progress(
        patient=("SYNTHETIC^DAVE", "DSN0004", "19550303", "M"),
        scheduled={"StudyInstanceUID": UID_ROOT + "1", "AccessionNumber": "MPPSACC1",
                   "RequestedProcedureID": "RP0001", "ScheduledProcedureStepID": "SPS0001",
                   "ScheduledProcedureStepDescription": "SYNTHETIC CT CHEST"},
        pps_id="PPS0001", station=args.aet, start_time="091500",
        description="SYNTHETIC CT CHEST")

    assoc = associate(args, [ModalityPerformedProcedureStep])
    st_create, _ = assoc.send_n_create(ds, ModalityPerformedProcedureStep, uid)

    mod = synth.mpps_final("COMPLETED", "093000", [synth.mpps_series(
        UID_ROOT + "2", [UID_ROOT + "3"], description="SYNTHETIC AXIAL", protocol="CHEST",
        retrieve_aet="")])
    st_set, _ = assoc.send_n_set(mod, ModalityPerformedProcedureStep, uid)
    assoc.release()
    emit({"established": True, "N-CREATE": status(st_create), "N-SET": status(st_set),
           "instance": uid})


def nget(args: argparse.Namespace) -> None:
    """N-GET a known MPPS instance, then one that does not exist (0x0112 expected)."""
    tags = [0x00400252, 0x00400253, 0x00400241, 0x00100010, 0x00100020]
    assoc = associate(args, [ModalityPerformedProcedureStepRetrieve])
    statuses = []
    for uid in (args.instance, args.missing):
        st, _ = assoc.send_n_get(tags, ModalityPerformedProcedureStepRetrieve, uid)
        statuses.append(status(st))
    assoc.release()
    emit({"established": True, "N-GET": statuses})


def commit(args: argparse.Namespace) -> None:
    """N-ACTION a storage commitment request and wait for its N-EVENT-REPORT."""
    got = threading.Event()
    reports: list[int] = []

    def on_report(event: evt.Event) -> tuple[int, None]:
        reports.append(event.event_type)
        got.set()
        return 0x0000, None

    info = Dataset()
    info.TransactionUID = UID_ROOT + f"10.{args.count}"
    info.ReferencedSOPSequence = []
    for n in range(args.count):
        item = Dataset()
        item.ReferencedSOPClassUID = CTImageStorage
        last_fails = args.fail_last and n == args.count - 1
        item.ReferencedSOPInstanceUID = UID_ROOT + f"20.{n}" + (".999" if last_fails else "")
        info.ReferencedSOPSequence.append(item)

    server = None
    if args.listen:
        lae = AE(ae_title=args.aet)
        lae.add_supported_context(StorageCommitmentPushModel, TRANSFER, scu_role=True,
                                  scp_role=True)
        server = lae.start_server((args.bind, args.listen), block=False,
                                  evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    assoc = associate(args, [StorageCommitmentPushModel],
                       evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    st, _ = assoc.send_n_action(info, 1, StorageCommitmentPushModel, COMMIT_INSTANCE)
    if args.listen:
        assoc.release()  # the report comes on a new association, opened by the SCP
        got.wait(args.timeout)
        time.sleep(0.5)  # let the SCP release its association before we stop listening
    else:
        got.wait(args.timeout)
        assoc.release()
    if server is not None:
        server.shutdown()
    emit({"established": True, "N-ACTION": status(st), "N-EVENT-REPORT": reports})


def store_server(args: argparse.Namespace) -> None:
    """Verification + CT Image Storage SCP that accepts and discards the data."""
    ae = AE(ae_title=args.aet)
    ae.add_supported_context(Verification, TRANSFER)
    ae.add_supported_context(CTImageStorage, TRANSFER)
    serve(ae, args.bind, args.port, [(evt.EVT_C_STORE, lambda e: 0x0000)])


def store(args: argparse.Namespace) -> None:
    """C-ECHO, then C-STORE each file, on one association."""
    datasets = [dcmread(p) for p in args.files]
    ae = AE(ae_title=args.aet)
    ae.add_requested_context(Verification, TRANSFER)
    ae.add_requested_context(CTImageStorage, TRANSFER)
    assoc = ae.associate(args.host, args.port, ae_title=args.called, max_pdu=args.max_pdu)
    if not assoc.is_established:
        emit({"established": False})
        sys.exit(2)
    echo = status(assoc.send_c_echo())
    statuses = [status(assoc.send_c_store(ds)) for ds in datasets]
    assoc.release()
    emit({"established": True, "C-ECHO": echo, "C-STORE": statuses})


def chatty(args: argparse.Namespace) -> None:
    """Many short associations: C-ECHO + ``--finds`` study-level C-FINDs each."""
    ae = AE(ae_title=args.aet)
    ae.add_requested_context(Verification, TRANSFER)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind, TRANSFER)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = "*"
    query.StudyInstanceUID = ""
    query.StudyDate = ""
    query.AccessionNumber = ""
    counts: Counter[str] = Counter()
    for _ in range(args.associations):
        assoc = ae.associate(args.host, args.port, ae_title=args.called)
        if not assoc.is_established:
            counts["not_established"] += 1
            continue
        counts["associations"] += 1
        counts["C-ECHO " + status(assoc.send_c_echo())] += 1
        for _ in range(args.finds):
            counts["C-FIND"] += 1
            for st, _ident in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
                counts["C-FIND-RSP " + status(st)] += 1
        assoc.release()
    emit(dict(counts))


def main(argv: list[str] | None = None) -> None:
    roles = Roles(__doc__)
    roles.parser.add_argument("--nodelay", action="store_true",
                              help="disable Nagle on client sockets")
    server, client = roles.server, roles.client

    sp = server("nserver", nserver)
    sp.add_argument("--preload", help="SOP Instance UID of a COMPLETED MPPS to serve N-GETs")
    sp.add_argument("--callback-host")
    sp.add_argument("--callback-port", type=int)
    sp.add_argument("--callback-aet", default="PYSCU")
    sp.add_argument("--callback-delay", type=float, default=0.5)
    server("store-server", store_server)

    sp = client("mpps", mpps)
    sp.add_argument("--instance", required=True)
    sp = client("nget", nget)
    sp.add_argument("--instance", required=True)
    sp.add_argument("--missing", required=True, help="an instance UID the server lacks")
    sp = client("commit", commit)
    sp.add_argument("--count", type=int, default=3)
    sp.add_argument("--fail-last", action="store_true")
    sp.add_argument("--listen", type=int, help="port to receive the N-EVENT-REPORT on")
    sp.add_argument("--bind", default="")
    sp.add_argument("--timeout", type=float, default=15.0)
    sp = client("store", store)
    sp.add_argument("--max-pdu", type=int, default=16384)
    sp.add_argument("files", nargs="+", type=Path)
    sp = client("chatty", chatty)
    sp.add_argument("--associations", type=int, default=10)
    sp.add_argument("--finds", type=int, default=2)

    args = roles.parse(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.nodelay:
        enable_nodelay()
    args.func(args)


if __name__ == "__main__":
    main()
