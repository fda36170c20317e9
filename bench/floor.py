"""The floor: a bare pcap walk with struct, the least any Python analyzer must do per packet.

``python floor.py FILE`` reads the file in 1 MiB chunks into one reused buffer, unpacks every
record header, and for frames of 54 bytes or more unpacks, in one call, the Ethernet type and
the IPv4 and TCP header fields an analyzer needs (length, fragment bits, protocol, sequence and
acknowledgement numbers, data offset, flags); for IPv4 TCP it slices the flow key (addresses
and ports) as dicomsniff's fast path does.  Nothing is reassembled or parsed above
TCP.  It prints ``packets tcp_packets payload_bytes`` so the walk cannot be optimised away and
can be checked.  Classic pcap only (the benchmark's captures come from tcpdump).
"""

from __future__ import annotations

import struct
import sys

_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
           b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
CHUNK = 1 << 20
MAX_RECORD = 16 + 262144


def walk(path: str) -> tuple[int, int, int]:
    """Walk every record; returns (packets, IPv4 TCP packets, TCP payload bytes)."""
    with open(path, "rb", buffering=0) as f:
        head = f.read(24)
        endian = _MAGICS.get(head[:4])
        if endian is None or len(head) < 24:
            raise SystemExit(f"{path}: not a classic pcap file")
        rec = struct.Struct(endian + "IIII").unpack_from
        # Ethernet type; IPv4 total length, flags/fragment, protocol; TCP seq, ack, offset, flags
        hdrs = struct.Struct("!12xH2xH2xH1xB10x4xIIBB").unpack_from
        packets = tcp = payload = 0
        buf = bytearray(CHUNK + MAX_RECORD)
        mv = memoryview(buf)
        have = 0  # bytes carried over from the previous chunk (a record cut in two)
        while True:
            got = f.readinto(mv[have:have + CHUNK])
            if not got:
                break
            n = have + got
            off = 0
            while off + 16 <= n:
                _sec, _frac, caplen, _olen = rec(buf, off)
                end = off + 16 + caplen
                if end > n:
                    break
                packets += 1
                if caplen >= 54:
                    etype, total, _frag, proto, _seq, _ack, doff, _flags = hdrs(buf, off + 16)
                    if etype == 0x0800 and proto == 6:
                        _key = bytes(mv[off + 42:off + 54])  # addresses and ports
                        tcp += 1
                        payload += total - 20 - (doff >> 4) * 4
                off = end
            have = n - off
            if have > MAX_RECORD:
                raise SystemExit(f"{path}: record of {have} bytes (corrupt file?)")
            buf[:have] = mv[off:n]
    return packets, tcp, payload


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: floor.py CAPTURE.pcap", file=sys.stderr)
        return 2
    print(*walk(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
