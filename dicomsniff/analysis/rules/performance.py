"""Throughput rules: the administrator's "why is sending so slow".

Everything comes from the transactions' timestamps (command complete, data set complete,
final response), so it costs nothing on the hot path: where an association's time went
(data on the wire, waiting for responses, nothing outstanding), how many PDUs a data set took,
and two classic causes - a tiny maximum PDU length, and the 40 ms / 200 ms stall of Nagle's
algorithm meeting delayed ACKs, which shows as responses that arrive a fixed ~40 ms late.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from dissectors.ul.pdu import ROLES

from ...model import Association, Transaction
from .base import AssocView, Hit, check, code, seconds, size
from .transport import first_end

THROUGHPUT = code("PERF-THROUGHPUT", "info", "PS3.8 9.3.5",
                  "per association: effective throughput, PDUs per data set, and the time "
                  "split between sending, waiting for responses and idle")
SMALL_PDU = code("PERF-SMALL-PDU", "warning", "PS3.8 D.1",
                 "a small maximum PDU length cuts large data sets into many P-DATA PDUs")
DELAYED_ACK = code("PERF-DELAYED-ACK", "warning", "RFC 896 / RFC 1122 4.2.3.2",
                   "a regular ~40 ms or ~200 ms wait: Nagle's algorithm meeting delayed ACKs")
IDLE = code("PERF-IDLE", "info", "PS3.8 9.2",
            "an open association with no DIMSE operation for longer than --idle-threshold (the "
            "standard sets no idle timer in Sta6: timeouts are the implementations' own)")

# Delayed-ACK timers: 40 ms minimum on Linux, 200 ms on Windows (and classic BSD).
_BANDS = (("40 ms", 0.036, 0.060), ("200 ms", 0.185, 0.240))
SIDES = ROLES  # by side (dissectors/ul/pdu.py)


def _union(spans: list[tuple[float, float]]) -> float:
    """Total length covered by possibly overlapping intervals."""
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(spans):
        if cur_e is None or s > cur_e:
            if cur_e is not None and cur_s is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None and cur_s is not None:
        total += cur_e - cur_s
    return total


def _end(a: Association, t: Transaction) -> float | None:
    return t.response_time if t.done else a.end


@check(THROUGHPUT)
def throughput(v: AssocView) -> Iterator[Hit]:
    a, cfg = v.assoc, v.config
    total = sum(t.dataset_bytes + t.response_dataset_bytes for t in a.transactions)
    dur = a.duration
    if total < cfg.throughput_min_bytes or not dur or dur <= 0:
        return
    sending = _union([(t.request_time, t.request_end_time) for t in a.transactions
                      if t.dataset_bytes and t.request_time is not None
                      and t.request_end_time is not None])
    busy = _union([(t.request_time, e) for t in a.transactions
                   if t.request_time is not None and (e := _end(a, t)) is not None])
    by_side = Counter({s: 0 for s in SIDES})
    sets = Counter({s: 0 for s in SIDES})
    for t in a.transactions:
        if t.dataset_bytes:
            by_side[t.sent_by] += t.dataset_bytes
            sets[t.sent_by] += 1
    side = max(SIDES, key=lambda s: by_side[s])
    text = (f"{size(total)} of data sets in {seconds(dur)}: {size(total / dur)}/s overall")
    if sending > 0 and by_side[side]:
        text += f", {size(by_side[side] / sending)}/s while a data set was on the wire"
    if sets[side]:
        # P-DATA-TF PDUs of the busy side, less one per command set it sent.
        commands = sum(1 for t in a.transactions if t.sent_by == side) + sum(
            t.pending + (1 if t.done else 0) for t in a.transactions if t.sent_by != side)
        pdata = a.pdus[side].get("P-DATA-TF", 0)
        receiver = a.acceptor if side == "requestor" else a.requestor
        text += (f"; {sets[side]} data set(s) from the {side} in about "
                 f"{max(pdata - commands, sets[side]) / sets[side]:.0f} P-DATA PDU(s) each "
                 f"(receiver's max PDU {receiver.max_pdu or 'unlimited'})")
    text += (f"; time: {100 * sending / dur:.0f}% sending data sets, "
             f"{100 * max(0.0, busy - sending) / dur:.0f}% waiting for responses, "
             f"{100 * max(0.0, dur - busy) / dur:.0f}% with nothing outstanding")
    yield Hit(THROUGHPUT, text, a.first_frame)


@check(SMALL_PDU)
def small_pdu(v: AssocView) -> Iterator[Hit]:
    a, cfg = v.assoc, v.config
    for side in SIDES:
        sizes = [t.dataset_bytes for t in a.transactions if t.sent_by == side and t.dataset_bytes]
        receiver, name = ((a.acceptor, "acceptor") if side == "requestor"
                          else (a.requestor, "requestor"))
        limit = receiver.max_pdu
        if not sizes or not limit or limit >= cfg.small_pdu:
            continue
        avg = sum(sizes) / len(sizes)
        if avg < cfg.large_dataset:
            continue
        yield Hit(SMALL_PDU,
                  f"the {name} announced a maximum PDU length of {limit} bytes, so each "
                  f"{size(avg)} data set from the {side} is cut into about {avg / limit:.0f} "
                  "P-DATA-TF PDUs, each with its own headers and (with Nagle's algorithm on) "
                  f"its own wait; raise the {name}'s maximum PDU length (16 KB is the usual "
                  "minimum, 64 KB to 1 MB is common for images)", a.accept_frame)


def _band(gap: float | None) -> str | None:
    if gap is None:
        return None
    for label, lo, hi in _BANDS:
        if lo <= gap <= hi:
            return label
    return None


@check(DELAYED_ACK)
def delayed_ack(v: AssocView) -> Iterator[Hit]:
    a = v.assoc
    # Plain request/response turnarounds only: with pending responses the final one's timing
    # says nothing about TCP.
    done = [t for t in a.transactions if t.done and not t.pending
            and t.response_time is not None and t.request_time is not None]
    if len(done) < 2:
        return
    hits: list[tuple[str, str, float, Transaction]] = []  # (band, where, gap, transaction)
    for t in done:
        start, end = t.request_time or 0.0, t.response_time or 0.0
        ready = t.request_end_time or start
        resp = _band(end - ready)
        data = _band(ready - start) if t.dataset_bytes and t.request_end_time else None
        if resp:
            hits.append((resp, "before the response", end - ready, t))
        elif data:
            hits.append((data, "between the command and the end of its data set", ready - start,
                         t))
    if len(hits) < 2 or len(hits) < len(done) / 2:
        return
    band, _ = Counter(h[0] for h in hits).most_common(1)[0]
    where, _ = Counter(h[1] for h in hits if h[0] == band).most_common(1)[0]
    lost = sum(h[2] for h in hits)
    commands = sorted({h[3].command for h in hits})
    yield Hit(DELAYED_ACK,
              f"{len(hits)} of {len(done)} {'/'.join(commands)} exchanges waited about {band} "
              f"{where}: the signature of Nagle's algorithm holding back a small TCP segment "
              "until the peer's delayed ACK (40 ms on Linux, 200 ms on Windows). "
              f"{seconds(lost)} of this association's {seconds(a.duration)} went to these waits; "
              "set TCP_NODELAY on the peers' sockets (in dcmtk, do not set the TCP_NODELAY "
              "environment variable to 0; most toolkits have an option for it)",
              hits[0][3].request_frame, [h[3].request_frame for h in hits[1:20]
                                         if h[3].request_frame])


@check(IDLE)
def idle(v: AssocView) -> Iterator[Hit]:
    a, thr = v.assoc, v.config.idle_threshold
    if a.start is None or a.end is None or a.outcome == "rejected":
        return
    spans = sorted(((t.request_time, e, t) for t in a.transactions
                    if t.request_time is not None and (e := _end(a, t)) is not None),
                   key=lambda x: (x[0], x[1]))
    gaps: list[tuple[float, float, str, int | None]] = []  # (length, start, before what, frame)
    cursor = a.start
    for s, e, t in spans:
        if s - cursor >= thr:
            gaps.append((s - cursor, cursor, f"before {t.command}-RQ message {t.message_id}",
                         t.request_frame))
        cursor = max(cursor, e)
    if a.end - cursor >= thr:
        gaps.append((a.end - cursor, cursor, f"before the association ended ({a.outcome})",
                     a.last_frame))
    if not gaps:
        return
    length, _, what, frame = max(gaps, key=lambda g: g[0])
    at_end = gaps[-1][2].startswith("before the association ended")
    timeout = at_end and a.outcome in ("aborted", "closed")
    text = (f"no DIMSE operation for {seconds(length)} {what}"
            + (f" ({len(gaps)} idle periods over {seconds(thr)})" if len(gaps) > 1 else ""))
    if timeout:
        ender = first_end(v.transport)
        who = (a.abort or {}).get("by") or (SIDES[ender[1]] if ender else "one side")
        text += (f": the {who} then ended the association without a release, the usual sign "
                 "of an idle (or ARTIM/DIMSE) timeout expiring; compare with the peers' timeout "
                 "settings")
    else:
        text += ": the association was held open doing nothing; an SCP with a shorter idle "
        text += "timeout would have dropped it"
    yield Hit(IDLE, text, frame, severity="warning" if timeout else None)
