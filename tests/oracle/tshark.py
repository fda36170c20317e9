"""Wireshark's DICOM dissector as an independent oracle for dicomsniff.

``tshark_dicom(pcap, ports)`` runs ``/usr/bin/tshark`` twice, in parallel, and normalizes
what the DICOM dissector (``packet-dcm.c``) decoded into plain dataclasses, one
:class:`Connection` per TCP connection:

1. ``-T fields`` over every DICOM frame and TCP segment: frame number, time, endpoints,
   sequence numbers and the lists of ``dicom.pdu.type`` / ``dicom.pdu.len`` values (one
   per PDU in the frame).  This gives the PDU sequence, the per-direction counts and the
   stream bytes tshark could not place in any PDU, cheaply even for large captures.
2. ``-T pdml`` (XML tree) over just the frames that hold association PDUs or the last
   fragment of a command PDV (``dicom.pdu.type in {1,2,3,7} || dicom.pdv.flags & 1``).
   The tree keeps presentation context items and command elements grouped, which flat
   ``-T fields`` output loses; restricting it keeps pixel data out of the XML (a 31 MB
   capture of CT images gives 350 MB of PDML unfiltered, 7 MB filtered).

Preferences that matter (``tshark -G currentprefs | grep -i dicom``):

* ``-d tcp.port==P,dicom`` per port: the ``dicom_tcp`` heuristic (on by default) only
  claims a connection whose A-ASSOCIATE-RQ is in the capture; with ``-d`` a connection
  captured mid-way is still decoded.
* ``tcp.desegment_tcp_streams:TRUE`` and ``tcp.reassemble_out_of_order:TRUE``: without
  the latter tshark 4.0 drops PDUs whose TCP segments arrive out of order.
* ``dicom.pdv_reassemble:TRUE``: merge a command split over several PDVs, decoded in the
  PDV with the last-fragment bit.
* ``dicom.tag_tree:TRUE``: emit every element as ``dicom.tag`` plus a typed
  ``dicom.tag.value.{16u,32u,str,...}``; otherwise elements are unnamed text nodes.

Frame numbers are Wireshark's, 1-based.  A PDU spanning several TCP segments is reported
in the frame of its last segment; a command spanning several PDVs in the frame of its
last fragment; one frame may hold several PDUs.

Known tshark 4.0 fault handled here: after a data set tshark cannot parse element by
element (encapsulated JPEG pixel data, Deflated Explicit VR Little Endian), it keeps an
"open tag" for that presentation context and decodes the next PDV on it - the
C-STORE-RSP - as a continuation of a bogus private tag, e.g. ``(d8ff,e0ff) 17994 Private
Tag <incomplete>`` from the JPEG SOI/APP0 markers.  Such a command is re-decoded here from
its raw bytes (Implicit VR Little Endian, PS3.7 section 6.3.1; PDV header PS3.8 section
9.3.5.1 and Annex E) and flagged in :attr:`DimseMessage.tshark_fault` and
:attr:`OracleResult.faults`, so callers can tell tshark's own decode from the repair.
Every other command tshark decodes is cross-checked against the same raw decode (command
field, message IDs, status); a disagreement is reported as a ``tshark-raw-disagree`` fault.
"""

from __future__ import annotations

import functools
import re
import shutil
import struct
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

TSHARK = "/usr/bin/tshark"

PREFERENCES: tuple[tuple[str, str], ...] = (
    ("tcp.desegment_tcp_streams", "TRUE"),
    ("tcp.reassemble_out_of_order", "TRUE"),
    ("tcp.analyze_sequence_numbers", "TRUE"),  # needed by out-of-order reassembly
    ("tcp.relative_sequence_numbers", "TRUE"),  # Connection.undecoded counts from 1
    ("dicom.pdv_reassemble", "TRUE"),
    ("dicom.tag_tree", "TRUE"),
)

# Frames that need the PDML tree: association set-up, reject, abort, and the PDV that
# completes a command (command bit set; a reassembled command is decoded in the last one).
PDML_FILTER = "dicom.pdu.type in {1,2,3,7} || dicom.pdv.flags & 0x01"

PDU_NAMES: dict[int, str] = {
    1: "A-ASSOCIATE-RQ",
    2: "A-ASSOCIATE-AC",
    3: "A-ASSOCIATE-RJ",
    4: "P-DATA-TF",
    5: "A-RELEASE-RQ",
    6: "A-RELEASE-RP",
    7: "A-ABORT",
}

