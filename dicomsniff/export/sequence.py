"""The sequence diagram, format-neutral: lifelines, then messages and notes in capture order.

One lifeline per application entity (AE title and host; its listening port when it accepted
an association), in order of first appearance. The messages of every selected association are
interleaved by frame number, which is capture order, so a C-MOVE shows its sub-association
inside it and a storage commitment report arrives where it really did. Runs of the same
exchange collapse into one request and one response arrow with a count and a status summary.
Labels are lists of plain-text lines: each writer escapes them for its own syntax.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dissectors.wiretext import shorten

from ..model import Association, Finding, Transaction
from . import labels as L
from .selection import Selection
from .wirelog import Pdu, WireLog

COLLAPSE_MIN = 3  # a run this long becomes one arrow pair
NOTE_LINES = 3  # a finding's words in a note; the report has them whole
SLOW = 1.0  # a response this slow shows its time even without --timing (seconds)
LEGEND_MAX = 8  # associations listed under the title
ALL = -1  # a note over every lifeline
# Findings the arrows already say (red A-ASSOCIATE-RJ, red A-ABORT).
_SHOWN_BY_ARROWS = frozenset({"ASSOC-REJECTED", "ASSOC-ABORTED"})


@dataclass(slots=True)
class Lifeline:
    title: str  # AE title, "?" when the capture never showed it
    address: str  # "192.0.2.2:104"


@dataclass(slots=True)
class Message:
    src: int  # lifeline index
    dst: int
    lines: list[str]
    reply: bool = False  # a response: dashed line, open arrow head
    style: str = "normal"  # normal | muted | warning | failure
    frame: int | None = None
    time: float | None = None
    frame_name: str | None = None  # several capture files: "file#n", the file's own number


@dataclass(slots=True)
class Note:
    first: int  # lifeline span, first <= last
    last: int
    lines: list[str]
    style: str = "info"  # info | muted | warning | failure
    frame: int | None = None
    time: float | None = None
    frame_name: str | None = None  # several capture files: "file#n", the file's own number


Item = Message | Note


@dataclass
class Diagram:
    title: str
    subtitle: list[str]  # what is shown, then one line per association
    lifelines: list[Lifeline]
    items: list[Item]
    timing: bool = False
    t0: float | None = None  # time origin of the '+s' offsets
    cut: int = 0  # messages left out by --max-messages


@dataclass
class Options:
    level: str = "dimse"  # dimse | pdu
    collapse: bool = True
    timing: bool = False
    max_messages: int = 300


@dataclass
class _Actor:
    title: str
    host: str
    listening: set[str] = field(default_factory=set)
    client: set[str] = field(default_factory=set)

    def lifeline(self) -> Lifeline:
        if self.listening:
            addr = f"{self.host}:{'/'.join(sorted(self.listening, key=int))}"
        elif len(self.client) == 1:
            addr = f"{self.host}:{next(iter(self.client))}"
        else:
            addr = f"{self.host} ({len(self.client)} ports)"
        return Lifeline(self.title, addr)


def _split(endpoint: str) -> tuple[str, str]:
    host, _, port = endpoint.rpartition(":")
    return host, port


class _Builder:
    """Collects rows (sort key, item) with temporary lifeline ids, then orders and numbers."""

    def __init__(self, log: WireLog | None, opts: Options, multi: bool,
                 where: Callable[[int], str | None] | None = None) -> None:
        self.log = log
        self.where = where  # several capture files: merged frame -> "file#n"
        self.opts = opts
        self.multi = multi
        self.rows: list[tuple[int, int, Item]] = []
        self.actors: dict[tuple[str, str], int] = {}
        self.actor_list: list[_Actor] = []
        self.slow: set[int] = set()  # request frames of the association's slow responses

    # -- helpers ----------------------------------------------------------------------------
    def actor(self, title: str | None, endpoint: str, listening: bool) -> int:
        host, port = _split(endpoint)
        key = (shorten((title or "?").strip() or "?"), host)
        idx = self.actors.get(key)
        if idx is None:
            idx = self.actors[key] = len(self.actor_list)
            self.actor_list.append(_Actor(key[0], host))
        (self.actor_list[idx].listening if listening else self.actor_list[idx].client).add(port)
        return idx

    def add(self, item: Item, frame: int | None, fallback: int | None = None) -> None:
        f = frame if frame is not None else fallback
        item.frame = frame
        if self.where is not None and frame is not None:
            item.frame_name = self.where(frame)
        self.rows.append((f if f is not None else 1 << 62, len(self.rows), item))

    def time(self, frame: int | None) -> float | None:
        return self.log.time(frame) if self.log is not None else None

    def fr(self, frame: int | None) -> str:
        """A frame as the user finds it: its number, or "file#n" with several files."""
        name = self.where(frame) if self.where is not None and frame is not None else None
        return name or str(frame)

    def frames(self, first: int | None, last: int | None) -> str:
        """"frames 12-40", or with several files "frames ct_1.pcap#5-33" (one file) or
        "frames ct_1.pcap#90-ct_2.pcap#3" (a run across a rotation)."""
        a, b = self.fr(first), self.fr(last)
        fa, _, _na = a.rpartition("#")
        fb, _, nb = b.rpartition("#")
        if fa and fa == fb:
            b = nb
        return f"frames {a}-{b}"

    def latency(self, start: float | None, end: float | None) -> str:
        if not self.opts.timing or start is None or end is None:
            return ""
        return f" ({L.duration(end - start)})"

    # -- one association --------------------------------------------------------------------
    def association(self, a: Association, sel: Selection | None) -> None:
        sides = (self.actor(a.calling_ae, a.client, False),
                 self.actor(a.called_ae, a.server, True))
        p = f"#{a.id} " if self.multi else ""
        pdus = self.log.pdus.get(a.id) if self.log is not None else None
        if a.midstream and a.request_frame is None:
            self.add(Note(*sides, [f"{p}capture starts inside this association"], "muted"),
                     a.first_frame)
        if a.tls is not None:
            self.tls_handshake(a.tls, sides, p)
        pdu_level = (self.opts.level == "pdu" and self.log is not None and self.log.with_pdata
                     and pdus is not None)
        if pdu_level:
            self.pdu_level(a, sides, p, pdus or [])
        else:
            for pdu in (pdus if pdus is not None else _control_from_model(a)):
                if pdu.name != "P-DATA-TF":
                    self.control(a, sides, p, pdu)
            shown = [t for t in a.transactions if sel is None or sel.shows(a, t)]
            self.slow = {fr for f in a.findings if f.code == "DIMSE-SLOW-RESPONSE"
                         for fr in (f.frame, *f.frames) if fr is not None}
            self.transactions(sides, p, shown)
        said = {f.code for f in a.findings if f.severity in ("error", "warning")}
        if a.outcome == "closed" and "ASSOC-CLOSED-NO-RELEASE" not in said:
            self.add(Note(*sides, [f"{p}TCP connection closed without A-RELEASE or A-ABORT"],
                          "warning"), a.last_frame)
        elif a.outcome == "incomplete":
            self.add(Note(*sides, [f"{p}still open when the capture ended"], "muted"),
                     a.last_frame)
        self.slow = set()
        self.findings(a.findings, sides, p, a.last_frame)

    # -- one DICOMweb (HTTP) connection --------------------------------------------------------
    def web_connection(self, web: Any) -> None:
        """A DICOMweb connection (dicomsniff/dicomweb): each request an arrow from the user
        agent to the origin server, its response a dashed arrow back, like a DIMSE exchange."""
        info, txns = web.info, web.txns
        agent = (info.user_agent or "HTTP client").split(" ")[0][:24]
        sides = (self.actor(agent, info.client, False),
                 self.actor("DICOMweb", info.server, True))
        p = f"#{info.id} " if self.multi else ""
        for t in txns:
            self.add(Message(sides[0], sides[1], [f"{p}{t.command} {t.action}",
                                                  *L.wrap(f"{t.method} {t.short_target}")[:2]],
                             time=t.request_time), t.request_frame)
            if t.status is None:
                self.add(Note(*sides, [f"{p}{t.command}: no response"], "warning"), None,
                         t.request_frame)
                continue
            style = {"Failure": "failure", "Warning": "warning"}.get(t.status_category or "",
                                                                     "normal")
            lines = [f"{p}{t.status} {t.reason_phrase or ''}".rstrip()
                     + self.latency(t.request_time, t.response_time)]
            if t.results is not None:
                lines.append(L.plural(t.results, "result"))
            elif t.instances:
                lines.append(L.plural(len(t.instances), "instance"))
            self.add(Message(sides[1], sides[0], lines, reply=True, style=style,
                             time=t.response_time),
                     t.response_frames[-1] if t.response_frames else None, t.request_frame)
        self.findings(web.found, sides, p, info.last_frame)

    def tls_handshake(self, tls: dict, sides: tuple[int, int], p: str) -> None:
        """A decrypted association's TLS handshake: one arrow per flight (the messages one
        side sent in one frame), then a note with the version and suite."""
        flights: list[tuple[str, int | None, list[str]]] = []
        for by, message, frame in tls.get("handshake") or ():
            if flights and flights[-1][0] == by and flights[-1][1] == frame:
                flights[-1][2].append(message)
            else:
                flights.append((by, frame, [message]))
        last = None
        for by, frame, messages in flights:
            src, dst = (sides[0], sides[1]) if by == "client" else (sides[1], sides[0])
            lines = L.wrap(f"{p}TLS " + ", ".join(messages))
            self.add(Message(src, dst, lines, reply=by == "server", style="muted",
                             time=self.time(frame)), frame)
            last = frame
        note = f"{p}{tls.get('version')} {tls.get('cipher_suite')}, decrypted"
        if tls.get("resumed"):
            note += ", resumed"
        self.add(Note(*sides, L.wrap(note), "muted"), last)

    def control(self, a: Association, sides: tuple[int, int], p: str, pdu: Pdu) -> None:
        """A-ASSOCIATE, A-RELEASE, A-ABORT: the association's own messages."""
        src, dst = sides[pdu.side], sides[1 - pdu.side]
        pdu_level = self.opts.level == "pdu"
        size = [f"{pdu.length} bytes"] if pdu_level and pdu.length is not None else []
        e = pdu.event
        name = pdu.name
        if name == "A-ASSOCIATE-RQ":
            lines = [f"{p}{name}", f"{L.plural(len(a.contexts), 'presentation context')} proposed"]
            if pdu_level:
                lines.append(f"{pdu.length} bytes, max PDU {a.requestor.max_pdu}")
            self.add(Message(src, dst, lines, time=pdu.ts), pdu.frame)
        elif name == "A-ASSOCIATE-AC":
            lines = [f"{p}{name}{self.latency(a.start, pdu.ts)}"]
            if pdu_level:
                lines.append(f"{pdu.length} bytes, max PDU {a.acceptor.max_pdu}")
            self.add(Message(src, dst, lines, reply=True, time=pdu.ts), pdu.frame)
            self.add(Note(*sides, L.context_note(a), "info"), None, pdu.frame)
        elif name == "A-ASSOCIATE-RJ":
            rj = (e.result, e.source, e.reason) if e is not None else (
                (a.reject or {}).get("result", 0), (a.reject or {}).get("source", 0),
                (a.reject or {}).get("reason", 0))
            lines = [f"{p}{name}{self.latency(a.start, pdu.ts)}", *L.reject_lines(*rj), *size]
            self.add(Message(src, dst, lines, True, "failure", time=pdu.ts), pdu.frame)
        elif name == "A-ABORT":
            ab = (e.source, e.reason) if e is not None else (
                (a.abort or {}).get("source", 0), (a.abort or {}).get("reason", 0))
            lines = [f"{p}{name}", *L.abort_lines(*ab), *size]
            self.add(Message(src, dst, lines, False, "failure", time=pdu.ts), pdu.frame)
        else:  # A-RELEASE-RQ / -RP
            reply = name == "A-RELEASE-RP"
            self.add(Message(src, dst, [f"{p}{name}", *size], reply, time=pdu.ts), pdu.frame)

    # -- DIMSE ------------------------------------------------------------------------------
    def transactions(self, sides: tuple[int, int], p: str, txns: list[Transaction]) -> None:
        i = 0
        while i < len(txns):
            j = i + 1
            while j < len(txns) and _same_exchange(txns[i], txns[j]):
                j += 1
            if self.opts.collapse and j - i >= COLLAPSE_MIN:
                self.collapsed(sides, p, txns[i:j])
            else:
                for t in txns[i:j]:
                    self.single(sides, p, t)
            i = j

    def single(self, sides: tuple[int, int], p: str, t: Transaction) -> None:
        s = 0 if t.sent_by == "requestor" else 1
        src, dst = sides[s], sides[1 - s]
        self.add(Message(src, dst, [f"{p}{t.command}-RQ", *L.request_lines(t)],
                         style=L.request_style(t), time=t.request_time), t.request_frame)
        if t.cancel_frame is not None:
            self.add(Message(src, dst, [f"{p}C-CANCEL-RQ"], style="warning",
                             time=self.time(t.cancel_frame)), t.cancel_frame)
        final = t.done
        resp = t.response_frames
        pending = resp[:-1] if final else resp
        cut = t.cancel_frame if t.cancel_frame is not None else 1 << 62
        for group in ([f for f in pending if f < cut], [f for f in pending if f >= cut]):
            if group and self.opts.collapse and len(group) >= COLLAPSE_MIN:
                # Drawn where the run starts, with its range: placed at its end, a run of
                # pending responses interleaved with a sub-association's C-STOREs would read
                # as if it came after them.
                self.add(Message(dst, src, [f"{p}{t.command}-RSP x {len(group)}", "Pending",
                                            self.frames(group[0], group[-1])],
                                 True, time=self.time(group[0])), group[0])
                continue
            for f in group:
                self.add(Message(dst, src, [f"{p}{t.command}-RSP", "Pending"], True,
                                 time=self.time(f)), f)
        if final and resp:
            flagged = t.request_frame in self.slow
            took = self.latency(t.request_time, t.response_time)
            if not took and t.latency is not None and (flagged or t.latency >= SLOW):
                took = f" (took {L.duration(t.latency)})"  # slow: shown without --timing
            lines = [f"{p}{t.command}-RSP{took}", L.status_text(t)]
            if t.suboperations:
                lines.append("sub-operations: " + L.suboperations_text(t.suboperations))
            if t.error_comment:
                lines.append(f"comment: {shorten(t.error_comment)}")
            style = L.worst([L.style_of(t.status_category),
                             L.suboperations_style(t.suboperations),
                             "warning" if flagged else "normal"])
            self.add(Message(dst, src, lines, True, style, time=t.response_time), resp[-1])

    def collapsed(self, sides: tuple[int, int], p: str, run: list[Transaction]) -> None:
        first, cmd = run[0], run[0].command
        s = 0 if first.sent_by == "requestor" else 1
        src, dst = sides[s], sides[1 - s]
        lines = [f"{p}{cmd}-RQ x {len(run)}", L.sop_summary(run),
                 self.frames(first.request_frame, run[-1].request_frame)]
        self.add(Message(src, dst, [x for x in lines if x],
                         style=L.worst(L.request_style(t) for t in run),
                         time=first.request_time), first.request_frame)
        answered = [t for t in run if t.done and t.response_frames]
        if not answered:
            return
        first_rsp = min(answered, key=lambda t: t.response_frames[-1])
        last = max(answered, key=lambda t: t.response_frames[-1])
        lines = [f"{p}{cmd}-RSP x {len(answered)}", L.status_summary(run),
                 self.frames(first_rsp.response_frames[-1], last.response_frames[-1])]
        pending = sum(t.pending for t in run)
        if pending:
            lines.append(f"{pending} pending responses")
        for cat in ("Failure", "Warning"):
            bad = next((t for t in answered if t.status_category == cat), None)
            if bad is not None:
                lines.append(f"first {cat.lower()}: frame {self.fr(bad.response_frames[-1])}, "
                             f"{L.status_text(bad)}")
                break
        lat = [t.latency for t in answered if t.latency is not None]
        flagged = [t for t in answered if t.request_frame in self.slow]
        if lat and (self.opts.timing or flagged or max(lat) >= SLOW):
            lines.append(f"latency median {L.duration(statistics.median(lat))}, "
                         f"max {L.duration(max(lat))}")
        style = L.worst([*(L.style_of(t.status_category) for t in answered),
                         *(L.suboperations_style(t.suboperations) for t in answered),
                         "warning" if flagged else "normal"])
        # At the first response (see the pending run above): the range says how far it goes.
        self.add(Message(dst, src, lines, True, style, time=first_rsp.response_time),
                 first_rsp.response_frames[-1])

    # -- PDU level --------------------------------------------------------------------------
    def pdu_level(self, a: Association, sides: tuple[int, int], p: str, pdus: list[Pdu]) -> None:
        pdus = sorted(pdus, key=lambda x: x.frame)
        i = 0
        while i < len(pdus):
            pdu = pdus[i]
            if pdu.name != "P-DATA-TF":
                self.control(a, sides, p, pdu)
                i += 1
                continue
            j = i + 1
            if _data_only(pdu):
                while j < len(pdus) and _data_only(pdus[j]) and pdus[j].side == pdu.side:
                    j += 1
            if self.opts.collapse and j - i >= COLLAPSE_MIN:
                run = pdus[i:j]
                total = sum(d.length for x in run for d in x.pdvs)
                lines = [f"{p}P-DATA-TF x {len(run)}", f"data set fragments, {L.size(total)}",
                         f"frames {run[0].frame}-{run[-1].frame}"]
                self.add(Message(sides[pdu.side], sides[1 - pdu.side], lines, time=pdu.ts),
                         pdu.frame)
            else:
                for x in pdus[i:j]:
                    self.pdata(sides, p, x)
            i = j

    def pdata(self, sides: tuple[int, int], p: str, pdu: Pdu) -> None:
        said = [L.pdv_text(d) for d in pdu.pdvs]
        lines = [f"{p}P-DATA-TF ({pdu.length} bytes)", *(text for text, _, _ in said[:3])]
        if len(said) > 3:
            lines.append(f"... {len(said) - 3} more PDVs")
        reply = any(response for _, _, response in said)
        self.add(Message(sides[pdu.side], sides[1 - pdu.side], lines, reply,
                         L.worst(style for _, style, _ in said), time=pdu.ts), pdu.frame)

    # -- findings ---------------------------------------------------------------------------
    def findings(self, findings: Iterable[Finding], sides: tuple[int, int], p: str,
                 fallback: int | None) -> None:
        shown = [f for f in findings
                 if f.severity in ("error", "warning") and f.code not in _SHOWN_BY_ARROWS]
        i = 0
        while i < len(shown):
            f = shown[i]
            j = i + 1
            if self.opts.collapse:
                while j < len(shown) and shown[j].code == f.code:
                    j += 1
            n = j - i
            head = f"{p}{f.severity.upper()} {f.code}" + (f" x {n}" if n > 1 else "")
            if f.frame is not None:
                frames = [x.frame for x in shown[i:j] if x.frame is not None]
                head += f" (frame {f.frame})" if n == 1 else (
                    f" (frames {', '.join(map(str, frames[:5]))}"
                    + (", ...)" if len(frames) > 5 else ")"))
            style = "failure" if f.severity == "error" else "warning"
            words = L.wrap(f.shown)
            if len(words) > NOTE_LINES:
                words = [*words[:NOTE_LINES - 1], words[NOTE_LINES - 1].rstrip(" .,;:") + " …"]
            self.add(Note(*sides, [head, *words], style, time=self.time(f.frame)),
                     f.frame, fallback)
            i = j

    # -- the end ----------------------------------------------------------------------------
    def finish(self, title: str, subtitle: list[str]) -> Diagram:
        rows = sorted(self.rows, key=lambda r: (r[0], r[1]))
        items = [r[2] for r in rows]
        cut = 0
        msg_idx = [k for k, it in enumerate(items) if isinstance(it, Message)]
        if len(msg_idx) > self.opts.max_messages:
            stop = msg_idx[self.opts.max_messages]
            rest = items[stop:]
            cut = sum(isinstance(it, Message) for it in rest)
            frames = [it.frame for it in rest if it.frame is not None]
            span = f" (frames {min(frames)}-{max(frames)})" if frames else ""
            items = items[:stop]
            items.append(Note(ALL, ALL, [
                f"diagram cut off after {self.opts.max_messages} messages: {cut} more not "
                f"shown{span}",
                "narrow it with --association, --ae, --between or --command, "
                "or raise --max-messages"], "warning"))
        order: dict[int, int] = {}
        for it in items:
            ends = (it.src, it.dst) if isinstance(it, Message) else (it.first, it.last)
            for e in ends:
                if e != ALL and e not in order:
                    order[e] = len(order)
        if not order and self.actor_list:
            order[0] = 0
        last = len(order) - 1
        for it in items:
            if isinstance(it, Message):
                it.src, it.dst = order[it.src], order[it.dst]
            elif it.first == ALL:
                it.first, it.last = 0, last
            else:
                a, b = order[it.first], order[it.last]
                it.first, it.last = min(a, b), max(a, b)
                if it.last - it.first > 1:
                    # Other AEs' lifelines lie between this association's two: a note across
                    # them would seem to concern them too; it sits on the requestor's.
                    it.first = it.last = a
        lifelines = [self.actor_list[k].lifeline() for k in sorted(order, key=order.get)]
        times = [it.time for it in items if it.time is not None]
        return Diagram(title, subtitle, lifelines, items, self.opts.timing,
                       min(times) if times else None, cut)


