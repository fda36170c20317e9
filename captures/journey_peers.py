"""pynetdicom peers for the study-journey captures (captures/journey/), where dcmtk has no tool.

Run inside a namespace as ``python3 captures/journey_peers.py ROLE [options]``. Servers run
until SIGTERM; clients print one JSON line (what they sent, the statuses they got). Roles:

* ``archive``: CT storage + Storage Commitment Push (report on the same association, failing
  instances it never received with 0x0112) + Instance Availability Notification sender (after
  each commitment report, an N-CREATE to the RIS listing what it holds, optionally wrong).
* ``ian-receiver``: the RIS's IAN SCP.
* ``mpps``: one N-CREATE (IN PROGRESS) or one N-SET, from a JSON description of the step.
* ``commit``: N-ACTION for a list of instances, waits for the N-EVENT-REPORT.
* ``print-scp``/``print-scu``: Basic Grayscale Print Management with scripted faults.
* ``ups-scp``/``ups-scu``: Unified Procedure Step push, watch and pull, with illegal requests.

Synthetic patients only; every UID comes from the scenario (captures/journey_scenarios.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

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
from pydicom.dataset import Dataset
from pydicom.uid import (
    CTImageStorage,
    generate_uid,
)
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    BasicFilmBox,
    BasicFilmSession,
    BasicGrayscaleImageBox,
    BasicGrayscalePrintManagementMeta,
    InstanceAvailabilityNotification,
    Printer,
    PrinterInstance,
    PrintJob,
    StorageCommitmentPushModel,
    UnifiedProcedureStepEvent,
    UnifiedProcedureStepPull,
    UnifiedProcedureStepPush,
    UnifiedProcedureStepWatch,
    Verification,
)

UPS_GLOBAL = "1.2.840.10008.5.1.4.34.5"  # UPS Global Subscription SOP Instance (PS3.4 CC.3.1)


def _after_pdu(on_sent: list[Any]) -> list[Any]:
    """Handlers that run queued callables once the next P-DATA PDU is on the wire (so an
    N-EVENT-REPORT follows the N-ACTION-RSP that announced it, as real archives do)."""
    armed: list[Any] = []

    def on_dimse_sent(event: evt.Event) -> None:
        if type(event.message).__name__.endswith("_RSP") and on_sent:
            armed.append(on_sent.pop(0))

    def on_pdu_sent(event: evt.Event) -> None:
        if armed and type(event.pdu).__name__ == "P_DATA_TF":
            threading.Thread(target=armed.pop(0), daemon=True).start()

    return [(evt.EVT_DIMSE_SENT, on_dimse_sent), (evt.EVT_PDU_SENT, on_pdu_sent)]


# -- the archive -----------------------------------------------------------------------------


def archive(args: argparse.Namespace) -> None:
    """Storage SCP + commitment + IAN sender (see module doc)."""
    held: dict[str, Dataset] = {}  # SOP Instance UID -> the header attributes it came with
    queue: list[Any] = []

    def on_store(event: evt.Event) -> int:
        ds = event.dataset
        keep = Dataset()
        for kw in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
                   "AccessionNumber", "PatientID", "ReferencedPerformedProcedureStepSequence",
                   "RequestAttributesSequence"):
            if kw in ds:
                setattr(keep, kw, ds[kw].value)
        held[str(ds.SOPInstanceUID)] = keep
        return 0x0000

    def send_ian(study: str) -> None:
        mine = [d for d in held.values() if str(d.get("StudyInstanceUID", "")) == study]
        if args.ian_drop:
            mine = mine[:max(0, len(mine) - args.ian_drop)]
        ds = Dataset()
        ds.StudyInstanceUID = study
        pps = []
        for d in mine[:1]:
            for item in d.get("ReferencedPerformedProcedureStepSequence", []):
                pps.append(item)
        ref_pps = Dataset()
        if pps:
            ref_pps = pps[0]
        ds.ReferencedPerformedProcedureStepSequence = [ref_pps] if pps else []
        req = Dataset()
        req.StudyInstanceUID = study
        req.AccessionNumber = str(mine[0].get("AccessionNumber", "")) if mine else ""
        ra = (mine[0].get("RequestAttributesSequence") or [None])[0] if mine else None
        req.RequestedProcedureID = str(ra.get("RequestedProcedureID", "")) if ra else ""
        ds.ReferencedRequestSequence = [req]
        series: dict[str, list[Dataset]] = {}
        for d in mine:
            item = Dataset()
            item.ReferencedSOPClassUID = d.SOPClassUID
            item.ReferencedSOPInstanceUID = d.SOPInstanceUID
            item.InstanceAvailability = "ONLINE"
            item.RetrieveAETitle = args.aet
            series.setdefault(str(d.SeriesInstanceUID), []).append(item)
        for n, extra in enumerate(args.ian_extra or []):
            item = Dataset()
            item.ReferencedSOPClassUID = CTImageStorage
            item.ReferencedSOPInstanceUID = extra
            item.InstanceAvailability = "ONLINE"
            item.RetrieveAETitle = args.aet
            key = next(iter(series), generate_uid(entropy_srcs=[study, "series", str(n)]))
            series.setdefault(key, []).append(item)
        ds.ReferencedSeriesSequence = []
        for uid, items in series.items():
            s = Dataset()
            s.SeriesInstanceUID = uid
            s.ReferencedSOPSequence = items
            ds.ReferencedSeriesSequence.append(s)
        time.sleep(0.3)
        ae = AE(ae_title=args.aet)
        ae.add_requested_context(InstanceAvailabilityNotification, TRANSFER)
        a = ae.associate(args.ian_host, args.ian_port, ae_title=args.ian_aet)
        if a.is_established:
            a.send_n_create(ds, InstanceAvailabilityNotification, generate_uid(
                entropy_srcs=["journey-ian", study, str(len(mine))]))
            a.release()
            print("IAN sent", flush=True)

    def on_action(event: evt.Event) -> tuple[int, None]:
        info = event.action_information
        assoc = event.assoc

        def report() -> None:
            ok, bad = [], []
            for item in info.ReferencedSOPSequence:
                (ok if str(item.ReferencedSOPInstanceUID) in held else bad).append(item)
            ds = Dataset()
            ds.TransactionUID = info.TransactionUID
            ds.ReferencedSOPSequence = ok
            if bad:
                for item in bad:
                    item.FailureReason = 0x0112  # No such object instance
                ds.FailedSOPSequence = bad
            assoc.send_n_event_report(ds, 2 if bad else 1, StorageCommitmentPushModel,
                                      COMMIT_INSTANCE)
            if args.ian_port and ok:
                study = held[str(ok[0].ReferencedSOPInstanceUID)].StudyInstanceUID
                threading.Thread(target=send_ian, args=(str(study),), daemon=True).start()

        queue.append(report)
        return 0x0000, None

    ae = AE(ae_title=args.aet)
    ae.add_supported_context(CTImageStorage, TRANSFER)
    ae.add_supported_context(Verification, TRANSFER)
    ae.add_supported_context(StorageCommitmentPushModel, TRANSFER, scu_role=True, scp_role=True)
    serve(ae, args.bind, args.port,
           [(evt.EVT_C_STORE, on_store), (evt.EVT_N_ACTION, on_action), *_after_pdu(queue)])


def ian_receiver(args: argparse.Namespace) -> None:
    def on_create(event: evt.Event) -> tuple[int, Dataset]:
        return 0x0000, event.attribute_list

    ae = AE(ae_title=args.aet)
    ae.add_supported_context(InstanceAvailabilityNotification, TRANSFER)
    serve(ae, args.bind, args.port, [(evt.EVT_N_CREATE, on_create)])


# -- the modality's N-services -----------------------------------------------------------------


def _from_json(obj: dict[str, Any]) -> Dataset:
    return Dataset.from_json(obj)


def mpps(args: argparse.Namespace) -> None:
    """One MPPS N-CREATE or N-SET; the data set is pydicom JSON in ``--dataset``."""
    from pynetdicom.sop_class import ModalityPerformedProcedureStep

    ds = _from_json(json.loads(Path(args.dataset).read_text()))
    assoc = associate(args, [ModalityPerformedProcedureStep])
    if args.op == "create":
        st, _ = assoc.send_n_create(ds, ModalityPerformedProcedureStep, args.instance)
    else:
        st, _ = assoc.send_n_set(ds, ModalityPerformedProcedureStep, args.instance)
    assoc.release()
    emit({"established": True, args.op: status(st)})


def commit(args: argparse.Namespace) -> None:
    """N-ACTION for ``--instances`` (SOP Instance UIDs), wait for the N-EVENT-REPORT."""
    got = threading.Event()
    reports: list[dict[str, Any]] = []

    def on_report(event: evt.Event) -> tuple[int, None]:
        info = event.event_information
        reports.append({"event_type": event.event_type,
                        "committed": len(info.get("ReferencedSOPSequence", [])),
                        "failed": len(info.get("FailedSOPSequence", []))})
        got.set()
        return 0x0000, None

    info = Dataset()
    info.TransactionUID = args.transaction
    info.ReferencedSOPSequence = []
    for uid in args.instances:
        item = Dataset()
        item.ReferencedSOPClassUID = CTImageStorage
        item.ReferencedSOPInstanceUID = uid
        info.ReferencedSOPSequence.append(item)
    assoc = associate(args, [StorageCommitmentPushModel],
                       evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    st, _ = assoc.send_n_action(info, 1, StorageCommitmentPushModel, COMMIT_INSTANCE)
    got.wait(args.timeout)
    assoc.release()
    emit({"established": True, "N-ACTION": status(st), "reports": reports})


# -- print -------------------------------------------------------------------------------------


def print_scp(args: argparse.Namespace) -> None:
    """A Basic Grayscale Print SCP; ``--status`` makes it report the printer's state with an
    N-EVENT-REPORT after each N-ACTION print; ``--status-new-association`` sends that report
    on a new association it opens back to the SCU, without asking for the SCP role."""
    boxes: dict[str, list[str]] = {}
    queue: list[Any] = []
    counter = [0]

    def uid() -> str:
        counter[0] += 1
        return f"1.2.826.0.1.3680043.8.498.778.{counter[0]}"

    def on_create(event: evt.Event) -> tuple[int, Dataset | None]:
        req = event.request
        ds = event.attribute_list or Dataset()
        cls = req.AffectedSOPClassUID
        inst = req.AffectedSOPInstanceUID or uid()
        out = Dataset()
        out.SOPClassUID = cls
        out.SOPInstanceUID = inst
        if cls == BasicFilmBox:
            fmt = str(ds.get("ImageDisplayFormat", "STANDARD\\1,1"))
            cols, rows = (int(x) for x in fmt.split("\\")[-1].split(","))
            refs = []
            for _ in range(cols * rows):
                item = Dataset()
                item.ReferencedSOPClassUID = BasicGrayscaleImageBox
                item.ReferencedSOPInstanceUID = uid()
                refs.append(item)
            boxes[inst] = [str(r.ReferencedSOPInstanceUID) for r in refs]
            out.ImageDisplayFormat = fmt
            out.ReferencedImageBoxSequence = refs
        return 0x0000, out

    def on_set(event: evt.Event) -> tuple[int, Dataset | None]:
        return 0x0000, event.modification_list

    def on_delete(event: evt.Event) -> int:
        return 0x0000

    def on_get(event: evt.Event) -> tuple[int, Dataset]:
        ds = Dataset()
        ds.PrinterStatus = args.status or "NORMAL"
        ds.PrinterStatusInfo = args.status_info or "NORMAL"
        ds.PrinterName = "SYNTHETIC PRINTER"
        return 0x0000, ds

    def report(assoc: Any) -> None:
        ds = Dataset()
        ds.PrinterName = "SYNTHETIC PRINTER"
        ds.PrinterStatusInfo = args.status_info
        event_type = {"NORMAL": 1, "WARNING": 2, "FAILURE": 3}[args.status]
        if args.status_new_association:
            ae = AE(ae_title=args.aet)
            ae.add_requested_context(BasicGrayscalePrintManagementMeta, TRANSFER)
            back = ae.associate(args.callback_host, args.callback_port,
                                ae_title=args.callback_aet)
            if back.is_established:
                back.send_n_event_report(ds, event_type, Printer, PrinterInstance,
                                         meta_uid=BasicGrayscalePrintManagementMeta)
                back.release()
        else:
            assoc.send_n_event_report(ds, event_type, Printer, PrinterInstance,
                                      meta_uid=BasicGrayscalePrintManagementMeta)

    def job_report(assoc: Any, job: str) -> None:
        ds = Dataset()
        ds.ExecutionStatus = "FAILURE"
        ds.ExecutionStatusInfo = args.job_failure
        ds.PrintPriority = "MED"
        assoc.send_n_event_report(ds, 4, PrintJob, job,
                                  meta_uid=BasicGrayscalePrintManagementMeta)

    def on_action(event: evt.Event) -> tuple[int, Dataset | None]:
        job = uid()
        if args.status:
            queue.append(lambda a=event.assoc: report(a))
        elif args.job_failure:
            queue.append(lambda a=event.assoc, j=job: job_report(a, j))
        out = Dataset()
        ref = Dataset()
        ref.ReferencedSOPClassUID = PrintJob
        ref.ReferencedSOPInstanceUID = job
        out.ReferencedPrintJobSequence = [ref]
        return 0x0000, out

    ae = AE(ae_title=args.aet)
    ae.add_supported_context(BasicGrayscalePrintManagementMeta, TRANSFER)
    ae.add_supported_context(Verification, TRANSFER)
    serve(ae, args.bind, args.port,
           [(evt.EVT_N_CREATE, on_create), (evt.EVT_N_SET, on_set),
            (evt.EVT_N_DELETE, on_delete), (evt.EVT_N_GET, on_get),
            (evt.EVT_N_ACTION, on_action), *_after_pdu(queue)])


def print_scu(args: argparse.Namespace) -> None:
    """Print films: ``--films`` is a list of ``ok``, ``empty-box`` (one image box never set),
    ``never-printed`` (film box created, never printed nor deleted); ``--listen`` accepts the
    printer's reports on a listener of its own."""
    got: list[int] = []

    def on_report(event: evt.Event) -> tuple[int, None]:
        got.append(event.event_type)
        return 0x0000, None

    server = None
    if args.listen:
        lae = AE(ae_title=args.aet)
        lae.add_supported_context(BasicGrayscalePrintManagementMeta, TRANSFER)
        server = lae.start_server(("", args.listen), block=False,
                                  evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    assoc = associate(args, [BasicGrayscalePrintManagementMeta],
                       evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    meta = BasicGrayscalePrintManagementMeta
    out: dict[str, Any] = {"established": True, "films": []}
    if args.get_printer:
        st, _ = assoc.send_n_get([0x21100010, 0x21100020], Printer, PrinterInstance,
                                 meta_uid=meta)
        out["N-GET"] = status(st)
    session = Dataset()
    session.NumberOfCopies = "1"
    session.PrintPriority = "MED"
    session.MediumType = "BLUE FILM"
    session.FilmDestination = "MAGAZINE"
    session_uid = generate_uid(entropy_srcs=["journey-print", args.aet, "session"])
    st, _ = assoc.send_n_create(session, BasicFilmSession, session_uid, meta_uid=meta)
    out["session"] = status(st)
    for n, what in enumerate(args.films):
        film = Dataset()
        film.ImageDisplayFormat = "STANDARD\\1,2"
        film.FilmOrientation = "PORTRAIT"
        film.FilmSizeID = "14INX17IN"
        ref = Dataset()
        ref.ReferencedSOPClassUID = BasicFilmSession
        ref.ReferencedSOPInstanceUID = session_uid
        film.ReferencedFilmSessionSequence = [ref]
        film_uid = generate_uid(entropy_srcs=["journey-print", args.aet, "film", str(n)])
        st, rsp = assoc.send_n_create(film, BasicFilmBox, film_uid, meta_uid=meta)
        rec = {"what": what, "film_box": film_uid, "N-CREATE": status(st), "boxes": []}
        refs = list(rsp.ReferencedImageBoxSequence) if rsp is not None else []
        for k, item in enumerate(refs):
            if what == "empty-box" and k == len(refs) - 1:
                continue  # this image box is never given an image
            box = Dataset()
            box.ImageBoxPosition = k + 1
            pix = Dataset()
            pix.SamplesPerPixel = 1
            pix.PhotometricInterpretation = "MONOCHROME2"
            pix.Rows = pix.Columns = 16
            pix.BitsAllocated = 8
            pix.BitsStored = 8
            pix.HighBit = 7
            pix.PixelRepresentation = 0
            pix.PixelData = bytes(range(256))
            box.BasicGrayscaleImageSequence = [pix]
            st, _ = assoc.send_n_set(box, BasicGrayscaleImageBox,
                                     item.ReferencedSOPInstanceUID, meta_uid=meta)
            rec["boxes"].append(status(st))
        if what != "never-printed":
            st, _ = assoc.send_n_action(None, 1, BasicFilmBox, film_uid, meta_uid=meta)
            rec["N-ACTION"] = status(st)
            time.sleep(0.3)
            st = assoc.send_n_delete(BasicFilmBox, film_uid, meta_uid=meta)
            rec["N-DELETE"] = status(st)
        out["films"].append(rec)
    if args.delete_session:
        st = assoc.send_n_delete(BasicFilmSession, session_uid, meta_uid=meta)
        out["session_delete"] = status(st)
    time.sleep(args.linger)
    assoc.release()
    if server is not None:
        time.sleep(0.3)
        server.shutdown()
    out["reports"] = got
    emit(out)


# -- unified procedure step --------------------------------------------------------------------


UPS_STATES = ("SCHEDULED", "IN PROGRESS", "COMPLETED", "CANCELED")


def ups_scp(args: argparse.Namespace) -> None:
    """A UPS SCP following PS3.4 CC.1.1 (Table CC.1.1-2) for state changes, with global
    subscriptions: every subscriber association open at the time gets the events."""
    items: dict[str, dict[str, Any]] = {}
    subscribers: list[Any] = []
    queue: list[Any] = []

    lock = threading.Lock()
    ids = [0]

    def notify(uid: str, event_type: int, state: str) -> None:
        ds = Dataset()
        ds.ProcedureStepState = state
        ds.InputReadinessState = "READY"
        with lock:  # one report at a time, each with its own Message ID (PS3.7 9.1.1)
            for a in list(subscribers):
                forgot = (a.requestor.ae_title in args.forget_subscriber
                          and state != "SCHEDULED")
                if a.is_established and not forgot:
                    ids[0] += 1
                    a.send_n_event_report(ds, event_type, UnifiedProcedureStepPush, uid,
                                          msg_id=ids[0])

    def on_create(event: evt.Event) -> tuple[int, Dataset | None]:
        uid = event.request.AffectedSOPInstanceUID
        ds = event.attribute_list
        if ds.get("ProcedureStepState") != "SCHEDULED":
            return 0xC309, None  # not SCHEDULED: refused
        items[uid] = {"state": "SCHEDULED", "tuid": None}
        queue.append(lambda: notify(uid, 1, "SCHEDULED"))
        return 0x0000, None

    def on_action(event: evt.Event) -> tuple[int, Dataset | None]:
        req = event.request
        uid = req.RequestedSOPInstanceUID
        info = event.action_information
        if req.ActionTypeID == 3:  # subscribe
            subscribers.append(event.assoc)
            return 0x0000, None
        if req.ActionTypeID == 4:  # unsubscribe
            if event.assoc in subscribers:
                subscribers.remove(event.assoc)
            return 0x0000, None
        if req.ActionTypeID == 2:  # request cancel
            it = items.get(uid)
            if it is None:
                return 0xC307, None
            if it["state"] == "SCHEDULED":
                it["state"] = "CANCELED"
                queue.append(lambda: notify(uid, 1, "CANCELED"))
                return 0x0000, None
            return 0xC312, None  # IN PROGRESS: the performer chooses not to cancel
        it = items.get(uid)
        if it is None:
            return 0xC307, None  # Specified SOP Instance UID does not exist
        want = str(info.get("ProcedureStepState", ""))
        tuid = str(info.get("TransactionUID", ""))
        state = it["state"]
        if want == "IN PROGRESS":
            if state != "SCHEDULED":
                return 0xC302, None  # not SCHEDULED any more (CC.2.4.4: already claimed)
            it["state"], it["tuid"] = "IN PROGRESS", tuid
        elif want in ("COMPLETED", "CANCELED"):
            if state == "SCHEDULED":
                return 0xC310, None  # not IN PROGRESS
            if state != "IN PROGRESS":
                return 0xC300, None
            if tuid != it["tuid"]:
                return 0xC301, None  # wrong Transaction UID
            it["state"] = want
        else:
            return 0xC303, None
        queue.append(lambda: notify(uid, 1, it["state"]))
        out = Dataset()
        out.ProcedureStepState = it["state"]
        return 0x0000, None

    def on_set(event: evt.Event) -> tuple[int, Dataset | None]:
        it = items.get(event.request.RequestedSOPInstanceUID)
        if it is None:
            return 0xC307, None
        mod = event.modification_list
        if it["state"] != "IN PROGRESS" or str(mod.get("TransactionUID", "")) != it["tuid"]:
            return 0xC301, None
        return 0x0000, None

    def on_get(event: evt.Event) -> tuple[int, Dataset | None]:
        it = items.get(event.request.RequestedSOPInstanceUID)
        if it is None:
            return 0xC307, None
        ds = Dataset()
        ds.ProcedureStepState = it["state"]
        return 0x0000, ds

    def on_released(event: evt.Event) -> None:
        if event.assoc in subscribers:
            subscribers.remove(event.assoc)

    ae = AE(ae_title=args.aet)
    for sop in (UnifiedProcedureStepPush, UnifiedProcedureStepPull, UnifiedProcedureStepWatch,
                UnifiedProcedureStepEvent):
        ae.add_supported_context(sop, TRANSFER, scu_role=True, scp_role=True)
    serve(ae, args.bind, args.port,
           [(evt.EVT_N_CREATE, on_create), (evt.EVT_N_ACTION, on_action),
            (evt.EVT_N_SET, on_set), (evt.EVT_N_GET, on_get),
            (evt.EVT_RELEASED, on_released), *_after_pdu(queue)])


def _ups_item(uid_seed: str, patient: tuple[str, str]) -> Dataset:
    ds = Dataset()
    ds.ProcedureStepState = "SCHEDULED"
    ds.ScheduledProcedureStepPriority = "MEDIUM"
    ds.ProcedureStepLabel = "SYNTHETIC POSTPROCESSING"
    ds.WorklistLabel = "SYNTHETIC"
    ds.PatientName, ds.PatientID = patient
    ds.ScheduledProcedureStepStartDateTime = "20240115100000"
    ds.InputReadinessState = "READY"
    ds.ScheduledWorkitemCodeSequence = []
    ds.ScheduledStationNameCodeSequence = []
    ds.InputInformationSequence = []
    ds.TransactionUID = ""
    return ds


def ups_scu(args: argparse.Namespace) -> None:
    """Push a workitem, watch it from a second association, then pull and perform it.

    ``--script`` lists what the performer does: ``claim`` (N-ACTION IN PROGRESS),
    ``set`` (N-SET with the Transaction UID), ``complete`` (N-ACTION COMPLETED), and faults:
    ``complete-early`` (COMPLETED while SCHEDULED), ``wrong-tuid`` (COMPLETED with another
    Transaction UID), ``claim-again`` (IN PROGRESS twice), ``cancel-late`` (request cancel
    while IN PROGRESS).
    """
    events: list[str] = []

    def on_event(event: evt.Event) -> tuple[int, None]:
        events.append(str(event.event_information.get("ProcedureStepState", "")))
        return 0x0000, None

    watch = associate(args, [UnifiedProcedureStepWatch, UnifiedProcedureStepEvent],
                       evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_event)])
    others: list[Any] = []  # (AE title, association, events it received)
    for aet in args.watcher:  # each subscribes globally from an association of its own
        got: list[str] = []

        def on_other(event: evt.Event, got: list[str] = got) -> tuple[int, None]:
            got.append(str(event.event_information.get("ProcedureStepState", "")))
            return 0x0000, None

        a = associate(argparse.Namespace(**{**vars(args), "aet": aet}),
                       [UnifiedProcedureStepWatch, UnifiedProcedureStepEvent],
                       evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_other)])
        sub = Dataset()
        sub.DeletionLock = "FALSE"
        st, _ = a.send_n_action(sub, 3, UnifiedProcedureStepWatch, UPS_GLOBAL)
        others.append((aet, a, got, status(st)))
    sub = Dataset()
    sub.DeletionLock = "FALSE"
    st, _ = watch.send_n_action(sub, 3, UnifiedProcedureStepWatch, UPS_GLOBAL)
    out: dict[str, Any] = {"established": True, "subscribe": status(st), "steps": []}
    push = associate(args, [UnifiedProcedureStepPush, UnifiedProcedureStepPull])
    uid = generate_uid(entropy_srcs=["journey-ups", args.aet, args.seed])
    st, _ = push.send_n_create(_ups_item(args.seed, ("SYNTHETIC^GRACE", "DSN0007")),
                               UnifiedProcedureStepPush, uid)
    out["create"] = status(st)
    item_watch = None
    item_events: list[str] = []
    if args.item_watcher:  # an AE of its own subscribing to this workitem only

        def on_item(event: evt.Event) -> tuple[int, None]:
            item_events.append(str(event.event_information.get("ProcedureStepState", "")))
            return 0x0000, None

        item_watch = associate(argparse.Namespace(**{**vars(args), "aet": args.item_watcher}),
                               [UnifiedProcedureStepWatch, UnifiedProcedureStepEvent],
                               evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_item)])
        sub = Dataset()
        sub.DeletionLock = "FALSE"
        st, _ = item_watch.send_n_action(sub, 3, UnifiedProcedureStepWatch, uid)
        out["item_subscribe"] = status(st)
    tuid = generate_uid(entropy_srcs=["journey-ups", args.aet, args.seed, "transaction"])
    for step in args.script:
        ds = Dataset()
        if step == "unsubscribe-item" and item_watch is not None:
            st, _ = item_watch.send_n_action(None, 4, UnifiedProcedureStepWatch, uid)
            out["steps"].append([step, status(st)])
            time.sleep(0.1)
            continue
        if step in ("claim", "claim-again"):
            ds.ProcedureStepState = "IN PROGRESS"
            ds.TransactionUID = tuid
            st, _ = push.send_n_action(ds, 1, UnifiedProcedureStepPull, uid)
        elif step == "set":
            ds.TransactionUID = tuid
            ds.ProcedureStepLabel = "SYNTHETIC POSTPROCESSING (DONE)"
            st, _ = push.send_n_set(ds, UnifiedProcedureStepPull, uid)
        elif step in ("complete", "complete-early", "wrong-tuid"):
            ds.ProcedureStepState = "COMPLETED"
            ds.TransactionUID = (tuid if step != "wrong-tuid" else
                                 generate_uid(entropy_srcs=["journey-ups", "other"]))
            st, _ = push.send_n_action(ds, 1, UnifiedProcedureStepPull, uid)
        elif step == "cancel-late":
            ds.ReasonForCancellation = "SYNTHETIC: NO LONGER NEEDED"
            st, _ = push.send_n_action(ds, 2, UnifiedProcedureStepPush, uid)
        else:
            raise SystemExit(f"unknown step {step}")
        out["steps"].append([step, status(st)])
        time.sleep(0.1)
    time.sleep(0.5)
    push.release()
    watch.release()
    for _aet, a, _got, _st in others:
        a.release()
    if item_watch is not None:
        item_watch.release()
        out["item_events"] = item_events
    out["events"] = events
    out["watchers"] = {aet: {"subscribe": st, "events": got} for aet, _a, got, st in others}
    out["instance"] = uid
    out["transaction"] = tuid
    emit(out)


