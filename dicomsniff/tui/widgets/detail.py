"""The detail pane of the ladder: the selected message in four tabs.

Message and Negotiation are drawn at once from the model. Data set and Bytes read the capture
again, so they load in a thread worker only while their tab is shown, a moment after the
cursor stops (holding an arrow key down never starts a hundred reads).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Label, Log, Static, TabbedContent, TabPane, Tree
from textual.worker import get_current_worker

from dissectors.dimse.status import category

from .. import describe, framenames
from ..dataset import Entry, collect, decode, wanted_messages
from ..frames import hexdump, message_pdus, read_frame
from ..refs import Ref

MESSAGE_KINDS = frozenset({"associate-rq", "associate-ac", "associate-rj", "release-rq",
                           "release-rp", "abort", "request", "response", "cancel"})
TABS = ("tab-message", "tab-negotiation", "tab-dataset", "tab-bytes")


class _Stop(Exception):
    """The worker was cancelled (another message was selected)."""


def _checker() -> Callable[[], None]:
    worker = get_current_worker()

    def check() -> None:
        if worker.is_cancelled:
            raise _Stop

    return check


class DetailPane(Vertical):
    """What one ladder item is, its association's negotiation, its data set, its bytes."""

    DEFAULT_CSS = """
    DetailPane { width: 1fr; }
    DetailPane TabbedContent, DetailPane TabPane { height: 1fr; }
    DetailPane .status { color: $text-muted; height: auto; }
    DetailPane Tree, DetailPane Log { height: 1fr; }
    DetailPane #dataset-value { height: auto; max-height: 6; padding: 0 1;
                                border-top: hkey $panel-lighten-2; }
    """

    def __init__(self, capture_path: str | None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.capture_path = capture_path
        self.ref: Ref | None = None
        self._stale = {"tab-dataset": True, "tab-bytes": True}
        self._timer: Timer | None = None
        self._token = 0

    def compose(self) -> ComposeResult:
        with TabbedContent(id="detail-tabs"):
            with TabPane("Message", id="tab-message"), VerticalScroll():
                yield Static(id="message")
            with TabPane("Negotiation", id="tab-negotiation"), VerticalScroll():
                yield Static(id="negotiation")
            with TabPane("Data set", id="tab-dataset"):
                yield Label("", id="dataset-status", classes="status")
                tree: Tree[Entry | None] = Tree("data set", id="dataset-tree")
                tree.show_root = False
                yield tree
                # The highlighted element whole, wrapped: a tree line is cut at the pane's
                # edge, and a UID is useless cut.
                yield Static("", id="dataset-value")
            with TabPane("Bytes", id="tab-bytes"):
                yield Label("", id="bytes-status", classes="status")
                yield Log(id="bytes-log", highlight=False)

    @property
    def active(self) -> str:
        return self.query_one(TabbedContent).active

    def show_tab(self, index: int) -> None:
        self.query_one(TabbedContent).active = TABS[index]

    def show(self, ref: Ref | None) -> None:
        """Describe ``ref``; the capture-reading tabs load when shown."""
        self.ref = ref
        self._token += 1
        msg = self.query_one("#message", Static)
        neg = self.query_one("#negotiation", Static)
        if ref is None:
            msg.update(Text("nothing selected", style="dim"))
            neg.update(Text(""))
        else:
            msg.update(describe.message(ref))
            neg.update(describe.negotiation(ref.association))
        self._stale = {"tab-dataset": True, "tab-bytes": True}
        self.workers.cancel_group(self, "capture")
        if self._timer is not None:
            self._timer.stop()
        if self.active in self._stale:
            self._set_status(self.active, "...")
            self._timer = self.set_timer(0.15, self._load_active)

    @on(TabbedContent.TabActivated)
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        if self._stale.get(self.active):
            self._load_active()

    def _set_status(self, tab: str, text: str) -> None:
        target = "#dataset-status" if tab == "tab-dataset" else "#bytes-status"
        self.query_one(target, Label).update(Text(text))

    def _load_active(self) -> None:
        tab = self.active
        if tab not in self._stale or not self._stale[tab]:
            return
        self._stale[tab] = False
        ref = self.ref
        if ref is None or ref.association is None:
            self._set_status(tab, "nothing selected")
            self._clear(tab)
            return
        if self.capture_path is None:
            self._set_status(tab, "no capture file to read the bytes from")
            self._clear(tab)
            return
        self._set_status(tab, "reading the capture...")
        if tab == "tab-dataset":
            self._load_dataset(ref, self._token)
        else:
            self._load_bytes(ref, self._token)

    def _clear(self, tab: str) -> None:
        if tab == "tab-dataset":
            self.query_one("#dataset-tree", Tree).clear()
        else:
            self.query_one("#bytes-log", Log).clear()

    # -- data set -----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="capture")
    def _load_dataset(self, ref: Ref, token: int) -> None:
        t = ref.transaction
        if t is None or ref.kind == "cancel" or ref.association is None:
            self.app.call_from_thread(self._show_dataset, token, [], "this message carries no "
                                      "data set")
            return
        all_responses = ref.kind == "response" and ref.count > 1 and len(ref.run) <= 1
        wanted = wanted_messages(t, ref.response_index, all_responses=all_responses)
        try:
            got = collect(self.capture_path or "", ref.association, wanted, check=_checker())
        except _Stop:
            return
        except Exception as exc:  # noqa: BLE001 - shown, never a crash
            self.app.call_from_thread(self._show_dataset, token, [], f"cannot read: {exc}")
            return
        roots = []
        responses = [c for c in got if c.side != (0 if t.sent_by == "requestor" else 1)]
        for c in got:
            if c in responses:
                k = responses.index(c) + 1
                label = Text(f"{t.command}-RSP {k} of {len(responses)}", style="bold")
            else:
                label = Text(f"{t.command}-RQ", style="bold")
            status = c.command.get("Status")
            if isinstance(status, int):
                label.append(f"  status 0x{status:04X} {category(status)}", style="dim")
            label.append(f"  {framenames.frame(c.frame)}, {c.total} bytes", style="dim")
            roots.append((label, decode(c, t.transfer_syntax)))
        note = "" if roots else "this message carries no data set"
        self.app.call_from_thread(self._show_dataset, token, roots, note)

    def _show_dataset(self, token: int, roots: list[tuple[Text, list[Entry]]],
                      note: str) -> None:
        if token != self._token:
            return
        tree = self.query_one("#dataset-tree", Tree)
        tree.clear()
        for k, (label, entries) in enumerate(roots):
            node = tree.root.add(label, data=None, expand=k == 0 or len(roots) <= 3)
            self._add_entries(node, entries)
        tree.root.expand()
        self._set_status("tab-dataset", note or (
            "Enter or click opens a sequence; Pixel Data is shown as its size, never decoded"))

    @staticmethod
    def _add_entries(node: Any, entries: list[Entry]) -> None:
        for e in entries:
            if e.children is not None:
                node.add(e.label, data=e, allow_expand=True)
            else:
                node.add_leaf(e.label, data=e)

    @on(Tree.NodeHighlighted, "#dataset-tree")
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        node = event.node
        label = Text("") if node.is_root else node.label
        self.query_one("#dataset-value", Static).update(
            label.copy() if isinstance(label, Text) else Text(str(label)))

    @on(Tree.NodeExpanded, "#dataset-tree")
    def _expand(self, event: Tree.NodeExpanded) -> None:
        node = event.node
        entry = node.data
        if isinstance(entry, Entry) and entry.children is not None and not node.children:
            self._add_entries(node, entry.children())

    # -- bytes --------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="capture")
    def _load_bytes(self, ref: Ref, token: int) -> None:
        a = ref.association
        assert a is not None
        lines: list[str] = []
        per_line = 16 if self.size.width >= 80 else 8
        check = _checker()
        try:
            if ref.kind in MESSAGE_KINDS and ref.frame is not None:
                pdus, packets = message_pdus(self.capture_path or "", a, ref.side, ref.frame,
                                             check=check)
                who = ("requestor -> acceptor", "acceptor -> requestor")[ref.side]
                for p in pdus:
                    state = "" if p.complete else ", incomplete in the capture"
                    lines.append(f"{p.name}, {p.length + 6} bytes ({who}), frames "
                                 f"{p.frames[0]}-{p.frames[-1]}{state}")
                    lines += hexdump(p.data, per_line=per_line)
                    if p.length + 6 > len(p.data):
                        lines.append(f"... {p.length + 6 - len(p.data)} more bytes not shown")
                    lines.append("")
                if not pdus:
                    lines.append("the stream cannot be split into PDUs here (the capture "
                                 "starts inside the association or lost bytes); frame "
                                 f"{ref.frame} as captured:")
                    for pk in packets:
                        lines += hexdump(pk.data, per_line=per_line)
            elif ref.frame is not None:
                got = read_frame(self.capture_path or "", ref.frame)
                if got is not None:
                    lines.append(f"{framenames.frame(ref.frame)}, {len(got[2])} bytes, "
                                 f"link type {got[1]}")
                    lines += hexdump(got[2], per_line=per_line)
        except _Stop:
            return
        except Exception as exc:  # noqa: BLE001
            lines = [f"cannot read: {exc}"]
        self.app.call_from_thread(self._show_bytes, token, lines)

    def _show_bytes(self, token: int, lines: list[str]) -> None:
        if token != self._token:
            return
        log = self.query_one("#bytes-log", Log)
        log.clear()
        log.write_lines(lines or ["no bytes for this item"])
        log.scroll_home(animate=False)
        self._set_status("tab-bytes", "the PDUs with bytes in this message's frame, "
                                      "read again from the capture")
