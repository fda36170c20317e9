"""Hand-built captures for the attacks of issue 14 that no real peer will send.

Each builder returns Ethernet frames (tests/fuzz/pcapwriter.py writes them); the bytes are made
with tests/builders.py, independent of the parser under test. Real-peer captures are used
where a peer can produce the case (the 240-image storescu capture in captures/).
"""

from __future__ import annotations

import struct
import zlib

from tests import builders as b

PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
MPPS = "1.2.840.10008.3.1.2.3.3"
DEFLATED = "1.2.840.10008.1.2.1.99"
EXPLICIT = b.EXPLICIT_LE


def explicit(group: int, elem: int, vr: str, value: bytes) -> bytes:
    """One Explicit VR Little Endian element (PS3.5 7.1.2)."""
    if len(value) % 2:
        value += b"\x00" if vr == "UI" else b" "
    if vr in ("OB", "OW", "SQ", "UN", "UT", "UC", "UR"):
        return struct.pack("<HH2s2xI", group, elem, vr.encode(), len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr.encode(), len(value)) + value


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def deflate_bomb(head: bytes, inflated: int) -> bytes:
    """A raw deflate stream of ``head`` then an OB element of ``inflated`` zero bytes.

    Made without ever holding the inflated bytes: one 1 MiB block of zeros is compressed
    after a full flush (which resets the dictionary and byte-aligns the output), and that
    compressed block is repeated; ~1 KB per MiB, so a 4 GiB data set is ~4 MB on the wire.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib = 1 << 20
    n = max(1, min(inflated, 0xFFFFFFFE) // mib)  # one element: under 4 GiB
    out = [c.compress(head + struct.pack("<HH2s2xI", 0x0009, 0x1010, b"OB", n * mib)),
           c.flush(zlib.Z_FULL_FLUSH)]
    block = c.compress(bytes(mib)) + c.flush(zlib.Z_FULL_FLUSH)
    out.append(block * n)
    out.append(zlib.compressobj(9, zlib.DEFLATED, -15).flush())  # an empty final block
    return b"".join(out)


def find_identifier(name: str = "DOE^J*", patient_id: bytes = b"") -> bytes:
    return (explicit(0x0008, 0x0052, "CS", b"PATIENT")
            + explicit(0x0010, 0x0010, "PN", name.encode("latin-1"))
            + explicit(0x0010, 0x0020, "LO", patient_id))


def _pdata_fragments(ctx: int, data: bytes, fragment: int = 16372) -> bytes:
    out = b""
    for i in range(0, len(data), fragment):
        last = i + fragment >= len(data)
        out += b.p_data(b.pdv(ctx, 2 if last else 0, data[i:i + fragment]))
    return out or b.p_data(b.pdv(ctx, 2, b""))


def conversation(exchanges: list[tuple[int, bytes]], port: int = 50000,
                 mss: int = 16000) -> list[bytes]:
    c = b.TcpConversation(client=("192.0.2.1", port), server=("192.0.2.2", 104)).handshake()
    for side, data in exchanges:
        c.send(side, data, mss=mss)
    return c.close().frames


def find_association(query: bytes, responses: list[bytes], ts: str = EXPLICIT,
                     port: int = 50000, calling: str = "FINDSCU") -> list[bytes]:
    """A C-FIND association: ``query`` as the request identifier (already encoded in ``ts``),
    one pending response per item of ``responses``, then success."""
    ctx = [(1, PATIENT_ROOT_FIND, [ts])]
    rq = b.p_data(b.pdv(1, 3, b.command_set(0x0020, message_id=1, sop_class=PATIENT_ROOT_FIND,
                                            priority=0, has_dataset=True)))
    rq += _pdata_fragments(1, query)
    ex: list[tuple[int, bytes]] = [(0, b.associate_rq("FINDSCP", calling, ctx)),
                                   (1, b.associate_ac("FINDSCP", calling, [(1, 0, ts)])),
                                   (0, rq)]
    for r in responses:
        ex.append((1, b.p_data(b.pdv(1, 3, b.command_set(
            0x8020, responded_to=1, sop_class=PATIENT_ROOT_FIND, status=0xFF00,
            has_dataset=True))) + _pdata_fragments(1, r)))
    ex.append((1, b.p_data(b.pdv(1, 3, b.command_set(0x8020, responded_to=1,
                                                     sop_class=PATIENT_ROOT_FIND, status=0)))))
    ex += [(0, b.release_rq()), (1, b.release_rp())]
    return conversation(ex, port)


def store_association(dataset: bytes, ts: str = EXPLICIT, port: int = 50001,
                      instance: str = "1.2.3.4.5.6.7.8.1", calling: str = "STORESCU"
                      ) -> list[bytes]:
    """One C-STORE of ``dataset`` (already encoded in ``ts``), answered with success."""
    ctx = [(1, b.CT_STORAGE, [ts])]
    ex = [(0, b.associate_rq("STORESCP", calling, ctx)),
          (1, b.associate_ac("STORESCP", calling, [(1, 0, ts)])),
          (0, b.p_data(b.pdv(1, 3, b.command_set(0x0001, message_id=1, sop_class=b.CT_STORAGE,
                                                 sop_instance=instance, priority=0,
                                                 has_dataset=True)))
           + _pdata_fragments(1, dataset)),
          (1, b.store_response(1, ctx=1, instance=instance)),
          (0, b.release_rq()), (1, b.release_rp())]
    return conversation(ex, port)


def mpps_association(dataset: bytes, ts: str = EXPLICIT, port: int = 50002) -> list[bytes]:
    """An N-CREATE of a Modality Performed Procedure Step carrying ``dataset``."""
    ctx = [(1, MPPS, [ts])]
    inst = "1.2.3.4.5.6.7.8.9"
    ex = [(0, b.associate_rq("MPPSSCP", "MODALITY", ctx)),
          (1, b.associate_ac("MPPSSCP", "MODALITY", [(1, 0, ts)])),
          (0, b.p_data(b.pdv(1, 3, b.command_set(0x0140, message_id=1, has_dataset=True,
                                                 extra={0x0002: MPPS.encode(),
                                                        0x1000: inst.encode()})))
           + _pdata_fragments(1, dataset)),
          (1, b.p_data(b.pdv(1, 3, b.command_set(0x8140, responded_to=1, status=0,
                                                 extra={0x0002: MPPS.encode(),
                                                        0x1000: inst.encode()})))),
          (0, b.release_rq()), (1, b.release_rp())]
    return conversation(ex, port)


# -- wire strings that try to drive the terminal ------------------------------------------------

#: ESC/CSI, OSC title change with BEL, right-to-left override, CR+LF faking a line, the Unicode
#: line separator, a literal backslash-x sequence that would read as an escaped ESC, C1 CSI.
EVIL_TEXT = ("\\x1bLIT\x1b[31mRED\x1b]0;pwned\x07\u202eTXT\r\nFAKE 0 findings"
             "\u2028S\u2029P\u2066I\u009b2J")
EVIL_MARKS = ("\x1b", "\x07", "\u202e", "\r", "\n", "\u2028", "\u2029", "\u2066", "\u009b")


def evil_identifier(text: str = EVIL_TEXT) -> bytes:
    """A C-FIND identifier in UTF-8 (ISO_IR 192) whose Patient Comments (LT: backslash is
    a character there, not a separator) and Patient's Name carry ``text``."""
    return (explicit(0x0008, 0x0005, "CS", b"ISO_IR 192")
            + explicit(0x0008, 0x0052, "CS", b"PATIENT")
            + explicit(0x0010, 0x0010, "PN", text.replace("\\", "/").encode())
            + explicit(0x0010, 0x4000, "LT", text.encode()))


