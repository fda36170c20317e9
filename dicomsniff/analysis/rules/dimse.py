"""DIMSE rules: failure and warning statuses, cancels, the asynchronous operations window,
instances stored twice, slow responses, C-GET sub-operation counts.

Statuses are grouped per association, command and code ("C-STORE failed 37 times with 0xA700"),
because one full disk makes every store fail the same way and the administrator needs the
cause once, with the frames, not 37 copies of it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from dissectors.wiretext import mark

from ...model import Association, Transaction
from ...uids import MPPS, STORAGE_COMMITMENT_PUSH
from .base import AssocView, Hit, RuleConfig, check, code, invoker, listing, performer, seconds
from .state import TALLY_INDEX, CaptureState, Reservoir

STATUS_FAILURE = code("DIMSE-STATUS-FAILURE", "error", "PS3.7 C / PS3.4",
                      "a response with a Failure status, with its meaning for that service")
STATUS_WARNING = code("DIMSE-STATUS-WARNING", "warning", "PS3.7 C / PS3.4",
                      "a response with a Warning status, with its meaning for that service")
CANCELLED = code("DIMSE-CANCELLED", "info", "PS3.7 9.3.2.3",
                 "a C-CANCEL-RQ and what the SCP did after it")
ASYNC_WINDOW = code("DIMSE-ASYNC-WINDOW", "error", "PS3.7 D.3.3.3",
                    "more requests outstanding than the negotiated asynchronous window allows")
DUPLICATE_INSTANCE = code("DIMSE-DUPLICATE-INSTANCE", "warning", "PS3.4 B.2.2",
                          "the same SOP Instance UID stored more than once to the same AE")
SLOW_RESPONSE = code("DIMSE-SLOW-RESPONSE", "warning", "PS3.7 9.3",
                     "a response far slower than the median for that command on that server")
SUBOPS = code("DIMSE-SUBOPS-MISMATCH", "warning", "PS3.4 C.4.2.3.1 / C.4.3.3.1",
              "C-MOVE/C-GET sub-operation counts disagree with the C-STOREs seen")

# Where each service's statuses are defined.
_STATUS_SECTION = {"C-STORE": "PS3.4 B.2.3", "C-FIND": "PS3.4 C.4.1.1.4",
                   "C-MOVE": "PS3.4 C.4.2.1.5", "C-GET": "PS3.4 C.4.3.1.4"}
_SOP_SECTION = {MPPS: "PS3.4 F.7.2", STORAGE_COMMITMENT_PUSH: "PS3.4 J.3"}

# What an administrator should check, by (command or None, status >> 8 or exact status).
_HINTS: dict[tuple[str | None, int], str] = {
    ("C-STORE", 0xA7): "the archive is out of resources: typically a full disk, a storage "
    "quota or a database problem on the SCP - check its free space and log",
    ("C-STORE", 0xA9): "the data set does not match the SOP class it was sent as (wrong SOP "
    "Class UID or missing required attributes): check how the sender creates the object",
    ("C-STORE", 0xC0): "the SCP could not understand the data set: an encoding problem "
    "(transfer syntax, lengths, character set) or an internal error - its log says which",
    ("C-STORE", 0xB0): "the SCP changed attribute values while storing (coercion, e.g. "
    "patient reconciliation): the archived object differs from what was sent",
    ("C-STORE", 0xB007): "stored, although the data set does not match its SOP class",
    ("C-STORE", 0xB006): "stored, but the SCP discarded some elements",
    ("C-MOVE", 0xA801): "the move destination AE title is not configured on the SCP: add it "
    "with host and port to the SCP's list of known AEs, or fix the destination the SCU asks for",
    ("C-MOVE", 0xA7): "the SCP could not start the sub-operations (often it could not open the "
    "association to the move destination, or it is out of resources)",
    ("C-MOVE", 0xB0): "some sub-operations failed or gave warnings: look at the C-STOREs on the "
    "sub-association",
    ("C-GET", 0xB0): "some sub-operations failed or gave warnings: look at the C-STOREs sent "
    "back on this association",
    ("C-GET", 0xA7): "the SCP could not perform the sub-operations (out of resources)",
    (None, 0x0122): "the SCP does not support this SOP class, although it accepted the "
    "presentation context: an inconsistent SCP configuration",
    (None, 0x0124): "the SCP refused the operation for this caller (not authorized): check its "
    "access rules for the calling AE",
    (None, 0x0110): "the SCP failed while processing the request: its log says why",
    (None, 0x0112): "the SCP does not know the SOP instance named in the request",
    (None, 0x0111): "an instance with this UID already exists on the SCP",
    (None, 0x0211): "the SCP does not implement this operation for this SOP class",
    (None, 0x0213): "the SCP hit a resource limit: retry later or check its limits",
    (None, 0x0210): "the Message ID was already in use on this association",
    (None, 0x0106): "an attribute value was invalid for the SCP",
    (None, 0x0120): "a required attribute was missing from the data set",
    (None, 0x0121): "a required attribute had no value",
}


def _hint(t: Transaction) -> str:
    s = t.status or 0
    for key in ((t.command, s), (t.command, s >> 8), (None, s)):
        h = _HINTS.get(key)
        if h:
            return h
    return ""


@check(STATUS_FAILURE, STATUS_WARNING)
def statuses(v: AssocView) -> Iterator[Hit]:
    groups: dict[tuple[str, int], list[Transaction]] = defaultdict(list)
    for t in v.assoc.transactions:
        if t.status is not None and t.done and t.status_category in ("Failure", "Warning"):
            groups[(t.command, t.status)].append(t)
    for (command, status), ts in groups.items():
        t = ts[0]
        fail = t.status_category == "Failure"
        lookup = command == "N-GET" and status == 0x0112  # a lookup that found nothing
        frames = [x.response_frames[-1] for x in ts if x.response_frames]
        what = (f"{command} from {invoker(v.assoc, t)}, the {t.sent_by}, to "
                f"{performer(v.assoc, t)} "
                f"{'failed' if fail else 'completed with a warning'}")
        count = f" {len(ts)} times" if len(ts) > 1 else ""
        text = f"{what}{count}: status 0x{status:04X} {t.status_meaning}"
        if len(ts) == 1 and t.sop_instance:
            text += f" (SOP instance {mark(t.sop_instance)})"
        if t.error_comment:
            text += f"; error comment: '{mark(t.error_comment)}'"
        hint = _hint(t)
        if hint:
            text += f" - {hint}"
        section = _SOP_SECTION.get(t.sop_class or "") or _STATUS_SECTION.get(command,
                                                                              "PS3.7 C")
        yield Hit(STATUS_FAILURE if fail else STATUS_WARNING, text,
                  frames[0] if frames else t.request_frame, frames[1:20], section=section,
                  severity="warning" if lookup else None)


@check(CANCELLED)
def cancels(v: AssocView) -> Iterator[Hit]:
    for t in v.assoc.transactions:
        if t.cancel_frame is None:
            continue
        after = [f for f in t.response_frames if f > t.cancel_frame]
        before = t.pending - max(0, len(after) - (0 if not t.done else 1))
        head = (f"{t.command} message {t.message_id} was cancelled by a C-CANCEL-RQ at frame "
                f"{t.cancel_frame} after {before} pending response(s)")
        if not t.done:
            yield Hit(CANCELLED, f"{head}, and the SCP never sent a final response: it ignored "
                                 "the cancel (the requestor has to abort to stop it)",
                      t.cancel_frame, after[:10], severity="warning")
        elif t.status_category == "Cancel":
            more = len(after) - 1
            then = f" sent {more} more pending response(s), then" if more else ""
            yield Hit(CANCELLED, f"{head}; the SCP{then} confirmed with 0x{t.status:04X} Cancel "
                                 f"at frame {t.response_frames[-1]} ({seconds(t.latency)} after "
                                 "the request)", t.cancel_frame, [t.response_frames[-1]])
        else:
            yield Hit(CANCELLED, f"{head}; the SCP finished anyway with status "
                                 f"0x{t.status or 0:04X} ({t.status_category}): the cancel came "
                                 "too late or was ignored", t.cancel_frame,
                      [t.response_frames[-1]] if t.response_frames else [])


def _windows(a: Association) -> dict[str, int]:
    """Outstanding requests each side may invoke: the A-ASSOCIATE-AC's answer, else 1."""
    ac = a.acceptor
    if ac.async_invoked is None:
        return {"requestor": 1, "acceptor": 1}
    return {"requestor": ac.async_invoked, "acceptor": ac.async_performed or 0}


