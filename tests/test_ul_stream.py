"""The upper-layer stream parser, h11-style: every reader whole, byte by byte, at every split,
and with trailing data; plus the malformed and hostile cases real peers do not produce."""

from __future__ import annotations

import struct

import pytest

from dissectors.ul import events as ev
from dissectors.ul.stream import ULStream, plausible_pdu
from tests import builders as b


def norm(events: list) -> list[tuple]:
    """Events without frame numbers and times, so differently split feeds compare equal."""
    out = []
    for e in events:
        t = type(e).__name__
        if isinstance(e, ev.PdvCommand):
            out.append((t, e.context_id, e.last, e.value))
        elif isinstance(e, ev.PdvData):
            out.append((t, e.context_id, e.last, e.length))
        elif isinstance(e, ev.DataComplete):
            out.append((t, e.context_id, e.partial))
        elif isinstance(e, (ev.AssociateRQ, ev.AssociateAC)):
            out.append((t, e.called_ae, e.calling_ae, repr(e.contexts), repr(e.user)))
        elif isinstance(e, ev.AssociateRJ):
            out.append((t, e.result, e.source, e.reason))
        elif isinstance(e, ev.Abort):
            out.append((t, e.source, e.reason))
        elif isinstance(e, ev.PDataTF):
            out.append((t, e.length))
        elif isinstance(e, (ev.Malformed,)):
            out.append((t, e.code))
        elif isinstance(e, ev.Resync):
            out.append((t, e.skipped))
        else:
            out.append((t,))
    return out


def feed_chunks(data: bytes, sizes, synced: bool = True) -> list:
    s = ULStream(synced=synced)
    pos = 0
    frame = 0
    for n in sizes:
        if pos >= len(data):
            break
        frame += 1
        s.feed(data[pos:pos + n], frame, float(frame))
        pos += n
    if pos < len(data):
        s.feed(data[pos:], frame + 1, 0.0)
    s.close(frame + 2, 0.0)
    return s.events


def whole(data: bytes, synced: bool = True) -> list:
    return feed_chunks(data, [len(data)], synced)


REQUESTOR, ACCEPTOR = b.echo_exchange()
STORE = (b.associate_rq() + b.store_request(1, bytes(range(256)) * 200, max_fragment=4000)
         + b.store_request(2, b"\x01\x02" * 3000) + b.release_rq())


def test_whole_echo_association_requestor_side():
    events = whole(REQUESTOR)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["AssociateRQ", "PDataTF", "PdvCommand", "ReleaseRQ"]
    rq = events[0]
    assert rq.called_ae == "ARCHIVE" and rq.calling_ae == "MODALITY"
    assert [c.id for c in rq.contexts] == [1, 3]
    assert rq.contexts[1].transfer_syntaxes == [b.EXPLICIT_LE, b.IMPLICIT_LE]
    assert rq.user.max_pdu == 16384 and rq.user.implementation_version_name == "TEST_1"
    assert events[2].last and events[2].context_id == 1


def test_whole_echo_association_acceptor_side():
    events = whole(ACCEPTOR)
    assert [type(e).__name__ for e in events] == ["AssociateAC", "PDataTF", "PdvCommand",
                                                  "ReleaseRP"]
    assert [(c.id, c.result, c.transfer_syntax) for c in events[0].contexts] == [
        (1, 0, b.IMPLICIT_LE), (3, 0, b.EXPLICIT_LE)]


@pytest.mark.parametrize("data", [REQUESTOR, ACCEPTOR, STORE], ids=["rq", "ac", "store"])
def test_byte_by_byte_equals_whole(data):
    assert norm(feed_chunks(data, [1] * len(data))) == norm(whole(data))


@pytest.mark.parametrize("data", [REQUESTOR, ACCEPTOR], ids=["rq", "ac"])
def test_every_split_offset_equals_whole(data):
    expected = norm(whole(data))
    for cut in range(1, len(data)):
        assert norm(feed_chunks(data, [cut, len(data)])) == expected, cut


def test_store_split_at_many_offsets_counts_dataset_bytes():
    expected = norm(whole(STORE))
    for cut in range(1, len(STORE), 97):
        assert norm(feed_chunks(STORE, [cut, 1000, 7, 5000])) == expected
    s = ULStream()
    s.feed(STORE, 1, 0.0)
    assert s.data_bytes == 256 * 200 + 6000
    completes = [e for e in s.events if isinstance(e, ev.DataComplete)]
    assert len(completes) == 2 and not any(e.partial for e in completes)


def test_many_pdus_in_one_chunk_and_trailing_partial_pdu():
    data = REQUESTOR + REQUESTOR[:20]
    events = whole(data)
    assert norm(events[:4]) == norm(whole(REQUESTOR)[:4])
    # The trailing partial A-ASSOCIATE-RQ is reported when the stream closes inside it.
    assert events[-1].code == "UL-STREAM-TRUNCATED"


