"""Stream every C-STORE data set into a Part 10 file while the capture is read.

A sink is opened when a C-STORE-RQ command set announces its data set; its bytes go to a
temporary file in the output directory as they arrive (memory holds one buffer, never an
object), behind the File Meta Information built from the command and the negotiation. When the
data set ends the file gets its final name, or a ``.partial.dcm`` one when TCP lost some of it.
C-STOREs of C-MOVE and C-GET sub-operations are C-STOREs like any other: they are exported too.
Instances carried by DICOMweb (STOW-RS requests, WADO responses) are PS3.10 files already: their
sinks (:mod:`.web`) write them as they are, with no File Meta Information added (``meta`` None).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dissectors.dimse.assembler import Message

from ..model import Association, Transaction
from ..uids import uid_name
from . import names, part10
from .filters import Filters

C_STORE_RQ = 0x0001
BUFFER = 1 << 20


class ExportError(OSError):
    """The output directory stopped accepting files (full, removed...): the export stops."""


@dataclass(slots=True)
class Exported:
    """One object written (or given up), as reported to the user."""

    path: str | None
    association: int
    sender: str | None
    receiver: str | None
    sop_class: str | None
    sop_instance: str | None
    transfer_syntax: str | None
    bytes: int
    partial: bool
    guessed_ts: bool = False
    note: str | None = None  # why it was not written, or what to know about it
    status: str | None = None  # of the C-STORE, once its response is seen


@dataclass
class ExportStats:
    objects: int = 0
    partial: int = 0
    skipped: int = 0
    bytes: int = 0  # data set bytes written


class ObjectSink:
    """Receives one data set's bytes (a DatasetSink) and writes them to a Part 10 file."""

    __slots__ = ("exporter", "key", "info", "stem", "meta", "fh", "tmp", "head")

    def __init__(self, exporter: Exporter, key: tuple[Any, ...], info: Exported,
                 stem: str, meta: Callable[[str], bytes] | None) -> None:
        self.exporter, self.key, self.info, self.stem, self.meta = exporter, key, info, stem, meta
        fd, self.tmp = exporter.create(f"dicomsniff-{os.getpid()}-{id(self):x}", ".tmp")
        self.fh = os.fdopen(fd, "wb", buffering=BUFFER)
        exporter._open.add(self)
        self.head: bytearray | None = None
        if meta is None:
            pass  # a PS3.10 file already (DICOMweb): written byte for byte
        elif info.transfer_syntax is not None:
            self._write(self.meta(info.transfer_syntax))
        else:
            self.head = bytearray()  # negotiation not captured: guess from the first bytes

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self.fh.write(data)
        except OSError as exc:
            raise ExportError(exc.errno, f"cannot write {self.tmp}: {exc.strerror}") from None

    def _flush_head(self) -> None:
        assert self.meta is not None
        head = bytes(self.head or b"")
        self.head = None
        ts = part10.guess_transfer_syntax(head) or part10.IMPLICIT_LE
        self.info.transfer_syntax, self.info.guessed_ts = ts, True
        self._write(self.meta(ts))
        self._write(head)

    def write(self, data: bytes) -> None:
        self.info.bytes += len(data)
        if self.head is None:
            self._write(data)
            return
        self.head += data
        if len(self.head) >= 8:
            self._flush_head()

    def close(self, partial: bool) -> None:
        if self.head is not None:
            self._flush_head()
        try:
            self.fh.close()
        except OSError as exc:
            raise ExportError(exc.errno, f"cannot write {self.tmp}: {exc.strerror}") from None
        self.info.partial = partial
        self.exporter.finish(self, partial)