def evil_find() -> list[bytes]:
    """A C-FIND whose query and response carry :data:`EVIL_TEXT` (and do not match)."""
    return find_association(evil_identifier(), [evil_identifier(EVIL_TEXT[::-1])])


def long_strings_association(n: int = 2000) -> list[bytes]:
    """An association whose implementation version name is ``n`` characters (PS3.7 D.3.3.2
    allows 16) and whose implementation class UID is 500 (64 allowed)."""
    rq_assoc = b.associate_rq(calling="LONG", user=b.user_info(version="V" * n,
                                                               impl_uid="1.2." + "3" * 500))
    rq, ac = b.echo_exchange()
    return conversation([(0, rq_assoc), (1, b.associate_ac(calling="LONG")),
                         (0, rq[len(b.associate_rq()):]), (1, ac[len(b.associate_ac()):])])


def pcapng_with_clock(frames: list[bytes], tsresol: int = 0, tsoffset: int = 1 << 40,
                      ticks: int = 0) -> bytes:
    """A pcapng whose interface options put every time out of range: ``if_tsresol`` (option
    9; 0 = seconds) and ``if_tsoffset`` (option 14, seconds added to every time)."""
    def block(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I",
                                                                               len(body) + 12)

    def opt(code: int, value: bytes) -> bytes:
        return struct.pack("<HH", code, len(value)) + value + bytes(-len(value) % 4)

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = opt(9, bytes([tsresol])) + opt(14, struct.pack("<q", tsoffset)) + opt(0, b"")
    idb = block(1, struct.pack("<HHI", 1, 0, 0) + opts)
    out = [shb, idb]
    for i, f in enumerate(frames):
        t = ticks + i
        out.append(block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(f), len(f))
                         + f))
    return b"".join(out)


