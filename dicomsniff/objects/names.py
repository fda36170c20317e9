"""File names built from wire data, and files created without ever replacing one.

AE titles and UIDs come from whoever was on the network: a title of ``../../etc``, a slash, a
NUL byte or a 10,000-character UID must not write outside the output directory nor clobber a
file. Names keep only ``[A-Za-z0-9._-]``, never start with a dot, are bounded in length, and
files are created with O_EXCL (a name in use gets a numbered suffix instead).
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import re
from collections import OrderedDict

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_PART = 64  # characters kept of one wire value; longer ones get a hash suffix
MAX_NAME = 200  # bytes; NAME_MAX is 255 on common file systems
MAX_HINTS = 4096  # names remembered with the next free suffix


class _NextFree:
    """The next numbered suffix worth trying per (directory, stem, suffix).

    Why: 10,000 objects with one SOP Instance UID (a modality resending, or an attacker)
    would otherwise probe -2, -3, ... from the start for each, 50 million failed opens in
    all. With the hint each name costs one or two opens. Bounded (least recently used
    forgotten): a forgotten name is probed from 1 again, still never overwriting (O_EXCL).
    """

    def __init__(self) -> None:
        self._next: OrderedDict[tuple[str, str, str], int] = OrderedDict()

    def start(self, key: tuple[str, str, str]) -> int:
        n = self._next.get(key, 1)
        if n > 1:
            self._next.move_to_end(key)
        return n

    def used(self, key: tuple[str, str, str], n: int) -> None:
        if n == 1 and key not in self._next:
            return  # the common case: the first name was free; remember nothing
        self._next[key] = n + 1
        self._next.move_to_end(key)
        if len(self._next) > MAX_HINTS:
            self._next.popitem(last=False)


_hints = _NextFree()


def _names(directory: str, stem: str, suffix: str) -> tuple[tuple[str, str, str], int]:
    key = (directory, stem, suffix)
    return key, _hints.start(key)


def safe_part(value: str | None, fallback: str = "unknown", limit: int = MAX_PART) -> str:
    """One component of a file name from a wire value: safe characters, bounded length."""
    text = _UNSAFE.sub("_", (value or "").strip()).strip("._-")
    text = text.replace("..", "_")
    if not text:
        return fallback
    if len(text) > limit:
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        text = text[:limit - 11] + "-" + digest
    return text


def object_name(association: int, sender: str | None, receiver: str | None,
                sop_instance: str | None) -> str:
    """``A0001_SENDER-to-RECEIVER_<SOP Instance UID>``, without extension."""
    name = (f"A{association:04d}_{safe_part(sender, 'no-ae', 16)}-to-"
            f"{safe_part(receiver, 'no-ae', 16)}_{safe_part(sop_instance, 'no-uid')}")
    return name[:MAX_NAME - 24]


def create_exclusive(directory: str, stem: str, suffix: str) -> tuple[int, str]:
    """Create ``directory/stem+suffix`` (or ``stem-2+suffix``...) that did not exist.

    Returns the open descriptor and the path. The name must be a bare file name: anything else
    is refused, so nothing computed from wire data can leave ``directory``.
    """
    if os.sep in stem + suffix or (os.altsep and os.altsep in stem + suffix) \
            or "\x00" in stem + suffix or stem.startswith("."):
        raise ValueError(f"not a plain file name: {stem + suffix!r}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) \
        | getattr(os, "O_BINARY", 0)
    key, first = _names(directory, stem, suffix)
    for n in itertools.count(first):  # unlimited: there is always a next number
        name = stem + (f"-{n}" if n > 1 else "") + suffix
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, flags, 0o644)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink sits on the name: never follow it
                continue
            raise
        _hints.used(key, n)
        return fd, path
    raise AssertionError("unreachable")


def rename_exclusive(path: str, stem: str, suffix: str) -> str:
    """Give the finished file at ``path`` its final name, never replacing an existing file."""
    directory = os.path.dirname(path)
    key, first = _names(directory, stem, suffix)
    for n in itertools.count(first):  # unlimited: there is always a next number
        target = os.path.join(directory, stem + (f"-{n}" if n > 1 else "") + suffix)
        try:
            os.link(path, target)  # fails if target exists: no race, no overwrite
        except FileExistsError:
            continue
        except OSError:  # no hard links here (some network or FAT file systems)
            fd, target = create_exclusive(directory, stem, suffix)
            os.close(fd)
            os.replace(path, target)  # replaces only the empty file reserved just now
            return target
        _hints.used(key, n)
        os.unlink(path)
        return target
    raise AssertionError("unreachable")
