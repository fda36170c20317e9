"""Several captures through every subcommand (one shared opening: cli/args.py open_input):
analyze (JSON with frame references naming the file, the report, exit statuses, --db,
--parquet, --dask local), diagram, export-objects, show and the TUI's reading back of frames."""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
MOVE = CAPTURES / "move.pcap"

pytestmark = pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap needed")


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dicomsniff", *args], input=stdin,
                          capture_output=True, timeout=300)


@pytest.fixture
def pieces(tmp_path: Path) -> list[Path]:
    """move.pcap cut every 40 frames, the second piece gzipped."""
    d = tmp_path / "p"
    d.mkdir()
    subprocess.run(["editcap", "-c", "40", str(MOVE), str(d / "move.pcap")], check=True,
                   capture_output=True)
    out = sorted(d.iterdir())
    gz = out[1].with_name(out[1].name + ".gz")
    gz.write_bytes(gzip.compress(out[1].read_bytes()))
    out[1].unlink()
    out[1] = gz
    return out


def sql(db: Path, query: str) -> list[list]:
    """A DuckDB query in a child process (DuckDB is not loaded into the test process)."""
    script = ("import duckdb, json, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
              "print(json.dumps(con.execute(sys.argv[2]).fetchall(), default=str))")
    r = subprocess.run([sys.executable, "-c", script, str(db), query], capture_output=True,
                       text=True, check=True, timeout=120)
    return json.loads(r.stdout)


