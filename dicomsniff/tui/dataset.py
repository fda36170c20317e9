"""Data sets of the selected message, read again from the capture and decoded with pydicom.

Only the selected association's packets are fed to a fresh Analyzer that asks for the data
set bytes of the wanted messages (``want_dataset``), at most ``CAP`` bytes each. Decoding stops
before Pixel Data and other bulk data (shown as a size, never decoded); sequences become tree
nodes whose children are made when the node is opened.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from dissectors.dimse.assembler import DatasetSink
from dissectors.wiretext import escape, shorten

from .. import inflate
from ..model import Association, Transaction
from ..uids import EXPLICIT_VR_BIG_ENDIAN as EXPLICIT_BE
from ..uids import EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT_LE
from ..uids import IMPLICIT_VR_LITTLE_ENDIAN as IMPLICIT_LE
from .frames import Check, connection_packets

CAP = 4 << 20  # data set bytes kept per message
MAX_MESSAGES = 200  # pending responses collected for one C-FIND
BULK_GROUPS = frozenset({0x7FE0})
BULK_TAGS = frozenset({0x54001010, 0x00420011, 0x56000020, 0x00660023})  # waveform, document...


@dataclass
class Collected:
    """One message's data set bytes."""

    side: int
    frame: int  # the frame its command set completed in
    command: dict[str, Any]
    data: bytearray = field(default_factory=bytearray)
    total: int = 0
    partial: bool = False  # bytes missing from the capture
    closed: bool = False

    @property
    def truncated(self) -> bool:
        return self.total > len(self.data)


class _Sink(DatasetSink):
    def __init__(self, c: Collected) -> None:
        self.c = c

    def write(self, data: bytes) -> None:
        c = self.c
        c.total += len(data)
        room = CAP - len(c.data)
        if room > 0:
            c.data += data[:room]

    def close(self, partial: bool) -> None:
        self.c.partial = partial
        self.c.closed = True


Want = tuple[int, int, int | None, bool]  # side, command frame, message id, is a response


def wanted_messages(t: Transaction, response_index: int | None = None,
                    all_responses: bool = False) -> list[Want]:
    """The messages of ``t`` whose data sets are wanted (a frame may carry several)."""
    s = 0 if t.sent_by == "requestor" else 1
    mid = t.message_id
    out: list[Want] = []
    if t.request_frame is not None and response_index is None and not all_responses:
        out.append((s, t.request_frame, mid, False))
    if all_responses:
        out += [(1 - s, f, mid, True) for f in t.response_frames[:MAX_MESSAGES]]
    elif response_index is not None and response_index < len(t.response_frames):
        out.append((1 - s, t.response_frames[response_index], mid, True))
    return out


def _ordinals(wanted: list[Want]) -> list[tuple[Want, int]]:
    seen: Counter[Want] = Counter()
    out = []
    for w in wanted:
        out.append((w, seen[w]))
        seen[w] += 1
    return out


def collect(path: str, a: Association, wanted: list[Want],
            check: Check | None = None) -> list[Collected]:
    """Read the association's packets again; the data sets of the ``wanted`` messages, in
    order (a message whose data set never came is left out)."""
    from dissectors.dimse.command import is_response

    from ..analysis.engine import Analyzer

    want = Counter(wanted)
    seen: Counter[Want] = Counter()
    got: dict[tuple[Want, int], Collected] = {}

    def ask(_assoc: Association, side: int, msg: Any) -> DatasetSink | None:
        resp = is_response(msg.command_field)
        mid = msg.command.get("MessageIDBeingRespondedTo" if resp else "MessageID")
        key = (side, msg.frame, mid if isinstance(mid, int) else None, resp)
        n = seen[key]
        seen[key] += 1
        if n >= want[key]:
            return None
        c = got[(key, n)] = Collected(side, msg.frame, dict(msg.command))
        return _Sink(c)

    analyzer = Analyzer(want_dataset=ask)
    last = max((w[1] for w in wanted), default=0)
    for _a, p in connection_packets(path, [a], check=check):
        analyzer.feed_frame(p.frame, p.ts, p.linktype, p.data)
        if p.frame > last and len(got) == len(wanted) and all(c.closed for c in got.values()):
            break
    analyzer.finish()
    return [got[k] for k in _ordinals(wanted) if k in got]


# -- decoding -------------------------------------------------------------------------------
@dataclass
class Entry:
    """One line of the data set tree; ``children`` makes the sub-entries when opened."""

    label: Text
    children: Callable[[], list[Entry]] | None = None


