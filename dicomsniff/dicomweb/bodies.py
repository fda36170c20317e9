"""One message body as DICOMweb reads it: parts summarised, a bounded copy where needed.

A body streams through :class:`BodyReader` once. multipart/related bodies go through the
streaming :class:`~dissectors.http.multipart.MultipartReader`; of each part only its first
bytes are kept (``payload.HEAD_BYTES`` of an instance, to read its UIDs; a DICOM JSON part up
to ``payload.JSON_CAP``) and dropped when the part ends, leaving a small summary. A single
body keeps its first bytes (to tell what it is) and, when asked, a copy up to a cap.

``instances`` (optional, from :mod:`.instances`) gives a sink for each ``application/dicom``
part (or an ``application/dicom`` body): the instance's bytes go there as they pass, so a
wanted instance is written out whole while memory still holds only the bounded buffers above.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from dissectors.http.mediatype import parse_media_type
from dissectors.http.multipart import MultipartHandler, MultipartReader, Part

from . import payload

MAX_PARTS_LISTED = 1000  # part summaries kept per message; the rest are counted
SNIFF_BYTES = 64
MAX_RATIO = 64  # decoded bytes per Content-Encoded byte (plus 1 MiB) before decoding stops
_STEP = 1 << 16


class ContentDecoder:
    """Content-Encoding gzip / deflate (RFC 9110 8.4.1) undone as the body streams, bounded.

    zlib's ``max_length`` hands out at most 64 KiB at a time whatever the stream holds, and
    decoding stops (``exceeded``) once the output passes ``MAX_RATIO`` times the input plus
    1 MiB: a bomb costs a bounded amount of CPU and no memory.
    """

    __slots__ = ("z", "seen", "made", "exceeded", "error")

    def __init__(self, coding: str) -> None:
        # wbits 47: gzip or zlib header, told apart by zlib itself; raw deflate is a 'deflate'
        # that some servers send without the zlib wrapper.
        self.z = zlib.decompressobj(47 if coding in ("gzip", "x-gzip") else 15 + 32)
        self.seen = 0
        self.made = 0
        self.exceeded = False
        self.error: str | None = None

    def decode(self, data: bytes):
        """The decoded pieces of ``data``, each at most 64 KiB, yielded as made (never a list:
        a bomb's output is consumed and dropped piece by piece)."""
        if self.exceeded or self.error:
            return
        self.seen += len(data)
        buf = data
        try:
            while buf or self.z.unconsumed_tail:
                piece = self.z.decompress(buf or self.z.unconsumed_tail, _STEP)
                buf = b""
                if piece:
                    self.made += len(piece)
                    yield piece
                if self.made > MAX_RATIO * self.seen + (1 << 20):
                    self.exceeded = True
                    return
                if not piece and not self.z.unconsumed_tail:
                    return
        except zlib.error as e:
            self.error = str(e)


class BodyReader(MultipartHandler):
    """Feed the decoded body; read ``parts``, ``head``, ``copy`` and ``problems`` at the end."""

    __slots__ = ("media_type", "params", "reader", "head", "head_cap", "copy", "copy_cap",
                 "overflow", "parts", "part_count", "problems", "_buf", "_buf_cap", "lost",
                 "decoder", "coding", "instances", "sink")

    def __init__(self, content_type: str | None, *, copy_cap: int = 0,
                 head_cap: int = SNIFF_BYTES, content_encoding: str | None = None,
                 instances: Callable[[int | None], Any] | None = None) -> None:
        self.media_type, self.params = parse_media_type(content_type)
        self.instances = instances
        self.sink: Any = None  # the InstanceSink of the instance passing now
        self.head = bytearray()
        self.head_cap = head_cap
        self.copy = bytearray() if copy_cap else None
        self.copy_cap = copy_cap
        self.overflow = False  # the body was longer than copy_cap: not decoded
        self.parts: list[dict[str, Any]] = []
        self.part_count = 0
        self.problems: list[tuple[str, str]] = []
        self._buf = bytearray()
        self._buf_cap = 0
        self.lost = False
        self.coding = (content_encoding or "").strip().lower() or None
        self.decoder: ContentDecoder | None = None
        if self.coding in ("gzip", "x-gzip", "deflate"):
            self.decoder = ContentDecoder(self.coding)
        elif self.coding not in (None, "identity"):
            self.problems.append(("CONTENT-ENCODING", f"Content-Encoding {self.coding} is not "
                                  "decoded: the body is counted, not read"))
            self.lost = True
        self.reader: MultipartReader | None = None
        if self.media_type.startswith("multipart/"):
            boundary = self.params.get("boundary")
            if boundary:
                self.reader = MultipartReader(boundary, self)
            else:
                self.problems.append(("MULTIPART-NO-BOUNDARY",
                                      f"{self.media_type} without a boundary parameter "
                                      "(RFC 2046 5.1.1): its parts cannot be read"))
        elif instances is not None and self.media_type == "application/dicom" and not self.lost:
            self.sink = instances(None)  # the body is one instance (WADO-URI, single part)

    # -- the body stream -------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.lost:
            return
        if self.decoder is not None:
            for piece in self.decoder.decode(data):
                self._feed(piece)
                if self.lost:
                    break
            if self.decoder.exceeded:
                self.problems.append(("CONTENT-ENCODING", f"the {self.coding} body inflates "
                                      f"more than {MAX_RATIO} times: not decoded further"))
                self.lost = True
                self.copy = None
            elif self.decoder.error:
                self.problems.append(("CONTENT-ENCODING", f"the {self.coding} body is not "
                                      f"valid: {self.decoder.error}"))
                self.lost = True
                self.copy = None
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        if self.reader is not None:
            self.reader.feed(data)
            return
        if len(self.head) < self.head_cap:
            self.head += data[:self.head_cap - len(self.head)]
        if self.sink is not None:
            self.sink.write(data)
        c = self.copy
        if c is not None and not self.overflow:
            if len(c) + len(data) > self.copy_cap:
                self.overflow = True
                self.copy = None
            else:
                c += data

    def gap(self) -> None:
        """Bytes missing: parts after this point cannot be delimited; the copy is useless."""
        self.lost = True
        self.copy = None
        self._end_sink(False, bytes(self._buf) if self.reader is not None else bytes(self.head))
        if self.reader is not None:
            self.problems.append(("MULTIPART-GAP", "bytes missing from the capture inside "
                                  "a multipart body: the parts after the gap are not read"))

    def close(self, complete: bool = True) -> None:
        """The body ended (``complete``: its end was seen, nothing missing)."""
        if self.reader is not None and not self.lost:
            self.reader.close()
        self._end_sink(complete and not self.lost and self.reader is None,
                       bytes(self._buf) if self.reader is not None else bytes(self.head))

    def _end_sink(self, complete: bool, head: bytes) -> None:
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.close(complete, payload.instance_header(head))

    # -- multipart parts ---------------------------------------------------------------------
    def part(self, part: Part) -> None:
        self.part_count += 1
        mtype = self._part_type(part)
        self._buf = bytearray()
        if mtype == "application/dicom":
            self._buf_cap = payload.HEAD_BYTES
        elif mtype in ("application/dicom+json", "application/json"):
            self._buf_cap = payload.JSON_CAP
        else:
            self._buf_cap = SNIFF_BYTES
        if self.instances is not None and mtype == "application/dicom":
            self.sink = self.instances(part.index)

    def part_data(self, part: Part, data: bytes) -> None:
        b = self._buf
        if len(b) < self._buf_cap:
            b += data[:self._buf_cap - len(b)]
        if self.sink is not None:
            self.sink.write(data)

    def part_end(self, part: Part) -> None:
        if self.sink is not None:
            self._end_sink(part.complete, bytes(self._buf))
        if len(self.parts) >= MAX_PARTS_LISTED:
            self._buf = bytearray()
            return
        mtype = self._part_type(part)
        summary: dict[str, Any] = {"index": part.index, "media_type": mtype,
                                   "bytes": part.bytes, "complete": part.complete}
        ts = part.params.get("transfer-syntax")
        if ts:
            summary["transfer_syntax"] = ts[:64]
        data = bytes(self._buf)
        self._buf = bytearray()
        if mtype == "application/dicom":
            hdr = payload.instance_header(data)
            if hdr is None:
                summary["not_part10"] = True
                summary["sniffed"] = payload.sniff(data)
            else:
                summary.update({k: v for k, v in hdr.items() if v is not None})
        elif mtype in ("application/dicom+json", "application/json"):
            if part.bytes <= payload.JSON_CAP:
                doc = payload.load_json(data)
                if isinstance(doc, list):
                    summary["datasets"] = len(doc)
                    uids = [payload.dataset_uids(d) for d in doc[:MAX_PARTS_LISTED]]
                    summary["instances"] = [{"sop_class": c, "sop_instance": i}
                                            for c, i in uids if i]
                elif doc is None:
                    summary["not_json"] = True
        else:
            sniffed = payload.sniff(data)
            if sniffed:
                summary["sniffed"] = sniffed
        self.parts.append(summary)

    def problem(self, code: str, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append((code, text))

    def _part_type(self, part: Part) -> str:
        # RFC 2387: a part without Content-Type has the multipart's "type" parameter.
        return part.content_type or parse_media_type(self.params.get("type"))[0]
