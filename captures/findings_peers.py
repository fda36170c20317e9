"""pynetdicom peers that misbehave on purpose, for the findings captures (captures/findings/).

Run inside a namespace as ``python3 captures/findings_peers.py ROLE [options]``. Servers run
until SIGTERM; clients print one JSON line with what they did. Roles:

* ``store-scp``: Storage (every storage SOP class) + Verification SCP whose C-STORE handler
  answers with a scripted list of statuses (``--statuses 0x0000,0xA700,...``), can sleep before
  one answer (``--sleep 6:1.5``), never answer at all (``--hang 30``), or stop reading from
  the socket for a while on the first P-DATA of a data set (``--stall 2`` with a small
  ``--rcvbuf``: the TCP receive window fills and drops to zero), or abort idle associations
  (``--network-timeout``).
* ``commit-silent``: Storage Commitment SCP that accepts every N-ACTION and never sends the
  N-EVENT-REPORT.
* ``echo-burst``: SCU sending several C-ECHO-RQs before reading any response, without an
  asynchronous operations window (PS3.7 D.3.3.3 says one outstanding request).
* ``idle``: SCU that associates, sends a C-ECHO, then does nothing for a while.
* ``mpps-open``: MPPS SCU that N-CREATEs two procedure steps and never completes them (one gets
  an N-SET that leaves it IN PROGRESS).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from pnd_common import TRANSFER, Roles, associate, emit, serve
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.dimse_primitives import C_ECHO
from pynetdicom.sop_class import (
    ModalityPerformedProcedureStep,
    StorageCommitmentPushModel,
    Verification,
)


def store_scp(args: argparse.Namespace) -> None:
    statuses = [int(x, 16) for x in args.statuses.split(",")] if args.statuses else []
    sleeps = {int(k): float(v) for k, v in (x.split(":") for x in args.sleep)}
    count = [0]
    stalled = [False]

    def on_store(event: evt.Event) -> int:
        n = count[0]
        count[0] += 1
        if args.hang:
            time.sleep(args.hang)
        time.sleep(sleeps.get(n + 1, 0.0))
        return statuses[n] if n < len(statuses) else 0x0000

    def on_data(event: evt.Event) -> None:
        # The reader thread decodes here: sleeping stops reading from the socket.
        if args.stall and not stalled[0] and event.data[:1] == b"\x04" and len(event.data) > 1000:
            stalled[0] = True
            time.sleep(args.stall)

    ae = AE(ae_title=args.aet)
    if args.network_timeout:
        ae.network_timeout = args.network_timeout  # idle this long: pynetdicom sends A-ABORT
    ae.add_supported_context(Verification, TRANSFER)
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, TRANSFER)
    serve(ae, args.bind, args.port,
           [(evt.EVT_C_STORE, on_store), (evt.EVT_DATA_RECV, on_data)], args.rcvbuf)


def commit_silent(args: argparse.Namespace) -> None:
    ae = AE(ae_title=args.aet)
    ae.add_supported_context(StorageCommitmentPushModel, TRANSFER)
    ae.add_supported_context(Verification, TRANSFER)
    serve(ae, args.bind, args.port, [(evt.EVT_N_ACTION, lambda e: (0x0000, None))])


def echo_burst(args: argparse.Namespace) -> None:
    assoc = associate(args, [Verification])
    ctx = assoc.accepted_contexts[0].context_id
    for mid in range(1, args.count + 1):
        req = C_ECHO()
        req.MessageID = mid
        req.AffectedSOPClassUID = Verification
        assoc.dimse.send_msg(req, ctx)
    statuses = []
    for _ in range(args.count):
        _ctx, rsp = assoc.dimse.get_msg(block=True)
        statuses.append(f"0x{rsp.Status:04X}" if rsp is not None else "none")
    assoc.release()
    emit({"established": True, "C-ECHO": statuses})


def idle(args: argparse.Namespace) -> None:
    assoc = associate(args, [Verification])
    first = assoc.send_c_echo()
    time.sleep(args.idle)
    alive = assoc.is_established
    if alive:
        assoc.release()
    emit({"established": True, "C-ECHO": f"0x{first.Status:04X}" if first else "none",
           "alive_after_idle": alive})


def _mpps(aet: str, uid_suffix: str) -> Dataset:
    ds = Dataset()
    ds.PatientName = "SYNTHETIC^FRANK"
    ds.PatientID = "DSN0006"
    ds.PerformedProcedureStepID = f"PPS{uid_suffix}"
    ds.PerformedStationAETitle = aet
    ds.PerformedProcedureStepStartDate = "20240115"
    ds.PerformedProcedureStepStartTime = "101500"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepDescription = "SYNTHETIC CT HEAD"
    ds.Modality = "CT"
    ds.ScheduledStepAttributesSequence = []
    ds.PerformedSeriesSequence = []
    return ds


def mpps_open(args: argparse.Namespace) -> None:
    assoc = associate(args, [ModalityPerformedProcedureStep])
    out: dict[str, Any] = {"established": True}
    st, _ = assoc.send_n_create(_mpps(args.aet, "A"), ModalityPerformedProcedureStep,
                                args.instance_a)
    out["N-CREATE-A"] = f"0x{st.Status:04X}"
    st, _ = assoc.send_n_create(_mpps(args.aet, "B"), ModalityPerformedProcedureStep,
                                args.instance_b)
    out["N-CREATE-B"] = f"0x{st.Status:04X}"
    mod = Dataset()
    mod.PerformedProcedureStepDescription = "SYNTHETIC CT HEAD AND NECK"  # still IN PROGRESS
    st, _ = assoc.send_n_set(mod, ModalityPerformedProcedureStep, args.instance_b)
    out["N-SET-B"] = f"0x{st.Status:04X}"
    assoc.release()
    emit(out)


def main(argv: list[str] | None = None) -> None:
    roles = Roles(__doc__)
    server, client = roles.server, roles.client

    sp = server("store-scp", store_scp)
    sp.add_argument("--statuses", default="", help="comma-separated hex statuses, in order")
    sp.add_argument("--sleep", action="append", default=[], metavar="N:SECONDS",
                    help="sleep before answering the N-th C-STORE (1-based)")
    sp.add_argument("--hang", type=float, default=0.0, help="sleep this long in every C-STORE")
    sp.add_argument("--stall", type=float, default=0.0,
                    help="stop reading for this long at the first large P-DATA")
    sp.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF of the listening socket")
    sp.add_argument("--network-timeout", type=float, default=0.0,
                    help="abort an association idle for this long (pynetdicom network_timeout)")
    server("commit-silent", commit_silent)
    sp = client("echo-burst", echo_burst)
    sp.add_argument("--count", type=int, default=3)
    sp = client("idle", idle)
    sp.add_argument("--idle", type=float, default=3.0)
    sp = client("mpps-open", mpps_open)
    sp.add_argument("--instance-a", required=True)
    sp.add_argument("--instance-b", required=True)

    args = roles.parse(argv)
    args.func(args)


if __name__ == "__main__":
    main()
