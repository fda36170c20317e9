"""The TUI's studies screen driven with textual's Pilot on real journey recordings: t lists
the studies with their journey state, Enter opens a study's timeline (the same text as
``dicomsniff studies``), l the ladder of its associations, Esc goes back."""

from __future__ import annotations

import json
from pathlib import Path

from dicomsniff.tui.screens.ladder import LadderScreen
from dicomsniff.tui.screens.main import MainScreen
from dicomsniff.tui.screens.studies import StudiesScreen, StudyScreen
from tests.test_tui import app_for, loaded, pilot_test, screen_text, wait_for

JOURNEY = Path(__file__).resolve().parent.parent / "captures" / "journey"
MANIFEST = {e["file"]: e for e in json.loads((JOURNEY / "manifest.json").read_text())["captures"]}


@pilot_test
async def test_studies_screen_lists_each_study_with_its_journey_state():
    truth = MANIFEST["journey-mismatch.pcap"]["journey"]
    app = app_for(JOURNEY / "journey-mismatch.pcap")
    async with app.run_test(size=(150, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen))
        (row,) = app.screen.table.rows
        assert row["study_instance_uid"] == truth["study_instance_uid"]
        assert row["state"] == "available"
        text = screen_text(app)
        assert "available" in text and truth["study_instance_uid"][:20] in text
        assert "1 study, 1 with findings" in text
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))
        text = screen_text(app)
        assert "timeline" in text and "SPS JSPS0001" in text
        assert "STUDY-ATTR-MISMATCH" in text  # the study's findings, under it
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LadderScreen))
        assert sorted(app.screen.ids) == sorted(row["associations"])
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


@pilot_test
async def test_studies_screen_without_studies_says_so():
    app = app_for(JOURNEY / "ups-clean.pcap")
    async with app.run_test(size=(120, 20)) as pilot:
        await loaded(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen))
        assert app.screen.table.rows == []
        await pilot.press("enter")  # nothing to open: stays
        await pilot.pause()
        assert isinstance(app.screen, StudiesScreen)
        assert "no study followed" in screen_text(app)
