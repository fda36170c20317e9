"""The recorded scenarios: which real peers talk, with which options, and what we know.

Each scenario function prepares synthetic data, starts the server(s), runs the client(s) under
tcpdump and returns ground truth for the manifest, taken from what we told the peers to do and
checked against what their logs say they did.  The ground-truth format (one dict per
association, in the order the associations start) is described in ``captures/README.md``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import pcapfile, synth
from .netns import SCP, SCU
from .session import PeerError, Session

BIN = synth.DCMTK
DICOM_PORT = 11112
CALLBACK_PORT = 11113
ODD_PORT = 20202
OK = "0x0000"
PENDING = "0xFF00"
CANCEL = "0xFE00"
CT = "1.2.840.10008.5.1.4.1.1.2"
MPPS_CLASS = "1.2.840.10008.3.1.2.3.3"
MPPS_RETRIEVE_CLASS = "1.2.840.10008.3.1.2.3.4"
COMMIT_CLASS = "1.2.840.10008.1.20.1"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
VERIFICATION = "1.2.840.10008.1.1"

Truth = dict[str, Any]
ScenarioFunc = Callable[[Session, dict[str, Any]], Truth]


@dataclass(frozen=True)
class Scenario:
    """A named recording: default file name, what it exercises, defaults for its knobs."""

    name: str
    filename: str
    description: str
    func: ScenarioFunc
    defaults: dict[str, Any] = field(default_factory=dict)
    sample: bool = True  # recorded by --all into the committed corpus
    nodelay: bool = False  # TCP_NODELAY for dcmtk/pynetdicom peers (benchmark speed)


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, filename: str, description: str, *, sample: bool = True,
             nodelay: bool = False, **defaults: Any) -> Callable[[ScenarioFunc], ScenarioFunc]:
    """Register a scenario function under ``name``."""

    def deco(func: ScenarioFunc) -> ScenarioFunc:
        SCENARIOS[name] = Scenario(name, filename, description, func, defaults, sample, nodelay)
        return func

    return deco


# -- ground-truth helpers --------------------------------------------------------------------


def association(s: Session, calling: str, called: str, port: int, *, requestor: str = SCU,
                outcome: str = "released", operations: list[dict[str, Any]] | None = None,
                ipv6: bool = False, **extra: Any) -> Truth:
    """One association's ground truth (see README for the fields)."""
    ops = operations or []
    counts: dict[str, int] = {}
    for op in ops:
        counts[op["op"]] = counts.get(op["op"], 0) + 1
    return {**s.endpoint(requestor, ipv6), "server_port": port, "calling_ae": calling,
            "called_ae": called, "outcome": outcome, "operations": ops, "counts": counts,
            **extra}


def op(name: str, status: str = OK, *, invoker: str = "requestor", **extra: Any) -> dict[str, Any]:
    """One DIMSE operation (request + final response) of an association."""
    return {"op": name, "status": status, "invoker": invoker, **extra}


def expect_count(log: str, pattern: str, want: int, who: str) -> None:
    """Fail the recording if a peer's log does not show ``want`` matches of ``pattern``."""
    got = len(re.findall(pattern, log))
    if got != want:
        raise PeerError(f"{who}: expected {want} x {pattern!r} in its log, found {got}")


def storescp(s: Session, name: str, port: int, aet: str = "STORESCP", *opts: str) -> None:
    out = s.work / f"{name}-received"
    out.mkdir(exist_ok=True)
    s.server(name, [BIN / "storescp", "-v", "-aet", aet, "-od", out, *opts, port], port)


