"""Tests for the streaming capture reader (dicomsniff.sources.capture).

Files are built by hand with struct for every format variant, then cross-checked against files
written by scapy and converted by editcap, and against tshark's view of the same files.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from dicomsniff.sources import capture
from dicomsniff.sources.capture import CaptureError, CaptureReader, linktype_name
from tests.accelbuild import compiled_mapped

Rec = tuple[float, int, bytes, int]

# (seconds, microseconds, frame): lengths chosen to exercise pcapng padding (60..63) and
# a full-size Ethernet frame; payload bytes differ per packet.
ROOT = Path(__file__).resolve().parent.parent
BASE_SEC = 1_700_000_000
FRAMES = [
    bytes((i * 7 + j) & 0xFF for j in range(n)) for i, n in enumerate((60, 61, 62, 63, 1514, 1))
]
PACKETS = [(BASE_SEC + i, 123_456 + i, f) for i, f in enumerate(FRAMES)]


def read_all(source: object, **kwargs: int) -> tuple[list[Rec], CaptureReader]:
    """Read everything, copying each view (also proves views stay valid after iteration)."""
    with CaptureReader(source, **kwargs) as reader:  # type: ignore[arg-type]
        views = list(reader)
    return [(ts, lt, bytes(data), olen) for ts, lt, data, olen in views], reader


def expected(
    packets: Iterable[tuple[int, int, bytes]], linktype: int = 1, ticks: int = 10**6
) -> list[Rec]:
    return [((s * ticks + frac) / ticks, linktype, f, len(f)) for s, frac, f in packets]


# -- hand-built pcap ---------------------------------------------------------------------------


def pcap_header(
    endian: str = "<",
    magic: int = 0xA1B2C3D4,
    linktype: int = 1,
    snaplen: int = 262144,
    version: tuple[int, int] = (2, 4),
) -> bytes:
    return struct.pack(endian + "IHHiIII", magic, *version, 0, 0, snaplen, linktype)


def pcap_record(
    endian: str, sec: int, frac: int, data: bytes, orig: int | None = None, extra: bytes = b""
) -> bytes:
    return (
        struct.pack(endian + "IIII", sec, frac, len(data), len(data) if orig is None else orig)
        + extra
        + data
    )


def pcap_file(
    packets: Iterable[tuple[int, int, bytes]] = PACKETS,
    endian: str = "<",
    nano: bool = False,
    linktype: int = 1,
    modified: bool = False,
) -> bytes:
    magic = 0xA1B2CD34 if modified else 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [pcap_header(endian, magic, linktype)]
    for sec, frac, data in packets:
        out.append(
            pcap_record(
                endian,
                sec,
                frac,
                data,
                extra=b"\x01\x00\x00\x00\x08\x00\x00\x00" if modified else b"",
            )
        )
    return b"".join(out)


# -- hand-built pcapng -------------------------------------------------------------------------


def pad4(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def options(endian: str, opts: Iterable[tuple[int, bytes]]) -> bytes:
    out = b"".join(struct.pack(endian + "HH", code, len(v)) + pad4(v) for code, v in opts)
    return out + struct.pack(endian + "HH", 0, 0) if out else b""


def block(endian: str, btype: int, body: bytes) -> bytes:
    body = pad4(body)
    total = len(body) + 12
    return struct.pack(endian + "II", btype, total) + body + struct.pack(endian + "I", total)


def shb(endian: str = "<", version: tuple[int, int] = (1, 0), opts: bytes = b"") -> bytes:
    return block(endian, 0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, *version, -1) + opts)


def idb(
    endian: str = "<",
    linktype: int = 1,
    snaplen: int = 0,
    tsresol: int | None = None,
    tsoffset: int | None = None,
) -> bytes:
    opts: list[tuple[int, bytes]] = [(2, b"eth0")]
    if tsresol is not None:
        opts.append((9, bytes([tsresol])))
    if tsoffset is not None:
        opts.append((14, struct.pack(endian + "q", tsoffset)))
    return block(
        endian, 1, struct.pack(endian + "HHI", linktype, 0, snaplen) + options(endian, opts)
    )


def epb(
    endian: str, ifid: int, ticks: int, data: bytes, orig: int | None = None, opts: bytes = b""
) -> bytes:
    head = struct.pack(
        endian + "IIIII",
        ifid,
        ticks >> 32,
        ticks & 0xFFFFFFFF,
        len(data),
        len(data) if orig is None else orig,
    )
    return block(endian, 6, head + pad4(data) + opts)


def spb(endian: str, data: bytes, orig: int | None = None) -> bytes:
    return block(endian, 3, struct.pack(endian + "I", len(data) if orig is None else orig) + data)


def pb(endian: str, ifid: int, ticks: int, data: bytes) -> bytes:
    head = struct.pack(
        endian + "HHIIII", ifid, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)
    )
    return block(endian, 2, head + pad4(data))


def usec_ticks(sec: int, usec: int) -> int:
    return sec * 10**6 + usec


def pcapng_file(endian: str = "<") -> bytes:
    """One section, one Ethernet interface (microseconds), all PACKETS as EPBs."""
    return (
        shb(endian)
        + idb(endian)
        + b"".join(epb(endian, 0, usec_ticks(s, u), f) for s, u, f in PACKETS)
    )


# -- classic pcap ------------------------------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_all_magics(tmp_path: Path, endian: str, nano: bool) -> None:
    packets = [(s, u * 1000 + 789 if nano else u, f) for s, u, f in PACKETS]
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_file(packets, endian, nano=nano))
    got, reader = read_all(path)
    assert got == expected(packets, ticks=10**9 if nano else 10**6)
    assert reader.format == "pcap"
    assert reader.error is None and reader.warnings == []
    assert reader.packets == len(PACKETS)
    assert reader.size == reader.bytes_read == path.stat().st_size
    assert reader.path == str(path)


@pytest.mark.parametrize("endian", ["<", ">"])
def test_modified_pcap(tmp_path: Path, endian: str) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_file(endian=endian, modified=True))
    got, reader = read_all(path)
    assert got == expected(PACKETS)
    assert reader.error is None


def test_pcap_linktype_fcs_bits_masked(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_file(linktype=1 | 0x04000000 | (2 << 28)))
    got, reader = read_all(path)
    assert {lt for _, lt, _, _ in got} == {1}
    assert any("4-byte frame check sequence" in w for w in reader.warnings)


def test_pcap_other_linktype_and_orig_len(tmp_path: Path) -> None:
    data = pcap_header(linktype=228) + pcap_record("<", BASE_SEC, 5, b"\x45" * 40, orig=1500)
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    got, reader = read_all(path)
    assert got == [((BASE_SEC * 10**6 + 5) / 10**6, 228, b"\x45" * 40, 1500)]
    assert reader.warnings == []


def test_pcap_header_only(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_header())
    got, reader = read_all(path)
    assert got == [] and reader.error is None and reader.packets == 0


def test_warnings(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_header(linktype=4242, snaplen=96, version=(2, 2)))
    _, reader = read_all(path)
    assert any("unknown link type 4242" in w for w in reader.warnings)
    assert any("snapshot length is 96" in w for w in reader.warnings)
    assert any("unusual pcap version 2.2" in w for w in reader.warnings)


# -- pcapng ------------------------------------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_simple(tmp_path: Path, endian: str) -> None:
    path = tmp_path / "x.pcapng"
    path.write_bytes(pcapng_file(endian))
    got, reader = read_all(path)
    assert got == expected(PACKETS)
    assert reader.format == "pcapng"
    assert reader.error is None and reader.warnings == []
    assert reader.bytes_read == reader.size == path.stat().st_size


def build_rich_pcapng(
    e: str = "<", e2: str = ">", sections: bool = True
) -> tuple[bytes, list[Rec]]:
    """Sections of different byte order; interfaces with different link types and
    resolutions; EPB, SPB, obsolete PB; blocks to skip."""
    want: list[Rec] = []
    parts = [shb(e, opts=options(e, [(4, b"dicomsniff test")]))]
    nrb_record = bytes([10, 0, 0, 1]) + b"host\x00"
    nrb = struct.pack(e + "HH", 1, len(nrb_record)) + pad4(nrb_record) + struct.pack(e + "HH", 0, 0)
    parts.append(idb(e, linktype=1, snaplen=100))  # 0: Ethernet, microseconds
    parts.append(idb(e, linktype=228, tsresol=9))  # 1: raw IPv4, nanoseconds
    parts.append(idb(e, linktype=113, tsresol=0x80 | 20, tsoffset=-3600))  # 2: SLL, 2^-20 s
    parts.append(block(e, 4, nrb))  # name resolution block
    t0 = usec_ticks(BASE_SEC, 250_000)
    parts.append(epb(e, 0, t0, FRAMES[0], opts=options(e, [(1, b"a comment")])))
    want.append((t0 / 10**6, 1, FRAMES[0], 60))
    t1 = BASE_SEC * 10**9 + 123_456_789
    parts.append(epb(e, 1, t1, FRAMES[1]))
    want.append((t1 / 10**9, 228, FRAMES[1], 61))
    parts.append(block(e, 5, struct.pack(e + "III", 0, 0, 0)))  # ISB
    parts.append(block(e, 0x00000BAD, b"\x00\x00\x7e\x4f" + b"custom!!"))  # custom block
    parts.append(block(e, 0x40000001, b""))  # unknown block type, empty body
    t2 = (BASE_SEC << 20) + 12345
    parts.append(epb(e, 2, t2, FRAMES[2]))
    want.append(((t2 - 3600 * 2**20) / 2**20, 113, FRAMES[2], 62))
    # SPB: last seen timestamp, interface 0, caplen = min(orig len, snaplen 100, block room)
    parts.append(spb(e, FRAMES[3]))
    want.append((want[-1][0], 1, FRAMES[3], 63))
    parts.append(spb(e, FRAMES[4][:100], orig=1514))  # snapped to 100
    want.append((want[-1][0], 1, FRAMES[4][:100], 1514))
    parts.append(spb(e, FRAMES[5]))  # 1 byte + 3 padding, orig len says 1
    want.append((want[-1][0], 1, FRAMES[5], 1))
    t3 = usec_ticks(BASE_SEC + 1, 1)
    parts.append(pb(e, 0, t3, FRAMES[0]))
    want.append((t3 / 10**6, 1, FRAMES[0], 60))
    if not sections:
        return b"".join(parts), want
    # second section, other byte order: interfaces restart from 0
    parts.append(shb(e2))
    parts.append(idb(e2, linktype=276, tsresol=3))  # milliseconds
    t4 = BASE_SEC * 1000 + 7
    parts.append(epb(e2, 0, t4, FRAMES[4]))
    want.append((t4 / 1000, 276, FRAMES[4], 1514))
    parts.append(block(e2, 0x0000000A, b"DSB!" + b"\x00" * 8))  # decryption secrets
    # third section, empty, then one more with the first byte order again
    parts.append(shb(e2))
    parts.append(shb(e))
    parts.append(idb(e, linktype=0))
    parts.append(epb(e, 0, t0, FRAMES[1], orig=9999))
    want.append((t0 / 10**6, 0, FRAMES[1], 9999))
    return b"".join(parts), want


@pytest.mark.parametrize("endians", [("<", ">"), (">", "<")])
def test_pcapng_rich(tmp_path: Path, endians: tuple[str, str]) -> None:
    data, want = build_rich_pcapng(*endians)
    path = tmp_path / "x.pcapng"
    path.write_bytes(data)
    got, reader = read_all(path)
    assert reader.error is None, reader.error
    assert got == want
    assert reader.packets == len(want)
    assert reader.bytes_read == len(data)
    # only the deliberate 100-byte snaplen is worth a warning
    assert reader.warnings == [
        "interface 0: snapshot length is 100 bytes: longer packets were cut short when captured"
    ]


def test_pcapng_spb_without_timestamp_before_any_epb(tmp_path: Path) -> None:
    path = tmp_path / "x.pcapng"
    path.write_bytes(shb() + idb() + spb("<", FRAMES[0]))
    got, reader = read_all(path)
    assert got == [(0.0, 1, FRAMES[0], 60)] and reader.error is None


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_pcapng_rich_matches_tshark(tmp_path: Path) -> None:
    """tshark is the oracle: same packet count, lengths and timestamps."""
    data, _ = build_rich_pcapng()
    path = tmp_path / "x.pcapng"
    path.write_bytes(data)
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.cap_len",
            "-e",
            "frame.len",
            "-e",
            "frame.interface_id",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split("\n")
    rows = [line.split("\t") for line in out if line.strip()]
    theirs = [row for row in rows if row[3]]  # tshark also lists the custom block as a record
    got, reader = read_all(path)
    assert reader.error is None
    assert len(theirs) == len(got) == len(rows) - 1
    for (ts, _lt, frame, olen), (tts, tcap, tlen, _) in zip(got, theirs, strict=True):
        if tts:  # tshark shows no time for simple packet blocks
            assert abs(ts - float(tts)) < 1e-6
        assert (len(frame), olen) == (int(tcap), int(tlen))


def test_warnings_are_capped(tmp_path: Path) -> None:
    data = shb() + b"".join(idb(linktype=5000 + i) for i in range(40))
    path = tmp_path / "x.pcapng"
    path.write_bytes(data)
    _, reader = read_all(path)
    assert reader.error is None
    assert len(reader.warnings) == 21 and reader.warnings[-1] == "further warnings suppressed"


def test_pcapng_big_skipped_block_is_not_buffered(tmp_path: Path) -> None:
    big = block("<", 0x00000BAD, b"\x00\x00\x7e\x4f" + os.urandom(300_000))
    data = shb() + idb() + epb("<", 0, 1, FRAMES[0]) + big + epb("<", 0, 2, FRAMES[1])
    path = tmp_path / "x.pcapng"
    path.write_bytes(data)
    for chunk_size in (1000, 4096, 65536, 1 << 20):
        got, reader = read_all(path, chunk_size=chunk_size, max_caplen=10_000)
        assert reader.error is None, (chunk_size, reader.error)
        assert [f for _, _, f, _ in got] == FRAMES[:2]
        assert reader.bytes_read == len(data)
    # the same through a stream
    got, reader = read_all(io.BytesIO(data), chunk_size=5000, max_caplen=10_000)
    assert reader.error is None and len(got) == 2
    # truncated inside the big block, and a trailer that does not match after the skip
    path.write_bytes(data[: len(shb() + idb() + epb("<", 0, 1, FRAMES[0])) + 200_000])
    got, reader = read_all(path, chunk_size=4096, max_caplen=10_000)
    assert len(got) == 1 and reader.error is not None and "truncated" in reader.error
    bad = bytearray(data)
    end = len(shb() + idb() + epb("<", 0, 1, FRAMES[0]) + big)
    bad[end - 4 : end] = b"\x00\x00\x00\x00"
    path.write_bytes(bytes(bad))
    got, reader = read_all(path, chunk_size=4096, max_caplen=10_000)
    assert len(got) == 1 and "trailing length 0 does not match" in (reader.error or "")


# -- cross-checks with files written by other tools --------------------------------------------


def scapy_packets() -> list:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    pkts = []
    for i in range(20):
        p = (
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src="10.0.0.1", dst="10.0.0.2")
            / TCP(sport=50000 + i, dport=104, flags="PA")
            / (b"\x01\x00" + bytes([i]) * (i * 70))
        )
        p.time = BASE_SEC + i * 0.25 + i * 0.000001
        pkts.append(p)
    return pkts


def test_scapy_wrpcap(tmp_path: Path) -> None:
    from scapy.utils import wrpcap

    pkts = scapy_packets()
    path = tmp_path / "scapy.pcap"
    wrpcap(str(path), pkts)
    got, reader = read_all(path)
    assert reader.error is None
    assert [f for _, _, f, _ in got] == [bytes(p) for p in pkts]
    assert all(lt == 1 for _, lt, _, _ in got)
    assert all(abs(ts - float(p.time)) < 1e-6 for (ts, _, _, _), p in zip(got, pkts, strict=True))


def test_scapy_pcapng_writer(tmp_path: Path) -> None:
    scapy_utils = pytest.importorskip("scapy.utils")
    if not hasattr(scapy_utils, "PcapNgWriter"):
        pytest.skip("this scapy has no PcapNgWriter")
    pkts = scapy_packets()
    path = tmp_path / "scapy.pcapng"
    writer = scapy_utils.PcapNgWriter(str(path))
    for p in pkts:
        writer.write(p)
    writer.close()
    got, reader = read_all(path)
    assert reader.error is None and reader.format == "pcapng"
    assert [f for _, _, f, _ in got] == [bytes(p) for p in pkts]
    assert all(abs(ts - float(p.time)) < 1e-5 for (ts, _, _, _), p in zip(got, pkts, strict=True))


EDITCAP = shutil.which("editcap")


@pytest.mark.skipif(EDITCAP is None, reason="editcap (wireshark-common) not installed")
@pytest.mark.parametrize(
    ("fmt", "ticks"), [("pcapng", 10**6), ("nsecpcap", 10**9), ("modpcap", 10**6), ("pcap", 10**6)]
)
def test_editcap_conversions(tmp_path: Path, fmt: str, ticks: int) -> None:
    src = tmp_path / "src.pcap"
    src.write_bytes(pcap_file())
    dst = tmp_path / f"out.{fmt}"
    subprocess.run(
        [str(EDITCAP), "-F", fmt, str(src), str(dst)], check=True, capture_output=True, timeout=60
    )
    got, reader = read_all(dst)
    assert reader.error is None
    assert reader.format == ("pcapng" if fmt == "pcapng" else "pcap")
    assert got == expected(PACKETS)  # timestamps identical: same exact division at any resolution


@pytest.mark.skipif(EDITCAP is None, reason="editcap (wireshark-common) not installed")
def test_editcap_rewrite_of_rich_pcapng(tmp_path: Path) -> None:
    """editcap rewrites the multi-interface, multi-resolution file in its own way (SPBs and the
    PB become EPBs).  editcap 4.0 fails on several sections, hence one section only."""
    data, want = build_rich_pcapng(sections=False)
    src = tmp_path / "src.pcapng"
    src.write_bytes(data)
    dst = tmp_path / "out.pcapng"
    subprocess.run(
        [str(EDITCAP), "-F", "pcapng", str(src), str(dst)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    got, reader = read_all(dst)
    assert reader.error is None
    assert [(lt, f, o) for _, lt, f, o in got] == [(lt, f, o) for _, lt, f, o in want]
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        if i in (3, 4, 5):  # simple packet blocks have no time: editcap writes 0
            continue
        assert abs(a[0] - b[0]) <= 2**-20, i  # editcap rounds 2^-20 s ticks its own way


# -- file-level errors -------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="no such file"):
        CaptureReader(tmp_path / "nope.pcap")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="is a directory"):
        CaptureReader(tmp_path)


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_file())
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: simulate the refusal instead
        import dicomsniff.sources.capture as capture

        def refuse(*args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(capture, "open", refuse, raising=False)
    with pytest.raises(CaptureError, match="permission denied"):
        CaptureReader(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(b"")
    with pytest.raises(CaptureError, match="empty file"):
        CaptureReader(path)


@pytest.mark.parametrize(
    ("content", "looks_like"),
    [
        (b"hello world\nthis is not a capture\n", "looks like text: 'hello world'"),
        (b"\x1f\x8b\x08\x00" + bytes(100), "gzip-compressed"),
        (bytes(128) + b"DICM" + bytes(64), "a DICOM file"),
        (b"\x00\x01\x02\x03\xfe\xff\x80\x81" * 4, "unknown data starting with 00 01 02 03"),
        (b"ab", "only 2 bytes"),
    ],
)
def test_not_a_capture(tmp_path: Path, content: bytes, looks_like: str) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError) as info:
        CaptureReader(path)
    msg = str(info.value)
    assert looks_like in msg and str(path) in msg and "\n" not in msg
    # a stream read a byte at a time gets the same diagnosis
    with pytest.raises(CaptureError) as info:
        CaptureReader(io.BytesIO(content), chunk_size=1)
    assert str(info.value) == msg.replace(str(path), "<stream>")


def test_truncated_headers(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_header()[:10])
    with pytest.raises(CaptureError, match=r"truncated pcap file header \(got 10 of 24 bytes\)"):
        CaptureReader(path)
    path.write_bytes(shb()[:20])
    with pytest.raises(CaptureError, match="truncated pcapng section header"):
        CaptureReader(path)


def test_unsupported_pcapng_version(tmp_path: Path) -> None:
    path = tmp_path / "x.pcapng"
    path.write_bytes(shb(version=(2, 0)) + idb())
    with pytest.raises(CaptureError, match="unsupported pcapng version 2.0"):
        CaptureReader(path)
    # in a later section it stops the reading instead
    path.write_bytes(pcapng_file() + shb(version=(3, 1)) + idb())
    got, reader = read_all(path)
    assert len(got) == len(PACKETS) and "unsupported pcapng version 3.1" in (reader.error or "")


def test_bad_byte_order_magic(tmp_path: Path) -> None:
    path = tmp_path / "x.pcapng"
    path.write_bytes(b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00GARBAGE!" + bytes(16))
    with pytest.raises(CaptureError, match="bad byte-order magic"):
        CaptureReader(path)


# -- damage inside the file: everything before it is delivered ---------------------------------


def test_truncated_record(tmp_path: Path) -> None:
    data = pcap_file()
    last = len(data) - (16 + 1) - (16 + 1514)  # offset of the 1514-byte record
    path = tmp_path / "x.pcap"
    path.write_bytes(data[: last + 16 + 40])
    got, reader = read_all(path)
    assert got == expected(PACKETS[:4])
    assert (
        reader.error
        == f"capture truncated: last record at offset {last} cut short (got 40 of 1514 bytes)"
    )
    assert reader.packets == 4
    path.write_bytes(data[: last + 5])
    got, reader = read_all(path)
    assert len(got) == 4
    assert (
        reader.error
        == f"capture truncated: last record header at offset {last} cut short (got 5 of 16 bytes)"
    )


def test_truncated_pcapng(tmp_path: Path) -> None:
    data = pcapng_file()
    path = tmp_path / "x.pcapng"
    for cut in (3, 8, 30):
        path.write_bytes(data[:-cut])
        got, reader = read_all(path)
        assert len(got) == len(PACKETS) - 1
        assert reader.error is not None and reader.error.startswith("capture truncated: last block")


@pytest.mark.parametrize("caplen", [262145, 0x7FFFFFFF, 0xFFFFFFFF])
def test_absurd_caplen(tmp_path: Path, caplen: int) -> None:
    data = (
        pcap_file(PACKETS[:2])
        + struct.pack("<IIII", BASE_SEC, 0, caplen, 60)
        + bytes(60)
        + pcap_record("<", BASE_SEC, 0, FRAMES[0])
    )
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    got, reader = read_all(path)
    assert got == expected(PACKETS[:2])
    assert f"captured length {caplen} exceeds the maximum of 262144 bytes" in (reader.error or "")
    # the maximum is a parameter
    got, reader = read_all(path, max_caplen=60)
    assert got == expected(PACKETS[:1]) and "captured length 61 exceeds the maximum of 60" in (
        reader.error or ""
    )


def corrupt_cases() -> list[tuple[str, bytes, str]]:
    e = "<"
    good = shb() + idb() + epb(e, 0, 5, FRAMES[0])
    ep = epb(e, 0, 5, FRAMES[1])
    return [
        ("length < 12", struct.pack("<II", 6, 8) + bytes(8), "bad block length 8"),
        ("length % 4", struct.pack("<II", 6, 34) + bytes(40), "bad block length 34"),
        (
            "trailer",
            ep[:-4] + struct.pack("<I", 999),
            "trailing length 999 does not match block length",
        ),
        ("huge EPB", struct.pack("<II", 6, 0xFFFFFFF0) + bytes(100), "exceeds the maximum"),
        (
            "huge caplen",
            ep[:20] + struct.pack("<I", 0x7FFFFFFF) + ep[24:],
            "captured length 2147483647 exceeds",
        ),
        (
            "caplen > block",
            ep[:20] + struct.pack("<I", 200) + ep[24:],
            "captured length 200 does not fit",
        ),
        ("unknown interface", epb(e, 3, 5, FRAMES[0]), "unknown interface id 3"),
        ("huge skip", struct.pack("<II", 0x99, 0xFFFFFFF0) + bytes(100), "exceeds the maximum"),
        ("short EPB", block(e, 6, bytes(8)), "too short"),
        ("short IDB", block(e, 1, bytes(4)), "too short"),
        ("bad BOM", block(e, 0x0A0D0D0A, b"XXXX" + bytes(12)), "bad byte-order magic"),
    ], good


@pytest.mark.parametrize("case", range(11))
def test_corrupt_pcapng_block(tmp_path: Path, case: int) -> None:
    cases, good = corrupt_cases()
    name, bad, message = cases[case]
    path = tmp_path / "x.pcapng"
    path.write_bytes(good + bad + epb("<", 0, 6, FRAMES[2]))
    got, reader = read_all(path)
    assert [f for _, _, f, _ in got] == [FRAMES[0]], name
    assert reader.error is not None and message in reader.error, (name, reader.error)
    assert f"offset {len(good)}" in reader.error


def test_spb_without_interface(tmp_path: Path) -> None:
    path = tmp_path / "x.pcapng"
    path.write_bytes(shb() + spb("<", FRAMES[0]))
    got, reader = read_all(path)
    assert got == [] and "no interface" in (reader.error or "")


# -- chunking and streams ----------------------------------------------------------------------


def small_files() -> dict[str, bytes]:
    rich, _ = build_rich_pcapng()
    return {
        "pcap": pcap_file(),
        "pcapng": pcapng_file(),
        "rich": rich,
        "modified": pcap_file(modified=True),
    }


@pytest.mark.parametrize("mode", ["mapped", "read"])
@pytest.mark.parametrize("name", ["pcap", "pcapng", "rich", "modified"])
def test_every_chunk_size_gives_the_same_packets(tmp_path: Path, name: str, mode: str,
                                                 monkeypatch) -> None:
    """A file mapped a window at a time (_mapped.c) or read a chunk at a time: the same
    packets whatever the size of either (windows are twice the chunk size, from a page
    boundary, so records cross window edges at every offset)."""
    data = small_files()[name]
    path = tmp_path / "x.cap"
    path.write_bytes(data)
    ref, _ = read_all(io.BytesIO(data))
    assert ref
    monkeypatch.setattr(capture, "_Window", compiled_mapped().Window if mode == "mapped" else None)
    for chunk_size in range(1, len(data) + 2):
        got, reader = read_all(path, chunk_size=chunk_size)
        assert reader.error is None, (chunk_size, reader.error)
        assert got == ref, chunk_size
        assert reader.bytes_read == len(data)
    for chunk_size in (1, 7, 64, 1000):
        got, reader = read_all(io.BytesIO(data), chunk_size=chunk_size)
        assert got == ref and reader.error is None and reader.size == 0


class Trickle(io.RawIOBase):
    """A raw stream that returns 1..7 bytes per read, like a slow pipe."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        self.calls += 1
        n = min(len(b), 1 + self.calls % 7, len(self.data) - self.pos)
        b[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


class ReadOnly:
    """A file-like object with nothing but read(), returning short reads."""

    def __init__(self, data: bytes) -> None:
        self.stream = Trickle(data)

    def read(self, n: int) -> bytes:
        return self.stream.read(n)


def make_stream(kind: str, data: bytes) -> object:
    return {"bytesio": io.BytesIO, "trickle": Trickle, "read": ReadOnly}[kind](data)


@pytest.mark.parametrize("name", ["pcap", "pcapng", "rich"])
def test_read_only_stream(name: str) -> None:
    data = small_files()[name]
    ref, _ = read_all(io.BytesIO(data))
    for chunk_size in (1, 3, 100, 1 << 20):
        got, reader = read_all(ReadOnly(data), chunk_size=chunk_size)
        assert got == ref and reader.error is None and reader.bytes_read == len(data)


@pytest.mark.parametrize("name", ["pcap", "pcapng", "rich"])
def test_short_reads(name: str) -> None:
    data = small_files()[name]
    ref, _ = read_all(io.BytesIO(data))
    got, reader = read_all(Trickle(data))
    assert got == ref and reader.error is None and reader.bytes_read == len(data)
    # truncated stream
    got, reader = read_all(Trickle(data[:-5]))
    assert got == ref[:-1] and "truncated" in (reader.error or "")


@pytest.mark.parametrize("kind", ["file", "mapped", "trickle", "bytesio"])
def test_views_stay_valid_when_kept(tmp_path: Path, kind: str, monkeypatch) -> None:
    """Buffers are recycled only when no view into them is alive: whatever subset of views a
    caller keeps, they still show their packet after the whole file was read. A file mapped
    (``mapped``) rather than read: a window is unmapped once no view looks into it, and past
    the windows the reader may map at once, the rest is read."""
    import random

    monkeypatch.setattr(capture, "_Window", compiled_mapped().Window if kind == "mapped" else None)
    packets = [(BASE_SEC + i, i, bytes([i % 251]) * (100 + i % 50)) for i in range(3000)]
    data = pcap_file(packets)
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    rng = random.Random(7)
    for keep in (1.0, 0.1, 0.01, 0.0):
        source = path if kind in ("file", "mapped") else make_stream(kind, data)
        reader = CaptureReader(source, chunk_size=4096)  # type: ignore[arg-type]
        kept = []
        buffers = {}  # the buffers themselves (not views) do not stop recycling
        mapped = 0  # windows onto the file (_mapped.c) mapped at once, at most
        before = compiled_mapped().live()  # (other readers' in this process, if any)
        for i, (_, _, view, _) in enumerate(reader):
            if type(view.obj) is bytearray:
                buffers[id(view.obj)] = view.obj
            else:  # a window is unmapped with the last view into it: not kept here
                mapped = max(mapped, compiled_mapped().live() - before)
            if rng.random() < keep:
                kept.append((i, view))
        assert reader.packets == len(packets)
        assert all(bytes(view) == packets[i][2] for i, view in kept), keep
        if keep == 0.0:  # nothing kept: a handful of buffers serve the ~100 chunks
            assert len(buffers) <= 4
            assert mapped <= 2
            assert kind != "mapped" or not buffers


def test_pipe_yields_packets_as_they_arrive() -> None:
    """A live `tcpdump -w -` pipe: each packet must come out before the next is written."""
    rfd, wfd = os.pipe()
    received = threading.Event()
    errors: list[str] = []

    def writer() -> None:
        with os.fdopen(wfd, "wb", buffering=0) as w:
            w.write(pcap_header())
            for i, (sec, usec, frame) in enumerate(PACKETS):
                rec = pcap_record("<", sec, usec, frame)
                w.write(rec[:10])  # a record split over two writes
                time.sleep(0.01)
                w.write(rec[10:])
                if not received.wait(5):
                    errors.append(f"packet {i} not delivered before the next was written")
                    return
                received.clear()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    got = []
    with os.fdopen(rfd, "rb") as r, CaptureReader(r) as reader:
        assert reader.size == 0 and reader.path is None
        for ts, lt, data, olen in reader:
            got.append((ts, lt, bytes(data), olen))
            received.set()
    thread.join(5)
    assert not errors
    assert got == expected(PACKETS)
    assert reader.error is None


def test_fifo_path(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    data = pcapng_file()

    def writer() -> None:
        with open(fifo, "wb") as w:
            for i in range(0, len(data), 50):
                w.write(data[i : i + 50])
                w.flush()
                time.sleep(0.001)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    got, reader = read_all(fifo)
    thread.join(5)
    assert got == expected(PACKETS) and reader.error is None and reader.size == 0


def test_text_mode_stream_uses_binary_layer(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_file())
    with open(path, encoding="latin-1") as text:
        got, reader = read_all(text)
    assert got == expected(PACKETS)


def test_read_error_is_reported_not_raised() -> None:
    class Failing(io.RawIOBase):
        def __init__(self) -> None:
            self.data = pcap_file()
            self.served = False

        def readable(self) -> bool:
            return True

        def readinto(self, b: memoryview) -> int:  # type: ignore[override]
            if self.served:
                raise OSError(5, "Input/output error")
            self.served = True
            n = 24 + 16 + 60 + 10
            b[:n] = self.data[:n]
            return n

    got, reader = read_all(Failing())
    assert got == expected(PACKETS[:1])
    assert reader.error is not None and "Input/output error" in reader.error


# -- API details -------------------------------------------------------------------------------


def test_iterate_once_and_close(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_file())
    reader = CaptureReader(path)
    it = iter(reader)
    next(it)
    with pytest.raises(RuntimeError):
        iter(reader)
    reader.close()
    reader.close()  # idempotent
    with CaptureReader(path) as reader2:
        pass
    assert reader2._f.closed  # noqa: SLF001 - white-box check that the file is released


def test_stream_is_not_closed_by_reader() -> None:
    stream = io.BytesIO(pcap_file())
    with CaptureReader(stream) as reader:
        assert len(list(reader)) == len(PACKETS)
    assert not stream.closed


def test_progress_counts(tmp_path: Path) -> None:
    packets = [(BASE_SEC, i, bytes(1000)) for i in range(200)]
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_file(packets))
    reader = CaptureReader(path, chunk_size=10_000)
    seen = []
    for _ in reader:
        seen.append(reader.bytes_read)
    assert seen == sorted(seen) and 0 < seen[0] < reader.size
    assert reader.bytes_read == reader.size and reader.packets == 200


def test_linktype_names() -> None:
    assert linktype_name(1) == "Ethernet"
    assert linktype_name(113) == "Linux cooked (SLL)"
    assert linktype_name(276) == "Linux cooked v2 (SLL2)"
    assert linktype_name(0) == "BSD loopback/null"
    assert linktype_name(108) == "OpenBSD loopback"
    assert {linktype_name(x) for x in (101, 12, 14)} == {"raw IP"}
    assert linktype_name(228) == "raw IPv4"
    assert linktype_name(229) == "raw IPv6"
    assert linktype_name(150) == "user-defined 3"
    assert linktype_name(60000) == "link type 60000"


def test_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        CaptureReader(io.BytesIO(pcap_file()), chunk_size=0)
    with pytest.raises(ValueError):
        CaptureReader(io.BytesIO(pcap_file()), max_caplen=0)


# -- hostile input: nothing but CaptureError may escape ----------------------------------------


def test_fuzz_never_raises() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")
    seeds = list(small_files().values())

    @hypothesis.settings(max_examples=400, deadline=None)
    @hypothesis.given(
        seed=st.sampled_from(seeds),
        edits=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=8),
        cut=st.integers(0, 2000),
        chunk=st.sampled_from([1, 5, 64, 1 << 20]),
        kind=st.sampled_from(["bytesio", "trickle", "read"]),
    )
    def check(seed: bytes, edits: list[tuple[int, int]], cut: int, chunk: int, kind: str) -> None:
        data = bytearray(seed)
        for pos, value in edits:
            if pos < len(data):
                data[pos] = value
        data = data[: max(cut, 1)] if cut < len(data) else data
        try:
            reader = CaptureReader(
                make_stream(kind, bytes(data)),  # type: ignore[arg-type]
                chunk_size=chunk,
                max_caplen=4096,
            )
        except CaptureError:
            return
        total = 0
        for ts, _lt, view, _olen in reader:
            assert isinstance(ts, float) and isinstance(view, memoryview)
            assert len(view) <= 4096
            total += len(view)
        assert total <= len(data)
        assert reader.bytes_read <= len(data)

    check()


