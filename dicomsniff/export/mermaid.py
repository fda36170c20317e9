"""Mermaid text of a :class:`~dicomsniff.export.sequence.Diagram`.

Wire strings are data: every character outside a small safe set becomes a Mermaid entity code
(``#59;``), which Mermaid decodes only when it draws the text, so ``;`` cannot end a statement,
``%%`` cannot start a comment, ``<script>`` stays text and a newline cannot start a new line of
syntax. Mermaid cannot colour one arrow, so failures and warnings sit in a tinted ``rect``.
"""

from __future__ import annotations

import re

from .sequence import Diagram, Message, Note

TINTS = {"failure": "rgba(198, 40, 40, 0.16)", "warning": "rgba(230, 81, 0, 0.14)"}
_SAFE = re.compile(r"[A-Za-z0-9 .()=+_/]")
_SAFE_IN_TEXT = frozenset("-,:'")  # harmless in message and note text, not in an alias


def text(s: str, *, alias: bool = False) -> str:
    """One line of plain text as inert Mermaid text."""
    return "".join(ch if _SAFE.fullmatch(ch) or (not alias and ch in _SAFE_IN_TEXT)
                   else f"#{ord(ch)};" for ch in s)


def _label(lines: list[str], *, alias: bool = False) -> str:
    return "<br/>".join(text(x, alias=alias) for x in lines)


def render(d: Diagram) -> str:
    ids = [f"P{i + 1}" for i in range(len(d.lifelines))]
    out = ["sequenceDiagram", f"    title {_label([d.title])}"]
    for pid, lf in zip(ids, d.lifelines, strict=True):
        out.append(f"    participant {pid} as {_label([lf.title, lf.address], alias=True)}")
    for it in d.items:
        lines = list(it.lines)
        if d.timing and it.time is not None and d.t0 is not None:
            lines.insert(0, f"+{it.time - d.t0:.3f} s")
        if isinstance(it, Message):
            arrow = "-->>" if it.reply else "->>"
            stmt = f"{ids[it.src]}{arrow}{ids[it.dst]}: {_label(lines)}"
        elif isinstance(it, Note):
            over = ids[it.first] if it.first == it.last else f"{ids[it.first]},{ids[it.last]}"
            stmt = f"Note over {over}: {_label(lines)}"
        else:
            continue
        tint = TINTS.get(it.style)
        if tint:
            out += [f"    rect {tint}", f"        {stmt}", "    end"]
        else:
            out.append(f"    {stmt}")
    return "\n".join(out) + "\n"