def same_uid_stores(n: int, instance: str = "1.2.3.4.5.6.7.8.1") -> list[bytes]:
    """One association of ``n`` C-STOREs that all carry the same SOP Instance UID."""
    ctx = [(1, b.CT_STORAGE, [b.IMPLICIT_LE])]
    ds = struct.pack("<HHI", 0x0010, 0x0010, 8) + b"SAME^UID"
    rq, ac = [], []
    for i in range(1, n + 1):
        rq.append(b.p_data(b.pdv(1, 3, b.command_set(
            0x0001, message_id=i & 0xFFFF, sop_class=b.CT_STORAGE, sop_instance=instance,
            priority=0, has_dataset=True)), b.pdv(1, 2, ds)))
        ac.append(b.store_response(i & 0xFFFF, ctx=1, instance=instance))
    c = b.TcpConversation(client=("192.0.2.1", 50010), server=("192.0.2.2", 104)).handshake()
    c.send(0, b.associate_rq("STORESCP", "STORESCU", ctx))
    c.send(1, b.associate_ac("STORESCP", "STORESCU", [(1, 0, b.IMPLICIT_LE)]))
    for q, a in zip(rq, ac, strict=True):
        c.send(0, q).send(1, a)
    c.send(0, b.release_rq()).send(1, b.release_rp())
    return c.close().frames


def lying_pdata(capture: bytes, which: float = 0.2, high: int = 0x7F) -> tuple[bytes, int]:
    """``capture`` with the high byte of one requestor P-DATA-TF length set to ``high``
    (so it claims ~2 GB), the one ``which`` of the way through; and its frame number."""
    from tests.mutate_corpus import pcap_records, pdu_starts, tcp_segments

    _, _, recs = pcap_records(capture)
    segs = list(tcp_segments(capture, recs))
    server = min(s.dport for s in segs if s.flags & 0x02 and not s.flags & 0x10)
    pdatas = [(s, off) for s, off, t in pdu_starts(capture, segs)
              if t == 4 and s.dport == server]
    seg, off = pdatas[int(len(pdatas) * which)]
    out = bytearray(capture)
    out[off + 2] = high
    return bytes(out), seg.rec.index + 1


# -- IP fragments and IPv6 extension headers ----------------------------------------------------