def test_damaged_files_read_the_same_from_file_and_stream(tmp_path: Path, monkeypatch) -> None:
    """Same packets and the same error, whatever the chunk size and the kind of input, and
    whether a file is mapped (_mapped.c) or read."""
    import random

    mapped = compiled_mapped().Window

    rng = random.Random(1234)
    seeds = list(small_files().values())
    path = tmp_path / "x.cap"
    for _ in range(400):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.5:
                data[rng.randrange(24, len(data))] = rng.randrange(256)
            else:  # hit a length field: 32-bit aligned, interesting values
                pos = rng.randrange(24, len(data) - 4) & ~3
                value = rng.choice([0, 4, 12, 16, 20, 28, 32, 60, 4095, 4096, 4097, 70000, 2**31])
                data[pos : pos + 4] = struct.pack("<I", value)
        if rng.random() < 0.3:
            data = data[: rng.randrange(30, len(data))]
        path.write_bytes(bytes(data))
        results = []
        for source, chunk, window in ((path, 7, mapped), (path, 1 << 20, mapped),
                                      (path, 7, None), (path, 1 << 20, None),
                                      (Trickle(bytes(data)), 64, mapped)):
            monkeypatch.setattr(capture, "_Window", window)  # mapped, or read
            try:
                got, reader = read_all(source, chunk_size=chunk, max_caplen=4096)
            except CaptureError as exc:
                results.append(("CaptureError", str(exc).replace(str(path), "<stream>")))
            else:
                results.append((got, reader.error))
        assert results[0] == results[1] == results[2] == results[3] == results[4]


