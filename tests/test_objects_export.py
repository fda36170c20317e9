"""export-objects on every sample capture, against the peers' ground truth (captures/manifest).

Each C-STORE the manifest lists with a visible request becomes one Part 10 file that dcmtk
accepts (dcmftest, dcmdump), named after its association, AE titles and SOP instance, with the
transfer syntax the peers used; a data set cut short is a ``.partial.dcm``. Filters, errors,
de-identification and bounded memory are checked on the same captures.
"""

from __future__ import annotations

import json
import struct
import subprocess
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from dicomsniff.cli import main
from tests.test_objects_hostile import conversation, write_pcap
from tests.test_objects_roundtrip import split_part10, text

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
ENTRIES = json.loads((CAPTURES / "manifest.json").read_text())["captures"]
DCMTK = Path("/usr/bin")
HAS_DCMTK = (DCMTK / "dcmftest").exists()


def stores(entry: dict[str, Any]) -> list[tuple[int, dict, dict]]:
    """(association number, association, operation) of each C-STORE whose request is seen."""
    return [(n, a, o) for n, a in enumerate(entry["associations"], 1)
            for o in a["operations"]
            if o["op"] == "C-STORE" and o.get("visible", "complete") == "complete"]


def export(capture: Path, outdir: Path, *extra: str) -> int:
    return main(["export-objects", str(capture), str(outdir), "--no-progress", *extra])


def dcmtk_accepts(path: Path, partial: bool) -> None:
    if not HAS_DCMTK:
        return
    r = subprocess.run([DCMTK / "dcmftest", path], capture_output=True, text=True)
    assert r.stdout.startswith("yes:"), r.stdout
    r = subprocess.run([DCMTK / "dcmdump", "-q", "+E", path], capture_output=True, text=True)
    if not partial:
        assert r.returncode == 0 and not r.stderr, f"{path.name}: {r.stderr}"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if stores(e)], ids=lambda e: e["file"])
def test_sample_capture(entry: dict[str, Any], tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    outdir = tmp_path / "out"
    assert export(CAPTURES / entry["file"], outdir) == 0
    out, err = capsys.readouterr()
    files = {text(split_part10(f)[0][3]): f for f in outdir.iterdir()}
    expected = stores(entry)
    assert len(files) == len(expected) == len(out.splitlines())
    for n, assoc, op in expected:
        path = files[op["sop_instance"]]
        partial = op.get("completed", True) is False
        assert path.name.endswith(".partial.dcm") == partial
        if partial:
            assert "incomplete" in err and path.name in err
        meta, body = split_part10(path)
        assert text(meta[2]) == op.get("sop_class", "1.2.840.10008.5.1.4.1.1.2")
        assert text(meta[0x10]) == op["transfer_syntax"]
        if not entry["starts_mid_association"]:
            sender = assoc["calling_ae"] if op["invoker"] == "requestor" else assoc["called_ae"]
            assert text(meta[0x16]) == sender
            assert path.name.startswith(f"A{n:04d}_{sender}-to-")
        else:
            assert "guessed" in err
        dcmtk_accepts(path, partial)


def test_all_transfer_syntaxes_exported(tmp_path: Path) -> None:
    assert export(CAPTURES / "store-transfer-syntaxes.pcap", tmp_path) == 0
    syntaxes = {text(split_part10(f)[0][0x10]) for f in tmp_path.iterdir()}
    assert syntaxes == {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                        "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.70",
                        "1.2.840.10008.1.2.5"}


@pytest.mark.parametrize(("args", "count", "prefix"), [
    (["--association", "2"], 2, "A0002_STORESCU02"),
    (["--ae", "storescu03"], 2, "A0003_STORESCU03"),
    (["--ae", "STORESCU01", "--ae", "STORESCU05"], 4, None),
    (["--sop-class", "CT Image"], 10, None),
    (["--sop-class", "1.2.840.10008.5.1.4.1.1.2"], 10, None),
    (["--sop-class", "MR Image"], 0, None),
    (["--association", "1", "--ae", "STORESCU02"], 0, None),
])
def test_filters(tmp_path: Path, args: list[str], count: int, prefix: str | None) -> None:
    assert export(CAPTURES / "store-many-associations.pcap", tmp_path, *args) == 0
    files = list(tmp_path.iterdir())
    assert len(files) == count
    assert all(f.name.startswith(prefix) for f in files) if prefix else True


def test_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert export(tmp_path / "missing.pcap", tmp_path / "o1") == 2
    notcap = tmp_path / "notes.txt"
    notcap.write_text("not a capture at all, just some words\n" * 10)
    assert export(notcap, tmp_path / "o2") == 2
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert export(CAPTURES / "echo.pcap", blocker / "sub") == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("dicomsniff: ") for line in err)
    assert "cannot write to" in err[2]
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_anonymize(tmp_path: Path) -> None:
    pytest.importorskip("dicomanonymizer")
    import pydicom

    src = CAPTURES / "store-transfer-syntaxes.pcap"
    plain, anon = tmp_path / "plain", tmp_path / "anon"
    assert export(src, plain) == 0
    assert export(src, anon, "--anonymize") == 0
    originals = [pydicom.dcmread(f) for f in sorted(plain.iterdir())]
    secrets = {str(v) for ds in originals for v in (
        ds.PatientName, ds.PatientID, ds.SOPInstanceUID, ds.StudyInstanceUID,
        ds.SeriesInstanceUID)}
    files = sorted(anon.iterdir())
    assert len(files) == len(originals) == 6
    studies = set()
    for f in files:
        data = f.read_bytes()
        assert not any(s.encode() in data or s in f.name for s in secrets), f.name
        ds = pydicom.dcmread(f)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPInstanceUID in f.name
        studies.add(ds.StudyInstanceUID)
        dcmtk_accepts(f, False)
    assert len(studies) == 1  # one original study: one new study UID in every file