# PS3.7 section 9.3 / 10.3 command fields (responses have bit 15 set).
COMMAND_NAMES: dict[int, str] = {
    0x0001: "C-STORE-RQ", 0x8001: "C-STORE-RSP",
    0x0010: "C-GET-RQ", 0x8010: "C-GET-RSP",
    0x0020: "C-FIND-RQ", 0x8020: "C-FIND-RSP",
    0x0021: "C-MOVE-RQ", 0x8021: "C-MOVE-RSP",
    0x0030: "C-ECHO-RQ", 0x8030: "C-ECHO-RSP",
    0x0100: "N-EVENT-REPORT-RQ", 0x8100: "N-EVENT-REPORT-RSP",
    0x0110: "N-GET-RQ", 0x8110: "N-GET-RSP",
    0x0120: "N-SET-RQ", 0x8120: "N-SET-RSP",
    0x0130: "N-ACTION-RQ", 0x8130: "N-ACTION-RSP",
    0x0140: "N-CREATE-RQ", 0x8140: "N-CREATE-RSP",
    0x0150: "N-DELETE-RQ", 0x8150: "N-DELETE-RSP",
    0x0FFF: "C-CANCEL-RQ",
}
C_CANCEL = 0x0FFF
PENDING_STATUSES = frozenset({0xFF00, 0xFF01})

# Value representation of the command elements (PS3.7 Annex E), for the raw decoder.
_US = {0x0100, 0x0110, 0x0120, 0x0700, 0x0800, 0x0900, 0x0901, 0x1002, 0x1008,
       0x1020, 0x1021, 0x1022, 0x1023, 0x1031}
_UL = {0x0000}
_TEXT = {0x0002, 0x0003, 0x0600, 0x0902, 0x1000, 0x1001, 0x1030}

# Transfer syntaxes whose data sets tshark 4.0 cannot walk element by element.
DEFLATED = "1.2.840.10008.1.2.1.99"
_ENCAPSULATED_PREFIX = "1.2.840.10008.1.2.4."
_RLE = "1.2.840.10008.1.2.5"


class TsharkError(RuntimeError):
    """tshark failed or produced output this module cannot read."""


# --- result types ----------------------------------------------------------------------

@dataclass
class PduEvent:
    """One PDU as tshark reported it."""

    frame: int          # frame of the PDU's last TCP segment
    pdu_type: int       # 1..7 (PS3.8 section 9.3)
    sender: str         # "requestor" or "acceptor"
    time: float         # epoch seconds of that frame

    @property
    def name(self) -> str:
        return PDU_NAMES.get(self.pdu_type, f"PDU-0x{self.pdu_type:02X}")


@dataclass
class PresentationContext:
    """One presentation context: proposal from the RQ, answer from the AC."""

    id: int
    abstract_syntax: str | None = None
    transfer_syntaxes: list[str] = field(default_factory=list)  # proposed, in order
    result: int | None = None            # 0 acceptance, 1..4 rejections (PS3.8 9.3.3.2)
    transfer_syntax: str | None = None   # the one the acceptor chose


@dataclass
class Implementation:
    """User information items of one side (PS3.7 Annex D.3.3.2)."""

    max_pdu: int | None = None
    class_uid: str | None = None
    version_name: str | None = None


@dataclass
class Reject:
    """A-ASSOCIATE-RJ fields (PS3.8 section 9.3.4)."""

    frame: int
    result: int
    source: int
    reason: int


@dataclass
class Abort:
    """A-ABORT fields (PS3.8 section 9.3.8)."""

    frame: int
    by: str        # "requestor" or "acceptor"
    source: int
    reason: int


@dataclass
class DimseMessage:
    """One DIMSE command set, in the frame of its last fragment."""

    frame: int
    time: float
    sender: str                  # "requestor" or "acceptor"
    context_id: int
    command_field: int
    message_id: int | None = None
    responded_to: int | None = None          # Message ID Being Responded To
    status: int | None = None
    affected_sop_class: str | None = None
    affected_sop_instance: str | None = None
    requested_sop_class: str | None = None
    requested_sop_instance: str | None = None
    move_destination: str | None = None
    has_dataset: bool = False                # Command Data Set Type != 0x0101
    suboperations: dict[str, int] = field(default_factory=dict)  # remaining/completed/...
    tshark_fault: str | None = None          # set when decoded from raw bytes instead

    @property
    def command(self) -> str:
        return COMMAND_NAMES.get(self.command_field, f"0x{self.command_field:04X}")

    @property
    def is_response(self) -> bool:
        return bool(self.command_field & 0x8000)


