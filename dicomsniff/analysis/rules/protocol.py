"""Protocol-state findings (PS3.8 9.2 state machine): the tracker raises them, these rules
explain them.

The tracker already says *that* an association was rejected, aborted or cut; an administrator
also needs *why* and *what to check*. These checks add, to the tracker's own finding, the
hint for the reject or abort reason (dissectors.ul.reasons), who ended the connection, and what
was in flight at that moment (an abort 30 s after an unanswered request is a timeout).
"""

from __future__ import annotations

from dissectors.ul.pdu import ROLES
from dissectors.ul.reasons import abort_hint, reject_hint

from ...model import Association, Finding, Transaction
from ..tracker import _UL_SEVERITY
from .base import AssocView, Hit, check, code, seconds
from .transport import first_end

SIDES = ROLES  # by side (dissectors/ul/pdu.py)

# The tracker's own codes (analysis/tracker.py), listed so the catalogue covers every code.
for _c, _sev, _sec, _title in (
    ("ASSOC-REJECTED", "error", "PS3.8 9.3.4", "the acceptor refused the association"),
    ("ASSOC-ABORTED", "warning", "PS3.8 9.3.8",
     "A-ABORT (error when the upper layer itself aborted: source 2)"),
    ("ASSOC-CLOSED-NO-RELEASE", "warning", "PS3.8 9.1.6",
     "TCP FIN (warning) or RST (error) without A-RELEASE or A-ABORT"),
    ("ASSOC-OPEN-AT-END", "info", None, "the capture ended while the association was open"),
    ("CAPTURE-MIDSTREAM", "info", None, "the capture started inside this association"),
    ("UL-STATE-PDATA", "error", "PS3.8 9.2", "P-DATA-TF before the association was accepted"),
    ("UL-STATE-DATA-AFTER-RELEASE", "warning", "PS3.8 9.2",
     "P-DATA-TF after the sender's own A-RELEASE-RQ"),
    ("UL-STATE-SECOND-RQ", "error", "PS3.8 9.2", "a second A-ASSOCIATE-RQ"),
    ("UL-STATE-AC", "error", "PS3.8 9.2", "A-ASSOCIATE-AC in the wrong state"),
    ("UL-STATE-RP", "error", "PS3.8 9.2", "A-RELEASE-RP without A-RELEASE-RQ"),
    ("UL-RQ-FROM-ACCEPTOR", "warning", "PS3.8 9.2",
     "A-ASSOCIATE-RQ from the side that accepted the TCP connection"),
    ("UL-RELEASE-COLLISION", "info", "PS3.8 7.2.2", "both sides sent A-RELEASE-RQ"),
    ("UL-AC-UNKNOWN-CONTEXT", "error", "PS3.8 9.3.3.2",
     "A-ASSOCIATE-AC answers a context that was not proposed"),
    ("UL-AC-TS-NOT-PROPOSED", "error", "PS3.8 9.3.3.2",
     "a context accepted with a transfer syntax that was not proposed"),
    ("UL-PDU-TOO-LONG", "error", "PS3.8 D.1",
     "a P-DATA-TF longer than the receiver's maximum PDU length"),
    ("UL-PDU-LENGTH-LIE", "error", "PS3.8 9.3.5 / D.1",
     "a P-DATA-TF length field past the maximum, contradicted by its PDV items and the next "
     "PDU header: framing kept at the PDV items"),
    ("UL-RESYNC", "warning", "PS3.8 9.3.1", "bytes skipped to find the next PDU"),
    ("DIMSE-NO-RESPONSE", "warning", "PS3.7 9.3",
     "a request got no final response before the association ended"),
    ("DIMSE-RSP-UNMATCHED", "error", "PS3.7 9.3", "a response to no outstanding request"),
    ("DIMSE-RSP-MISMATCH", "error", "PS3.7 9.3", "a response of another command than its request"),
    ("DIMSE-RSP-NO-STATUS", "error", "PS3.7 9.3", "a response without a Status"),
    ("DIMSE-DUPLICATE-MESSAGE-ID", "error", "PS3.7 9.1.1.1",
     "a Message ID reused while the earlier request is outstanding"),
    ("DIMSE-CONTEXT-NOT-ACCEPTED", "error", "PS3.8 9.3.5 / PS3.7 7.1",
     "a request on a presentation context that was not accepted"),
    ("DIMSE-CANCEL-UNMATCHED", "warning", "PS3.7 9.3.2.3",
     "a C-CANCEL-RQ for a request that is not outstanding"),
):
    code(_c, _sev, _sec, _title, origin="tracker")
