"""Fuzz target for several captures read as one (dicomsniff/sources/merge.py).

``merge``: two or three capture files, each a mutated (maybe truncated, maybe compressed) copy of
a sensor's recording (captures/sensors/), with their clocks moved a little, merged. Invariants:
no exception (an unusable file is a problem line, not a crash); every frame each file yields is
either delivered or counted as another sensor's copy, never both, never lost; every delivered
frame is located back to a file and a frame number holding exactly those bytes; memory-bound
structures stay within their caps; the segment identity never raises on any bytes.
"""

from __future__ import annotations

import gzip
import lzma
import struct
import tempfile
from pathlib import Path
from typing import NamedTuple

from hypothesis import strategies as st

from dicomsniff.sources.capture import CaptureError
from dicomsniff.sources.merge import _identity, open_capture

from .mutators import ByteReader, mutated

SENSORS = Path(__file__).resolve().parent.parent.parent / "captures" / "sensors"
# The first 60 frames of each sensor's file: the echo association and the store's start.
_SEEDS: list[bytes] = []
for _p in sorted(SENSORS.glob("*.pcap")):
    _raw = _p.read_bytes()
    _off, _n = 24, 0
    while _off + 16 <= len(_raw) and _n < 60:
        _off += 16 + struct.unpack_from("<I", _raw, _off + 8)[0]
        _n += 1
    _SEEDS.append(_raw[:_off])


class MergeCase(NamedTuple):
    files: tuple[bytes, ...]
    shifts_us: tuple[int, ...]  # added to each file's timestamps (microseconds)
    compress: tuple[int, ...]  # 0 plain, 1 gzip, 2 xz
    window: float


def _shift(data: bytes, us: int) -> bytes:
    """Move a little-endian microsecond pcap's timestamps by ``us`` (other data unchanged)."""
    if not us or data[:4] != b"\xd4\xc3\xb2\xa1":
        return data
    out = bytearray(data)
    off = 24
    while off + 16 <= len(out):
        sec, usec, caplen = struct.unpack_from("<III", out, off)
        t = sec * 1_000_000 + usec + us
        if t < 0:
            break
        struct.pack_into("<II", out, off, t // 1_000_000, t % 1_000_000)
        off += 16 + caplen
    return bytes(out)


def check_merge(case: MergeCase) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, (data, us, comp) in enumerate(zip(case.files, case.shifts_us, case.compress,
                                                 strict=True)):
            data = _shift(data, us)
            if comp == 1:
                data = gzip.compress(data)
            elif comp == 2:
                data = lzma.compress(data)
            p = Path(tmp) / f"s{i}.pcap"
            p.write_bytes(data)
            paths.append(p)
        per_file = {}
        for p in paths:
            try:
                cs1 = open_capture(str(p))
                per_file[str(p)] = [bytes(d) for _ts, _lt, d, _ol in cs1]
            except CaptureError:
                per_file[str(p)] = []
        try:
            cs = open_capture([str(p) for p in paths], dedup_window=case.window)
        except CaptureError as exc:
            assert str(exc) and all(line for line in str(exc).splitlines())
            return
        got = []
        for ts, lt, data, _olen in cs:
            assert isinstance(ts, float) and isinstance(lt, int)
            _identity(lt, data)  # never raises
            got.append(bytes(data))
        assert all("\n" not in p for p in cs.problems)
        assert len(got) + cs.duplicates == sum(len(v) for v in per_file.values())
        for n, data in enumerate(got, 1):
            where = cs.locate(n)
            assert where is not None
            path, k = where
            assert per_file[path][k - 1] == data, (n, path, k)
        assert len(cs._table) <= cs.max_dedup + 1


def merge_strategy() -> st.SearchStrategy[MergeCase]:
    one = mutated(st.sampled_from(_SEEDS), max_ops=4)
    n = st.integers(2, 3)
    return n.flatmap(lambda k: st.builds(
        MergeCase, st.tuples(*[one] * k), st.tuples(*[st.integers(-5000, 5000)] * k),
        st.tuples(*[st.integers(0, 2)] * k), st.sampled_from([0.0, 0.001, 0.1, 5.0])))


def merge_from_bytes(data: bytes) -> MergeCase:
    r = ByteReader(data)
    k = 2 + r.u8() % 2
    files = tuple(r.mutate(r.pick(_SEEDS), 4) for _ in range(k))
    shifts = tuple(r.uint(2) - 32768 for _ in range(k))
    comp = tuple(r.u8() % 3 for _ in range(k))
    return MergeCase(files, shifts, comp, (0.0, 0.001, 0.1, 5.0)[r.u8() % 4])
