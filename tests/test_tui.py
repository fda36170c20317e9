"""The TUI driven with textual's Pilot: every screen, the filter bar, search, marks, sorting,
the detail pane's tabs, exports and the incremental feed."""

from __future__ import annotations

import asyncio
import functools
import gc
import threading
import time
from pathlib import Path

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source
from dicomsniff.model import Association, Transaction
from dicomsniff.tui.app import DicomBrowser
from dicomsniff.tui.feed import Collector, FileSource
from dicomsniff.tui.screens.findings import FindingsScreen
from dicomsniff.tui.screens.ladder import LadderScreen
from dicomsniff.tui.screens.main import MainScreen
from dicomsniff.tui.screens.modals import ExportScreen, HelpScreen, PacketScreen
from tests import builders as b

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
SIZE = (150, 40)


def pilot_test(fn):
    """Run an async test with asyncio.run (no pytest plugin needed)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        asyncio.run(fn(*args, **kwargs))
    return wrapper


def app_for(name: str | Path, **kw) -> DicomBrowser:
    path = name if isinstance(name, Path) else CAPTURES / name
    return DicomBrowser(FileSource(str(path)), **kw)


async def wait_for(pilot, cond, timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "timed out"
        await pilot.pause(0.02)


async def loaded(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.loaded)
    await pilot.pause()


def screen_text(app: DicomBrowser) -> str:
    """What the terminal shows, as plain text."""
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, record=True, force_terminal=False,
                      color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


# -- the associations list -------------------------------------------------------------------
@pilot_test
async def test_list_shows_every_association_with_its_numbers():
    app = app_for("move.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        screen = app.screen
        assert isinstance(screen, MainScreen)
        rows = screen.table.rows
        assert [a.id for a in rows] == [1, 2]
        text = screen_text(app)
        assert "MOVESCU" in text and "ARCHIVE" in text and "192.0.2.1:41868" in text
        assert "1 C-MOVE" in text and "4 C-STORE" in text and "released" in text
        assert "2 shown of 2 associations" in text and "150 frames" in text


@pilot_test
async def test_sorting_by_keys_and_by_clicking_headers():
    app = app_for("store-many-associations.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        t = app.screen.table
        ids = [a.id for a in t.rows]
        assert ids == sorted(ids)
        await pilot.press("S")
        assert [a.id for a in t.rows] == sorted(ids, reverse=True)
        await pilot.press("S", "s", "s")  # id -> start -> calling AE
        assert t.sort_column == "calling"
        calling = [a.calling_ae for a in t.rows]
        assert calling == sorted(calling)
        x = 1 + sum(w + 1 for w in t._widths[:9])  # the Bytes header
        await pilot.click("#associations", offset=(x + 2, 0))
        assert t.sort_column == "bytes"
        await pilot.click("#associations", offset=(x + 2, 0))
        assert t.sort_reverse
        sizes = [app.store.summary(a).bytes for a in t.rows]
        assert sizes == sorted(sizes, reverse=True)


@pilot_test
async def test_row_colours_tell_success_warning_failure():
    app = app_for("associate-reject.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        states = {app.store.summary(a).state for a in app.screen.table.rows}
        assert states == {"failure"}
        strip = app.screen.table.render_line(1)
        assert any(seg.style and seg.style.color and seg.style.color.name == "red"
                   for seg in strip)


@pilot_test
async def test_filter_bar_filters_and_explains_mistakes():
    app = app_for("store-concurrent.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        t = app.screen.table
        assert len(t.rows) == 3
        await pilot.press("slash", *"ae:el2", "enter")
        assert [a.calling_ae for a in t.rows] == ["PARALLEL2"]
        assert app.screen.focused is t  # Enter gives the list the keys back
        inp = app.screen.query_one("#filter-input")
        await pilot.press("slash")
        inp.value = "port:htt"
        await pilot.press("end", "p", "enter")
        await pilot.pause(0.1)
        assert "not a TCP port" in screen_text(app)
        assert [a.calling_ae for a in t.rows] == ["PARALLEL2"]  # the last good filter stays
        inp.value = "command:C-STORE status:success"
        await pilot.press("enter")
        assert len(t.rows) == 3
        await pilot.press("slash")
        inp.value = "status:failur"
        await pilot.press("end", "e")
        await pilot.pause(0.5)  # applied while typing, after a pause
        assert t.rows == [] and "no DICOM association yet" in screen_text(app)
        await pilot.press("escape")
        assert app.screen.focused is t


@pilot_test
async def test_initial_filter_from_the_command_line():
    app = app_for("move.pcap", filter_text="ae:archive command:c-store")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert [a.id for a in app.screen.table.rows] == [2]


@pilot_test
async def test_search_moves_the_cursor_to_matches():
    app = app_for("store-many-associations.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        t = app.screen.table
        last = t.rows[-1].calling_ae
        await pilot.press("ctrl+f", *"nothing", "enter")
        assert t.cursor == 0
        await pilot.press("ctrl+f", *last.lower()[-3:], "enter")
        assert t.current.calling_ae == last
        await pilot.press("home", "n")
        assert t.current.calling_ae == last
        await pilot.press("N")
        assert t.current.calling_ae == last


@pilot_test
async def test_marks_select_several_associations_for_one_ladder():
    app = app_for("move.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("space", "space")
        assert app.screen.table.marks == {1, 2}
        assert "2 marked" in screen_text(app)
        await pilot.press("enter")
        assert isinstance(app.screen, LadderScreen) and app.screen.ids == [1, 2]
        await pilot.press("escape", "u")
        assert app.screen.table.marks == set()


@pilot_test
async def test_mouse_click_selects_and_double_click_opens():
    app = app_for("move.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.click("#associations", offset=(10, 2))
        assert app.screen.table.cursor == 1
        await pilot.click("#associations", offset=(10, 2), times=2)
        assert isinstance(app.screen, LadderScreen) and app.screen.ids == [2]


# -- the ladder ------------------------------------------------------------------------------
@pilot_test
async def test_ladder_of_a_move_brings_its_sub_association():
    app = app_for("move.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, LadderScreen)
        assert screen.related == {2}
        text = screen_text(app)
        assert "C-MOVE-RQ" in text and "C-STORE-RQ x 4" in text and "4 Success" in text
        await pilot.press("r")
        assert not any("C-STORE" in it.lines[0] for it in screen.view.ladder.items)
        await pilot.press("r", "c")
        assert not app.collapse
        body = [screen.view.ladder.line(n).plain for n in range(screen.view.ladder.height)]
        assert sum("C-STORE-RQ" in x for x in body) == 4
        await pilot.press("c")
        assert app.collapse


@pilot_test
async def test_detail_pane_follows_the_cursor_through_every_tab():
    app = app_for("move.pcap")
    # 50 lines: the ladder takes the 98 columns it needs, the narrower pane wraps more.
    async with app.run_test(size=(150, 50)) as pilot:
        await loaded(pilot)
        await pilot.press("enter")
        screen = app.screen
        items = screen.view.ladder.items
        i = next(k for k, it in enumerate(items) if it.lines[0].endswith("C-MOVE-RQ"))
        screen.view.cursor = i - 1
        await pilot.press("down")
        ref = screen.current_ref()
        assert ref.kind == "request" and ref.transaction.command == "C-MOVE"
        assert "MoveDestination" in screen_text(app)  # the request command set
        await pilot.press("2")
        await pilot.pause(0.1)
        assert "Study Root Query/Retrieve Information Model - MOVE" in screen_text(app)
        await pilot.press("3")
        await wait_for(pilot, lambda: "Study Instance UID" in screen_text(app))
        assert "Query/Retrieve Level: 'STUDY'" in screen_text(app)
        await pilot.press("4")
        await wait_for(pilot, lambda: "P-DATA-TF" in screen_text(app))
        assert "00000000  04 00 00 00" in screen_text(app)
        screen.view.cursor = 1  # the A-ASSOCIATE-AC: the bytes follow the cursor
        await wait_for(pilot, lambda: "A-ASSOCIATE-AC" in screen_text(app).split("Bytes")[-1])
        await pilot.press("d")
        assert not screen.detail.display
        await pilot.press("1")
        assert screen.detail.display


@pilot_test
async def test_dataset_tree_opens_sequences_lazily():
    app = app_for("worklist.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("enter")
        screen = app.screen
        items = screen.view.ladder.items
        i = next(k for k, it in enumerate(items) if "C-FIND-RSP x" in it.lines[0])
        screen.view.cursor = i
        await pilot.press("3")
        tree = screen.query_one("#dataset-tree")
        await wait_for(pilot, lambda: len(tree.root.children) >= 3)
        first = tree.root.children[0]
        seq = next(n for n in first.children if "Sequence" in str(n.label))
        assert not seq.children
        seq.expand()
        await pilot.pause(0.1)
        assert seq.children and "Item 1" in str(seq.children[0].label)


@pilot_test
async def test_click_on_an_arrow_selects_it():
    app = app_for("echo.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("enter")
        screen = app.screen
        lad = screen.view.ladder
        k = next(i for i, it in enumerate(lad.items) if "C-ECHO-RQ" in it.lines[0])
        await pilot.click("#ladder", offset=(30, 2 + lad.starts[k]))
        assert screen.view.cursor == k and screen.current_ref().transaction.command == "C-ECHO"


@pilot_test
async def test_ladder_search_and_filter():
    app = app_for("get.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("enter")
        screen = app.screen
        await pilot.press("ctrl+f", *"rel", "enter")
        assert "A-RELEASE" in screen.view.ladder.items[screen.view.cursor].lines[0]
        await pilot.press("slash")
        screen.query_one("#filter-input").value = "command:C-GE"
        await pilot.press("end", "T", "enter")
        await pilot.pause(0.1)
        assert app.filter.text == "command:C-GET"
        heads = [it.lines[0] for it in screen.view.ladder.items]
        assert not any("C-STORE" in h for h in heads) and any("C-GET-RQ" in h for h in heads)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        assert app.screen.query_one("#filter-input").value == "command:C-GET"


# -- findings --------------------------------------------------------------------------------
@pilot_test
async def test_findings_panel_jumps_to_the_association_and_the_packet():
    app = app_for("abort-mid-transfer.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("f")
        screen = app.screen
        assert isinstance(screen, FindingsScreen)
        codes = [f.code for f in screen.table.rows]
        assert "DIMSE-NO-RESPONSE" in codes
        assert screen.table.rows[0].severity in ("error", "warning")  # worst first
        k = codes.index("DIMSE-NO-RESPONSE")
        screen.table.cursor = k
        finding = screen.table.current
        await pilot.press("p")
        assert isinstance(app.screen, PacketScreen)
        await wait_for(pilot, lambda: "TCP payload" in screen_text(app))
        assert f"frame {finding.frame}" in screen_text(app)
        await pilot.press("escape", "enter")
        ladder = app.screen
        assert isinstance(ladder, LadderScreen)
        item = ladder.view.ladder.items[ladder.view.cursor]
        assert item.frame is not None and item.frame <= finding.frame
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, MainScreen)


@pilot_test
async def test_findings_sort_by_header_and_escape_steps_back():
    """The list screens' shared keys (screens/common.py ListScreen): a header click sorts,
    Escape closes the search bar first, then leaves the screen."""
    app = app_for("abort-mid-transfer.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("f")
        screen = app.screen
        assert isinstance(screen, FindingsScreen)
        t = screen.table
        x = 1 + sum(w + 1 for w in t._widths[:1])  # the second column's header
        second = t.columns[1].key
        await pilot.click("#findings", offset=(x + 1, 0))
        assert t.sort_column == second and not t.sort_reverse
        await pilot.click("#findings", offset=(x + 1, 0))
        assert t.sort_reverse
        await pilot.press("s")  # the next column after the one clicked
        assert t.sort_column == t.columns[2].key
        await pilot.press("ctrl+f")
        assert screen.query_one("SearchBar").has_class("-open")
        await pilot.press("escape")
        assert app.screen is screen and not screen.query_one("SearchBar").has_class("-open")
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


# -- help, exports ---------------------------------------------------------------------------
@pilot_test
async def test_help_screen_documents_keys_and_the_filter_language():
    app = app_for("echo.pcap")
    async with app.run_test(size=(150, 120)) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for words in ("Filter language", "ae:CT1 command:C-STORE status:failure", "port",
                      "sop", "findings", "Space", "Ladder", "export"):
            assert words in text, words
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


EXPORT_CHECKS = {
    "svg": lambda p: "<svg" in p.read_text(),
    "plantuml": lambda p: "@startuml" in p.read_text(),
    "mermaid": lambda p: "sequenceDiagram" in p.read_text(),
    "json": lambda p: '"type":"association"' in p.read_text(),
    "pcap": lambda p: p.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1",
}


@pilot_test
async def test_export_dialog_writes_every_format(tmp_path):
    app = app_for("move.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("enter")  # the ladder: the move and its sub-association
        for downs, fmt in enumerate(EXPORT_CHECKS):
            await pilot.press("x")
            assert isinstance(app.screen, ExportScreen)
            if downs:
                app.screen.query_one("#export-format").focus()
                await pilot.press(*["down"] * downs)  # arrows choose (Enter would export)
            inp = app.screen.query_one("#export-path")
            assert inp.value.startswith("move-a1-2.")
            target = tmp_path / ("out" + inp.value[inp.value.rindex("."):])
            inp.value = str(target)
            await pilot.click("#export-ok")
            want = (fmt, str(target))
            await wait_for(pilot, lambda w=want: app.last_export == w)
            assert EXPORT_CHECKS[fmt](target), fmt
            assert isinstance(app.screen, LadderScreen)
    an = Analyzer()
    analyze_source(str(tmp_path / "out.pcap"), an)
    assert [a.calling_ae for a in an.associations] == ["MOVESCU", "ARCHIVE"]


@pilot_test
async def test_export_failure_is_a_notification(tmp_path):
    app = app_for("echo.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("x")
        app.screen.query_one("#export-path").value = str(tmp_path / "missing" / "x.svg")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("cannot write" in n.message
                                          for n in app._notifications))
        assert app.last_export is None
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


# -- wire data stays data --------------------------------------------------------------------
def hostile_capture(path: Path) -> Path:
    from tests.test_diagram import write_pcap

    c = b.TcpConversation(client=("192.0.2.1", 40000)).handshake()
    calling, called = "[red]EVIL[/red]", "[b]X[/b][link"
    c.send(0, b.associate_rq(called=called, calling=calling))
    c.send(1, b.associate_ac(called=called, calling=calling))
    c.send(0, b.release_rq()).send(1, b.release_rp())
    return write_pcap(path, c.close().frames)


@pilot_test
async def test_markup_in_ae_titles_is_shown_as_typed(tmp_path):
    app = app_for(hostile_capture(tmp_path / "hostile.pcap"))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        text = screen_text(app)
        assert "[red]EVIL[/red]" in text and "[b]X[/b][link" in text
        await pilot.press("enter")
        text = screen_text(app)
        assert "[red]EVIL[/red]" in text and "[b]X[/b][link" in text
        await pilot.press("2")
        await pilot.pause(0.1)
        assert "[red]EVIL[/red]" in screen_text(app)


# -- incremental feed (what `live --tui` will plug in) ---------------------------------------
class SteppedSource:
    """A source that hands over associations one at a time, when the test says so."""

    capture_path = None
    label = "live"

    def __init__(self, assocs: list[Association]) -> None:
        self.assocs = assocs
        self.step = threading.Semaphore(0)

    def run(self, collector: Collector) -> None:
        for a in self.assocs:
            self.step.acquire()
            collector.association_started(a)
            for t in a.transactions:
                collector.transaction(a, t)
        self.step.acquire()
        for a in self.assocs:
            collector.association_ended(a)
        collector.finish(None, 10)


def synthetic(i: int, failed: bool = False) -> Association:
    a = Association(i, f"192.0.2.1:{40000 + i}", "192.0.2.2:104", f"CT{i}", "PACS",
                    start=1.7e9 + i, end=1.7e9 + i + 0.5, first_frame=i * 10,
                    last_frame=i * 10 + 9, outcome="released")
    a.transactions.append(Transaction(i, i, "C-STORE", 1, 1, 1, "requestor",
                                      sop_class="1.2.840.10008.5.1.4.1.1.2", request_frame=i * 10,
                                      response_frames=[i * 10 + 5], status=0xA700 if failed
                                      else 0, status_category="Failure" if failed
                                      else "Success", request_time=1.7e9 + i,
                                      response_time=1.7e9 + i + 0.1))
    return a


@pilot_test
async def test_associations_appear_while_the_feed_runs():
    src = SteppedSource([synthetic(1), synthetic(2, failed=True)])
    app = DicomBrowser(src)
    async with app.run_test(size=SIZE) as pilot:
        t = app.screen.table
        src.step.release()
        await wait_for(pilot, lambda: len(t.rows) == 1)
        assert "open" in screen_text(app) and "reading" in screen_text(app)
        await pilot.press("enter")
        assert isinstance(app.screen, LadderScreen)
        src.step.release()
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(app.screen.table.rows) == 2)
        await pilot.press("slash")
        app.screen.query_one("#filter-input").value = "status:failur"
        await pilot.press("end", "e", "enter")
        assert [a.id for a in app.screen.table.rows] == [2]
        src.step.release()
        await wait_for(pilot, lambda: app.loaded)
        await pilot.pause(0.1)
        assert app.store.summary(synthetic(1)).state == "success"
        assert "released" in screen_text(app)
        await pilot.press("3")  # no capture file: the detail says so instead of failing
        await pilot.press("enter")
        await pilot.press("3")
        await pilot.pause(0.3)
        assert "no capture file" in screen_text(app)


@pilot_test
async def test_a_hundred_thousand_rows_stay_quick():
    n = 100_000
    gc.disable()  # building the rows is the test's work, not the app's
    try:
        rows = [synthetic(i, failed=True) if not i % 1000 else
                Association(i, f"10.0.{i >> 8 & 255}.{i & 255}:4000", "192.0.2.2:104",
                            "CT", "PACS", start=1.7e9 + i, end=1.7e9 + i + 1,
                            outcome="released") for i in range(1, n + 1)]
    finally:
        gc.enable()
    src = SteppedSource(rows)
    for _ in range(n + 1):
        src.step.release()
    app = DicomBrowser(src)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded, timeout=60)
        await pilot.pause()
        t = app.screen.table
        assert len(t.rows) == n
        t0 = time.perf_counter()
        await pilot.press("end", "pageup")
        here = t.current
        assert here.id < n - 10
        await pilot.press("S")
        assert t.rows[0].id == n and t.current is here  # the cursor stays on its row
        assert app.set_filter("status:failure") is None
        assert len(t.rows) == n // 1000
        assert time.perf_counter() - t0 < 5.0


@pilot_test
async def test_quit_stops_the_reader():
    app = app_for("move.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await asyncio.sleep(0)
    assert app.collector.cancelled.is_set()
