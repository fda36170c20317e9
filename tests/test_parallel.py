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
from dicomsniff.sources.merge import open_capture

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


def test_shards_of_many_host_pairs_are_the_records_of_one_process(tmp_path: Path) -> None:
    path = hosts_apart(tmp_path)
    shards = [run_shard([str(path)], i, 3, {}) for i in range(3)]
    assert all(r.associations for r in shards)  # the work is really spread
    merged = merge_shards(shards)
    got = records(merged.associations, merged.capture_findings)
    want = one_process(path)
    # The study journey follows a study across hosts (worklist, modality, archive): a shard
    # sees only its hosts' part, so its capture-level findings are left out of the comparison
    # (docs/many-captures.md); everything else is exactly one process's.
    assert [r for r in got if not _journey(r)] == [r for r in want if not _journey(r)]
    assert any(_journey(r) for r in want)  # the comparison above really left something out


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


def test_dask_local_cluster_gives_the_records_of_one_process() -> None:
    pytest.importorskip("distributed")
    from dicomsniff.parallel.cluster import analyze_on_dask

    sensors = [str(p) for p in sorted((CAPTURES / "sensors").glob("*.pcap"))]
    merged = analyze_on_dask("local", [str(CAPTURES / "store-concurrent.pcap")], {}, workers=2)
    assert records(merged.associations, merged.capture_findings) == one_process(
        CAPTURES / "store-concurrent.pcap")
    both = analyze_on_dask("local", sensors, {}, workers=2, shards=4)
    an = Analyzer()
    analyze_source(open_capture(sensors), an)
    assert records(both.associations, both.capture_findings) == records(
        an.associations, [f for f in an.findings if f.association is None])
