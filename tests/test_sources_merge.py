"""Several captures as one (dicomsniff/sources/merge.py): rotated pieces, two sensors,
compressed files, bad files among good ones.

The pieces are cut from the real recordings in captures/ with editcap and tcpdump -C at test
time; the two-sensor captures (captures/sensors/) were recorded by captures/sensors.py with
tcpdump on both ends of a veth pair while dcmtk's echoscu and storescu talked to storescp.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source
from dicomsniff.sources.capture import CaptureError, CaptureReader
from dicomsniff.sources.merge import CaptureSet, open_capture

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
SENSORS = CAPTURES / "sensors"
SENSOR_FILES = [SENSORS / "sensor-scu.pcap", SENSORS / "sensor-scp.pcap"]

needs_editcap = pytest.mark.skipif(shutil.which("editcap") is None,
                                   reason="editcap (Wireshark) not installed")

# Frame fields of the --json records (they are merged frame numbers; refs name the file).
FRAME_KEYS = {"first_frame", "last_frame", "frame", "frames", "request_frame",
              "response_frames", "cancel_frame"}


def records(spec, **kw) -> tuple[list[dict], CaptureSet, Analyzer]:
    """Every --json record (associations, transactions, findings) of a capture."""
    an = Analyzer()
    out: list[dict] = []

    def on_assoc(a) -> None:
        out.append(a.to_record())
        out.extend(t.to_record() for t in a.transactions)
        out.extend(f.to_record() for f in a.findings)

    an.on_association.append(on_assoc)
    cs = open_capture(spec, **kw)
    analyze_source(cs, an)
    out.extend(f.to_record() for f in an.findings if f.association is None)
    return out, cs, an


def split(src: Path, dest: Path, *args: str) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["editcap", *args, str(src), str(dest / src.name)], check=True,
                   capture_output=True)
    return sorted(dest.iterdir())


def packets(path: Path) -> list[tuple[float, bytes]]:
    with CaptureReader(path) as r:
        return [(ts, bytes(data)) for ts, _lt, data, _ol in r]


# -- rotated pieces ------------------------------------------------------------------------------

@needs_editcap
@pytest.mark.parametrize("name", ["move.pcap", "store-concurrent.pcap", "mid-association.pcap",
                                  "ipv6-store.pcap", "abort-mid-transfer.pcap",
                                  "store-many-associations.pcap"])
@pytest.mark.parametrize("how", [("-c", "7"), ("-i", "1"), ("-c", "1")])
def test_rotated_pieces_in_any_order_are_the_whole_capture(tmp_path: Path, name: str,
                                                           how: tuple[str, str]) -> None:
    whole, _cs, _an = records(CAPTURES / name)
    pieces = split(CAPTURES / name, tmp_path, *how)
    if how == ("-i", "1") and len(pieces) < 2:
        pytest.skip("the capture lasts under a second")
    assert len(pieces) >= 2
    random.Random(len(pieces)).shuffle(pieces)
    merged, cs, _an = records(pieces)
    assert merged == whole  # identical records, frame numbers included
    assert cs.duplicates == 0 and cs.problems == []
    assert cs.sensors == 1  # one file open at a time, however many pieces


@needs_editcap
def test_frame_references_name_the_piece_and_its_frame(tmp_path: Path) -> None:
    src = CAPTURES / "store-concurrent.pcap"
    pieces = split(src, tmp_path, "-c", "50")
    _recs, cs, an = records(list(reversed(pieces)))
    whole = packets(src)
    by_piece = {str(p): packets(p) for p in pieces}
    assert an.stats.frames == len(whole)
    for g in range(1, len(whole) + 1):
        path, n = cs.locate(g)
        assert by_piece[path][n - 1] == whole[g - 1], g
    assert cs.describe(51) == f"{pieces[1].name}#1"
    assert cs.locate(0) is None


@pytest.mark.skipif(shutil.which("tcpdump") is None or shutil.which("mergecap") is None,
                    reason="tcpdump and mergecap needed")
def test_tcpdump_rotated_files_in_a_directory(tmp_path: Path) -> None:
    """tcpdump -C names its files ct.pcap, ct.pcap1 ... ct.pcap10: a directory holds them."""
    big = tmp_path / "big.pcap"
    subprocess.run(["mergecap", "-F", "pcap", "-w", str(big),
                    *(str(CAPTURES / n) for n in ("store-small-pdu.pcap", "store-large-pdu.pcap",
                                                  "store-concurrent.pcap", "move.pcap"))],
                   check=True, capture_output=True)
    rot = tmp_path / "rot"
    rot.mkdir()
    subprocess.run(["tcpdump", "-r", str(big), "-w", str(rot / "ct.pcap"), "-C", "1",
                    "-Z", "root"],
                   check=True, capture_output=True)
    names = sorted(os.listdir(rot))
    assert names == ["ct.pcap", "ct.pcap1"]  # 1.7 MB in 1 MB files
    whole, _cs, _an = records(big)
    merged, cs, _an = records([str(rot)])
    assert merged == whole
    assert cs.paths == [str(rot / "ct.pcap"), str(rot / "ct.pcap1")]


# -- two sensors ---------------------------------------------------------------------------------

def _story(recs: list[dict]) -> list[tuple]:
    """What the peers did, without frame numbers and times (sensors see them a little apart)."""
    out = []
    for r in recs:
        if r["type"] == "association":
            out.append(("A", r["calling_ae"], r["called_ae"], r["outcome"], r["client"],
                        r["server"], str(r["contexts"]), str(r["pdus"]), str(r["bytes"])))
        elif r["type"] == "transaction":
            out.append(("T", r["command"], r["message_id"], r["status"], r["sop_instance"],
                        r["dataset_bytes"], r["dataset_partial"]))
        elif r["type"] == "finding" and r["code"] != "CAPTURE-SENSOR-COPIES":
            out.append(("F", r["code"], r["association"]))
    return out


def test_two_sensors_are_one_exchange_without_false_retransmissions() -> None:
    one, _cs, _an = records(SENSOR_FILES[0])
    other, _cs, _an = records(SENSOR_FILES[1])
    both, cs, an = records([str(p) for p in SENSOR_FILES])
    assert _story(one) == _story(other) == _story(both)
    assert [r["calling_ae"] for r in both if r["type"] == "association"] == [
        "SENSORECHO", "SENSORSTORE"]
    assert sum(r["type"] == "transaction" for r in both) == 7
    assert not [r for r in both if r["code" if r["type"] == "finding" else "type"]
                == "TCP-RETRANSMISSION"]
    tcp = sum(1 for _ts, data in packets(SENSOR_FILES[0]) if data[12:14] == b"\x08\x00")
    assert cs.duplicates == tcp  # every TCP segment was in both, and kept once
    assert cs.sensors == 2
    codes = [f.code for f in an.findings]
    assert "CAPTURE-SENSOR-COPIES" in codes


@pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap needed")
def test_sensor_clocks_measured_on_copies_and_put_right_with_a_time_shift(
        tmp_path: Path) -> None:
    """The copies of the same segments measure how two sensors' clocks compare; a sensor
    whose clock is off is said (CAPTURE-SENSOR-CLOCKS) and put right by --time-shift."""
    scu, scp = (str(p) for p in SENSOR_FILES)
    truth, cs, _an = records([scu, scp])
    ((a, b, late, n),) = cs.sensor_offsets()
    assert {a, b} == {Path(scu).name, Path(scp).name} and n > 100
    assert abs(late) < 0.001  # one host's clock: the path between the sensors, microseconds
    for skew in (0.040, 0.300):  # the SCP's sensor runs 40 ms, then 300 ms, fast
        off = tmp_path / f"off{int(skew * 1000)}-{Path(scp).name}"
        subprocess.run(["editcap", "-t", f"{skew}", scp, str(off)], check=True,
                       capture_output=True)
        got, cs, an = records([scu, str(off)])
        codes = [f.code for f in an.findings]
        if skew < cs.dedup_window:  # copies still matched: the offset is measured and said
            ((_a, _b, late, _n),) = cs.sensor_offsets()
            assert abs(abs(late) - skew) < 0.002
            (clocks,) = [f for f in an.findings if f.code == "CAPTURE-SENSOR-CLOCKS"]
            assert f"--time-shift '{off.name}=-{skew:.4f}'" in clocks.message
        else:  # beyond the window nothing matches: every copy looks like a retransmission
            assert not cs.sensor_offsets() and cs.duplicates == 0
            assert "TCP-RETRANSMISSION" in codes or _story(got) != _story(truth)
        fixed, cs, an = records([scu, str(off)], time_shift=[(off.name, -skew)])
        assert _story(fixed) == _story(truth)
        assert "CAPTURE-SENSOR-CLOCKS" not in [f.code for f in an.findings]
        assert cs.duplicates == len([1 for _ in packets(SENSOR_FILES[0])
                                     if _[1][12:14] == b"\x08\x00"])
        # by path or by a glob on the name, and the shift is what the files are read with
        assert [p for p, _s in cs.time_shift] == [off.name]
    assert merge_shift(["x/pacs-1.pcap", "pacs-2.pcap", "ct.pcap"]) == [-0.25, -0.25, 0.0]


def merge_shift(paths: list[str]) -> list[float]:
    from dicomsniff.sources.merge import _shift_for

    return [_shift_for(p, [("ct*", 1.0), ("pacs-*.pcap", -0.25), ("ct.pcap", 0.0)])
            for p in paths]


@pytest.mark.skipif(shutil.which("mergecap") is None, reason="mergecap needed")
def test_plain_merge_of_two_sensors_shows_false_retransmissions(tmp_path: Path) -> None:
    """The control: mergecap interleaves the copies and every one looks retransmitted."""
    out = tmp_path / "merged.pcap"
    subprocess.run(["mergecap", "-w", str(out), *map(str, SENSOR_FILES)], check=True)
    recs, _cs, _an = records(out)
    assert any(r["type"] == "finding" and r["code"] == "TCP-RETRANSMISSION" for r in recs)


@needs_editcap
def test_two_sensors_with_skewed_clocks_late_start_and_another_format(tmp_path: Path) -> None:
    """Sensor B's clock 3 ms ahead, its file pcapng, and it started after the echo."""
    b = tmp_path / "b.pcapng"
    first = packets(SENSOR_FILES[1])
    start = first[len(first) // 3][0]
    trimmed = tmp_path / "b-trim.pcap"
    subprocess.run(["editcap", "-A", f"{start:.6f}", str(SENSOR_FILES[1]), str(trimmed)],
                   check=True, capture_output=True)
    subprocess.run(["editcap", "-F", "pcapng", "-t", "0.003", str(trimmed), str(b)], check=True,
                   capture_output=True)
    one, _cs, _an = records(SENSOR_FILES[0])
    both, cs, _an = records([str(b), str(SENSOR_FILES[0])])
    assert _story(both) == _story(one)
    assert 0 < cs.duplicates < len(first)
    # A window shorter than the skew matches nothing: the copies look like retransmissions.
    loose, cs2, _an = records([str(b), str(SENSOR_FILES[0])], dedup_window=0.001)
    assert cs2.duplicates == 0
    assert any(r["type"] == "finding" and r["code"] == "TCP-RETRANSMISSION" for r in loose)


def test_a_real_retransmission_seen_by_both_sensors_is_kept(tmp_path: Path) -> None:
    """Sensor A saw a segment twice (a real retransmission); B saw both copies too: two kept."""
    from dicomsniff.sources.merge import _identity

    with CaptureReader(SENSOR_FILES[0]) as r:
        hdr_len = 24
        pk = [(ts, lt, bytes(d)) for ts, lt, d, _ in r]
    # the first data segment of the store association, repeated 50 ms later in both files
    idx = next(i for i, (_ts, lt, d) in enumerate(pk) if _identity(lt, d) and len(d) > 200)
    raw_a = SENSOR_FILES[0].read_bytes()
    raw_b = SENSOR_FILES[1].read_bytes()

    def with_repeat(raw: bytes, delay: float) -> bytes:
        recs = []
        off = hdr_len
        while off < len(raw):
            caplen = int.from_bytes(raw[off + 8:off + 12], "little")
            recs.append(raw[off:off + 16 + caplen])
            off += 16 + caplen
        rec = recs[idx]
        sec = int.from_bytes(rec[0:4], "little")
        usec = int.from_bytes(rec[4:8], "little") + int(delay * 1e6)
        again = ((sec + usec // 1_000_000).to_bytes(4, "little")
                 + (usec % 1_000_000).to_bytes(4, "little") + rec[8:])
        recs.insert(idx + 1, again)
        return raw[:hdr_len] + b"".join(recs)

    a = tmp_path / "a.pcap"
    b = tmp_path / "b.pcap"
    a.write_bytes(with_repeat(raw_a, 0.05))
    b.write_bytes(with_repeat(raw_b, 0.05))
    alone, _cs, _an = records(a)
    both, cs, _an = records([str(a), str(b)])
    tcp = sum(1 for _ts, lt, d in pk if _identity(lt, d) is not None) + 1
    assert cs.duplicates == tcp  # each sensor's copy of each, including the retransmission
    retrans = [r["message"] for r in alone if r.get("code") == "TCP-RETRANSMISSION"]
    assert retrans and retrans == [r["message"] for r in both
                                   if r.get("code") == "TCP-RETRANSMISSION"]


# -- compressed ----------------------------------------------------------------------------------

def _compress(kind: str, data: bytes) -> bytes:
    if kind == "gz":
        return gzip.compress(data)
    if kind == "xz":
        return lzma.compress(data)
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("kind", ["gz", "xz", "zst"])
def test_a_compressed_capture_gives_the_same_records(tmp_path: Path, kind: str) -> None:
    src = CAPTURES / "store-concurrent.pcap"
    comp = tmp_path / f"c.pcap.{kind}"
    comp.write_bytes(_compress(kind, src.read_bytes()))
    plain, _cs, _an = records(src)
    got, cs, an = records(comp)
    assert got == plain
    assert an.stats.bytes == src.stat().st_size  # capture bytes, decompressed
    assert cs.position() == comp.stat().st_size


@needs_editcap
def test_a_rotated_set_of_mixed_compressions(tmp_path: Path) -> None:
    src = CAPTURES / "move.pcap"
    pieces = split(src, tmp_path / "p", "-c", "40")
    named = []
    for i, p in enumerate(pieces):
        kind = ("gz", "xz", "zst", "")[i % 4]
        if kind:
            q = p.with_name(p.name + "." + kind)
            q.write_bytes(_compress(kind, p.read_bytes()))
            p.unlink()
            p = q
        named.append(str(p))
    whole, _cs, _an = records(src)
    merged, _cs, _an = records(named[::-1])
    assert merged == whole


def test_a_truncated_gzip_is_damage_part_way(tmp_path: Path) -> None:
    src = CAPTURES / "store-concurrent.pcap"
    comp = gzip.compress(src.read_bytes())
    bad = tmp_path / "cut.pcap.gz"
    bad.write_bytes(comp[: len(comp) // 2])
    recs, cs, an = records(bad)
    assert cs.error and "truncated" in cs.error
    assert 0 < an.stats.frames < len(packets(src))


def test_an_unsupported_compression_is_named(tmp_path: Path) -> None:
    f = tmp_path / "c.pcap.bz2"
    f.write_bytes(bz2.compress((CAPTURES / "echo.pcap").read_bytes()))
    with pytest.raises(CaptureError, match="bzip2"):
        open_capture(f)


def test_a_compressed_stream_on_standard_input(tmp_path: Path) -> None:
    src = CAPTURES / "echo.pcap"
    comp = tmp_path / "e.pcap.xz"
    comp.write_bytes(lzma.compress(src.read_bytes()))
    plain, _cs, _an = records(src)
    with open(comp, "rb") as fh:
        got, cs, _an = records(fh)
    assert got == plain


# -- bad files among many --------------------------------------------------------------------

@needs_editcap
def test_bad_files_are_one_line_each_and_the_rest_is_analysed(tmp_path: Path) -> None:
    src = CAPTURES / "store-many-associations.pcap"
    pieces = split(src, tmp_path / "p", "-c", "100")
    text = tmp_path / "notes.pcap"
    text.write_text("this is not a capture\n")
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(pieces[-1].read_bytes()[:-10])
    pieces[-1].unlink()
    specs = [str(p) for p in pieces[:-1]] + [str(text), str(cut), str(tmp_path / "nope.pcap"),
                                             str(tmp_path / "none-*.pcap")]
    recs, cs, an = records(specs)
    assert len(cs.problems) == 4
    assert all("\n" not in p for p in cs.problems)
    assert any(p.startswith(f"{text}: not a pcap or pcapng") for p in cs.problems)
    assert any(p.startswith(f"{cut}: capture damaged") for p in cs.problems)
    assert f"{tmp_path / 'nope.pcap'}: no such file" in cs.problems
    assert f"{tmp_path / 'none-*.pcap'}: no file matches" in cs.problems
    codes = [f.code for f in an.findings if f.association is None]
    assert codes.count("CAPTURE-UNREADABLE") == 3 and codes.count("CAPTURE-DAMAGED") == 1
    assert sum(r["type"] == "association" for r in recs) == 5


def test_nothing_usable_raises_one_line_per_file(tmp_path: Path) -> None:
    a = tmp_path / "a.pcap"
    a.write_text("x")
    with pytest.raises(CaptureError) as exc:
        open_capture([str(a), str(tmp_path / "b.pcap")])
    assert sorted(str(exc.value).splitlines()) == [f"{a}: not a capture file (only 1 bytes)",
                                                   f"{tmp_path / 'b.pcap'}: no such file"]


def test_standard_input_is_not_merged() -> None:
    with pytest.raises(CaptureError, match="standard input"):
        open_capture(["-", str(CAPTURES / "echo.pcap")])


def test_a_glob_a_directory_and_a_file_named_twice(tmp_path: Path) -> None:
    shutil.copy(CAPTURES / "echo.pcap", tmp_path / "a.pcap")
    shutil.copy(CAPTURES / "move.pcap", tmp_path / "b.pcapng.gz")  # named by content anyway
    (tmp_path / "readme.txt").write_text("not taken from a directory")
    cs = open_capture([str(tmp_path), str(tmp_path / "*.pcap"), str(tmp_path / "a.pcap")])
    assert sorted(cs.paths) == [str(tmp_path / "a.pcap"), str(tmp_path / "b.pcapng.gz")]
    assert cs.problems == []


# -- recorded afresh (root, dcmtk): two tcpdumps on the two ends of a veth pair -----------------

@pytest.mark.netns
def test_two_sensors_recorded_live(tmp_path: Path) -> None:
    import uuid

    from captures.netns import netns_available

    ok, why = netns_available()
    if not ok:
        pytest.skip(f"cannot record live: {why}")
    if not Path("/usr/bin/storescu").exists():
        pytest.skip("dcmtk not installed (/usr/bin/storescu)")
    from captures.sensors import FILES, record

    truth = record(tmp_path, images=3, rows=64, cols=64, prefix=f"mny{uuid.uuid4().hex[:5]}")
    files = [str(tmp_path / f) for f in FILES.values()]
    both, cs, _an = records(files)
    alone, _cs, _an = records(files[0])
    assert _story(both) == _story(alone)
    assert [r["calling_ae"] for r in both if r["type"] == "association"] == [
        a["calling_ae"] for a in truth["associations"]]
    assert sum(r["type"] == "transaction" and r["status"] == 0 for r in both) == 4
    assert cs.duplicates > 0
    assert not any(r.get("code") == "TCP-RETRANSMISSION" for r in both)


def test_hostile_compressed_files_are_one_line_each(tmp_path: Path) -> None:
    """A zstd frame asking for a 1 GiB window, a gzip header over garbage, an xz stream cut
    inside its header: each one line, nothing allocated for them, the good file analysed."""
    # zstd frame (RFC 8878 3.1.1): no content size, a Window_Descriptor asking for 2**30 bytes,
    # then the capture as one raw last block
    body = (CAPTURES / "echo.pcap").read_bytes()
    big = (b"\x28\xb5\x2f\xfd" + bytes([0x00, 20 << 3])
           + (1 | (len(body) << 3)).to_bytes(3, "little") + body)
    (tmp_path / "a.pcap.zst").write_bytes(big)
    (tmp_path / "b.pcap.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)
    (tmp_path / "c.pcap.xz").write_bytes(lzma.compress(b"x" * 100)[:10])
    shutil.copy(CAPTURES / "echo.pcap", tmp_path / "d.pcap")
    recs, cs, _an = records([str(tmp_path)])
    assert len(cs.problems) == 3 and all("\n" not in p for p in cs.problems)
    assert any("zstd" in p and "a.pcap.zst" in p for p in cs.problems)
    assert sum(r["type"] == "association" for r in recs) == 1
