"""The -j workers' skip of other workers' records in C and count of their own
(dissectors/_runs.c ``skip``, ``ConnectionFilter.skipper`` and ``counter``) against the
filter's Python look at every record (``ConnectionFilter.wanted``): each worker is given the
very same frames, numbered alike, on every sample capture, in pcap, nanosecond, big-endian and
pcapng layouts, across reader chunk edges and on damaged records; and ``analyze -j 2`` writes
the same records with and without it.

The skip may pass over a record only where ``wanted`` would give it to another worker from its
first branch (a plain IPv4 TCP segment of a connection already dealt out); anything else is left
to Python, which deals new connections out.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from dicomsniff.analysis import accel
from dicomsniff.cli import main
from dicomsniff.parallel.shard import ConnectionFilter
from dicomsniff.sources.capture import CaptureReader
from tests.accelbuild import compiled_skip
from tests.fuzz.pcapwriter import pcap_bytes, pcapng_bytes

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
EVERY = sorted(p for p in CAPTURES.rglob("*") if p.suffix in (".pcap", ".pcapng"))
SEVERAL = [CAPTURES / n for n in ("move.pcap", "store-concurrent.pcap",
                                  "store-many-associations.pcap", "find-pending.pcap")]


def shares(source, index: int, count: int, skip: bool, chunk_size: int | None = None
           ) -> tuple[list[int], int, int]:
    """The frames worker ``index`` of ``count`` is given (their numbers), every frame counted,
    and how many records the C skip passed over, reading as ``parallel.local`` reads; with
    ``skip``, every record the C counter says is this worker's is asked about too, and must
    be."""
    reader = (CaptureReader(source) if chunk_size is None
              else CaptureReader(source, chunk_size=chunk_size))
    filt = ConnectionFilter(index, count)
    skipper = filt.skipper() if skip else None
    if skip:
        assert skipper is not None
    counter = filt.counter() if skip else None
    mine: list[int] = []
    skipped = 0
    left = 0  # records the counter said are this worker's: wanted must agree on each
    it = iter(reader)
    for pkt in it:
        if filt.wanted(pkt):
            mine.append(filt.frame)
            if counter is not None:
                if left:
                    left -= 1
                else:
                    got = it.send(counter)
                    assert got[:3] == (got[0], 0, None)  # counted, not taken
                    left = got[3]
        elif counter is not None:
            assert not left, "the counter counted a record of another worker"
            got = it.send(skipper)
            filt.skipped(got[1])
            skipped += got[1]
            assert got[1] == 0 or got[2] is not None
    reader.close()
    return mine, filt.frame, skipped


def same_shares(source, counts=(2, 3), chunk_size: int | None = None) -> int:
    """Assert both ways give every worker the same frames; return the records skipped."""
    skipped = 0
    for count in counts:
        seen: list[int] = []
        for index in range(count):
            pure = shares(source, index, count, False, chunk_size)
            fast = shares(source, index, count, True, chunk_size)
            assert fast[:2] == pure[:2], (index, count)
            skipped += fast[2]
            seen += pure[0]
        # every TCP record goes to one worker, the others to all: nothing is lost
        assert set(seen) == set(range(1, pure[1] + 1))
    return skipped


@pytest.fixture(autouse=True)
def _compiled(monkeypatch) -> None:
    monkeypatch.setattr(accel, "skip", compiled_skip())


@pytest.mark.parametrize("path", EVERY, ids=lambda p: str(p.relative_to(CAPTURES)))
def test_every_worker_is_given_the_frames_the_python_filter_gives_it(path: Path) -> None:
    same_shares(path)


def test_the_skip_does_pass_over_other_workers_records() -> None:
    """Not a vacuous comparison: on captures of several connections most of the other
    workers' records are passed over in C."""
    for path in SEVERAL:
        frames = shares(path, 0, 2, False)[1]
        skipped = shares(path, 0, 2, True)[2] + shares(path, 1, 2, True)[2]
        assert skipped > frames / 4, path


def _frames(path: Path) -> list[tuple[float, bytes, int]]:
    with CaptureReader(path) as r:
        return [(ts, bytes(buf), olen) for ts, _lt, buf, olen in r]


@pytest.mark.parametrize("layout", ["nanos", "big_endian", "pcapng", "small-chunks"])
def test_other_layouts_and_chunk_edges(layout: str, tmp_path: Path) -> None:
    skipped = 0
    for path in SEVERAL:
        frames = _frames(path)
        if layout == "pcapng":
            data = pcapng_bytes(frames)
        elif layout == "small-chunks":
            data = path.read_bytes()
        else:
            data = pcap_bytes(frames, **{layout: True})
        f = tmp_path / f"{path.stem}.{layout}"
        f.write_bytes(data)
        skipped += same_shares(f, chunk_size=4096 if layout == "small-chunks" else None)
    assert skipped


