"""DICOMweb in the TUI (dicomsniff/tui/web.py, screens/web.py), driven with textual's Pilot on
the real recordings: the transactions beside the associations, the exchange in full, findings
that lead to their exchange, wire text shown as typed."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from dicomsniff.tui.screens.findings import FindingsScreen
from dicomsniff.tui.screens.main import MainScreen
from dicomsniff.tui.screens.web import WebScreen
from tests.test_tui import app_for, loaded, pilot_test, screen_text, wait_for

WEB = Path(__file__).resolve().parent.parent / "captures" / "dicomweb"
SIZE = (150, 45)


@pilot_test
async def test_one_capture_two_protocols_dimse_rows_and_dicomweb_beside():
    app = app_for(WEB / "mixed-dimse-dicomweb.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert isinstance(app.screen, MainScreen)
        assert [a.calling_ae for a in app.screen.table.rows] == ["STORESCU"]
        assert "3 DICOMweb (w)" in screen_text(app)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, WebScreen))
        await pilot.pause()
        rows = app.screen.table.rows
        assert [(t.command, t.status) for t in rows] == [("QIDO-RS", 200), ("WADO-RS", 200),
                                                         ("WADO-RS", 200)]
        text = screen_text(app)
        assert "3 transactions on 1 HTTP connection: 1 QIDO-RS, 2 WADO-RS" in text
        # the detail of the first: request, response, status, timing
        for words in ("Search for Studies", "GET /dicom-web/studies HTTP/1.1", "curl/7.88.1",
                      "PatientID = 'DSN0003'", "200 OK", "OK: the matches are in the body",
                      "latency", "results         1"):
            assert words in text, words
        await pilot.press("down", "down")
        await pilot.pause()
        text = screen_text(app)
        assert "Retrieve Instance" in text and "Instances (1)" in text
        assert "retrieved" in text and "Explicit VR Little Endian" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


@pilot_test
async def test_failed_stow_is_red_with_its_instances_and_findings():
    app = app_for(WEB / "stow.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert "no DICOM association; DICOMweb transactions: press w" in screen_text(app)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, WebScreen))
        screen = app.screen
        t = screen.table
        i = next(k for k, x in enumerate(t.rows) if x.status == 409)
        cells, state = screen._cells(t.rows[i])
        assert state == "failure"
        t.cursor = i
        await pilot.pause()
        assert "409 Conflict" in screen_text(app)
        text = app.screen.detail.plain  # the whole pane, scrolled or not
        assert "failed" in text and "0x0110" in text
        assert "DICOMWEB-STOW-FAILED" in text and "Findings (" in text
        await pilot.press("s")  # sort by the next column: time
        await pilot.pause()
        assert "sorted by Time (UTC)" in screen_text(app)


@pilot_test
async def test_a_dicomweb_finding_leads_to_its_exchange():
    app = app_for(WEB / "tinypacs.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, FindingsScreen))
        t = app.screen.table
        t.cursor = next(k for k, f in enumerate(t.rows) if f.code == "DICOMWEB-NOT-ACCEPTABLE"
                        and "WADO-RS" in f.message)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, WebScreen))
        await pilot.pause()
        cur = app.screen.table.current
        assert (cur.command, cur.status) == ("WADO-RS", 406)
        text = app.screen.detail.plain
        assert "None of the requested transfer syntaxes" in text  # the server's words
        assert "JPEG 2000 Image Compression (Lossless Only)" in text


@pilot_test
async def test_http2_exchanges_are_listed_with_their_connection():
    app = app_for(WEB / "h2.pcap")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, WebScreen))
        await pilot.pause()
        t = app.screen.table
        assert [x.status for x in t.rows] == [200, 200, 200]
        text = app.screen.detail.plain
        assert "GET /dicom-web/studies HTTP/2" in text and "prior knowledge: HTTP/2" in text
        t.cursor = 1
        await pilot.pause()
        text = app.screen.detail.plain
        assert "h2c upgrade: HTTP/2" in text and "101" in text  # the interim answer


def test_wire_text_is_shown_as_typed_never_as_markup():
    """Markup and escapes in a user agent or an error text stay characters."""
    from dicomsniff.dicomweb.model import HttpConnectionInfo, WebTransaction
    from dicomsniff.tui.web import describe

    txn = WebTransaction(1, 2, "QIDO-RS", "Search for Studies", "GET", "/studies", "1.1",
                         5, 0.0)
    txn.user_agent = "[bold red]evil[/] \\x1b[31m"
    txn.error_text = "[link=http://x]click[/link]"
    txn.status, txn.status_meaning, txn.response_time = 400, "Bad Request", 0.1
    conn = HttpConnectionInfo(2, "192.0.2.1:5", "192.0.2.2:80")
    out = describe(txn, conn, [])
    assert isinstance(out, Text)
    assert "[bold red]evil[/] \\x1b[31m" in out.plain
    assert "[link=http://x]click[/link]" in out.plain
    assert not any(s.style and "link" in str(s.style) for s in out.spans)


@pilot_test
async def test_https_exchanges_are_listed_with_a_key_log():
    """https.pcap through the engine's TLS analyzer (the user agent's key log): the same list."""
    from dicomsniff.tui.app import DicomBrowser
    from dicomsniff.tui.feed import FileSource
    from dissectors.tls.keylog import KeyLog

    keys = KeyLog()
    keys.add_lines((WEB / "https.keys").read_bytes().splitlines())
    app = DicomBrowser(FileSource(str(WEB / "https.pcap"), tls_keylog=keys))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, WebScreen))
        await pilot.pause()
        assert [(t.command, t.status) for t in app.screen.table.rows] == [
            ("QIDO-RS", 200), ("WADO-RS", 200), ("WADO-RS", 200), ("STOW-RS", 200)]
        assert "192.0.2.2:8443" in app.screen.detail.plain
