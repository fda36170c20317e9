"""Scenarios for the findings captures in captures/findings/: real peers doing things wrong.

Each produces, with real dcmtk or pynetdicom peers, a condition a findings rule must name:
failure and warning statuses, slow and missing responses, killed peers, refused presentation
contexts, an unknown or unreachable move destination, an MPPS never completed, a storage
commitment never answered, requests beyond the asynchronous window, an idle timeout and a
zero TCP window. Packet loss is not among them: the recording kernel has neither netem nor
tc/netfilter drop actions (move.pcap in the sample corpus holds a real retransmission).
They are not part of the sample corpus (``sample=False``: not in ``record.py --all``, whose
tests expect healthy exchanges). Record them with::

    sudo python3 captures/record.py --out captures/findings --prefix dsrules \\
        $(python3 captures/record.py --list | awk '/^findings-/ {print $1}')

Ground truth is what the peers were told to do and what their logs or JSON say they did.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import synth
from .netns import SCP
from .scenarios import (
    BIN,
    CALLBACK_PORT,
    CT,
    DICOM_PORT,
    STUDY_MOVE,
    Truth,
    association,
    expect_count,
    find_keys,
    op,
    pdu_types,
    pnd_json,
    qr_archive,
    scenario,
    store_ops,
    storescp,
)
from .session import PeerError, Session

FINDINGS_PEERS = Path(__file__).with_name("findings_peers.py")
DOWN_PORT = 11114  # nothing listens there
MPPS_CLASS = "1.2.840.10008.3.1.2.3.3"
COMMIT_CLASS = "1.2.840.10008.1.20.1"
SC = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
MR = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"  # lossy, 12-bit
STATUSES = ["0x0000", "0xA700", "0xA900", "0xC000", "0xB000", "0xB007", "0x0122"]


def fpeer(role: str, *args: str | int | Path) -> list[str]:
    """argv for a peer from :mod:`captures.findings_peers`."""
    return [sys.executable, str(FINDINGS_PEERS), role, *map(str, args)]


def store_scp(s: Session, *opts: str | int, port: int = DICOM_PORT, aet: str = "ARCHIVE",
              bind: str = "") -> None:
    s.server("store-scp", fpeer("store-scp", "--port", port, "--aet", aet, "--bind", bind,
                                *opts), port)


def storescu(s: Session, name: str, files: list[synth.Image], *opts: str | int,
             called: str = "ARCHIVE", port: int = DICOM_PORT, ok: Any = (0,)) -> str:
    return s.client(name, [BIN / "storescu", "-v", "-aet", "STORESCU", "-aec", called, *opts,
                           s.scp_ip, port, *[i.path for i in files]], ok=ok)


def tiny(s: Session, key: str, count: int, size: int = 16, patient: int = 0) -> list[synth.Image]:
    return synth.ct_series(s.work / key, key=f"findings-{key}", count=count, rows=size,
                           cols=size, patient=patient)


@scenario("findings-store-status", "store-status.pcap",
          "storescu -> pynetdicom storage SCP answering each C-STORE with a scripted status: "
          "Success, 0xA700 out of resources, 0xA900, 0xC000, 0xB000 coercion, 0xB007, 0x0122",
          sample=False)
def store_status(s: Session, p: dict[str, Any]) -> Truth:
    images = tiny(s, "status", len(STATUSES))
    store_scp(s, "--statuses", ",".join(STATUSES))
    with s.capture():
        log = storescu(s, "storescu", images, "--no-halt", ok=range(256))
    expect_count(log, r"Received Store Response \(Success\)", 1, "storescu")
    expect_count(log, r"Received Store Response", len(images), "storescu")
    ops = [dict(o, status=st) for o, st in zip(store_ops(images), STATUSES, strict=True)]
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "STORESCU", "ARCHIVE", DICOM_PORT, operations=ops)]}


@scenario("findings-store-slow", "store-slow.pcap",
          "storescu -> pynetdicom storage SCP that takes 1.5 s to answer the 6th of 9 C-STOREs "
          "(the others answer at once); the 3rd image is sent twice (same SOP Instance UID)",
          sample=False, images=8, slow=6, delay=1.5)
def store_slow(s: Session, p: dict[str, Any]) -> Truth:
    images = tiny(s, "slow", p["images"])
    sent = [*images, images[2]]
    store_scp(s, "--sleep", f"{p['slow']}:{p['delay']}")
    with s.capture():
        log = storescu(s, "storescu", sent)
    expect_count(log, r"Received Store Response \(Success\)", len(sent), "storescu")
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "STORESCU", "ARCHIVE", DICOM_PORT, operations=store_ops(sent))]}


@scenario("findings-all-slow", "all-slow.pcap",
          "storescu -> pynetdicom storage SCP that takes 1.5 s to answer every one of 3 "
          "C-STOREs: each is as slow as the median, so only an absolute threshold "
          "(--slow-over) calls them slow", sample=False, images=3, delay=1.5)
def all_slow(s: Session, p: dict[str, Any]) -> Truth:
    images = tiny(s, "allslow", p["images"])
    store_scp(s, "--hang", p["delay"])
    with s.capture():
        log = storescu(s, "storescu", images)
    expect_count(log, r"Received Store Response \(Success\)", len(images), "storescu")
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "STORESCU", "ARCHIVE", DICOM_PORT, operations=store_ops(images))]}

@scenario("findings-no-answer", "no-answer.pcap",
          "an SCP that never answers C-STORE: storescu -td 2 gives up and sends A-ABORT after "
          "2 s; a second storescu (no timeout) is killed (SIGKILL) while waiting, so its "
          "kernel closes the connection without A-RELEASE", sample=False, wait=1.5)
def no_answer(s: Session, p: dict[str, Any]) -> Truth:
    images = tiny(s, "noanswer", 1)
    store_scp(s, "--hang", "8")
    with s.capture():
        log = storescu(s, "storescu-timeout", images, "-td", "2", ok=range(256))
        proc = s.start("storescu-killed", [BIN / "storescu", "-v", "-aet", "KILLEDSCU", "-aec",
                                           "ARCHIVE", s.scp_ip, DICOM_PORT, images[0].path])
        time.sleep(p["wait"])
        proc.kill()
        proc.wait()
        time.sleep(0.5)  # the SCP's side of the close reaches the capture
    if "DIMSE" not in log or "Received Store Response" in log:
        raise PeerError("storescu did not time out:\n" + log[-2000:])
    op1 = [dict(o, status="none") for o in store_ops(images)]
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "STORESCU", "ARCHIVE", DICOM_PORT, outcome="aborted",
                    aborted_by="requestor", abort={"source": 0}, operations=op1),
        association(s, "KILLEDSCU", "ARCHIVE", DICOM_PORT, outcome="closed",
                    operations=[dict(o) for o in op1])]}



@scenario("findings-killed-scu", "killed-scu.pcap",
          "storescu -> storescp --sleep-during 1 (a pause at each step of the store): storescu "
          "is killed (SIGKILL) 1 s after its C-STORE-RQ, so its kernel sends FIN; storescp, "
          "still inside the store, answers later and the dead socket answers with RST",
          sample=False, wait=1.0, sleep=1)
def killed_scu(s: Session, p: dict[str, Any]) -> Truth:
    images = tiny(s, "killed", 1)
    out = s.work / "killed-received"
    out.mkdir(exist_ok=True)
    s.server("storescp-sleepy", [BIN / "storescp", "-v", "-aet", "ARCHIVE", "-od", out,
                                 "--sleep-during", p["sleep"], DICOM_PORT], DICOM_PORT)
    with s.capture():
        proc = s.start("storescu-killed", [BIN / "storescu", "-v", "-aet", "KILLEDSCU", "-aec",
                                           "ARCHIVE", s.scp_ip, DICOM_PORT, images[0].path])
        time.sleep(p["wait"])
        proc.kill()
        proc.wait()
        time.sleep(4 * p["sleep"] + 1)  # storescp wakes, answers, and the RST comes back
    op1 = [dict(o, status="none") for o in store_ops(images)]
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "KILLEDSCU", "ARCHIVE", DICOM_PORT, outcome="closed", operations=op1)]}

_ACCEPT_CFG = """\
[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = {explicit}
TransferSyntax2 = {implicit}
[P14]
TransferSyntax1 = {p14}
[JPEGExtended]
TransferSyntax1 = {lossy}

[[PresentationContexts]]
[Narrow]
PresentationContext1 = {ct}\\Uncompressed
PresentationContext2 = {mr}\\Uncompressed
PresentationContext3 = 1.2.840.10008.1.1\\Uncompressed
[Mixed]
PresentationContext1 = {ct}\\P14
PresentationContext2 = {sc}\\P14
PresentationContext3 = {mr}\\P14
PresentationContext4 = {ct}\\Uncompressed
[Lossy]
PresentationContext1 = {ct}\\JPEGExtended

[[Profiles]]
[Narrow]
PresentationContexts = Narrow
[Mixed]
PresentationContexts = Mixed
[Lossy]
PresentationContexts = Lossy
"""


@scenario("findings-negotiation", "negotiation.pcap",
          "refused presentation contexts and a lossy syntax: storescu proposes CT, Secondary "
          "Capture and MR in JPEG Process 14 only and CT uncompressed to a storescp configured "
          "for CT and MR uncompressed and Verification only; findscu asks the same storescp for "
          "Study Root FIND (every context refused); storescu sends a JPEG Extended (lossy) CT "
          "to storescp +xa on port 11113", sample=False)
def negotiation(s: Session, p: dict[str, Any]) -> Truth:
    cfg = s.work / "negotiation.cfg"
    cfg.write_text(_ACCEPT_CFG.format(explicit=synth.EXPLICIT_LE, implicit=synth.IMPLICIT_LE,
                                      p14=synth.JPEG_LOSSLESS_P14, lossy=JPEG_EXTENDED, ct=CT,
                                      sc=SC, mr=MR))
    ct = tiny(s, "negotiation", 2, size=64)
    lossy_path = s.work / "lossy.dcm"
    subprocess.run([str(BIN / "dcmcjpeg"), "+ee", str(ct[1].path), str(lossy_path)], check=True,
                   capture_output=True)
    lossy = synth.Image(lossy_path, ct[1].sop_class, ct[1].sop_instance, ct[1].study_uid,
                        ct[1].series_uid, ct[1].patient_name, ct[1].patient_id, JPEG_EXTENDED,
                        ct[1].rows, ct[1].cols)
    storescp(s, "storescp", DICOM_PORT, "STORESCP", "-xf", str(cfg), "Narrow")
    s.server("storescp-all", [BIN / "storescp", "-v", "-aet", "STORESCP", "+xa", "-od",
                              s.work, CALLBACK_PORT], CALLBACK_PORT)
    with s.capture():
        log1 = storescu(s, "storescu-mixed", ct[:1], "-xf", cfg, "Mixed", called="STORESCP")
        log2 = s.client("findscu", [BIN / "findscu", "-v", "-S", "-aet", "FINDSCU", "-aec",
                                    "STORESCP", *find_keys(), s.scp_ip, DICOM_PORT],
                        ok=range(256))
        log3 = storescu(s, "storescu-lossy", [lossy], "-xf", cfg, "Lossy", called="STORESCP",
                        port=CALLBACK_PORT)
    expect_count(log1, r"Received Store Response \(Success\)", 1, "storescu-mixed")
    expect_count(log3, r"Received Store Response \(Success\)", 1, "storescu-lossy")
    if not re.search(r"(?i)no.*presentation context|rejected|not supported", log2):
        raise PeerError("findscu was not refused:\n" + log2[-2000:])
    # findscu gives up on the refused association in its own way: read it off the wire.
    sent = pdu_types(s.pcap, DICOM_PORT, from_server=False)
    outcome2 = ("released" if sent.count(0x05) >= 2 else "aborted" if 0x07 in sent
                else "closed")
    return {"server_ports": [DICOM_PORT, CALLBACK_PORT], "associations": [
        association(s, "STORESCU", "STORESCP", DICOM_PORT, operations=store_ops(ct[:1])),
        association(s, "FINDSCU", "STORESCP", DICOM_PORT, outcome=outcome2),
        association(s, "STORESCU", "STORESCP", CALLBACK_PORT, operations=store_ops([lossy]))]}


# dcmtk's words for C-MOVE statuses (DU_cmoveStatusString) -> the codes (PS3.4 C.4.2.1.5).
_MOVE_STATUS = {"Success": "0x0000", "MoveDestinationUnknown": "0xA801",
                "OutOfResourcesSubOperations": "0xA702",
                "OutOfResourcesNumberOfMatches": "0xA701"}


@scenario("findings-move", "move-failures.pcap",
          "movescu -> dcmqrscp: a C-MOVE to an AE the archive does not know (0xA801), then one "
          "to a known AE whose host refuses the TCP connection (nothing listens on its port "
          "11114); then echoscu tries port 104 of the archive host, where nothing listens",
          sample=False)
def move_failures(s: Session, p: dict[str, Any]) -> Truth:
    hosts = {"downdest": ("DOWNDEST", s.scu_ip, DOWN_PORT)}
    content = qr_archive(s, studies=1, images_per_study=2, hosts=hosts)
    study = content[0][0].study_uid
    logs = []
    with s.capture():
        for dest in ("UNKNOWNAE", "DOWNDEST"):
            logs.append(s.client(f"movescu-{dest}", [
                BIN / "movescu", "-v", "-S", "-aet", "MOVESCU", "-aec", "ARCHIVE", "-aem", dest,
                "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", s.scp_ip,
                DICOM_PORT], ok=range(256)))
        down = s.client("echoscu-down", [BIN / "echoscu", "-v", "-aet", "ECHOSCU", "-aec",
                                         "ARCHIVE", s.scp_ip, 104], ok=range(1, 256))
    if "refused" not in down.lower():
        raise PeerError("echoscu was not refused:\n" + down[-2000:])
    statuses = []
    for log in logs:
        m = re.findall(r"Received Final Move Response \((?:Refused: )?(\w+)", log)
        if not m or m[-1] not in _MOVE_STATUS:
            raise PeerError("movescu logged no known final status:\n" + log[-3000:])
        statuses.append(_MOVE_STATUS[m[-1]])
    if statuses != ["0xA801", "0xA702"]:
        raise PeerError(f"unknown destination not refused with 0xA801: {statuses}")
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "MOVESCU", "ARCHIVE", DICOM_PORT, operations=[
            op("C-MOVE", st, sop_class=STUDY_MOVE,
               move_destination=dest)])
        for st, dest in zip(statuses, ("UNKNOWNAE", "DOWNDEST"), strict=True)]}


@scenario("findings-mpps-open", "mpps-open.pcap",
          "pynetdicom MPPS SCU: two N-CREATEs (IN PROGRESS); one gets an N-SET that leaves it "
          "IN PROGRESS, neither is ever COMPLETED or DISCONTINUED", sample=False)
def mpps_open(s: Session, p: dict[str, Any]) -> Truth:
    a, b = synth.uid("findings-mpps", "a"), synth.uid("findings-mpps", "b")
    s.server("nserver", s.python("nserver", "--port", DICOM_PORT, "--aet", "RIS"), DICOM_PORT)
    with s.capture():
        log = s.client("mpps-open", fpeer("mpps-open", "--host", s.scp_ip, "--port", DICOM_PORT,
                                          "--aet", "CTSCANNER", "--called", "RIS",
                                          "--instance-a", a, "--instance-b", b))
    res = pnd_json(log)
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "CTSCANNER", "RIS", DICOM_PORT, operations=[
            op("N-CREATE", res["N-CREATE-A"], sop_class=MPPS_CLASS, sop_instance=a),
            op("N-CREATE", res["N-CREATE-B"], sop_class=MPPS_CLASS, sop_instance=b),
            op("N-SET", res["N-SET-B"], sop_class=MPPS_CLASS, sop_instance=b)])]}


@scenario("findings-commit-silent", "commit-no-report.pcap",
          "pynetdicom storage commitment: the SCP accepts the N-ACTION and never sends the "
          "N-EVENT-REPORT; the SCU waits 1.5 s, then releases", sample=False, count=2)
def commit_silent(s: Session, p: dict[str, Any]) -> Truth:
    s.server("commit-silent", fpeer("commit-silent", "--port", DICOM_PORT, "--aet", "ARCHIVE"),
             DICOM_PORT)
    with s.capture():
        log = s.client("commit", s.python("commit", "--host", s.scp_ip, "--port", DICOM_PORT,
                                          "--aet", "CTSCANNER", "--called", "ARCHIVE",
                                          "--count", p["count"], "--timeout", "1.5"))
    res = pnd_json(log)
    if res["N-EVENT-REPORT"]:
        raise PeerError(f"a report arrived after all: {res}")
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "CTSCANNER", "ARCHIVE", DICOM_PORT, operations=[
            op("N-ACTION", res["N-ACTION"], sop_class=COMMIT_CLASS, action_type=1,
               references=p["count"])])]}


@scenario("findings-async", "async-burst.pcap",
          "pynetdicom SCU sends three C-ECHO-RQs before reading a response, on an association "
          "with no asynchronous operations window (one outstanding request allowed)",
          sample=False, count=3)
def async_burst(s: Session, p: dict[str, Any]) -> Truth:
    store_scp(s)
    with s.capture():
        log = s.client("echo-burst", fpeer("echo-burst", "--host", s.scp_ip, "--port",
                                           DICOM_PORT, "--aet", "BURSTSCU", "--called",
                                           "ARCHIVE", "--count", p["count"]))
    res = pnd_json(log)
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "BURSTSCU", "ARCHIVE", DICOM_PORT,
                    operations=[op("C-ECHO", st) for st in res["C-ECHO"]])]}


@scenario("findings-idle", "idle-timeout.pcap",
          "pynetdicom SCU sends a C-ECHO, then stays idle; the pynetdicom SCP's network timeout "
          "(1 s) expires and it aborts the association", sample=False, idle=3.0, timeout=1.0)
def idle_timeout(s: Session, p: dict[str, Any]) -> Truth:
    store_scp(s, "--network-timeout", p["timeout"])
    with s.capture():
        log = s.client("idle", fpeer("idle", "--host", s.scp_ip, "--port", DICOM_PORT,
                                     "--aet", "IDLESCU", "--called", "ARCHIVE",
                                     "--idle", p["idle"]))
    res = pnd_json(log)
    if res["alive_after_idle"]:
        raise PeerError(f"the SCP did not drop the idle association: {res}")
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "IDLESCU", "ARCHIVE", DICOM_PORT, outcome="aborted",
                    aborted_by="acceptor", abort={"source": 0},
                    operations=[op("C-ECHO", res["C-ECHO"])])]}


@scenario("findings-zero-window", "zero-window.pcap",
          "pynetdicom over IPv6: the storage SCP stops reading for 2 s in the middle of a "
          "128 KB data set with a 4 KB socket receive buffer, so its TCP window drops to zero "
          "(IPv6: every frame takes the analyzer's slow path, where the window is read)",
          sample=False, stall=2.0, rcvbuf=4096)
def zero_window(s: Session, p: dict[str, Any]) -> Truth:
    scp6 = s.bed.ip6(SCP)
    images = synth.ct_series(s.work / "zw", key="findings-zw", count=1, rows=256, cols=256,
                             patient=3)
    store_scp(s, "--stall", p["stall"], "--rcvbuf", p["rcvbuf"], bind=scp6)
    with s.capture():
        log = s.client("store", s.python("store", "--host", scp6, "--port", DICOM_PORT, "--aet",
                                         "PYSTORESCU", "--called", "ARCHIVE",
                                         *[i.path for i in images]))
    res = pnd_json(log)
    ops = [op("C-ECHO", res["C-ECHO"])]
    ops += [dict(o, status=st) for o, st in zip(store_ops(images), res["C-STORE"], strict=True)]
    return {"server_ports": [DICOM_PORT], "ip_version": 6, "associations": [
        association(s, "PYSTORESCU", "ARCHIVE", DICOM_PORT, operations=ops, ipv6=True)]}

