"""Shards of connections (dicomsniff/parallel): each connection in exactly one shard, frame
numbers kept, the shards' logs replayed into the records of one process, what ties
associations of different shards together included; the shards on a Dask cluster, and
--parquet alone written by the shards themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source
from dicomsniff.parallel.local import replay, run_worker
from dicomsniff.parallel.shard import flow_shard
from dicomsniff.sources.merge import open_capture

CAPTURES = Path(__file__).resolve().parent.parent / "captures"


def records(assocs, capture_findings) -> list[str]:
    out = []
    for a in assocs:
        out.append(a.to_record())
        out.extend(t.to_record() for t in a.transactions)
        out.extend(f.to_record() for f in a.findings)
    out.extend(f.to_record() for f in capture_findings)
    return sorted(json.dumps(r, sort_keys=True) for r in out)


def _journey(rec: str) -> bool:
    r = json.loads(rec)
    return r["type"] == "finding" and r["association"] is None and r["code"].startswith(
        ("STUDY-", "PRINT-", "UPS-"))


def one_process(path: Path) -> list[str]:
    an = Analyzer()
    analyze_source(path, an)
    return records(an.associations, [f for f in an.findings if f.association is None])


def shards(path: Path, count: int, config: dict | None = None) -> tuple[list, Analyzer]:
    """``path`` analysed by ``count`` workers (parallel/local.py, in this process), their logs
    replayed into one engine that keeps its associations."""
    config = config or {}
    logs = [run_worker(open_capture(str(path)), i, count, config) for i in range(count)]
    an = Analyzer(tls_keylog=config.get("tls_keylog"))
    replay(logs, an)
    return logs, an


def merged(an: Analyzer) -> list[str]:
    return records(an.associations, [f for f in an.findings if f.association is None])


def homes(logs) -> dict[int, int]:
    """Each association's worker, by its first frame."""
    return {ev[4][0].first_frame: log.index for log in logs for ev in log.events
            if ev[3] == "assoc"}


def test_a_flow_and_its_reverse_share_a_shard() -> None:
    from dissectors.net import reverse_key

    keys = [bytes([10, 0, h, 1, 10, 0, h, 2]) + p.to_bytes(2, "big") + b"\x2b\x68"
            for h in range(100) for p in (40000, 40001)]
    for n in (2, 3, 8):
        shards = [flow_shard(k, n) for k in keys]
        assert shards == [flow_shard(reverse_key(k), n) for k in keys]
        assert set(shards) == set(range(n))  # every shard gets work


def hosts_apart(tmp_path: Path) -> Path:
    """The committed IPv4 captures merged, each moved onto its own pair of hosts (10.0.k.1 and
    10.0.k.2): one capture with many host pairs, as a site's sensor sees it. Only the IPv4
    addresses change (the analysis does not check IP checksums)."""
    import dataclasses

    from captures import pcapfile

    out = tmp_path / "hosts.pcap"
    names = ["move.pcap", "store-concurrent.pcap", "storage-commitment-separate.pcap",
             "mpps.pcap", "find-cancel.pcap", "abort-mid-transfer.pcap", "get.pcap",
             "associate-reject.pcap", "store-many-associations.pcap", "worklist.pcap"]
    frames = []
    for k, name in enumerate(names, 1):
        header, _lt = pcapfile.read_header(CAPTURES / name)
        for fr in pcapfile.frames(CAPTURES / name):
            data = bytearray(fr.data)
            if len(data) >= 34 and data[12:14] == b"\x08\x00":
                for off in (26, 30):
                    if data[off:off + 3] == b"\xc0\x00\x02":
                        data[off:off + 4] = bytes([10, 0, k, data[off + 3]])
            frames.append(dataclasses.replace(fr, data=bytes(data)))
    frames.sort(key=lambda f: f.ts)  # stable: each capture's own order is kept
    pcapfile.write(out, header, frames)
    return out