def pnd_json(log: str) -> dict[str, Any]:
    """The JSON summary line a pynetdicom client from pnd_peers printed last."""
    for line in reversed(log.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise PeerError("pynetdicom peer printed no summary:\n" + log[-2000:])


def pdu_types(pcap: Path, server_port: int, from_server: bool) -> list[int]:
    """PDU types sent in one direction on every connection to ``server_port``, in order."""
    segs = list(pcapfile.segments(pcap))
    out: list[int] = []
    for syn in (g for g in segs if g.syn and not g.flags & 0x10 and g.dport == server_port):
        client, server = (syn.src, syn.sport), (syn.dst, syn.dport)
        data, _ = pcapfile.stream(segs, *((server, client) if from_server else (client, server)))
        out += [u.type for u in pcapfile.pdus(data)]
    return out


def store_ops(images: list[synth.Image], ts: str | None = None) -> list[dict[str, Any]]:
    return [op("C-STORE", transfer_syntax=ts or i.transfer_syntax, sop_class=i.sop_class,
               sop_instance=i.sop_instance) for i in images]


# -- 1. C-ECHO ---------------------------------------------------------------------------------


@scenario("echo", "echo.pcap", "dcmtk echoscu -> storescp: C-ECHO on the well-known port 104",
          port=104, echoes=1)
def echo(s: Session, p: dict[str, Any]) -> Truth:
    port, n = p["port"], p["echoes"]
    storescp(s, "storescp", port)
    with s.capture():
        log = s.client("echoscu", [BIN / "echoscu", "-v", "-aet", "ECHOSCU", "-aec", "STORESCP",
                                   "--repeat", n, s.scp_ip, port])
    expect_count(log, r"Received Echo Response \(Success\)", n, "echoscu")
    return {"server_ports": [port], "associations": [
        association(s, "ECHOSCU", "STORESCP", port, operations=[op("C-ECHO")] * n,
                    max_pdu={"requestor": 16384, "acceptor": 16384})]}


# -- 2. transfer syntaxes ------------------------------------------------------------------------

_TS_ORDER = [synth.IMPLICIT_LE, synth.EXPLICIT_LE, synth.EXPLICIT_BE, synth.DEFLATED_LE,
             synth.JPEG_LOSSLESS_SV1, synth.RLE_LOSSLESS]
# Proposed one per presentation context; storescp +xa refuses Process 14 (result 4), which
# gives a refused presentation context in the A-ASSOCIATE-AC as well.
_TS_PROPOSED = [synth.IMPLICIT_LE, synth.EXPLICIT_LE, synth.EXPLICIT_BE, synth.DEFLATED_LE,
                synth.JPEG_LOSSLESS_SV1, synth.JPEG_LOSSLESS_P14, synth.RLE_LOSSLESS]


def storescu_config(path: Path, sop_class: str, syntaxes: list[str]) -> Path:
    """A storescu -xf profile proposing each transfer syntax in its own presentation context,
    so that storescu sends every file in its own syntax instead of converting it."""
    lines = ["[[TransferSyntaxes]]"]
    for n, ts in enumerate(syntaxes, 1):
        lines += [f"[TS{n}]", f"TransferSyntax1 = {ts}"]
    lines += ["", "[[PresentationContexts]]", "[Contexts]"]
    lines += [f"PresentationContext{n} = {sop_class}\\TS{n}" for n in range(1, len(syntaxes) + 1)]
    lines += ["", "[[Profiles]]", "[Separate]", "PresentationContexts = Contexts", ""]
    path.write_text("\n".join(lines))
    return path


@scenario("store-transfer-syntaxes", "store-transfer-syntaxes.pcap",
          "storescu -> storescp, one association, one CT image in each of implicit LE, explicit "
          "LE, explicit BE, deflated LE, JPEG lossless SV1 and RLE (each its own presentation "
          "context); a proposed JPEG Process 14 context is refused", rows=64, cols=64)
def store_transfer_syntaxes(s: Session, p: dict[str, Any]) -> Truth:
    src = synth.ct_series(s.work / "src", key="ts", count=len(_TS_ORDER), rows=p["rows"],
                          cols=p["cols"], patient=0)
    images = [synth.convert(img, ts, s.work / "ts" / f"{n}.dcm")
              for n, (img, ts) in enumerate(zip(src, _TS_ORDER, strict=True))]
    cfg = storescu_config(s.work / "storescu.cfg", CT, _TS_PROPOSED)
    storescp(s, "storescp", DICOM_PORT, "STORESCP", "+xa")
    with s.capture():
        log = s.client("storescu", [BIN / "storescu", "-v", "-aet", "STORESCU", "-aec",
                                    "STORESCP", "-xf", cfg, "Separate", s.scp_ip, DICOM_PORT,
                                    *[i.path for i in images]])
    expect_count(log, r"Received Store Response \(Success\)", len(images), "storescu")
    if "Converting transfer syntax" in log and not all(
            re.search(r"Converting transfer syntax: (.+) -> \1$", line)
            for line in log.splitlines() if "Converting transfer syntax" in line):
        raise PeerError("storescu converted a data set:\n" + log)
    contexts = [{"id": 2 * n + 1, "abstract_syntax": CT, "transfer_syntax": ts,
                 "result": 4 if ts == synth.JPEG_LOSSLESS_P14 else 0}
                for n, ts in enumerate(_TS_PROPOSED)]
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "STORESCU", "STORESCP", DICOM_PORT, operations=store_ops(images),
                    presentation_contexts=contexts)]}


# -- 3. many associations, concurrency, PDU sizes -------------------------------------------


@scenario("store-many-associations", "store-many-associations.pcap",
          "storescu -> storescp: several sequential associations (calling AE STORESCU01.."
          "), each storing a few small CT images", associations=5, images=2, rows=64, cols=64)
def store_many(s: Session, p: dict[str, Any]) -> Truth:
    storescp(s, "storescp", DICOM_PORT)
    assocs = []
    batches = [synth.ct_series(s.work / f"a{a}", key="many", count=p["images"], rows=p["rows"],
                               cols=p["cols"], patient=a % 6, study=a)
               for a in range(p["associations"])]
    with s.capture():
        for a, images in enumerate(batches):
            aet = f"STORESCU{a + 1:02d}"
            log = s.client(f"storescu{a}", [BIN / "storescu", "-v", "-aet", aet, "-aec",
                                            "STORESCP", s.scp_ip, DICOM_PORT,
                                            *[i.path for i in images]])
            expect_count(log, r"Received Store Response \(Success\)", len(images), aet)
            assocs.append(association(s, aet, "STORESCP", DICOM_PORT,
                                      operations=store_ops(images)))
    return {"server_ports": [DICOM_PORT], "associations": assocs}


@scenario("store-concurrent", "store-concurrent.pcap",
          "three storescu processes at once against storescp --fork: interleaved associations "
          "(calling AE PARALLEL1..3) on separate TCP connections", associations=3, images=4,
          rows=128, cols=128)
def store_concurrent(s: Session, p: dict[str, Any]) -> Truth:
    storescp(s, "storescp", DICOM_PORT, "STORESCP", "--fork")
    batches = [synth.ct_series(s.work / f"c{a}", key="concurrent", count=p["images"],
                               rows=p["rows"], cols=p["cols"], patient=a % 6, study=a)
               for a in range(p["associations"])]
    assocs = []
    with s.capture():
        procs = [s.start(f"storescu{a}", [BIN / "storescu", "-v", "-aet", f"PARALLEL{a + 1}",
                                          "-aec", "STORESCP", s.scp_ip, DICOM_PORT,
                                          *[i.path for i in imgs]])
                 for a, imgs in enumerate(batches)]
        for a, proc in enumerate(procs):
            log = s.wait(f"storescu{a}", proc)
            expect_count(log, r"Received Store Response \(Success\)", p["images"], f"storescu{a}")
        time.sleep(0.5)  # forked children finish their release before tcpdump stops
    for a, imgs in enumerate(batches):
        assocs.append(association(s, f"PARALLEL{a + 1}", "STORESCP", DICOM_PORT,
                                  operations=store_ops(imgs)))
    return {"server_ports": [DICOM_PORT], "associations": assocs, "concurrent": True}


