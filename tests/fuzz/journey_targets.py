"""Fuzz targets of the study journey's decoders (registered in targets.TARGETS).

``headers``: the streaming C-STORE header reader on mutated image data sets in every encoding,
cut at random points: it never raises, never holds more than one element's bytes, stops within
its cap, and every value it keeps is escaped. ``small``: the bounded decoding of small data sets
(MPPS, commitment, IAN) on mutated bytes and deflate bombs: never raises, never inflates past
its cap.
"""

from __future__ import annotations

import zlib
from functools import cache
from typing import NamedTuple

from hypothesis import strategies as st

from dicomsniff.analysis.journey import decode as jdecode
from dicomsniff.analysis.journey.headers import (
    MAX_HEADER,
    MAX_VALUE,
    HeaderReader,
    SniffingReader,
)

from .mutators import ByteReader, chunks, mutated

ENCODINGS = [(False, True, False), (True, True, False), (False, False, False),
             (False, True, True)]  # (implicit, little, deflated)


def _encode(ds, implicit: bool, little: bool, deflated: bool) -> bytes:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, little
    write_dataset(fp, ds)
    data = fp.getvalue()
    if deflated:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = c.compress(data) + c.flush()
    return data


@cache
def image_seeds() -> list[tuple[int, bytes]]:
    """(encoding index, data set) of a small CT header with the journey's attributes."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.AccessionNumber = "A1"
    ds.Modality = "CT"
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.3"
    ref.ReferencedSOPInstanceUID = "1.2.3.9"
    ds.ReferencedPerformedProcedureStepSequence = [ref]
    ds.PatientName = "SYNTHETIC^FUZZ"
    ds.PatientID = "F1"
    ds.StudyInstanceUID = "1.2.3.6"
    ds.SeriesInstanceUID = "1.2.3.7"
    ds.PerformedProcedureStepID = "P1"
    ra = Dataset()
    ra.RequestedProcedureID = "R1"
    ra.ScheduledProcedureStepID = "S1"
    ds.RequestAttributesSequence = [ra]
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = 8
    ds.PixelData = bytes(16)
    return [(i, _encode(ds, *enc)) for i, enc in enumerate(ENCODINGS)]


class HeadersCase(NamedTuple):
    encoding: int
    data: bytes
    cuts: list[int]


def check_headers(case: HeadersCase) -> None:
    implicit, little, deflated = ENCODINGS[case.encoding % len(ENCODINGS)]
    from .targets import assert_safe_text, time_limit

    r = HeaderReader(not implicit, little, deflated)
    most = 0
    with time_limit():
        for part in chunks(case.data, sorted(case.cuts)):
            r.write(part)
            most = max(most, len(r.buf))
            # Never more than one element (header + a kept value) plus the chunk just written.
            assert len(r.buf) <= MAX_VALUE + 12 + len(part), len(r.buf)
        r.close(False)
    assert r.done
    assert r.walked <= MAX_HEADER + len(case.data)
    for k, v in r.values.items():
        assert_safe_text(v, f"headers.{k}")
    # The same bytes read with the encoding told from them (a capture begun mid-association):
    # bounded the same way, and when it reads them, the values the negotiated encoding gave.
    sniffed = SniffingReader()
    with time_limit():
        for part in chunks(case.data, sorted(case.cuts)):
            sniffed.write(part)
            if sniffed.reader is not None:
                assert len(sniffed.reader.buf) <= MAX_VALUE + 12 + len(part) + 8
        sniffed.close(False)
    assert sniffed.done and (sniffed.reader is not None or sniffed.error)
    for k, v in sniffed.values.items():
        assert_safe_text(v, f"sniffed.{k}")
    if not deflated and r.error is None and sniffed.error is None:
        assert sniffed.values == r.values


def headers_strategy() -> st.SearchStrategy[HeadersCase]:
    seeds = image_seeds()
    base = st.sampled_from(seeds)

    @st.composite
    def _case(draw: st.DrawFn) -> HeadersCase:
        enc, data = draw(base)
        if draw(st.booleans()):
            data = draw(mutated(st.just(data)))
        cuts = draw(st.lists(st.integers(0, max(1, len(data))), max_size=12))
        return HeadersCase(enc, data, cuts)

    return _case()


def headers_from_bytes(data: bytes) -> HeadersCase:
    r = ByteReader(data)
    enc, seed = r.pick(image_seeds())
    body = r.mutate(seed, 8) if r.u8() & 1 else r.rest()
    return HeadersCase(enc, body, [len(body) // 3, len(body) // 2])


class SmallCase(NamedTuple):
    data: bytes
    transfer_syntax: str


@cache
def small_seeds() -> list[tuple[bytes, str]]:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.TransactionUID = "1.2.3"
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    ds.ReferencedSOPSequence = [item]
    ds.PerformedProcedureStepStatus = "COMPLETED"
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb_data = bomb.compress(b"\x08\x00" * (2 << 20)) + bomb.flush()  # 4 MB of zeros-ish
    return [(_encode(ds, True, True, False), "1.2.840.10008.1.2"),
            (_encode(ds, False, True, False), "1.2.840.10008.1.2.1"),
            (_encode(ds, False, False, False), "1.2.840.10008.1.2.2"),
            (_encode(ds, False, True, True), "1.2.840.10008.1.2.1.99"),
            (bomb_data, "1.2.840.10008.1.2.1.99")]


def check_small(case: SmallCase) -> None:
    from .targets import time_limit

    with time_limit():
        ds, err = jdecode.decode(case.data, case.transfer_syntax)
    assert (ds is None) != (err is None)
    if case.transfer_syntax == "1.2.840.10008.1.2.1.99" and len(case.data) > 1000 and err:
        assert "cap" in err or "inflate" in err or "Error" in err


def small_strategy() -> st.SearchStrategy[SmallCase]:
    base = st.sampled_from(small_seeds())
    return st.builds(lambda s, m: SmallCase(m, s[1]), base,
                     base.flatmap(lambda s: mutated(st.just(s[0]))))


def small_from_bytes(data: bytes) -> SmallCase:
    r = ByteReader(data)
    seed, ts = r.pick(small_seeds())
    return SmallCase(r.mutate(seed, 8) if r.u8() & 1 else r.rest(), ts)


def targets(target_cls: type) -> dict[str, object]:
    return {t.name: t for t in (
        target_cls("headers", "journey HeaderReader on mutated image data sets, any encoding, "
                   "cut anywhere", HeadersCase, headers_strategy, check_headers,
                   headers_from_bytes, 400),
        target_cls("small", "journey small data set decoding (bounded inflate) on mutated "
                   "MPPS/commitment data sets and deflate bombs", SmallCase, small_strategy,
                   check_small, small_from_bytes, 200),
    )}
