"""Hand-built PS3.8 PDUs and PS3.7 command sets for edge cases real peers cannot produce.

Plain struct, independent of the parser under test, so a shared misunderstanding of the
standard cannot hide. Also used by the fuzz harnesses and the mutated corpus as seeds.
"""

from __future__ import annotations

import struct

VERIFICATION = "1.2.840.10008.1.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
APP_CONTEXT = "1.2.840.10008.3.1.1.1"


def _uid(u: str) -> bytes:
    b = u.encode()
    return b + b"\x00" if len(b) % 2 else b


def item(itype: int, value: bytes) -> bytes:
    return struct.pack("!BxH", itype, len(value)) + value


def pdu(ptype: int, body: bytes) -> bytes:
    return struct.pack("!BxI", ptype, len(body)) + body


def ae(title: str) -> bytes:
    return title.encode().ljust(16, b" ")[:16]


def user_info(max_pdu: int = 16384, impl_uid: str = "1.2.3.4.5.6", version: str = "TEST_1",
              extra: bytes = b"") -> bytes:
    v = item(0x51, struct.pack("!I", max_pdu)) + item(0x52, _uid(impl_uid))
    if version:
        v += item(0x55, version.encode())
    return item(0x50, v + extra)


def associate_rq(called: str = "ARCHIVE", calling: str = "MODALITY",
                 contexts: list[tuple[int, str, list[str]]] | None = None,
                 user: bytes | None = None) -> bytes:
    if contexts is None:
        contexts = [(1, VERIFICATION, [IMPLICIT_LE]), (3, CT_STORAGE, [EXPLICIT_LE, IMPLICIT_LE])]
    body = struct.pack("!H2x", 1) + ae(called) + ae(calling) + bytes(32)
    body += item(0x10, APP_CONTEXT.encode())
    for cid, abstract, tss in contexts:
        sub = item(0x30, _uid(abstract)) + b"".join(item(0x40, _uid(t)) for t in tss)
        body += item(0x20, struct.pack("!B3x", cid) + sub)
    body += user if user is not None else user_info()
    return pdu(1, body)


def associate_ac(called: str = "ARCHIVE", calling: str = "MODALITY",
                 results: list[tuple[int, int, str]] | None = None,
                 user: bytes | None = None) -> bytes:
    if results is None:
        results = [(1, 0, IMPLICIT_LE), (3, 0, EXPLICIT_LE)]
    body = struct.pack("!H2x", 1) + ae(called) + ae(calling) + bytes(32)
    body += item(0x10, APP_CONTEXT.encode())
    for cid, result, ts in results:
        body += item(0x21, struct.pack("!BxBx", cid, result) + item(0x40, _uid(ts)))
    body += user if user is not None else user_info()
    return pdu(2, body)


def associate_rj(result: int = 1, source: int = 1, reason: int = 7) -> bytes:
    return pdu(3, struct.pack("!xBBB", result, source, reason))


def release_rq() -> bytes:
    return pdu(5, bytes(4))


def release_rp() -> bytes:
    return pdu(6, bytes(4))


def abort(source: int = 0, reason: int = 0) -> bytes:
    return pdu(7, struct.pack("!xxBB", source, reason))


def pdv(ctx: int, mch: int, value: bytes) -> bytes:
    return struct.pack("!IBB", len(value) + 2, ctx, mch) + value


def p_data(*pdvs: bytes) -> bytes:
    return pdu(4, b"".join(pdvs))


