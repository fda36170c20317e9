"""One table of transfer syntax properties (dicomsniff.uids), checked against pydicom for every
transfer syntax of its dictionary, and the data set encoding sniffer."""

from __future__ import annotations

import pytest
from pydicom._uid_dict import UID_dictionary
from pydicom.uid import UID

from dicomsniff import uids
from dissectors.dimse.encoding import sniff_encoding

SYNTAXES = sorted(u for u, e in UID_dictionary.items() if e[1] == "Transfer Syntax")


@pytest.mark.parametrize("ts", SYNTAXES)
def test_transfer_syntax_properties_are_pydicoms(ts: str) -> None:
    u = UID(ts)
    assert uids.is_transfer_syntax(ts)
    assert uids.is_implicit_vr(ts) == u.is_implicit_VR
    assert uids.is_little_endian(ts) == u.is_little_endian
    assert uids.is_compressed(ts) == u.is_compressed
    assert uids.encoding(ts) == (not u.is_implicit_VR, u.is_little_endian)
    if u.is_deflated:
        assert uids.is_deflated(ts)


def test_deflated_data_sets_by_ps3_5():
    """A.5 Deflated Explicit VR LE and the JPIP Referenced Deflate syntaxes (A.7, A.9) deflate
    the data set; Deflated Image Frame Compression deflates frames only; the '.99.1' some code
    once listed is not a registered transfer syntax."""
    assert uids.is_deflated("1.2.840.10008.1.2.1.99")
    assert uids.is_deflated("1.2.840.10008.1.2.4.95")
    assert uids.is_deflated("1.2.840.10008.1.2.4.205")
    assert not uids.is_deflated("1.2.840.10008.1.2.8.1")
    assert not uids.is_deflated("1.2.840.10008.1.2.1.99.1")
    assert not uids.is_deflated("1.2.840.10008.1.2.1")
    assert [ts for ts in SYNTAXES if uids.is_deflated(ts)] == [
        "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.205", "1.2.840.10008.1.2.4.95"]


def test_lossy_set_from_the_standards_names():
    lossy = {ts for ts in SYNTAXES if uids.is_lossy(ts)}
    # PS3.5 8.2: JPEG baseline/extended, JPEG-LS near-lossless, JPEG 2000, HTJ2K, MPEG, HEVC
    for ts in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
               "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.100",
               "1.2.840.10008.1.2.4.102.1", "1.2.840.10008.1.2.4.107",
               "1.2.840.10008.1.2.4.203"):
        assert ts in lossy, ts
    # ... and not what is lossless: HTJ2K Lossless Only (was wrongly listed), JPEG Lossless,
    # JPEG-LS Lossless, JPEG 2000 Lossless Only, RLE, the native and deflated syntaxes, JPIP
    for ts in ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.57",
               "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90",
               "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2",
               "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.94",
               "1.2.840.10008.1.2.8.1"):
        assert ts not in lossy, ts
    assert not uids.is_lossy("1.2.3.4") and not uids.is_lossy(None)


def test_neg_lossy_ts_not_raised_on_htj2k_lossless():
    from dicomsniff.analysis.rules.base import AssocView, RuleConfig
    from dicomsniff.analysis.rules.negotiation import lossy_syntaxes
    from dicomsniff.analysis.rules.state import CaptureState
    from dicomsniff.model import Association, PresentationContext

    for ts, want in (("1.2.840.10008.1.2.4.201", 0), ("1.2.840.10008.1.2.4.50", 1)):
        a = Association(1, "192.0.2.1:5000", "192.0.2.2:104")
        pc = PresentationContext(1, "1.2.840.10008.5.1.4.1.1.2", [ts])
        pc.result, pc.transfer_syntax = 0, ts
        a.contexts[1] = pc
        view = AssocView(a, RuleConfig(), CaptureState(10), "fin", None, {}, None)
        assert len(list(lossy_syntaxes(view))) == want, ts


@pytest.mark.parametrize("head,want", [
    (bytes.fromhex("0800050043531000"), (True, True)),      # (0008,0005) CS, explicit LE
    (bytes.fromhex("080005000a000000"), (False, True)),     # implicit LE, length 10
    (bytes.fromhex("0008000543530010"), (True, False)),     # explicit BE
    (bytes.fromhex("0000000000000000"), None),              # cannot tell
    (b"\x08\x00", None),
])
def test_one_encoding_sniffer(head: bytes, want) -> None:
    from dicomsniff.objects.part10 import guess_transfer_syntax

    assert sniff_encoding(head) == want
    ts = guess_transfer_syntax(head)
    assert (ts is None) == (want is None)
    if want is not None:
        assert uids.encoding(ts) == want


def test_one_set_of_formatters_in_utc():
    """Live lines, the report and the TUI show a capture time the same way: UTC."""
    from dicomsniff import units
    from dicomsniff.report import live, text
    from dicomsniff.tui import rows

    ts = 1795593003.207  # 2026-11-25 07:50:03.207 UTC
    assert units.clock(ts) == "07:50:03.207" == rows.clock(ts) == live._clock(ts)
    assert text._time(ts) == "2026-11-25 07:50:03.207Z" and units.date(ts) == "2026-11-25"
    assert units.clock(1e20) == "100000000000000000000.000 s"  # a capture's clock can lie
    assert rows.size(999_949) == "999.9 kB" and rows.size(2_500_000_000) == "2.5 GB"
    assert live._size(4649) == "4649 B" and live._ms(0.0436) == "43.6 ms"
