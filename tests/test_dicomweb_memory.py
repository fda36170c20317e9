"""A 1 GiB WADO-RS response streams through the HTTP parser and the DICOMweb handler without
raising memory: bodies are measured, never accumulated (bench/dicomweb_stream.py; the 2 GiB
figure is in docs/dicomweb.md). Run in a fresh interpreter so that ru_maxrss is this stream's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("chunked", [False, True])
def test_one_gib_instance_streams_in_flat_memory(chunked: bool) -> None:
    argv = [sys.executable, "-m", "bench.dicomweb_stream", "--size", "1G"]
    if chunked:
        argv.append("--chunked")
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=300)
    r = json.loads(out.stdout)
    assert r["part_bytes"] == 1 << 30 and r["parts"] == 1 and r["status"] == 200
    assert r["sop_instance"] == "1.2.826.0.1.3680043.8.498.99999"  # read from the part head
    assert r["findings"] == []
    # A body kept anywhere would add 1024 MiB; a copied chunk list, hundreds.
    assert r["rss_growth_mib"] < 16, r


def test_export_of_a_256_mib_instance_streams_to_disk_in_flat_memory(tmp_path: Path) -> None:
    """export-objects writes a WADO-RS instance as it streams: the file is whole and
    byte-exact in length, memory holds one file buffer (1 MiB), not the instance."""
    out = subprocess.run([sys.executable, "-m", "bench.dicomweb_stream", "--size", "256M",
                          "--export", str(tmp_path)], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=300)
    r = json.loads(out.stdout)
    [(path, size, partial, status)] = r["exported"]
    assert size == 256 << 20 and not partial and status == "HTTP 200 (WADO-RS)"
    assert Path(path).stat().st_size == 256 << 20
    assert Path(path).name.endswith("_1.2.826.0.1.3680043.8.498.99999.dcm")
    assert r["rss_growth_mib"] < 16, r
