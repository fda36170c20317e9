"""A table drawn with the Line API: only the visible rows are ever rendered.

The stock DataTable builds every row up front and slows down past ~100k rows; this one holds a
list of row objects and a function that turns one into cells, so a million associations cost
one list. A sticky header shows the sort column; clicking a header sorts, clicking a row moves
the cursor, a double click (or Enter) activates it; Space marks rows for a multi-selection.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..rows import STATE_STYLE, Column
from .textseg import segments

CellFn = Callable[[Any], tuple[list[Text], str]]
SEP = 1  # blank cells between columns
_CURSOR = Style(bgcolor="grey30", bold=True)
_CURSOR_BLURRED = Style(bgcolor="grey23")
_HEADER = Style(bold=True, underline=True)


class VirtualTable(ScrollView, can_focus=True):
    """Rows of any objects; ``cells(row)`` renders one, ``key(row)`` identifies it."""

    DEFAULT_CSS = """
    VirtualTable { height: 1fr; }
    """
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "edge(0)", "First", show=False),
        Binding("end,G", "edge(1)", "Last", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class CursorMoved(Message):
        def __init__(self, table: VirtualTable, row: Any) -> None:
            super().__init__()
            self.table = table
            self.row = row

        @property
        def control(self) -> VirtualTable:
            return self.table

    class Activated(Message):
        def __init__(self, table: VirtualTable, row: Any) -> None:
            super().__init__()
            self.table = table
            self.row = row

        @property
        def control(self) -> VirtualTable:
            return self.table

    class HeaderClicked(Message):
        def __init__(self, table: VirtualTable, column: str) -> None:
            super().__init__()
            self.table = table
            self.column = column

        @property
        def control(self) -> VirtualTable:
            return self.table

    def __init__(self, columns: Sequence[Column], cells: CellFn,
                 key: Callable[[Any], Hashable], *, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = tuple(columns)
        self.cells = cells
        self.key = key
        self.rows: list[Any] = []
        self.marks: set[Hashable] = set()
        self.sort_column: str | None = None
        self.sort_reverse = False
        self.empty_text = "nothing to show"
        self._widths: list[int] = [c.width for c in self.columns]
        self._cache: dict[tuple, Strip] = {}

    # -- data ---------------------------------------------------------------------------------
    @property
    def current(self) -> Any | None:
        """The row under the cursor (None when the table is empty)."""
        if 0 <= self.cursor < len(self.rows):
            return self.rows[self.cursor]
        return None

    def set_rows(self, rows: list[Any], *, follow: Any | None = None) -> None:
        """Replace the rows; the cursor stays on ``follow`` (default: the current row)."""
        keep = self.current if follow is None else follow
        self.rows = rows
        self._cache.clear()
        self._update_size()
        if keep is not None and 0 <= self.cursor < len(rows) and rows[self.cursor] is keep:
            self.refresh()
            return
        if keep is not None:
            k = self.key(keep)
            idx = next((i for i, r in enumerate(rows) if self.key(r) == k), None)
            if idx is not None:
                if idx != self.cursor:
                    self.cursor = idx
                self.refresh()
                return
        self.cursor = max(0, min(self.cursor, len(rows) - 1))
        self.refresh()

    def refresh_rows(self) -> None:
        """The rows' contents changed (a batch arrived): draw them again."""
        self._cache.clear()
        self.refresh()

    def marked_rows(self) -> list[Any]:
        return [r for r in self.rows if self.key(r) in self.marks]

    def selection(self) -> list[Any]:
        """Marked rows, else the row under the cursor."""
        marked = self.marked_rows()
        if marked:
            return marked
        cur = self.current
        return [cur] if cur is not None else []

    def toggle_mark(self) -> None:
        row = self.current
        if row is None:
            return
        k = self.key(row)
        self.marks.symmetric_difference_update({k})
        self._cache.clear()
        self.refresh()

    def clear_marks(self) -> None:
        self.marks.clear()
        self._cache.clear()
        self.refresh()

    def go_to(self, row: Any) -> bool:
        """Put the cursor on ``row`` (by key); False when it is not shown."""
        k = self.key(row)
        for i, r in enumerate(self.rows):
            if self.key(r) == k:
                self.cursor = i
                return True
        return False

    # -- geometry -----------------------------------------------------------------------------
    def _layout(self, width: int) -> list[int]:
        fixed = sum(c.width for c in self.columns) + SEP * (len(self.columns) + 1)
        extra = max(0, width - fixed)
        return [c.width + (extra if c.flex else 0) for c in self.columns]

    def _update_size(self) -> None:
        width = max(self.size.width, 1)
        self._widths = self._layout(width)
        total = sum(self._widths) + SEP * (len(self._widths) + 1)
        self.virtual_size = Size(total, len(self.rows) + 1)

    def on_resize(self, _event: events.Resize) -> None:
        self._cache.clear()
        self._update_size()

    @property
    def page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    # -- cursor -------------------------------------------------------------------------------
    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.rows) - 1)) if self.rows else 0

    def watch_cursor(self, old: int, new: int) -> None:
        self._cache.clear()
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.CursorMoved(self, self.current))

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_y)
        h = self.page
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + h:
            self.scroll_to(y=self.cursor - h + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * self.page

    def action_edge(self, end: int) -> None:
        self.cursor = len(self.rows) - 1 if end else 0

    def action_activate(self) -> None:
        if self.current is not None:
            self.post_message(self.Activated(self, self.current))

    # -- mouse --------------------------------------------------------------------------------
    def on_click(self, event: events.Click) -> None:
        off = event.get_content_offset(self)
        if off is None:
            return
        if off.y == 0:
            col = self._column_at(off.x + int(self.scroll_x))
            if col is not None:
                self.post_message(self.HeaderClicked(self, col))
            return
        idx = int(self.scroll_y) + off.y - 1
        if 0 <= idx < len(self.rows):
            if idx == self.cursor and event.chain >= 2:
                self.action_activate()
            else:
                self.cursor = idx

    def _column_at(self, x: int) -> str | None:
        pos = SEP
        for c, w in zip(self.columns, self._widths, strict=True):
            if pos <= x < pos + w + SEP:
                return c.key
            pos += w + SEP
        return None

    # -- drawing ------------------------------------------------------------------------------
    def _line(self, cells: list[Text], style: Style | None = None) -> list[Segment]:
        segs: list[Segment] = [Segment(" " * SEP, style)]
        for c, w, cell in zip(self.columns, self._widths, cells, strict=True):
            t = cell.copy()
            t.truncate(w, overflow="ellipsis")
            t.align("right" if c.align == "right" else "left", w)
            segs.extend(segments(t, self.app.console, style))
            segs.append(Segment(" " * SEP, style))
        return segs

    def _header(self) -> Strip:
        cells = []
        for c in self.columns:
            label = c.label
            if c.key == self.sort_column:
                label += " ▼" if self.sort_reverse else " ▲"
            cells.append(Text(label, style=_HEADER))
        return Strip(self._line(cells))

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        sx = int(self.scroll_x)
        if y == 0:
            strip = self._header()
        else:
            idx = int(self.scroll_y) + y - 1
            if not self.rows and y == 1:
                strip = Strip([Segment(f" {self.empty_text}", Style(dim=True, italic=True))])
            elif idx >= len(self.rows):
                return Strip.blank(width)
            else:
                strip = self._row_strip(idx)
        return strip.crop_extend(sx, sx + width, None)

    def _row_strip(self, idx: int) -> Strip:
        row = self.rows[idx]
        k = self.key(row)
        is_cursor = idx == self.cursor
        marked = k in self.marks
        ck = (k, is_cursor, marked, self.has_focus, tuple(self._widths))
        strip = self._cache.get(ck)
        if strip is not None:
            return strip
        cells, state = self.cells(row)
        base = Style.parse(STATE_STYLE.get(state, ""))
        if is_cursor:
            base = base + (_CURSOR if self.has_focus else _CURSOR_BLURRED)
        segs = self._line([c.copy() for c in cells], base)
        segs[0] = Segment("●" if marked else " ", base + Style(color="magenta", bold=True))
        strip = Strip(segs)
        if len(self._cache) > 512:
            self._cache.clear()
        self._cache[ck] = strip
        return strip

    def on_focus(self) -> None:
        self._cache.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._cache.clear()
        self.refresh()