def _store_pdu(s: Session, p: dict[str, Any], key: str) -> Truth:
    pdu = p["max_pdu"]
    storescp(s, "storescp", DICOM_PORT, "STORESCP", "-pdu", str(pdu))
    images = synth.ct_series(s.work / "src", key=key, count=p["images"], rows=p["rows"],
                             cols=p["cols"], patient=1)
    with s.capture():
        log = s.client("storescu", [BIN / "storescu", "-v", "-aet", "STORESCU", "-aec",
                                    "STORESCP", "-pdu", pdu, s.scp_ip, DICOM_PORT,
                                    *[i.path for i in images]])
    expect_count(log, r"Received Store Response \(Success\)", len(images), "storescu")
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "STORESCU", "STORESCP", DICOM_PORT, operations=store_ops(images),
                    max_pdu={"requestor": pdu, "acceptor": pdu})]}


@scenario("store-small-pdu", "store-small-pdu.pcap",
          "storescu -> storescp with max PDU 4096 on both sides: a 512x512 16-bit image "
          "fragmented into ~130 P-DATA PDUs", max_pdu=4096, images=1, rows=512, cols=512)
def store_small_pdu(s: Session, p: dict[str, Any]) -> Truth:
    return _store_pdu(s, p, "smallpdu")


@scenario("store-large-pdu", "store-large-pdu.pcap",
          "storescu -> storescp with max PDU 131072 on both sides: the same size of image in "
          "a handful of large P-DATA PDUs spanning many TCP segments", max_pdu=131072, images=1,
          rows=512, cols=512)
def store_large_pdu(s: Session, p: dict[str, Any]) -> Truth:
    return _store_pdu(s, p, "largepdu")


# -- 4-6. query/retrieve against dcmqrscp ----------------------------------------------------


def qr_archive(s: Session, *, studies: int, images_per_study: int, rows: int = 32,
               cols: int = 32, hosts: dict[str, tuple[str, str, int]] | None = None,
               port: int = DICOM_PORT, aet: str = "ARCHIVE") -> list[list[synth.Image]]:
    """Fill a dcmqrscp database (indexed with dcmqridx) and start dcmqrscp on ``port``."""
    db = s.work / "db" / aet
    content = [synth.ct_series(db, key="archive", count=images_per_study, rows=rows, cols=cols,
                               patient=n % len(synth.PATIENTS), study=n)
               for n in range(studies)]
    synth.index_into(db, [i for study in content for i in study])
    cfg = synth.dcmqrscp_config(s.work / "dcmqrscp.cfg", port=port, aet=aet, db_dir=db,
                                hosts=hosts)
    # Fork mode: dcmqrscp 3.6.7 --single-process crashes (SIGSEGV) after its first association.
    s.server("dcmqrscp", [BIN / "dcmqrscp", "-v", "-dhl", "-c", cfg, port], port)
    return content


def find_keys() -> list[str]:
    keys = ["QueryRetrieveLevel=STUDY", "PatientName=SYNTHETIC*", "PatientID", "StudyDate",
            "StudyTime", "AccessionNumber", "StudyID", "StudyInstanceUID", "StudyDescription"]
    return [a for k in keys for a in ("-k", k)]


@scenario("find-pending", "find-pending.pcap",
          "findscu -> dcmqrscp: study-root C-FIND answered by one pending response per study "
          "(36) then success", studies=36)
def find_pending(s: Session, p: dict[str, Any]) -> Truth:
    n = p["studies"]
    qr_archive(s, studies=n, images_per_study=1)
    with s.capture():
        log = s.client("findscu", [BIN / "findscu", "-v", "-S", "-aet", "FINDSCU", "-aec",
                                   "ARCHIVE", *find_keys(), s.scp_ip, DICOM_PORT])
    expect_count(log, r"Find Response: \d+ \(Pending\)", n, "findscu")
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "FINDSCU", "ARCHIVE", DICOM_PORT, operations=[
            op("C-FIND", OK, pending=n, sop_class=STUDY_FIND, level="STUDY")])]}


@scenario("find-cancel", "find-cancel.pcap",
          "findscu --cancel 5 -> dcmqrscp: C-FIND cancelled with C-CANCEL-RQ after 5 pending "
          "responses; final status Cancel (0xFE00)", studies=36, cancel_after=5)
def find_cancel(s: Session, p: dict[str, Any]) -> Truth:
    qr_archive(s, studies=p["studies"], images_per_study=1)
    with s.capture():
        log = s.client("findscu", [BIN / "findscu", "-v", "-S", "-aet", "FINDSCU", "-aec",
                                   "ARCHIVE", "--cancel", p["cancel_after"], *find_keys(),
                                   s.scp_ip, DICOM_PORT])
    pending = len(re.findall(r"Find Response: \d+ \(Pending\)", log))
    if "Sending Cancel Request" not in log or not re.search(r"\(Cancel", log):
        raise PeerError("findscu did not cancel:\n" + log[-3000:])
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "FINDSCU", "ARCHIVE", DICOM_PORT, operations=[
            op("C-FIND", CANCEL, pending=pending, cancelled_after=p["cancel_after"],
               sop_class=STUDY_FIND, level="STUDY")])]}


@scenario("move", "move.pcap",
          "movescu -> dcmqrscp C-MOVE of one study to movescu's own listener (port 11113): "
          "the C-STOREs travel on a second association opened by dcmqrscp", images=4)