def clients_apart(src: Path, out: Path) -> Path:
    """``src`` with each TCP connection's client moved to a host of its own (10.9.k.1): every
    association is then its own pair of hosts, so a C-MOVE and its sub-association, a
    modality's worklist query, MPPS, images and commitment all travel between different pairs
    (and land in different shards) while every byte above IP stays as recorded."""
    import dataclasses

    from captures import pcapfile

    header, _lt = pcapfile.read_header(src)
    clients: dict[tuple, bytes] = {}  # (client addr, client port) -> its new address
    frames = []
    for fr in pcapfile.frames(src):
        data = bytearray(fr.data)
        if len(data) >= 54 and data[12:14] == b"\x08\x00" and data[23] == 6:
            ihl = (data[14] & 0x0F) * 4
            sport = int.from_bytes(data[14 + ihl:16 + ihl], "big")
            dport = int.from_bytes(data[16 + ihl:18 + ihl], "big")
            flags = data[14 + ihl + 13]
            src_ep, dst_ep = (bytes(data[26:30]), sport), (bytes(data[30:34]), dport)
            if flags & 0x02 and not flags & 0x10 and src_ep not in clients:
                k = len(clients) + 1
                clients[src_ep] = bytes([10, 9, k, 1])
            if src_ep in clients:
                data[26:30] = clients[src_ep]
            elif dst_ep in clients:
                data[30:34] = clients[dst_ep]
        frames.append(dataclasses.replace(fr, data=bytes(data)))
    pcapfile.write(out, header, frames)
    return out


# captures whose associations DICOM ties together (C-MOVE, worklist -> MPPS -> images ->
# commitment -> IAN, print, slow responses against the server's median, refused connections)
APART = ["move.pcap", "storage-commitment-separate.pcap", "store-concurrent.pcap",
         "store-many-associations.pcap", "associate-reject.pcap", "findings/move-failures.pcap",
         "findings/negotiation.pcap", "findings/no-answer.pcap",
         *(f"journey/{n}.pcap" for n in (
             "journey-clean", "journey-commit-gaps", "journey-ian-gaps", "journey-mismatch",
             "journey-mpps-gaps", "journey-mpps-open", "journey-new-study-uid",
             "journey-unscheduled", "print-report-no-role", "ups-clean", "ups-illegal"))]


@pytest.mark.parametrize("name", APART)
def test_what_spans_host_pairs_after_the_merge_is_one_process(name: str,
                                                               tmp_path: Path) -> None:
    """C-MOVE links, the rules across associations and the study journey run on the replay of
    the shards' logs (parallel/local.py): the same as one process even when the associations
    they tie together are in different shards."""
    path = clients_apart(CAPTURES / name, tmp_path / "apart.pcap")
    want = one_process(path)
    spread = 0
    for n in (2, 3, 5):
        logs, an = shards(path, n)
        spread = max(spread, len(set(homes(logs).values())))
        assert merged(an) == want, n
    assert spread >= 2  # the associations really were spread over shards


def test_a_move_to_another_host_is_linked_across_shards(tmp_path: Path) -> None:
    path = clients_apart(CAPTURES / "move.pcap", tmp_path / "apart.pcap")
    an = Analyzer()
    analyze_source(path, an)
    subs = [a for a in an.associations if a.move_transaction is not None]
    assert subs and all(a.client.split(":")[0] != b.client.split(":")[0]
                        for a in subs for b in an.associations if b not in subs)
    for n in (2, 3, 5):
        logs, got = shards(path, n)
        links = sorted((a.id, a.move_transaction) for a in got.associations
                       if a.move_transaction is not None)
        assert links == sorted((a.id, a.move_transaction) for a in subs)
        where = homes(logs)
        if len({where[a.first_frame] for a in an.associations}) > 1:
            return  # the C-MOVE and its sub-association were in different shards: linked
    raise AssertionError("no shard count separated the C-MOVE from its sub-association")


