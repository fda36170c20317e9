"""The analysis engine on hand-built conversations: detection, matching, states, findings.

Every conversation goes through both paths of the engine, the general ``feed_frame`` and
the inlined fast path of ``consume`` (issue 14: they disagreed on TSO lengths and short TCP
data offsets), and both must tell the same story."""

from __future__ import annotations

import json
import random
import struct

from dicomsniff.analysis.engine import Analyzer
from tests import builders as b


def _story(a: Analyzer) -> str:
    out = [json.dumps(x.to_record(), sort_keys=True, default=str) for x in a.associations]
    out += [json.dumps(t.to_record(), sort_keys=True, default=str)
            for x in a.associations for t in x.transactions]
    out += [json.dumps(f.to_record(), sort_keys=True, default=str) for f in a.findings]
    return "\n".join(out)


def run(frames: list[bytes], **kw) -> Analyzer:
    a = Analyzer(**kw)
    for i, f in enumerate(frames):
        a.feed_frame(i + 1, 1000.0 + i * 0.01, 1, f)
    a.finish()
    # the fast path, without hooks that would see each data set twice (collection does not
    # change the analysis)
    fast = Analyzer(**{k: v for k, v in kw.items() if k != "want_dataset"})
    fast.consume((1000.0 + i * 0.01, 1, f, len(f)) for i, f in enumerate(frames))
    fast.finish()
    assert _story(fast) == _story(a), "consume() and feed_frame() disagree"
    return a


def echo_conv(port: int = 104, **kw) -> b.TcpConversation:
    rq, ac = b.echo_exchange()
    c = b.TcpConversation(server=("192.0.2.2", port), **kw).handshake()
    # Interleave in protocol order.
    rq_parts = [b.associate_rq(), rq[len(b.associate_rq()):-10], b.release_rq()]
    ac_parts = [b.associate_ac(), ac[len(b.associate_ac()):-10], b.release_rp()]
    for x, y in zip(rq_parts, ac_parts, strict=True):
        c.send(0, x)
        c.send(1, y)
    return c.close()


def codes(a: Analyzer) -> list[str]:
    return [f.code for f in a.findings]


def test_echo_on_any_port_is_detected_and_released():
    for port in (104, 11112, 4242, 33333):
        a = run(echo_conv(port).frames)
        assert len(a.associations) == 1, port
        assoc = a.associations[0]
        assert assoc.outcome == "released"
        assert (assoc.calling_ae, assoc.called_ae) == ("MODALITY", "ARCHIVE")
        assert assoc.server.endswith(f":{port}")
        (t,) = assoc.transactions
        assert (t.command, t.message_id, t.status, t.status_category) == (
            "C-ECHO", 1, 0, "Success")
        assert assoc.pdus["requestor"] == {"A-ASSOCIATE-RQ": 1, "P-DATA-TF": 1,
                                           "A-RELEASE-RQ": 1}


def test_non_dicom_connection_is_dropped_after_one_look():
    c = b.TcpConversation(server=("192.0.2.2", 104)).handshake()
    # (HTTP is analysed since DICOMweb: tests/test_dicomweb_*; an SSH banner is neither)
    c.send(0, b"SSH-2.0-OpenSSH_9.2\r\n" + bytes(300)).send(1, b"SSH-2.0-OpenSSH_9.2\r\n" * 50)
    a = run(c.close().frames)
    assert a.associations == [] and a.stats.ignored_connections == 1
    assert not a.open


def test_many_messages_in_one_segment_and_store_matching():
    ds = bytes(range(256)) * 100
    c = b.TcpConversation().handshake()
    c.send(0, b.associate_rq()).send(1, b.associate_ac())
    c.send(0, b.store_request(1, ds, instance="1.2.3.1") + b.store_request(2, ds,
                                                                           instance="1.2.3.2"))
    c.send(1, b.store_response(1, instance="1.2.3.1") + b.store_response(2, 0xA700,
                                                                         instance="1.2.3.2"))
    c.send(0, b.release_rq()).send(1, b.release_rp())
    a = run(c.close().frames)
    (assoc,) = a.associations
    t1, t2 = assoc.transactions
    assert (t1.command, t1.status, t1.dataset_bytes, t1.sop_instance) == (
        "C-STORE", 0, len(ds), "1.2.3.1")
    assert (t2.status, t2.status_category) == (0xA700, "Failure")
    assert "Out of resources" in t2.status_meaning


