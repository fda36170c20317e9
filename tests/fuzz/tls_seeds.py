"""Recorded TLS transcripts (OpenSSL via tests/tls_pair.py) that the TLS fuzz target mutates.

Stored in tls_seeds.json so the fuzzed inputs are the same on every run (a fresh handshake
has fresh randoms and keys). Regenerate with ``python -m tests.fuzz.tls_seeds``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

PATH = Path(__file__).with_name("tls_seeds.json")


@lru_cache(maxsize=1)
def load() -> list[tuple[str, list[tuple[int, bytes]]]]:
    """[(key log text, [(side, bytes), ...])] per transcript."""
    raw = json.loads(PATH.read_text())
    return [(t["keylog"], [(side, bytes.fromhex(h)) for side, h in t["chunks"]]) for t in raw]


def main() -> None:
    import ssl

    from tests.tls_pair import run_pair

    runs = [
        run_pair(b"\x01\x00" * 300, b"\x02\x00" * 40),
        run_pair(b"\x01\x00" * 300, b"\x02\x00" * 40, version=ssl.TLSVersion.TLSv1_2,
                 sni="archive.test", alpn=["dicom"]),
        run_pair(b"\x01\x00" * 300, b"\x02\x00" * 40, version=ssl.TLSVersion.TLSv1_2,
                 ciphers="ECDHE-RSA-AES128-SHA256", etm=False),
        run_pair(version=ssl.TLSVersion.TLSv1_2, require_client_cert=True, client_cert=True),
        run_pair(server_key="rogue-server"),
    ]
    PATH.write_text(json.dumps([{"keylog": r.keylog, "chunks": [[s, d.hex()] for s, d in
                                                                 r.chunks]} for r in runs]))


if __name__ == "__main__":
    main()