def _elem(elem: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00" if elem in (0x0002, 0x0003, 0x1000, 0x1001) else b" "
    return struct.pack("<HHI", 0, elem, len(value)) + value


def command_set(command_field: int, *, message_id: int | None = None,
                responded_to: int | None = None, sop_class: str | None = None,
                sop_instance: str | None = None, status: int | None = None,
                has_dataset: bool = False, priority: int | None = None,
                move_destination: str | None = None,
                extra: dict[int, bytes] | None = None) -> bytes:
    """Command set (group 0000, implicit VR LE) with a correct group length."""
    elems: dict[int, bytes] = {}
    if sop_class is not None:
        elems[0x0002] = sop_class.encode()
    elems[0x0100] = struct.pack("<H", command_field)
    if message_id is not None:
        elems[0x0110] = struct.pack("<H", message_id)
    if responded_to is not None:
        elems[0x0120] = struct.pack("<H", responded_to)
    if move_destination is not None:
        elems[0x0600] = move_destination.encode().ljust(16)
    if priority is not None:
        elems[0x0700] = struct.pack("<H", priority)
    elems[0x0800] = struct.pack("<H", 0x0000 if has_dataset else 0x0101)
    if status is not None:
        elems[0x0900] = struct.pack("<H", status)
    if sop_instance is not None:
        elems[0x1000] = sop_instance.encode()
    for k, v in (extra or {}).items():
        elems[k] = v
    body = b"".join(_elem(k, v) for k, v in sorted(elems.items()))
    return _elem(0x0000, struct.pack("<I", len(body))) + body


def echo_exchange() -> tuple[bytes, bytes]:
    """(requestor bytes, acceptor bytes) of a whole C-ECHO association."""
    rq = associate_rq() + p_data(pdv(1, 3, command_set(0x0030, message_id=1,
                                                            sop_class=VERIFICATION)))
    rq += release_rq()
    ac = associate_ac() + p_data(pdv(1, 3, command_set(0x8030, responded_to=1,
                                                           sop_class=VERIFICATION, status=0)))
    ac += release_rp()
    return rq, ac


def store_request(message_id: int, dataset: bytes, *, ctx: int = 3, max_fragment: int = 16372,
                  instance: str = "1.2.3.4.5.6.7.8.1") -> bytes:
    """A C-STORE-RQ with its data set split into P-DATA-TF PDUs of max_fragment bytes."""
    out = p_data(pdv(ctx, 3, command_set(0x0001, message_id=message_id, sop_class=CT_STORAGE,
                                         sop_instance=instance, priority=0,
                                         has_dataset=True)))
    for i in range(0, len(dataset), max_fragment):
        chunk = dataset[i:i + max_fragment]
        last = i + max_fragment >= len(dataset)
        out += p_data(pdv(ctx, 2 if last else 0, chunk))
    return out


def store_response(message_id: int, status: int = 0, *, ctx: int = 3,
                   instance: str = "1.2.3.4.5.6.7.8.1") -> bytes:
    return p_data(pdv(ctx, 3, command_set(0x8001, responded_to=message_id, sop_class=CT_STORAGE,
                                          sop_instance=instance, status=status)))


# -- link, IP and TCP framing, for engine tests without pcap files -----------------------------

def ipv4_tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
             payload: bytes = b"") -> bytes:
    """An Ethernet frame with IPv4 and TCP headers (checksums zero: the analyzer ignores them)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4,
                      flags, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0,
                     bytes(int(x) for x in src.split(".")), bytes(int(x) for x in dst.split(".")))
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + tcp + payload


class TcpConversation:
    """Builds the frames of one TCP connection, segmenting each side's bytes."""

    SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08

    def __init__(self, client=("192.0.2.1", 50000), server=("192.0.2.2", 104),
                 isn=(1000, 5000)) -> None:
        self.c, self.s = client, server
        self.seq = [isn[0], isn[1]]
        self.frames: list[bytes] = []

    def _frame(self, side: int, flags: int, payload: bytes = b"", seq: int | None = None):
        a, b = (self.c, self.s) if side == 0 else (self.s, self.c)
        s = self.seq[side] if seq is None else seq
        f = ipv4_tcp(a[0], b[0], a[1], b[1], s, self.seq[1 - side], flags, payload)
        return f

    def handshake(self) -> TcpConversation:
        self.frames.append(self._frame(0, self.SYN))
        self.seq[0] += 1
        self.frames.append(self._frame(1, self.SYN | self.ACK))
        self.seq[1] += 1
        self.frames.append(self._frame(0, self.ACK))
        return self

    def send(self, side: int, data: bytes, mss: int = 1460) -> TcpConversation:
        for i in range(0, len(data), mss):
            chunk = data[i:i + mss]
            self.frames.append(self._frame(side, self.ACK | self.PSH, chunk))
            self.seq[side] += len(chunk)
        return self

    def close(self) -> TcpConversation:
        for side in (0, 1):
            self.frames.append(self._frame(side, self.FIN | self.ACK))
            self.seq[side] += 1
        return self