def test_rejected_association_reasons_in_words():
    c = b.TcpConversation().handshake()
    c.send(0, b.associate_rq()).send(1, b.associate_rj(1, 1, 7))
    a = run(c.close().frames)
    (assoc,) = a.associations
    assert assoc.outcome == "rejected"
    assert assoc.reject == {"result": 1, "source": 1, "reason": 7}
    assert "called" in assoc.reason.lower()
    assert "ASSOC-REJECTED" in codes(a)


def test_abort_records_who_and_why():
    c = b.TcpConversation().handshake()
    c.send(0, b.associate_rq()).send(1, b.associate_ac())
    c.send(0, b.store_request(1, b"\x00" * 4000)[:3000])  # cut mid data set
    c.send(1, b.abort(2, 2))
    a = run(c.close().frames)
    (assoc,) = a.associations
    assert assoc.outcome == "aborted" and assoc.abort["by"] == "acceptor"
    assert assoc.abort["source"] == 2 and assoc.abort["reason"] == 2
    assert "ASSOC-ABORTED" in codes(a)
    assert "DIMSE-NO-RESPONSE" in codes(a)


def test_rst_without_release_is_closed():
    c = b.TcpConversation().handshake()
    c.send(0, b.associate_rq()).send(1, b.associate_ac())
    c.frames.append(c._frame(0, c.RST | c.ACK))
    a = run(c.frames)
    (assoc,) = a.associations
    assert assoc.outcome == "closed"
    assert "ASSOC-CLOSED-NO-RELEASE" in codes(a)


def test_capture_ending_mid_association_is_incomplete():
    c = b.TcpConversation().handshake()
    c.send(0, b.associate_rq()).send(1, b.associate_ac())
    a = run(c.frames)
    assert a.associations[0].outcome == "incomplete"


def test_port_reuse_starts_a_new_association():
    frames = echo_conv(isn=(1000, 5000)).frames + echo_conv(isn=(900_000, 7000)).frames
    a = run(frames)
    assert len(a.associations) == 2
    assert all(x.outcome == "released" for x in a.associations)


def test_capture_starting_mid_association():
    ds = bytes(range(256)) * 100
    c = b.TcpConversation().handshake()
    c.send(0, b.associate_rq()).send(1, b.associate_ac())
    n_head = len(c.frames)
    c.send(0, b.store_request(1, ds)).send(1, b.store_response(1))
    c.send(0, b.store_request(2, ds)).send(1, b.store_response(2))
    c.send(0, b.release_rq()).send(1, b.release_rp())
    frames = c.close().frames[n_head + 5:]  # lose the handshake, the negotiation, and more
    a = run(frames)
    (assoc,) = a.associations
    assert assoc.midstream and assoc.outcome == "released"
    assert [t.message_id for t in assoc.transactions] == [2]
    assert assoc.transactions[0].status == 0


def test_interleaved_messages_are_decoded_and_reported():
    cmd1 = b.command_set(0x0001, message_id=1, sop_class=b.CT_STORAGE, sop_instance="1.1",
                         has_dataset=True)
    cmd2 = b.command_set(0x0030, message_id=2, sop_class=b.VERIFICATION)
    stream = (b.associate_rq() + b.p_data(b.pdv(3, 3, cmd1)) + b.p_data(b.pdv(3, 0, b"\0" * 10))
              + b.p_data(b.pdv(1, 3, cmd2)) + b.p_data(b.pdv(3, 2, b"\0" * 10)))
    c = b.TcpConversation().handshake()
    c.send(0, stream[:len(b.associate_rq())]).send(1, b.associate_ac())
    c.send(0, stream[len(b.associate_rq()):])
    a = run(c.close().frames)
    (assoc,) = a.associations
    assert [t.command for t in assoc.transactions] == ["C-STORE", "C-ECHO"]
    assert assoc.transactions[0].dataset_bytes == 20
    assert "DIMSE-INTERLEAVED" in codes(a)  # PS3.8 E.1: not permitted, but decoded


def test_out_of_order_segments_are_reassembled():
    c = b.TcpConversation().handshake()
    c.send(0, b.associate_rq(), mss=40)  # the A-ASSOCIATE-RQ in several segments
    n = len(c.frames)
    c.send(1, b.associate_ac())
    rq, ac = b.echo_exchange()
    c.send(0, rq[len(b.associate_rq()):]).send(1, ac[len(b.associate_ac()):])
    frames = c.close().frames
    frames[3:n] = list(reversed(frames[3:n]))  # the client's segments arrive backwards
    a = run(frames)
    assert a.associations[0].outcome == "released"
    assert a.associations[0].transactions[0].status == 0


