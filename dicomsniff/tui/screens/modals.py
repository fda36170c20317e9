"""Modal screens: help, export, and one packet in hex."""

from __future__ import annotations

import os

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Log, RadioButton, RadioSet, Static

from dissectors.net import l3_offset, tcp_segment

from ...model import Association, Finding
from .. import framenames
from ..exports import FORMATS, default_name, format_for
from ..filter import help_rows
from ..frames import hexdump, read_frame
from ..rows import clock, date

KEYS = [
    ("Everywhere", [("?  F1", "this help"), ("q  Ctrl+C", "quit"),
                    ("/", "type a filter (Enter applies, Esc leaves the bar)"),
                    ("Ctrl+F", "search; n / N: next / previous match"),
                    ("x", "export the selection: SVG, PlantUML, Mermaid, JSON, pcap"),
                    ("mouse", "click a row or an arrow, click a header to sort, wheel "
                              "scrolls")]),
    ("Associations", [("Up Down PgUp PgDn Home End", "move"),
                      ("Enter  double click", "ladder of the marked associations (or this "
                                              "one)"),
                      ("Space", "mark / unmark for a multi-selection; u unmarks all"),
                      ("s  S", "sort by the next column / reverse"),
                      ("f", "findings panel"),
                      ("w", "DICOMweb: every HTTP request (QIDO-RS, WADO-RS, WADO-URI, "
                            "STOW-RS, UPS-RS) with its response"),
                      ("t", "studies: each study's journey (worklist, MPPS, images, "
                            "commitment, IAN); Enter its timeline, l its ladder")]),
    ("Ladder", [("Up Down", "previous / next message"), ("Left Right", "scroll sideways"),
                ("c", "collapse runs of the same exchange, or draw each one"),
                ("r", "show / hide related associations (C-MOVE sub-operations, storage "
                      "commitment reports)"),
                ("d", "show / hide the detail pane"),
                ("1 2 3 4", "detail tabs: Message, Negotiation, Data set, Bytes"),
                ("Tab", "move between the ladder and the detail pane"),
                ("Esc", "back to the list")]),
    ("Findings", [("Enter", "the association's ladder at the finding's packet (a DICOMweb "
                            "finding: its exchange)"),
                  ("p", "the packet in hex"), ("s  S", "sort")]),
    ("DICOMweb", [("Up Down", "the exchange, in full on the right: request, response, "
                              "timing, instances, findings"),
                  ("s  S", "sort"), ("Esc", "back to the list")]),
]

FILTER_EXAMPLES = [
    ("ae:CT1 command:C-STORE status:failure", "CT1's failed C-STOREs"),
    ("ip:192.0.2.1   ip:10.1.0.0/16", "an address or a network, either side"),
    ("port:104", "client or server port"),
    ("sop:CT   sop:worklist   sop:1.2.840.10008.5.1.4.1.1.2", "SOP class name or UID prefix"),
    ("findings   findings:error", "associations with findings (of that severity)"),
    ("-outcome:released", "'-' negates: every association that did not end normally"),
    ("ae:CT1 ae:CT2", "the same key twice: either"),
    ('ae:"MY AE"', "quote values with spaces"),
]


def help_renderable() -> Group:
    parts: list = [Text("dicomsniff tui", style="bold"),
                    Text("Browse a capture's DICOM associations like sngrep browses SIP "
                         "calls. Colours: green success, yellow warning, red failure, "
                         "cyan still open.\n")]
    for title, rows in KEYS:
        t = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE,
                  show_header=False, pad_edge=False)
        t.add_column(style="cyan", no_wrap=True)
        t.add_column()
        for k, v in rows:
            t.add_row(k, v)
        parts.append(t)
    t = Table(title="Filter language (applies to the list, the ladder and the findings)",
              title_justify="left", title_style="bold", box=box.SIMPLE, pad_edge=False)
    t.add_column("key", style="cyan", no_wrap=True)
    t.add_column("matches")
    for k, v in help_rows():
        t.add_row(k, v)
    parts.append(t)
    parts.append(Text("Different keys must all hold; the same key twice means either; '-' "
                      "negates a term; a bare word matches AE titles and addresses. command, "
                      "sop and status must hold for one transaction, and the ladder then "
                      "shows only those transactions.\n"))
    e = Table(title="Examples", title_justify="left", title_style="bold", box=box.SIMPLE,
              show_header=False, pad_edge=False)
    e.add_column(style="green", no_wrap=True)
    e.add_column()
    for k, v in FILTER_EXAMPLES:
        e.add_row(k, v)
    parts.append(e)
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_renderable())

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class FormatChoice(RadioSet):
    """The export formats: arrows choose (the file name follows), Enter exports."""

    BINDINGS = [Binding("enter", "submit", "Export", show=False)]

    def action_next_button(self) -> None:
        super().action_next_button()
        self.action_toggle_button()

    def action_previous_button(self) -> None:
        super().action_previous_button()
        self.action_toggle_button()

    def action_submit(self) -> None:
        self.screen._ok()  # type: ignore[attr-defined]