def test_shards_of_many_host_pairs_are_the_records_of_one_process(tmp_path: Path) -> None:
    path = hosts_apart(tmp_path)
    logs, an = shards(path, 3)
    assert len(set(homes(logs).values())) == 3  # the work is really spread
    want = one_process(path)
    # the study journey's findings too: replayed after the merge (parallel/local.py)
    assert merged(an) == want
    assert any(_journey(r) for r in want)


@pytest.mark.parametrize("path", sorted(CAPTURES.glob("*.pcap")), ids=lambda p: p.name)
def test_merged_shards_are_the_records_of_one_process(path: Path) -> None:
    logs, an = shards(path, 3)
    assert len(homes(logs)) == len(one_process_assocs(path))
    assert merged(an) == one_process(path)
    assert an.stats.frames == logs[0].stats["frames"]


def one_process_assocs(path: Path):
    an = Analyzer()
    analyze_source(path, an)
    return an.associations


CLUSTER = """
import sys, time
from distributed import LocalCluster
c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
print(c.scheduler_address, flush=True)
sys.stdin.read()  # until the test closes it
c.close()
"""


@pytest.fixture(scope="module")
def dask_address():
    """One Dask cluster (scheduler and two worker processes) for the module's tests, given
    to dicomsniff by its address as a real cluster is: starting one costs seconds."""
    pytest.importorskip("distributed")
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", CLUSTER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        address = proc.stdout.readline().strip()
        assert address.startswith("tcp://"), address
        yield address
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_dask_cluster_gives_the_records_of_one_process(dask_address: str,
                                                        tmp_path: Path) -> None:
    """--dask: the shards analysed on the cluster as the -j workers analyse theirs, their
    logs replayed on the client (parallel/local.py): what spans host pairs (the journey
    across hosts), two sensors, DICOMweb beside DICOM, all as one process writes them."""
    import os
    import subprocess
    import sys

    from dicomsniff.parallel.cluster import logs_on_dask

    apart = clients_apart(CAPTURES / "journey/journey-commit-gaps.pcap", tmp_path / "a.pcap")
    sensors = [str(p) for p in sorted((CAPTURES / "sensors").glob("*.pcap"))]
    web = str(CAPTURES / "dicomweb" / "mixed-dimse-dicomweb.pcap")
    env = {**os.environ, "COLUMNS": "400"}

    def cli(*more: str) -> list[str]:  # the three read as one capture (one after the other)
        r = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", str(apart),
                            *sensors, web, "--json", "--no-progress", *more],
                           capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 0, r.stderr
        return sorted(r.stdout.splitlines())

    one = cli()
    assert cli("--dask", dask_address) == one
    kinds = {json.loads(r)["type"] for r in one} | {json.loads(r).get("code") for r in one}
    assert {"http_connection", "CAPTURE-SENSOR-COPIES"} <= kinds
    assert any(k and k.startswith("STUDY-") for k in kinds)
    seen: list[tuple[int, int]] = []  # progress on long work: shards as they finish
    logs = logs_on_dask(dask_address, [str(apart)], {}, shards=3,
                        progress=lambda done, total: seen.append((done, total)))
    assert [log.index for log in logs] == [0, 1, 2]
    assert seen == [(k, 3) for k in range(4)]


PARQUET_ROWS = """
import json, sys
import pyarrow.dataset as ds
every = []
for d in sys.argv[1:]:
    out = {}
    for table in ("associations", "transactions", "findings", "studies", "conformance_aes",
                  "conformance_pairs"):
        t = ds.dataset(d + "/" + table, format="parquet", partitioning="hive").to_table()
        rows = [{k: v for k, v in r.items() if k != "run_id"} for r in t.to_pylist()]
        out[table] = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    runs = ds.dataset(d + "/runs", format="parquet").to_table().to_pylist()
    out["summary"] = [json.loads(r["summary"]) for r in runs]
    every.append(out)
print(json.dumps(every))
"""


