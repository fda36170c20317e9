"""TLS in the terminal report: one block per TLS connection that gave no association, a line
in each decrypted association's block, and the TLS counts for the summary (--json).

Everything that came from the wire (SNI, ALPN, certificate names) was escaped by the dissector
and is wrapped in ``Text`` here, never parsed as markup.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from ..units import size

if TYPE_CHECKING:
    from rich.console import Group
    from rich.text import Text

# rich is imported where a block or line is drawn: ``analyze --json`` only counts (TLSCounts)
# and would pay some 15 ms of start-up for it.

# (text.py imports this module and hands its findings renderer to tls_block: no cycle)
FATAL_STYLE = "bold red"

OUTCOME_STYLE = {"decrypted": "green", "encrypted": "cyan", "handshake_failed": "bold red"}
OUTCOME_WORDS = {"decrypted": "DECRYPTED", "encrypted": "ENCRYPTED (no key)",
                 "handshake_failed": "HANDSHAKE FAILED"}


def association_tls_line(tls: dict[str, Any]) -> Text:
    """The line a decrypted association's block carries."""
    from rich.text import Text

    t = Text(f"{tls.get('version') or 'TLS'}", style="bold")
    t.append(f" {tls.get('cipher_suite')}, decrypted")
    extra = []
    if tls.get("sni"):
        extra.append(f"SNI {tls['sni']}")
    if tls.get("resumed"):
        extra.append("resumed session")
    if tls.get("hello_retry_request"):
        extra.append("after a HelloRetryRequest")
    if tls.get("client_certificate_sent"):
        extra.append("client certificate sent")
    if extra:
        t.append("; " + ", ".join(extra))
    return t


def _cert_line(c: dict[str, Any]) -> Text:
    from rich.text import Text

    t = Text(f"{c['sent_by']} certificate: ", style="dim")
    if c.get("error"):
        t.append(c["error"], style="yellow")
        return t
    t.append(c.get("subject") or "?")
    t.append(f", issued by {c.get('issuer')}, valid {(c.get('not_before') or '?')[:10]} to "
             f"{(c.get('not_after') or '?')[:10]}, {c.get('key')}")
    return t


def tls_block(s: Any, findings_list: Any) -> Group:
    """A TLS connection without an association (failed, not decrypted); ``findings_list`` is
    the report's findings renderer."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.rule import Rule
    from rich.text import Text

    head = Text()
    head.append(f"TLS #{s.id} ", style="bold")
    head.append(f"{s.client} -> {s.server}  ")
    head.append(OUTCOME_WORDS.get(s.outcome, s.outcome), style=OUTCOME_STYLE.get(s.outcome, ""))
    parts: list[Any] = []
    line = Text(style="dim")
    line.append(f"frames {s.first_frame}-{s.last_frame}  bytes {size(s.bytes['client'])} / "
                f"{size(s.bytes['server'])}  ended by {s.ended_by}")
    if s.midstream:
        line.append("  (capture started inside this connection)", style="yellow")
    parts.append(line)
    hs = Text()
    hs.append(f"{s.version or 'no version agreed'}")
    if s.cipher_suite:
        hs.append(f" {s.cipher_suite}")
    if s.offered_versions:
        hs.append(f"; client offered {', '.join(v for v in s.offered_versions if v)}")
    if s.sni:
        hs.append(f"; SNI {s.sni}")
    if s.alpn:
        hs.append(f"; ALPN {s.alpn}")
    if s.resumed:
        hs.append("; resumed session")
    if s.hello_retry_request:
        hs.append("; HelloRetryRequest")
    parts.append(hs)
    if s.http_connection is not None:
        parts.append(Text(f"carries HTTP connection #{s.http_connection} (DICOMweb, decrypted)",
                          style="green"))
    if s.certificate_requested:
        sent = {True: "sent", False: "NOT sent", None: "not seen"}[s.client_certificate_sent]
        parts.append(Text(f"client certificate requested by the server, {sent}",
                          style="bold red" if s.client_certificate_sent is False else ""))
    for c in s.certificates[:4]:
        parts.append(_cert_line(c))
    for a in s.alerts:
        t = Text("alert: ", style="dim")
        if a["description"] is None:
            t.append(f"{a['by']} sent an encrypted alert (frame {a['frame']})")
        else:
            t.append(f"{a['by']} {a['level']} {a['description']} (frame {a['frame']})",
                     style=FATAL_STYLE if a["level"] == "fatal" else "")
        parts.append(t)
    own = [f for f in s.findings if f.association is None]
    if own:
        parts.append(findings_list(own))
    return Group(Rule(style="dim"), head, Padding(Group(*parts), (0, 0, 0, 2), expand=False))


class TLSCounts:
    """Counts fed one session at a time (streaming --json keeps no sessions)."""

    def __init__(self) -> None:
        self.connections = 0
        self.outcomes: Counter[str] = Counter()
        self.versions: Counter[str] = Counter()
        self.encrypted_dicom = 0

    def add(self, s: Any) -> None:
        self.connections += 1
        self.outcomes[s.outcome] += 1
        self.versions[s.version or "none"] += 1
        if any(f.code == "TLS-ENCRYPTED-DICOM" for f in s.findings):
            self.encrypted_dicom += 1

    def record(self) -> dict[str, Any]:
        return {"connections": self.connections, "outcomes": dict(self.outcomes),
                "versions": dict(self.versions), "encrypted_dicom": self.encrypted_dicom}

    def headline(self) -> Text | None:
        if not self.connections:
            return None
        from rich.text import Text

        t = Text(f"{self.connections} TLS connection(s)", style="bold")
        t.append(" (" + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in
                                  sorted(self.outcomes.items())) + ")")
        if self.encrypted_dicom:
            t.append(f"; {self.encrypted_dicom} carry encrypted DICOM (no key)", style="cyan")
        return t