@check(ASYNC_WINDOW)
def async_window(v: AssocView) -> Iterator[Hit]:
    a = v.assoc
    if a.midstream or a.accept_frame is None:
        return
    windows = _windows(a)
    for side, window in windows.items():
        if window == 0:
            continue  # unlimited
        open_until: list[int] = []  # final-response frames of outstanding requests
        for t in sorted((t for t in a.transactions if t.sent_by == side and t.request_frame
                         and not t.response_lost),  # when it was answered is unknown
                        key=lambda t: t.request_frame or 0):
            rq = t.request_frame or 0
            open_until = [f for f in open_until if f > rq]
            if len(open_until) >= window:
                how = ("no window was negotiated, so operations are synchronous"
                       if a.acceptor.async_invoked is None else "as the A-ASSOCIATE-AC set it")
                yield Hit(ASYNC_WINDOW,
                          f"the {side} had {len(open_until) + 1} requests outstanding when it "
                          f"sent {t.command}-RQ message {t.message_id}, but the asynchronous "
                          f"operations window allows {window} ({how}); the receiver may refuse "
                          "the request or abort the association", rq)
                break
            end = t.response_frames[-1] if t.done and t.response_frames else 1 << 62
            open_until.append(end)


def _destination(a: Association, t: Transaction) -> str:
    return f"{a.called_ae}@{a.server}" if t.sent_by == "requestor" else \
        f"{a.calling_ae}@{a.client.rsplit(':', 1)[0]}"