def _damage(frame: bytes, rnd: random.Random) -> bytes:
    """One of the header faults the filter's first branch tests, or a cut."""
    b = bytearray(frame)
    what = rnd.randrange(8)
    if what == 0 and len(b) > 20:
        b[20] |= 0x20  # more fragments
    elif what == 1 and len(b) > 14:
        b[14] = 0x46  # IPv4 options
    elif what == 2 and len(b) > 23:
        b[23] = 17  # UDP
    elif what == 3 and len(b) > 13:
        b[12:14] = b"\x86\xdd"  # IPv6 ethertype
    elif what == 4:
        del b[rnd.randrange(min(len(b), 40)):]  # cut before or inside the flow key
    elif what == 5 and len(b) > 37:
        b[rnd.randrange(26, 38)] ^= 0xFF  # another flow key: a connection of its own
    elif what == 6 and len(b) > 21:
        b[21] = rnd.randrange(256)  # a fragment offset
    else:
        b[rnd.randrange(len(b))] = rnd.randrange(256)
    return bytes(b)


@pytest.mark.parametrize("seed", range(6))
def test_damaged_records_inside_runs(seed: int, tmp_path: Path) -> None:
    rnd = random.Random(seed)
    path = SEVERAL[seed % len(SEVERAL)]
    frames = _frames(path)
    for i in rnd.sample(range(len(frames)), max(1, len(frames) // 20)):
        ts, data, olen = frames[i]
        frames[i] = (ts, _damage(data, rnd), olen)
    f = tmp_path / "damaged.pcap"
    f.write_bytes(pcap_bytes(frames, nanos=bool(seed & 1)))
    same_shares(f, chunk_size=rnd.choice([None, 3000, 65536]))


def test_random_bytes_given_to_the_skip_directly() -> None:
    skip = compiled_skip()
    rnd = random.Random(7)
    layout = ("pcap", False, 1_000_000, 16, 262144, 1)
    owner = {bytes(12): False}
    for _ in range(2000):
        chunk = bytes(rnd.randrange(256) for _ in range(rnd.randrange(200)))
        if rnd.random() < 0.5:  # a record header that fits, then random bytes
            body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(60)))
            chunk = struct.pack("<IIII", 1, 2, len(body), len(body)) + body
        off = rnd.randrange(-2, len(chunk) + 2)
        got = skip(chunk, off, layout, owner, rnd.choice([-1, 0, 1, 5]))
        assert got[1] >= 0 and (got[1] == 0 or 0 <= got[0] <= len(chunk))
    with pytest.raises(TypeError):
        skip(b"", 0, layout, [], -1)


@pytest.mark.parametrize("path", SEVERAL, ids=lambda p: p.name)
def test_two_workers_write_the_same_records_with_and_without_the_skip(
        path: Path, monkeypatch, capsys) -> None:
    out = {}
    for name, skip in (("one", compiled_skip()), ("c", compiled_skip()), ("python", None)):
        monkeypatch.setattr(accel, "skip", skip)
        code = main(["analyze", "--json", "-j", "1" if name == "one" else "2", str(path)])
        assert code in (0, 1)
        out[name] = capsys.readouterr().out
    assert out["c"] == out["python"] == out["one"]
    assert out["one"].count("\n") > 2


@pytest.mark.parametrize("layout", ["pcap", "pcapng"])
def test_the_reader_takes_several_walkers_before_the_next_record(layout: str,
                                                                 tmp_path: Path) -> None:
    """A worker counts its records (one walker), then its engine may walk them (another)
    before the reader is asked for the next record: each send is run, none is lost."""
    frames = [fr for fr in _frames(CAPTURES / "store-concurrent.pcap")
              if fr[1][12:14] == b"\x08\x00"]  # IPv4 only (the ARP frames left out)
    f = tmp_path / f"c.{layout}"
    f.write_bytes(pcapng_bytes(frames) if layout == "pcapng" else pcap_bytes(frames))
    skip = compiled_skip()
    second = bytes(frames[1][1][26:38])  # the flow key of the second record
    with CaptureReader(f) as r:
        it = iter(r)
        assert bytes(next(it)[2]) == frames[0][1]
        noted = it.send(lambda chunk, off, lay: (off, 0, None, "counted"))
        assert noted[1:] == (0, None, "counted")
        got = it.send(lambda chunk, off, lay: skip(chunk, off, lay, {second: False}, 1))
        assert got[1] == 1 and got[0] > noted[0]  # the second record walked
        again = it.send(lambda chunk, off, lay: (off, 0, None))
        assert again[0] == got[0]
        assert bytes(next(it)[2]) == frames[2][1]  # then the third, by next()
        assert sum(1 for _ in it) == len(frames) - 3
