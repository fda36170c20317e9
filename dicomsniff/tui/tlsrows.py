"""TLS connections that gave no association (a failed handshake, no key, nothing DICOM inside)
as rows of the associations list, beside the associations, with their TLS findings.

A :class:`~.store.TLSRow` wraps an analysis/tls.py ``TLSSession`` and answers the attributes
the list, its filter, sort and search read from an association (client, server, outcome,
findings...; no AE titles, no transactions), so one list shows both. Its id is far above any
association id (``TLS_ID_BASE``), so marks and ordering never mix them up; the first column
shows ``T<n>``. Enter shows its handshake (screens/tls.py), never a ladder.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from .rows import SEVERITY_STYLE, STATE_STYLE, clock, duration, size
from .store import TLSRow

__all__ = ["TLSRow", "tls_cells", "tls_detail"]

OUTCOME_TEXT = {"handshake_failed": "TLS failed", "encrypted": "TLS no key",
                "decrypted": "TLS decrypted"}

def tls_cells(r: TLSRow) -> tuple[list[Text], str]:
    """The cells of a TLS row, in the associations list's columns."""
    s = r.session
    worst = next((v for v in ("error", "warning", "info")
                  if any(f.severity == v for f in r.findings)), None)
    cells = [
        Text(f"T{r.tls_id}", style="magenta"),
        Text(clock(r.start)),
        Text("TLS", style="bold magenta"),
        Text(s.sni or "-", style="dim" if not s.sni else ""),
        Text(OUTCOME_TEXT.get(r.outcome, r.outcome), style=STATE_STYLE[r.state]),
        Text(r.what()),
        Text(""),
        Text(str(len(r.findings)) if r.findings else "", style=SEVERITY_STYLE.get(worst or "",
                                                                                  "")),
        Text(duration(r.duration)),
        Text(size(r.bytes["requestor"] + r.bytes["acceptor"])),
        Text(r.client),
        Text(r.server),
    ]
    return cells, r.state


def tls_detail(r: TLSRow) -> Any:
    """What Enter shows: the report's block for this connection (handshake, certificates,
    alerts, findings)."""
    from ..report.text import findings_list
    from ..report.tls import tls_block

    return tls_block(r.session, findings_list)
