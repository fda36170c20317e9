"""Memory at scale: peak RSS of ``dicomsniff analyze --json`` on captures N and 2N long.

``python -m bench.scale [--echoes 400000] [--associations 80000] [--only echoes,associations]``

Two loads the hardening issue names, too big to record (a million packets of one association
would take tcpdump minutes and gigabytes): built here from the PDUs of a real recording,
``captures/echo.pcap`` (dcmtk echoscu -> storescp), with TCP and IP headers made afresh:

* ``echoes``: one association carrying N C-ECHOs (request and response PDUs as the template
  has them, Message IDs counting up as echoscu's do, wrapping at 65,535);
* ``associations``: N associations one after another, each the template's conversation (SYN,
  A-ASSOCIATE-RQ/AC, C-ECHO, A-RELEASE, FIN) from its own client address and port.

Each PDU is one TCP segment (as pynetdicom writes them; dcmtk splits off the 12 header bytes,
which changes nothing for memory), pure ACKs are left out. Memory must be flat: the same peak
at N and 2N (docs/performance.md). Captures are kept in ``bench/cache/scale-*.pcap``.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

from . import corpus

TEMPLATE = corpus.SAMPLES_DIR / "echo.pcap"
_ETH = bytes.fromhex("020000000002" "020000000001" "0800")
_ETH_BACK = bytes.fromhex("020000000001" "020000000002" "0800")
_REC = struct.Struct("<IIII")
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01


class Template:
    """The template's PDUs, by role: A-ASSOCIATE-RQ/AC, C-ECHO-RQ/RSP, A-RELEASE-RQ/RP."""

    def __init__(self, path: Path = TEMPLATE) -> None:
        sys.path.insert(0, str(corpus.ROOT))
        from captures import pcapfile

        segs = list(pcapfile.segments(path))
        syn = next(s for s in segs if s.syn and not s.flags & ACK)
        client, server = (syn.src, syn.sport), (syn.dst, syn.dport)
        up = pcapfile.stream(segs, client, server)[0]
        down = pcapfile.stream(segs, server, client)[0]
        rq = [up[p.start:p.end] for p in pcapfile.pdus(up)]
        rp = [down[p.start:p.end] for p in pcapfile.pdus(down)]
        # requestor: RQ, C-ECHO-RQ (one P-DATA-TF), A-RELEASE-RQ; acceptor: AC, RSP, RP
        self.associate_rq, self.echo_rq, self.release_rq = rq[0], rq[1], rq[2]
        self.associate_ac, self.echo_rsp, self.release_rp = rp[0], rp[1], rp[2]
        self.port = server[1]
        self.rq_id_at = _element_value_at(self.echo_rq, 0x0110)  # Message ID
        self.rsp_id_at = _element_value_at(self.echo_rsp, 0x0120)  # ... Being Responded To

    def echo(self, message_id: int) -> tuple[bytes, bytes]:
        """The C-ECHO-RQ and -RSP PDUs with ``message_id``."""
        rq, rsp = bytearray(self.echo_rq), bytearray(self.echo_rsp)
        struct.pack_into("<H", rq, self.rq_id_at, message_id)
        struct.pack_into("<H", rsp, self.rsp_id_at, message_id)
        return bytes(rq), bytes(rsp)


def _element_value_at(pdu: bytes, element: int) -> int:
    """Offset in a one-PDV P-DATA-TF of the value of command element (0000,element),
    implicit VR little endian (PS3.7 6.3.1)."""
    pos = 12
    while pos + 8 <= len(pdu):
        group, elem, length = struct.unpack_from("<HHI", pdu, pos)
        if group == 0 and elem == element:
            return pos + 8
        pos += 8 + length
    raise ValueError(f"element (0000,{element:04X}) not in the template's command set")


class _Writer:
    """Classic pcap, Ethernet/IPv4/TCP frames with consistent sequence numbers."""

    def __init__(self, f) -> None:
        self.f = f
        self.t = 1_700_000_000.0
        self.frames = 0
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))

    def frame(self, src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int,
              flags: int, payload: bytes = b"", back: bool = False) -> None:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0,
                         src, dst)
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          0x50, flags, 65535, 0, 0)
        data = (_ETH_BACK if back else _ETH) + ip + tcp + payload
        self.t += 0.00002
        sec = int(self.t)
        self.f.write(_REC.pack(sec, int((self.t - sec) * 1e6), len(data), len(data)))
        self.f.write(data)
        self.frames += 1


