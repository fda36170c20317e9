"""The engine's inlined fast path (``Analyzer.consume``) against its general path
(``Analyzer.feed_frame``), frame for frame: every sample capture, and the same captures with
IP and TCP headers mutated where the two could disagree (total length 0 as TSO writes it,
shorter than the headers, longer than the frame; TCP data offset below 5 or past the packet;
flags). The fast path must take only packets the general path would read the same way, so
every association, transaction and finding is identical."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.sources.capture import CaptureReader

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p for p in (ROOT / "captures").rglob("*.pcap*")
                 if p.suffix in (".pcap", ".pcapng"))


def _frames(path: Path) -> list[tuple[float, int, bytes, int]]:
    with CaptureReader(str(path)) as r:
        return [(ts, lt, bytes(buf), olen) for ts, lt, buf, olen in r]


def _story(a: Analyzer) -> str:
    out = [json.dumps(x.to_record(), sort_keys=True, default=str) for x in a.associations]
    out += [json.dumps(t.to_record(), sort_keys=True, default=str)
            for x in a.associations for t in x.transactions]
    out += [json.dumps(f.to_record(), sort_keys=True, default=str) for f in a.findings]
    st = a.stats
    out.append(repr((st.connections, st.ignored_connections, st.findings, st.by_severity)))
    return "\n".join(out)


def fast(frames) -> str:
    a = Analyzer()
    a.consume(iter(frames))
    a.finish()
    return _story(a)


def slow(frames) -> str:
    a = Analyzer()
    for i, (ts, lt, buf, olen) in enumerate(frames, 1):
        a.feed_frame(i, ts, lt, buf, olen)
    a.stats.frames = len(frames)
    a.finish()
    return _story(a)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: str(p.relative_to(ROOT / "captures")))
def test_fast_and_general_paths_agree_on_every_sample(path: Path) -> None:
    frames = _frames(path)
    assert fast(frames) == slow(frames)


# -- mutated IPv4/TCP headers ------------------------------------------------------------------

def _ipv4_tcp(buf: bytes) -> bool:
    return len(buf) >= 54 and buf[12:14] == b"\x08\x00" and buf[14] == 0x45 and buf[23] == 6


def _set_total(buf: bytearray, v: int) -> None:
    struct.pack_into("!H", buf, 16, v & 0xFFFF)


def _mutations(buf: bytes, rng: random.Random) -> list[bytearray]:
    """Header edits where a fast path could read the packet otherwise than the general one."""
    out = []
    total = struct.unpack_from("!H", buf, 16)[0]
    doff = buf[46] >> 4
    for v in (0, 1, 19, 20, 39, 40, 20 + doff * 4 - 1, total - 1, total + 1, total + 1000,
              len(buf) - 14 + 1, 0xFFFF):
        b = bytearray(buf)
        _set_total(b, v)
        out.append(b)
    for d in (0, 1, 4, 5, 15):
        b = bytearray(buf)
        b[46] = (d << 4) | (buf[46] & 0x0F)
        out.append(b)
    b = bytearray(buf)  # both at once: TSO total and a short data offset
    _set_total(b, 0)
    b[46] = 0x30
    out.append(b)
    b = bytearray(buf)
    b[47] = rng.choice((0x01, 0x02, 0x04, 0x11, 0x12, 0x14, 0x18, 0x00, 0x08))
    out.append(b)
    return out


@pytest.mark.parametrize("name", ["echo.pcap", "store-small-pdu.pcap", "find-pending.pcap",
                                  "mid-association.pcap", "move.pcap"])
def test_fast_and_general_paths_agree_on_mutated_headers(name: str) -> None:
    frames = _frames(ROOT / "captures" / name)
    rng = random.Random(name)
    data = [i for i, f in enumerate(frames) if _ipv4_tcp(f[2])]
    assert data
    picks = sorted(rng.sample(data, min(12, len(data))))
    checked = 0
    for i in picks:
        ts, lt, buf, olen = frames[i]
        for m in _mutations(buf, rng):
            mutated = [*frames[:i], (ts, lt, bytes(m), olen), *frames[i + 1:]]
            f, s = fast(mutated), slow(mutated)
            assert f == s, f"frame {i + 1} mutated: {bytes(m[14:54]).hex()}"
            checked += 1
    assert checked == len(picks) * 19  # every mutation of every picked frame