@dataclass
class Exporter:
    """The export policy for :class:`ObjectAnalyzer`: which data sets, where, how named.

    ``deid`` (optional, :class:`.anonymize.Deidentifier`) rewrites each finished file
    de-identified, named after its new SOP Instance UID; ``done`` is told about every object
    when its C-STORE is answered (or its association ends); ``warn`` gets one line per
    partial or skipped object.
    """

    outdir: str
    filters: Filters = field(default_factory=Filters)
    deid: Any = None
    done: Callable[[Exported], None] = lambda e: None
    warn: Callable[[str], None] = lambda s: None
    stats: ExportStats = field(default_factory=ExportStats)
    _waiting: dict[tuple[int, int, Any], Exported] = field(default_factory=dict)
    _open: set[ObjectSink] = field(default_factory=set)  # sinks whose data set is arriving

    # -- policy for ObjectAnalyzer ---------------------------------------------------------
    def collect(self, a: Association) -> bool:
        if a.calling_ae is None and a.accept_frame is None:
            return self.filters.may_want(a)
        return self.filters.association(a)

    def want_dataset(self, a: Association, side: int, m: Message) -> ObjectSink | None:
        if m.command_field != C_STORE_RQ or not self.filters.association(a):
            return None
        cmd = m.command
        pc = a.contexts.get(m.context_id)
        sop_class = _str(cmd.get("AffectedSOPClassUID")) or (pc.abstract_syntax if pc else None)
        if not self.filters.sop_class(sop_class):
            return None
        sop_instance = _str(cmd.get("AffectedSOPInstanceUID"))
        ts = pc.transfer_syntax if pc is not None and pc.accepted else None
        sender, receiver = ((a.calling_ae, a.called_ae) if side == 0
                            else (a.called_ae, a.calling_ae))
        info = Exported(None, a.id, sender, receiver, sop_class, sop_instance, ts, 0, False)
        stem = names.object_name(a.id, sender, receiver, sop_instance)
        key = (a.id, side, cmd.get("MessageID"))
        self._waiting[key] = info

        def meta(transfer_syntax: str) -> bytes:
            return part10.file_meta(sop_class or "", sop_instance or "", transfer_syntax,
                                    sender)

        return ObjectSink(self, key, info, stem, meta)

    def expect(self, key: tuple[Any, ...], info: Exported) -> None:
        """An object whose status comes later (``answer``): reported once both are known."""
        self._waiting[key] = info

    def answer(self, key: tuple[Any, ...], status: str) -> None:
        """The status of an object ``expect`` ed (reported now if its file is done)."""
        info = self._waiting.get(key)
        if info is not None:
            info.status = status
            self._report(key, info)

    def waiting(self, prefix: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Keys of objects still waiting whose key starts with ``prefix``."""
        return [k for k in self._waiting if k[:len(prefix)] == prefix]

    def drop(self, sink: ObjectSink) -> None:
        """An object not wanted after all (filtered once its header was read): no file."""
        self._open.discard(sink)
        self._waiting.pop(sink.key, None)
        try:
            sink.fh.close()
        except OSError:
            pass
        if os.path.exists(sink.tmp):
            os.unlink(sink.tmp)

    def skip(self, sink: ObjectSink, note: str) -> None:
        """An object not written (why in ``note``): no file, one warning, still reported."""
        self._open.discard(sink)
        try:
            sink.fh.close()
        except OSError:
            pass
        if os.path.exists(sink.tmp):
            os.unlink(sink.tmp)
        sink.info.note = note
        self.stats.skipped += 1
        self.warn(f"#{sink.info.association}: {sink.info.sop_instance or 'an object'} not "
                  f"written: {note}")
        self._report(sink.key, sink.info)

    # -- files -------------------------------------------------------------------------------
    def create(self, stem: str, suffix: str) -> tuple[int, str]:
        try:
            return names.create_exclusive(self.outdir, stem, suffix)
        except OSError as exc:
            raise ExportError(exc.errno, f"cannot write to {self.outdir}: "
                                         f"{exc.strerror or exc}") from None

    def abandon(self) -> None:
        """The export is failing: remove the temporary files of data sets still arriving."""
        for sink in list(self._open):
            self._open.discard(sink)
            try:
                sink.fh.close()
            except OSError:
                pass
            if os.path.exists(sink.tmp):
                os.unlink(sink.tmp)

    def finish(self, sink: ObjectSink, partial: bool) -> None:
        """A data set ended: name its file (or hand it to the anonymizer)."""
        self._open.discard(sink)
        info = sink.info
        suffix = ".partial.dcm" if partial else ".dcm"
        try:
            if self.deid is not None:
                info.path = self._deidentified(sink, suffix)
                if info.path is None:
                    self.stats.skipped += 1
                    self.warn(f"association #{info.association}: data set of "
                              f"{info.sop_instance or 'unknown instance'} not written: "
                              f"{info.note}")
                    self._report(sink.key, info)
                    return
            else:
                info.path = names.rename_exclusive(sink.tmp, sink.stem, suffix)
        except OSError as exc:
            raise ExportError(exc.errno, f"cannot write to {self.outdir}: "
                                         f"{exc.strerror or exc}") from None
        finally:
            if os.path.exists(sink.tmp):
                os.unlink(sink.tmp)
        self.stats.objects += 1
        self.stats.bytes += info.bytes
        if partial:
            self.stats.partial += 1
            self.warn(f"association #{info.association}: data set of "
                      f"{info.sop_instance or 'unknown instance'} is incomplete (bytes missing "
                      f"from the capture); written as {os.path.basename(info.path)}")
        if info.guessed_ts:
            self.warn(f"association #{info.association}: no accepted transfer syntax in the "
                      f"capture for the presentation context of {os.path.basename(info.path)}"
                      f"; guessed from its first bytes: "
                      f"{uid_name(info.transfer_syntax) or info.transfer_syntax}")
        self._report(sink.key, info)

    def _deidentified(self, sink: ObjectSink, suffix: str) -> str | None:
        """Write the de-identified object; None (and a note) if it cannot be decoded whole."""
        info = sink.info
        if info.partial:
            info.note = "incomplete, and a cut data set cannot be de-identified with certainty"
            return None
        try:
            ds = self.deid.file(sink.tmp)
        except ValueError as exc:
            info.note = str(exc)
            return None
        info.sop_instance = str(ds.file_meta.MediaStorageSOPInstanceUID)
        stem = names.object_name(info.association, info.sender, info.receiver,
                                 info.sop_instance)
        try:
            data = self.deid.encode(ds)
        except (ValueError, TypeError, OverflowError, struct.error) as exc:
            # pydicom refuses what a wire data set can hold (command set elements, values
            # it cannot encode): not written, rather than written half de-identified
            info.note = f"cannot be written de-identified ({type(exc).__name__}: {exc})"[:300]
            return None
        fd, path = self.create(stem, suffix)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return path

    # -- statuses ----------------------------------------------------------------------------
    def _report(self, key: tuple[Any, ...], info: Exported) -> None:
        if info.status is not None and (info.path is not None or info.note is not None):
            self._waiting.pop(key, None)
            self.done(info)

    def on_transaction(self, a: Association, t: Transaction) -> None:
        """The C-STORE's response (or the end of its association) completes its report."""
        if t.command != "C-STORE":
            return
        key = (t.association, 0 if t.sent_by == "requestor" else 1, t.message_id)
        info = self._waiting.get(key)
        if info is not None:
            info.status = (f"0x{t.status:04X} {t.status_category}" if t.status is not None
                           else "no response")
            self._report(key, info)

    def on_association(self, a: Association) -> None:
        """Whatever is still waiting (no transaction matched it) is reported as it is."""
        for key in [k for k in self._waiting if k[0] == a.id]:
            info = self._waiting.pop(key)
            if info.path is not None or info.note is not None:
                self.done(info)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
