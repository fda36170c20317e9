"""Lines set aside per association until it ends, in memory up to a size, then on disk.

An association longer than the engine keeps (``Limits.max_transactions``) hands its reported
transactions to ``on_retire`` as it goes. Writers that put an association's transactions after
its own record (JSON Lines, CSV) keep those lines here until the association ends, so their
output is the same as when nothing was retired, and memory stays bounded by the cap, not by the
association's length (a temporary file takes the rest).
"""

from __future__ import annotations

import shutil
import tempfile
from typing import IO, Any

IN_MEMORY = 1 << 20  # bytes of lines kept in memory per association before going to disk


class Spool:
    """Text lines by association id."""

    def __init__(self) -> None:
        self._files: dict[int, Any] = {}
        self.count: dict[int, int] = {}

    def add(self, association: int, line: str) -> None:
        f = self._files.get(association)
        if f is None:
            f = self._files[association] = tempfile.SpooledTemporaryFile(
                max_size=IN_MEMORY, mode="w+", encoding="utf-8", newline="")
            self.count[association] = 0
        f.write(line)
        self.count[association] += 1

    def write_to(self, association: int, out: IO[str]) -> int:
        """Copy the association's lines to ``out`` and forget them; returns how many."""
        f = self._files.pop(association, None)
        n = self.count.pop(association, 0)
        if f is not None:
            f.seek(0)
            shutil.copyfileobj(f, out)
            f.close()
        return n

    def drop(self, association: int) -> None:
        f = self._files.pop(association, None)
        self.count.pop(association, None)
        if f is not None:
            f.close()
