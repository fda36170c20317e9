"""Shards of flows (dicomsniff/parallel): each connection in exactly one shard, frame numbers
kept, merged shards numbered as one process numbers them; the shards on a Dask LocalCluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source
from dicomsniff.parallel.cluster import merge_shards, run_shard
from dicomsniff.parallel.shard import flow_shard

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
# captures whose findings compare associations with each other (docs/many-captures.md)
CROSS: set[str] = set()


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


def test_a_flow_and_its_reverse_share_a_shard() -> None:
    from dissectors.net import reverse_key

    keys = [bytes([10, 0, h, 1, 10, 0, h, 2]) + p.to_bytes(2, "big") + b"\x2b\x68"
            for h in range(100) for p in (40000, 40001)]
    for n in (2, 3, 8):
        shards = [flow_shard(k, n) for k in keys]
        assert shards == [flow_shard(reverse_key(k), n) for k in keys]
        assert set(shards) == set(range(n))  # every shard gets work
        # the two hosts decide, not the ports: a C-MOVE and its sub-association stay together
        assert shards[0::2] == shards[1::2]


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
    """C-MOVE links, the rules across associations and the study journey are computed after
    the merge from the shards' records (parallel/crosspair.py): the same as one process even
    when the associations they tie together are in different shards."""
    path = clients_apart(CAPTURES / name, tmp_path / "apart.pcap")
    want = one_process(path)
    spread = 0
    for n in (2, 3, 5):
        shards = [run_shard([str(path)], i, n, {}) for i in range(n)]
        spread = max(spread, sum(bool(r.associations) for r in shards))
        merged = merge_shards(shards)
        assert records(merged.associations, merged.capture_findings) == want, n
    assert spread >= 2  # the associations really were spread over shards


def test_a_move_to_another_host_is_linked_across_shards(tmp_path: Path) -> None:
    path = clients_apart(CAPTURES / "move.pcap", tmp_path / "apart.pcap")
    an = Analyzer()
    analyze_source(path, an)
    subs = [a for a in an.associations if a.move_transaction is not None]
    assert subs and all(a.client.split(":")[0] != b.client.split(":")[0]
                        for a in subs for b in an.associations if b not in subs)
    for n in (2, 3, 5):
        shards = [run_shard([str(path)], i, n, {}) for i in range(n)]
        homes = {a.first_frame: r.index for r in shards for a in r.associations}
        merged = merge_shards(shards)
        links = sorted((a.id, a.move_transaction) for a in merged.associations
                       if a.move_transaction is not None)
        assert links == sorted((a.id, a.move_transaction) for a in subs)
        if len({homes[a.first_frame] for a in an.associations}) > 1:
            return  # the C-MOVE and its sub-association were in different shards: linked
    raise AssertionError("no shard count separated the C-MOVE from its sub-association")


def test_shards_of_many_host_pairs_are_the_records_of_one_process(tmp_path: Path) -> None:
    path = hosts_apart(tmp_path)
    shards = [run_shard([str(path)], i, 3, {}) for i in range(3)]
    assert all(r.associations for r in shards)  # the work is really spread
    merged = merge_shards(shards)
    got = records(merged.associations, merged.capture_findings)
    want = one_process(path)
    # the study journey's findings too: computed after the merge (parallel/crosspair.py)
    assert got == want
    assert any(_journey(r) for r in want)


@pytest.mark.parametrize("path", sorted(CAPTURES.glob("*.pcap")), ids=lambda p: p.name)
def test_merged_shards_are_the_records_of_one_process(path: Path) -> None:
    shards = [run_shard([str(path)], i, 3, {}) for i in range(3)]
    assert sum(len(r.associations) for r in shards) == len(one_process_assocs(path))
    merged = merge_shards(shards)
    got = records(merged.associations, merged.capture_findings)
    want = one_process(path)
    if path.name in CROSS:
        # Storage commitment across two associations: a shard holding only the N-ACTION
        # cannot see the N-EVENT-REPORT. Everything but capture-level findings agrees.
        assert [r for r in got if '"association": null' not in r] == [
            r for r in want if '"association": null' not in r]
        assert got != want
    else:
        assert got == want
    assert merged.frames == shards[0].frames


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
