"""Valid inputs the fuzzers start from: PDUs, command sets, whole conversations.

Mutating valid input reaches deep states (an established association, a half-received data set)
that random bytes almost never reach, so every harness mixes seeds from here with pure noise.
Built with tests/builders.py, i.e. plain struct, independently of the parser under test.
"""

from __future__ import annotations

import struct

from tests import builders as b

SECRET = "S3cr3t-Passw0rd!"  # a user identity passcode that must never be printed or exported
HOSTILE_AE = ("\x1b[31mEVIL\x1b[0m", "[red]BOLD[/red]", "[link=http://x]y")


def user_identity(username: str = "alice", password: str = SECRET, id_type: int = 2) -> bytes:
    """User Identity Negotiation sub-item (PS3.7 D.3.3.7): type 2 = username and passcode."""
    u, p = username.encode(), password.encode()
    return b.item(0x58, struct.pack("!BBH", id_type, 1, len(u)) + u + struct.pack("!H", len(p))
                  + p)


def rich_user_info(username: str = "alice", password: str = SECRET,
                   version: str = "TEST_1") -> bytes:
    """User information with every sub-item kind the parser knows, to seed deep item parsing."""
    role = struct.pack("!H", len(b.CT_STORAGE)) + b.CT_STORAGE.encode() + b"\x01\x01"
    ext = struct.pack("!H", len(b.CT_STORAGE)) + b.CT_STORAGE.encode() + b"\x01\x00\x01\x00"
    rel = b"1.2.3"
    common = (struct.pack("!H", len(b.CT_STORAGE)) + b.CT_STORAGE.encode()
              + struct.pack("!H", 6) + b"1.2.34" + struct.pack("!H", len(rel) + 2)
              + struct.pack("!H", len(rel)) + rel)
    extra = (b.item(0x53, struct.pack("!HH", 4, 4)) + b.item(0x54, role) + b.item(0x56, ext)
             + b.item(0x57, common) + user_identity(username, password))
    return b.user_info(version=version, extra=extra)


def associate_rq_rich(calling: str = "MODALITY", called: str = "ARCHIVE") -> bytes:
    return b.associate_rq(called=called, calling=calling, user=rich_user_info())


def associate_ac_rich() -> bytes:
    return b.associate_ac(user=b.user_info(extra=b.item(0x59, struct.pack("!H", 0))))


