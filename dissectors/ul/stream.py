"""Sans-IO parser of one direction of a DICOM upper-layer stream (PS3.8 section 9).

``feed(data, frame, ts)`` takes the next in-order bytes of the TCP stream and appends events to
``self.events`` (the caller drains and clears it). ``gap(n, ...)`` says that n bytes are missing
from the capture; ``close(...)`` that the stream ended. No I/O, no knowledge of TCP.

Why it is shaped this way: in a night of C-STOREs nearly every byte is data set payload. Those
bytes are counted, never copied: while inside a data PDV the parser only subtracts lengths (the
first lines of ``feed``). Only small PDUs (association negotiation, release, abort) and command
fragments are buffered, each bounded by a cap. A length that cannot be right (larger than the
cap, an item overrunning its PDU, an unknown PDU type) does not allocate anything: the parser
reports it and hunts for the next plausible PDU header, counting what it skips.
"""

from __future__ import annotations

import re
import struct

from .events import (
    Abort,
    AssociateRJ,
    DataComplete,
    Malformed,
    PDataTF,
    PdvBytes,
    PdvCommand,
    PdvData,
    PdvDataRun,
    ReleaseRP,
    ReleaseRQ,
    Resync,
    StreamGap,
)
from .items import parse_associate
from .pdu import PDU_NAMES

_HDR = struct.Struct("!BxI")
_U32 = struct.Struct("!I")
_PDV = struct.Struct("!IBB")
_PDATA_PDV = struct.Struct("!BxIIBB")  # P-DATA-TF header and its first PDV item header

# States
HUNT = 0  # looking for a plausible PDU header
HEADER = 1  # reading a 6-byte PDU header
BODY = 2  # buffering a non-P-DATA PDU
PDV_HEADER = 3  # reading a 6-byte PDV item header inside a P-DATA-TF
PDV_CMD = 4  # buffering a command fragment
PDV_DATA = 5  # counting data set fragment bytes
SKIP_PDU = 6  # skipping the rest of a PDU we gave up on


DEFAULT_MAX_ASSOCIATE_PDU = 1 << 20  # an A-ASSOCIATE-RQ with 128 contexts is ~20 KB
DEFAULT_MAX_COMMAND = 1 << 16  # a command set is a few hundred bytes
HUNT_MAX_PDATA = 1 << 28  # a P-DATA-TF length beyond this is not taken as a resync point
# A P-DATA-TF longer than the receiver's maximum (or, the maximum unknown, than this) is
# suspect: its PDV items are cross-checked against a PDU header where each item ends.
SUSPECT_PDATA = 1 << 24

_CANDIDATE = re.compile(rb"[\x01-\x07]\x00", re.DOTALL)


def plausible_pdu(buf: bytes | bytearray | memoryview, i: int) -> bool | None:
    """Is there a believable PDU header at buf[i]? None: need more bytes to tell.

    Used to resynchronise after a gap and to pick up a capture that starts mid-association:
    it checks more than the header (the first PDV item of a P-DATA-TF, the protocol version of
    an A-ASSOCIATE) so that random payload bytes are rarely taken for a boundary.
    """
    n = len(buf) - i
    if n < 6:
        return None
    t = buf[i]
    if buf[i + 1] != 0 or not 1 <= t <= 7:
        return False
    length = _U32.unpack_from(buf, i + 2)[0]
    if t == 4:
        if not 6 <= length <= HUNT_MAX_PDATA:
            return False
        if n < 12:
            return None
        pdv = _U32.unpack_from(buf, i + 6)[0]
        return 2 <= pdv <= length - 4 and buf[i + 10] & 1 == 1 and buf[i + 11] <= 3
    if t in (1, 2):
        if not 68 <= length <= DEFAULT_MAX_ASSOCIATE_PDU:
            return False
        if n < 10:
            return None
        return buf[i + 6] == 0 and buf[i + 7] == 1 and buf[i + 8] == 0 and buf[i + 9] == 0
    if length != 4:
        return False
    if n < 10:
        return None
    if t in (5, 6):
        return buf[i + 6] == 0 and buf[i + 7] == 0
    if t == 7:
        return buf[i + 8] in (0, 1, 2) and buf[i + 9] <= 6
    return buf[i + 7] in (1, 2) and buf[i + 8] in (1, 2, 3)  # A-ASSOCIATE-RJ


