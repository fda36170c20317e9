"""The NSS key log format (SSLKEYLOGFILE): secrets per TLS session, keyed by ClientHello.random.

Written by Python's ``SSLContext.keylog_filename``, ``openssl s_client -keylogfile``, curl,
browsers and anything built on OpenSSL's ``SSL_CTX_set_keylog_callback``. One line per secret::

    CLIENT_RANDOM <64 hex: client random> <96 hex: TLS 1.2 master secret>
    CLIENT_HANDSHAKE_TRAFFIC_SECRET <64 hex> <secret>     (TLS 1.3, and SERVER_..., and
    CLIENT_TRAFFIC_SECRET_0 / SERVER_TRAFFIC_SECRET_0, CLIENT_EARLY_TRAFFIC_SECRET, ...)

Lines starting with ``#`` and blank lines are comments. A malformed line is counted (with the
first line number) and skipped, never fatal: a key log is often appended to by several programs
at once. Bounded: lines longer than MAX_LINE are skipped without being held whole, and at most
``max_sessions`` client randoms are kept.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable

LABELS = frozenset({
    "CLIENT_RANDOM",
    "CLIENT_EARLY_TRAFFIC_SECRET",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
    "EARLY_EXPORTER_SECRET",
    "EXPORTER_SECRET",
})
MAX_LINE = 400  # the longest valid line (a 64-byte secret) is ~200 characters
DEFAULT_MAX_SESSIONS = 1_000_000


class KeyLog:
    """Secrets by client random: ``secrets(client_random) -> {label: bytes}`` or None."""

    __slots__ = ("_by_random", "lines", "entries", "malformed", "first_malformed",
                 "unknown_labels", "dropped", "max_sessions", "sources")

    def __init__(self, max_sessions: int = DEFAULT_MAX_SESSIONS) -> None:
        self._by_random: dict[bytes, dict[str, bytes]] = {}
        self.lines = 0
        self.entries = 0
        self.malformed = 0
        self.first_malformed: int | None = None
        self.unknown_labels = 0  # well-formed lines with a label we do not use (e.g. RSA)
        self.dropped = 0  # sessions beyond max_sessions
        self.max_sessions = max_sessions
        self.sources: list[str] = []

    def __len__(self) -> int:
        return len(self._by_random)

    def secrets(self, client_random: bytes) -> dict[str, bytes] | None:
        return self._by_random.get(bytes(client_random))

    def add_lines(self, lines: Iterable[bytes | str]) -> None:
        for raw in lines:
            self.lines += 1
            if isinstance(raw, str):
                raw = raw.encode("ascii", "replace")
            if len(raw) > MAX_LINE:
                self._bad()
                continue
            line = raw.strip()
            if not line or line.startswith(b"#"):
                continue
            parts = line.split()
            if len(parts) != 3:
                self._bad()
                continue
            label = parts[0].decode("ascii", "replace")
            try:
                rnd = binascii.unhexlify(parts[1])
                secret = binascii.unhexlify(parts[2])
            except (binascii.Error, ValueError):
                self._bad()
                continue
            if label not in LABELS:
                self.unknown_labels += 1
                continue
            if len(rnd) != 32 or not 16 <= len(secret) <= 64 or (
                    label == "CLIENT_RANDOM" and len(secret) != 48):
                self._bad()
                continue
            entry = self._by_random.get(rnd)
            if entry is None:
                if len(self._by_random) >= self.max_sessions:
                    self.dropped += 1
                    continue
                entry = self._by_random[rnd] = {}
            entry[label] = secret
            self.entries += 1

    def _bad(self) -> None:
        self.malformed += 1
        if self.first_malformed is None:
            self.first_malformed = self.lines

    def add_file(self, path: str) -> None:
        """Read one key log file (OSError propagates: the caller words it for the user)."""
        with open(path, "rb") as f:
            self.add_lines(_bounded_lines(f))
        self.sources.append(str(path))


def _bounded_lines(f, chunk: int = 1 << 16):
    """Lines of a binary file, each cut at MAX_LINE + 1 bytes so none is held whole."""
    while True:
        line = f.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while True:  # swallow the rest of an over-long line
                rest = f.readline(chunk)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line
