"""C-MOVE across associations: find the sub-association, compare what it carried.

The C-STOREs of a C-MOVE travel on a separate association that the move SCP opens to the move
destination. It is recognised by the Move Originator AE Title / Message ID that the SCP should
put in each C-STORE-RQ (PS3.7 9.3.1.1), or else by its called AE being the move destination and
its start falling inside the C-MOVE. When the C-MOVE association ends, every C-STORE of the
sub-association has been answered (the final C-MOVE-RSP comes after them), so the check runs
then, from the tallies the capture-wide memory keeps.
"""

from __future__ import annotations

from collections.abc import Iterator

from dissectors.wiretext import mark

from ...model import Association, Transaction
from .base import AssocView, Hit, check, code
from .dimse import SUBOPS, compare_suboperations
from .state import AssocMeta, CaptureState

NO_SUBASSOC = code(
    "DIMSE-MOVE-NO-SUBASSOCIATION", "warning", "PS3.4 C.4.2.3",
    "a C-MOVE whose SCP never opened an association to the move destination (in the capture)")


def sub_associations(state: CaptureState, a: Association, t: Transaction) -> list[AssocMeta]:
    """Associations to the move destination that started while the C-MOVE was outstanding."""
    start = t.request_time
    end = t.response_time if t.response_time is not None else a.end
    if start is None:
        return []
    out = []
    for aid in state.by_called.get(t.move_destination or "", ()):
        m = state.assocs.get(aid)
        if m is None or m.id == a.id or m.start is None:
            continue
        if not start <= m.start <= (end if end is not None else m.start):
            continue
        # Opened by the move SCP: its AE title, or at least its host.
        if m.calling_ae == a.called_ae or m.client_ip == a.server.rsplit(":", 1)[0]:
            out.append(m)
    return out


def _tally(subs: list[AssocMeta], originator: tuple[str | None, int | None]) -> list[int]:
    """C-STOREs of the sub-associations that belong to this C-MOVE."""
    named = any(k != (None, None) for m in subs for k in m.stores)
    seen = [0, 0, 0, 0]
    for m in subs:
        for k, tally in m.stores.items():
            if named and k != originator:
                continue  # another C-MOVE's stores (or one of the SCP's own)
            for i in range(4):
                seen[i] += tally[i]
    return seen


@check(SUBOPS, NO_SUBASSOC, cross=True)
def move_suboperations(v: AssocView) -> Iterator[Hit]:
    a = v.assoc
    if a.midstream:
        return
    for t in a.transactions:
        if t.command != "C-MOVE" or not t.move_destination or t.sent_by != "requestor":
            continue
        subs = sub_associations(v.state, a, t)
        if subs:
            ids = ", ".join(f"#{m.id}" for m in subs)
            if t.done and t.suboperations and not v.lost and not any(m.lost for m in subs):
                hit = compare_suboperations(t, _tally(subs, (a.calling_ae, t.message_id)),
                                            f"on sub-association {ids}")
                if hit is not None:
                    yield hit
            continue
        so = t.suboperations or {}
        moved = sum(x for x in (so.get("completed"), so.get("warning"), so.get("failed"),
                                so.get("remaining")) if isinstance(x, int))
        if t.status == 0xA801 or (t.done and moved == 0 and t.status_category == "Success"):
            continue  # destination unknown (its own status finding), or nothing matched
        yield _no_sub(v.state, a, t)


def _no_sub(state: CaptureState, a: Association, t: Transaction) -> Hit:
    scp_ip = a.server.rsplit(":", 1)[0]
    end = t.response_time if t.response_time is not None else a.end
    refused = [r for r in state.refused.values()
               if r.client.rsplit(":", 1)[0] == scp_ip and t.request_time is not None
               and t.request_time <= r.first_ts <= (end or r.first_ts)]
    dest = mark(t.move_destination or "?")  # a wire value: cut in text output
    text = (f"C-MOVE message {t.message_id} to destination '{dest}': the move SCP "
            f"{a.called_ae or '?'} never opened an association to that AE in this capture")
    frames: list[int] = []
    if refused:
        r = refused[0]
        r.explained = True
        frames = r.frames[:10]
        text += (f"; its TCP connection to {r.server} was refused (frame {r.frames[0]}): the "
                 f"destination's DICOM listener was not running, or the SCP's address/port "
                 f"for '{dest}' is wrong")
    else:
        text += ("; either the destination is outside the capture (another host or interface) "
                 "or the SCP could not reach it - check the host and port configured for "
                 f"'{dest}' on the SCP")
    return Hit(NO_SUBASSOC, text, t.response_frames[-1] if t.response_frames else
               t.request_frame, frames,
               severity="error" if refused else None)