class ExportScreen(ModalScreen[tuple[str, str] | None]):
    """Choose a format and a file name; returns (format, path)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, associations: list[Association], capture: str | None) -> None:
        super().__init__()
        self.associations = associations
        self.capture = capture

    def compose(self) -> ComposeResult:
        ids = ", ".join(f"#{a.id}" for a in self.associations[:10])
        more = f" and {len(self.associations) - 10} more" if len(self.associations) > 10 else ""
        with Vertical(id="export"):
            yield Label(Text(f"Export {len(self.associations)} association(s): {ids}{more}",
                             style="bold"))
            yield Label(Text("arrows: format   Enter: export   Esc: cancel", style="dim"))
            with FormatChoice(id="export-format"):
                for k, (label, ext) in FORMATS.items():
                    yield RadioButton(f"{label} ({ext})", value=k == "svg", name=k,
                                      disabled=k == "pcap" and self.capture is None)
            yield Label("File:")
            yield Input(default_name(self.capture, self.associations, "svg"), id="export-path")
            with Horizontal(id="export-buttons"):
                yield Button("Export", variant="primary", id="export-ok")
                yield Button("Cancel", id="export-cancel")

    def on_mount(self) -> None:
        self.query_one(FormatChoice).focus()

    @property
    def fmt(self) -> str:
        pressed = self.query_one(RadioSet).pressed_button
        return (pressed.name if pressed is not None else None) or "svg"

    @on(RadioSet.Changed)
    def _format(self, _event: RadioSet.Changed) -> None:
        inp = self.query_one("#export-path", Input)
        stem = os.path.splitext(inp.value)[0] or "export"
        inp.value = stem + FORMATS[self.fmt][1]

    @on(Input.Submitted, "#export-path")
    @on(Button.Pressed, "#export-ok")
    def _ok(self) -> None:
        path = self.query_one("#export-path", Input).value.strip()
        if not path:
            self.notify("give a file name", severity="warning")
            return
        self.dismiss((format_for(path, self.fmt), os.path.expanduser(path)))

    @on(Button.Pressed, "#export-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def describe_frame(number: int, ts: float, linktype: int, data: bytes) -> Text:
    t = Text()
    t.append(framenames.frame(number), style="bold")
    t.append(f"  {date(ts)} {clock(ts)} UTC  {len(data)} bytes  link type {linktype}")
    etype, off = l3_offset(linktype, data)
    seg = tcp_segment(data, etype, off) if off >= 0 else None
    if seg is None:
        t.append("\nnot a TCP segment", style="dim")
        return t
    from dissectors.net import format_endpoint

    key, seq, ack, flags, ps, pe, _wl, window = seg
    names = [n for bit, n in ((2, "SYN"), (16, "ACK"), (8, "PSH"), (1, "FIN"), (4, "RST"))
             if flags & bit]
    t.append(f"\n{format_endpoint(key, 0)} -> {format_endpoint(key, 1)}  "
             f"[{' '.join(names)}]  seq {seq}  ack {ack}  TCP payload {pe - ps} bytes at "
             f"offset {ps}  window {window}")
    return t


class PacketScreen(ModalScreen[None]):
    """One frame of the capture: where it went and its bytes."""

    BINDINGS = [Binding("escape,q,p", "dismiss", "Close")]

    def __init__(self, frame: int, finding: Finding | None = None) -> None:
        super().__init__()
        self.frame = frame
        self.finding = finding

    def compose(self) -> ComposeResult:
        with Vertical(id="packet"):
            yield Static(Text(f"{framenames.frame(self.frame)}: reading...", style="dim"),
                         id="packet-head")
            yield Log(id="packet-hex", highlight=False)

    def on_mount(self) -> None:
        self._read()

    @work(thread=True)
    def _read(self) -> None:
        path = getattr(self.app, "capture_path", None)
        got = read_frame(path, self.frame) if path else None
        self.app.call_from_thread(self._show, got)

    def _show(self, got: tuple[float, int, bytes] | None) -> None:
        head = self.query_one("#packet-head", Static)
        if got is None:
            head.update(Text(f"{framenames.frame(self.frame)} cannot be read", style="red"))
            return
        text = describe_frame(self.frame, *got)
        if self.finding is not None:
            text.append(f"\n{self.finding.severity.upper()} {self.finding.code}: ",
                        style="bold")
            text.append(self.finding.shown)
        head.update(text)
        self.query_one("#packet-hex", Log).write_lines(hexdump(got[2]))

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
