"""The search bar (Ctrl+F): find text in the rows or the ladder; n / N repeat."""

from __future__ import annotations

from textual import on
from textual.message import Message
from textual.widgets import Input


class SearchBar(Input):
    """Hidden until asked for; Enter searches forward (the screen closes it on Esc).

    It takes a line of its own above the footer: docked at the bottom it shared the footer's
    line and was drawn under it, and Input's focus border (a 'tall' border on a one-line
    widget) left only its top edge showing."""

    DEFAULT_CSS = """
    SearchBar, SearchBar:focus { height: 1; border: none; padding: 0 1; display: none;
                                 background: $boost; }
    SearchBar.-open, SearchBar.-open:focus { display: block; }
    """

    class Search(Message):
        def __init__(self, text: str, backwards: bool = False) -> None:
            super().__init__()
            self.text = text
            self.backwards = backwards

    def __init__(self) -> None:
        super().__init__(placeholder="search (Enter: next, Esc: close)", id="search")

    def open(self) -> None:
        self.add_class("-open")
        self.focus()

    def close(self) -> None:
        self.remove_class("-open")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value:
            self.post_message(self.Search(event.value))
        self.close()