def test_memory_stays_bounded(tmp_path: Path) -> None:
    """A 16 MB data set goes to its file as it arrives: the peak is a small multiple of the
    write buffer, not the object."""
    from tests import builders as b

    size = 16 << 20
    body = struct.pack("<HHI", 0x7FE0, 0x0010, size - 8) + bytes(size - 8)
    ctx = [(1, b.CT_STORAGE, [b.IMPLICIT_LE])]
    frames = conversation(43000, [
        (0, b.associate_rq("PACS", "CT", ctx)),
        (1, b.associate_ac("PACS", "CT", [(1, 0, b.IMPLICIT_LE)])),
        (0, b.store_request(1, body, ctx=1, instance="1.2.3.4.5")),
        (1, b.store_response(1, 0, ctx=1, instance="1.2.3.4.5")),
        (0, b.release_rq()), (1, b.release_rp())])
    cap = write_pcap(tmp_path / "big.pcap", frames)
    del frames, body
    tracemalloc.start()
    try:
        assert export(cap, tmp_path / "out") == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (out,) = (tmp_path / "out").iterdir()
    assert out.stat().st_size > size
    assert peak < 8 << 20, f"peak {peak} bytes for a {size}-byte object"


def test_disk_full_stops_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails (ENOSPC) ends the export with one line, exit 2, no temporary files."""
    import errno

    from dicomsniff.objects import export as ex

    real = ex.ObjectSink.write
    calls = [0]

    def failing(self: ex.ObjectSink, data: bytes) -> None:
        calls[0] += 1
        if calls[0] > 5:
            raise ex.ExportError(errno.ENOSPC, f"cannot write {self.tmp}: No space left")
        real(self, data)

    monkeypatch.setattr(ex.ObjectSink, "write", failing)
    assert export(CAPTURES / "store-small-pdu.pcap", tmp_path) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "No space left" in err[0] and "export stopped" in err[0]
    assert list(tmp_path.iterdir()) == []
