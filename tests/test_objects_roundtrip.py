"""export-objects against what the receiving peers wrote, byte for byte.

The receivers of the ``objects-roundtrip`` scenario (dcmtk storescp, movescu and getscu, all
with ``+B``: bit-preserving, the data set written exactly as read) keep every object that
reached them. Exporting the capture must give the same data set bytes, and File Meta
Information that says what the wire said: SOP class and instance from the C-STORE command,
the transfer syntax accepted for its presentation context, the sender's AE title.

Two sources: the committed ``captures/received/`` (always), and a fresh recording between
network namespaces of our own (root, ``ip netns`` and dcmtk needed; skipped otherwise).
Regenerate the committed data with ``sudo python3 -m tests.test_objects_roundtrip``.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dicomsniff.cli import main  # noqa: E402

RECEIVED = ROOT / "captures" / "received"
SCENARIO = "objects-roundtrip"
RECEIVER_DIRS = ("storescp-received", "moved", "got")
DCMTK = Path("/usr/bin")
ALL_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.5"}


def split_part10(path: Path) -> tuple[dict[int, bytes], bytes]:
    """(group 0002 element values by element number, the data set bytes) of a Part 10 file;
    with struct, so the comparison does not depend on any DICOM library's reading."""
    data = path.read_bytes()
    assert data[128:132] == b"DICM", f"{path}: no DICM prefix"
    pos, meta = 132, {}
    end = None
    while end is None or pos < end:
        group, elem = struct.unpack_from("<HH", data, pos)
        assert group == 2, f"{path}: group {group:04X} inside the file meta"
        vr = data[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR"):
            length = struct.unpack_from("<I", data, pos + 8)[0]
            start = pos + 12
        else:
            length = struct.unpack_from("<H", data, pos + 6)[0]
            start = pos + 8
        meta[elem] = data[start:start + length]
        if elem == 0:
            end = start + length + struct.unpack_from("<I", data, start)[0]
        pos = start + length
    return meta, data[pos:]


def text(value: bytes) -> str:
    return value.rstrip(b"\x00 ").decode("ascii")


def export(capture: Path, outdir: Path, *extra: str) -> int:
    return main(["export-objects", str(capture), str(outdir), "--no-progress", *extra])


def compare(capture: Path, received: Path, outdir: Path, truth: dict) -> None:
    """Every received object was exported with the same data set bytes and true meta."""
    assert export(capture, outdir) == 0
    ours = {}
    for f in outdir.glob("*.dcm"):
        meta, body = split_part10(f)
        ours[text(meta[3])] = (f, meta, body)
    theirs = [f for d in RECEIVER_DIRS for f in (received / d).iterdir()]
    ops = {o["sop_instance"]: (n, a, o) for n, a in enumerate(truth["associations"], 1)
           for o in a["operations"] if o["op"] == "C-STORE"}
    assert len(theirs) == len(ops) == len(ours) == 10
    syntaxes = set()
    for f in theirs:
        meta, body = split_part10(f)
        uid = text(meta[3])
        assert uid in ours, f"{f.name}: not exported"
        mine, my_meta, my_body = ours[uid]
        assert my_body == body, f"{mine.name}: data set differs from what {f.parent.name} wrote"
        n, assoc, op = ops[uid]
        sender, receiver = ((assoc["calling_ae"], assoc["called_ae"])
                            if op["invoker"] == "requestor"
                            else (assoc["called_ae"], assoc["calling_ae"]))
        assert text(my_meta[2]) == text(meta[2]) == op["sop_class"]
        assert text(my_meta[0x10]) == text(meta[0x10]) == op["transfer_syntax"]
        assert text(my_meta[0x16]) == sender  # getscu writes its own title there; we don't
        assert mine.name == f"A{n:04d}_{sender}-to-{receiver}_{uid}.dcm"
        syntaxes.add(text(my_meta[0x10]))
        check_with_dcmtk(mine, text(my_meta[0x10]))
    assert syntaxes == ALL_SYNTAXES


def check_with_dcmtk(path: Path, transfer_syntax: str) -> None:
    """dcmtk reads it as a Part 10 file; dciodvfy (dicom3tools, when installed) finds the IOD
    and nothing wrong with the file meta. The synthetic images lack a few type 2 attributes of
    the CT IOD (the peers' business, not the export's), and dciodvfy cannot inflate deflated
    files (storescp's own copy fails the same way)."""
    if not (DCMTK / "dcmdump").exists():
        return
    r = subprocess.run([DCMTK / "dcmftest", path], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("yes:"), r.stdout + r.stderr
    r = subprocess.run([DCMTK / "dcmdump", "-q", "+E", path], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr, r.stderr
    if shutil.which("dciodvfy") and transfer_syntax != "1.2.840.10008.1.2.1.99":
        r = subprocess.run(["dciodvfy", path], capture_output=True, text=True)
        report = r.stdout + r.stderr
        assert report.startswith("CTImage"), report
        meta = [ln for ln in report.splitlines() if re.search(
            r"Meta|MediaStorage|TransferSyntax|SourceApplication|\(0x0002", ln)]
        assert not meta, meta


def test_committed_roundtrip_byte_for_byte(tmp_path: Path) -> None:
    truth = json.loads((RECEIVED / "manifest.json").read_text())["captures"][0]
    compare(RECEIVED / truth["file"], RECEIVED / SCENARIO, tmp_path / "out", truth)


# -- a fresh recording ------------------------------------------------------------------------

def record(out_dir: Path, prefix: str) -> tuple[Path, Path, dict]:
    """Record the scenario; returns (pcap, directory of the receivers' files, manifest entry)."""
    from captures.record import Recorder

    work_root = out_dir / "work"
    work_root.mkdir(parents=True)
    entry = Recorder(out_dir, prefix, keep_work=True, work_root=work_root,
                     verbose=False).record(SCENARIO)
    work = next(work_root.glob(f"{prefix}-{SCENARIO}-*"))
    received = out_dir / SCENARIO
    for d in RECEIVER_DIRS:
        shutil.copytree(work / d, received / d)
    shutil.rmtree(work_root)
    return out_dir / entry["file"], received, entry


def _recording_possible() -> str | None:
    from captures.netns import netns_available

    ok, why = netns_available()
    if not ok:
        return why
    if not (DCMTK / "storescp").exists():
        return "dcmtk not installed"
    return None


@pytest.mark.netns
def test_fresh_recording_byte_for_byte(tmp_path: Path) -> None:
    why = _recording_possible()
    if why:
        pytest.skip(why)
    prefix = f"dsobj{uuid.uuid4().hex[:6]}"
    pcap, received, entry = record(tmp_path / "rec", prefix)
    compare(pcap, received, tmp_path / "out", entry)


def regenerate(dest: Path = RECEIVED) -> None:
    """Re-record the committed round trip (root needed): pcap, received files, manifest."""
    from captures.record import write_manifest

    with tempfile.TemporaryDirectory() as tmp:
        pcap, received, entry = record(Path(tmp), "dsobjgen")
        if (dest / SCENARIO).exists():
            shutil.rmtree(dest / SCENARIO)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(pcap, dest / pcap.name)
        shutil.copytree(received, dest / SCENARIO)
        (dest / "manifest.json").unlink(missing_ok=True)
        write_manifest(dest / "manifest.json", [entry])


if __name__ == "__main__":
    regenerate()
