"""A collected data set back as a pydicom Dataset (lazy pydicom import: ``show`` only)."""

from __future__ import annotations

import warnings
from typing import Any

from .. import inflate
from . import part10
from .spool import MEMORY_LIMIT, Spool


def decode(spool: Spool, transfer_syntax: str | None, sop_class: str | None = None
           ) -> tuple[Any, str | None, str]:
    """pydicom Dataset of a collected data set: (dataset or None, problem, transfer syntax).

    A large data set is read up to its pixel data only: what follows is counted, not read.
    A deflated one is inflated here, within the ``--max-inflate`` cap (:mod:`..inflate`):
    pydicom would inflate it whole, whatever it grows to.
    """
    import io

    import pydicom

    ts = transfer_syntax or part10.guess_transfer_syntax(spool.head(8)) or part10.IMPLICIT_LE
    if inflate.is_deflated(ts):
        try:
            plain = inflate.inflate(spool.open())
        except inflate.InflateError as exc:
            return None, f"cannot be decoded: {exc}", ts
        prefix = part10.file_meta(sop_class or "1.2.3", "1.2.3", part10.EXPLICIT_LE, None)
        fp = io.BytesIO()
        fp.write(prefix)
        fp.write(plain)
        fp.seek(0)
        large = len(plain) > MEMORY_LIMIT
    else:
        prefix = part10.file_meta(sop_class or "1.2.3", "1.2.3", ts, None)
        fp = spool.open(prefix)
        large = spool.size > MEMORY_LIMIT
    try:
        with warnings.catch_warnings():  # odd values are shown as they are, not warned about
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(fp, force=True, stop_before_pixels=large)
            pos = fp.tell()
            for elem in ds.iterall():  # convert now: a cut data set fails here, not mid-print
                _ = elem.value
    except Exception as exc:  # noqa: BLE001 - any decoding failure is reported, not raised
        return None, f"cannot be decoded ({type(exc).__name__}: {exc})", ts
    problem = None
    if large:
        fp.seek(0, io.SEEK_END)
        end = fp.tell()
        rest = end - pos
        problem = f"pixel data and what follows: {rest} bytes, not read"
    return ds, problem, ts