def test_all_seven_pdu_types():
    data = (b.associate_rq() + b.associate_ac() + b.associate_rj(2, 3, 1)
            + b.p_data(b.pdv(1, 3, b"\x00\x00")) + b.release_rq() + b.release_rp()
            + b.abort(2, 6))
    kinds = [type(e).__name__ for e in whole(data)]
    assert kinds == ["AssociateRQ", "AssociateAC", "AssociateRJ", "PDataTF", "PdvCommand",
                     "ReleaseRQ", "ReleaseRP", "Abort"]
    rj = [e for e in whole(data) if isinstance(e, ev.AssociateRJ)][0]
    assert (rj.result, rj.source, rj.reason) == (2, 3, 1)


def test_user_information_sub_items():
    extra = (b.item(0x53, struct.pack("!HH", 5, 3))
             + b.item(0x54, struct.pack("!H", 9) + b"1.2.3.4.5" + b"\x01\x00")
             + b.item(0x56, struct.pack("!H", 5) + b"1.2.3" + b"\x01\x01")
             + b.item(0x57, struct.pack("!H", 5) + b"1.2.3" + struct.pack("!H", 3) + b"4.5"
                      + struct.pack("!H", 5) + struct.pack("!H", 3) + b"6.7")
             + b.item(0x58, b"\x02\x01" + struct.pack("!H", 5) + b"alice"
                      + struct.pack("!H", 6) + b"s3cret"))
    rq = whole(b.associate_rq(user=b.user_info(extra=extra)))[0]
    u = rq.user
    assert (u.async_invoked, u.async_performed) == (5, 3)
    assert (u.roles[0].sop_class, u.roles[0].scu_role, u.roles[0].scp_role) == ("1.2.3.4.5", 1, 0)
    assert u.extended[0].sop_class == "1.2.3" and u.extended[0].info == b"\x01\x01"
    assert u.common_extended[0].service_class == "4.5"
    assert u.common_extended[0].related_classes == ["6.7"]
    assert u.identity_type == 2 and u.identity_response_requested is True
    assert u.identity_username == "alice"
    assert "s3cret" not in repr(rq)  # the passcode is never kept


def test_zero_length_items_and_odd_lengths():
    user = b.item(0x50, b.item(0x51, b"") + b.item(0x52, b"1.2.345") + b.item(0x55, b""))
    events = whole(b.associate_rq(user=user))
    rq = [e for e in events if isinstance(e, ev.AssociateRQ)][0]
    assert rq.user.max_pdu is None
    assert rq.user.implementation_class_uid == "1.2.345"
    assert rq.user.implementation_version_name == ""
    assert "UL-MAXLEN-BAD" in [e.code for e in events if isinstance(e, ev.Malformed)]


def test_item_overrunning_its_pdu_is_reported_and_parse_continues():
    good = b.associate_rq()
    # Lengthen the user information item's length field past the end of the PDU.
    idx = good.rindex(b"\x50\x00")
    bad = good[:idx + 2] + struct.pack("!H", 0xFFF0) + good[idx + 4:]
    events = whole(bad + b.release_rq())
    codes = [e.code for e in events if isinstance(e, ev.Malformed)]
    assert "UL-ITEM-OVERRUN" in codes
    assert isinstance(events[-1], ev.ReleaseRQ)  # framing held: the PDU length was right


def test_pdv_overrunning_its_pdu_resynchronises():
    bad = b.pdu(4, struct.pack("!IBB", 500, 1, 3) + b"\x00" * 10)
    events = whole(bad + REQUESTOR)
    assert events[0].code == "UL-PDV-LENGTH" if isinstance(events[0], ev.Malformed) else True
    assert any(isinstance(e, ev.Malformed) and e.code == "UL-PDV-LENGTH" for e in events)
    assert any(isinstance(e, ev.AssociateRQ) for e in events)


def test_huge_pdu_length_allocates_nothing_and_resynchronises():
    bad = struct.pack("!BxI", 1, 0xFFFFFFFF) + b"\xAA" * 64
    s = ULStream()
    s.feed(bad + REQUESTOR, 1, 0.0)
    assert len(s._body) == 0
    codes = [e.code for e in s.events if isinstance(e, ev.Malformed)]
    assert codes[0] == "UL-PDU-LENGTH"
    assert any(isinstance(e, ev.AssociateRQ) for e in s.events)


def test_unknown_pdu_type_then_recovery():
    events = whole(b"\x09\x00\x00\x00\x00\x04abcd" + REQUESTOR)
    assert events[0].code == "UL-PDU-TYPE"
    assert any(isinstance(e, ev.Resync) for e in events)
    assert norm([e for e in events if not isinstance(e, (ev.Malformed, ev.Resync))]) == norm(
        whole(REQUESTOR))