@check(DUPLICATE_INSTANCE, cross=True)
def stored_twice(v: AssocView) -> Iterator[Hit]:
    a, seen = v.assoc, v.state.instances
    dups: list[tuple[Transaction, tuple[int, int | None, str | None]]] = []
    for t in a.transactions:
        if t.command != "C-STORE" or not t.sop_instance:
            continue
        key = (_destination(a, t), t.sop_instance)
        first = seen.get(key)
        if first is not None:
            dups.append((t, first))
        else:
            seen.put(key, (a.id, t.request_frame, t.status_category))
    if not dups:
        return
    t, (aid, frame, cat) = dups[0]
    where = "earlier on this association" if aid == a.id else f"on association #{aid}"
    retry = all(first[2] in ("Failure", None) for _, first in dups)
    why = ("a retry after a failed or unanswered store" if retry else
           "the first copy was stored successfully, so this is a redundant transfer (a "
           "resend rule or a retry that was not needed); an archive may also reject or "
           "overwrite the second copy")
    many = f" ({len(dups)} instances stored again on this association)" if len(dups) > 1 else ""
    yield Hit(DUPLICATE_INSTANCE,
              f"SOP instance {t.sop_instance} was stored to {_destination(a, t)} again at frame "
              f"{t.request_frame}; it was first sent {where} at frame {frame} "
              f"(status then: {cat or 'no response'}){many}: {why}",
              t.request_frame, [x.request_frame for x, _ in dups[1:20] if x.request_frame],
              severity="info" if retry else None)


def _latency_key(a: Association, t: Transaction) -> tuple[str, str]:
    return (performer(a, t), t.command)


@check(SLOW_RESPONSE, cross=True)
def slow_responses(v: AssocView) -> Iterator[Hit]:
    a, cfg, st = v.assoc, v.config, v.state
    done = [t for t in a.transactions if t.done and t.latency is not None]
    for t in done:
        key = _latency_key(a, t)
        res = st.latency.get(key)
        if res is None:
            res = Reservoir()
            st.latency.put(key, res)
        res.add(t.latency or 0.0)
    by_key: dict[tuple[str, str], list[Transaction]] = defaultdict(list)
    over: dict[tuple[str, str], list[Transaction]] = defaultdict(list)
    for t in done:
        if cfg.slow_over is not None and (t.latency or 0) >= cfg.slow_over:
            # An absolute threshold: when every operation of an SCP is slow, the median is
            # slow too and the relative check says nothing.
            over[_latency_key(a, t)].append(t)
        elif (t.latency or 0) >= cfg.slow_min:
            by_key[_latency_key(a, t)].append(t)
    for key, ts in over.items():
        yield _over_hit(key, ts, cfg.slow_over or 0.0)
    for key, ts in by_key.items():
        res = st.latency.get(key)
        if res is None or res.count < cfg.slow_min_samples:
            for t in ts:  # judged at the end, when the server's median is known
                if len(st.unjudged) < 10_000:
                    st.unjudged.append((key, t.latency or 0, a.id, t))
            continue
        hit = _slow_hit(key, ts, res.median() or 0, res.count, cfg, a.id, here=True)
        if hit is not None:
            yield hit