def main(argv: list[str] | None = None) -> None:
    roles = Roles(__doc__)
    server, client = roles.server, roles.client

    sp = server("archive", archive)
    sp.add_argument("--ian-host")
    sp.add_argument("--ian-port", type=int)
    sp.add_argument("--ian-aet", default="RIS")
    sp.add_argument("--ian-drop", type=int, default=0)
    sp.add_argument("--ian-extra", nargs="*")
    server("ian-receiver", ian_receiver)
    sp = client("mpps", mpps)
    sp.add_argument("--op", choices=("create", "set"), required=True)
    sp.add_argument("--instance", required=True)
    sp.add_argument("--dataset", required=True)
    sp = client("commit", commit)
    sp.add_argument("--transaction", required=True)
    sp.add_argument("--instances", nargs="+", required=True)
    sp.add_argument("--timeout", type=float, default=10.0)
    sp = server("print-scp", print_scp)
    sp.add_argument("--status", choices=("NORMAL", "WARNING", "FAILURE"))
    sp.add_argument("--status-info", default="NORMAL")
    sp.add_argument("--status-new-association", action="store_true")
    sp.add_argument("--job-failure", help="report each print job FAILED, with this "
                                          "Execution Status Info")
    sp.add_argument("--callback-host")
    sp.add_argument("--callback-port", type=int)
    sp.add_argument("--callback-aet", default="PRINTSCU")
    sp = client("print-scu", print_scu)
    sp.add_argument("--films", nargs="+", default=["ok"])
    sp.add_argument("--get-printer", action="store_true")
    sp.add_argument("--delete-session", action="store_true")
    sp.add_argument("--listen", type=int)
    sp.add_argument("--linger", type=float, default=0.5)
    sp = server("ups-scp", ups_scp)
    sp.add_argument("--forget-subscriber", nargs="*", default=[], metavar="AET",
                    help="a fault: send this subscriber the SCHEDULED report only")
    sp = client("ups-scu", ups_scu)
    sp.add_argument("--watcher", nargs="*", default=[], metavar="AET",
                    help="more watchers, each an AE of its own subscribing globally")
    sp.add_argument("--item-watcher", metavar="AET",
                    help="a watcher subscribing to the pushed workitem only (script step "
                         "unsubscribe-item ends it)")
    sp.add_argument("--script", nargs="+", default=["claim", "set", "complete"])
    sp.add_argument("--seed", default="1")

    args = roles.parse(argv)
    logging.basicConfig(level=logging.WARNING)
    enable_nodelay()
    args.func(args)


if __name__ == "__main__":
    main()
