"""One TLS connection without an association: its handshake, certificates, alerts and
findings, as the report's block shows them (Enter on a ``T<n>`` row)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..tlsrows import TLSRow, tls_detail


class TLSScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close")]
    DEFAULT_CSS = """
    TLSScreen { align: center middle; }
    #tls { width: 90%; height: auto; max-height: 90%; border: round $accent; padding: 0 1;
           background: $surface; }
    """

    def __init__(self, row: TLSRow) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="tls"):
            yield Static(tls_detail(self.row), id="tls-detail")

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
