"""Byte- and structure-level mutations, as hypothesis strategies and as plain functions.

Hypothesis shrinks a failing mutation list to the one operation that matters, so mutations are
drawn as a list of small operations applied to a valid seed rather than as opaque bytes.
The same operations are available to the corpus generator with a ``random.Random``.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from typing import TypeVar

from hypothesis import strategies as st

# Length values that break parsers: empty, odd, tiny, sign boundaries, the 4 GB PDU length.
INTERESTING32 = (0, 1, 2, 3, 5, 6, 7, 0x7F, 0x80, 0xFF, 0x100, 0x3FF, 0xFFFF, 0x10000,
                 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
INTERESTING16 = (0, 1, 2, 3, 4, 5, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
INTERESTING8 = (0, 1, 2, 3, 4, 7, 8, 0x10, 0x20, 0x40, 0x7F, 0x80, 0xFE, 0xFF)

T = TypeVar("T")

OPS = ("flip", "byte", "u16", "u32", "truncate", "insert", "delete", "dup", "zero")


def apply_op(data: bytearray, op: str, pos: int, arg: int, blob: bytes) -> None:
    """Apply one mutation in place; ``pos`` is taken modulo the length, so any int is valid."""
    n = len(data)
    if n == 0:
        data += blob
        return
    pos %= n
    if op == "flip":
        data[pos] ^= 1 << (arg & 7)
    elif op == "byte":
        data[pos] = INTERESTING8[arg % len(INTERESTING8)] if arg >= 0 else (-arg) & 0xFF
    elif op == "u16":
        data[pos:pos + 2] = struct.pack("!H", INTERESTING16[arg % len(INTERESTING16)])
    elif op == "u32":
        data[pos:pos + 4] = struct.pack("!I", INTERESTING32[arg % len(INTERESTING32)])
    elif op == "truncate":
        del data[pos:]
    elif op == "insert":
        data[pos:pos] = blob
    elif op == "delete":
        del data[pos:pos + 1 + arg % 64]
    elif op == "dup":
        data[pos:pos] = data[pos:pos + 1 + arg % 64]
    elif op == "zero":
        data[pos:pos + 1 + arg % 16] = bytes(len(data[pos:pos + 1 + arg % 16]))


_op = st.tuples(st.sampled_from(OPS), st.integers(0, 1 << 20), st.integers(-255, 255),
                st.binary(max_size=16))


def mutated(base: st.SearchStrategy[bytes], max_ops: int = 6) -> st.SearchStrategy[bytes]:
    """``base`` bytes with up to ``max_ops`` mutations applied."""
    @st.composite
    def _m(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(base))
        for op, pos, arg, blob in draw(st.lists(_op, max_size=max_ops)):
            apply_op(data, op, pos, arg, blob)
        return bytes(data)
    return _m()


def random_mutation(rng: random.Random, data: bytes, ops: int = 4) -> bytes:
    out = bytearray(data)
    for _ in range(ops):
        apply_op(out, rng.choice(OPS), rng.randrange(1 << 20), rng.randrange(-255, 256),
                 rng.randbytes(rng.randrange(17)))
    return bytes(out)


def split_points(n: int) -> st.SearchStrategy[list[int]]:
    """Sorted cut positions in [0, n] (empty chunks included on purpose)."""
    return st.lists(st.integers(0, n), max_size=12).map(sorted)


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    pts = [0, *(min(c, len(data)) for c in cuts), len(data)]
    return [data[a:b] for a, b in zip(pts, pts[1:], strict=False)]


class ByteReader:
    """Deterministic decoding of an arbitrary byte string into choices (the atheris side).

    The same role as atheris.FuzzedDataProvider, without depending on atheris: any input maps
    to some structured test case, so crashing inputs are replayable from tests/regressions/.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def u8(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def uint(self, nbytes: int) -> int:
        v = 0
        for _ in range(nbytes):
            v = v << 8 | self.u8()
        return v

    def pick(self, seq: Sequence[T]) -> T:
        return seq[self.u8() % len(seq)]

    def take(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def rest(self) -> bytes:
        return self.take(self.left())

    def mutate(self, base: bytes, max_ops: int = 6) -> bytes:
        data = bytearray(base)
        for _ in range(self.u8() % (max_ops + 1)):
            apply_op(data, self.pick(OPS), self.uint(3), self.u8() - 128, self.take(self.u8() % 17))
        return bytes(data)
