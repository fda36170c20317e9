"""A sequence diagram laid out for the terminal: lifelines, arrows, labels, notes.

Takes the format-neutral :class:`~dicomsniff.export.sequence.Diagram` (the one the SVG,
PlantUML and Mermaid exports draw, collapsed runs included) and places it on a character grid.
Geometry is computed once; each line's Text is drawn only when the view asks for it, so a
diagram of thousands of messages costs what is on screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text

from ..export.sequence import Diagram, Message, Note

GUTTER = 18  # "  frame    +time  "
MIN_GAP = 26
MAX_GAP = 60
MAX_LABEL_LINES = 4
MAX_NOTE_LINES = 3
STYLE = {"normal": "", "muted": "dim", "warning": "yellow", "failure": "bold red",
         "info": ""}
NOTE_STYLE = {"info": "on #1c2833", "muted": "dim on #202020", "warning": "yellow on #332b00",
              "failure": "bold red on #3a1010"}
BAR = "│"


def _label_lines(lines: list[str], limit: int) -> list[str]:
    if len(lines) <= limit:
        return lines
    return [*lines[:limit - 1], f"… {len(lines) - limit + 1} more lines"]


def _clip(s: str, width: int) -> str:
    if width <= 0:
        return ""
    return s if len(s) <= width else s[:max(0, width - 1)] + "…"


@dataclass
class Ladder:
    """Geometry of a laid-out diagram; :meth:`line` draws one line on demand."""

    diagram: Diagram
    x: list[int]  # column of each lifeline
    width: int
    starts: list[int]  # first line of each item
    heights: list[int]
    _cache: dict[int, Text] = field(default_factory=dict)

    @property
    def items(self) -> list[Message | Note]:
        return self.diagram.items

    @property
    def height(self) -> int:
        return self.starts[-1] + self.heights[-1] if self.starts else 0

    def item_at(self, line: int) -> int:
        """Index of the item drawn on ``line`` (binary search on starts)."""
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= line:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def heads(self) -> list[Text]:
        """The two sticky header lines: AE titles (with the gutter's names), then addresses."""
        t_chars, a_chars = [" "] * self.width, [" "] * self.width
        t_chars[2:7], a_chars[11:15] = list("frame"), list("time")
        spans: list[tuple[int, int]] = []
        for x, ll in zip(self.x, self.diagram.lifelines, strict=True):
            for chars, s in ((t_chars, ll.title), (a_chars, ll.address)):
                s = _clip(s, MAX_GAP - 4)
                start = max(GUTTER, x - len(s) // 2)
                chars[start:start + len(s)] = list(s)
                del chars[self.width:]
                if chars is t_chars:
                    spans.append((start, start + len(s)))
        t = Text("".join(t_chars))
        t.stylize("dim", 0, GUTTER)
        for a, b in spans:
            t.stylize("bold cyan", a, b)
        return [t, Text("".join(a_chars), style="dim")]

    def line(self, n: int) -> Text:
        """Line ``n`` of the diagram body."""
        t = self._cache.get(n)
        if t is None:
            if len(self._cache) > 2048:
                self._cache.clear()
            i = self.item_at(n)
            t = self._cache[n] = self._draw(i, n - self.starts[i])
        return t

    def _gutter(self, chars: list[str], item: Message | Note) -> None:
        d = self.diagram
        frame = f"{item.frame}" if item.frame is not None else ""
        when = ""
        if item.time is not None and d.t0 is not None:
            dt = item.time - d.t0
            when = f"+{dt:.3f}" if dt < 1000 else f"+{dt:.0f}s"
        g = f"{frame:>7} {when:>9}"
        chars[0:len(g)] = list(g)

    def _draw(self, i: int, k: int) -> Text:
        item = self.items[i]
        chars = [" "] * self.width
        for x in self.x:
            chars[x] = BAR
        if isinstance(item, Note):
            return self._note(item, k, chars)
        return self._message(item, k, chars)

    def _finish(self, chars: list[str], spans: list[tuple[int, int, str]],
                covered: tuple[int, int] = (0, 0)) -> Text:
        """``covered``: columns a note drew over; the lifelines under it are not coloured
        (a grey cell in the middle of a note's words reads as a stray character)."""
        t = Text("".join(chars))
        for x in self.x:
            if not covered[0] <= x < covered[1]:
                t.stylize("grey50", x, x + 1)
        t.stylize("dim", 0, GUTTER - 1)
        for a, b, style in spans:
            if style:
                t.stylize(style, a, b)
        return t

    def _message(self, m: Message, k: int, chars: list[str]) -> Text:
        labels = _label_lines(m.lines, MAX_LABEL_LINES)
        style = STYLE.get(m.style, "")
        xs, xd = self.x[m.src], self.x[m.dst]
        lo, hi = min(xs, xd), max(xs, xd)
        if k < len(labels):
            room = (hi - lo - 3) if hi > lo else MIN_GAP
            s = _clip(labels[k], room)
            start = lo + 2
            chars[start:start + len(s)] = list(s)
            del chars[self.width:]
            head = ("bold " + style).strip() if k == 0 else style
            return self._finish(chars, [(start, start + len(s), head)])
        self._gutter(chars, m)
        if xs == xd:  # a message to itself
            s = "├──▶ ↺" if not m.reply else "├╌╌▷ ↺"
            chars[xs:xs + len(s)] = list(s)
            del chars[self.width:]
            return self._finish(chars, [(xs, xs + len(s), style)])
        body = "╌" if m.reply else "─"
        for x in range(lo + 1, hi):
            chars[x] = body
        if xd > xs:
            chars[hi - 1] = "▷" if m.reply else "▶"
            chars[lo] = "├"
        else:
            chars[lo + 1] = "◁" if m.reply else "◀"
            chars[hi] = "┤"
        return self._finish(chars, [(lo, hi + 1, style)])

    def _note(self, n: Note, k: int, chars: list[str]) -> Text:
        lines = _label_lines(n.lines, MAX_NOTE_LINES)
        a, b = self._note_span(n)
        if k == 0:
            self._gutter(chars, n)
        s = _clip(" " + lines[k], b - a)
        cells = list(s.ljust(b - a))
        chars[a:b] = cells
        del chars[self.width:]
        return self._finish(chars, [(a, b, NOTE_STYLE.get(n.style, ""))], (a, b))

    def _note_span(self, n: Note) -> tuple[int, int]:
        if n.first == n.last:
            x = self.x[n.first]
            w = min(max(len(s) for s in n.lines) + 2, MIN_GAP * 2)
            a = max(GUTTER, x - w // 2)
            return a, min(self.width, a + w)
        return self.x[n.first] - 2, min(self.width, self.x[n.last] + 3)


def _height(item: Message | Note) -> int:
    if isinstance(item, Note):
        return min(len(item.lines), MAX_NOTE_LINES) or 1
    return min(len(item.lines), MAX_LABEL_LINES) + 1


def layout(d: Diagram) -> Ladder:
    """Place ``d`` on a grid: gaps between lifelines wide enough for their labels."""
    n = len(d.lifelines)
    heads = [min(max(len(ll.title), len(ll.address)) + 2, MAX_GAP - 2) for ll in d.lifelines]
    gaps = [max(MIN_GAP, (heads[i] + heads[i + 1]) // 2 + 2) for i in range(n - 1)]
    right = max([heads[-1] // 2 + 2] if heads else [2])
    for it in d.items:
        if isinstance(it, Message):
            need = max((len(s) for s in it.lines[:MAX_LABEL_LINES]), default=0) + 4
            lo, hi = min(it.src, it.dst), max(it.src, it.dst)
            if lo == hi:
                right = max(right, 8) if lo == n - 1 else right
                continue
            have = sum(gaps[lo:hi])
            if have < need:
                gaps[hi - 1] = min(MAX_GAP, gaps[hi - 1] + need - have)
        elif it.first == it.last and it.last == n - 1:
            right = max(right, min(max(len(s) for s in it.lines) // 2 + 2, MIN_GAP))
    x = [GUTTER + (heads[0] // 2 + 1 if heads else 0)]
    for g in gaps:
        x.append(x[-1] + g)
    width = (x[-1] if x else GUTTER) + right + 1
    starts, heights = [], []
    pos = 0
    for it in d.items:
        h = _height(it)
        starts.append(pos)
        heights.append(h)
        pos += h
    return Ladder(d, x, width, starts, heights)
