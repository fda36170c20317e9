"""Frame references that name their file, for captures read from several files.

Frame numbers in the records are merged numbers (1, 2, 3... over the whole set, in time order;
for one file they are Wireshark's). With several files, each record also says where its frames
are: ``file`` and ``file_frame`` for its main frame (an association's first, a transaction's
request, a finding's own) and ``frame_refs`` mapping every frame number it mentions to
``"file-name#n"``, n being the frame number Wireshark shows in that file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["MAIN_FRAME", "add_frame_refs", "frames_of"]

#: the frame that places a record in a file, per record type
MAIN_FRAME = {"association": "first_frame", "transaction": "request_frame", "finding": "frame",
              "study": "first_frame", "tls": "first_frame",
              "http_connection": "first_frame"}

Locate = Callable[[int], "tuple[str, int] | None"]


def frames_of(rec: dict[str, Any]) -> list[int]:
    """Every frame number a record mentions, in field order."""
    out: list[int] = []
    for key in ("first_frame", "last_frame", "frame", "request_frame", "cancel_frame"):
        v = rec.get(key)
        if isinstance(v, int):
            out.append(v)
    for key in ("frames", "response_frames"):
        v = rec.get(key)
        if isinstance(v, list):
            out.extend(x for x in v if isinstance(x, int))
    abort = rec.get("abort")
    if isinstance(abort, dict) and isinstance(abort.get("frame"), int):
        out.append(abort["frame"])
    return out


def add_frame_refs(rec: dict[str, Any], locate: Locate, refs: bool = True) -> dict[str, Any]:
    """Add ``file``, ``file_frame`` (and, with ``refs``, ``frame_refs``) to a record."""
    main = rec.get(MAIN_FRAME.get(rec.get("type", ""), ""), None)
    where = locate(main) if isinstance(main, int) else None
    rec["file"] = where[0] if where else None
    rec["file_frame"] = where[1] if where else None
    if refs:
        mapping: dict[str, str] = {}
        for n in frames_of(rec):
            w = locate(n)
            if w is not None:
                mapping[str(n)] = f"{os.path.basename(w[0])}#{w[1]}"
        rec["frame_refs"] = mapping
    return rec