@dataclass
class Exchange:
    """A request and the responses that name its Message ID (PS3.7 section 9.1.1)."""

    request: DimseMessage
    responses: list[DimseMessage] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return sum(1 for r in self.responses if r.status in PENDING_STATUSES)

    @property
    def final(self) -> DimseMessage | None:
        for rsp in reversed(self.responses):
            if rsp.status not in PENDING_STATUSES:
                return rsp
        return None


@dataclass
class Connection:
    """Everything tshark decoded on one TCP connection (one association)."""

    client: str                  # "ip:port" ("[v6]:port"): sent the RQ or opened TCP
    server: str
    stream: int                  # tshark's tcp.stream
    pdus: list[PduEvent] = field(default_factory=list)
    calling_ae: str | None = None
    called_ae: str | None = None
    contexts: dict[int, PresentationContext] = field(default_factory=dict)
    requestor: Implementation = field(default_factory=Implementation)
    acceptor: Implementation = field(default_factory=Implementation)
    reject: Reject | None = None
    aborts: list[Abort] = field(default_factory=list)
    messages: list[DimseMessage] = field(default_factory=list)
    # Bytes of each side's TCP stream that are in no PDU tshark reported: the part of a PDU
    # cut off by the end of the capture or a reset (tshark waits for the rest and shows
    # nothing), or bytes before the point where a mid-association capture resynchronised.
    undecoded: dict[str, int] = field(default_factory=lambda: {"requestor": 0, "acceptor": 0})

    @property
    def starts_mid_association(self) -> bool:
        """No A-ASSOCIATE-RQ seen: tshark resynchronised somewhere in the byte stream."""
        return not any(p.pdu_type == 1 for p in self.pdus)

    @property
    def key(self) -> tuple[str, str]:
        return self.client, self.server

    @property
    def server_port(self) -> int:
        return int(self.server.rsplit(":", 1)[1])

    def pdu_sequence(self, sender: str) -> list[tuple[int, str]]:
        """(frame, PDU name) sent by one side, in capture order."""
        return [(p.frame, p.name) for p in self.pdus if p.sender == sender]

    def pdu_counts(self) -> dict[str, dict[str, int]]:
        """PDU type name -> count, per side, like the analyzer's ``pdus`` field."""
        counts: dict[str, Counter[str]] = {"requestor": Counter(), "acceptor": Counter()}
        for pdu in self.pdus:
            counts[pdu.sender][pdu.name] += 1
        return {side: dict(c) for side, c in counts.items()}

    @property
    def outcome(self) -> str:
        """How the association ended, from the PDUs alone."""
        names = {p.name for p in self.pdus}
        if "A-ASSOCIATE-RJ" in names:
            return "rejected"
        if "A-ABORT" in names:
            return "aborted"
        if "A-RELEASE-RP" in names:
            return "released"
        return "incomplete"

    def exchanges(self) -> list[Exchange]:
        """Pair requests with responses by Message ID Being Responded To.

        A response answers the latest earlier request with that Message ID sent by the
        other side (N-EVENT-REPORT requests come from the acceptor).  C-CANCEL-RQ is
        neither and is left out.
        """
        out: list[Exchange] = []
        open_: dict[tuple[str, int], Exchange] = {}
        for msg in self.messages:
            if msg.command_field == C_CANCEL:
                continue
            if msg.is_response:
                requester = "acceptor" if msg.sender == "requestor" else "requestor"
                ex = open_.get((requester, msg.responded_to if msg.responded_to is not None
                                else -1))
                if ex is not None:
                    ex.responses.append(msg)
                continue
            ex = Exchange(msg)
            out.append(ex)
            if msg.message_id is not None:
                open_[(msg.sender, msg.message_id)] = ex
        return out


@dataclass
class TsharkFault:
    """A place where tshark's decode is known to be wrong and was repaired here."""

    frame: int
    connection: tuple[str, str]
    kind: str        # e.g. "command-after-encapsulated-dataset"
    detail: str


