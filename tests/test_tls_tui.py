"""The TUI shows TLS connections that gave no association (failed handshakes, no key) as rows
beside the associations, with their TLS findings; Enter shows the handshake (Pilot)."""

from __future__ import annotations

from pathlib import Path

from dicomsniff.tui.app import DicomBrowser
from dicomsniff.tui.feed import FileSource
from dicomsniff.tui.screens.findings import FindingsScreen
from dicomsniff.tui.screens.ladder import LadderScreen
from dicomsniff.tui.screens.main import MainScreen
from dicomsniff.tui.screens.tls import TLSScreen
from dicomsniff.tui.store import TLSRow
from dissectors.tls.keylog import KeyLog
from tests.test_tui import SIZE, loaded, pilot_test, screen_text

TLS = Path(__file__).resolve().parent.parent / "captures" / "tls"


def _app(name: str, keys: str | None = None) -> DicomBrowser:
    kl = None
    if keys:
        kl = KeyLog()
        kl.add_file(str(TLS / keys))
    return DicomBrowser(FileSource(str(TLS / name), tls_keylog=kl))


@pilot_test
async def test_failed_and_encrypted_tls_connections_are_rows_with_their_findings():
    app = _app("tls-failures.pcap", "tls-failures.keys")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        screen = app.screen
        assert isinstance(screen, MainScreen)
        rows = screen.table.rows
        tls = [r for r in rows if isinstance(r, TLSRow)]
        assert len(tls) == 5 and len(rows) == 6  # and the plain A-ASSOCIATE-RQ's association
        assert [r.outcome for r in tls] == ["handshake_failed", "handshake_failed",
                                            "encrypted", "handshake_failed",
                                            "handshake_failed"]
        assert all(r.findings for r in tls)
        text = screen_text(app)
        assert "T1" in text and "unknown_ca (cl" in text and "TLS failed" in text
        assert "TLS no key" in text and "+ 5 TLS connection(s)" in text
        # the filter applies to them too
        assert app.set_filter("port:11112") is None
        await pilot.pause()
        assert [r.tls_id for r in screen.table.rows if isinstance(r, TLSRow)] == [5]
        assert len(screen.table.rows) == 1
        app.set_filter("")
        await pilot.pause()
        # Enter on a TLS row: its handshake, alerts and findings, never a ladder
        screen.table.cursor = screen.table.rows.index(tls[0])
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TLSScreen)
        detail = screen_text(app)
        assert "unknown_ca" in detail and "TLS-ALERT-FATAL" in detail
        assert "client offered TLS 1.3" in detail
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        # the findings list names their TLS connection
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, FindingsScreen)
        assert "TLS-TO-PLAIN-PORT" in screen_text(app) and "T5" in screen_text(app)


@pilot_test
async def test_decrypted_associations_stay_associations():
    app = _app("tls13-store.pcap", "tls13-store.keys")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        rows = app.screen.table.rows
        assert len(rows) == 1 and not isinstance(rows[0], TLSRow)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, LadderScreen)
    app = _app("tls13-store.pcap")  # no key: one encrypted TLS row, export leaves it out
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        (row,) = app.screen.table.rows
        assert isinstance(row, TLSRow) and row.outcome == "encrypted"
        assert "TLS-ENCRYPTED-DICOM" in {f.code for f in row.findings}
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)  # nothing to export: a notice, no dialog
