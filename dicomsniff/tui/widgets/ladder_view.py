"""The ladder: a sequence diagram in the terminal, drawn with the Line API.

Two sticky lines name the lifelines; the body scrolls both ways. The cursor is on one item (an
arrow or a note) at a time: up/down move between items, a click selects the item under the
mouse, and every move posts :class:`LadderView.Selected` for the detail pane.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..ladder import Ladder
from .textseg import segments

HEAD_LINES = 2
_CURSOR = Style(bgcolor="grey27")
_CURSOR_BLURRED = Style(bgcolor="grey19")


class LadderView(ScrollView, can_focus=True):
    """Shows a :class:`~dicomsniff.tui.ladder.Ladder`; ``cursor`` is an item index."""

    DEFAULT_CSS = """
    LadderView { height: 1fr; }
    """
    BINDINGS = [
        Binding("up,k", "move(-1)", "Previous", show=False),
        Binding("down,j", "move(1)", "Next", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "edge(0)", "First", show=False),
        Binding("end,G", "edge(1)", "Last", show=False),
        Binding("left,h", "pan(-8)", "Left", show=False),
        Binding("right,l", "pan(8)", "Right", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class Selected(Message):
        def __init__(self, view: LadderView, index: int) -> None:
            super().__init__()
            self.view = view
            self.index = index

        @property
        def control(self) -> LadderView:
            return self.view

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ladder: Ladder | None = None
        self.empty_text = "nothing to draw"

    def set_ladder(self, ladder: Ladder, cursor: int = 0) -> None:
        self.ladder = ladder
        self.virtual_size = Size(ladder.width, ladder.height + HEAD_LINES)
        self.cursor = cursor
        self.refresh()

    @property
    def count(self) -> int:
        return len(self.ladder.items) if self.ladder is not None else 0

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, self.count - 1)) if self.count else 0

    def watch_cursor(self, _old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh()
        if self.count:
            self.post_message(self.Selected(self, new))

    def _scroll_to_cursor(self) -> None:
        lad = self.ladder
        if lad is None or not self.count:
            return
        top = lad.starts[self.cursor]
        bottom = top + lad.heights[self.cursor]
        h = max(1, self.scrollable_content_region.height - HEAD_LINES)
        y = int(self.scroll_y)
        if top < y:
            self.scroll_to(y=top, animate=False, immediate=True)
        elif bottom > y + h:
            self.scroll_to(y=min(top, bottom - h), animate=False, immediate=True)

    def action_move(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        lad = self.ladder
        if lad is None or not self.count:
            return
        h = max(1, self.scrollable_content_region.height - HEAD_LINES)
        line = lad.starts[self.cursor] + direction * h
        self.cursor = lad.item_at(max(0, min(line, lad.height - 1)))

    def action_edge(self, end: int) -> None:
        self.cursor = self.count - 1 if end else 0

    def action_pan(self, dx: int) -> None:
        self.scroll_to(x=max(0, self.scroll_x + dx), animate=False)

    def on_click(self, event: events.Click) -> None:
        off = event.get_content_offset(self)
        lad = self.ladder
        if off is None or lad is None or off.y < HEAD_LINES or not self.count:
            return
        line = int(self.scroll_y) + off.y - HEAD_LINES
        if 0 <= line < lad.height:
            self.cursor = lad.item_at(line)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        sx = int(self.scroll_x)
        lad = self.ladder
        console = self.app.console
        if lad is None or not lad.items:
            if y == HEAD_LINES:
                return Strip([Segment(f" {self.empty_text}", Style(dim=True, italic=True))])
            return Strip.blank(width)
        if y < HEAD_LINES:
            strip = Strip(segments(lad.heads()[y], console))
            return strip.crop_extend(sx, sx + width, None)
        n = int(self.scroll_y) + y - HEAD_LINES
        if n >= lad.height:
            return Strip.blank(width)
        base = None
        if lad.item_at(n) == self.cursor:
            base = _CURSOR if self.has_focus else _CURSOR_BLURRED
        strip = Strip(segments(lad.line(n), console, base))
        return strip.crop_extend(sx, sx + width, base)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def find(self, text: str, start: int, backwards: bool = False) -> int | None:
        """Index of the next item whose label contains ``text`` (case-insensitive)."""
        lad = self.ladder
        if lad is None or not self.count:
            return None
        needle = text.casefold()
        n = self.count
        step = -1 if backwards else 1
        for k in range(1, n + 1):
            i = (start + step * k) % n
            if any(needle in s.casefold() for s in lad.items[i].lines):
                return i
        return None