def move(s: Session, p: dict[str, Any]) -> Truth:
    hosts = {"movedest": ("MOVESCU", s.scu_ip, CALLBACK_PORT)}
    content = qr_archive(s, studies=3, images_per_study=p["images"], rows=64, cols=64,
                         hosts=hosts)
    study = content[1]
    recv = s.work / "moved"
    recv.mkdir()
    with s.capture():
        log = s.client("movescu", [BIN / "movescu", "-v", "-dhl", "-S", "-aet", "MOVESCU", "-aec",
                                   "ARCHIVE", "-aem", "MOVESCU", "+P", CALLBACK_PORT, "-od", recv,
                                   "-k", "QueryRetrieveLevel=STUDY",
                                   "-k", f"StudyInstanceUID={study[0].study_uid}",
                                   s.scp_ip, DICOM_PORT])
    n = len(study)
    expect_count(log, r"Received Store Request", n, "movescu")
    sub = association(s, "ARCHIVE", "MOVESCU", CALLBACK_PORT, requestor=SCP,
                      operations=store_ops(study), sub_association_of=0)
    main = association(s, "MOVESCU", "ARCHIVE", DICOM_PORT, operations=[
        op("C-MOVE", OK, pending=n, sop_class=STUDY_MOVE, move_destination="MOVESCU",
           sub_operations={"completed": n, "failed": 0, "warning": 0})])
    return {"server_ports": [DICOM_PORT, CALLBACK_PORT], "associations": [main, sub]}


@scenario("get", "get.pcap",
          "getscu -> dcmqrscp C-GET of one study: C-STORE sub-operations come back on the same "
          "association (SCP role negotiated for CT storage)", images=3)
def get(s: Session, p: dict[str, Any]) -> Truth:
    content = qr_archive(s, studies=2, images_per_study=p["images"], rows=64, cols=64)
    study = content[0]
    recv = s.work / "got"
    recv.mkdir()
    with s.capture():
        log = s.client("getscu", [BIN / "getscu", "-v", "-S", "-aet", "GETSCU", "-aec",
                                  "ARCHIVE", "-od", recv, "-k", "QueryRetrieveLevel=STUDY",
                                  "-k", f"StudyInstanceUID={study[0].study_uid}",
                                  s.scp_ip, DICOM_PORT])
    n = len(study)
    expect_count(log, r"Received C-STORE Request", n, "getscu")
    ops = [op("C-GET", OK, pending=n, sop_class=STUDY_GET,
              sub_operations={"completed": n, "failed": 0, "warning": 0})]
    ops += [dict(o, invoker="acceptor") for o in store_ops(study)]
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "GETSCU", "ARCHIVE", DICOM_PORT, operations=ops)]}


# -- 7. modality worklist --------------------------------------------------------------------


@scenario("worklist", "worklist.pcap",
          "findscu -W -> wlmscpfs on the unusual port 20202: modality worklist C-FIND with "
          "sequence keys, one pending response per scheduled item", port=ODD_PORT, items=5)
def worklist(s: Session, p: dict[str, Any]) -> Truth:
    port, n = p["port"], p["items"]
    data = synth.worklist_dir(s.work / "wl", "WORKLIST", n)
    s.server("wlmscpfs", [BIN / "wlmscpfs", "-v", "-dhl", "-dfp", data, port], port)
    sps = "ScheduledProcedureStepSequence[0]."
    keys = ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
            "StudyInstanceUID", "RequestedProcedureID", "RequestedProcedureDescription",
            f"{sps}Modality=CT", f"{sps}ScheduledStationAETitle",
            f"{sps}ScheduledProcedureStepStartDate=20240115",
            f"{sps}ScheduledProcedureStepStartTime", f"{sps}ScheduledProcedureStepID",
            f"{sps}ScheduledProcedureStepDescription"]
    with s.capture():
        log = s.client("findscu", [BIN / "findscu", "-v", "-W", "-aet", "CTSCANNER", "-aec",
                                   "WORKLIST", *[a for k in keys for a in ("-k", k)],
                                   s.scp_ip, port])
    expect_count(log, r"Find Response: \d+ \(Pending\)", n, "findscu")
    return {"server_ports": [port], "associations": [
        association(s, "CTSCANNER", "WORKLIST", port, operations=[
            op("C-FIND", OK, pending=n, sop_class=WORKLIST_FIND)])]}


# -- 8. N-services with pynetdicom -----------------------------------------------------------

MPPS_UID = synth.uid("mpps", 1)
MPPS_PRELOADED = synth.uid("mpps", "preloaded")
MPPS_MISSING = synth.uid("mpps", "missing")


@scenario("mpps", "mpps.pcap",
          "pynetdicom MPPS: N-CREATE (IN PROGRESS) then N-SET (COMPLETED) on one association")
def mpps(s: Session, p: dict[str, Any]) -> Truth:
    s.server("nserver", s.python("nserver", "--port", DICOM_PORT, "--aet", "RIS"), DICOM_PORT)
    with s.capture():
        log = s.client("mpps", s.python("mpps", "--host", s.scp_ip, "--port", DICOM_PORT,
                                        "--aet", "CTSCANNER", "--called", "RIS",
                                        "--instance", MPPS_UID))
    res = pnd_json(log)
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "CTSCANNER", "RIS", DICOM_PORT, operations=[
            op("N-CREATE", res["N-CREATE"], sop_class=MPPS_CLASS, sop_instance=MPPS_UID),
            op("N-SET", res["N-SET"], sop_class=MPPS_CLASS, sop_instance=MPPS_UID)])]}