def test_dask_shards_write_their_own_parquet_parts(dask_address: str, tmp_path: Path) -> None:
    """--dask with --parquet alone: each shard writes its part of the dataset, the client
    the capture-level findings and the run; the dataset is the one one process writes."""
    pytest.importorskip("pyarrow")
    import os
    import subprocess
    import sys

    apart = clients_apart(CAPTURES / "journey/journey-commit-gaps.pcap", tmp_path / "a.pcap")
    one, many = tmp_path / "one", tmp_path / "many"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", str(apart),
                               "--no-progress", *args], capture_output=True, text=True,
                              timeout=300, env={**os.environ, "COLUMNS": "400"})

    r1 = cli("--parquet", str(one), "--json")
    r2 = cli("--parquet", str(many), "--dask", dask_address)
    assert r1.returncode == 0 and r2.returncode == 0, r2.stderr
    assert f"written by the shards to {many}" in r2.stdout
    parts = {p.name.split("-")[2] for p in many.glob("*/day=*/*.parquet")}
    assert len(parts) >= 2  # several shards wrote their own files

    read = subprocess.run([sys.executable, "-c", PARQUET_ROWS, str(one), str(many)],
                          check=True, capture_output=True, text=True, timeout=120)
    want, got = json.loads(read.stdout)
    for table in ("associations", "transactions", "findings", "studies", "conformance_aes",
                  "conformance_pairs"):
        assert got[table] == want[table], table
    assert got["studies"] and got["conformance_aes"]
    assert any('"STUDY-' in r for r in got["findings"])  # the journey, after the merge
    (s1,), (s2,) = want["summary"], got["summary"]
    assert s2 == {k: v for k, v in s1.items() if k in s2}


# Every capture with DICOMweb traffic (HTTP connections take ids from the associations'
# counter, STOW-RS stores feed the study journey), alone and all together with DIMSE.
WEB = sorted((CAPTURES / "dicomweb").glob("*.pcap"))
TOGETHER = [*WEB, CAPTURES / "move.pcap", CAPTURES / "journey" / "journey-clean.pcap"]


def _dataset(where: Path) -> dict[str, list[str]]:
    """Every table of a Parquet dataset as sorted rows (run_id left out: each run has its
    own), and the runs' summaries."""
    import pyarrow.dataset as ds

    from dicomsniff.store.schema import TABLES

    out: dict[str, list] = {}
    for table in TABLES:
        if not (where / table).exists():
            out[table] = []
            continue
        rows = ds.dataset(where / table, format="parquet", partitioning="hive").to_table()
        out[table] = sorted(json.dumps({k: v for k, v in r.items() if k != "run_id"},
                                       sort_keys=True, default=str)
                            for r in rows.to_pylist())
    runs = ds.dataset(where / "runs", format="parquet").to_table().to_pylist()
    out["summary"] = [json.loads(r["summary"]) for r in runs]
    return out


@pytest.mark.parametrize("specs", [[p] for p in WEB] + [TOGETHER],
                         ids=[p.name for p in WEB] + ["together"])