@dataclass
class OracleResult:
    """Normalized tshark view of a capture."""

    pcap: Path
    ports: list[int]
    connections: list[Connection]
    faults: list[TsharkFault]
    tshark_version: str
    seconds: float

    def by_key(self) -> dict[tuple[str, str], Connection]:
        """Connections keyed by (client, server); later reuse of a 4-tuple wins."""
        return {c.key: c for c in self.connections}

    def dicom_connections(self) -> list[Connection]:
        """Connections on which tshark saw at least one DICOM PDU."""
        return [c for c in self.connections if c.pdus]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data, with the derived per-connection views spelled out."""
        out = asdict(self)
        out["pcap"] = str(self.pcap)
        for conn, plain in zip(self.connections, out["connections"], strict=True):
            plain["outcome"] = conn.outcome
            plain["pdu_counts"] = conn.pdu_counts()
            plain["exchanges"] = [
                {"request_frame": ex.request.frame, "command": ex.request.command,
                 "message_id": ex.request.message_id,
                 "response_frames": [r.frame for r in ex.responses],
                 "pending": ex.pending, "status": ex.final.status if ex.final else None}
                for ex in conn.exchanges()]
        return out


# --- running tshark --------------------------------------------------------------------

def tshark_available() -> bool:
    """True if the tshark binary this oracle relies on is installed."""
    return shutil.which(TSHARK) is not None


@functools.cache
def tshark_version() -> str:
    """First line of ``tshark -v`` (quirks are version-specific)."""
    out = subprocess.run([TSHARK, "-v"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else "unknown"


def _base_args(pcap: Path, ports: Iterable[int], prefs: Mapping[str, str]) -> list[str]:
    args = [TSHARK, "-n", "-r", str(pcap)]
    for name, value in prefs.items():
        args += ["-o", f"{name}:{value}"]
    for port in sorted(set(ports)):
        args += ["-d", f"tcp.port=={port},dicom"]
    return args


_FIELDS = ("frame.number", "frame.time_epoch", "tcp.stream", "ip.src", "ipv6.src",
           "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport", "tcp.flags.syn",
           "tcp.flags.ack", "tcp.seq", "tcp.len", "dicom.pdu.type", "dicom.pdu.len")


@dataclass
class _Frame:
    number: int
    time: float
    stream: int
    src: str
    dst: str
    syn: bool
    ack: bool
    end_seq: int        # relative sequence number after this segment's payload
    pdu_types: list[int]
    pdu_bytes: int      # bytes of the PDUs reported in this frame (headers included)


def _endpoint(v4: str, v6: str, port: str) -> str:
    return f"{v4}:{port}" if v4 else f"[{v6}]:{port}"


def _first(value: str) -> str:
    """First occurrence of a field (ICMP errors embed a second IP/TCP header)."""
    return value.split(",", 1)[0]


@dataclass
class _FieldsRun:
    frames: list[_Frame] = field(default_factory=list)
    rc: int = -1
    stderr: str = "did not run"


def _run_fields(pcap: Path, ports: list[int], prefs: Mapping[str, str],
                out: _FieldsRun) -> None:
    """Pass 1: one line per frame with DICOM PDUs, a SYN (who opened TCP) or TCP payload."""
    args = _base_args(pcap, ports, prefs) + [
        "-Y", "dicom || tcp.flags.syn == 1 || tcp.len > 0", "-T", "fields",
        "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for name in _FIELDS:
        args += ["-e", name]
    proc = subprocess.run(args, capture_output=True, encoding="utf-8", errors="replace",
                          check=False)
    frames: list[_Frame] = []
    for line in proc.stdout.splitlines():
        cols = line.split("\t")
        if len(cols) != len(_FIELDS) or not cols[2]:
            continue
        num, t, stream, s4, s6, sp, d4, d6, dp, syn, ack, seq, tcp_len, pdus, lens = cols
        frames.append(_Frame(
            number=int(num), time=float(t or 0), stream=int(_first(stream)),
            src=_endpoint(_first(s4), _first(s6), _first(sp)),
            dst=_endpoint(_first(d4), _first(d6), _first(dp)),
            syn=_first(syn) in ("1", "True"), ack=_first(ack) in ("1", "True"),
            end_seq=int(_first(seq) or 0) + int(_first(tcp_len) or 0),
            pdu_types=[int(p, 0) for p in pdus.split(",") if p],
            pdu_bytes=sum(int(n) + 6 for n in lens.split(",") if n),
        ))
    out.frames, out.rc, out.stderr = frames, proc.returncode, proc.stderr


_BAD_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]|&#x0*(?:[0-8bcef]|1[0-9a-f]);"
                      r"|&#0*(?:[0-8]|1[124-9]|2[0-9]|3[01]);", re.IGNORECASE)


def _iter_packets(stream: IO[bytes]) -> Iterator[ET.Element]:
    """Stream ``<packet>`` elements from PDML, dropping characters XML 1.0 forbids."""
    parser = ET.XMLPullParser(events=("end",))
    pending = ""
    while chunk := stream.read(1 << 20):
        text = pending + chunk.decode("utf-8", errors="replace")
        cut = text.rfind(">") + 1        # never split a character reference
        pending = text[cut:]
        parser.feed(_BAD_XML.sub("?", text[:cut]))
        for _, elem in parser.read_events():
            if elem.tag == "packet":
                yield elem
                elem.clear()
    parser.feed(_BAD_XML.sub("?", pending))
    parser.close()
    for _, elem in parser.read_events():
        if elem.tag == "packet":
            yield elem


# --- PDML decoding ---------------------------------------------------------------------

def _hex_int(node: ET.Element) -> int:
    return int(node.get("value") or node.get("show") or "0", 16)


def _text(node: ET.Element) -> str:
    """Raw bytes of a string field, without the NUL/space padding of PS3.5 / PS3.8."""
    raw = bytes.fromhex(node.get("value") or "")
    return raw.decode("ascii", errors="replace").strip("\x00 ")


def _child(node: ET.Element, name: str) -> ET.Element | None:
    for c in node:
        if c.get("name") == name:
            return c
    return None


@dataclass
class _Assoc:
    """What one A-ASSOCIATE-RQ/AC PDU said."""

    calling: str | None = None
    called: str | None = None
    contexts: list[PresentationContext] = field(default_factory=list)
    impl: Implementation = field(default_factory=Implementation)


def _parse_assoc(proto: ET.Element) -> _Assoc:
    out = _Assoc()
    for node in proto.iter("field"):
        name = node.get("name")
        if name == "dicom.assoc.ae.called":
            out.called = _text(node)
        elif name == "dicom.assoc.ae.calling":
            out.calling = _text(node)
        elif name == "dicom.max_pdu_len":
            out.impl.max_pdu = _hex_int(node)
        elif name == "dicom.userinfo.uid":
            out.impl.class_uid = _text(node)
        elif name == "dicom.userinfo.version":
            out.impl.version_name = _text(node)
        item_type = _child(node, "dicom.assoc.item.type")
        if item_type is None or _hex_int(item_type) not in (0x20, 0x21):
            continue
        ctx_id = _child(node, "dicom.pctx.id")
        if ctx_id is None:
            continue
        pc = PresentationContext(id=_hex_int(ctx_id))
        result = _child(node, "dicom.pctx.result")
        if result is not None:
            pc.result = _hex_int(result)
        for sub in node.iter("field"):
            if sub.get("name") == "dicom.pctx.abss.syntax":
                pc.abstract_syntax = _text(sub)
            elif sub.get("name") == "dicom.pctx.xfer.syntax":
                pc.transfer_syntaxes.append(_text(sub))
        if _hex_int(item_type) == 0x21:
            pc.transfer_syntax = pc.transfer_syntaxes[0] if pc.transfer_syntaxes else None
            pc.transfer_syntaxes = []
        out.contexts.append(pc)
    return out


def _tshark_elements(pdv: ET.Element) -> dict[int, int | str] | None:
    """Command elements as tshark decoded them, or None if they are not a command set."""
    elems: dict[int, int | str] = {}
    for node in pdv:
        tag_node = _child(node, "dicom.tag")
        if tag_node is None:
            if node.get("name") == "dicom.data.tag":
                return None          # tshark's "<incomplete>" continuation of an open tag
            continue
        tag = int(tag_node.get("show") or "0", 16)
        if tag >> 16 != 0:
            return None              # not group 0000: tshark is not reading a command
        for val in node:
            name = val.get("name") or ""
            if name in ("dicom.tag.value.16u", "dicom.tag.value.32u"):
                shown = val.get("show") or "0"
                elems[tag & 0xFFFF] = int(shown, 16) if shown[:2].lower() == "0x" \
                    else int(shown)
            elif name == "dicom.tag.value.str":
                elems[tag & 0xFFFF] = _text(val)
    return elems if 0x0100 in elems else None


def _raw_command_bytes(pdv: ET.Element) -> bytes:
    """Command set bytes of a PDV: the reassembled fragments, else the PDV body."""
    frags = _child(pdv, "dicom.pdv.fragments")
    if frags is not None:
        return b"".join(bytes.fromhex(f.get("value") or "") for f in frags
                        if f.get("name") == "dicom.pdv.fragment")
    return bytes.fromhex(pdv.get("value") or "")[6:]   # skip PDV length, ctx id, flags


def decode_command_set(data: bytes) -> dict[int, int | str]:
    """Decode a command set from bytes: Implicit VR Little Endian, group 0000 only.

    PS3.7 section 6.3.1: the command set is always encoded Implicit VR Little Endian,
    whatever transfer syntax the presentation context negotiated.
    """
    elems: dict[int, int | str] = {}
    off = 0
    while off + 8 <= len(data):
        group, elem, length = struct.unpack_from("<HHI", data, off)
        value = data[off + 8:off + 8 + length]
        off += 8 + length
        if group != 0 or len(value) != length:
            raise ValueError(f"not a command element at offset {off}: ({group:04x},{elem:04x})")
        if elem in _US and length == 2:
            elems[elem] = struct.unpack("<H", value)[0]
        elif elem in _UL and length == 4:
            elems[elem] = struct.unpack("<I", value)[0]
        elif elem in _TEXT:
            elems[elem] = value.decode("ascii", errors="replace").strip("\x00 ")
    if 0x0100 not in elems:
        raise ValueError("no Command Field (0000,0100)")
    return elems


def _message(elems: dict[int, int | str], frame: int, ctx: int) -> DimseMessage:
    def num(tag: int) -> int | None:
        v = elems.get(tag)
        return v if isinstance(v, int) else None

    def txt(tag: int) -> str | None:
        v = elems.get(tag)
        return v if isinstance(v, str) else None

    subops = {name: v for name, tag in (("remaining", 0x1020), ("completed", 0x1021),
                                        ("failed", 0x1022), ("warning", 0x1023))
              if (v := num(tag)) is not None}
    return DimseMessage(
        frame=frame, time=0.0, sender="", context_id=ctx,
        command_field=num(0x0100) or 0, message_id=num(0x0110), responded_to=num(0x0120),
        status=num(0x0900), affected_sop_class=txt(0x0002), affected_sop_instance=txt(0x1000),
        requested_sop_class=txt(0x0003), requested_sop_instance=txt(0x1001),
        move_destination=txt(0x0600), has_dataset=num(0x0800) not in (None, 0x0101),
        suboperations=subops,
    )


@dataclass
class _PduInfo:
    """Decoded content of one PDU from the PDML pass."""

    pdu_type: int
    assoc: _Assoc | None = None
    reject: tuple[int, int, int] | None = None
    abort: tuple[int, int] | None = None
    commands: list[_Command] = field(default_factory=list)


@dataclass
class _Command:
    """A complete command PDV: tshark's element values (None if it misread them) and bytes."""

    context_id: int
    elements: dict[int, int | str] | None
    raw: bytes


