"""PlantUML text of a :class:`~dicomsniff.export.sequence.Diagram`.

Wire strings are data: every character that PlantUML's preprocessor (``%getenv()``, ``$var``,
``@enduml``, ``!include``), its Creole markup (``**``, ``--``, ``<color>``, ``[[link]]``) or
its line syntax could read is written as a character reference. ``&#NN;`` is decoded after
preprocessing, so ``%`` stays inert; ``\\``, ``$`` and ``<`` use ``<U+XXXX>`` because PlantUML
1.2020 crashes on ``&#92;`` and ``&#36;`` (a regex replacement) and because a ``<`` decoded
from ``&#60;`` could start a ``<U+...>`` sequence of its own.
"""

from __future__ import annotations

import re

from .sequence import Diagram, Message, Note

COLORS = {"failure": "#C62828", "warning": "#E65100", "muted": "#78909C"}
NOTE_COLORS = {"info": "#E8F1FB", "muted": "#F1F3F5", "warning": "#FFF4E5",
               "failure": "#FDECEA"}
_SAFE = re.compile(r"[A-Za-z0-9 .,:()=+]")
_PAIRED = frozenset("-_/")  # safe alone; doubled they are Creole (strike, underline, italic)
_UNICODE = {"\\": "<U+005C>", "$": "<U+0024>", "<": "<U+003C>"}


def text(s: str) -> str:
    """One line of plain text as inert PlantUML label text."""
    out = []
    for i, ch in enumerate(s):
        if _SAFE.fullmatch(ch):
            out.append(ch)
        elif ch in _PAIRED and (i == 0 or s[i - 1] != ch) and (i + 1 == len(s)
                                                              or s[i + 1] != ch):
            out.append(ch)
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        else:
            out.append(f"&#{ord(ch)};")
    return "".join(out)


def _label(lines: list[str], color: str | None = None, bold: int | None = None) -> str:
    """Escaped lines joined by PlantUML's ``\\n``; markup wraps each line (it stops at one)."""
    out = []
    for i, line in enumerate(lines):
        s = text(line)
        if i == bold:
            s = f"<b>{s}</b>"
        if color:
            s = f"<color:{color}>{s}</color>"
        out.append(s)
    return "\\n".join(out)


def _prefix(d: Diagram, time: float | None) -> list[str]:
    if d.timing and time is not None and d.t0 is not None:
        return [f"+{time - d.t0:.3f} s"]
    return []


LIMIT_NOTE = ("PlantUML cuts PNG images at 4096 px: for a tall diagram run "
              "PLANTUML_LIMIT_SIZE=16384 plantuml -tpng FILE, use -tsvg, or let "
              "dicomsniff write the PNG (-o x.png)")


def render(d: Diagram) -> str:
    ids = [f"P{i + 1}" for i in range(len(d.lifelines))]
    out = ["@startuml",
           # PlantUML cuts PNG output at 4096 px (its PLANTUML_LIMIT_SIZE) without a word; a
           # comment cannot raise it, so the file says how (dicomsniff writes PNG itself).
           f"' {LIMIT_NOTE}",
           "skinparam shadowing false", "skinparam sequenceMessageAlign center",
           "skinparam responseMessageBelowArrow false", "skinparam maxMessageSize 400",
           "title " + "\\n".join([text(d.title), *(f"<size:12>{text(x)}</size>"
                                                for x in d.subtitle)])]
    for pid, lf in zip(ids, d.lifelines, strict=True):
        out.append(f'participant "{_label([lf.title, lf.address])}" as {pid}')
    for it in d.items:
        if isinstance(it, Message):
            color = COLORS.get(it.style)
            shaft = "--" if it.reply else "-"
            arrow = f"-[{color}]{shaft[1:]}>" if color else f"{shaft}>"
            stamp = _prefix(d, it.time)
            label = _label(stamp + it.lines, color, bold=len(stamp))
            out.append(f"{ids[it.src]} {arrow} {ids[it.dst]} : {label}")
        elif isinstance(it, Note):
            over = ids[it.first] if it.first == it.last else f"{ids[it.first]}, {ids[it.last]}"
            color = NOTE_COLORS.get(it.style, "#FFFBE6")
            out.append(f"note over {over} {color} : {_label(_prefix(d, it.time) + it.lines)}")
    out.append("@enduml")
    return "\n".join(out) + "\n"