def test_parquet_alone_from_workers_is_what_one_process_writes(
        specs: list[Path], dask_address: str, tmp_path: Path, monkeypatch) -> None:
    """--parquet alone through -j 2 and through --dask (the shards write their parts) holds
    the rows one process writes, ids included, and the records --json writes. The files are
    named relative to the working directory: the rows name them so, whoever reads them."""
    pytest.importorskip("pyarrow")
    from dicomsniff.cli import main
    from dicomsniff.store.schema import TABLES
    from tests.test_store import _decode, _norm

    monkeypatch.chdir(CAPTURES.parent)
    files = [str(p.relative_to(CAPTURES.parent)) for p in specs]
    if any(p.name == "https.pcap" for p in specs):
        files += ["--tls-keylog", "captures/dicomweb/https.keys"]
    report = str(tmp_path / "report.txt")
    jsonl = tmp_path / "one.jsonl"
    assert main(["analyze", *files, "-j", "1", "--parquet", str(tmp_path / "one"),
                 "--json", "-o", str(jsonl)]) == 0
    assert main(["analyze", *files, "-j", "2", "--parquet", str(tmp_path / "j2"),
                 "-o", report]) == 0
    assert main(["analyze", *files, "--dask", dask_address, "--parquet",
                 str(tmp_path / "dask"), "--no-progress", "-o", report]) == 0
    assert "written by the shards" in Path(report).read_text()
    want = _dataset(tmp_path / "one")
    assert want["summary"][0]["services"]  # DICOMweb's among them
    if specs == TOGETHER:  # the associations' ids leave gaps: the HTTP connections' ids
        ids = sorted(json.loads(r)["id"] for r in want["associations"])
        assert len(ids) >= 4 and ids != list(range(1, len(ids) + 1))
        assert want["studies"] and any('"STUDY-' in r for r in want["findings"])
    for other in ("j2", "dask"):
        got = _dataset(tmp_path / other)
        for table in TABLES:
            assert got[table] == want[table], (other, table)
        (s1,), (s2,) = want["summary"], got["summary"]
        assert s2 == {k: v for k, v in s1.items() if k in s2}, other
    # ... and they are the --json records (studies and conformance are other commands')
    recs = [json.loads(x) for x in jsonl.read_text().splitlines()]
    same = ("associations", "transactions", "findings", "tls", "http_connections",
            "web_transactions")
    stored = [_decode({k: v for k, v in json.loads(r).items() if k != "day"}, table)
              for table in same for r in want[table]]
    assert want["http_connections"] and want["web_transactions"]
    assert sorted(map(_norm, stored)) == sorted(
        _norm(r) for r in recs if r["type"] != "summary")
    if specs == TOGETHER:  # DuckDB too, from -j 2
        from tests.test_store import _rows, connect

        db = tmp_path / "j2.duckdb"
        assert main(["analyze", *files, "-j", "2", "--db", str(db), "-o", report]) == 0
        con = connect(db)
        rows = [_decode(r, table) for table in same for r in _rows(con, f'"{table}"')]
        assert sorted(map(_norm, rows)) == sorted(map(_norm, stored))
        # --dask with --json beside --parquet: the client replays and writes both
        dj = tmp_path / "dask.jsonl"
        assert main(["analyze", *files, "--dask", dask_address, "--parquet",
                     str(tmp_path / "dj"), "--json", "--no-progress", "-o", str(dj)]) == 0
        assert dj.read_text() == jsonl.read_text()
        got = _dataset(tmp_path / "dj")
        assert all(got[table] == want[table] for table in TABLES)


@pytest.mark.parametrize("parquet", [False, True])
def test_an_interrupted_dask_run_says_what_was_lost(monkeypatch, capsys, tmp_path: Path,
                                                     parquet: bool) -> None:
    """SIGTERM while the shards run on the cluster: a Dask task cannot be told to stop and
    send what it read, so nothing is reported; stderr says so in one line, exit 128+15."""
    import os
    import signal
    import time

    from dicomsniff.cli import main
    from dicomsniff.parallel import cluster, parts

    def terminated(*_a, **_kw):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler stops this first
        raise AssertionError("SIGTERM did not stop the run")

    monkeypatch.setattr(cluster, "logs_on_dask", terminated)
    monkeypatch.setattr(parts, "parquet_on_dask", terminated)
    more = ["--parquet", str(tmp_path / "pq")] if parquet else ["--json"]
    before = signal.getsignal(signal.SIGTERM)
    code = main(["analyze", str(CAPTURES / "move.pcap"), "--dask", "tcp://127.0.0.1:1",
                 *more])
    assert signal.getsignal(signal.SIGTERM) == before  # given back
    err = capsys.readouterr().err
    assert code == 128 + signal.SIGTERM
    assert err.startswith("dicomsniff: SIGTERM; --dask reports nothing of an interrupted run")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
