"""Fuzz targets for the HTTP dissector, the multipart reader and the DICOMweb interpretation.

``http``: both directions of an HTTP connection (real DICOMweb exchanges from the recordings,
mutated, cut at random points, with gaps) through :class:`HttpConnection` and the DICOMweb
handler. Invariants: no exception, buffers within their caps, every wire string escaped, and
for unmutated input the same transactions whatever the segmentation.
``multipart``: mutated multipart/related bodies; parts stream, nothing is held.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, NamedTuple

from hypothesis import strategies as st

from dicomsniff.dicomweb.session import DicomwebAnalyzer
from dissectors.http.multipart import MultipartHandler, MultipartReader
from dissectors.http.stream import DEFAULT_MAX_HEAD, DEFAULT_MAX_HELD

from .mutators import ByteReader, chunks, mutated, split_points

CAPTURES = Path(__file__).resolve().parent.parent.parent / "captures" / "dicomweb"


class _Collect:
    """A TCP sink that keeps the first 256 KiB of one direction."""

    def __init__(self) -> None:
        self.data = bytearray()

    def feed(self, data, frame: int, ts: float) -> None:
        if len(self.data) < 256 * 1024:
            self.data += data[:256 * 1024 - len(self.data)]

    def gap(self, n: int, frame: int, ts: float) -> None:
        pass


@functools.lru_cache(maxsize=1)
def seed_conversations() -> list[tuple[bytes, bytes]]:
    """(client bytes, server bytes) of each recorded HTTP connection, plus hand-built shapes."""
    from dicomsniff.sources.capture import CaptureReader
    from dissectors.net import ETH_IPV4, TCP_SYN, reverse_key, tcp_segment
    from dissectors.tcp import TcpDirection

    out: list[tuple[bytes, bytes]] = []
    for pcap in sorted(CAPTURES.glob("*.pcap")):
        flows: dict[bytes, TcpDirection] = {}
        order: list[bytes] = []
        reader = CaptureReader(pcap)
        try:
            for frame, (ts, _lt, buf, _o) in enumerate(reader, 1):
                seg = tcp_segment(buf, ETH_IPV4, 14)
                if seg is None:
                    continue
                key, seq, _ack, flags, ps, pe, _w, _win = seg
                d = flows.get(key)
                if d is None:
                    d = flows[key] = TcpDirection(_Collect())
                    if flags & TCP_SYN and not flags & 0x10:
                        order.append(key)
                if flags & TCP_SYN:
                    d.syn(seq)
                elif pe > ps:
                    d.segment(seq, buf[ps:pe], frame, ts)
        finally:
            reader.close()
        for key in order:
            c, s_ = flows[key].sink.data, flows.get(reverse_key(key))
            if (c.startswith((b"GET ", b"POST ", b"HEAD ")) and s_ is not None
                    and len(c) < 256 * 1024 and len(s_.sink.data) < 256 * 1024):
                out.append((bytes(c), bytes(s_.sink.data)))
    out.append((b"GET /dicom-web/studies HTTP/1.1\r\nHost: a\r\n\r\n" * 3,
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                b"\r\n2\r\n[]\r\n0\r\n\r\n" + b"HTTP/1.1 204 No Content\r\n\r\n" * 2))
    return out


class HttpCase(NamedTuple):
    client: bytes
    server: bytes
    cuts: list[int]
    gaps: list[tuple[int, int]]  # (chunk index, missing bytes) on the server side
    valid: bool


def _run(case: HttpCase, cuts: list[int]) -> tuple[list[tuple], DicomwebAnalyzer]:
    web = DicomwebAnalyzer()
    conn = web.open_connection("192.0.2.1:1", "192.0.2.2:80", 1, 0.0)
    req, resp = conn.http.directions
    gap_at = dict(case.gaps)
    cs, ss = chunks(case.client, cuts), chunks(case.server, cuts)
    for i in range(max(len(cs), len(ss))):
        if i < len(cs):
            req.feed(cs[i], i + 1, float(i))
        if i in gap_at:
            resp.gap(gap_at[i], i + 1, float(i))
        if i < len(ss):
            resp.feed(ss[i], i + 1, float(i))
        for d in (req, resp):
            assert len(d.headbuf) <= DEFAULT_MAX_HEAD + max(len(case.client), len(case.server))
            assert len(d.carry) <= 8 * 1024
        assert len(conn.http.responses.held) <= DEFAULT_MAX_HELD
        assert len(conn.http.requests.held) <= DEFAULT_MAX_HELD
    web.close_connection(conn, "eof", 999, 9.0)
    summary = [(t.method, t.target, t.status, t.request_bytes, t.response_bytes,
                t.response_complete) for t in web.transactions]
    return summary, web


def check_http(case: HttpCase) -> None:
    from .targets import assert_safe_text, time_limit

    with time_limit():
        got, web = _run(case, case.cuts)
        whole, _ = _run(case, [])
    for t in web.transactions:
        rec = t.to_record()
        assert rec["type"] == "transaction" and rec["protocol"] == "dicomweb"
        assert_safe_text(rec, "transaction")  # every wire string escaped, at any depth
    for f in web.findings:
        assert f.code.startswith("DICOMWEB-") and f.message
        assert_safe_text(f.message, f.code)
    for c in web.connections:
        assert_safe_text(c.to_record(), "connection")
    if case.valid and not case.gaps:
        assert got == whole, "transactions depend on how the stream was split"
        assert not any(f.code.startswith("DICOMWEB-HTTP") for f in web.findings)


def http_strategy() -> st.SearchStrategy[HttpCase]:
    seeds = seed_conversations()

    @st.composite
    def case(draw: st.DrawFn) -> HttpCase:
        client, server = draw(st.sampled_from(seeds))
        valid = draw(st.booleans())
        if not valid:
            client = draw(mutated(st.just(client[:4096])))
            server = draw(mutated(st.just(server[:4096])))
        cuts = draw(split_points(max(len(client), len(server))))
        gaps = [] if valid else draw(st.lists(st.tuples(st.integers(0, len(cuts)),
                                                        st.sampled_from([1, 100, 1 << 20])),
                                              max_size=2))
        return HttpCase(client, server, cuts, gaps, valid)
    return case()


def http_from_bytes(data: bytes) -> HttpCase:
    r = ByteReader(data)
    mode = r.u8() % 3
    cuts = sorted(r.uint(2) for _ in range(r.u8() % 12))
    client, server = r.pick(seed_conversations())
    if mode == 0:
        return HttpCase(client, server, cuts, [], True)
    if mode == 1:
        return HttpCase(r.mutate(client[:4096]), r.mutate(server[:4096]), cuts, [], False)
    rest = r.rest()
    return HttpCase(rest[: len(rest) // 2], rest[len(rest) // 2:], cuts, [], False)


class MultipartCase(NamedTuple):
    body: bytes
    boundary: str
    cuts: list[int]


class _Count(MultipartHandler):
    def __init__(self) -> None:
        self.parts = 0
        self.bytes = 0

    def part(self, part):
        self.parts += 1

    def part_data(self, part, data):
        self.bytes += len(data)


def _read(case: MultipartCase, cuts: list[int]) -> tuple[int, int]:
    h = _Count()
    r = MultipartReader(case.boundary, h, max_head=2048)
    for piece in chunks(case.body, cuts):
        r.feed(piece)
        assert len(r.tail) <= max(len(r.delim), 2048 + 4)
    r.close()
    assert h.bytes <= len(case.body)
    return h.parts, h.bytes


_BODY = (b"--bb\r\nContent-Type: application/dicom\r\n\r\n" + b"\x00" * 128 + b"DICM\x02\x00"
         + b"\r\n--bb\r\n\r\nsecond\r\n--bb--\r\n")


def check_multipart(case: MultipartCase) -> None:
    from .targets import time_limit

    with time_limit():
        assert _read(case, case.cuts) == _read(case, [])


def multipart_strategy() -> st.SearchStrategy[MultipartCase]:
    return st.builds(lambda body, b, cuts: MultipartCase(body, b, cuts),
                     mutated(st.just(_BODY)), st.sampled_from(["bb", "b", "x" * 71]),
                     split_points(len(_BODY) + 64))


def multipart_from_bytes(data: bytes) -> MultipartCase:
    r = ByteReader(data)
    cuts = sorted(r.uint(2) for _ in range(r.u8() % 12))
    return MultipartCase(r.mutate(_BODY), "bb", cuts)


class XmlCase(NamedTuple):
    body: bytes


_XML = (b'<?xml version="1.0" encoding="utf-8"?>\n<NativeDicomModel xmlns="http://dicom.nema.org/'
        b'PS3.19/models/NativeDICOM"><DicomAttribute tag="00081198" vr="SQ"><Item number="1">'
        b'<DicomAttribute tag="00081150" vr="UI"><Value number="1">1.2.840.10008.5.1.4.1.1.2'
        b'</Value></DicomAttribute><DicomAttribute tag="00081155" vr="UI"><Value number="1">'
        b'1.2.3.4</Value></DicomAttribute><DicomAttribute tag="00081197" vr="US"><Value '
        b'number="1">272</Value></DicomAttribute></Item><Value number="1" /></DicomAttribute>'
        b'<DicomAttribute tag="00081199" vr="SQ"/></NativeDicomModel>')
_XML_BITS = [b"<!DOCTYPE x [<!ENTITY a \"b\">]>", b"&a;", b"<Item>" * 70, b"</Item>",
             b"<![CDATA[x]]>", b"\xff\xfe", b"<?pi x?>", b"&#0;", b"&#x110000;"]


def check_xml(case: XmlCase) -> None:
    """The Native DICOM Model reader: a dict in the DICOM JSON shape or XmlRefused, nothing
    else, in bounded time; what store_response makes of it is escaped text."""
    from dicomsniff.dicomweb.nativexml import XmlRefused, parse
    from dicomsniff.dicomweb.payload import store_response

    from .targets import assert_safe_text, time_limit

    with time_limit():
        try:
            doc = parse(case.body)
        except XmlRefused as exc:
            assert str(exc)
            return
        assert isinstance(doc, dict)
        resp = store_response(doc)
        if resp is not None:
            for item in resp["referenced"] + resp["failed"]:
                assert_safe_text(item, "store response")


def xml_strategy() -> st.SearchStrategy[XmlCase]:
    @st.composite
    def case(draw: st.DrawFn) -> XmlCase:
        body = draw(mutated(st.just(_XML)))
        if draw(st.booleans()):
            at = draw(st.integers(0, len(body)))
            body = body[:at] + draw(st.sampled_from(_XML_BITS)) + body[at:]
        return XmlCase(body)
    return case()


def xml_from_bytes(data: bytes) -> XmlCase:
    r = ByteReader(data)
    mode = r.u8() % 3
    if mode == 0:
        return XmlCase(r.mutate(_XML))
    if mode == 1:
        body = r.mutate(_XML)
        at = r.uint(2) % (len(body) + 1)
        return XmlCase(body[:at] + r.pick(_XML_BITS) + body[at:])
    return XmlCase(r.rest())


class Part10Case(NamedTuple):
    data: bytes
    cuts: list[int]


@functools.lru_cache(maxsize=1)
def _part10_seed() -> bytes:
    from bench.dicomweb_stream import _part10_head

    return _part10_head() + b"\x00" * 64


def check_part10(case: Part10Case) -> None:
    """The journey's STOW-RS header walk (analysis/journey/web.py): any bytes, any split, no
    exception, the meta group bounded, the same values whatever the split."""
    from dicomsniff.analysis.journey.web import MAX_META, Part10Header

    from .targets import time_limit

    def walk(cuts: list[int]) -> dict:
        h = Part10Header()
        for piece in chunks(case.data, cuts):
            h.write(piece)
            assert len(h.buf) <= MAX_META + 144 + len(piece)
        h.close(True)
        return dict(h.values)

    with time_limit():
        assert walk(case.cuts) == walk([])


def part10_strategy() -> st.SearchStrategy[Part10Case]:
    return st.builds(lambda d, cuts: Part10Case(d, cuts), mutated(st.just(_part10_seed())),
                     split_points(len(_part10_seed()) + 64))


def part10_from_bytes(data: bytes) -> Part10Case:
    r = ByteReader(data)
    cuts = sorted(r.uint(2) for _ in range(r.u8() % 12))
    return Part10Case(r.mutate(_part10_seed()), cuts)


@functools.lru_cache(maxsize=1)
def h2_conversation() -> tuple[bytes, bytes]:
    """(client bytes, server bytes) of an HTTP/2 connection made by two real h2 endpoints in
    memory: a QIDO-RS, a STOW-RS with a 200 KB body (past the default windows), and a
    WADO-RS answered with 300 KB in several DATA frames; each side's bytes in wire order."""
    import h2.config
    import h2.connection
    import h2.events

    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    s = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    c.initiate_connection()
    s.initiate_connection()
    cb, sb = bytearray(), bytearray()

    def pump() -> None:
        for _ in range(100):
            out_c, out_s = c.data_to_send(), s.data_to_send()
            if not out_c and not out_s:
                return
            cb.extend(out_c)
            sb.extend(out_s)
            for ev in s.receive_data(out_c):
                if isinstance(ev, h2.events.DataReceived):
                    s.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            for ev in c.receive_data(out_s):
                if isinstance(ev, h2.events.DataReceived):
                    c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)

    def req(sid: int, method: str, path: str, body: bytes = b"", ctype: str = "") -> None:
        hdrs = [(":method", method), (":path", path), (":scheme", "http"),
                (":authority", "pacs"), ("user-agent", "h2-test")]
        if ctype:
            hdrs.append(("content-type", ctype))
        c.send_headers(sid, hdrs, end_stream=not body)
        while body:
            pump()
            n = min(len(body), c.local_flow_control_window(sid), c.max_outbound_frame_size)
            if n:
                c.send_data(sid, body[:n], end_stream=n == len(body))
                body = body[n:]
        pump()

    def resp(sid: int, status: int, body: bytes, ctype: str) -> None:
        s.send_headers(sid, [(":status", str(status)), ("content-type", ctype),
                             ("server", "h2-test")], end_stream=not body)
        while body:
            pump()
            n = min(len(body), s.local_flow_control_window(sid), s.max_outbound_frame_size)
            if n:
                s.send_data(sid, body[:n], end_stream=n == len(body))
                body = body[n:]
        pump()

    pump()
    req(1, "GET", "/dicom-web/studies?PatientID=X")
    resp(1, 200, b"[]", "application/dicom+json")
    stow = (b"--b\r\nContent-Type: application/dicom\r\n\r\n" + b"\x00" * 200_000
            + b"\r\n--b--\r\n")
    req(3, "POST", "/dicom-web/studies", stow,
        'multipart/related; type="application/dicom"; boundary=b')
    resp(3, 409, b'{"Message": "nothing stored"}', "application/json")
    req(5, "GET", "/dicom-web/studies/1/series/2/instances/3/rendered")
    resp(5, 200, b"\xff\xd8\xff" + b"\x11" * 300_000, "image/jpeg")
    return bytes(cb), bytes(sb)  # the client's bytes begin with the preface