@scenario("nget", "nget.pcap",
          "pynetdicom N-GET (MPPS Retrieve) of an existing instance (success, attributes "
          "returned) and of an unknown one (0x0112 No such SOP instance)")
def nget(s: Session, p: dict[str, Any]) -> Truth:
    s.server("nserver", s.python("nserver", "--port", DICOM_PORT, "--aet", "RIS",
                                 "--preload", MPPS_PRELOADED), DICOM_PORT)
    with s.capture():
        log = s.client("nget", s.python("nget", "--host", s.scp_ip, "--port", DICOM_PORT,
                                        "--aet", "CTSCANNER", "--called", "RIS",
                                        "--instance", MPPS_PRELOADED, "--missing",
                                        MPPS_MISSING))
    st = pnd_json(log)["N-GET"]
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "CTSCANNER", "RIS", DICOM_PORT, operations=[
            op("N-GET", st[0], sop_class=MPPS_RETRIEVE_CLASS, sop_instance=MPPS_PRELOADED),
            op("N-GET", st[1], sop_class=MPPS_RETRIEVE_CLASS, sop_instance=MPPS_MISSING)])]}


@scenario("storage-commitment", "storage-commitment.pcap",
          "pynetdicom storage commitment: N-ACTION, then the SCP's N-EVENT-REPORT (all "
          "committed, event type 1) on the same association", count=3)
def storage_commitment(s: Session, p: dict[str, Any]) -> Truth:
    s.server("nserver", s.python("nserver", "--port", DICOM_PORT, "--aet", "ARCHIVE"),
             DICOM_PORT)
    with s.capture():
        log = s.client("commit", s.python("commit", "--host", s.scp_ip, "--port", DICOM_PORT,
                                          "--aet", "CTSCANNER", "--called", "ARCHIVE",
                                          "--count", p["count"]))
    res = pnd_json(log)
    if res["N-EVENT-REPORT"] != [1]:
        raise PeerError(f"unexpected commitment result {res}")
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "CTSCANNER", "ARCHIVE", DICOM_PORT, operations=[
            op("N-ACTION", res["N-ACTION"], sop_class=COMMIT_CLASS, action_type=1,
               references=p["count"]),
            op("N-EVENT-REPORT", OK, invoker="acceptor", sop_class=COMMIT_CLASS,
               event_type=1, committed=p["count"], failed=0)])]}


@scenario("storage-commitment-separate", "storage-commitment-separate.pcap",
          "pynetdicom storage commitment: N-ACTION on one association; the SCP later opens a "
          "second association back to the SCU's listener (port 11113, SCP role selection) for "
          "the N-EVENT-REPORT (one failure, event type 2)", count=3)
def storage_commitment_separate(s: Session, p: dict[str, Any]) -> Truth:
    s.server("nserver", s.python("nserver", "--port", DICOM_PORT, "--aet", "ARCHIVE",
                                 "--callback-host", s.scu_ip, "--callback-port", CALLBACK_PORT,
                                 "--callback-aet", "CTSCANNER"), DICOM_PORT)
    with s.capture():
        log = s.client("commit", s.python("commit", "--host", s.scp_ip, "--port", DICOM_PORT,
                                          "--aet", "CTSCANNER", "--called", "ARCHIVE",
                                          "--count", p["count"], "--fail-last",
                                          "--listen", CALLBACK_PORT))
    res = pnd_json(log)
    if res["N-EVENT-REPORT"] != [2]:
        raise PeerError(f"unexpected commitment result {res}")
    n = p["count"]
    return {"server_ports": [DICOM_PORT, CALLBACK_PORT], "associations": [
        association(s, "CTSCANNER", "ARCHIVE", DICOM_PORT, operations=[
            op("N-ACTION", res["N-ACTION"], sop_class=COMMIT_CLASS, action_type=1,
               references=n)]),
        association(s, "ARCHIVE", "CTSCANNER", CALLBACK_PORT, requestor=SCP, operations=[
            op("N-EVENT-REPORT", OK, sop_class=COMMIT_CLASS, event_type=2, committed=n - 1,
               failed=1)], role_selection={"sop_class": COMMIT_CLASS, "scu": 0, "scp": 1})]}


# -- 9-10. rejection and abort ---------------------------------------------------------------


@scenario("associate-reject", "associate-reject.pcap",
          "two rejected associations: echoscu calling dcmqrscp with an unknown called AE "
          "(A-ASSOCIATE-RJ reason 7, called AE not recognized) and storescu against "
          "storescp --refuse (reason 1, no reason given)")
def associate_reject(s: Session, p: dict[str, Any]) -> Truth:
    qr_archive(s, studies=1, images_per_study=1)
    storescp(s, "storescp", CALLBACK_PORT, "STORESCP", "--refuse")
    image = synth.ct_series(s.work / "src", key="reject", count=1, rows=16, cols=16)[0]
    with s.capture():
        log1 = s.client("echoscu", [BIN / "echoscu", "-v", "-aet", "ECHOSCU", "-aec",
                                    "WRONGAE", s.scp_ip, DICOM_PORT], ok=(1,))
        log2 = s.client("storescu", [BIN / "storescu", "-v", "-aet", "STORESCU", "-aec",
                                     "STORESCP", s.scp_ip, CALLBACK_PORT, image.path], ok=(1,))
    for who, log in (("echoscu", log1), ("storescu", log2)):
        if "Association Rejected" not in log:
            raise PeerError(f"{who} was not rejected:\n{log}")
    return {"server_ports": [DICOM_PORT, CALLBACK_PORT], "associations": [
        association(s, "ECHOSCU", "WRONGAE", DICOM_PORT, outcome="rejected",
                    reject={"result": 1, "source": 1, "reason": 7}),
        association(s, "STORESCU", "STORESCP", CALLBACK_PORT, outcome="rejected",
                    reject={"result": 1, "source": 1, "reason": 1})]}


