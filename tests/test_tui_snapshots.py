"""The look of the TUI's main screens on sample captures, pinned as SVG snapshots.

Regenerate after an intended change with ``pytest tests/test_tui_snapshots.py
--snapshot-update`` and look at the pictures (pytest-textual-snapshot writes a report on
failure).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("pytest_textual_snapshot")

from dicomsniff.tui.app import DicomBrowser  # noqa: E402
from dicomsniff.tui.feed import FileSource  # noqa: E402

CAPTURES = Path(__file__).resolve().parent.parent / "captures"


def app_for(name: str) -> DicomBrowser:
    return DicomBrowser(FileSource(str(CAPTURES / name)))


async def until(pilot, cond, timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout
        await pilot.pause(0.02)


async def loaded(pilot) -> None:
    await until(pilot, lambda: pilot.app.loaded)
    await pilot.pause()


def test_associations_list(snap_compare):
    assert snap_compare(app_for("store-concurrent.pcap"), run_before=loaded,
                        terminal_size=(130, 14))


def test_failures_are_red(snap_compare):
    async def before(pilot):
        await loaded(pilot)
        await pilot.press("s", "s", "s", "s")  # sorted by outcome

    assert snap_compare(app_for("associate-reject.pcap"), run_before=before,
                        terminal_size=(130, 10))


def test_ladder_of_a_move_with_its_sub_association(snap_compare):
    async def before(pilot):
        await loaded(pilot)
        await pilot.press("enter")
        view = pilot.app.screen.view
        view.cursor = next(i for i, it in enumerate(view.ladder.items)
                           if it.lines[0].endswith("C-MOVE-RQ"))
        await pilot.pause()

    assert snap_compare(app_for("move.pcap"), run_before=before, terminal_size=(160, 48))


def test_worklist_dataset_tree(snap_compare):
    async def before(pilot):
        await loaded(pilot)
        await pilot.press("enter")
        screen = pilot.app.screen
        screen.view.cursor = next(i for i, it in enumerate(screen.view.ladder.items)
                                  if "C-FIND-RQ" in it.lines[0])
        await pilot.press("3")
        tree = screen.query_one("#dataset-tree")
        await until(pilot, lambda: len(tree.root.children) == 1)
        await pilot.pause()

    assert snap_compare(app_for("worklist.pcap"), run_before=before, terminal_size=(160, 34))


def test_findings_panel(snap_compare):
    async def before(pilot):
        await loaded(pilot)
        await pilot.press("f")

    assert snap_compare(app_for("abort-mid-transfer.pcap"), run_before=before,
                        terminal_size=(130, 12))


def test_dicomweb_transactions_beside_the_associations(snap_compare):
    """The DICOMweb list ('w') of the mixed DIMSE + DICOMweb capture, a WADO-RS selected."""
    async def before(pilot):
        await loaded(pilot)
        await pilot.press("w")
        await pilot.pause()
        await pilot.press("down")
        await pilot.pause()

    assert snap_compare(DicomBrowser(FileSource(str(CAPTURES / "dicomweb"
                                                    / "mixed-dimse-dicomweb.pcap"))),
                        run_before=before, terminal_size=(130, 30))


def test_studies_list_and_a_study_timeline(snap_compare):
    """t: the studies the journey followed; Enter: one study's timeline (journey-mismatch)."""
    async def before(pilot):
        await loaded(pilot)
        await pilot.press("t")
        await until(pilot, lambda: pilot.app.screen.id == "studies-screen")
        await pilot.press("enter")
        await until(pilot, lambda: pilot.app.screen.id == "study-screen")
        await pilot.pause()

    assert snap_compare(app_for("journey/journey-mismatch.pcap"), run_before=before,
                        terminal_size=(100, 40))