# -- a mapped file (dicomsniff/sources/_mapped.c) ----------------------------------------------

_SHRINK = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("dicomsniff.sources._mapped", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
from dicomsniff.sources import capture
capture._Window = mod.Window
path, cut = sys.argv[2], int(sys.argv[3])
reader = capture.CaptureReader(path, chunk_size=1 << 16)
n = 0
for ts, lt, view, olen in reader:
    n += 1
    if n == 100:
        os.truncate(path, cut)  # another program cuts the file short under the reader
    bytes(view)
print(n, reader.error)
"""


@pytest.mark.parametrize("cut", [0, 24, 4096, 100_000, 200_000])
def test_mapped_file_that_shrinks_is_an_error_not_a_crash(tmp_path: Path, cut: int) -> None:
    """A mapped page past the new end of a file that shrank raises SIGBUS: the window's handler
    puts a page of 0xFF there, the reader stops at the record length it reads there, and says
    why; the process lives on (a child process, so a crash cannot take pytest down)."""
    frames = [bytes([i % 251]) * 1400 for i in range(1000)]  # 1.4 MB: windows of 128 KiB
    path = tmp_path / "shrinks.pcap"
    path.write_bytes(pcap_file([(BASE_SEC + i, i, f) for i, f in enumerate(frames)]))
    done = subprocess.run([sys.executable, "-c", _SHRINK, compiled_mapped().__file__,
                           str(path), str(cut)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    n, error = done.stdout.split(" ", 1)
    assert 100 <= int(n) < 1000
    assert "the file shrank while being read" in error


def test_mapped_windows_run_out_then_the_file_is_read(tmp_path: Path, monkeypatch) -> None:
    """A caller that keeps a view into every window pins them all: past the windows that may
    be mapped at once, the reader reads the rest, from where the windows ended."""
    mod = compiled_mapped()
    monkeypatch.setattr(capture, "_Window", mod.Window)
    packets = [(BASE_SEC + i, i, bytes([i % 251]) * 5000) for i in range(400)]
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_file(packets))
    before = mod.live()  # (other readers' in this process, if any)
    reader = CaptureReader(path, chunk_size=4096)  # windows of 8 KiB: one or two records
    kept = list(reader)
    kinds = {type(view.obj).__name__ for _, _, view, _ in kept}
    assert kinds == {"Window", "bytearray"}, kinds
    assert [bytes(v) for _, _, v, _ in kept] == [f for _, _, f in packets]
    assert reader.error is None and reader.bytes_read == path.stat().st_size
    del kept
    assert mod.live() <= before
