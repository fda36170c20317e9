"""What the user named on the command line, as a list of capture files.

Several files, directories and shell globs are one capture (see :mod:`.merge`). A directory
contributes the capture files directly inside it and in its subdirectories, recognised by name
(``.pcap``, ``.pcapng``, ``.cap``, ``.dmp``, tcpdump ``-C`` numbered names, each optionally
``.gz``, ``.xz`` or ``.zst``); a glob is expanded here too, for shells and scripts that pass it
quoted. A name that matches nothing is reported, one line, like a bad file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

__all__ = ["capture_name", "expand_inputs", "natural_key"]

#: file names taken from a directory: capture extensions, tcpdump -C/-G's numbered suffixes
#: (ct.pcap1, ct.pcap12), dumpcap ring buffers (ct_00001_20260105120000.pcapng), each
#: optionally compressed. The patterns are compiled when first used (re caches them): most
#: runs name one file, and every start imports this module.
_CAPTURE_NAME = r".*\.(pcap|pcapng|cap|dmp|ntar)(\d*)(\.(gz|xz|zst))?$|.*_\d{5}_\d{14}\.\w+$"
_DIGITS = r"(\d+)"


def capture_name() -> re.Pattern[str]:
    """The pattern of the file names taken from a directory."""
    return re.compile(_CAPTURE_NAME, re.IGNORECASE)


def natural_key(path: str) -> tuple:
    """Order names as people do: ct.pcap2 before ct.pcap10 (tcpdump -C numbering)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(_DIGITS, path))


def expand_inputs(specs: Iterable[str]) -> tuple[list[str], list[str]]:
    """Expand files, directories and globs into (capture files, problems).

    Each problem is one line naming what could not be used. Files are returned once each (a
    file named twice, or by a glob and by name, is read once), in natural name order; the
    merge orders them by time anyway.
    """
    files: list[str] = []
    problems: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            files.append(path)

    for spec in specs:
        if spec == "-":
            if "-" not in seen:
                seen.add("-")
                files.append("-")
            continue
        if os.path.isdir(spec):
            found = []
            wanted = capture_name()
            for root, dirs, names in os.walk(spec):
                dirs.sort()
                found.extend(os.path.join(root, n) for n in names if wanted.match(n))
            if not found:
                problems.append(f"{spec}: directory holds no capture files "
                                "(.pcap, .pcapng, .cap, optionally .gz/.xz/.zst)")
            for p in sorted(found, key=natural_key):
                add(p)
        elif os.path.lexists(spec):
            add(spec)  # a file (or a broken link: the reader words the error)
        elif _has_magic(spec):
            import glob  # only for a name that is not a file: most runs never need it

            matches = sorted((m for m in glob.glob(spec, recursive=True)
                              if not os.path.isdir(m)), key=natural_key)
            if not matches:
                problems.append(f"{spec}: no file matches")
            for m in matches:
                add(m)
        else:
            problems.append(f"{spec}: no such file")
    return files, problems


def _has_magic(spec: str) -> bool:
    """``glob.has_magic``, without importing glob for a name that has none."""
    return any(c in spec for c in "*?[")