def _parse_pdu(proto: ET.Element, frame: int) -> _PduInfo:
    type_node = _child(proto, "dicom.pdu.type")
    info = _PduInfo(pdu_type=_hex_int(type_node) if type_node is not None else 0)
    if info.pdu_type in (1, 2):
        info.assoc = _parse_assoc(proto)
    fields = {n.get("name"): n for n in proto.iter("field")}
    if info.pdu_type == 3 and "dicom.assoc.reject.result" in fields:
        info.reject = (_hex_int(fields["dicom.assoc.reject.result"]),
                       _hex_int(fields["dicom.assoc.reject.source"]),
                       _hex_int(fields["dicom.assoc.reject.reason"]))
    if info.pdu_type == 7 and "dicom.assoc.abort.source" in fields:
        info.abort = (_hex_int(fields["dicom.assoc.abort.source"]),
                      _hex_int(fields["dicom.assoc.abort.reason"]))
    if info.pdu_type == 4:
        for pdv in proto:
            flags_node = _child(pdv, "dicom.pdv.flags")
            ctx_node = _child(pdv, "dicom.pdv.ctx")
            if flags_node is None or ctx_node is None:
                continue
            flags = _hex_int(flags_node)
            if flags & 0x03 != 0x03:         # not the last fragment of a command
                continue
            info.commands.append(_Command(_hex_int(ctx_node), _tshark_elements(pdv),
                                          _raw_command_bytes(pdv)))
    return info


