"""Live output: one line per event as it happens (rich), or JSON Lines flushed as written.

:class:`LiveFeed` sits on the analyzer's hooks and decides what is shown (``--ae`` can only be
judged once an association's AE titles are decoded), keeps the counts for the closing summary,
and hands each event to an output: :class:`ConsoleOutput` (``tail -f`` style lines, coloured by
status) or :class:`JsonOutput` (the ``analyze --json`` records, each written as soon as it is
final, so other tools can follow the stream).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable
from typing import IO, Any

from rich.console import Console
from rich.text import Text

from dissectors.wiretext import shorten

from .. import units
from ..analysis.engine import Analyzer
from ..analysis.summary import Summary
from ..model import Association, Finding, Transaction
from ..uids import uid_name
from .spool import Spool
from .text import CATEGORY_STYLE, OUTCOME_STYLE, SEVERITY_STYLE, summary_table

_NO_DATASET = 0x0101
_MAX_WAITING = 50  # findings held per association until its first line is printed


class LiveFeed:
    """Routes the analyzer's hooks to one output, filtering by AE title and counting.

    Events go straight through, except findings that come before their association's first
    line (a rejection's finding comes before the A-ASSOCIATE-RJ is announced): they wait for it.
    With ``ae``, an association is judged when its A-ASSOCIATE-RQ was answered (or when it
    ends, if it never was). An association picked up mid-stream has no known AE titles and
    does not match.
    """

    def __init__(self, analyzer: Analyzer, output: ConsoleOutput | JsonOutput,
                 ae: Iterable[str] = ()) -> None:
        self.analyzer = analyzer
        self.out = output
        self.ae = {x.strip().upper() for x in ae if x.strip()} or None
        self.shown: dict[int, Association] = {}  # open associations being shown
        self.hidden: set[int] = set()  # open associations --ae filtered out
        self.waiting: dict[int, list[Finding]] = {}
        self.summary = Summary()
        self.by_status: dict[str, int] = {}
        self.by_severity = {"error": 0, "warning": 0, "info": 0}
        self.clock: float | None = None  # latest packet time seen in an event
        self.ignored = 0  # associations --ae left out
        analyzer.on_association_start.append(self.association_start)
        analyzer.on_transaction.append(self.transaction)
        analyzer.on_finding.append(self.finding)
        analyzer.on_association.append(self.association_end)
        from .tls import TLSCounts

        self.tls_counts = TLSCounts()
        analyzer.on_tls.append(self.tls)
        analyzer.on_retire.append(self.retire)

    def _matches(self, a: Association | None) -> bool:
        if self.ae is None:
            return True
        if a is None:
            return False
        return any(x is not None and x.strip().upper() in self.ae
                   for x in (a.calling_ae, a.called_ae))

    def _tick(self, ts: float | None) -> None:
        if ts is not None and (self.clock is None or ts > self.clock):
            self.clock = ts

    def _show(self, a: Association) -> None:
        """First event of a shown association: announce it and release what waited."""
        self.shown[a.id] = a
        self.out.association_start(a)
        for f in self.waiting.pop(a.id, ()):
            self._emit_finding(f, a)

    # -- hooks ------------------------------------------------------------------------------
    def association_start(self, a: Association) -> None:
        self._tick(a.start)
        if self._matches(a):
            self._show(a)
        else:
            self._hide(a.id)

    def _hide(self, aid: int) -> None:
        self.hidden.add(aid)
        self.waiting.pop(aid, None)
        self.ignored += 1

    def transaction(self, a: Association, t: Transaction) -> None:
        if a.id in self.hidden:
            return
        self._tick(t.response_time or t.request_time)
        if a.id not in self.shown:  # not announced (the engine announces before this)
            if not self._matches(a):
                self._hide(a.id)
                return
            self._show(a)
        self._emit_transaction(t, a)

    def _emit_transaction(self, t: Transaction, a: Association | None) -> None:
        cat = t.status_category if t.done else "no response"
        self.by_status[cat or "no response"] = self.by_status.get(cat or "no response", 0) + 1
        self.out.transaction(t, a)

    def tls(self, s: Any) -> None:
        """A TLS connection ended (analysis/tls.py TLSSession): one line unless --ae (it has
        no AE titles; a decrypted association is shown as such)."""
        self._tick(s.end)
        if self.ae is not None and s.association is None:
            return
        self.tls_counts.add(s)
        self.out.tls(s)

    def finding(self, f: Finding) -> None:
        aid = f.association
        if aid is None:
            if f.tls is not None and self.ae is not None:
                return  # a TLS connection's: it has no AE titles
            self._emit_finding(f, None)
            return
        if aid in self.hidden:
            return
        a = self.shown.get(aid)
        if a is not None:
            self._tick(a.end)
            self._emit_finding(f, a)
        else:  # before the A-ASSOCIATE-AC/RJ: shown after the association's first line
            w = self.waiting.setdefault(aid, [])
            if len(w) < _MAX_WAITING:
                w.append(f)

    def _emit_finding(self, f: Finding, a: Association | None) -> None:
        self.by_severity[f.severity] = self.by_severity.get(f.severity, 0) + 1
        self.out.finding(f, a, self.clock)

    def retire(self, a: Association, t: Transaction) -> None:
        """A long association's reported transaction leaves it (engine Limits): counted for
        the closing summary, and the JSON output sets its record aside."""
        if a.id in self.hidden:
            return
        self.summary.retire(a, t)
        self.out.retire(a, t)

    def association_end(self, a: Association) -> None:
        self._tick(a.end)
        if a.id in self.hidden:
            self.hidden.discard(a.id)
            return
        if a.id not in self.shown:
            if not self._matches(a):
                self.waiting.pop(a.id, None)
                self.ignored += 1
                return
            self._show(a)
        del self.shown[a.id]
        self.summary.add(a)
        self.out.association_end(a)

    # -- the end ----------------------------------------------------------------------------
    def counts(self) -> dict[str, Any]:
        """What was shown, for the closing summary."""
        return {"associations": self.summary.associations, "outcomes": self.summary.outcomes,
                "transactions": sum(self.by_status.values()),
                "transactions_by_status": dict(sorted(self.by_status.items())),
                "findings": sum(self.by_severity.values()),
                "by_severity": self.by_severity, "tls": self.tls_counts.record()}


# -- the terminal ----------------------------------------------------------------------------


def _clock(ts: float | None, local: bool = False) -> str:
    return units.clock(ts if ts is not None else _dt.datetime.now().timestamp(), local)


_ms = units.duration_short
_size = units.size


def _ae(value: str | None) -> str:
    return shorten(value.strip()) if value else "?"


class ConsoleOutput:
    """``tail -f`` for DICOM: one line per association start and end, transaction, finding.

    Wire values are appended as plain text (never markup). Lines are soft-wrapped (one logical
    line each, so ``grep`` works) and flushed at once, also when standard output is a pipe.
    """

    def __init__(self, console: Console, local: bool = False) -> None:
        """``local``: times of day in this machine's time zone (``--localtime``)."""
        self.console = console
        self.local = local
        self.retired: dict[int, list[int]] = {}  # association -> [transactions, successes]
        # findings printed while their association is open, with the message length printed:
        # the findings rules may complete a message when the association ends
        self._printed: dict[int, list[tuple[Finding, int]]] = {}

    def _line(self, ts: float | None, assoc: int | None, *parts: tuple[str, str]) -> None:
        t = Text(no_wrap=False)
        t.append(_clock(ts, self.local), style="dim")
        t.append("  ")
        t.append(f"#{assoc:<4}" if assoc is not None else "     ", style="bold")
        for text, style in parts:
            t.append(" ")
            t.append(text, style=style)
        self.console.print(t, soft_wrap=True)
        self.console.file.flush()

    def association_start(self, a: Association) -> None:
        who = (f"{_ae(a.calling_ae)} {a.client} -> {_ae(a.called_ae)} {a.server}", "")
        if a.midstream and a.calling_ae is None:
            self._line(a.start, a.id, ("ASSOCIATION", "bold"), who,
                       ("already running when the capture started", "yellow"))
            return
        if a.outcome == "rejected":
            self._line(a.start, a.id, ("ASSOCIATE", "bold"), who,
                       (f"REJECTED by {a.source}: {a.reason}", OUTCOME_STYLE["rejected"]))
            return
        if a.accept_frame is None:
            self._line(a.start, a.id, ("ASSOCIATE", "bold"), who,
                       ("no A-ASSOCIATE-AC or -RJ seen", "yellow"))
            return
        accepted = sum(1 for c in a.contexts.values() if c.result == 0)
        pdu = f"max PDU {a.requestor.max_pdu or '-'}/{a.acceptor.max_pdu or '-'}"
        self._line(a.start, a.id, ("ASSOCIATE", "bold"), who,
                   ("accepted", "green"),
                   (f"({accepted} of {len(a.contexts)} contexts; {pdu})", "dim"))

    def transaction(self, t: Transaction, a: Association | None) -> None:
        if a is not None:
            src, dst = _ae(a.calling_ae), _ae(a.called_ae)
            if t.sent_by == "acceptor":
                src, dst = dst, src
            route = f"{src} -> {dst}"
        else:
            route = t.sent_by
        sop = uid_name(t.sop_class) or t.sop_class or "-"
        if t.status is None:
            status = ("no response", CATEGORY_STYLE[None])
        else:
            status = (f"0x{t.status:04X} {t.status_meaning or t.status_category}",
                      CATEGORY_STYLE.get(t.status_category, ""))
        parts = [(f"{t.command:<8}", "bold"), (route, ""), (sop, "")]
        if t.sop_instance:
            parts.append((shorten(t.sop_instance), "dim"))
        parts.append(status)
        extra = []
        if t.pending:
            extra.append(f"{t.pending} pending")
        if t.suboperations:
            so = t.suboperations
            extra.append(f"sub-ops {so.get('completed')} ok, {so.get('failed')} failed, "
                         f"{so.get('warning')} warning")
        if t.move_destination:
            extra.append(f"to {shorten(t.move_destination.strip())}")
        if t.cancel_frame:
            extra.append("cancelled")
        if t.error_comment:
            extra.append(f"'{shorten(t.error_comment)}'")
        if extra:
            parts.append(("(" + "; ".join(extra) + ")", "dim"))
        parts.append((_ms(t.latency), ""))
        nbytes = t.dataset_bytes + t.response_dataset_bytes
        if nbytes:
            gone = (f" ({_size(t.dataset_missing)} missing)" if t.dataset_missing
                    else " partial" if t.dataset_partial else "")
            parts.append((_size(nbytes) + gone, "dim"))
        self._line(t.response_time or t.request_time, t.association, *parts)

    def finding(self, f: Finding, a: Association | None, clock: float | None) -> None:
        parts = [(f.severity.upper(), SEVERITY_STYLE.get(f.severity, "")), (f.code, "bold"),
                 (f.shown, "")]
        if f.frame is not None:
            parts.append((f"[frame {f.frame}]", "dim"))
        self._line(clock, f.association, *parts)
        if f.association is not None:
            self._printed.setdefault(f.association, []).append((f, len(f.message)))

    def tls(self, s: Any) -> None:
        """One line per TLS connection as it ends (a decrypted association has its own)."""
        from .tls import OUTCOME_STYLE, OUTCOME_WORDS

        parts = [("TLS", "bold"), (f"{s.client} -> {s.server}", ""),
                 (OUTCOME_WORDS.get(s.outcome, s.outcome), OUTCOME_STYLE.get(s.outcome, "")),
                 (" ".join(x for x in (s.version, s.cipher_suite) if x) or "no version agreed",
                  "")]
        if s.sni:
            parts.append((f"SNI {s.sni}", "dim"))
        if s.association is not None:
            parts.append((f"association #{s.association}", "dim"))
        if s.http_connection is not None:
            parts.append((f"HTTP connection #{s.http_connection}", "dim"))
        for al in s.alerts[:2]:
            if al["level"] == "fatal":
                parts.append((f"{al['by']} alert {al['description']}", "bold red"))
        self._line(s.end, None, *parts)

    def retire(self, a: Association, t: Transaction) -> None:
        """Counted for the association's closing line (engine Limits)."""
        c = self.retired.setdefault(a.id, [0, 0])
        c[0] += 1
        c[1] += t.status_category == "Success"

    def association_end(self, a: Association) -> None:
        for f, shown in self._printed.pop(a.id, ()):
            more = f.message[shown:].lstrip(" ;.")
            if more:
                self._line(a.end, a.id, (f.severity.upper(), SEVERITY_STYLE.get(f.severity, "")),
                           (f.code, "bold"), ("(continued)", "dim"), (more, ""))
        gone, ok_gone = self.retired.pop(a.id, (0, 0))
        n = len(a.transactions) + gone
        ok = ok_gone + sum(1 for t in a.transactions if t.status_category == "Success")
        txt = f"{n} transaction{'s' if n != 1 else ''}"
        if n:
            txt += f" ({ok} ok)" if ok == n else f" ({ok} ok, {n - ok} not)"
        nbytes = a.bytes["requestor"] + a.bytes["acceptor"]
        parts = [(a.outcome.upper(), OUTCOME_STYLE.get(a.outcome, "") + " bold"),
                 (f"{_ae(a.calling_ae)} -> {_ae(a.called_ae)}", "")]
        if a.outcome == "aborted" and a.abort:
            parts.append((f"by the {a.abort['by']} ({a.source}: {a.reason})",
                          OUTCOME_STYLE["aborted"]))
        parts += [(_ms(a.duration), ""), (txt, ""), (_size(nbytes), "dim")]
        self._line(a.end, a.id, *parts)

    def summary(self, rec: dict[str, Any], service_rows: list[dict[str, Any]]) -> None:
        c = self.console
        c.rule("summary", style="dim")
        k = rec.get("kernel") or {}
        head = Text()
        head.append(f"{rec['frames']} packets ({_size(rec['bytes'])})", style="bold")
        head.append(f" on {rec['interface']} in {rec['elapsed']:.1f} s")
        if rec.get("stopped_by"):
            head.append(f", stopped by {rec['stopped_by']}")
        c.print(head, soft_wrap=True)
        drops = Text("kernel: ")
        if rec.get("capture_helper") == "file":
            drops.append("no counters (read from a file)", style="dim")
        elif k.get("dropped") is None:
            drops.append("drop count not reported", style="dim")
        else:
            drops.append(f"{k['dropped']} dropped", style="bold red" if k["dropped"] else "green")
            if k.get("received") is not None:
                drops.append(f" of {k['received']} received by the filter")
            if k.get("interface_dropped"):
                drops.append(f", {k['interface_dropped']} dropped by the interface",
                             style="bold red")
        c.print(drops, soft_wrap=True)
        a = Text(f"{rec['associations']} association(s)", style="bold")
        if rec["outcomes"]:
            a.append(" (")
            for i, (name, n) in enumerate(sorted(rec["outcomes"].items())):
                if i:
                    a.append(", ")
                a.append(f"{n} {name}", style=OUTCOME_STYLE.get(name, ""))
            a.append(")")
        a.append(f"; {rec['transactions']} transaction(s)")
        if rec["transactions_by_status"]:
            a.append(" (")
            for i, (name, n) in enumerate(rec["transactions_by_status"].items()):
                if i:
                    a.append(", ")
                a.append(f"{n} {name}", style=CATEGORY_STYLE.get(name, "dim"))
            a.append(")")
        a.append("; findings: ")
        for i, s in enumerate(("error", "warning", "info")):
            n = rec["by_severity"].get(s, 0)
            if i:
                a.append(", ")
            a.append(f"{n} {s}", style=SEVERITY_STYLE[s] if n else "dim")
        c.print(a, soft_wrap=True)
        tls = rec.get("tls") or {}
        if tls.get("connections"):
            c.print(Text(f"{tls['connections']} TLS connection(s) (" + ", ".join(
                f"{n} {k.replace('_', ' ')}" for k, n in sorted(tls["outcomes"].items()))
                + ")"), soft_wrap=True)
        if rec.get("ae_filter"):
            c.print(Text(f"(associations with AE title {', '.join(rec['ae_filter'])} only; "
                         f"{rec['ignored_associations']} other(s) not shown)", style="dim"),
                    soft_wrap=True)
        for f in rec.get("files") or []:
            c.print(Text(f"wrote {f['path']} ({f['packets']} packets, {_size(f['bytes'])}, "
                         "closed)"), soft_wrap=True)
        if rec.get("files_deleted"):
            c.print(Text(f"({rec['files_deleted']} older file(s) removed by --ring)",
                         style="dim"), soft_wrap=True)
        if rec.get("file_error"):
            c.print(Text(f"the capture file is incomplete: {rec['file_error']}",
                         style="bold red"), soft_wrap=True)
        if rec.get("capture_error"):
            c.print(Text(f"capture ended early: {rec['capture_error']}", style="bold red"),
                    soft_wrap=True)
        if service_rows:
            c.print(summary_table(service_rows))
        c.file.flush()


# -- JSON Lines ------------------------------------------------------------------------------


# One encoder for every record: json.dumps with these options builds a new one per call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False,
                           default=str).encode


