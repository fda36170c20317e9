"""Every PDU of the associations, with its frame and time, taken from the analyzer's own parse.

The model keeps per-association PDU counts and key frames, not each PDU with its timestamp;
``--level pdu`` needs every PDU, and ``--timing`` the time of A-ASSOCIATE-AC, A-RELEASE and
pending responses. Parsing the capture a second time would duplicate the engine (flows,
reassembly, mid-stream pick-up), so :class:`RecordingAnalyzer` listens to the upper-layer events
the analyzer already makes (the ``on_ul_events`` hook), asking for P-DATA-TF header events
(``pdu_events``) only when every PDU is wanted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dissectors.ul import events as ev
from dissectors.ul import pdu
from dissectors.ul.pdu import PDU_NAMES

from ..analysis.engine import Analyzer

_CONTROL = {ev.AssociateRQ: PDU_NAMES[pdu.A_ASSOCIATE_RQ],
            ev.AssociateAC: PDU_NAMES[pdu.A_ASSOCIATE_AC],
            ev.AssociateRJ: PDU_NAMES[pdu.A_ASSOCIATE_RJ],
            ev.ReleaseRQ: PDU_NAMES[pdu.A_RELEASE_RQ], ev.ReleaseRP: PDU_NAMES[pdu.A_RELEASE_RP],
            ev.Abort: PDU_NAMES[pdu.A_ABORT]}
_FIXED_LENGTH = {"A-ASSOCIATE-RJ": 4, "A-RELEASE-RQ": 4, "A-RELEASE-RP": 4, "A-ABORT": 4}


@dataclass(slots=True)
class Pdv:
    """One PDV of a P-DATA-TF: a command fragment (bytes kept, they are small) or data."""

    context_id: int
    last: bool
    length: int
    command: bytes | None = None  # None: a data set fragment


@dataclass(slots=True)
class Pdu:
    side: int  # 0: sent by the association requestor, 1: by the acceptor
    name: str  # "A-ASSOCIATE-RQ", "P-DATA-TF", ...
    frame: int  # its header's; for a P-DATA-TF with a command, where the command completed
    ts: float | None
    length: int | None = None  # PDU length field
    event: object = None  # the upper-layer event, for control PDUs
    pdvs: list[Pdv] = field(default_factory=list)


@dataclass
class WireLog:
    """PDUs per association id, and the time of every frame a message or PDU ended in."""

    pdus: dict[int, list[Pdu]] = field(default_factory=dict)
    frame_ts: dict[int, float] = field(default_factory=dict)
    with_pdata: bool = False

    def time(self, frame: int | None) -> float | None:
        return None if frame is None else self.frame_ts.get(frame)


class RecordingAnalyzer(Analyzer):
    """An :class:`Analyzer` that also fills a :class:`WireLog`.

    Control PDUs and command frames are recorded (a few per message), P-DATA-TF PDUs only
    with ``pdata=True``; all of it only for the ``only`` association ids when given.
    """

    def __init__(self, *, pdata: bool = False, only: Iterable[int] | None = None,
                 **kw: Any) -> None:
        super().__init__(pdu_events=pdata, **kw)
        self.log = WireLog(with_pdata=pdata)
        self._only = None if only is None else frozenset(only)
        self._open_pdata: dict[tuple[int, int], Pdu] = {}
        self.on_ul_events.append(self._on_ul_events)

    def _on_ul_events(self, assoc: Any, side: int, evs: list) -> None:
        if self._wanted(assoc.id):
            self._record(assoc.id, side, evs)

    def _wanted(self, assoc_id: int) -> bool:
        return self._only is None or assoc_id in self._only

    def _record(self, assoc_id: int, side: int, evs: list) -> None:
        log = self.log
        frame_ts = log.frame_ts
        pdata = log.with_pdata
        pdus = log.pdus.setdefault(assoc_id, [])
        for e in evs:
            t = type(e)
            name = _CONTROL.get(t)
            if name is not None:
                length = getattr(e, "length", None) or _FIXED_LENGTH.get(name)
                pdus.append(Pdu(side, name, e.frame, e.ts, length, e))
                frame_ts[e.frame] = e.ts
                self._open_pdata.pop((assoc_id, side), None)
            elif t is ev.PdvCommand:
                frame_ts[e.frame] = e.ts
                if pdata:
                    p = self._pdv(assoc_id, side, Pdv(e.context_id, e.last, len(e.value),
                                                      e.value))
                    if p is not None and e.last:  # shown where the model puts the message
                        p.frame, p.ts = e.frame, e.ts
            elif not pdata:
                continue
            elif t is ev.PDataTF:
                p = Pdu(side, "P-DATA-TF", e.frame, e.ts, e.length)
                pdus.append(p)
                frame_ts[e.frame] = e.ts
                self._open_pdata[(assoc_id, side)] = p
            elif t is ev.PdvData:
                self._pdv(assoc_id, side, Pdv(e.context_id, e.last, e.length))

    def _pdv(self, assoc_id: int, side: int, pdv: Pdv) -> Pdu | None:
        p = self._open_pdata.get((assoc_id, side))
        if p is not None:
            p.pdvs.append(pdv)
        return p
