"""Capture loss, told as the capture's fault and not the peers' (docs/hostile-input.md).

Two kinds: records the capture cut (a snapshot length shorter than the packet, or a record
with no bytes at all: :class:`Truncation`, one finding per capture), and bytes of a TCP
direction that never reached the capture (:class:`SideLoss`, kept by the association's
tracker). A lost PDU leaves the peers' state machines looking broken (an A-ASSOCIATE-AC
never seen, then P-DATA "before the association was accepted"); the tracker asks which PDU
the loss must have carried for what follows to be valid, applies it, and names it in the
loss's one finding instead of blaming the peers.
"""

from __future__ import annotations

MAX_FRAMES = 5  # frames named in a finding; the rest are counted


class Truncation:
    """Records shorter than the packet on the wire: counts and the first frames, in
    constant space whatever the capture holds."""

    __slots__ = ("cut", "cut_bytes", "empty", "frames", "largest")

    def __init__(self) -> None:
        self.cut = 0  # caplen < length on the wire, caplen > 0
        self.cut_bytes = 0  # bytes of them the capture did not keep
        self.empty = 0  # caplen 0
        self.frames: list[int] = []
        self.largest = 0  # the longest cut record kept: the snapshot length, likely

    def record(self, frame: int, caplen: int, wire_len: int) -> None:
        if caplen:
            self.cut += 1
            if caplen > self.largest:
                self.largest = caplen
        else:
            self.empty += 1
        self.cut_bytes += wire_len - caplen
        if len(self.frames) < MAX_FRAMES:
            self.frames.append(frame)

    def merge(self, other: Truncation) -> None:
        """Add what another engine counted (one of several workers on one capture)."""
        self.cut += other.cut
        self.cut_bytes += other.cut_bytes
        self.empty += other.empty
        self.largest = max(self.largest, other.largest)
        self.frames = sorted(self.frames + other.frames)[:MAX_FRAMES]

    def message(self) -> str | None:
        """The one finding's text, or None when nothing was cut."""
        if not (self.cut or self.empty):
            return None
        parts = []
        if self.cut:
            parts.append(f"{self.cut} record(s) cut by the capture's snapshot length "
                         f"(at most {self.largest} bytes kept of a packet)")
        if self.empty:
            parts.append(f"{self.empty} record(s) with no bytes at all (caplen 0)")
        n = self.cut + self.empty
        frames = ", ".join(map(str, self.frames)) + (", ..." if n > len(self.frames) else "")
        return (f"{' and '.join(parts)}: {self.cut_bytes} bytes on the wire were not "
                f"captured (frames {frames}); what they carried is counted as missing "
                "bytes in each association (TCP-GAP), not as the peers' errors. Capture "
                "with a snapshot length of 0 (tcpdump -s 0) to keep whole packets")


class SideLoss:
    """Bytes one side sent that the capture never had, within one association, and what
    the state machine says they carried."""

    __slots__ = ("gaps", "bytes", "frames", "skipped", "carried", "open", "last_frame",
                 "in_dataset", "command_frame", "orphans")

    def __init__(self) -> None:
        self.gaps = 0
        self.bytes = 0
        self.frames: list[int] = []  # frames that showed each loss (first few)
        self.skipped = 0  # bytes after a loss skipped to find the next PDU boundary
        self.carried: list[str] = []  # what the lost bytes probably held (first few)
        # a loss since this side's last whole PDU or DIMSE message: a PDU the peer's
        # behaviour needs may be in it
        self.open = False
        self.last_frame = 0  # frame of the latest loss
        self.in_dataset = 0  # losses inside a data set fragment (framing kept)
        self.command_frame: int | None = None  # the first command read after the latest loss
        self.orphans = 0  # data set fragments whose command set was lost

    def add(self, missing: int, frame: int, resynchronised: bool) -> None:
        self.gaps += 1
        self.bytes += missing
        self.last_frame = frame
        self.command_frame = None
        if len(self.frames) < MAX_FRAMES:
            self.frames.append(frame)
        if resynchronised:
            self.open = True
        else:
            self.in_dataset += 1

    def orphan(self, frame: int) -> bool:
        """A data set fragment with no command before it: is its command in this loss?"""
        # (not by the loss's frame: bytes held behind a hole are delivered after the gap
        # is declared, with their own, earlier, frame numbers)
        if self.command_frame is None or frame <= self.command_frame:
            self.orphans += 1
            return True
        return False

    def carried_also(self, what: str) -> None:
        if what in self.carried:
            return  # (several answers to one lost request each point at it)
        if len(self.carried) < MAX_FRAMES:
            self.carried.append(what)
        elif len(self.carried) == MAX_FRAMES:
            self.carried.append("...")

    def message(self, who: str) -> str:
        frames = ", ".join(map(str, self.frames)) + (", ..." if self.gaps > MAX_FRAMES else "")
        text = (f"{who}: {self.bytes} bytes missing from the capture in {self.gaps} "
                f"place(s) (seen at frame(s) {frames})")
        if self.skipped:
            text += f"; {self.skipped} bytes after it skipped to find the next PDU"
        carried = list(self.carried)
        if self.orphans:
            carried.append(f"the command set(s) of {self.orphans} data set fragment(s) that "
                           "came after")
        if carried:
            text += (f"; {', '.join(carried)} {'were' if len(carried) > 1 else 'was'} "
                     "probably among them")
        if self.in_dataset:
            text += f"; {self.in_dataset} loss(es) inside data sets, which are now partial"
        return text + ": the capture did not keep them, the peers are not at fault"