def test_garbage_and_random_frames_never_crash():
    rnd = random.Random(3)
    base = echo_conv().frames
    for _ in range(200):
        frames = []
        for f in base:
            f = bytearray(f)
            if rnd.random() < 0.3:
                for _ in range(rnd.randrange(1, 6)):
                    f[rnd.randrange(len(f))] = rnd.randrange(256)
            if rnd.random() < 0.1:
                f = f[:rnd.randrange(len(f))]
            frames.append(bytes(f))
        run(frames)


def test_ipv6_and_vlan_and_sll():
    from dissectors.net import format_endpoint, l3_offset, tcp_segment

    ip6 = (struct.pack("!IHBB", 0x60000000, 20, 6, 64) + bytes(15) + b"\x01" + bytes(15)
           + b"\x02" + struct.pack("!HHIIBBHHH", 50000, 104, 1, 0, 0x50, 0x02, 1000, 0, 0))
    eth_vlan = b"\x00" * 12 + b"\x81\x00\x00\x05\x86\xdd" + ip6
    et, off = l3_offset(1, eth_vlan)
    seg = tcp_segment(eth_vlan, et, off)
    assert seg is not None and format_endpoint(seg[0], 1) == "[::2]:104"
    sll = b"\x00" * 14 + b"\x86\xdd" + ip6
    assert l3_offset(113, sll) == (0x86DD, 16)
    sll2 = b"\x86\xdd" + b"\x00" * 18 + ip6
    assert l3_offset(276, sll2) == (0x86DD, 20)
    null = struct.pack("<I", 30) + ip6
    assert l3_offset(0, null) == (0x86DD, 4)


class _Collect:
    def __init__(self, store: list, key) -> None:
        self.store, self.key, self.buf = store, key, bytearray()

    def write(self, data: bytes) -> None:
        self.buf += data

    def close(self, partial: bool) -> None:
        self.store.append((self.key, bytes(self.buf), partial))


def test_dataset_bytes_are_delivered_only_when_asked():
    ds1 = bytes(range(256)) * 100
    ds2 = b"\x07\x00" * 3000
    c = b.TcpConversation().handshake()
    c.send(0, b.associate_rq()).send(1, b.associate_ac())
    c.send(0, b.store_request(1, ds1, max_fragment=1000, instance="1.9.1"))
    c.send(1, b.store_response(1, instance="1.9.1"))
    c.send(0, b.store_request(2, ds2, instance="1.9.2")).send(1, b.store_response(2))
    c.send(0, b.release_rq()).send(1, b.release_rp())
    got: list = []

    def want(assoc, side, msg):
        return _Collect(got, msg.command.get("AffectedSOPInstanceUID"))

    a = run(c.close().frames, want_dataset=want)
    assert got == [("1.9.1", ds1, False), ("1.9.2", ds2, False)]
    assert a.associations[0].transactions[0].dataset_bytes == len(ds1)
    plain = run(c.frames)  # without the hook nothing is collected, same analysis
    assert plain.associations[0].transactions[1].dataset_bytes == len(ds2)


def test_pdu_longer_than_announced_max_is_reported():
    c = b.TcpConversation().handshake()
    c.send(0, b.associate_rq()).send(1, b.associate_ac(user=b.user_info(max_pdu=1000)))
    c.send(0, b.store_request(1, b"\x00" * 5000, max_fragment=4000)).send(1, b.store_response(1))
    a = run(c.close().frames)
    found = [f for f in a.findings if f.code == "UL-PDU-TOO-LONG"]
    assert len(found) == 1 and "1000" in found[0].message


def test_on_transaction_fires_once_the_final_response_data_set_is_in():
    from pathlib import Path

    from dicomsniff.analysis.run import analyze_source

    a = Analyzer()
    seen = []
    a.on_transaction.append(lambda assoc, t: seen.append((t.command, t.status,
                                                          t.response_dataset_bytes)))
    analyze_source(Path(__file__).parent.parent / "captures" / "nget.pcap", a)
    ok = [s for s in seen if s[1] == 0]
    assert ok and ok[0][0] == "N-GET" and ok[0][2] > 0  # the attributes came with the RSP
    assert len(seen) == len(a.associations[0].transactions)