def _run_pdml(pcap: Path, ports: list[int], prefs: Mapping[str, str],
              ) -> tuple[dict[int, list[_PduInfo]], str, int]:
    """Pass 2: decode association PDUs and command sets from the PDML tree."""
    args = _base_args(pcap, ports, prefs) + ["-Y", PDML_FILTER, "-T", "pdml", "-J", "dicom"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    err: list[bytes] = []
    stderr = proc.stderr
    reader = threading.Thread(target=lambda: err.append(stderr.read()))
    reader.start()
    out: dict[int, list[_PduInfo]] = {}
    try:
        for packet in _iter_packets(proc.stdout):
            frame = 0
            for proto in packet:
                if proto.get("name") == "geninfo":
                    num = _child(proto, "num")
                    frame = int(num.get("show") or "0") if num is not None else 0
                elif proto.get("name") == "dicom":
                    out.setdefault(frame, []).append(_parse_pdu(proto, frame))
    except ET.ParseError as exc:
        proc.kill()
        raise TsharkError(f"unreadable PDML from tshark for {pcap}: {exc}") from exc
    finally:
        rc = proc.wait()
        reader.join()
    return out, b"".join(err).decode(errors="replace"), rc


# --- assembling connections ------------------------------------------------------------

def _check_rc(rc: int, stderr: str, pcap: Path) -> None:
    # rc 2 with "cut short" is a truncated capture: the frames before it are still good.
    if rc != 0 and "cut short" not in stderr and "appears to be damaged" not in stderr:
        raise TsharkError(f"tshark exited {rc} on {pcap}: {stderr.strip()[-500:]}")


def _fault_kind(ts: str | None) -> str:
    if ts == DEFLATED:
        return "command-after-deflated-dataset"
    if ts and (ts.startswith(_ENCAPSULATED_PREFIX) or ts == _RLE):
        return "command-after-encapsulated-dataset"
    return "command-misdecoded"


def tshark_dicom(pcap_path: str | Path, ports: list[int], *,
                 preferences: Mapping[str, str] | None = None) -> OracleResult:
    """Decode ``pcap_path`` with tshark's DICOM dissector, on ``ports`` (and heuristics).

    Returns one :class:`Connection` per TCP connection on which tshark saw DICOM PDUs
    (including connections on other ports that the ``dicom_tcp`` heuristic claimed, e.g.
    a C-MOVE sub-association), in order of their first frame.  ``preferences`` override
    :data:`PREFERENCES` (only to demonstrate tshark's behaviour without them).
    """
    prefs = dict(PREFERENCES) | dict(preferences or {})
    pcap = Path(pcap_path)
    if not pcap.is_file():
        raise FileNotFoundError(pcap)
    if not tshark_available():
        raise TsharkError(f"{TSHARK} is not installed")
    started = time.monotonic()
    fields_out = _FieldsRun()
    worker = threading.Thread(target=_run_fields, args=(pcap, ports, prefs, fields_out))
    worker.start()
    try:
        pdml, pdml_err, pdml_rc = _run_pdml(pcap, ports, prefs)
    finally:
        worker.join()
    _check_rc(fields_out.rc, fields_out.stderr, pcap)
    _check_rc(pdml_rc, pdml_err, pcap)
    frames = fields_out.frames

    # Who is the client: sender of A-ASSOCIATE-RQ, else the SYN sender, else the side not
    # on a DICOM port.
    client_of: dict[int, str] = {}
    for fr in frames:
        if 1 in fr.pdu_types:
            client_of.setdefault(fr.stream, fr.src)
    for fr in frames:
        if fr.syn and not fr.ack:
            client_of.setdefault(fr.stream, fr.src)

    dicom_streams = {fr.stream for fr in frames if fr.pdu_types}
    stream_end: dict[tuple[int, str], int] = {}     # (stream, sender endpoint) -> last seq
    pdu_bytes: dict[tuple[int, str], int] = {}
    conns: dict[int, Connection] = {}
    faults: list[TsharkFault] = []
    for fr in frames:
        if fr.stream not in dicom_streams:
            continue
        side = (fr.stream, fr.src)
        stream_end[side] = max(stream_end.get(side, 0), fr.end_seq)
        pdu_bytes[side] = pdu_bytes.get(side, 0) + fr.pdu_bytes
        if not fr.pdu_types:
            continue
        conn = conns.get(fr.stream)
        if conn is None:
            client = client_of.get(fr.stream)
            if client is None:
                dst_port = int(fr.dst.rsplit(":", 1)[1])
                client = fr.src if dst_port in ports else fr.dst
            server = fr.dst if client == fr.src else fr.src
            conn = conns[fr.stream] = Connection(client=client, server=server, stream=fr.stream)
        sender = "requestor" if fr.src == conn.client else "acceptor"
        for ptype in fr.pdu_types:
            conn.pdus.append(PduEvent(fr.number, ptype, sender, fr.time))
        for info in pdml.get(fr.number, []):
            _apply(conn, info, fr, sender, faults)
    for conn in conns.values():
        for sender, endpoint in (("requestor", conn.client), ("acceptor", conn.server)):
            side = (conn.stream, endpoint)
            # relative sequence numbers: the first payload byte of a stream is number 1
            conn.undecoded[sender] = max(0, stream_end.get(side, 1) - 1 - pdu_bytes.get(side, 0))
    result = list(conns.values())
    return OracleResult(pcap=pcap, ports=list(ports), connections=result, faults=faults,
                        tshark_version=tshark_version(),
                        seconds=time.monotonic() - started)


def _apply(conn: Connection, info: _PduInfo, fr: _Frame, sender: str,
           faults: list[TsharkFault]) -> None:
    """Merge one decoded PDU into its connection."""
    side = conn.requestor if sender == "requestor" else conn.acceptor
    if info.assoc is not None:
        a = info.assoc
        if info.pdu_type == 1:
            conn.calling_ae, conn.called_ae = a.calling, a.called
            for pc in a.contexts:
                conn.contexts[pc.id] = pc
        else:
            for pc in a.contexts:
                mine = conn.contexts.setdefault(pc.id, PresentationContext(pc.id))
                mine.result, mine.transfer_syntax = pc.result, pc.transfer_syntax
        side.max_pdu = a.impl.max_pdu
        side.class_uid = a.impl.class_uid
        side.version_name = a.impl.version_name
    if info.reject is not None:
        conn.reject = Reject(fr.number, *info.reject)
    if info.abort is not None:
        conn.aborts.append(Abort(fr.number, sender, *info.abort))
    for cmd in info.commands:
        msg = _command_message(conn, cmd, fr.number, faults)
        if msg is not None:
            msg.time, msg.sender = fr.time, sender
            conn.messages.append(msg)


_CHECKED = {0x0100: "command field", 0x0110: "message id",
            0x0120: "message id being responded to", 0x0900: "status"}


def _command_message(conn: Connection, cmd: _Command, frame: int,
                     faults: list[TsharkFault]) -> DimseMessage | None:
    """tshark's reading of a command, cross-checked with (or replaced by) the raw bytes."""
    try:
        raw: dict[int, int | str] | None = decode_command_set(cmd.raw)
        why = ""
    except ValueError as exc:
        raw, why = None, str(exc)
    if cmd.elements is not None:
        if raw is not None:
            diff = [f"{name}: tshark {cmd.elements.get(tag)!r}, bytes {raw.get(tag)!r}"
                    for tag, name in _CHECKED.items() if cmd.elements.get(tag) != raw.get(tag)]
            if diff:
                faults.append(TsharkFault(frame, conn.key, "tshark-raw-disagree",
                                          "; ".join(diff)))
        return _message(cmd.elements, frame, cmd.context_id)
    if raw is None:
        faults.append(TsharkFault(frame, conn.key, "command-undecodable", why))
        return None
    pc = conn.contexts.get(cmd.context_id)
    ts = pc.transfer_syntax if pc else None
    msg = _message(raw, frame, cmd.context_id)
    msg.tshark_fault = _fault_kind(ts)
    faults.append(TsharkFault(
        frame, conn.key, msg.tshark_fault,
        f"tshark decoded the {msg.command} (message {msg.responded_to}) on context "
        f"{cmd.context_id} ({ts or 'transfer syntax unknown'}) as a continuation of the "
        f"previous data set; decoded from the raw bytes instead"))
    return msg


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.oracle.tshark FILE PORT...``: print what tshark decoded, as JSON."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("pcap", type=Path)
    ap.add_argument("ports", type=int, nargs="*", help="DICOM server ports (decode-as)")
    args = ap.parse_args(argv)
    print(json.dumps(tshark_dicom(args.pcap, args.ports).as_dict(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