def decode(c: Collected, transfer_syntax: str | None) -> list[Entry]:
    """The top-level entries of a collected data set (problems become entries too)."""
    data = bytes(c.data)
    ts = transfer_syntax or IMPLICIT_LE
    notes: list[Entry] = []
    if inflate.is_deflated(ts):
        try:  # within --max-inflate: a few MB on the wire can claim gigabytes
            data = inflate.inflate(data)
        except inflate.InflateError as exc:
            return [Entry(Text(f"cannot inflate the deflated data set: {exc}", "red"))]
        ts = EXPLICIT_LE
    try:
        ds, stop, error = _read(data, ts == IMPLICIT_LE, ts != EXPLICIT_BE)
    except Exception as exc:  # noqa: BLE001 - a wire data set may be anything
        return [Entry(Text(f"not decodable: {type(exc).__name__}: {exc}", "red"))]
    entries = dataset_entries(ds)
    if stop is not None:
        entries.append(_bulk_entry(data, stop, ts, c.total))
    if error:
        notes.append(Entry(Text(f"decoding stopped: {error}", "yellow")))
    if c.truncated:
        notes.append(Entry(Text(f"only the first {len(c.data)} of {c.total} bytes were read",
                                "yellow")))
    if c.partial:
        notes.append(Entry(Text("bytes of this data set are missing from the capture",
                                "yellow")))
    return entries + notes


def _read(data: bytes, implicit: bool, little: bool) -> tuple[Any, int | None, str | None]:
    from pydicom.dataset import Dataset
    from pydicom.filereader import data_element_generator

    fp = io.BytesIO(data)
    stopped: list[int] = []

    def stop(tag: Any, _vr: Any, _length: int) -> bool:
        if tag.group in BULK_GROUPS or int(tag) in BULK_TAGS:
            stopped.append(int(tag))
            return True
        return False

    ds = Dataset()
    ds.set_original_encoding(implicit, little, "iso8859")
    error = None
    try:
        for elem in data_element_generator(fp, implicit, little, stop_when=stop):
            ds[elem.tag] = elem  # type: ignore[index]
    except Exception as exc:  # noqa: BLE001
        error = f"{type(exc).__name__}: {exc}"
    return ds, (fp.tell() if stopped else None), error


def _bulk_entry(data: bytes, pos: int, ts: str, total: int) -> Entry:
    import struct

    little = ts != EXPLICIT_BE
    fmt = "<" if little else ">"
    if len(data) < pos + 8:
        return Entry(Text("bulk data follows (not decoded)", "dim"))
    group, elem = struct.unpack_from(fmt + "HH", data, pos)
    if ts == IMPLICIT_LE:
        from pydicom.datadict import dictionary_VR

        try:
            vr = dictionary_VR((group << 16) | elem)
        except KeyError:
            vr = "UN"
        length = struct.unpack_from(fmt + "I", data, pos + 4)[0]
        head = 8
    else:
        vr = data[pos + 4:pos + 6].decode("latin-1")
        length = struct.unpack_from(fmt + "I", data, pos + 8)[0]
        head = 12
    from pydicom.datadict import dictionary_description

    try:
        name = dictionary_description((group << 16) | elem)
    except KeyError:
        name = "bulk data"
    size = (total - pos - head) if length == 0xFFFFFFFF else length
    how = "encapsulated, " if length == 0xFFFFFFFF else ""
    return Entry(Text(f"({group:04X},{elem:04X}) {vr} {name}: {how}{size} bytes (not decoded)",
                      "magenta"))


def dataset_entries(ds: Any) -> list[Entry]:
    """Entries of a pydicom Dataset, elements converted as they are listed."""
    out = []
    for tag in list(ds.keys()):
        try:
            elem = ds[tag]
        except Exception as exc:  # noqa: BLE001 - a bad value is shown, not raised
            out.append(Entry(Text(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) not decodable: {exc}",
                                  "red")))
            continue
        out.append(_element_entry(elem))
    return out


def _element_entry(elem: Any) -> Entry:
    tag = elem.tag
    label = Text()
    label.append(f"({tag.group:04X},{tag.element:04X}) ", style="dim")
    label.append(f"{elem.VR} ", style="cyan")
    label.append(elem.name or "Unknown", style="bold")
    if elem.VR == "SQ":
        items = list(elem.value or [])
        label.append(f": {len(items)} item" + ("" if len(items) == 1 else "s"), style="dim")

        def items_fn(items: list = items) -> list[Entry]:
            return [Entry(Text(f"Item {k}", "bold"),
                          (lambda d=d: dataset_entries(d))) for k, d in enumerate(items, 1)]

        return Entry(label, items_fn if items else None)
    label.append(": ")
    label.append(_value(elem))
    return Entry(label)


def _value(elem: Any) -> str:
    v = elem.value
    if isinstance(v, (bytes, bytearray)):
        return f"{len(v)} bytes"
    if v is None or v == "":
        return "(empty)"
    if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        text = "[" + ", ".join(_one(x) for x in v) + "]"
    else:
        text = _one(v)
    return shorten(text, 200)


def _one(v: Any) -> str:
    """One value as pydicom's ``repval`` shows it (text quoted), escaped as every output is."""
    if isinstance(v, (int, float)):
        return str(v)
    return f"'{escape(str(v))}'"