def test_midstream_pickup_inside_a_data_pdv():
    events = whole(STORE[3000:], synced=False)
    resync = [e for e in events if isinstance(e, ev.Resync)]
    assert len(resync) == 1 and resync[0].skipped > 0
    cmds = [e for e in events if isinstance(e, ev.PdvCommand)]
    assert len(cmds) >= 1  # the second C-STORE-RQ command was found
    assert isinstance(events[-1], ev.ReleaseRQ)


def test_midstream_garbage_only_is_one_finding_not_thousands():
    s = ULStream(synced=False)
    junk = bytes((i * 37 + 11) % 248 + 8 for i in range(200_000))  # never 0x01-0x07
    for i in range(0, len(junk), 1000):
        s.feed(junk[i:i + 1000], i, 0.0)
    s.close(999, 0.0)
    assert [type(e).__name__ for e in s.events] == ["Resync"]
    assert s.events[0].skipped == len(junk)


def test_gap_inside_dataset_keeps_framing_and_marks_partial():
    data = b.store_request(1, b"\x00" * 10000, max_fragment=10000) + b.release_rq()
    s = ULStream()
    s.feed(data[:2000], 1, 0.0)
    s.gap(1000, 2, 0.0)
    s.feed(data[3000:], 3, 0.0)
    kinds = [type(e).__name__ for e in s.events]
    assert "StreamGap" in kinds and kinds[-1] == "ReleaseRQ"
    done = [e for e in s.events if isinstance(e, ev.DataComplete)]
    assert done and done[0].partial


def test_gap_across_a_header_resynchronises():
    data = REQUESTOR
    s = ULStream()
    s.feed(data[:5], 1, 0.0)
    s.gap(100, 2, 0.0)
    s.feed(data[105:] + REQUESTOR, 3, 0.0)
    gaps = [e for e in s.events if isinstance(e, ev.StreamGap)]
    assert gaps and gaps[0].resynchronised
    assert any(isinstance(e, ev.AssociateRQ) for e in s.events)


def test_thousands_of_one_byte_pdvs_are_linear_and_reported():
    pdvs = b"".join(b.pdv(1, 0, b"\x00") for _ in range(5000))
    s = ULStream()
    s.feed(b.p_data(*[pdvs]), 1, 0.0)
    odd = [e for e in s.events if isinstance(e, ev.Malformed) and e.code == "UL-PDV-ODD"]
    assert len(odd) == 5000
    assert s.data_bytes == 5000


def test_plausible_pdu_rejects_random_bytes_and_accepts_real_headers():
    assert plausible_pdu(REQUESTOR, 0) is True
    assert plausible_pdu(ACCEPTOR, 0) is True
    assert plausible_pdu(b.release_rq(), 0) is True
    assert plausible_pdu(b"GET / HTTP/1.1\r\n", 0) is False
    assert plausible_pdu(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03", 0) is False
    assert plausible_pdu(b"\x04\x00\x00", 0) is None


def test_wire_strings_are_escaped():
    rq = whole(b.associate_rq(calling="\x1b[31mEVIL", called="[red]X"))[0]
    assert rq.calling_ae == "\\x1b[31mEVIL"
    assert rq.called_ae == "[red]X"  # markup is escaped by the presentation layer


@pytest.mark.parametrize("last", [bytes.fromhex("05000000000400000000"),  # A-RELEASE-RQ
                                  bytes.fromhex("06000000000400000000"),  # A-RELEASE-RP
                                  bytes.fromhex("07000000000400000200")])  # A-ABORT
def test_a_lone_short_pdu_right_after_a_loss_is_found(last: bytes) -> None:
    """A real storescu stream (captures/hostile/store-240.pcap) loses bytes somewhere in
    its last P-DATA-TF PDUs, the header of one among them; the resynchronising parser must
    still find the short PDU that follows, by its fixed length (PS3.8 9.3.6-9.3.8), not
    take image bytes for a P-DATA-TF that swallows it."""
    import random
    from pathlib import Path

    from captures import pcapfile

    cap = Path(__file__).resolve().parent.parent / "captures" / "hostile" / "store-240.pcap"
    segs = list(pcapfile.segments(cap))
    syn = next(s for s in segs if s.syn and not s.flags & 0x10)
    data, _marks = pcapfile.stream(segs, (syn.src, syn.sport), (syn.dst, syn.dport))
    pdus = pcapfile.pdus(data)
    rel = next(p for p in pdus if p.type == 0x05)
    data = data[:rel.start] + last
    want = {0x05: ev.ReleaseRQ, 0x06: ev.ReleaseRP, 0x07: ev.Abort}[last[0]]
    rnd = random.Random(14)
    for _ in range(60):
        a = rnd.randrange(pdus[-8].start, rel.start - 1)
        z = rnd.randrange(a + 1, rel.start + 1)
        u = ULStream()
        u.set_max_pdu(16384)
        u.feed(memoryview(data[:a]), 1, 0.0)
        u.gap(z - a, 2, 0.0)
        for i in range(z, len(data), 1448):
            u.feed(memoryview(data[i:i + 1448]), 3, 0.0)
        assert any(type(e) is want for e in u.events), (a, z)
