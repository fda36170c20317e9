"""Print management (PS3.4 annex H) followed per association: film session -> film box ->
image box N-SET -> N-ACTION print -> N-DELETE, and the printer's and print jobs' status.

A film session and its boxes live on one association (PS3.4 H.4.1: they are deleted when it
is released), so everything here is judged when the association ends and its findings join
that association. Printer Status Info values are the defined terms of PS3.3 C.13.9.1, said in
words where the standard says what they mean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...model import Association, Transaction
from ..rules.base import listing
from ..rules.journey import EMPTY_BOX, JOB_FAILED, NO_ROLE, NOT_PRINTED, PRINTER_STATUS
from .checks import Hit
from .decode import items, said, text

FILM_SESSION = "1.2.840.10008.5.1.1.1"
FILM_BOX = "1.2.840.10008.5.1.1.2"
IMAGE_BOXES = frozenset({"1.2.840.10008.5.1.1.4", "1.2.840.10008.5.1.1.4.1"})
PRINT_JOB = "1.2.840.10008.5.1.1.14"
PRINTER = "1.2.840.10008.5.1.1.16"
PRINT_META = frozenset({"1.2.840.10008.5.1.1.9", "1.2.840.10008.5.1.1.18"})


# PS3.3 C.13.9.1 Printer Status Info defined terms (a selection, in words).
STATUS_INFO = {
    "NORMAL": "normal", "FILM JAM": "film jam", "SUPPLY EMPTY": "film supply empty",
    "SUPPLY LOW": "film supply low", "SUPPLY MISSING": "film supply cassette missing",
    "RECEIVER FULL": "film receiver full", "RECEIVER MISSING": "film receiver missing",
    "RECEIVER EMPTY": "film receiver empty", "FILM TRANSP ERR": "film transport error",
    "PRINTER DOWN": "printer down", "PRINTER OFFLINE": "printer offline",
    "PRINTER INIT": "printer initializing", "WARMING UP": "warming up",
    "COVER OPEN": "cover open", "NO RIBBON": "ribbon missing", "RIBBON EMPTY": "ribbon empty",
    "CHEMICALS EMPTY": "processor chemicals empty", "CHEMICALS LOW": "processor chemicals low",
    "PROCESS DOWN": "processor down", "QUEUED": "job queued", "ELEC DOWN": "electronics down",
    "CALIBRATING": "calibrating", "TOP COVER OPEN": "top cover open",
}
EVENT_STATUS = {1: "NORMAL", 2: "WARNING", 3: "FAILURE"}
JOB_EVENTS = {1: "PENDING", 2: "PRINTING", 3: "DONE", 4: "FAILURE"}


def info_words(info: str | None) -> str:
    if not info:
        return "no Printer Status Info given"
    return f"{said(info)} ({STATUS_INFO[info]})" if info in STATUS_INFO else said(info)


class FilmBox:
    __slots__ = ("uid", "frame", "boxes", "set", "printed", "deleted", "session")

    def __init__(self, uid: str, frame: int | None, session: str | None) -> None:
        self.uid, self.frame, self.session = uid, frame, session
        self.boxes: list[str] = []
        self.set: set[str] = set()
        self.printed: int | None = None
        self.deleted: int | None = None


class _Assoc:
    __slots__ = ("films", "box_film", "sessions", "prints")

    def __init__(self) -> None:
        self.films: dict[str, FilmBox] = {}
        self.box_film: dict[str, str] = {}
        self.sessions: set[str] = set()
        self.prints = 0


MAX_FILMS = 1024  # film boxes followed per association


class PrintTracker:
    """Print lifecycles of the open associations; judged at each association's end."""

    def __init__(self, emit: Callable[[Hit, Any], None]) -> None:
        self.emit = emit
        self.open: dict[int, _Assoc] = {}
        self.sessions: list[dict[str, Any]] = []  # summaries for `studies` (bounded)

    def transaction(self, a: Association, t: Transaction, req: Any, rsp: Any) -> None:
        st = self.open.setdefault(a.id, _Assoc())
        ok = t.status_category in ("Success", "Warning")
        cls, uid = t.sop_class, t.sop_instance
        if t.command == "N-CREATE" and ok:
            if cls == FILM_SESSION and uid:
                st.sessions.add(uid)
            elif cls == FILM_BOX:
                rc = t.response_command or {}
                uid = uid or rc.get("AffectedSOPInstanceUID")
                if not uid or len(st.films) >= MAX_FILMS:
                    return
                refs = items(req, "ReferencedFilmSessionSequence")
                fb = FilmBox(uid, t.request_frame,
                             text(refs[0], "ReferencedSOPInstanceUID") if refs else None)
                for ref in items(rsp, "ReferencedImageBoxSequence"):
                    box = text(ref, "ReferencedSOPInstanceUID")
                    if box and len(fb.boxes) < 64:
                        fb.boxes.append(box)
                        st.box_film[box] = uid
                st.films[uid] = fb
        elif t.command == "N-SET" and cls in IMAGE_BOXES and ok and uid:
            film = st.films.get(st.box_film.get(uid, ""))
            if film is not None:
                film.set.add(uid)
        elif t.command == "N-ACTION" and ok:
            if cls == FILM_BOX and uid in st.films:
                st.films[uid].printed = t.request_frame
                st.prints += 1
            elif cls == FILM_SESSION:
                for fb in st.films.values():
                    if fb.printed is None and (fb.session in (None, uid)):
                        fb.printed = t.request_frame
                st.prints += 1
        elif t.command == "N-DELETE" and ok and cls == FILM_BOX and uid in st.films:
            st.films[uid].deleted = t.request_frame
        elif t.command == "N-EVENT-REPORT" and cls in (PRINTER, PRINT_JOB):
            self._report(a, t, req)
        elif t.command == "N-GET" and cls == PRINTER and ok:
            status = text(rsp, "PrinterStatus")
            if status in ("WARNING", "FAILURE"):
                self.emit(Hit(PRINTER_STATUS,
                              f"printer {a.called_ae if t.sent_by == 'requestor' else a.calling_ae}"
                              f" answers N-GET with Printer Status {status}: "
                              f"{info_words(text(rsp, 'PrinterStatusInfo'))}",
                              t.request_frame, [t.request_frame, *t.response_frames[:1]],
                              severity="error" if status == "FAILURE" else "warning",
                              uids={"sop_instance": uid}, association=a), None)

    def _report(self, a: Association, t: Transaction, ds: Any) -> None:
        sender = a.calling_ae if t.sent_by == "requestor" else a.called_ae
        receiver = a.called_ae if t.sent_by == "requestor" else a.calling_ae
        if t.sent_by == "requestor" and not _scp_role(a, t):
            self.emit(Hit(NO_ROLE,
                          f"{said(sender)} sent an N-EVENT-REPORT ({_name(t.sop_class)}, event "
                          f"type {t.event_type}) to {said(receiver)} on an association it "
                          "requested, without an SCP/SCU Role Selection giving it the SCP role "
                          "for that SOP class: by default the requestor is the SCU and may not "
                          "send N-EVENT-REPORTs, so a strict SCU refuses or ignores the printer's "
                          "status; report it on the print association or negotiate the role",
                          t.request_frame, [t.request_frame, a.request_frame],
                          uids={"sop_class": t.sop_class}, association=a), None)
        if t.sop_class == PRINTER:
            status = EVENT_STATUS.get(t.event_type or 0)
            if status in ("WARNING", "FAILURE"):
                self.emit(Hit(PRINTER_STATUS,
                              f"printer {said(sender)} reports {status} to {said(receiver)} "
                              f"(N-EVENT-REPORT event type {t.event_type}): "
                              f"{info_words(text(ds, 'PrinterStatusInfo'))}"
                              f"{'; films may not come out' if status == 'FAILURE' else ''}",
                              t.request_frame, [t.request_frame],
                              severity="error" if status == "FAILURE" else "warning",
                              uids={"sop_instance": t.sop_instance}, association=a), None)
        elif t.event_type == 4:
            self.emit(Hit(JOB_FAILED,
                          f"print job {t.sop_instance} on {said(sender)} FAILED (N-EVENT-REPORT to "
                          f"{said(receiver)}): {info_words(text(ds, 'ExecutionStatusInfo'))}",
                          t.request_frame, [t.request_frame],
                          uids={"sop_instance": t.sop_instance}, association=a), None)

    def association_ended(self, a: Association) -> None:
        st = self.open.pop(a.id, None)
        if st is None:
            return
        printer = a.called_ae
        for fb in st.films.values():
            if fb.printed is None:
                end = "deleted unprinted" if fb.deleted else "left when the association ended"
                self.emit(Hit(NOT_PRINTED,
                              f"film box {fb.uid} created by {said(a.calling_ae)} on "
                              f"{said(printer)} (frame {fb.frame}) was never printed: no "
                              f"N-ACTION on the film box or its session, {end}; the film "
                              "never came out",
                              fb.frame, [fb.frame, fb.deleted],
                              uids={"film_box": fb.uid, "film_session": fb.session},
                              association=a), None)
            else:
                empty = [b for b in fb.boxes if b not in fb.set]
                if empty:
                    pos = [str(fb.boxes.index(b) + 1) for b in empty]
                    self.emit(Hit(EMPTY_BOX,
                                  f"film box {fb.uid} on {said(printer)} was printed (frame "
                                  f"{fb.printed}) with {len(empty)} of its {len(fb.boxes)} "
                                  f"image box(es) never set (position(s) {listing(pos, 6)}): "
                                  "the film comes out with empty frames",
                                  fb.printed, [fb.frame, fb.printed],
                                  uids={"film_box": fb.uid, "image_boxes": empty[:20]},
                                  association=a), None)
        if st.films and len(self.sessions) < 1024:
            self.sessions.append({
                "type": "film_session", "association": a.id, "scu": a.calling_ae,
                "printer": printer, "sessions": sorted(st.sessions),
                "film_boxes": [{"sop_instance": fb.uid, "image_boxes": len(fb.boxes),
                                "image_boxes_set": len(fb.set), "printed_frame": fb.printed,
                                "deleted_frame": fb.deleted} for fb in st.films.values()]})

    def finish(self) -> None:
        self.open.clear()


def _name(uid: str | None) -> str:
    from ...uids import uid_name

    return uid_name(uid) or (uid or "?")


def _scp_role(a: Association, t: Transaction) -> bool:
    """Did the requestor propose, and the acceptor accept, the SCP role for this class?"""
    wanted = {t.sop_class, *PRINT_META}
    proposed = {r.get("sop_class") for r in (a.requestor.roles if a.requestor else [])
                if r.get("scp_role")}
    accepted = {r.get("sop_class") for r in (a.acceptor.roles if a.acceptor else [])
                if r.get("scp_role")}
    return bool(wanted & proposed & accepted)