for _c in ("UL-PDU-TYPE", "UL-PDU-LENGTH", "UL-PDATA-EMPTY", "UL-PDATA-SHORT", "UL-PDV-LENGTH",
           "UL-PDV-MCH", "UL-PDV-ODD", "UL-COMMAND-SIZE", "UL-STREAM-TRUNCATED", "UL-ASSOC-PARSE",
           "UL-ASSOC-SHORT", "UL-ITEM-OVERRUN", "UL-ITEM-TRUNCATED", "UL-ITEM-UNEXPECTED",
           "UL-CONTEXT-BAD", "UL-ROLE-BAD", "UL-EXTNEG-BAD", "UL-COMMONEXT-BAD", "UL-ASYNC-BAD",
           "UL-IDENTITY-BAD", "UL-MAXLEN-BAD", "UL-NO-USERINFO", "UL-AE-BLANK",
           "DIMSE-INTERLEAVED",
           "DIMSE-DATASET-MISSING", "DIMSE-CMD-SIZE", "DIMSE-CMD-NOFIELD", "DIMSE-DATA-ORPHAN",
           "DIMSE-CMD-ORDER", "DIMSE-CMD-GROUP", "DIMSE-CMD-OVERRUN", "DIMSE-CMD-TRUNCATED",
           "DIMSE-CMD-VALUE"):
    code(_c, _UL_SEVERITY.get(_c, "error"), "PS3.8 9.3" if _c.startswith("UL") else "PS3.7 6.3",
         "malformed or out-of-place PDU, item, PDV or command set (the message says which)",
         origin="tracker")
for _c, _sev, _title in (
    ("CAP-STREAMS", "warning", "more connections open at once than --max-streams"),
    ("CAPTURE-LINKTYPE", "warning", "frames of an unsupported link type were skipped"),
    ("CAPTURE-DAMAGED", "error", "the capture file is damaged part-way"),
    ("CAPTURE-WARNING", "warning", "the capture reader had a warning"),
    ("CAPTURE-UNREADABLE", "error", "one of several capture files could not be read"),
    ("IP-FRAGMENT-CONFLICT", "warning",
     "IP fragments overlapping with different bytes (the first copy kept)"),
    ("IP-FRAGMENT-INCOMPLETE", "warning",
     "IP datagrams that could not be reassembled within the caps"),
    ("CAPTURE-UNDECODED", "warning",
     "IPv6 packets whose extension header chain could not be walked"),
    ("CAPTURE-TRUNCATED", "warning",
     "records cut by the snapshot length or empty (caplen 0): their bytes count as missing"),
    ("CAPTURE-SENSOR-COPIES", "info",
     "segments seen by two sensors were analysed once (sources/merge.py)"),
    ("CAPTURE-SENSOR-CLOCKS", "warning",
     "two sensors' clocks disagree (measured on their copies of the same segments)"),
):
    code(_c, _sev, None, _title, origin="tracker")


def outstanding(a: Association) -> list[Transaction]:
    """Requests still without a final response when the association ended (not those whose
    response the capture may have lost: the peers may well have had it)."""
    return [t for t in a.transactions if not t.done and not t.response_lost]


def last_activity(a: Association) -> float | None:
    """Time of the last DIMSE message seen (request, data set end or response)."""
    times = [x for t in a.transactions
             for x in (t.request_time, t.request_end_time, t.response_time) if x is not None]
    return max(times) if times else None


def _lost_stores(f: Finding, a: Association) -> None:
    """An association that ends while C-STORE data sets wait for their response lost those
    images: the sender cannot know they were stored (PS3.7 9.3.1.2). That is an error,
    whatever the abort reason, so ``--fail-on error`` catches lost images."""
    n = sum(1 for t in outstanding(a) if t.command == "C-STORE")
    if n:
        f.severity = "error"
        f.message += (f"; {n} C-STORE{'s' if n != 1 else ''} sent without a response: "
                      f"{'those images were' if n != 1 else 'that image was'} not delivered")


def _in_flight(a: Association, end: float | None, by: str | None = None,
               dropped: bool = False, reason_given: bool = False) -> str:
    """What was going on when the ``by`` side ended the association ('' if nothing telling).

    ``reason_given``: the abort named its reason (an A-ABORT from the service provider,
    PS3.8 9.3.8): no timeout is guessed then."""
    waiting = outstanding(a)
    if waiting and end is not None:
        t = waiting[0]
        more = f" (and {len(waiting) - 1} more request(s))" if len(waiting) > 1 else ""
        if t.dataset_partial:
            what = "its data set had not been completely sent"
        else:
            waited = max(0.0, end - (t.request_end_time or t.request_time or end))
            what = f"it had waited {seconds(waited)} for the response"
            if reason_given:
                pass  # the abort's own reason says why (see "What to check")
            elif by == t.sent_by and dropped:
                what += f" - the {by} gave up waiting (a timeout) or its process was stopped"
            elif by == t.sent_by:
                what += (f" - the {by} gave up waiting, usually a response (DIMSE) timeout on "
                         "its side")
            elif by is not None:
                what += (f" - the {by} ended it instead of answering: it failed or stalled "
                         "while processing the request")
        return (f"; at that moment {t.command} message {t.message_id} from the {t.sent_by} "
                f"(frame {t.request_frame}) was unanswered{more}: {what}")
    last = last_activity(a)
    if last is not None and end is not None and end - last >= 0.5:
        return (f"; the association had been idle for {seconds(end - last)} since the last "
                "DIMSE message: an idle timeout is the usual reason")
    return ""