@scenario("abort-mid-transfer", "abort-mid-transfer.pcap",
          "storescp --abort-during: the SCP sends A-ABORT while a 256x256 image is still "
          "arriving in 4 KB PDUs (no C-STORE-RSP)", rows=256, cols=256, max_pdu=4096)
def abort_mid_transfer(s: Session, p: dict[str, Any]) -> Truth:
    pdu = p["max_pdu"]
    storescp(s, "storescp", DICOM_PORT, "STORESCP", "--abort-during", "-pdu", str(pdu))
    images = synth.ct_series(s.work / "src", key="abort", count=1, rows=p["rows"],
                             cols=p["cols"], patient=2)
    with s.capture():
        log = s.client("storescu", [BIN / "storescu", "-v", "-aet", "STORESCU", "-aec",
                                    "STORESCP", "-pdu", pdu, s.scp_ip, DICOM_PORT,
                                    *[i.path for i in images]], ok=range(1, 256))
    if "ABORT initiated" not in s.read_log("storescp"):
        raise PeerError("storescp did not abort:\n" + log[-2000:])
    # storescp closes with unread data, so the kernel adds a RST: storescu's log may show a
    # reset rather than the A-ABORT, hence the check on the wire instead.
    if 0x07 not in pdu_types(s.pcap, DICOM_PORT, from_server=True):
        raise PeerError("no A-ABORT from the SCP in the capture:\n" + log[-2000:])
    ops = [op("C-STORE", "none", transfer_syntax=images[0].transfer_syntax,
              sop_instance=images[0].sop_instance, completed=False)]
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "STORESCU", "STORESCP", DICOM_PORT, outcome="aborted",
                    aborted_by="acceptor", abort={"source": 0}, operations=ops,
                    max_pdu={"requestor": pdu, "acceptor": pdu})]}


@scenario("abort-by-requestor", "abort-by-requestor.pcap",
          "storescu --abort: two images stored successfully, then the SCU ends the association "
          "with A-ABORT instead of A-RELEASE", images=2)
def abort_by_requestor(s: Session, p: dict[str, Any]) -> Truth:
    storescp(s, "storescp", DICOM_PORT)
    images = synth.ct_series(s.work / "src", key="abortscu", count=p["images"], rows=64,
                             cols=64, patient=3)
    with s.capture():
        log = s.client("storescu", [BIN / "storescu", "-v", "--abort", "-aet", "STORESCU",
                                    "-aec", "STORESCP", s.scp_ip, DICOM_PORT,
                                    *[i.path for i in images]])
    expect_count(log, r"Received Store Response \(Success\)", len(images), "storescu")
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "STORESCU", "STORESCP", DICOM_PORT, outcome="aborted",
                    aborted_by="requestor", abort={"source": 0}, operations=store_ops(images))]}


# -- 11. capture starting mid-association ----------------------------------------------------