def ipv4_fragments(frame: bytes, pieces: int = 3, overlap_with: bytes | None = None
                   ) -> list[bytes]:
    """An Ethernet+IPv4 frame as ``pieces`` fragments (RFC 791 3.2): each a copy of the IP
    header with its offset and More Fragments flag; payloads 8-byte aligned. With
    ``overlap_with``, one extra fragment repeats the second one's bytes with other content."""
    eth, ip, payload = frame[:14], bytearray(frame[14:34]), frame[34:]
    step = max(8, (-(-len(payload) // pieces) + 7) // 8 * 8)  # ceil, 8-aligned
    out = []
    for off in range(0, len(payload), step):
        chunk = payload[off:off + step]
        h = bytearray(ip)
        more = off + step < len(payload)
        struct.pack_into("!H", h, 2, 20 + len(chunk))
        struct.pack_into("!H", h, 6, (0x2000 if more else 0) | off // 8)
        out.append(eth + bytes(h) + chunk)
    if overlap_with is not None:
        h = bytearray(ip)
        chunk = overlap_with[:step]
        struct.pack_into("!H", h, 2, 20 + len(chunk))
        struct.pack_into("!H", h, 6, 0x2000 | step // 8)
        out.insert(2, eth + bytes(h) + chunk)
    return out


def _v6(a: bytes) -> bytes:
    return bytes.fromhex("20010db8000000000000000000000000")[:12] + a


def ipv4_to_ipv6(frame: bytes, ext: list[tuple[int, bytes]] = ()) -> bytes:
    """The same TCP segment over IPv6, behind the extension headers ``ext``: (type, body);
    bodies are padded to a multiple of 8 with their 2-byte next header/length prefix."""
    ip, tcp = frame[14:34], frame[34:]
    headers = b""
    types = [t for t, _ in ext] + [6]
    for (t, body), nxt in zip(ext, types[1:], strict=True):
        if t == 44:
            headers += bytes((nxt, 0)) + body[:6].ljust(6, b"\x00")
            continue
        body = body.ljust(((len(body) + 2 + 7) // 8) * 8 - 2, b"\x00")
        headers += bytes((nxt, (len(body) + 2) // 8 - 1)) + body
    hdr = struct.pack("!IHBB16s16s", 6 << 28, len(headers) + len(tcp), types[0], 64,
                      _v6(ip[12:16]), _v6(ip[16:20]))
    return frame[:12] + b"\x86\xdd" + hdr + headers + tcp


def ipv6_fragments(frame: bytes, pieces: int = 3, ident: int = 7) -> list[bytes]:
    """An Ethernet+IPv6 frame (no extension headers) as fragments (RFC 8200 4.5)."""
    hdr, payload = bytearray(frame[14:54]), frame[54:]
    nxt = hdr[6]
    hdr[6] = 44
    step = max(8, (-(-len(payload) // pieces) + 7) // 8 * 8)  # ceil, 8-aligned
    out = []
    for off in range(0, len(payload), step):
        chunk = payload[off:off + step]
        more = off + step < len(payload)
        h = bytearray(hdr)
        struct.pack_into("!H", h, 4, 8 + len(chunk))
        frag = struct.pack("!BxHI", nxt, off | (1 if more else 0), ident)
        out.append(frame[:14] + bytes(h) + frag + chunk)
    return out


def echo_frames() -> tuple[list[bytes], int]:
    """A C-ECHO association's frames and the index of the A-ASSOCIATE-RQ frame."""
    rq, ac = b.echo_exchange()
    c = b.TcpConversation(client=("192.0.2.1", 50050), server=("192.0.2.2", 104)).handshake()
    n = len(c.frames)
    c.send(0, b.associate_rq(), mss=9000)
    c.send(1, b.associate_ac()).send(0, rq[len(b.associate_rq()):])
    c.send(1, ac[len(b.associate_ac()):])
    return c.close().frames, n


def _real_frames(path) -> list[tuple[float, bytes]]:
    from dicomsniff.sources.capture import CaptureReader

    with CaptureReader(str(path)) as r:
        return [(ts, bytes(buf)) for ts, _lt, buf, _olen in r]


def _ipv4_tcp_data(f: bytes) -> bool:
    return (len(f) > 54 and f[12:14] == b"\x08\x00" and f[14] == 0x45 and f[23] == 6
            and struct.unpack_from("!H", f, 16)[0] > 20 + (f[46] >> 4) * 4)


def tso_capture(path) -> list[tuple[float, bytes]]:
    """A real capture as a sender's own host captures it with TCP segmentation offload:
    every IPv4 data segment's total length 0 (the NIC fills it in after the tap)."""
    out = []
    for ts, f in _real_frames(path):
        if _ipv4_tcp_data(f):
            f = f[:16] + b"\x00\x00" + f[18:]
        out.append((ts, f))
    return out


def short_offset_capture(path) -> list[tuple[float, bytes]]:
    """A real capture with, after each data segment, a copy whose TCP data offset is 3 (12
    bytes of header: impossible, RFC 9293 3.1) and whose payload is other bytes: a receiver
    drops it, so the analysis must not read it, neither its header as payload nor its
    bytes as a retransmission."""
    out = []
    for ts, f in _real_frames(path):
        out.append((ts, f))
        if _ipv4_tcp_data(f):
            g = bytearray(f)
            g[46] = 0x30 | (g[46] & 0x0F)
            for i in range(54, len(g)):
                g[i] ^= 0x5A
            out.append((ts, bytes(g)))
    return out


STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"


def long_wire_values_association(n: int = 2000) -> list[bytes]:
    """Wire values a finding's message quotes, each ``n`` characters: an abstract syntax the
    SCP refuses (NEG-SOP-CLASS-REJECTED), a transfer syntax it accepts without its being
    proposed (UL-AC-TS-NOT-PROPOSED), a C-STORE failure's Error Comment
    (DIMSE-STATUS-FAILURE) and a C-MOVE's Move Destination (DIMSE-MOVE-NO-SUBASSOCIATION)."""
    long_uid = "1.2." + "9" * (n - 4)
    ctx = [(1, b.CT_STORAGE, [EXPLICIT]), (3, STUDY_MOVE, [EXPLICIT]), (5, long_uid, [EXPLICIT])]
    store = b.p_data(b.pdv(1, 3, b.command_set(0x0001, message_id=1, sop_class=b.CT_STORAGE,
                                               sop_instance="1.2.3.4", priority=0,
                                               has_dataset=True))) + _pdata_fragments(1, b"\0" * 8)
    failed = b.p_data(b.pdv(1, 3, b.command_set(0x8001, responded_to=1, sop_class=b.CT_STORAGE,
                                                sop_instance="1.2.3.4", status=0xA700,
                                                extra={0x0902: b"C" * n})))
    move = b.p_data(b.pdv(3, 3, b.command_set(0x0021, message_id=2, sop_class=STUDY_MOVE,
                                              priority=0, move_destination="D" * n,
                                              has_dataset=True)))
    move += _pdata_fragments(3, explicit(0x0008, 0x0052, "CS", b"STUDY "))
    moved = b.p_data(b.pdv(3, 3, b.command_set(0x8021, responded_to=2, sop_class=STUDY_MOVE,
                                               status=0, extra={0x1021: b"\1\0"})))
    ex = [(0, b.associate_rq("ARCHIVE", "MODALITY", ctx)),
          (1, b.associate_ac("ARCHIVE", "MODALITY", [(1, 0, "1.2.840.10008.1.2.4." + "7" * n),
                                                    (3, 0, EXPLICIT), (5, 3, EXPLICIT)])),
          (0, store), (1, failed), (0, move), (1, moved),
          (0, b.release_rq()), (1, b.release_rp())]
    return conversation(ex, 50003)