def _over_hit(key: tuple[str, str], ts: list[Transaction], limit: float) -> Hit:
    ts = sorted(ts, key=lambda t: -(t.latency or 0))
    ae, command = key
    worst_list = listing([f"{seconds(t.latency)} (frame {t.request_frame})" for t in ts], 3)
    return Hit(SLOW_RESPONSE,
               f"{len(ts)} {command} response(s) from {ae} took {seconds(limit)} or longer "
               f"(--slow-over): {worst_list}; the SCP was busy, blocked or waiting on its "
               "storage at that time",
               ts[0].request_frame, [t.request_frame for t in ts[1:20] if t.request_frame])


def _slow_hit(key: tuple[str, str], ts: list[Transaction], median: float, n: int,
              cfg: RuleConfig, assoc: int, here: bool) -> Hit | None:
    limit = max(cfg.slow_factor * median, cfg.slow_min)
    slow = [t for t in ts if (t.latency or 0) >= limit]
    if not slow:
        return None
    slow.sort(key=lambda t: -(t.latency or 0))
    worst = slow[0]
    ae, command = key
    where = "" if here else f" (association #{assoc})"
    worst_list = listing([f"{seconds(t.latency)} (frame {t.request_frame})" for t in slow], 3)
    return Hit(SLOW_RESPONSE,
               f"{len(slow)} {command} response(s) from {ae} took far longer than usual"
               f"{where}: {worst_list}, against a median of {seconds(median)} over {n} "
               f"{command}(s) to that AE "
               f"(threshold {cfg.slow_factor:g}x the median, at least {seconds(cfg.slow_min)}); "
               "the SCP was busy, blocked or waiting on its storage at that time",
               worst.request_frame, [t.request_frame for t in slow[1:20] if t.request_frame])


@check(SLOW_RESPONSE, phase="finish")
def slow_responses_late(state: CaptureState, config: RuleConfig) -> Iterator[Hit]:
    """Associations that ended before their server had enough responses for a median."""
    groups: dict[tuple[tuple[str, str], int], list[Transaction]] = defaultdict(list)
    for key, _lat, aid, t in state.unjudged:
        groups[(key, aid)].append(t)
    for (key, aid), ts in groups.items():
        res = state.latency.get(key)
        if res is None or res.count < config.slow_min_samples:
            continue
        hit = _slow_hit(key, ts, res.median() or 0, res.count, config, aid, here=False)
        if hit is not None:
            yield hit


@check(SUBOPS)
def get_suboperations(v: AssocView) -> Iterator[Hit]:
    """C-GET: the C-STOREs come back on the same association, between request and response."""
    a = v.assoc
    stores = [t for t in a.transactions if t.command == "C-STORE" and t.sent_by == "acceptor"]
    for t in a.transactions:
        if (t.command != "C-GET" or not t.done or not t.suboperations or a.midstream
                or v.lost):  # (C-STOREs the capture lost are not "missing")
            continue
        lo, hi = t.request_frame or 0, t.response_frames[-1]
        seen = [0, 0, 0, 0]
        for s in stores:
            if lo < (s.request_frame or 0) < hi:
                seen[TALLY_INDEX.get(s.status_category or "", 3)] += 1
        hit = compare_suboperations(t, seen, "sent back on this association")
        if hit is not None:
            yield hit


def compare_suboperations(t: Transaction, seen: list[int], where: str) -> Hit | None:
    """A finding when the final response's counts cannot be what the C-STOREs did."""
    so = t.suboperations or {}
    completed, warning, failed = (so.get("completed"), so.get("warning"), so.get("failed"))
    if not (isinstance(completed, int) and isinstance(warning, int) and isinstance(failed, int)):
        return None
    ok, warn, fail, none = seen
    if completed == ok and warning == warn and failed >= fail + none:
        return None
    return Hit(SUBOPS,
               f"{t.command} message {t.message_id} reported {completed} completed, {warning} "
               f"warning and {failed} failed sub-operations, but the C-STOREs {where} were "
               f"{ok} successful, {warn} with warnings, {fail} failed and {none} unanswered: "
               "the SCU's view of what was retrieved is wrong (or part of the traffic is "
               "missing from the capture)",
               t.response_frames[-1] if t.response_frames else t.request_frame)