class ULStream:
    """One direction of an association's byte stream, as PS3.8 PDUs."""

    __slots__ = ("events", "state", "_part", "_ptype", "_pdu_left", "_pdu_len",
                 "_body", "_pdv_left", "_pdv_ctx", "_pdv_last", "_cmd", "_hunt", "_skipped",
                 "_hunt_reason", "_partial", "_frame0", "max_associate_pdu", "max_command",
                 "pdus", "bytes_in", "data_bytes", "pdata_events", "pdata_count", "pdata_limit",
                 "pdata_over", "collect_data", "collect_contexts", "collecting", "_paused",
                 "countable", "_granted", "_suspect", "length_lies")

    def __init__(self, *, synced: bool = True,
                 max_associate_pdu: int = DEFAULT_MAX_ASSOCIATE_PDU,
                 max_command: int = DEFAULT_MAX_COMMAND, pdata_events: bool = True) -> None:
        self.events: list = []
        # P-DATA-TF headers are counted here; an event per header is optional because the
        # analyzer only needs the count and the max-length check, which happen here too.
        self.pdata_events = pdata_events
        self.pdata_count = 0  # complete or in-progress P-DATA-TF PDUs read
        self.pdata_limit = 0  # max PDU length the receiver announced (0: no limit)
        self.pdata_over = 0  # P-DATA-TF PDUs longer than pdata_limit
        # Exports ask for data set bytes: then each data fragment's bytes come as PdvBytes
        # events (copies), for every context (collect_data) or for the presentation contexts
        # in collect_contexts (e.g. queries, not images). Off by default: bytes are counted.
        self.collect_data = False
        self.collect_contexts: frozenset[int] | set[int] = frozenset()
        self.collecting = False  # the current data fragment's bytes are being collected
        self._paused: frozenset[int] = frozenset()  # contexts whose current data set is done
        # Data set bytes of the current PDV that the caller may count instead of delivering
        # (the engine's fast path: ``if n < ul.countable: ul.countable -= n``); the parser
        # settles what was counted (lengths, byte counts) at its next call.
        self.countable = 0
        self._granted = 0
        self.state = HEADER if synced else HUNT
        self._part = bytearray()  # partial PDU or PDV header
        self._ptype = 0
        self._pdu_left = 0  # bytes left in the current PDU (after its header)
        self._pdu_len = 0
        self._body = bytearray()
        self._pdv_left = 0
        self._pdv_ctx = 0
        self._pdv_last = False
        self._cmd = bytearray()
        self._hunt = bytearray()
        self._skipped = 0
        self._hunt_reason = "capture starts inside the association" if not synced else ""
        self._partial = False  # the current data set lost bytes to a gap
        self._frame0 = 0
        self.max_associate_pdu = max_associate_pdu
        self.max_command = max_command
        self.pdus = 0  # PDU headers read
        self._suspect = False  # the current P-DATA-TF's length is past any believable one
        self.length_lies = 0  # P-DATA-TF lengths found to overstate the PDU
        self.bytes_in = 0
        self.data_bytes = 0  # data set fragment bytes counted

    def set_max_pdu(self, max_pdu: int) -> None:
        """The receiver's Maximum Length (PS3.8 D.1; 0: unlimited): a longer P-DATA-TF is
        reported (UL-PDU-TOO-LONG), once."""
        self.pdata_limit = max_pdu

    def collect(self, everything: bool = False, contexts=()) -> None:
        """Copy data set bytes (as PdvBytes events) from now on: of every presentation context
        (``everything``) and of ``contexts`` (added to those asked for before, never removed)."""
        if self._granted:
            self._settle()
        if everything:
            self.collect_data = True
        if contexts:
            self.collect_contexts = frozenset(self.collect_contexts) | frozenset(contexts)
        self._grant()

    def pause(self, ctx: int) -> None:
        """Copy no more of the data set now arriving on presentation context ``ctx``: its
        remaining fragments are counted like uncollected ones, up to its last fragment; the next
        data set on ``ctx`` is collected again (a reader that has what it needs, such as the
        attributes before Pixel Data, says so through :mod:`dicomsniff.analysis.collect`)."""
        if self._granted:
            self._settle()
        self._paused = self._paused | {ctx}
        if self.state == PDV_DATA and self._pdv_ctx == ctx:
            self.collecting = False
        self._grant()

    def resume(self, ctx: int) -> None:
        """Undo :meth:`pause` (the data set it was meant for has ended)."""
        if self._granted:
            self._settle()
        if ctx in self._paused:
            self._paused = self._paused - {ctx}
            if self.state == PDV_DATA and self._pdv_ctx == ctx:
                self.collecting = self.collect_data or ctx in self.collect_contexts
        self._grant()

    # -- bulk runs (the engine's compiled walker, dicomsniff/analysis/accel.py) -------------

    def crossing(self) -> tuple[int, int, bool] | None:
        """May a walker that counts this PDV's ``countable`` bytes go on into the next
        P-DATA-TF? None: stop where the countable bytes end. Otherwise (context ID, the
        longest P-DATA-TF believed, whether the current PDV may be left): the walker may
        read a next P-DATA-TF header only as :meth:`take`'s first branch would (one data
        PDV of this context, read in the same segment, going on past it), and hand what it
        read to :meth:`crossed`. Never while PDU events are asked for, a command or data set
        fragment is being copied, or the PDV ends its message or not its PDU."""
        if self.state != PDV_DATA or self.collecting or self.pdata_events or self._part:
            return None
        ctx = self._pdv_ctx
        if (self.collect_data or ctx in self.collect_contexts) and ctx not in self._paused:
            return None  # the next data set fragment on ctx is copied: take() reads it
        leave = not self._pdv_last and self._pdu_left == self._pdv_left
        return ctx, self.pdata_limit or SUSPECT_PDATA, leave

    def crossed(self, headers: list, countable: int, at_header: bool, base: int = 0) -> None:
        """A walker counted the rest of this PDV and read the next P-DATA-TF headers, as
        :meth:`crossing` allowed: ``headers`` are (frame - ``base``, ts, PDU length, context
        ID, message control header, value length), in order, each followed by its data set
        bytes, all counted but ``countable`` of the last; ``at_header``: the last PDV ended
        too, with the segment it ended in, and a PDU header comes next. The same state as
        :meth:`take` leaves for those bytes; their ``PdvData`` events as one ``PdvDataRun``
        (all of one context: the walker crosses into no other)."""
        self.countable = 0
        self._settle()  # the PDV's bytes: all counted
        k = len(headers)
        if k:
            first = headers[0]
            i, ts, plen, ctx, mch, vlen = headers[-1]
            total = sum([h[5] for h in headers]) if k > 1 else vlen
            counted = total if at_header else total - vlen
            self.pdus += k
            self.pdata_count += k
            self.bytes_in += 12 * k + counted
            self.data_bytes += counted
            self.events.append(PdvDataRun(base + i, ts, ctx, mch & 2 == 2, total, k,
                                          base + first[0], headers, base))
            self._ptype = 4
            self._suspect = False
            self._pdu_len = plen
            self._pdv_ctx = ctx
            self._pdv_last = mch & 2 == 2
        if at_header:
            self._pdu_left = self._pdv_left = 0
            self.state = HEADER
            self._granted = self.countable = 0
        else:
            self._pdu_left = plen - 6
            self._pdv_left = vlen
            self.collecting = False
            self.state = PDV_DATA
            self._granted = vlen
            self.countable = countable

    # -- small-message runs (the engine's compiled walker, dissectors/_small.c) ---------------

    def walk_state(self) -> tuple | None:
        """What the compiled walker of small-message runs needs to parse this direction's next
        bytes as :meth:`take` would in its common branches: (state, PDU left, PDV left,
        context ID, last fragment, PDU type, PDU length, suspect, partial, the longest
        P-DATA-TF believed, the command cap, collect everything, contexts collected, the
        header begun, the command fragment begun). None when the next bytes need more than
        those branches: a data set being copied or paused, PDU events asked for, a non-P-DATA
        PDU, hunting, events not handed over yet. Counted bytes are settled: :meth:`walked`
        must follow (it grants them again)."""
        if self._granted:
            self._settle()
        st = self.state
        if (st < HEADER or st > PDV_DATA or st == BODY or self.pdata_events or self._paused
                or self.events or (st == PDV_DATA and self.collecting)):
            return None
        return (st, self._pdu_left, self._pdv_left, self._pdv_ctx, self._pdv_last,
                self._ptype, self._pdu_len, self._suspect, self._partial,
                self.pdata_limit or SUSPECT_PDATA, self.max_command, self.collect_data,
                self.collect_contexts, bytes(self._part), bytes(self._cmd))

    def walked(self, got: tuple | None) -> None:
        """The walker parsed bytes from the :meth:`walk_state` it was given: its new state,
        and what it adds to the counters (None: it parsed nothing of this direction)."""
        if got is not None:
            (self.state, self._pdu_left, self._pdv_left, self._pdv_ctx, self._pdv_last,
             self._ptype, self._pdu_len, self._suspect, self._partial, pdus, pdata, nbytes,
             data, entered, part, cmd) = got
            if part or self._part:
                self._part = bytearray(part)
            if cmd or self._cmd:
                self._cmd = bytearray(cmd)
            self.pdus += pdus
            self.pdata_count += pdata
            self.bytes_in += nbytes
            self.data_bytes += data
            if entered:  # a data fragment began: it is counted, not copied
                self.collecting = False
        if self.state == PDV_DATA and not self.collecting:  # _grant()
            self._granted = self.countable = self._pdv_left
        else:
            self._granted = self.countable = 0

    # -- the hot path ---------------------------------------------------------------------

    def _settle(self) -> None:
        """Account for the bytes the caller counted out of ``countable``."""
        used = self._granted - self.countable
        if used:
            self._pdv_left -= used
            self._pdu_left -= used
            self.data_bytes += used
            self.bytes_in += used
        self._granted = self.countable = 0

    def _grant(self) -> None:
        """After parsing: inside a data PDV nobody collects, the rest of it is countable."""
        if self.state == PDV_DATA and not self.collecting:
            self._granted = self.countable = self._pdv_left
        else:
            self._granted = self.countable = 0

    def feed(self, data: bytes | memoryview, frame: int, ts: float) -> None:
        """Consume the next in-order bytes of the stream."""
        if self._granted:
            self._settle()
        n = len(data)
        if self.state == PDV_DATA and not self.collecting:
            left = self._pdv_left
            if n < left:  # the PDV (and so its PDU) goes on past this chunk
                self._pdv_left = left - n
                self._pdu_left -= n
                self.data_bytes += n
                self.bytes_in += n
                self._grant()
                return
        self.take(memoryview(data), 0, n, frame, ts)

    def take(self, mv: bytes | memoryview, pos: int, n: int, frame: int, ts: float) -> None:
        """Parse ``mv[pos:n]``, the next in-order bytes, without slicing it: the engine's fast
        path hands a captured frame and its TCP payload's bounds, for bytes it could not count
        out of ``countable`` (look at ``events`` after)."""
        granted = self._granted
        if granted:  # _settle(), inlined: once per data PDV on the fast path
            used = granted - self.countable
            if used:
                self._pdv_left -= used
                self._pdu_left -= used
                self.data_bytes += used
                self.bytes_in += used
            self._granted = self.countable = 0
        self.bytes_in += n - pos
        ev = self.events
        while pos < n:
            st = self.state
            if st == HEADER and n - pos >= 12 and mv[pos] == 4 and not self._part:
                # Fast path: a P-DATA-TF header and its first PDV item header read at once
                # (dcmtk writes these 12 bytes as a segment of their own), and a value that is
                # all here taken at once. Anything unusual goes the general way below.
                _t, plen, ilen, ctx, mch = _PDATA_PDV.unpack_from(mv, pos)
                vlen = ilen - 2
                if (2 < ilen and ilen + 4 <= plen and mch <= 3 and not vlen & 1
                        and (vlen <= self.max_command if mch & 1 else not (
                            (self.collect_data or ctx in self.collect_contexts)
                            and ctx not in self._paused))
                        and plen <= (self.pdata_limit or SUSPECT_PDATA)):
                    self.pdus += 1
                    self.pdata_count += 1
                    self._ptype = 4
                    self._suspect = False
                    self._pdu_len = plen
                    left = plen - 6
                    self._pdv_ctx = ctx
                    last = mch & 2 == 2
                    self._pdv_last = last
                    if self.pdata_events:
                        ev.append(PDataTF(frame, ts, plen))
                    pos += 12
                    if n - pos >= vlen:
                        end = pos + vlen
                        if mch & 1:
                            ev.append(PdvCommand(frame, ts, ctx, last, bytes(mv[pos:end])))
                        else:
                            ev.append(PdvData(frame, ts, ctx, last, vlen))
                            self.data_bytes += vlen
                            if last:
                                ev.append(DataComplete(frame, ts, ctx, self._partial))
                                self._partial = False
                                if self._paused:
                                    self._paused = self._paused - {ctx}
                        pos = end
                        left -= vlen
                        self._pdu_left = left
                        self._pdv_left = 0
                        self.state = PDV_HEADER if left > 0 else HEADER
                    else:
                        self._pdu_left = left
                        self._pdv_left = vlen
                        if mch & 1:
                            self.state = PDV_CMD
                        else:
                            ev.append(PdvData(frame, ts, ctx, last, vlen))
                            self.collecting = False
                            self.state = PDV_DATA
                    continue
            if st == PDV_DATA:
                take = self._pdv_left
                if take > n - pos:
                    take = n - pos
                if self.collecting and take:
                    ev.append(PdvBytes(frame, ts, self._pdv_ctx, bytes(mv[pos:pos + take])))
                self._pdv_left -= take
                self._pdu_left -= take
                self.data_bytes += take
                pos += take
                if self._pdv_left == 0:
                    if self._pdv_last:
                        ev.append(DataComplete(frame, ts, self._pdv_ctx, self._partial))
                        self._partial = False
                        if self._paused:
                            self._paused = self._paused - {self._pdv_ctx}
                    self.state = PDV_HEADER if self._pdu_left > 0 else HEADER  # _after_pdv()
            elif st == PDV_CMD:
                left = self._pdv_left
                if not self._cmd and n - pos >= left:  # whole fragment here: one copy
                    ev.append(PdvCommand(frame, ts, self._pdv_ctx, self._pdv_last,
                                         bytes(mv[pos:pos + left])))
                    self._pdv_left = 0
                    self._pdu_left -= left
                    pos += left
                    self.state = PDV_HEADER if self._pdu_left > 0 else HEADER  # _after_pdv()
                    continue
                take = min(left, n - pos)
                self._cmd += mv[pos:pos + take]
                self._pdv_left -= take
                self._pdu_left -= take
                pos += take
                if self._pdv_left == 0:
                    ev.append(PdvCommand(frame, ts, self._pdv_ctx, self._pdv_last,
                                         bytes(self._cmd)))
                    self._cmd = bytearray()
                    self._after_pdv()
            elif st == HEADER or st == PDV_HEADER:
                part = self._part
                if not part and n - pos >= 6:  # the usual case: parse in place
                    hdr, hoff = mv, pos
                    pos += 6
                else:
                    take = min(6 - len(part), n - pos)
                    part += mv[pos:pos + take]
                    pos += take
                    if len(part) < 6:
                        continue
                    hdr, hoff = part, 0
                    self._part = bytearray()
                if st == HEADER:
                    bad = self._on_pdu_header(hdr, hoff, frame, ts)
                else:
                    bad = self._on_pdv_header(hdr, hoff, frame, ts)
                if bad:
                    # Hunt again: right after the first byte of a rejected PDU header, or from
                    # the first byte of a rejected PDV header (a PDU may start right there, when
                    # the previous PDU's length overstated it).
                    skip = 1 if st == HEADER else 0
                    rest = bytes(hdr[hoff + skip:hoff + 6])
                    self._start_hunt(bad)
                    self._skipped += skip
                    self._hunt = bytearray(rest)
                    self._frame0 = frame
            elif st == BODY:
                take = min(self._pdu_left, n - pos)
                self._body += mv[pos:pos + take]
                self._pdu_left -= take
                pos += take
                if self._pdu_left == 0:
                    body = bytes(self._body)
                    self._body = bytearray()
                    self.state = HEADER
                    self._on_pdu(body, frame, ts)
            elif st == SKIP_PDU:
                take = min(self._pdu_left, n - pos)
                self._pdu_left -= take
                pos += take
                if self._pdu_left == 0:
                    self.state = HEADER
            else:  # HUNT
                pos = self._hunt_in(mv, pos, n, frame, ts)
        if self.state == PDV_DATA and not self.collecting:  # _grant(), inlined
            self._granted = self.countable = self._pdv_left

    # -- PDU framing ----------------------------------------------------------------------
    def _on_pdu_header(self, hdr, off: int, frame: int, ts: float) -> str:
        """Start a PDU. Returns a reason string if the header is not believable."""
        ptype, length = _HDR.unpack_from(hdr, off)
        if ptype not in PDU_NAMES:
            self.events.append(Malformed(frame, ts, "UL-PDU-TYPE",
                                         f"unrecognized PDU type 0x{ptype:02X} "
                                         f"(length field {length}); PS3.8 9.3.1"))
            return f"after unrecognized PDU type 0x{ptype:02X}"
        self.pdus += 1
        self._ptype = ptype
        self._pdu_len = length
        self._pdu_left = length
        self._suspect = False
        if ptype == 4:
            self.pdata_count += 1
            self._suspect = length > (self.pdata_limit or SUSPECT_PDATA)
            if self.pdata_events:
                self.events.append(PDataTF(frame, ts, length))
            if self.pdata_limit and length > self.pdata_limit:
                self.pdata_over += 1
                if self.pdata_over == 1:
                    self.events.append(Malformed(
                        frame, ts, "UL-PDU-TOO-LONG",
                        f"P-DATA-TF of {length} bytes, more than the {self.pdata_limit} the "
                        "receiver announced as its maximum length (PS3.8 D.1)"))
            if length == 0:
                self.events.append(Malformed(frame, ts, "UL-PDATA-EMPTY",
                                             "P-DATA-TF with no PDV item (PS3.8 9.3.5)"))
                self.state = HEADER
                return ""
            if length < 6:
                self.events.append(Malformed(frame, ts, "UL-PDATA-SHORT",
                                             f"P-DATA-TF of {length} bytes cannot hold a PDV"))
                self.state = SKIP_PDU
                return ""
            self.state = PDV_HEADER
            return ""
        cap = self.max_associate_pdu if ptype in (1, 2) else 1024
        if length > cap:
            self.events.append(Malformed(frame, ts, "UL-PDU-LENGTH",
                                         f"{PDU_NAMES[ptype]} length {length} exceeds the "
                                         f"{cap}-byte limit for this PDU type; not buffered"))
            self.pdus -= 1
            return f"after an implausible {PDU_NAMES[ptype]} length"
        if length == 0:
            self._on_pdu(bytes(hdr[off:off + 6]), frame, ts)
            self.state = HEADER
            return ""
        self._body = bytearray(hdr[off:off + 6])
        self.state = BODY
        return ""

    def _on_pdu(self, pdu: bytes, frame: int, ts: float) -> None:
        """A whole non-P-DATA PDU (header included) has arrived."""
        ev = self.events
        ptype = self._ptype
        if ptype in (1, 2):
            problems: list[tuple[str, str]] = []
            try:
                e = parse_associate(pdu, frame, ts, problems)
            except (IndexError, struct.error) as exc:  # defensive: never let a PDU crash us
                problems.append(("UL-ASSOC-PARSE", f"could not parse {PDU_NAMES[ptype]}: {exc}"))
                e = None
            for code, msg in problems:
                ev.append(Malformed(frame, ts, code, msg))
            if e is not None:
                ev.append(e)
            return
        body = pdu[6:]
        name = PDU_NAMES[ptype]
        if len(body) != 4:
            ev.append(Malformed(frame, ts, "UL-PDU-LENGTH",
                                f"{name} length is {len(body)}, PS3.8 fixes it at 4"))
            if len(body) < 4:
                body = body + bytes(4 - len(body))
        if ptype == 5:
            ev.append(ReleaseRQ(frame, ts))
        elif ptype == 6:
            ev.append(ReleaseRP(frame, ts))
        elif ptype == 7:
            ev.append(Abort(frame, ts, body[2], body[3]))
        else:
            ev.append(AssociateRJ(frame, ts, body[1], body[2], body[3]))

    def _on_pdv_header(self, hdr, off: int, frame: int, ts: float) -> str:
        length, ctx, mch = _PDV.unpack_from(hdr, off)
        if self._suspect and self._pdu_left < self._pdu_len and self._lied(hdr, off, length,
                                                                            ctx, mch):
            # The PDU ended where its PDV items say: what follows is the next PDU's header.
            said, used = self._pdu_len, self._pdu_len - self._pdu_left
            self.length_lies += 1
            limit = (f"the receiver's maximum of {self.pdata_limit}" if self.pdata_limit
                     else f"{SUSPECT_PDATA} bytes")
            self.events.append(Malformed(
                frame, ts, "UL-PDU-LENGTH-LIE",
                f"P-DATA-TF length field says {said} bytes, past {limit}, but its PDV items "
                f"end after {used} bytes where the next PDU header follows: the length is "
                "wrong (no receiver could have read it) and framing continues at the PDV "
                "items (PS3.8 9.3.5, D.1)"))
            self._suspect = False
            self.state = HEADER
            return self._on_pdu_header(hdr, off, frame, ts)
        if length < 2 or length + 4 > self._pdu_left:
            self.events.append(Malformed(frame, ts, "UL-PDV-LENGTH",
                                         f"PDV item length {length} does not fit the "
                                         f"{self._pdu_left} bytes left in its P-DATA-TF "
                                         "(PS3.8 9.3.5.1)"))
            return "after a PDV item that overran its PDU"
        self._pdu_left -= 6
        vlen = length - 2
        self._pdv_left = vlen
        self._pdv_ctx = ctx
        self._pdv_last = bool(mch & 2)
        if mch > 3:
            self.events.append(Malformed(frame, ts, "UL-PDV-MCH",
                                         f"message control header 0x{mch:02X} has reserved bits "
                                         "set (PS3.8 E.2)"))
        if vlen & 1:
            self.events.append(Malformed(frame, ts, "UL-PDV-ODD",
                                         f"PDV fragment of odd length {vlen} (PS3.8 E.1 requires "
                                         "an even number of bytes)"))
        if mch & 1:
            if vlen > self.max_command:
                self.events.append(Malformed(frame, ts, "UL-COMMAND-SIZE",
                                             f"command fragment of {vlen} bytes exceeds the "
                                             f"{self.max_command}-byte cap; skipped"))
                self.state = PDV_DATA  # counted and skipped, never buffered
                self._pdv_last = False
                self.collecting = False
            else:
                self.state = PDV_CMD
        else:
            self.events.append(PdvData(frame, ts, ctx, self._pdv_last, vlen))
            self.state = PDV_DATA
            self.collecting = ((self.collect_data or ctx in self.collect_contexts)
                               and ctx not in self._paused)
        if vlen == 0:
            if self.state == PDV_CMD:
                self.events.append(PdvCommand(frame, ts, ctx, self._pdv_last, b""))
            elif self._pdv_last:
                self.events.append(DataComplete(frame, ts, ctx, self._partial))
                self._partial = False
                self._paused = self._paused - {ctx}
            self._after_pdv()
        return ""

    def _lied(self, hdr, off: int, length: int, ctx: int, mch: int) -> bool:
        """Does a PDU header, rather than a PDV item header, start at ``hdr[off]``?

        Only asked inside a suspect P-DATA-TF, at a PDV item boundary. A PDV item header
        whose length overruns the receiver's maximum, whose presentation context ID is even
        (PS3.8 9.3.2.2: IDs are odd) or whose message control header has reserved bits set
        is not believable; a PDU header that ``plausible_pdu`` accepts there is.
        """
        limit = self.pdata_limit or SUSPECT_PDATA
        if length + 4 <= limit and ctx & 1 and mch <= 3:
            return False  # a believable PDV item: keep reading this PDU
        view = bytes(hdr[off:off + 12]) if isinstance(hdr, memoryview) else bytes(hdr[off:])
        ok = plausible_pdu(view, 0)
        if ok is None:  # only the 6-byte header is at hand: judge it alone
            t, plen = _HDR.unpack_from(view, 0)
            ok = t == 4 and 6 <= plen <= limit
        return bool(ok)

    def _after_pdv(self) -> None:
        if self._pdu_left > 0:
            self.state = PDV_HEADER
        else:
            self.state = HEADER

    # -- resynchronisation ----------------------------------------------------------------
    def _start_hunt(self, reason: str) -> None:
        self.state = HUNT
        self._paused = frozenset()  # the data sets in flight end here (partial)
        self._hunt = bytearray()
        self._body = bytearray()
        self._cmd = bytearray()
        self._part = bytearray()
        self._hunt_reason = reason

    def _hunt_in(self, mv: memoryview, pos: int, end: int, frame: int, ts: float) -> int:
        """Scan mv[pos:end] for a plausible PDU header; returns the new position in mv."""
        if not self._hunt:
            self._frame0 = frame
        buf = self._hunt
        base = len(buf)
        buf += mv[pos:end]
        consumed_to = end
        for m in _CANDIDATE.finditer(buf):
            i = m.start()
            ok = plausible_pdu(buf, i)
            if ok is None:
                # Keep from i on and wait for more bytes.
                self._skipped += i
                self._hunt = bytearray(buf[i:])
                return consumed_to
            if ok:
                self._skipped += i
                if self._skipped:
                    self.events.append(Resync(frame, ts, self._skipped, self._hunt_reason))
                self._skipped = 0
                self._hunt = bytearray()
                self.state = HEADER
                # Position in mv of buf[i]: bytes before mv[pos] came from the old buffer.
                if i >= base:
                    return pos + (i - base)
                # The header began in earlier bytes: replay them, then continue in mv.
                replay = memoryview(bytes(buf[i:base]))
                self.bytes_in -= len(replay)  # counted when they first came
                self.take(replay, 0, len(replay), frame, ts)
                return pos
        keep = min(len(buf), 11)
        self._skipped += len(buf) - keep
        self._hunt = bytearray(buf[len(buf) - keep:])
        return consumed_to

    # -- capture events -------------------------------------------------------------------
    def gap(self, missing: int, frame: int, ts: float) -> None:
        """``missing`` bytes of this direction never reached the capture."""
        if self._granted:
            self._settle()
        self._gap(missing, frame, ts)
        self._grant()

    def _gap(self, missing: int, frame: int, ts: float) -> None:
        if missing <= 0:
            return
        if self.state == PDV_DATA and missing < self._pdv_left:
            # Inside one data set fragment: framing survives, the data set is partial.
            self._pdv_left -= missing
            self._pdu_left -= missing
            self._partial = True
            self.events.append(StreamGap(frame, ts, missing, False))
            return
        self.events.append(StreamGap(frame, ts, missing, True))
        if self.state != HUNT:
            self._start_hunt("after bytes missing from the capture")
        else:
            self._hunt = bytearray()
            self._skipped += missing

    def close(self, frame: int, ts: float) -> None:
        """The stream ended (FIN, RST or end of capture)."""
        if self._granted:
            self._settle()
        st = self.state
        if st == HUNT:
            skipped = self._skipped + len(self._hunt)
            if skipped:
                self.events.append(Resync(frame, ts, skipped,
                                          self._hunt_reason + "; no PDU boundary found"))
            self._skipped = 0
            self._hunt = bytearray()
        elif st != HEADER or self._part:
            if st != HEADER and self._ptype == 4:
                self.pdata_count -= 1  # a P-DATA-TF cut short was never a whole PDU
            name = PDU_NAMES.get(self._ptype, "PDU")
            self.events.append(Malformed(frame, ts, "UL-STREAM-TRUNCATED",
                                         f"stream ended inside a {name} "
                                         f"({self._pdu_left} of {self._pdu_len} bytes missing)",
                                         self._ptype if st != HEADER else 0))
        self.state = HEADER
        self._part = bytearray()

    @property
    def synced(self) -> bool:
        return self.state != HUNT
