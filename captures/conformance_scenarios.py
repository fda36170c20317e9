"""Scenarios for the conformance captures in captures/conformance/: real peers configured to differ.

Each capture holds peers whose conformance we chose, so that what ``dicomsniff conformance``
derives from the wire can be checked against what each peer was configured to support:

* ``conf-storage``: one dcmtk storescu (``-xs +C -R``: JPEG Lossless SV1 and the uncompressed
  syntaxes combined in one presentation context per SOP class) sends two CT images and one MR
  image to four dcmtk storescp configured differently: default (uncompressed only), ``+xs``
  (prefers JPEG Lossless), ``+xi`` (Implicit VR Little Endian only) and a restricted profile
  (``-xf``: CT only, JPEG Lossless or Explicit VR Little Endian); a second storescu (``-xb +C -R``,
  Explicit VR Big Endian first) stores one CT to the default storescp.
* ``conf-roles``: pynetdicom viewer -> pynetdicom PACS (``conformance_peers.py``): contexts
  accepted and refused for their abstract syntax or transfer syntax, SCP/SCU role selection
  for a C-GET, SOP class extended negotiation, user identity, the asynchronous operations
  window, different max PDU lengths; C-ECHO, C-STORE, C-FIND, C-GET with its C-STORE
  sub-operation on the same association.
* ``conf-before`` / ``conf-after``: the same storescu (``-xs +C -R``, six CT and one MR) to the
  AE title ARCHIVE, before and after "an upgrade": before, dcmtk storescp ``+xs``; after, a
  pynetdicom storage SCP behind the same AE title and port (another implementation class UID
  and version name, max PDU 65536, CT in Explicit/Implicit VR Little Endian only so MR is
  refused and JPEG never chosen, 0.12 s per C-STORE and 0xA700 for every third).

They are not part of the sample corpus (``sample=False``). Record them with::

    sudo python3 captures/record.py --out captures/conformance --prefix dsconf \\
        $(python3 captures/record.py --list | awk '/^conf-/ {print $1}')

Ground truth is what the peers were told to support, checked against their own logs (dcmtk's
``-d`` negotiation dumps and store responses, the pynetdicom peers' JSON summaries).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.uid import generate_uid

from . import synth
from .scenarios import (
    BIN,
    CT,
    DICOM_PORT,
    OK,
    STUDY_FIND,
    STUDY_GET,
    VERIFICATION,
    Truth,
    association,
    expect_count,
    op,
    pnd_json,
    scenario,
    store_ops,
)
from .session import PeerError, Session

CONFORMANCE_PEERS = Path(__file__).with_name("conformance_peers.py")
MR = "1.2.840.10008.5.1.4.1.1.4"
JPEG_LS1 = synth.JPEG_LOSSLESS_SV1
IMPLICIT, EXPLICIT, BIG = synth.IMPLICIT_LE, synth.EXPLICIT_LE, synth.EXPLICIT_BE
JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
# storescu -xs +C: one context per SOP class, JPEG Lossless SV1 first, then the uncompressed.
LOSSLESS_COMBINED = [JPEG_LS1, EXPLICIT, BIG, IMPLICIT]
BIG_FIRST = [BIG, EXPLICIT, IMPLICIT]  # storescu -xb
STORE_OK = r"Received Store Response\n(?:D: .*\n)*?D: DIMSE Status\s+: 0x0000: Success"
PORTS = {"ARCHIVE_UNC": 11112, "ARCHIVE_JPEG": 11113, "ARCHIVE_IMPL": 11114, "ARCHIVE_CT": 11115}

_CT_ONLY_CFG = """\
[[TransferSyntaxes]]
[Lossless]
TransferSyntax1 = {jpeg}
TransferSyntax2 = {explicit}

[[PresentationContexts]]
[CTOnly]
PresentationContext1 = {ct}\\Lossless
PresentationContext2 = {verification}\\Lossless

