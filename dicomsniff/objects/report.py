"""Plain-text lines about exported objects (standard output stays script-friendly)."""

from __future__ import annotations

import os

from .. import units
from ..uids import uid_name
from .dump import safe
from .export import Exported

size_text = units.size


def object_line(info: Exported, outdir: str) -> str:
    """``FILE  SOP class  transfer syntax  size  status``, tab-separated."""
    where = os.path.relpath(info.path, outdir) if info.path else "(not written)"
    ts = uid_name(info.transfer_syntax) or info.transfer_syntax or "-"
    if info.guessed_ts:
        ts += " (guessed)"
    fields = [where, uid_name(info.sop_class) or safe(info.sop_class or "-"), ts,
              size_text(info.bytes), info.status or "-"]
    if info.partial:
        fields.append("PARTIAL")
    if info.note:
        fields.append(safe(info.note))
    return "\t".join(fields)