def _conversation(w: _Writer, tpl: Template, client: bytes, sport: int, server: bytes,
                  echoes: Iterator[tuple[bytes, bytes]], pipelined: bool = False) -> None:
    """One association: handshake, negotiation, the echoes, release, FIN both ways."""
    dport = tpl.port
    c, s = 1000, 5000  # next sequence number of each side

    def up(payload: bytes, flags: int = ACK | PSH) -> None:
        nonlocal c
        w.frame(client, server, sport, dport, c, s, flags, payload)
        c += len(payload) + (1 if flags & (SYN | FIN) else 0)

    def down(payload: bytes, flags: int = ACK | PSH) -> None:
        nonlocal s
        w.frame(server, client, dport, sport, s, c, flags, payload, back=True)
        s += len(payload) + (1 if flags & (SYN | FIN) else 0)

    w.frame(client, server, sport, dport, c - 1, 0, SYN)
    w.frame(server, client, dport, sport, s - 1, c, SYN | ACK, back=True)
    w.frame(client, server, sport, dport, c, s, ACK)
    up(tpl.associate_rq)
    down(tpl.associate_ac)
    if pipelined:  # every request first, then every response (asynchronous operations)
        pairs = list(echoes)
        for rq, _rsp in pairs:
            up(rq)
        for _rq, rsp in pairs:
            down(rsp)
    for rq, rsp in echoes:
        up(rq)
        down(rsp)
    up(tpl.release_rq)
    down(tpl.release_rp)
    up(b"", ACK | FIN)
    down(b"", ACK | FIN)
    w.frame(client, server, sport, dport, c, s, ACK)


def write_echoes(path: Path, n: int, tpl: Template | None = None) -> int:
    """One association with ``n`` C-ECHOs; returns the number of frames."""
    tpl = tpl or Template()
    with open(path, "wb") as f:
        w = _Writer(f)
        ids = (i % 65535 + 1 for i in range(n))
        _conversation(w, tpl, bytes([192, 0, 2, 1]), 40000, bytes([192, 0, 2, 2]),
                      (tpl.echo(i) for i in ids))
        return w.frames


def write_pipelined(path: Path, n: int, tpl: Template | None = None) -> int:
    """One association whose requestor sends ``n`` C-ECHO-RQs before any response comes."""
    tpl = tpl or Template()
    with open(path, "wb") as f:
        w = _Writer(f)
        _conversation(w, tpl, bytes([192, 0, 2, 1]), 40000, bytes([192, 0, 2, 2]),
                      iter([tpl.echo(i % 65535 + 1) for i in range(n)]), pipelined=True)
        return w.frames


def write_associations(path: Path, n: int, tpl: Template | None = None) -> int:
    """``n`` associations of one C-ECHO each, from distinct client addresses and ports."""
    tpl = tpl or Template()
    echo = tpl.echo(1)
    with open(path, "wb") as f:
        w = _Writer(f)
        for i in range(n):
            client = bytes([10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])
            _conversation(w, tpl, client, 20000 + i % 40000, bytes([192, 0, 2, 2]),
                          iter([echo]))
        return w.frames


LOADS = {"echoes": (write_echoes, 400_000), "associations": (write_associations, 80_000)}


def ensure(load: str, n: int, cache: Path = corpus.CACHE_DIR) -> Path:
    """``bench/cache/scale-LOAD-N.pcap``, written if missing."""
    path = cache / f"scale-{load}-{n}.pcap"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        LOADS[load][0](tmp, n)
        tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    from .run import dicomsniff_argv, python_env
    from .timing import Spawner

    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    ap.add_argument("--echoes", type=int, default=LOADS["echoes"][1], metavar="N")
    ap.add_argument("--associations", type=int, default=LOADS["associations"][1], metavar="N")
    ap.add_argument("--only", default="echoes,associations")
    ap.add_argument("--dicomsniff", default=None, metavar="CMD")
    ap.add_argument("-j", "--jobs", default="1", metavar="N",
                    help="dicomsniff's -j (default 1: one process, the engine's own bound; "
                         "'' for dicomsniff's default)")
    ap.add_argument("--out", type=Path, default=corpus.ROOT / "bench" / "results" / "scale.json")
    args = ap.parse_args(argv)
    cmd = args.dicomsniff.split() if args.dicomsniff else dicomsniff_argv()
    env = python_env(corpus.CACHE_DIR)
    res = {}
    with Spawner() as sp:
        for load in args.only.split(","):
            n = getattr(args, load)
            for k in (n, 2 * n):
                path = ensure(load, k)
                jobs = ["-j", args.jobs] if args.jobs else []
                r = sp.run("dicomsniff", [*cmd, "analyze", "--json", *jobs, "-o", "/dev/null",
                                          str(path)], env=env)
                res[f"{load} {k}"] = {"file": path.name, "mb": round(path.stat().st_size / 1e6, 1),
                                      "peak_rss_mb": round(r.maxrss_kb / 1024, 1),
                                      "wall_s": round(r.wall, 2), "rc": r.rc}
                print(f"{load:13} N={k:>8}: {res[f'{load} {k}']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    return 0 if all(r["rc"] == 0 for r in res.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