class H2Case(NamedTuple):
    client: bytes
    server: bytes
    cuts: list[int]
    valid: bool


def _h2_run(case: H2Case, cuts: list[int]) -> tuple[list[tuple], Any]:
    web = DicomwebAnalyzer()
    conn = web.open_connection("192.0.2.1:1", "192.0.2.2:80", 1, 0.0)
    req, resp = conn.http.directions
    cs, ss = chunks(case.client, cuts), chunks(case.server, cuts)
    for i in range(max(len(cs), len(ss))):
        if i < len(cs):
            req.feed(cs[i], i + 1, float(i))
        if i < len(ss):
            resp.feed(ss[i], i + 1, float(i))
    web.close_connection(conn, "eof", 99999, 9.0)
    return [(t.method, t.target, t.status, t.request_bytes, t.response_bytes,
             t.response_complete) for t in web.transactions], web


def check_h2(case: H2Case) -> None:
    """The HTTP/2 reader: no exception on any bytes, escaped text, and for real bytes the same
    exchanges whatever the segmentation."""
    from .targets import assert_safe_text, time_limit

    with time_limit():
        got, web = _h2_run(case, case.cuts)
        whole, _ = _h2_run(case, [])
    for t in web.transactions:
        assert_safe_text(t.to_record(), "transaction")
    for f in web.findings:
        assert_safe_text(f.message, f.code)
    if case.valid:
        assert got == whole
        assert len(got) == 3 and not any(f.code.startswith("DICOMWEB-HTTP")
                                         for f in web.findings)


def h2_strategy() -> st.SearchStrategy[H2Case]:
    @st.composite
    def case(draw: st.DrawFn) -> H2Case:
        client, server = h2_conversation()
        valid = draw(st.booleans())
        if not valid:
            client = draw(mutated(st.just(client[:2048])))
            server = draw(mutated(st.just(server[:2048])))
        cuts = draw(split_points(max(len(client), len(server))))
        return H2Case(client, server, cuts, valid)
    return case()


def h2_from_bytes(data: bytes) -> H2Case:
    r = ByteReader(data)
    mode = r.u8() % 3
    cuts = sorted(r.uint(3) for _ in range(r.u8() % 12))
    client, server = h2_conversation()
    if mode == 0:
        return H2Case(client, server, cuts, True)
    if mode == 1:
        return H2Case(r.mutate(client[:2048]), r.mutate(server[:2048]), cuts, False)
    rest = r.rest()
    return H2Case(client[:24] + rest[:len(rest) // 2], rest[len(rest) // 2:], cuts, False)
