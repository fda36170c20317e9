"""Generate a corpus of hostile captures from the sample captures, with what each should yield.

Why: the fuzz harnesses test components in-process; this corpus tests the installed command on
files, the way a user meets damaged or malicious captures. Each file comes with its expected exit
status and the finding codes its damage must produce (tests/test_hostile_corpus.py checks them).

    python -m tests.mutate_corpus OUTDIR [--full] [--seed N]

Sources: captures/*.pcap (recorded by captures/record.py), plus synthetic captures built with
tests/builders.py, so the corpus exists even without recordings. The default corpus takes two
recordings; --full mutates every recording. Nothing here is checked in: generate into a temp dir.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests import builders as b
from tests.fuzz import seeds
from tests.fuzz.pcapwriter import pcap_bytes, pcapng_bytes

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
QUICK_RECORDINGS = ("echo.pcap", "store-small-pdu.pcap")  # small, and cover every PDU type


@dataclass
class CorpusFile:
    """One hostile file and what the analyzer must make of it."""

    name: str
    kind: str
    source: str
    exit_codes: tuple[int, ...] = (0,)
    codes: tuple[str, ...] = ()  # a finding whose code starts with one of these must exist
    frames_before_damage: int | None = None  # exit 3: frames the summary must still count
    args: tuple[str, ...] = ()  # extra CLI arguments (e.g. --port 104)
    max_same_code: int | None = None  # "one finding, not thousands"
    note: str = ""
    skip: str = ""  # why this kind could not be generated (e.g. editcap absent)
    path: Path = field(default=Path(), repr=False)


# -- reading pcap files (independently of the reader under test) --------------------------------

@dataclass
class Record:
    index: int  # 0-based frame index
    hdr: int  # file offset of the record header
    data: int  # file offset of the frame bytes
    caplen: int


@dataclass
class Tcp:
    rec: Record
    seq_off: int  # file offset of the TCP sequence number
    flags_off: int
    payload: int  # file offset of the payload
    length: int  # payload bytes
    sport: int
    dport: int
    flags: int


def pcap_records(data: bytes) -> tuple[str, int, list[Record]]:
    """(byte order, link type, records) of a classic pcap file; stops at the first bad record."""
    magic = data[:4]
    e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack_from(e + "I", data, 20)[0] & 0xFFFF
    out = []
    off = 24
    while off + 16 <= len(data):
        caplen = struct.unpack_from(e + "I", data, off + 8)[0]
        if off + 16 + caplen > len(data):
            break
        out.append(Record(len(out), off, off + 16, caplen))
        off += 16 + caplen
    return e, linktype, out


def tcp_segments(data: bytes, records: list[Record]) -> Iterator[Tcp]:
    """TCP segments of Ethernet frames (IPv4, IPv6, one VLAN tag)."""
    for r in records:
        p = r.data
        end = r.data + r.caplen
        if r.caplen < 14:
            continue
        etype = struct.unpack_from("!H", data, p + 12)[0]
        p += 14
        if etype == 0x8100 and p + 4 <= end:
            etype = struct.unpack_from("!H", data, p + 2)[0]
            p += 4
        if etype == 0x0800 and p + 20 <= end and data[p + 9] == 6:
            tot = struct.unpack_from("!H", data, p + 2)[0]
            ip_end = min(end, p + tot)
            p += (data[p] & 0x0F) * 4
        elif etype == 0x86DD and p + 40 <= end and data[p + 6] == 6:
            ip_end = min(end, p + 40 + struct.unpack_from("!H", data, p + 4)[0])
            p += 40
        else:
            continue
        if p + 20 > end:
            continue
        sport, dport = struct.unpack_from("!HH", data, p)
        doff = (data[p + 12] >> 4) * 4
        yield Tcp(r, p + 4, p + 13, p + doff, max(0, ip_end - p - doff), sport, dport,
                  data[p + 13])


def pdu_starts(data: bytes, segs: list[Tcp]) -> list[tuple[Tcp, int, int]]:
    """(segment, file offset, PDU type) of every PDU header that lies within one segment.

    Follows each direction's PDU framing from its SYN (the recordings are clean and in order),
    so data set bytes that merely look like a header are never taken for one. A direction seen
    without its SYN, or whose framing is lost (a header split across segments), is skipped.
    """
    out = []
    left: dict[tuple[int, int], int | None] = {}  # bytes of the current PDU still to come
    for s in segs:
        key = (s.sport, s.dport)
        if s.flags & 0x02:
            left[key] = 0
            continue
        rem = left.get(key)
        if rem is None or not s.length:
            continue
        pos = min(rem, s.length)
        rem -= pos
        while rem == 0 and pos < s.length:
            if pos + 6 > s.length:
                rem = None  # header split across segments: stop following this direction
                break
            off = s.payload + pos
            t = data[off]
            if not (1 <= t <= 7 and data[off + 1] == 0):
                rem = None
                break
            out.append((s, off, t))
            ln = struct.unpack_from("!I", data, off + 2)[0]
            take = min(ln, s.length - pos - 6)
            pos += 6 + take
            rem = ln - take
        left[key] = rem
    return out


# -- synthetic captures ---------------------------------------------------------------------------

def _frames_pcap(frames: list[bytes]) -> bytes:
    return pcap_bytes(frames)


def synthetic_sources() -> dict[str, bytes]:
    return {
        "synthetic-echo.pcap": _frames_pcap(seeds.conversation("echo")),
        "synthetic-store.pcap": _frames_pcap(seeds.conversation("store", mss=1000)),
    }


def _assoc_then(extra: list[tuple[int, bytes]], *, port: int = 104,
                client: tuple[str, int] = ("192.0.2.1", 50000)) -> list[bytes]:
    c = b.TcpConversation(client=client, server=("192.0.2.2", port)).handshake()
    c.send(0, b.associate_rq()).send(1, b.associate_ac())
    for side, data in extra:
        c.send(side, data)
    return c.close().frames


def _store_cmd(mid: int = 1) -> bytes:
    return b.p_data(b.pdv(3, 3, b.command_set(0x0001, message_id=mid, sop_class=b.CT_STORAGE,
                                             sop_instance="1.2.3", priority=0,
                                             has_dataset=True)))


def _plain_tcp(payloads: list[tuple[int, bytes]], port: int = 104, syn: bool = True,
               sport: int = 40000) -> list[bytes]:
    c = b.TcpConversation(client=("192.0.2.7", sport), server=("192.0.2.2", port))
    if syn:
        c.handshake()
    for side, data in payloads:
        c.send(side, data)
    return c.close().frames


TLS_CLIENT_HELLO = bytes.fromhex(
    "16030100a5010000a10303" + "00" * 32 + "000020c02bc02fc02cc030cca9cca8c013c014009c009d002f"
    "0035000a0100005800000014001200000f7777772e6578616d706c652e636f6d000500050100000000000a000a"
    "0008001d001700180019000b00020100000d0012001004010501060104030503060302010203ff0100010000"
    "1200000017000000230000")

HTTP_REQ = b"GET /index.html HTTP/1.1\r\nHost: pacs\r\nUser-Agent: curl/8\r\n\r\n"
HTTP_RSP = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"<html>" * 833


def reverse_tiny_segments(n: int) -> list[bytes]:
    """An association whose next n bytes arrive as 1-byte segments, last byte first."""
    c = b.TcpConversation().handshake()
    c.send(0, b.associate_rq()).send(1, b.associate_ac())
    body = _store_cmd() + b.p_data(b.pdv(3, 2, bytes(n)))
    base = c.seq[0]
    frames = list(c.frames)
    for i in range(len(body) - 1, -1, -1):
        frames.append(b.ipv4_tcp("192.0.2.1", "192.0.2.2", 50000, 104, base + i, c.seq[1], 0x18,
                                 body[i:i + 1]))
    return frames


# -- the corpus --------------------------------------------------------------------------------

class Corpus:
    def __init__(self, outdir: Path, seed: int) -> None:
        self.out = outdir
        self.rng = random.Random(seed)
        self.seed = seed
        self.files: list[CorpusFile] = []
        outdir.mkdir(parents=True, exist_ok=True)

    def add(self, data: bytes | None, cf: CorpusFile) -> None:
        cf.path = self.out / cf.name
        if data is not None:
            cf.path.write_bytes(data)
        self.files.append(cf)

    # file-level damage
    def truncations(self, src: str, data: bytes, count: int) -> None:
        _, _, recs = pcap_records(data)
        ends = {r.data + r.caplen for r in recs}
        offsets = sorted({self.rng.randrange(24, len(data)) for _ in range(count)}
                         | {self.rng.randrange(1, 24)})
        for off in offsets:
            whole = sum(1 for r in recs if r.data + r.caplen <= off)
            if off < 24:
                exp, frames = (2,), None
            elif off in ends or off == 24:
                exp, frames = (0,), whole
            else:
                exp, frames = (3,), whole
            self.add(data[:off], CorpusFile(f"{Path(src).stem}-trunc-{off}.pcap", "truncate",
                                            src, exp, ("CAPTURE-DAMAGED",) if exp == (3,) else (),
                                            frames, note=f"cut at byte {off}"))

    def editcap(self, src: str, path: Path, payload_only: bool) -> None:
        kind = "editcap-payload" if payload_only else "editcap"
        name = f"{Path(src).stem}-{kind}.pcapng"
        exe = shutil.which("editcap")
        if exe is None:
            self.add(None, CorpusFile(name, kind, src, skip="editcap is not installed"))
            return
        cmd = [exe, "--seed", str(self.seed), "-E", "0.01"]
        if payload_only:
            cmd += ["-o", "54"]  # leave Ethernet/IPv4/TCP headers alone: corrupt the DICOM bytes
        subprocess.run([*cmd, str(path), str(self.out / name)], check=True,
                       capture_output=True, timeout=60)
        self.add(None, CorpusFile(name, kind, src, (0, 3), note="editcap -E 0.01 byte corruption"))

    # PDU and item length fields
    def length_flips(self, src: str, data: bytes, every_type: bool) -> None:
        """Each PDU type's length set to 0, odd, huge, 0xFFFFFFFF (one random type per value
        unless ``every_type``)."""
        _, lt, recs = pcap_records(data)
        if lt != 1:
            return
        starts = pdu_starts(data, list(tcp_segments(data, recs)))
        by_type: dict[int, list[tuple[Tcp, int, int]]] = {}
        for s in starts:
            by_type.setdefault(s[2], []).append(s)
        for label in ("0", "odd", "huge", "ffffffff"):
            types = sorted(by_type) if every_type else [self.rng.choice(sorted(by_type))]
            for ptype in types:
                seg, off, _t = self.rng.choice(by_type[ptype])
                old = struct.unpack_from("!I", data, off + 2)[0]
                new = {"0": 0, "odd": old | 1 if old & 1 == 0 else old + 2, "huge": 0x7FFFFFF0,
                       "ffffffff": 0xFFFFFFFF}[label]
                if new == old:
                    continue
                d = bytearray(data)
                struct.pack_into("!I", d, off + 2, new)
                self.add(bytes(d), CorpusFile(
                    f"{Path(src).stem}-pdu{ptype}-len-{label}.pcap", "pdu-length", src, (0,),
                    ("UL-", "ASSOC-", "DIMSE-", "TCP-"),
                    note=f"PDU type {ptype} in frame {seg.rec.index + 1}: length {old} -> {new}"))

    def item_overrun(self, src: str, data: bytes) -> None:
        _, lt, recs = pcap_records(data)
        if lt != 1:
            return
        for seg, off, t in pdu_starts(data, list(tcp_segments(data, recs))):
            if t != 1:
                continue
            pdu_end = off + 6 + struct.unpack_from("!I", data, off + 2)[0]
            if pdu_end > seg.payload + seg.length:
                continue  # RQ spread over several segments: skip (rare)
            items, p = [], off + 74
            while p + 4 <= pdu_end:
                items.append(p)
                p += 4 + struct.unpack_from("!H", data, p + 2)[0]
            for which, p in (("first", items[0]), ("last", items[-1])):
                d = bytearray(data)
                over = pdu_end - (p + 4) + 10
                struct.pack_into("!H", d, p + 2, min(0xFFFF, over))
                self.add(bytes(d), CorpusFile(
                    f"{Path(src).stem}-item-overrun-{which}.pcap", "item-overrun", src, (0,),
                    ("UL-ITEM-OVERRUN", "UL-NO-USERINFO"),
                    note=f"item 0x{data[p]:02X} says {over} bytes, past its A-ASSOCIATE-RQ"))
            return

    def seq_jump(self, src: str, data: bytes) -> None:
        _, lt, recs = pcap_records(data)
        if lt != 1:
            return
        segs = [s for s in tcp_segments(data, recs)]
        data_segs = [s for s in segs if s.length and not s.flags & 0x07]
        if len(data_segs) < 4:
            return
        pivot = data_segs[len(data_segs) // 2]
        d = bytearray(data)
        for s in segs:
            if s.rec.index >= pivot.rec.index and (s.sport, s.dport) == (pivot.sport, pivot.dport):
                seq = struct.unpack_from("!I", d, s.seq_off)[0]
                struct.pack_into("!I", d, s.seq_off, (seq + 0x3FFF0000) & 0xFFFFFFFF)
        self.add(bytes(d), CorpusFile(f"{Path(src).stem}-seq-jump.pcap", "seq-jump", src, (0,),
                                      ("TCP-GAP", "UL-", "ASSOC-", "DIMSE-"),
                                      note="sequence numbers jump by ~1 GB mid-stream"))

    def overlap_conflict(self, src: str, data: bytes) -> None:
        """Segments A, B of one direction reordered to B, B', A, where B' is B retransmitted
        with other bytes: B' conflicts with the held copy of B (the first copy wins)."""
        _, lt, recs = pcap_records(data)
        if lt != 1:
            return
        segs = [s for s in tcp_segments(data, recs) if s.length >= 16 and not s.flags & 0x07]
        pairs = [(a, b_) for a, b_ in zip(segs, segs[1:], strict=False)
                 if (a.sport, a.dport) == (b_.sport, b_.dport)
                 and struct.unpack_from("!I", data, b_.seq_off)[0]
                 == (struct.unpack_from("!I", data, a.seq_off)[0] + a.length) & 0xFFFFFFFF
                 and b_.rec.index == a.rec.index + 1]
        if not pairs:
            return
        a, b_ = pairs[len(pairs) // 2]

        def rec(r: Record) -> bytes:
            return data[r.hdr:r.data + r.caplen]

        altered = bytearray(rec(b_.rec))
        for i in range(b_.payload - b_.rec.hdr, len(altered)):
            altered[i] ^= 0x5A
        d = (data[:a.rec.hdr] + rec(b_.rec) + bytes(altered) + rec(a.rec)
             + data[b_.rec.data + b_.rec.caplen:])
        self.add(d, CorpusFile(f"{Path(src).stem}-overlap-conflict.pcap", "overlap-conflict", src,
                               (0,), ("TCP-OVERLAP-CONFLICT",),
                               note=f"frames {a.rec.index + 1}-{b_.rec.index + 1} reordered, the "
                               "second retransmitted with other bytes"))

    # synthetic hostile streams
    def synthetic(self, full: bool) -> None:
        add = self.add
        syn = "synthetic"
        add(pcap_bytes(_assoc_then([(0, _store_cmd()), (0, b.pdu(4, b.pdv(3, 0, b"\x00")
                                                                 * 20_000))])),
            CorpusFile("pdata-20000-one-byte-pdvs.pcap", "tiny-pdvs", syn, (0,),
                       ("UL-PDV-ODD",), max_same_code=20,
                       note="one P-DATA-TF with 20000 PDVs of 1 byte"))
        frags = b"".join(b.p_data(b.pdv(3, 0, bytes(1000))) for _ in range(300))
        add(pcap_bytes(_assoc_then([(0, _store_cmd()), (0, frags), (0, b.release_rq()),
                                    (1, b.release_rp())])),
            CorpusFile("pdv-last-fragment-never-comes.pcap", "no-last-fragment", syn, (0,),
                       ("DIMSE-", "UL-"), note="300 data fragments, none with the last bit"))
        rnd = random.Random(self.seed)
        garbage = rnd.randbytes(200_000)
        for label, payloads, use_syn in (
                ("garbage-port104", [(0, garbage)], True),
                ("garbage-port104-midstream", [(0, garbage), (1, garbage[:50_000])], False),
                ("http-port104", [(0, HTTP_REQ), (1, HTTP_RSP)], True),
                ("tls-clienthello-port104", [(0, TLS_CLIENT_HELLO), (1, garbage[:3000])], True)):
            frames = _plain_tcp(payloads, syn=use_syn) + seeds.conversation("echo")
            add(pcap_bytes(frames), CorpusFile(
                f"{label}.pcap", "not-dicom", syn, (0,), note="non-DICOM bytes on port 104, "
                "then a real C-ECHO association: analysed, nothing invented"))
            # A ClientHello is TLS whatever --port says (encrypted DICOM, analysis/tls.py): the
            # server's garbage is then a TLS finding, not an upper-layer one.
            tls = label.startswith("tls-")
            add(None, CorpusFile(
                f"{label}.pcap", "not-dicom-forced", syn, (0,), ("TLS-",) if tls else ("UL-",),
                args=("--port", "104"), max_same_code=20,
                note="the same, with --port 104: parsed as " + ("TLS" if tls else "DICOM")
                + ", findings"))
        flood = [b.ipv4_tcp(f"198.51.100.{1 + i // 60000}", "192.0.2.2", 1024 + i % 60000, 104,
                            rnd.randrange(1 << 32), 0, 0x02) for i in range(30_000)]
        add(pcap_bytes(seeds.conversation("echo") + flood),
            CorpusFile("syn-flood-30000.pcap", "half-open", syn, (0,), ("CAP-STREAMS",),
                       max_same_code=100,
                       note="30000 SYNs from different source ports, never answered"))
        c = b.TcpConversation().handshake()
        c.send(0, b.associate_rq()).send(1, b.associate_ac()).send(0, _store_cmd())
        c.send(0, struct.pack("!BxI", 4, 0xFFFFFFFF) + struct.pack("!IBB", 0xFFFFFFFB, 3, 0))
        c.send(0, bytes(2_000_000), mss=65000)
        add(pcap_bytes(c.close().frames), CorpusFile(
            "pdata-4gb-length.pcap", "4gb-pdu", syn, (0,), ("UL-",),
            note="P-DATA-TF announcing 0xFFFFFFFF bytes followed by 2 MB"))
        c = b.TcpConversation().handshake()
        c.send(0, struct.pack("!BxI", 1, 0xFFFFFFFF) + bytes(500_000), mss=65000)
        add(pcap_bytes(c.close().frames), CorpusFile(
            "associate-4gb-length.pcap", "4gb-pdu", syn, (0,),
            note="A-ASSOCIATE-RQ announcing 0xFFFFFFFF bytes, unanswered: detection judges the "
                 "connection not DICOM (no finding); answered by an A-ASSOCIATE-AC it is analysed"))
        add(None, CorpusFile(
            "associate-4gb-length.pcap", "4gb-pdu-forced", syn, (0,), ("UL-PDU-LENGTH",),
            args=("--port", "104"), note="the same with --port 104 (as tshark -d): a finding"))
        add(pcap_bytes(reverse_tiny_segments(24_000)), CorpusFile(
            "reverse-tiny-segments.pcap", "reverse-segments", syn, (0,),
            note="1-byte segments in reverse order (quadratic reassembly before d9d14d8)"))
        # file-format damage
        echo = seeds.conversation("echo")
        good = pcapng_bytes(echo)
        blocks = _pcapng_block_offsets(good)
        cut = blocks[len(blocks) // 2]
        bad = bytearray(good)
        struct.pack_into("<I", bad, cut + 4, 13)  # not a multiple of 4
        add(bytes(bad), CorpusFile("pcapng-corrupt-block.pcapng", "corrupt-block", syn, (3,),
                                   ("CAPTURE-DAMAGED",), len(blocks[2:len(blocks) // 2]),
                                   note="bad block length in the middle"))
        recs = pcap_records(pcap_bytes(echo))[2]
        bad = bytearray(pcap_bytes(echo))
        struct.pack_into("<I", bad, recs[5].hdr + 8, 0xFFFFFFFF)
        add(bytes(bad), CorpusFile("pcap-caplen-4gb.pcap", "corrupt-block", syn, (3,),
                                   ("CAPTURE-DAMAGED",), 5, note="record 6 caplen 0xFFFFFFFF"))
        add(pcap_bytes(echo, linktype=147), CorpusFile(
            "unknown-linktype.pcap", "linktype", syn, (0,), ("CAPTURE-",),
            note="link type 147 (user-defined): frames skipped with a finding"))
        add(pcapng_bytes([(1.8e13 + i * 1e-3, f) for i, f in enumerate(echo)]), CorpusFile(
            "pcapng-far-future.pcapng", "timestamp", syn, (0,),
            note="year 572367 (crashed the text report before d9d14d8)"))
        for name, blob, why in (
                ("empty.pcap", b"", "empty file"),
                ("three-bytes.pcap", b"\xd4\xc3\xb2", "shorter than a magic number"),
                ("pcap-header-cut.pcap", pcap_bytes(echo)[:20], "file header cut"),
                ("text.pcap", b"hello, this is not a capture\n" * 10, "text"),
                ("zip.pcap", b"PK\x03\x04" + bytes(200), "a zip archive"),
                ("random.pcap", rnd.randbytes(4096), "random bytes"),
                ("pcapng-bad-bom.pcapng", good[:8] + b"\x00\x00\x00\x00" + good[12:],
                 "pcapng with a bad byte-order magic")):
            add(blob, CorpusFile(name, "not-a-capture", syn, (2,), note=why))
        add(None, CorpusFile("does-not-exist.pcap", "not-a-capture", syn, (2,),
                             note="missing file"))

    def manifest(self) -> Path:
        recs = []
        for f in self.files:
            r = asdict(f)
            r["path"] = str(f.path)
            recs.append(r)
        p = self.out / "manifest.json"
        p.write_text(json.dumps(recs, indent=1))
        return p


def _pcapng_block_offsets(data: bytes) -> list[int]:
    out, off = [], 0
    while off + 8 <= len(data):
        out.append(off)
        off += struct.unpack_from("<I", data, off + 4)[0]
    return out


def recordings(full: bool) -> list[Path]:
    found = sorted(CAPTURES.glob("*.pcap"))
    if full:
        return found
    return [p for p in found if p.name in QUICK_RECORDINGS]


def generate(outdir: Path, *, full: bool = False, seed: int = 1) -> list[CorpusFile]:
    """Write the corpus (and manifest.json) into ``outdir``; returns its entries."""
    c = Corpus(Path(outdir), seed)
    sources: dict[str, tuple[bytes, Path]] = {}
    for name, data in synthetic_sources().items():
        p = c.out / ("src-" + name)
        p.write_bytes(data)
        sources[name] = (data, p)
    for p in recordings(full):
        sources[p.name] = (p.read_bytes(), p)
    for name, (data, path) in sources.items():
        if data[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            continue  # the walkers below read little-endian pcap only
        c.truncations(name, data, 3 if full else 2)
        c.editcap(name, path, payload_only=False)
        c.editcap(name, path, payload_only=True)
        c.length_flips(name, data, every_type=full)
        c.item_overrun(name, data)
        c.seq_jump(name, data)
        c.overlap_conflict(name, data)
    c.synthetic(full)
    c.manifest()
    return c.files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.mutate_corpus",
                                description=__doc__.split("\n")[0])
    p.add_argument("outdir", type=Path)
    p.add_argument("--full", action="store_true", help="mutate every recording in captures/")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    files = generate(args.outdir, full=args.full, seed=args.seed)
    kinds: dict[str, int] = {}
    for f in files:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    print(f"{len(files)} corpus entries in {args.outdir}: "
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    for f in files:
        if f.skip:
            print(f"skipped {f.name}: {f.skip}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
