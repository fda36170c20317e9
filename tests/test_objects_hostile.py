"""export-objects file names built from hostile wire data never leave OUTDIR nor clobber a file.

AE titles like ``../../etc``, ``a/b``, NUL bytes and a 300-character SOP Instance UID arrive in
hand-built associations (tests/builders.py); every file must land in OUTDIR itself, with a safe
name, and an existing file (or a symlink planted on the expected name) must stay untouched.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from dicomsniff.cli import main
from dicomsniff.objects import names
from tests import builders as b

LONG_UID = "1.2." + "3" * 300
HOSTILE = [("../../etc", "a/b\\c", "1.2.3.4"),
           ("/", "..", "../../../../tmp/x"),
           ("NUL\x00HERE", "\x00\x00", LONG_UID),
           ("..", "....", "..")]


def write_pcap(path: Path, frames: list[bytes]) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000, i * 1000, len(f), len(f)) + f)
    path.write_bytes(b"".join(out))
    return path


def conversation(port: int, exchanges: list[tuple[int, bytes]]) -> list[bytes]:
    """Frames of one TCP connection: handshake, each (side, bytes) in turn, FINs."""
    c = b.TcpConversation(client=("192.0.2.1", port), server=("192.0.2.2", 104)).handshake()
    for side, data in exchanges:
        c.send(side, data)
    return c.close().frames


def dataset(n: int) -> bytes:
    """A small implicit VR LE data set (what it says does not matter to the export)."""
    value = f"HOSTILE^{n}".encode()
    value += b" " * (len(value) % 2)
    return struct.pack("<HHI", 0x0010, 0x0010, len(value)) + value


def store_association(port: int, calling: str, called: str, instance: str, n: int,
                      cut: bool = False) -> list[bytes]:
    ctx = [(1, b.CT_STORAGE, [b.IMPLICIT_LE])]
    req = b.store_request(1, dataset(n), ctx=1, instance=instance)
    if cut:
        req = req[:-4]  # the data set never ends: the association aborts
        return conversation(port, [(0, b.associate_rq(called, calling, ctx)),
                                   (1, b.associate_ac(called, calling, [(1, 0, b.IMPLICIT_LE)])),
                                   (0, req), (1, b.abort(2, 0))])
    return conversation(port, [
        (0, b.associate_rq(called, calling, ctx)),
        (1, b.associate_ac(called, calling, [(1, 0, b.IMPLICIT_LE)])),
        (0, req), (1, b.store_response(1, 0, ctx=1, instance=instance)),
        (0, b.release_rq()), (1, b.release_rp())])


@pytest.fixture
def hostile_capture(tmp_path: Path) -> Path:
    frames: list[bytes] = []
    for k, (calling, called, uid) in enumerate(HOSTILE):
        frames += store_association(41000 + k, calling, called, uid, k)
    return write_pcap(tmp_path / "hostile.pcap", frames)


def everything_under(root: Path) -> set[Path]:
    return {Path(d) / f for d, _dirs, files in os.walk(root) for f in files}


def test_hostile_names_stay_in_outdir(tmp_path: Path, hostile_capture: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    jail = tmp_path / "jail"
    outdir = jail / "out"
    outdir.mkdir(parents=True)
    before = everything_under(tmp_path)
    assert main(["export-objects", str(hostile_capture), str(outdir), "--no-progress"]) == 0
    created = everything_under(tmp_path) - before
    assert len(created) == len(HOSTILE)
    for path in created:
        assert path.parent == outdir, path
        assert not path.name.startswith(".")
        assert len(path.name.encode()) <= names.MAX_NAME
        assert set(path.name) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789._-"), path.name
        assert ".." not in path.name
    out = capsys.readouterr().out
    assert out.count("\n") == len(HOSTILE) and "\x00" not in out


def test_existing_files_and_symlinks_are_never_replaced(tmp_path: Path,
                                                        hostile_capture: Path) -> None:
    outdir = tmp_path / "out"
    first = tmp_path / "first"
    assert main(["export-objects", str(hostile_capture), str(first), "--no-progress"]) == 0
    names_seen = sorted(p.name for p in first.iterdir())
    outdir.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (outdir / names_seen[0]).write_text("already here")
    os.symlink(victim, outdir / names_seen[1])
    assert main(["export-objects", str(hostile_capture), str(outdir), "--no-progress"]) == 0
    assert (outdir / names_seen[0]).read_text() == "already here"
    assert victim.read_text() == "keep me"
    assert os.path.islink(outdir / names_seen[1])
    files = sorted(p.name for p in outdir.iterdir())
    assert len(files) == len(HOSTILE) + 2
    for taken in names_seen[:2]:
        stem = taken[: -len(".dcm")]
        assert f"{stem}-2.dcm" in files


def test_safe_part_and_exclusive_creation(tmp_path: Path) -> None:
    assert names.safe_part("../../etc") == "etc"
    assert names.safe_part("/") == "unknown"
    assert names.safe_part("a\x00b") == "a_b"
    long = names.safe_part(LONG_UID)
    assert len(long) == names.MAX_PART and long != names.safe_part(LONG_UID + "4")
    with pytest.raises(ValueError):
        names.create_exclusive(str(tmp_path), "../x", ".dcm")
    with pytest.raises(ValueError):
        names.create_exclusive(str(tmp_path), "x\x00", ".dcm")
    fd, p1 = names.create_exclusive(str(tmp_path), "same", ".dcm")
    os.close(fd)
    fd, p2 = names.create_exclusive(str(tmp_path), "same", ".dcm")
    os.close(fd)
    assert (os.path.basename(p1), os.path.basename(p2)) == ("same.dcm", "same-2.dcm")


def test_cut_data_set_is_written_as_partial(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cap = write_pcap(tmp_path / "cut.pcap",
                     store_association(42000, "MODALITY", "PACS", "1.2.3.9", 9, cut=True))
    outdir = tmp_path / "out"
    assert main(["export-objects", str(cap), str(outdir), "--no-progress"]) == 0
    files = [p.name for p in outdir.iterdir()]
    assert files == ["A0001_MODALITY-to-PACS_1.2.3.9.partial.dcm"]
    err = capsys.readouterr().err
    assert "incomplete" in err and files[0] in err
