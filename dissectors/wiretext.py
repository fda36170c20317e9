"""Wire strings made safe for people: the one escaping every output path uses.

A value from the wire (an AE title, a C-FIND key, a TLS server name, an HTTP header, a data
set element) reaches terminals, JSON, the TUI, diagrams and file names. Whatever it holds, it
must not act there: no escape or OSC sequence, no bell, no carriage return or line feed that
fakes a new line of a report, no U+2028/U+2029 (line and paragraph separators, new lines in
some viewers and in JavaScript), no bidirectional control (U+202A-U+202E, U+2066-U+2069,
U+200E/U+200F, U+061C) that reorders what is shown so a value reads as another. Backslash is
escaped too, so a literal ``\\x1b`` typed into a value cannot pass for an escaped ESC: the
escaping can be undone.

Two entry points:

* :func:`from_bytes` for octets as sent (PS3.8 items, command set strings, HTTP heads):
  printable ASCII kept, every other octet as ``\\xNN`` (the value is shown as it was sent);
* :func:`escape` for text already decoded (pydicom data set values in their character set,
  percent-decoded or JSON text): printable characters of any script are kept (a Japanese
  patient name stays readable); what ``str.isprintable`` rejects (categories Cc, Cf, Cs, Co,
  Cn, Zl, Zp and Zs other than the space) and the backslash become ``\\xNN``, ``\\uNNNN`` or
  ``\\UNNNNNNNN``.

:func:`shorten` caps the display length of one value (``DISPLAY_LIMIT``); JSON records carry
the full escaped value. A sentence that quotes wire values (a finding's message) marks each
with :func:`mark`: :func:`unmark` gives the sentence with every value whole (JSON),
:func:`shorten_marked` with every value cut (text output). The marks are private-use
characters (U+E000, U+E001) that neither escaping lets through, so the wire cannot forge one.
"""

from __future__ import annotations

import re

DISPLAY_LIMIT = 64  # characters of one wire string in text output (AE titles are 16, UIDs 64)
_ESCAPE_LEN = {"x": 4, "u": 6, "U": 10}
_ASCII_UNSAFE = r"[^\x20-\x5b\x5d-\x7e]"  # what from_bytes escapes (re caches the compile)


def _code(c: str) -> str:
    n = ord(c)
    if n < 0x100:
        return f"\\x{n:02x}"
    if n < 0x10000:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def escape(text: str) -> str:
    """Decoded text with every non-printable character and the backslash escaped."""
    if text.isprintable() and "\\" not in text:
        return text  # the common case, checked in C
    return "".join(c if c.isprintable() and c != "\\" else _code(c) for c in text)


def from_bytes(raw: bytes | bytearray | memoryview) -> str:
    """Octets from the wire as ASCII text: printable ASCII kept, all else ``\\xNN``."""
    text = bytes(raw).decode("latin-1")
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text  # the common case, checked in C (nothing _ASCII_UNSAFE matches)
    return re.sub(_ASCII_UNSAFE, lambda m: f"\\x{ord(m.group()):02x}", text)


def shorten(text: str, limit: int = DISPLAY_LIMIT) -> str:
    """At most ``limit`` characters of an (escaped) value, then how long it really was.

    The cut never splits an escape (``\\x1b`` stays whole or goes), so what is shown can
    still be read back.
    """
    if len(text) <= limit:
        return text
    cut = text[:limit]
    back = cut.rfind("\\", max(0, limit - 10))  # \UNNNNNNNN is the longest: 10 characters
    if back >= 0 and back + _ESCAPE_LEN.get(text[back + 1:back + 2], 2) > limit:
        cut = cut[:back]
    return f"{cut}...({len(text)} chars)"


def shown(text: str, limit: int = DISPLAY_LIMIT) -> str:
    """Decoded text escaped then shortened: a wire value as a message may quote it."""
    return shorten(escape(text), limit)


OPEN, CLOSE = "\ue000", "\ue001"  # around an escaped wire value quoted in a sentence
_MARKED = "\ue000([^\ue000\ue001]*)\ue001"  # compiled when first used (re caches it)


def mark(escaped: str) -> str:
    """An already escaped wire value, marked for :func:`unmark` / :func:`shorten_marked`."""
    return f"{OPEN}{escaped}{CLOSE}"


def unmark(text: str) -> str:
    """The sentence with its marked values whole."""
    if OPEN not in text:
        return text
    return text.replace(OPEN, "").replace(CLOSE, "")


def shorten_marked(text: str, limit: int = DISPLAY_LIMIT) -> str:
    """The sentence with each marked value cut to ``limit`` characters (:func:`shorten`)."""
    if OPEN not in text:
        return text
    return re.sub(_MARKED, lambda m: shorten(m.group(1), limit), text).replace(
        OPEN, "").replace(CLOSE, "")