def _renumber(m: re.Match, index: dict[str, int], per: int) -> str:
    """ "frames a.pcap#5-b.pcap#3" (or "-12", the same file) -> merged "frames A-B", for
    pieces of ``per`` frames."""
    a = index[m.group(1)] * per + int(m.group(2))
    b = index[m.group(3) or m.group(1)] * per + int(m.group(4))
    return f"frames {a}-{b}"


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_analyze_json_of_pieces_is_the_whole_with_file_references(pieces: list[Path]) -> None:
    whole = cli("analyze", str(MOVE), "--json")
    split = cli("analyze", *map(str, reversed(pieces)), "--json")
    assert whole.returncode == split.returncode == 0, split.stderr
    w, s = _records(whole.stdout.decode()), _records(split.stdout.decode())
    strip = ("file", "file_frame", "frame_refs", "bytes")  # editcap writes pcapng: other sizes
    assert [{k: v for k, v in r.items() if k not in strip} for r in s] == [
        {k: v for k, v in r.items() if k not in strip} for r in w]
    for r in s:
        if r["type"] == "transaction":
            n = r["request_frame"]
            piece = pieces[(n - 1) // 40]
            assert (Path(r["file"]).name, r["file_frame"]) == (piece.name, (n - 1) % 40 + 1)
            assert r["frame_refs"][str(n)] == f"{piece.name}#{(n - 1) % 40 + 1}"
    assert "file" not in w[0]  # one file: records as before


def test_analyze_report_names_files_and_bad_files_are_one_line_each(pieces: list[Path],
                                                                    tmp_path: Path) -> None:
    bad = tmp_path / "notes.pcap"
    bad.write_text("not a capture\n")
    r = cli("analyze", str(pieces[0].parent), str(bad), str(tmp_path / "missing.pcap"))
    assert r.returncode == 3
    err = r.stderr.decode().splitlines()
    assert err == [f"dicomsniff: {tmp_path / 'missing.pcap'}: no such file",
                   f"dicomsniff: {bad}: not a pcap or pcapng capture file (looks like text: "
                   "'not a capture')"]
    out = r.stdout.decode()
    assert "2 association(s)" in out and ".pcap#" in out
    nothing = cli("analyze", str(bad), str(tmp_path / "missing.pcap"))
    assert nothing.returncode == 2
    assert len(nothing.stderr.decode().splitlines()) == 2
    assert all(line.startswith("dicomsniff: ") for line in nothing.stderr.decode().splitlines())


def test_analyze_db_and_parquet(pieces: list[Path], tmp_path: Path) -> None:
    if importlib.util.find_spec("duckdb") is None:
        pytest.skip("duckdb not installed")
    db, pq = tmp_path / "s.duckdb", tmp_path / "pq"
    for _ in range(2):  # runs append
        r = cli("analyze", *map(str, pieces), "--db", str(db), "--parquet", str(pq),
                "--sensor", "CT01", "--json")
        assert r.returncode == 0, r.stderr
    recs = _records(r.stdout.decode())
    runs, rows = sql(db, "SELECT count(DISTINCT run_id), count(*) FROM transactions")[0]
    assert (runs, rows) == (2, 2 * sum(x["type"] == "transaction" for x in recs))
    files = sql(db, "SELECT DISTINCT file FROM transactions WHERE sensor = 'CT01'")
    assert {Path(f[0]).name for f in files} <= {p.name for p in pieces}
    n = sql(db, f"SELECT count(*) FROM read_parquet('{pq}/associations/*/*.parquet')")[0][0]
    assert n == 2 * sum(x["type"] == "association" for x in recs)
    bad = cli("analyze", str(MOVE), "--db", str(tmp_path / "no" / "such" / "dir" / "x.duckdb"))
    assert bad.returncode == 2 and len(bad.stderr.decode().splitlines()) == 1


def test_analyze_dask_local_is_one_process(pieces: list[Path]) -> None:
    if importlib.util.find_spec("distributed") is None:
        pytest.skip("dask.distributed not installed")
    one = cli("analyze", *map(str, pieces), "--json")
    many = cli("analyze", *map(str, pieces), "--json", "--dask", "local", "--workers", "2")
    assert one.returncode == 0, one.stderr
    assert many.returncode == 0, many.stderr
    assert sorted(many.stdout.decode().splitlines()) == sorted(one.stdout.decode().splitlines())


def test_diagram_export_and_show_read_pieces_as_the_whole(pieces: list[Path],
                                                          tmp_path: Path) -> None:
    specs = list(map(str, pieces))
    d1, d2 = tmp_path / "whole.mmd", tmp_path / "split.mmd"
    assert cli("diagram", str(MOVE), "-o", str(d1)).returncode == 0
    assert cli("diagram", *specs, "-o", str(d2)).returncode == 0
    index = {p.name: k for k, p in enumerate(pieces)}
    named = re.compile(r"frames ([\w.]+)#35;(\d+)-(?:([\w.]+)#35;)?(\d+)")
    strip = [named.sub(lambda m: _renumber(m, index, 40), line)
             for line in d2.read_text().splitlines() if "dicomsniff:" not in line]
    assert any("#35;" in line for line in d2.read_text().splitlines())  # named by file
    assert strip == [line for line in d1.read_text().splitlines() if "dicomsniff:" not in line]
    o1, o2 = tmp_path / "o1", tmp_path / "o2"
    assert cli("export-objects", str(MOVE), str(o1)).returncode == 0
    assert cli("export-objects", *specs, str(o2)).returncode == 0
    files = sorted(p.name for p in o1.iterdir())
    assert files and files == sorted(p.name for p in o2.iterdir())
    assert all((o1 / f).read_bytes() == (o2 / f).read_bytes() for f in files)
    s1 = cli("show", str(MOVE), "--transaction", "3")
    s2 = cli("show", *specs, "--transaction", "3")
    assert s1.returncode == s2.returncode == 0 and s1.stdout == s2.stdout


def test_conformance_and_diff_open_pieces_as_the_other_subcommands(pieces: list[Path],
                                                                  tmp_path: Path) -> None:
    """conformance and diff open their captures through open_input: pieces in any order,
    compressed, --dedup-window, bad files one line each with exit 3, none readable exit 2."""
    specs = list(map(str, reversed(pieces)))
    whole = cli("conformance", str(MOVE), "--format", "csv", "--view", "dimse")
    split = cli("conformance", *specs, "--format", "csv", "--view", "dimse",
                "--dedup-window", "0.5")
    assert whole.returncode == split.returncode == 0, split.stderr
    assert split.stdout == whole.stdout and b"C-MOVE" in whole.stdout
    bad = tmp_path / "notes.pcap"
    bad.write_text("not a capture\n")
    missing = tmp_path / "missing.pcap"
    lines = [f"dicomsniff: {missing}: no such file",
             f"dicomsniff: {bad}: not a pcap or pcapng capture file (looks like text: "
             "'not a capture')"]
    r = cli("conformance", *specs, str(bad), str(missing), "--json")
    assert r.returncode == 3
    assert r.stderr.decode().splitlines() == lines
    summary = _records(r.stdout.decode())[-1]
    assert summary["associations"] == 2 and summary["capture_errors"] == [
        line.removeprefix("dicomsniff: ") for line in lines]
    nothing = cli("conformance", str(bad), str(missing))
    assert nothing.returncode == 2 and nothing.stderr.decode().splitlines() == lines
    same = cli("diff", "--before", *specs, "--after", str(MOVE))
    assert same.returncode == 0, same.stderr
    assert "no change" in same.stdout.decode()
    d = cli("diff", "--before", *specs, str(bad), "--after", str(MOVE), "--dedup-window", "0")
    assert d.returncode == 3 and d.stderr.decode().splitlines() == lines[1:]
    gone = cli("diff", str(missing), str(MOVE))
    assert gone.returncode == 2 and gone.stderr.decode().splitlines() == lines[:1]
    sensors = sorted(str(p) for p in (CAPTURES / "sensors").glob("*.pcap"))
    both = _records(cli("conformance", *sensors, "--json").stdout.decode())[-1]
    one = _records(cli("analyze", *sensors, "--json").stdout.decode())[-1]
    assert both["associations"] == one["associations"] >= 1


def test_diagrams_and_report_name_frames_by_file(tmp_path: Path) -> None:
    """Several files: the diagram's frames are "file#n" (the file and its own frame number,
    as Wireshark shows it there), in the SVG gutter and in collapsed runs; the report says
    the file of each transaction's request."""
    src = CAPTURES / "store-concurrent.pcap"
    d = tmp_path / "p"
    d.mkdir()
    subprocess.run(["editcap", "-c", "100", str(src), str(d / "sc.pcap")], check=True,
                   capture_output=True)
    pieces = sorted(d.iterdir())
    assert len(pieces) >= 3

    def name(n: int) -> str:  # merged frame -> "file#n" (pieces of 100 frames)
        return f"{pieces[(n - 1) // 100].name}#{(n - 1) % 100 + 1}"

    whole, split = tmp_path / "w.svg", tmp_path / "s.svg"
    assert cli("diagram", str(src), "-o", str(whole)).returncode == 0
    r = cli("diagram", *map(str, reversed(pieces)), "-o", str(split))
    assert r.returncode == 0, r.stderr
    frames = [int(n) for n in re.findall(r">frame (\d+)<", whole.read_text())]
    named = re.findall(r">(sc_[^<#]+\.pcap#\d+)<", split.read_text())
    assert frames and named == [name(n) for n in frames]
    assert ">frame " not in split.read_text().replace(">frame<", "")
    m1 = cli("diagram", str(src), "--format", "mermaid").stdout.decode()
    m2 = cli("diagram", *map(str, pieces), "--format", "mermaid").stdout.decode().replace(
        "#35;", "#")  # mermaid escapes #
    runs = re.findall(r"frames (\d+)-(\d+)", m1)
    assert runs
    for a, b in runs:
        fa, fb = name(int(a)), name(int(b))
        same = fa.split("#")[0] == fb.split("#")[0]
        assert f"frames {fa}-{fb.split('#')[1] if same else fb}" in m2
    rep = cli("analyze", *map(str, pieces)).stdout.decode()
    whole_json = _records(cli("analyze", str(src), "--json").stdout.decode())
    for t in (x for x in whole_json if x["type"] == "transaction"):
        assert f"request in {name(t['request_frame'])}" in rep


def test_time_shift_option(tmp_path: Path) -> None:
    """--time-shift PATTERN=SECONDS on the command line (every subcommand that reads a
    capture); a malformed one is argparse's usage error, exit 2."""
    scu, scp = sorted((CAPTURES / "sensors").glob("*.pcap"), key=lambda p: "scp" in p.name)
    off = tmp_path / "fast-scp.pcap"
    subprocess.run(["editcap", "-t", "0.04", str(scp), str(off)], check=True,
                   capture_output=True)
    skewed = _records(cli("analyze", str(scu), str(off), "--json").stdout.decode())
    assert any(r.get("code") == "CAPTURE-SENSOR-CLOCKS" for r in skewed)
    fixed = cli("analyze", str(scu), str(off), "--json", "--time-shift", "fast-*=-0.04")
    assert fixed.returncode == 0, fixed.stderr
    assert not any(r.get("code") == "CAPTURE-SENSOR-CLOCKS"
                   for r in _records(fixed.stdout.decode()))
    bad = cli("analyze", str(scu), "--time-shift", "no-seconds")
    assert bad.returncode == 2 and b"Traceback" not in bad.stderr
    assert "--time-shift: PATTERN=SECONDS" in bad.stderr.decode().splitlines()[-1]


def test_store_holds_studies_and_conformance_as_their_json(tmp_path: Path) -> None:
    """analyze --db/--parquet also writes the study journey's records (studies table) and
    conformance as observed (conformance_aes, conformance_pairs), field for field what
    `studies --json` and `conformance --json` write."""
    if importlib.util.find_spec("duckdb") is None:
        pytest.skip("duckdb not installed")
    cap = str(CAPTURES / "journey" / "journey-clean.pcap")
    db, pq = tmp_path / "s.duckdb", tmp_path / "pq"
    r = cli("analyze", cap, "--db", str(db), "--parquet", str(pq), "--json")
    assert r.returncode == 0, r.stderr
    studies = [x for x in _records(cli("studies", cap, "--json").stdout.decode())
               if x["type"] == "study"]
    conf = [x for x in _records(cli("conformance", cap, "--json").stdout.decode())
            if x["type"] in ("ae", "pair")]
    assert studies and conf

    def rows(table: str, key: str, source: str | None = None) -> list[dict]:
        got = sql(db, f"SELECT to_json(t) FROM {source or table} t ORDER BY {key}")
        out = []
        for (row,) in got:
            rec = json.loads(row) if isinstance(row, str) else row
            for k, v in list(rec.items()):
                if isinstance(v, str) and v[:1] in "[{":
                    rec[k] = json.loads(v)
            out.append(rec)
        return out

    def same(stored: list[dict], want: list[dict], key: str) -> None:
        want = sorted(want, key=lambda x: str(x[key]))
        assert len(stored) == len(want)
        for s, w in zip(stored, want, strict=True):
            assert {k: s[k] for k in w if k != "type"} == {k: v for k, v in w.items()
                                                          if k != "type"}

    same(rows("studies", "study_instance_uid"), studies, "study_instance_uid")
    same(rows("conformance_aes", "ae_title"), [x for x in conf if x["type"] == "ae"],
         "ae_title")
    pairs = rows("conformance_pairs", "scu || scp")
    same(pairs, sorted([x for x in conf if x["type"] == "pair"], key=lambda x: x["scu"] + x["scp"]),
         "scu")
    n = sql(db, f"SELECT count(*) FROM read_parquet('{pq}/studies/*/*.parquet')")[0][0]
    assert n == len(studies)
