"""A new user's rough edges in the TUI, each driven with textual's Pilot as they met it."""

from __future__ import annotations

import re
from pathlib import Path

from dicomsniff.model import Association, Finding
from dicomsniff.tui.ladder import layout
from dicomsniff.tui.rows import ASSOCIATION_COLUMNS, size
from dicomsniff.tui.screens.findings import FindingsScreen
from dicomsniff.tui.screens.ladder import LadderScreen
from dicomsniff.tui.screens.modals import ExportScreen
from dicomsniff.tui.store import FAILURE, SUCCESS, WARNING, summarize
from tests.test_tui import SIZE, app_for, loaded, pilot_test, screen_text, wait_for
from tools.tui_screenshots import preserve_spaces

CAPTURES = Path(__file__).resolve().parent.parent / "captures"


@pilot_test
async def test_search_box_shows_what_is_typed():
    app = app_for("move.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("ctrl+f", *"ARCHI")
        bar = app.screen.query_one("#search")
        assert bar.has_focus and bar.content_region.height >= 1
        last_lines = screen_text(app).splitlines()[-3:]
        assert any("ARCHI" in ln for ln in last_lines), last_lines


@pilot_test
async def test_export_dialog_arrows_choose_the_format_and_enter_exports(tmp_path, ):
    app = app_for("move.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("x")
        dlg = app.screen
        assert isinstance(dlg, ExportScreen)
        assert dlg.query_one("#export-format").has_focus
        inp = dlg.query_one("#export-path")
        await pilot.press("down")  # SVG -> PlantUML
        assert dlg.fmt == "plantuml" and inp.value.endswith(".puml")
        inp.value = str(tmp_path / inp.value)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.last_export is not None)
        assert app.last_export[0] == "plantuml"
        assert (tmp_path / Path(inp.value).name).read_text().startswith("@startuml")


@pilot_test
async def test_export_writes_the_filtered_rows_not_the_cursor_row():
    app = app_for("store-many-associations.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        total = len(app.screen.table.rows)
        await pilot.press("slash", *"ae:STORESCU02 ae:STORESCU04", "enter")
        await wait_for(pilot, lambda: len(app.screen.table.rows) < total or total == 0)
        shown = [a.id for a in app.screen.table.rows]
        assert shown == [2, 4]
        await pilot.press("x")
        assert [a.id for a in app.screen.associations] == shown


def test_bytes_column_never_cuts_the_unit():
    width = next(c.width for c in ASSOCIATION_COLUMNS if c.key == "bytes")
    for n in (0, 9_999, 10_000, 999_949, 999_999, 9_999_999, 99_999_999, 999_960_000,
              12_345_678_901, 10**13):
        s = size(n)
        assert len(s) <= width and re.fullmatch(r"\d+(\.\d)? [kMGT]?B", s), (n, s)


def test_ladder_notes_are_not_striped_by_lifelines():
    from dicomsniff.export.sequence import build
    from tests.test_diagram import analyze

    an = analyze("move.pcap")
    lad = layout(build(an.associations, log=an.log))
    notes = [i for i, it in enumerate(lad.items) if type(it).__name__ == "Note"]
    assert notes
    for i in notes:
        t = lad.line(lad.starts[i])
        for x in lad.x:
            if t.plain[x] != "│":
                assert not any(sp.start <= x < sp.end and str(sp.style) == "grey50"
                               for sp in t.spans), t.plain


def test_screenshots_keep_their_spaces_in_librsvg():
    svg = '<svg class="x"><text x="10">&#160;&#160;frame&#160;12</text></svg>'
    assert preserve_spaces(svg).startswith('<svg xml:space="preserve" ')


@pilot_test
async def test_ladder_moves_the_detail_pane_under_it_when_it_would_not_fit():
    app = app_for("move.pcap")
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, LadderScreen)
        lad = screen.view.ladder
        await pilot.pause()
        region = screen.view.scrollable_content_region
        assert lad.width <= region.width, (lad.width, region.width)


@pilot_test
async def test_dataset_tab_shows_the_highlighted_value_whole():
    app = app_for("worklist.pcap")
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("enter")
        screen = app.screen
        view = screen.view
        view.cursor = next(i for i, it in enumerate(view.ladder.items)
                           if "C-FIND-RSP" in it.lines[0])
        await pilot.press("3")
        tree = screen.query_one("#dataset-tree")
        await wait_for(pilot, lambda: len(tree.root.children) >= 1)
        first = tree.root.children[0]
        first.expand()
        await pilot.pause()
        node = next(n for n in first.children if "Study Instance UID" in str(n.label)
                    or "Instance UID" in str(n.label))
        tree.focus()
        tree.move_cursor(node)
        await pilot.pause(0.1)
        uid = str(node.label).rsplit(": ", 1)[1]
        assert len(uid) > 20
        shown = screen_text(app).replace("\n", "")
        assert re.sub(r"\s", "", uid) in re.sub(r"[\s│▌▐]", "", shown)


@pilot_test
async def test_findings_panel_shows_the_whole_advice():
    app = app_for("associate-reject.pcap")
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("f")
        screen = app.screen
        assert isinstance(screen, FindingsScreen)
        await pilot.pause()
        f = screen.table.current
        assert f.code == "ASSOC-REJECTED" and "What to check" in f.message
        text = re.sub(r"\s+", " ", screen_text(app))
        tail = f.message.split("What to check:", 1)[1].strip()
        assert re.sub(r"\s+", " ", tail)[-40:] in text


def test_a_performance_hint_does_not_colour_a_successful_row():
    a = Association(1, "192.0.2.1:1", "192.0.2.2:104", calling_ae="A", called_ae="B")
    a.outcome = "released"
    a.findings.append(Finding("warning", "PERF-DELAYED-ACK", "Nagle", 5, 1, None))
    assert summarize(a, True).state == SUCCESS
    assert summarize(a, True).worst_finding == "warning"  # still counted and coloured
    a.findings.append(Finding("warning", "DIMSE-STATUS-WARNING", "coerced", 6, 1, None))
    assert summarize(a, True).state == WARNING
    a.outcome = "aborted"
    assert summarize(a, True).state == FAILURE