@check("ASSOC-REJECTED", cross=True)
def explain_reject(v: AssocView) -> list[Hit]:
    a = v.assoc
    if not a.reject:
        return []
    rj = a.reject
    for f in v.tracker_findings("ASSOC-REJECTED"):
        f.message += (f"; calling AE '{a.calling_ae}' ({a.client.rsplit(':', 1)[0]}) asked for "
                      f"called AE '{a.called_ae}' at {a.server}. What to check: "
                      f"{reject_hint(rj['source'], rj['reason'], rj['result'])}")
        mem = v.state.servers.get(a.server)
        others = sorted(mem.called_aes - {a.called_ae or ""}) if mem else []
        if others and rj["source"] == 1 and rj["reason"] == 7:
            f.message += (" Elsewhere in this capture the same address accepted called AE "
                          + ", ".join(f"'{x}'" for x in others[:3]) + ".")
    return []


@check("ASSOC-ABORTED")
def explain_abort(v: AssocView) -> list[Hit]:
    a = v.assoc
    if not a.abort:
        return []
    for f in v.tracker_findings("ASSOC-ABORTED"):
        f.message += _in_flight(a, a.end, a.abort["by"],
                                reason_given=a.abort["source"] == 2)
        _lost_stores(f, a)
        f.message += ". What to check: " + abort_hint(a.abort["source"], a.abort["reason"])
    return []


@check("ASSOC-CLOSED-NO-RELEASE")
def explain_close(v: AssocView) -> list[Hit]:
    a = v.assoc
    first = first_end(v.transport)
    for f in v.tracker_findings("ASSOC-CLOSED-NO-RELEASE"):
        by, end, later = None, a.end, ""
        if first is not None:
            kind, side, frame, ts = first
            by = SIDES[side]
            what = "reset" if kind == "RST" else "closed"
            f.message += f"; the {by} {what} it first ({kind}, frame {frame})"
            rst = v.transport.rst if kind == "FIN" and v.transport else None
            if rst is not None:
                later = f"; the {SIDES[rst[0]]} reset it later (RST, frame {rst[1]})"
                if rst[0] == side:
                    later += (f", when the {SIDES[1 - side]} still sent data to the closed "
                              "connection")
            end = ts if ts is not None else end
        f.message += _in_flight(a, end, by, dropped=True) + later
        _lost_stores(f, a)
        f.message += (". A peer that drops "
                      "the connection without A-RELEASE crashed, was stopped, or gave up after "
                      "a timeout; the other side cannot know whether the last operation "
                      "succeeded")
    return []


def _ending(v: AssocView) -> tuple[str, float | None]:
    """How and where the association ended, in words, and when."""
    a = v.assoc
    if a.outcome == "aborted" and a.abort:
        return f"an A-ABORT from the {a.abort['by']} (frame {a.abort['frame']})", a.end
    if a.outcome == "closed":
        first = first_end(v.transport)
        if first:
            kind, side, frame, ts = first
            what = "reset" if kind == "RST" else "closed"
            return (f"the {SIDES[side]} {what} the TCP connection ({kind}, frame {frame})",
                    ts if ts is not None else a.end)
        return "the TCP connection ending", a.end
    if a.outcome == "released" and a.release_frames:
        return f"the release (frame {a.release_frames[0]})", a.end
    return "the end of the capture", a.end


@check("DIMSE-NO-RESPONSE")
def explain_no_response(v: AssocView) -> list[Hit]:
    a = v.assoc
    if a.end is None:
        return []
    ending, end = _ending(v)
    by_frame = {t.request_frame: t for t in a.transactions}
    for f in v.tracker_findings("DIMSE-NO-RESPONSE"):
        t = by_frame.get(f.frame)
        if t is None or t.request_time is None:
            continue
        if t.dataset_partial:
            f.message += f" (its data set was still incomplete at {ending})"
        else:
            waited = max(0.0, (end or a.end) - (t.request_end_time or t.request_time))
            f.message += f" (waited {seconds(waited)} until {ending})"
    return []