[[Profiles]]
[CTOnly]
PresentationContexts = CTOnly
"""


def cpeer(role: str, *args: str | int | Path) -> list[str]:
    """argv for a peer from :mod:`captures.conformance_peers`."""
    return [sys.executable, str(CONFORMANCE_PEERS), role, *map(str, args)]


def mr_from_ct(ct: synth.Image, out: Path, key: str) -> synth.Image:
    """The same synthetic image as MR Image Storage (another SOP class, same pixels)."""
    ds = dcmread(ct.path)
    sop = generate_uid(prefix=None, entropy_srcs=[key, "mr", ct.sop_instance])
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = MR
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.Modality = "MR"
    for kw in ("KVP", "RescaleIntercept", "RescaleSlope"):
        if kw in ds:
            delattr(ds, kw)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out, enforce_file_format=True)
    return synth.Image(out, MR, sop, ct.study_uid, ct.series_uid, ct.patient_name,
                       ct.patient_id, synth.EXPLICIT_LE, ct.rows, ct.cols)


def image_files(s: Session, key: str, count: int, ts: str) -> list[synth.Image]:
    """``count`` CT images and one MR image (last) in transfer syntax ``ts``. Debian's storescu
    3.6.7 converts neither to nor from JPEG, so each SCP gets the files in the syntax it will
    choose; the proposal (``-xs +C -R``) is the same for both."""
    src = synth.ct_series(s.work / "ct", key=key, count=count, rows=32, cols=32, patient=1)
    files = [*src, mr_from_ct(src[0], s.work / "mr" / "mr.dcm", key)]
    return [synth.convert(i, ts, s.work / ts / f"{n}.dcm") for n, i in enumerate(files)]


# dcmtk's dump names (dcmuid.cc) of the syntaxes these scenarios use.
DCMTK_NAMES = {"CTImageStorage": CT, "MRImageStorage": MR, "VerificationSOPClass": VERIFICATION,
               "LittleEndianExplicit": EXPLICIT, "LittleEndianImplicit": IMPLICIT,
               "BigEndianExplicit": BIG,
               "JPEGLossless:Non-hierarchical-1stOrderPrediction": JPEG_LS1}


def negotiated(log: str, pdu: str = "AC") -> dict[str, Any]:
    """Abstract syntax -> proposed transfer syntaxes (``pdu="RQ"``) or the answer
    ('accepted <ts>' or dcmtk's words for the refusal) from storescu -d's dump of the
    A-ASSOCIATE-RQ/-AC."""
    begin = f"BEGIN A-ASSOCIATE-{pdu}"
    if begin not in log:
        return {}
    part = log.split(begin, 1)[1].split(f"END A-ASSOCIATE-{pdu}", 1)[0]
    out: dict[str, Any] = {}
    for block in re.split(r"Context ID:\s+", part)[1:]:
        result = re.match(r"\d+ \((.+?)\)", block)
        abstract = re.search(r"Abstract Syntax:\s+=?(\S+)", block)
        if not result or not abstract:
            continue
        sop = DCMTK_NAMES.get(abstract.group(1), abstract.group(1))
        if pdu == "RQ":
            names = re.findall(r"^D:\s+=(\S+)$", block.split("Transfer Syntax(es):", 1)[-1],
                               re.M)
            out[sop] = [DCMTK_NAMES.get(n, n) for n in names]
        elif result.group(1) == "Accepted":
            ts = re.search(r"Accepted Transfer Syntax:\s+=?(\S+)", block)
            out[sop] = f"accepted {DCMTK_NAMES.get(ts.group(1), ts.group(1)) if ts else '?'}"
        else:
            out[sop] = result.group(1)
    return out


def ctx(cid: int, sop: str, proposed: list[str], result: int, ts: str | None) -> dict[str, Any]:
    return {"id": cid, "abstract_syntax": sop, "transfer_syntaxes": proposed, "result": result,
            "transfer_syntax": ts}


def _storescu(s: Session, name: str, aet: str, called: str, port: int,
              files: list[synth.Image], *opts: str, ok: Any = (0,)) -> str:
    return s.client(name, [BIN / "storescu", "-d", "-aet", aet, "-aec", called, *opts,
                           s.scp_ip, port, *[i.path for i in files]], ok=ok)


@scenario("conf-storage", "conf-storage.pcap",
          "storescu -xs +C -R (JPEG Lossless SV1 then uncompressed, one context per SOP class) "
          "stores 2 CT + 1 MR to four storescp: default (chooses Explicit VR LE), +xs (JPEG "
          "Lossless), +xi (Implicit VR LE only), -xf CT-only profile (MR refused); a storescu "
          "-xb (big endian first) stores 1 CT to the default one", sample=False)
def conf_storage(s: Session, p: dict[str, Any]) -> Truth:
    plain = image_files(s, "conf-storage", 2, EXPLICIT)
    jpeg = image_files(s, "conf-storage", 2, JPEG_LS1)
    cts = plain[:2]
    cfg = s.work / "ctonly.cfg"
    cfg.write_text(_CT_ONLY_CFG.format(jpeg=JPEG_LS1, explicit=EXPLICIT, ct=CT,
                                       verification=VERIFICATION))
    opts = {"ARCHIVE_UNC": [], "ARCHIVE_JPEG": ["+xs"], "ARCHIVE_IMPL": ["+xi"],
            "ARCHIVE_CT": ["-xf", str(cfg), "CTOnly"]}
    for aet, port in PORTS.items():
        s.server(aet.lower(), [BIN / "storescp", "-v", "-aet", aet, "-od", s.work, *opts[aet],
                               port], port)
    files = {"ARCHIVE_UNC": plain, "ARCHIVE_IMPL": plain, "ARCHIVE_JPEG": jpeg,
             "ARCHIVE_CT": jpeg}
    logs = {}
    with s.capture():
        for aet, port in PORTS.items():
            logs[aet] = _storescu(s, f"storescu-{aet}", "MODALITY", aet, port, files[aet],
                                  "-xs", "+C", "-R", "-nh")
        logs["WS"] = _storescu(s, "storescu-ws", "WORKSTATION", "ARCHIVE_UNC",
                               PORTS["ARCHIVE_UNC"], cts[:1], "-xb", "+C", "-R")
    # What each storescp was configured to choose (and storescu's dump must say so).
    chosen = {"ARCHIVE_UNC": EXPLICIT, "ARCHIVE_JPEG": JPEG_LS1, "ARCHIVE_IMPL": IMPLICIT,
              "ARCHIVE_CT": JPEG_LS1}
    assocs = []
    for aet, port in PORTS.items():
        got = negotiated(logs[aet])
        if negotiated(logs[aet], "RQ") != {CT: LOSSLESS_COMBINED, MR: LOSSLESS_COMBINED}:
            raise PeerError(f"storescu to {aet} proposed {negotiated(logs[aet], 'RQ')}")
        want_ct = f"accepted {chosen[aet]}"
        want_mr = "Abstract Syntax Not Supported" if aet == "ARCHIVE_CT" else want_ct
        if not got.get(CT, "").startswith(want_ct) or (aet != "ARCHIVE_CT" and
                                                          got.get(MR) != want_ct):
            raise PeerError(f"{aet}: negotiated {got}, expected CT {want_ct}, MR {want_mr}")
        if aet == "ARCHIVE_CT" and "accepted" in got.get(MR, "accepted"):
            raise PeerError(f"{aet}: MR was not refused: {got}")
        sent = files[aet][:2] if aet == "ARCHIVE_CT" else files[aet]
        expect_count(logs[aet], STORE_OK, len(sent),
                     f"storescu to {aet}")
        contexts = [ctx(1, CT, LOSSLESS_COMBINED, 0, chosen[aet]),
                    ctx(3, MR, LOSSLESS_COMBINED, 3 if aet == "ARCHIVE_CT" else 0,
                        None if aet == "ARCHIVE_CT" else chosen[aet])]
        assocs.append(association(s, "MODALITY", aet, port,
                                  operations=store_ops(sent, chosen[aet]),
                                  presentation_contexts=contexts))
    got = negotiated(logs["WS"])
    if negotiated(logs["WS"], "RQ") != {CT: BIG_FIRST}:
        raise PeerError(f"storescu -xb proposed {negotiated(logs['WS'], 'RQ')}")
    if got.get(CT) != f"accepted {EXPLICIT}":
        raise PeerError(f"WORKSTATION: negotiated {got}")
    expect_count(logs["WS"], STORE_OK, 1, "storescu -xb")
    assocs.append(association(s, "WORKSTATION", "ARCHIVE_UNC", PORTS["ARCHIVE_UNC"],
                              operations=store_ops(cts[:1], EXPLICIT),
                              presentation_contexts=[ctx(1, CT, BIG_FIRST, 0, EXPLICIT)]))
    return {"server_ports": list(PORTS.values()), "associations": assocs}


@scenario("conf-roles", "conf-roles.pcap",
          "pynetdicom VIEWER -> pynetdicom PACS with chosen contexts: MR refused (abstract "
          "syntax), CT in JPEG 2000 only refused (transfer syntax), CT SCP role selected for "
          "C-GET, extended negotiation for Study Root FIND, user identity, asynchronous window, "
          "max PDU 65536/32768; C-ECHO, C-STORE, C-FIND, C-GET with a C-STORE sub-operation",
          sample=False)
def conf_roles(s: Session, p: dict[str, Any]) -> Truth:
    ct = synth.ct_series(s.work / "ct", key="conf-roles", count=1, rows=32, cols=32,
                         patient=2)[0]
    ct = synth.convert(ct, IMPLICIT, s.work / "ct-implicit.dcm")
    s.server("pacs", cpeer("pacs", "--port", DICOM_PORT, "--aet", "PACS"), DICOM_PORT)
    with s.capture():
        log = s.client("viewer", cpeer("viewer", "--host", s.scp_ip, "--port", DICOM_PORT,
                                       "--aet", "VIEWER", "--called", "PACS", ct.path))
    got = pnd_json(log)
    want_accepted = sorted({f"{VERIFICATION} {IMPLICIT}", f"{CT} {IMPLICIT}",
                            f"{STUDY_FIND} {IMPLICIT}", f"{STUDY_GET} {IMPLICIT}"})
    want_refused = sorted({f"{CT} 4", f"{MR} 3"})
    if (got.get("accepted") != want_accepted or got.get("rejected") != want_refused
            or got.get("C-ECHO") != OK or got.get("C-STORE") != OK
            or got.get("C-FIND", [])[-1:] != [OK] or got.get("C-GET", [])[-1:] != [OK]
            or got.get("received") != [ct.sop_instance]):
        raise PeerError(f"viewer did not do what it was told: {got}")
    contexts = [ctx(1, VERIFICATION, [IMPLICIT], 0, IMPLICIT),
                ctx(3, CT, [IMPLICIT], 0, IMPLICIT),
                ctx(5, CT, [JPEG2000_LOSSLESS], 4, None),
                ctx(7, MR, [IMPLICIT], 3, None),
                ctx(9, STUDY_FIND, [IMPLICIT], 0, IMPLICIT),
                ctx(11, STUDY_GET, [IMPLICIT], 0, IMPLICIT)]
    ops = [op("C-ECHO"), op("C-STORE", sop_class=CT, sop_instance=ct.sop_instance,
                           transfer_syntax=IMPLICIT),
           op("C-FIND", pending=len(got["C-FIND"]) - 1),
           op("C-GET", sub_operations={"completed": 1, "failed": 0, "warning": 0},
              pending=len(got["C-GET"]) - 1),
           op("C-STORE", invoker="acceptor", sop_class=CT, sop_instance=ct.sop_instance,
              transfer_syntax=IMPLICIT)]
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "VIEWER", "PACS", DICOM_PORT, operations=ops,
                    presentation_contexts=contexts,
                    max_pdu={"requestor": 65536, "acceptor": 32768},
                    role_selection=[{"sop_class": CT, "requested": {"scu": True, "scp": True},
                                     "accepted": {"scu": True, "scp": True}}],
                    extended_negotiation={"sop_class": STUDY_FIND, "requested": "01",
                                          "accepted": "00"},
                    user_identity={"type": 1, "response_requested": True},
                    async_ops={"requested": [2, 1], "accepted": [1, 1]})]}


_BEFORE_AFTER = ("the same storescu -xs +C -R (6 CT + 1 MR, JPEG Lossless first) to AE ARCHIVE "
                 "on port 11112")


def _before_after(s: Session, after: bool) -> Truth:
    files = image_files(s, "conf-upgrade", 6, JPEG_LS1 if not after else EXPLICIT)
    cts, mr = files[:-1], files[-1]
    if after:
        s.server("archive", cpeer("archive", "--port", DICOM_PORT, "--aet", "ARCHIVE",
                                  "--delay", "0.12", "--statuses", "0x0000,0x0000,0xA700",
                                  "--max-pdu", 65536), DICOM_PORT)
    else:
        s.server("storescp", [BIN / "storescp", "-v", "-aet", "ARCHIVE", "+xs", "-od", s.work,
                              DICOM_PORT], DICOM_PORT)
    with s.capture():
        log = _storescu(s, "storescu", "MODALITY", "ARCHIVE", DICOM_PORT, files, "-xs", "+C",
                        "-R", "-nh", ok=(0, 1) if after else (0,))
    if negotiated(log, "RQ") != {CT: LOSSLESS_COMBINED, MR: LOSSLESS_COMBINED}:
        raise PeerError(f"storescu proposed {negotiated(log, 'RQ')}")
    got = negotiated(log)
    chosen = EXPLICIT if after else JPEG_LS1
    want = {CT: f"accepted {chosen}",
            MR: "Abstract Syntax Not Supported" if after else f"accepted {chosen}"}
    if {k: got.get(k) for k in want} != want:
        raise PeerError(f"negotiated {got}, expected {want}")
    statuses = ["0x0000", "0x0000", "0xA700"] * 2 if after else ["0x0000"] * 6
    found = [c.upper().replace("0X", "0x") for c in
             re.findall(r"DIMSE Status\s+: (0x[0-9A-Fa-f]{4})", log)]
    if found != statuses + ([] if after else ["0x0000"]):
        raise PeerError(f"storescu saw statuses {found}")
    ops = [dict(o, status=st) for o, st in zip(store_ops(cts, chosen), statuses, strict=True)]
    if not after:
        ops += store_ops([mr], chosen)
    contexts = [ctx(1, CT, LOSSLESS_COMBINED, 0, chosen),
                ctx(3, MR, LOSSLESS_COMBINED, 3 if after else 0, None if after else chosen)]
    return {"server_ports": [DICOM_PORT], "associations": [
        association(s, "MODALITY", "ARCHIVE", DICOM_PORT, operations=ops,
                    presentation_contexts=contexts,
                    max_pdu={"requestor": 16384, "acceptor": 65536 if after else 16384})]}


@scenario("conf-before", "conf-before.pcap",
          f"before an upgrade: {_BEFORE_AFTER}, served by dcmtk storescp +xs (JPEG Lossless "
          "chosen, MR accepted, every C-STORE Success)", sample=False)
def conf_before(s: Session, p: dict[str, Any]) -> Truth:
    return _before_after(s, after=False)


@scenario("conf-after", "conf-after.pcap",
          f"after the upgrade: {_BEFORE_AFTER}, now served by a pynetdicom SCP (new "
          "implementation, max PDU 65536, CT in Explicit/Implicit VR LE only: JPEG never "
          "chosen, MR refused; 0.12 s per C-STORE, every third 0xA700)", sample=False)
def conf_after(s: Session, p: dict[str, Any]) -> Truth:
    return _before_after(s, after=True)


ORTHANC = "/usr/sbin/Orthanc"
ORTHANC_PORT = 4242
ORTHANC_ACCEPTS = [IMPLICIT, EXPLICIT]  # its AcceptedTransferSyntaxes: no compression at all


@scenario("conf-orthanc", "conf-orthanc.pcap",
          "Orthanc 1.10 restricted to Implicit and Explicit VR LE (AcceptedTransferSyntaxes): "
          "storescu -xs +C -R (JPEG Lossless first, combined) gets an uncompressed syntax; "
          "storescu -xs -R (JPEG Lossless in a context of its own) has that context refused "
          "(Orthanc answers 'abstract syntax not supported', result 3, though CT is accepted in "
          "the other context)",
          sample=False)
def conf_orthanc(s: Session, p: dict[str, Any]) -> Truth:
    import json

    files = image_files(s, "conf-orthanc", 1, EXPLICIT)[:1]
    cfg = {"Name": "DICOMSNIFF-CONF", "StorageDirectory": str(s.work / "db"),
           "IndexDirectory": str(s.work / "db"), "HttpServerEnabled": False,
           "DicomServerEnabled": True, "DicomAet": "ORTHANC", "DicomPort": ORTHANC_PORT,
           "DicomCheckCalledAet": False, "AcceptedTransferSyntaxes": ORTHANC_ACCEPTS,
           "UnknownSopClassAccepted": False, "Plugins": []}
    path = s.work / "orthanc.json"
    path.write_text(json.dumps(cfg, indent=1))
    s.server("orthanc", [ORTHANC, path], ORTHANC_PORT)
    with s.capture():
        combined = _storescu(s, "storescu-combined", "MODALITY", "ORTHANC", ORTHANC_PORT, files,
                             "-xs", "+C", "-R")
        separate = _storescu(s, "storescu-separate", "MODALITY", "ORTHANC", ORTHANC_PORT, files,
                             "-xs", "-R")
    assocs = []
    for log, contexts_of in ((combined, "combined"), (separate, "separate")):
        expect_count(log, STORE_OK, 1, f"storescu ({contexts_of})")
        got = negotiated(log)
        chosen = got.get(CT, "").removeprefix("accepted ")
        if chosen not in ORTHANC_ACCEPTS:
            raise PeerError(f"Orthanc chose {got} ({contexts_of}), configured {ORTHANC_ACCEPTS}")
        rq = _contexts_of(log)
        contexts = []
        for cid, proposed, answer in rq:
            ok = answer.startswith("accepted ")
            ts = answer.removeprefix("accepted ") if ok else None
            if ok and ts not in ORTHANC_ACCEPTS:
                raise PeerError(f"Orthanc accepted {ts}, configured {ORTHANC_ACCEPTS}")
            if not ok and any(t in ORTHANC_ACCEPTS for t in proposed):
                raise PeerError(f"Orthanc refused {proposed} though it accepts some of them")
            contexts.append(ctx(cid, CT, proposed, 0 if ok else DCMTK_RESULTS[answer], ts))
        if contexts_of == "separate" and all(c["result"] == 0 for c in contexts):
            raise PeerError("the JPEG Lossless context was not refused")
        assocs.append(association(s, "MODALITY", "ORTHANC", ORTHANC_PORT,
                                  operations=store_ops(files, chosen),
                                  presentation_contexts=contexts))
    return {"server_ports": [ORTHANC_PORT], "associations": assocs}


# dcmtk's words for a presentation context result (PS3.8 Table 9-18).
DCMTK_RESULTS = {"User Rejection": 1, "Provider Rejection": 2,
                 "Abstract Syntax Not Supported": 3, "Transfer Syntaxes Not Supported": 4}


def _contexts_of(log: str) -> list[tuple[int, list[str], str]]:
    """(context id, proposed transfer syntaxes, answer) of every context in storescu -d's
    dumps, for logs where one SOP class has several contexts."""
    rq = log.split("BEGIN A-ASSOCIATE-RQ", 1)[1].split("END A-ASSOCIATE-RQ", 1)[0]
    ac = log.split("BEGIN A-ASSOCIATE-AC", 1)[1].split("END A-ASSOCIATE-AC", 1)[0]
    answers = {}
    for block in re.split(r"Context ID:\s+", ac)[1:]:
        m = re.match(r"(\d+) \((.+?)\)", block)
        ts = re.search(r"Accepted Transfer Syntax:\s+=?(\S+)", block)
        if m:
            answers[int(m.group(1))] = (f"accepted {DCMTK_NAMES.get(ts.group(1), ts.group(1))}"
                                        if m.group(2) == "Accepted" and ts else m.group(2))
    out = []
    for block in re.split(r"Context ID:\s+", rq)[1:]:
        cid = int(re.match(r"(\d+)", block).group(1))  # type: ignore[union-attr]
        names = re.findall(r"^D:\s+=(\S+)$", block.split("Transfer Syntax(es):", 1)[-1], re.M)
        out.append((cid, [DCMTK_NAMES.get(n, n) for n in names], answers.get(cid, "?")))
    return out
