"""The filter bar: one line where the filter language is typed, its error shown beside it."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Label

PLACEHOLDER = "filter: ae:CT1 ip:192.0.2.1 port:104 command:C-STORE sop:CT status:failure findings"


class FilterBar(Horizontal):
    """Typing filters as you go (after a short pause); Enter applies at once."""

    DEFAULT_CSS = """
    FilterBar { height: 1; }
    FilterBar > Label#filter-label { width: auto; padding: 0 1; color: $text-muted; }
    FilterBar > Input { border: none; height: 1; padding: 0; width: 1fr; }
    FilterBar > Input:focus { border: none; }
    FilterBar > Label#filter-error { width: auto; max-width: 60%; color: $error; padding: 0 1; }
    """

    class Applied(Message):
        """The user asks for this filter text."""

        def __init__(self, text: str, submitted: bool = False) -> None:
            super().__init__()
            self.text = text
            self.submitted = submitted  # Enter: the screen takes the focus back

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._initial = text
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label("/", id="filter-label")
        yield Input(self._initial, placeholder=PLACEHOLDER, id="filter-input")
        yield Label("", id="filter-error")

    @property
    def input(self) -> Input:
        return self.query_one("#filter-input", Input)

    def set_text(self, text: str) -> None:
        """Show ``text`` without applying it again (another screen changed the filter)."""
        inp = self.input
        if inp.value != text:
            with inp.prevent(Input.Changed):
                inp.value = text

    def set_error(self, message: str | None) -> None:
        self.query_one("#filter-error", Label).update(Text(message or ""))
        self.set_class(bool(message), "-error")

    @on(Input.Changed, "#filter-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(0.3, lambda: self.post_message(self.Applied(event.value)))

    @on(Input.Submitted, "#filter-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        self.post_message(self.Applied(event.value, submitted=True))