def store_exchange(n: int = 2, size: int = 3000, max_fragment: int = 1000) -> tuple[bytes, bytes]:
    """(requestor, acceptor) bytes of an association with ``n`` C-STOREs of ``size`` bytes."""
    rq = associate_rq_rich()
    ac = associate_ac_rich()
    ds = bytes(range(256)) * (size // 256 + 1)
    for i in range(1, n + 1):
        rq += b.store_request(i, ds[:size], max_fragment=max_fragment,
                              instance=f"1.2.3.4.5.6.7.8.{i}")
        ac += b.store_response(i, instance=f"1.2.3.4.5.6.7.8.{i}")
    return rq + b.release_rq(), ac + b.release_rp()


STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve Information Model - FIND
QUERY_CONTEXTS = [(1, b.VERIFICATION, [b.IMPLICIT_LE]), (5, STUDY_FIND, [b.IMPLICIT_LE])]


def query_steps(n: int = 6, finds: int = 2) -> list[tuple[int, bytes]]:
    """(side, bytes) in the order sent: an association with ``finds`` C-FINDs on context 5,
    each answered by ``n`` pending responses with an identifier and a final one: query-heavy
    traffic (the compiled walker of small-message runs, dicomsniff/analysis/accel.py)."""
    steps = [(0, b.associate_rq(contexts=QUERY_CONTEXTS, user=rich_user_info())),
             (1, b.associate_ac(results=[(1, 0, b.IMPLICIT_LE), (5, 0, b.IMPLICIT_LE)]))]
    for m in range(1, finds + 1):
        rq = b.p_data(b.pdv(5, 3, b.command_set(0x0020, message_id=m, sop_class=STUDY_FIND,
                                                priority=0, has_dataset=True)))
        rq += b.p_data(b.pdv(5, 2, b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY "))
        ac = b""
        for i in range(n):
            ac += b.p_data(b.pdv(5, 3, b.command_set(0x8020, responded_to=m,
                                                     sop_class=STUDY_FIND, status=0xFF00,
                                                     has_dataset=True)))
            ac += b.p_data(b.pdv(5, 2, b"\x10\x00\x10\x00\x08\x00\x00\x00" + b"DOE^%04d" % i))
        ac += b.p_data(b.pdv(5, 3, b.command_set(0x8020, responded_to=m, sop_class=STUDY_FIND,
                                                 status=0)))
        steps += [(0, rq), (1, ac)]
    return steps + [(0, b.release_rq()), (1, b.release_rp())]


def dcmtk_segments(data: bytes, mss: int = 1460) -> list[bytes]:
    """A stream cut as dcmtk writes it: each P-DATA-TF's PDU and first PDV item headers (12
    bytes) a segment of their own, the rest of each PDU in ``mss`` pieces."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        plen = struct.unpack_from("!I", data, pos + 2)[0] if pos + 6 <= len(data) else 0
        end = min(len(data), pos + 6 + plen)
        if data[pos] == 4 and end - pos > 12:
            out.append(data[pos:pos + 12])
            pos += 12
        out += [data[i:min(i + mss, end)] for i in range(pos, end, mss)]
        pos = end
    return out


def ul_seed_streams() -> list[bytes]:
    """Whole valid one-direction streams (requestor and acceptor sides)."""
    echo_rq, echo_ac = b.echo_exchange()
    st_rq, st_ac = store_exchange()
    return [echo_rq, echo_ac, st_rq, st_ac, b.associate_rj(), b.abort(2, 6),
            associate_rq_rich() + b.abort(0, 0)]


def seed_pdus() -> list[bytes]:
    """Single PDUs of every type, as units to concatenate and mutate."""
    cmd = b.command_set(0x0030, message_id=7, sop_class=b.VERIFICATION)
    return [
        b.associate_rq(), b.associate_ac(), associate_rq_rich(), associate_ac_rich(),
        b.associate_rj(), b.release_rq(), b.release_rp(), b.abort(),
        b.p_data(b.pdv(1, 3, cmd)),
        b.p_data(b.pdv(1, 1, cmd[:20]), b.pdv(1, 3, cmd[20:])),
        b.p_data(b.pdv(3, 0, bytes(100)), b.pdv(3, 2, bytes(50))),
        b.store_request(9, bytes(300), max_fragment=128),
        b.store_response(9),
    ]


def command_sets() -> list[bytes]:
    return [
        b.command_set(0x0030, message_id=1, sop_class=b.VERIFICATION),
        b.command_set(0x8030, responded_to=1, sop_class=b.VERIFICATION, status=0),
        b.command_set(0x0001, message_id=2, sop_class=b.CT_STORAGE, priority=0,
                      sop_instance="1.2.3.4", has_dataset=True),
        b.command_set(0x0021, message_id=3, sop_class=b.CT_STORAGE, priority=0,
                      move_destination="DEST", has_dataset=True),
        b.command_set(0x8021, responded_to=3, status=0xFF00,
                      extra={0x1020: b"\x01\x00", 0x1021: b"\x02\x00", 0x0901: b"\x10\x00\x10\x00",
                             0x0902: b"comment\x1b[31m"}),
        b.command_set(0x0FFF, responded_to=3),
    ]


# -- whole conversations -----------------------------------------------------------------------

def conversation(kind: str = "echo", *, port: int = 104, mss: int = 1460,
                 isn: tuple[int, int] = (1000, 5000),
                 client: tuple[str, int] = ("192.0.2.1", 50000)) -> list[bytes]:
    """Ethernet frames of one TCP connection carrying a DICOM association of ``kind``."""
    c = b.TcpConversation(client=client, server=("192.0.2.2", port), isn=isn).handshake()
    if kind == "echo":
        rq, ac = b.echo_exchange()
        steps = [(0, b.associate_rq()), (1, b.associate_ac()),
                 (0, rq[len(b.associate_rq()):-10]), (1, ac[len(b.associate_ac()):-10]),
                 (0, b.release_rq()), (1, b.release_rp())]
    elif kind == "store":
        rq, ac = store_exchange(n=2, size=3000, max_fragment=1000)
        a_rq, a_ac = associate_rq_rich(), associate_ac_rich()
        steps = [(0, a_rq), (1, a_ac), (0, rq[len(a_rq):-10]), (1, ac[len(a_ac):-10]),
                 (0, b.release_rq()), (1, b.release_rp())]
    elif kind == "bulk":  # data set PDVs longer than a segment: the walker's runs (accel.py)
        rq, ac = store_exchange(n=2, size=6000, max_fragment=3000)
        a_rq, a_ac = associate_rq_rich(), associate_ac_rich()
        steps = [(0, a_rq), (1, a_ac), (0, rq[len(a_rq):-10]), (1, ac[len(a_ac):-10]),
                 (0, b.release_rq()), (1, b.release_rp())]
    elif kind == "query":  # C-FINDs, headers in segments of their own: small-message runs
        for side, data in query_steps():
            for piece in dcmtk_segments(data, mss):
                c.send(side, piece, mss=len(piece))
        return c.close().frames
    elif kind == "reject":
        steps = [(0, b.associate_rq()), (1, b.associate_rj())]
    elif kind == "abort":
        steps = [(0, associate_rq_rich()), (1, b.associate_ac()), (0, b.abort(0, 0))]
    else:
        raise ValueError(kind)
    for side, data in steps:
        c.send(side, data, mss=mss)
    return c.close().frames


CONVERSATION_KINDS = ("echo", "store", "reject", "abort", "bulk", "query")


def hostile_strings_conversation(password: str = SECRET) -> list[bytes]:
    """An association whose wire strings are terminal escapes and rich markup.

    AE titles are 16 bytes, so each hostile string goes where it fits: calling/called AE, the
    implementation version name, the user name, an error comment and a UID.
    """
    calling, called, version = HOSTILE_AE
    rq = b.associate_rq(
        called=called, calling=calling,
        user=rich_user_info(username="[bold]root[/bold]\x07", password=password,
                            version=version))
    ac = b.associate_ac(called=called, calling=calling,
                        user=b.user_info(impl_uid="1.2.3.[red]9", version="\x1b]0;pwned\x07"))
    cmd = b.command_set(0x0030, message_id=1, sop_class=b.VERIFICATION)
    rsp = b.command_set(0x8030, responded_to=1, sop_class=b.VERIFICATION, status=0xC000,
                        extra={0x0902: b"\x1b[2J[blink]boom[/blink]"})
    c = b.TcpConversation().handshake()
    c.send(0, rq).send(1, ac).send(0, b.p_data(b.pdv(1, 3, cmd)))
    c.send(1, b.p_data(b.pdv(1, 3, rsp))).send(0, b.release_rq()).send(1, b.release_rp())
    return c.close().frames