def _dump(rec: dict[str, Any]) -> str:
    return _ENCODE(rec)


class JsonOutput:
    """The ``analyze --json`` records, each written and flushed as soon as it is final.

    Live, a transaction record comes when its final response arrives (not with its
    association); the association record comes when it ends, followed by its findings (the
    findings rules complete their messages then); capture findings (kernel drops...) come as
    they arise. Tools join records on the association id. A transaction whose final response
    carries a data set (N-GET, N-CREATE...) or whose request data set is still arriving waits
    for its association's end, so that every record is identical to what ``analyze --json``
    writes for the same packets.
    """

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.records = 0
        self.held: dict[int, list[Transaction]] = {}
        self.spool = Spool()  # held records of transactions a long association retired

    def retire(self, a: Association, t: Transaction) -> None:
        held = self.held.get(a.id)
        if held and t in held:
            held.remove(t)
            self.spool.add(a.id, _dump(t.to_record()) + "\n")

    def _write(self, rec: dict[str, Any]) -> None:
        self.out.write(_dump(rec) + "\n")
        self.out.flush()
        self.records += 1

    def association_start(self, a: Association) -> None:
        """No record: the association record is written, complete, when it ends."""

    def transaction(self, t: Transaction, a: Association | None) -> None:
        rsp = t.response_command or {}
        req = t.request_command or {}
        if (rsp.get("CommandDataSetType", _NO_DATASET) != _NO_DATASET
                or (req.get("CommandDataSetType", _NO_DATASET) != _NO_DATASET
                    and t.request_end_time is None)):
            self.held.setdefault(t.association, []).append(t)
            return
        self._write(t.to_record())

    def finding(self, f: Finding, a: Association | None, clock: float | None) -> None:
        """Capture findings now; an association's findings with its record, because the
        findings rules complete their messages when the association ends (a TLS connection's
        findings with its record too)."""
        if f.association is None and f.tls is None:
            self._write(f.to_record())

    def tls(self, s: Any) -> None:
        """A TLS connection's record, then its findings, as ``analyze --json`` writes them."""
        self._write(s.to_record())
        for f in s.findings:
            if f.association is None:
                self._write(f.to_record())

    def association_end(self, a: Association) -> None:
        self._write(a.to_record())
        self.records += self.spool.write_to(a.id, self.out)
        for t in self.held.pop(a.id, ()):
            self._write(t.to_record())
        for f in a.findings:
            self._write(f.to_record())

    def summary(self, rec: dict[str, Any], service_rows: list[dict[str, Any]]) -> None:
        rec = {k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()}
        self._write({"type": "summary", **rec, "services": service_rows})