def cut_mid_pdu(pcap: Path, out: Path, client: tuple[str, int], server: tuple[str, int],
                message: int) -> dict[str, Any]:
    """Drop every frame before a TCP segment that starts inside a P-DATA PDU carrying the data
    set of the ``message``-th (0-based) DIMSE message from ``client``.

    Returns where the cut fell, so the manifest can say what the trimmed capture lacks.
    """
    segs = list(pcapfile.segments(pcap))
    data, marks = pcapfile.stream(segs, client, server)
    units = pcapfile.pdus(data)
    # Find the data PDVs of the wanted message: count command PDVs that are last fragments.
    seen_cmd = -1
    data_pdus: list[pcapfile.Pdu] = []
    for u in units:
        for _ctx, ctl, _len in u.pdvs:
            if ctl & 0x01 and ctl & 0x02:
                seen_cmd += 1
            elif not ctl & 0x01 and seen_cmd == message:
                data_pdus.append(u)
                break
    if len(data_pdus) < 3:
        raise PeerError(f"message {message} has too few data PDUs ({len(data_pdus)}) to cut in")
    middle = data_pdus[len(data_pdus) // 2]
    starts = {u.start for u in units}
    # Strictly inside the PDV value: not at the PDU start, nor right after its 12 header bytes
    # (with Nagle on, dcmtk writes those 12 bytes as a segment of their own).
    frame = next(fr for off, fr in marks if middle.start + 12 < off < middle.end
                 and off not in starts)
    header, _ = pcapfile.read_header(pcap)
    kept = pcapfile.write(out, header, (f for f in pcapfile.frames(pcap) if f.number >= frame))
    offset = next(off for off, fr in marks if fr == frame)
    return {"cut_before_frame": frame, "frames_kept": kept,
            "first_segment_offset_in_pdu": offset - middle.start,
            "first_segment_pdu_length": middle.length}


@scenario("mid-association", "mid-association.pcap",
          "a capture that begins in the middle of an association: recorded normally, then "
          "every frame before a segment in the middle of the 2nd C-STORE's data set (mid-PDU) "
          "dropped; no SYN, no A-ASSOCIATE", images=5, rows=128, cols=128, max_pdu=4096,
          cut_in_message=2)
def mid_association(s: Session, p: dict[str, Any]) -> Truth:
    pdu = p["max_pdu"]
    storescp(s, "storescp", DICOM_PORT, "STORESCP", "-pdu", str(pdu))
    images = synth.ct_series(s.work / "src", key="midassoc", count=p["images"], rows=p["rows"],
                             cols=p["cols"], patient=4)
    full = s.work / "full.pcap"
    with s.capture(pcap=full):
        log = s.client("storescu", [BIN / "storescu", "-v", "-aet", "STORESCU", "-aec",
                                    "STORESCP", "-pdu", pdu, s.scp_ip, DICOM_PORT,
                                    *[i.path for i in images]])
    expect_count(log, r"Received Store Response \(Success\)", len(images), "storescu")
    syn = next(g for g in pcapfile.segments(full) if g.syn and g.dport == DICOM_PORT)
    # DIMSE messages from the client: one C-STORE-RQ each, the data set of the 2nd (index 1).
    msg = p["cut_in_message"] - 1
    cut = cut_mid_pdu(full, s.pcap, (syn.src, syn.sport), (syn.dst, syn.dport), msg)
    ops = store_ops(images)
    for n, o in enumerate(ops):
        # Requests before the cut message are gone; the cut one lost its start but its
        # response is visible.
        o["visible"] = "none" if n < msg else ("response-only" if n == msg else "complete")
    return {"server_ports": [DICOM_PORT], "starts_mid_association": True,
            "cut": cut, "associations": [
                association(s, "STORESCU", "STORESCP", DICOM_PORT, operations=ops,
                            start_visible=False, max_pdu={"requestor": pdu, "acceptor": pdu})]}


# -- 12. IPv6 ----------------------------------------------------------------------------------


@scenario("ipv6-store", "ipv6-store.pcap",
          "pynetdicom over IPv6 (2001:db8::1 -> 2001:db8::2): C-ECHO then 3 C-STOREs on one "
          "association (dcmtk 3.6.7 has no IPv6)", images=3)
def ipv6(s: Session, p: dict[str, Any]) -> Truth:
    scp6, port = s.bed.ip6(SCP), DICOM_PORT
    images = synth.ct_series(s.work / "src", key="ipv6", count=p["images"], rows=64, cols=64,
                             patient=5)
    s.server("store-server", s.python("store-server", "--bind", scp6, "--port", port,
                                      "--aet", "PYSTORESCP"), port)
    with s.capture():
        log = s.client("store", s.python("store", "--host", scp6, "--port", port, "--aet",
                                         "PYSTORESCU", "--called", "PYSTORESCP",
                                         *[i.path for i in images]))
    res = pnd_json(log)
    ops = [op("C-ECHO", res["C-ECHO"])]
    ops += [dict(o, status=st) for o, st in zip(store_ops(images), res["C-STORE"], strict=True)]
    return {"server_ports": [port], "ip_version": 6, "associations": [
        association(s, "PYSTORESCU", "PYSTORESCP", port, operations=ops, ipv6=True)]}


# -- objects received bit for bit (export-objects round trip, not in the sample corpus) ------

QR_PORT = 11114
RECEIVED_DIRS = ("storescp-received", "moved", "got")  # under the work dir, per receiver


@scenario("objects-roundtrip", "objects-roundtrip.pcap",
          "what export-objects must reproduce byte for byte: storescu -> storescp +B (one CT "
          "image in each of implicit LE, explicit LE/BE, deflated, JPEG lossless SV1, RLE), "
          "then a C-MOVE to movescu +B and a C-GET by getscu +B against dcmqrscp (port "
          "11114); the receivers keep what arrived exactly as read (work dir: "
          "storescp-received/, moved/, got/)", sample=False, rows=32, cols=32, images=2)
def objects_roundtrip(s: Session, p: dict[str, Any]) -> Truth:
    src = synth.ct_series(s.work / "src", key="roundtrip", count=len(_TS_ORDER),
                          rows=p["rows"], cols=p["cols"], patient=2)
    images = [synth.convert(img, ts, s.work / "ts" / f"{n}.dcm")
              for n, (img, ts) in enumerate(zip(src, _TS_ORDER, strict=True))]
    cfg = storescu_config(s.work / "storescu.cfg", CT, _TS_ORDER)
    storescp(s, "storescp", DICOM_PORT, "STORESCP", "+xa", "+B")
    hosts = {"movedest": ("MOVESCU", s.scu_ip, CALLBACK_PORT)}
    content = qr_archive(s, studies=2, images_per_study=p["images"], rows=p["rows"],
                         cols=p["cols"], hosts=hosts, port=QR_PORT)
    moved, got = s.work / "moved", s.work / "got"
    moved.mkdir()
    got.mkdir()
    with s.capture():
        log = s.client("storescu", [BIN / "storescu", "-v", "-aet", "STORESCU", "-aec",
                                    "STORESCP", "-xf", cfg, "Separate", s.scp_ip, DICOM_PORT,
                                    *[i.path for i in images]])
        expect_count(log, r"Received Store Response \(Success\)", len(images), "storescu")
        log = s.client("movescu", [BIN / "movescu", "-v", "-S", "+B", "-aet", "MOVESCU",
                                   "-aec", "ARCHIVE", "-aem", "MOVESCU", "+P", CALLBACK_PORT,
                                   "-od", moved, "-k", "QueryRetrieveLevel=STUDY",
                                   "-k", f"StudyInstanceUID={content[1][0].study_uid}",
                                   s.scp_ip, QR_PORT], cwd=moved)  # +B ignores -od
        expect_count(log, r"Received Store Request", len(content[1]), "movescu")
        log = s.client("getscu", [BIN / "getscu", "-v", "-S", "+B", "-aet", "GETSCU", "-aec",
                                  "ARCHIVE", "-od", got, "-k", "QueryRetrieveLevel=STUDY",
                                  "-k", f"StudyInstanceUID={content[0][0].study_uid}",
                                  s.scp_ip, QR_PORT])
        expect_count(log, r"Received C-STORE Request", len(content[0]), "getscu")
    n_move, n_get = len(content[1]), len(content[0])
    sub_ops = {"failed": 0, "warning": 0}
    get_ops = [op("C-GET", OK, pending=n_get, sop_class=STUDY_GET,
                  sub_operations={"completed": n_get, **sub_ops})]
    get_ops += [dict(o, invoker="acceptor") for o in store_ops(content[0])]
    return {"server_ports": [DICOM_PORT, CALLBACK_PORT, QR_PORT], "associations": [
        association(s, "STORESCU", "STORESCP", DICOM_PORT, operations=store_ops(images)),
        association(s, "MOVESCU", "ARCHIVE", QR_PORT, operations=[
            op("C-MOVE", OK, pending=n_move, sop_class=STUDY_MOVE, move_destination="MOVESCU",
               sub_operations={"completed": n_move, **sub_ops})]),
        association(s, "ARCHIVE", "MOVESCU", CALLBACK_PORT, requestor=SCP,
                    operations=store_ops(content[1]), sub_association_of=1),
        association(s, "GETSCU", "ARCHIVE", QR_PORT, operations=get_ops)]}


# -- benchmark loads (not in the committed corpus) -------------------------------------------


def _bulk_files(s: Session, images: int, rows: int, cols: int, distinct: int) -> list[synth.Image]:
    """Up to ``distinct`` different files; the rest of the load re-sends them (storescu +II
    then invents fresh instance UIDs so the archive sees distinct objects)."""
    return synth.ct_series(s.work / "bulk", key="bulk", count=min(images, distinct), rows=rows,
                           cols=cols, patient=0)


@scenario("bulk", "bulk.pcap",
          "benchmark load: many 512x512 16-bit C-STOREs over several associations "
          "(defaults give ~130 MB)", sample=False, nodelay=True, images=240, associations=4,
          rows=512, cols=512, max_pdu=16384, distinct=48)
def bulk(s: Session, p: dict[str, Any]) -> Truth:
    files = _bulk_files(s, p["images"], p["rows"], p["cols"], p["distinct"])
    storescp(s, "storescp", DICOM_PORT, "STORESCP", "--ignore", "-pdu", str(p["max_pdu"]))
    per = [p["images"] // p["associations"] + (a < p["images"] % p["associations"])
           for a in range(p["associations"])]
    assocs, k = [], 0
    with s.capture():
        for a, count in enumerate(per):
            batch = [files[(k + i) % len(files)] for i in range(count)]
            k += count
            invent = ["+II"] if p["images"] > len(files) else []
            aet = f"BULK{a + 1:02d}"
            log = s.client(f"storescu{a}", [BIN / "storescu", "-v", *invent, "-aet", aet,
                                            "-aec", "STORESCP", "-pdu", p["max_pdu"], s.scp_ip,
                                            DICOM_PORT, *[i.path for i in batch]])
            expect_count(log, r"Received Store Response \(Success\)", count, aet)
            ops = store_ops(batch)
            if invent:  # storescu +II made the instance UIDs up: unknown here
                for o in ops:
                    del o["sop_instance"]
            assocs.append(association(s, aet, "STORESCP", DICOM_PORT, operations=ops))
    return {"server_ports": [DICOM_PORT], "associations": assocs}


@scenario("big", "big.pcap",
          "benchmark load: the bulk recipe scaled to ~1 GB", sample=False, nodelay=True,
          images=1900, associations=8, rows=512, cols=512, max_pdu=16384, distinct=64)
def big(s: Session, p: dict[str, Any]) -> Truth:
    return bulk(s, p)


@scenario("chatty", "chatty.pcap",
          "benchmark load: hundreds of short associations, each with a C-ECHO and C-FINDs "
          "answered by 40 pending responses (pynetdicom SCU -> dcmqrscp)", sample=False,
          nodelay=True, associations=300, finds=3, studies=40)
def chatty(s: Session, p: dict[str, Any]) -> Truth:
    qr_archive(s, studies=p["studies"], images_per_study=1, rows=8, cols=8)
    with s.capture():
        log = s.client("chatty", s.python("chatty", "--host", s.scp_ip, "--port", DICOM_PORT,
                                          "--aet", "CHATTY", "--called", "ARCHIVE",
                                          "--associations", p["associations"],
                                          "--finds", p["finds"]))
    res = pnd_json(log)
    n, f, st = p["associations"], p["finds"], p["studies"]
    if res.get("associations") != n or res.get("C-FIND-RSP 0x0000") != n * f:
        raise PeerError(f"chatty load incomplete: {res}")
    # What went on the wire, per the sender: pynetdicom's SCU occasionally loses a pending
    # response to its own reactor thread ("Received unexpected C-FIND service message").
    time.sleep(0.3)  # the last forked dcmqrscp child flushes its log
    expect_count(s.read_log("dcmqrscp"), r"Find SCP Response \d+ \[status: Pending\]",
                 n * f * st, "dcmqrscp")
    ops = [op("C-ECHO")] + [op("C-FIND", OK, pending=st, sop_class=STUDY_FIND)] * f
    one = association(s, "CHATTY", "ARCHIVE", DICOM_PORT, operations=ops)
    return {"server_ports": [DICOM_PORT], "associations": [one] * n}


def names(sample_only: bool = False) -> list[str]:
    """Scenario names in recording order."""
    return [n for n, sc in SCENARIOS.items() if sc.sample or not sample_only]


def copy_peer_logs(s: Session, dest: Path) -> None:
    """Keep the peers' logs next to a recording (debugging aid)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in s.logs.glob("*.log"):
        shutil.copy2(f, dest / f.name)


# The findings, journey and conformance captures (captures/findings/, captures/journey/,
# captures/conformance/; not in --all) register from their own modules.
from . import conformance_scenarios, findings_scenarios, journey_scenarios  # noqa: E402,F401