def _same_exchange(a: Transaction, b: Transaction) -> bool:
    return (a.command == b.command and a.sent_by == b.sent_by and a.cancel_frame is None
            and b.cancel_frame is None)


def _control_from_model(a: Association) -> list[Pdu]:
    """The association's own PDUs as the model remembers them (no wire log at hand)."""
    out = []
    if a.request_frame is not None:
        out.append(Pdu(0, "A-ASSOCIATE-RQ", a.request_frame, a.start))
    if a.accept_frame is not None:
        name = "A-ASSOCIATE-RJ" if a.outcome == "rejected" else "A-ASSOCIATE-AC"
        out.append(Pdu(1, name, a.accept_frame, a.end if a.reject else None))
    for k, f in enumerate(a.release_frames[:2]):
        out.append(Pdu(k, ("A-RELEASE-RQ", "A-RELEASE-RP")[k], f, None))
    if a.abort:
        side = 0 if a.abort.get("by") == "requestor" else 1
        out.append(Pdu(side, "A-ABORT", a.abort.get("frame") or a.last_frame or 0, a.end))
    return out


def _data_only(pdu: Pdu) -> bool:
    return pdu.name == "P-DATA-TF" and all(d.command is None for d in pdu.pdvs)


def build(associations: Sequence[Association], *, log: WireLog | None = None,
          selection: Selection | None = None, options: Options | None = None,
          capture_findings: Sequence[Finding] = (), title: str = "DICOM sequence",
          web: Sequence[Any] = (), where: Callable[[int], str | None] | None = None) -> Diagram:
    """The diagram of ``associations`` (already selected), interleaved by frame; ``web``:
    DICOMweb connections (dicomsniff/dicomweb/session.py's ``closed``) drawn among them.
    ``where(frame)``: a capture of several files names each frame "file#n" (the file and its
    own frame number, as Wireshark shows it there), not by its merged number."""
    opts = options or Options()
    b = _Builder(log, opts, multi=len(associations) + len(web) > 1, where=where)
    for a in associations:
        b.association(a, selection)
    for w in web:
        b.web_connection(w)
    last = max((a.last_frame or 0 for a in associations), default=None)
    b.findings(capture_findings, (ALL, ALL), "capture: ", last)
    parts = [selection.description] if selection is not None and selection.description else []
    parts.append(L.plural(len(associations), "association"))
    if web:
        parts.append(L.plural(len(web), "DICOMweb connection"))
    if opts.level == "pdu":
        parts.append("every PDU")
    legend = [L.association_line(a) for a in associations[:LEGEND_MAX]]
    if len(associations) > LEGEND_MAX:
        legend.append(f"... {len(associations) - LEGEND_MAX} more")
    return b.finish(title, ["; ".join(parts), *legend])
