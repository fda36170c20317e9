"""A collected data set back as a pydicom Dataset (lazy pydicom import: ``show`` only)."""

from __future__ import annotations

import warnings
from typing import Any

from . import part10
from .spool import MEMORY_LIMIT, Spool


def decode(spool: Spool, transfer_syntax: str | None, sop_class: str | None = None
           ) -> tuple[Any, str | None, str]:
    """pydicom Dataset of a collected data set: (dataset or None, problem, transfer syntax).

    A large data set is read up to its pixel data only: what follows is counted, not read.
    """
    import pydicom

    ts = transfer_syntax or part10.guess_transfer_syntax(spool.head(8)) or part10.IMPLICIT_LE
    prefix = part10.file_meta(sop_class or "1.2.3", "1.2.3", ts, None)
    fp = spool.open(prefix)
    large = spool.size > MEMORY_LIMIT
    try:
        with warnings.catch_warnings():  # odd values are shown as they are, not warned about
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(fp, force=True, stop_before_pixels=large)
            for elem in ds.iterall():  # convert now: a cut data set fails here, not mid-print
                _ = elem.value
    except Exception as exc:  # noqa: BLE001 - any decoding failure is reported, not raised
        return None, f"cannot be decoded ({type(exc).__name__}: {exc})", ts
    problem = None
    if large:
        rest = len(prefix) + spool.size - fp.tell()
        problem = f"pixel data and what follows: {rest} bytes, not read"
    return ds, problem, ts
