"""DICOM over TLS through the shards (-j, --dask): every worker decrypts with the key log,
and the merged TLS records, decrypted associations and TLS findings are one process's."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source
from dicomsniff.parallel.local import replay, run_worker
from dicomsniff.sources.merge import open_capture
from dissectors.tls.keylog import KeyLog

ROOT = Path(__file__).resolve().parent.parent
TLS = ROOT / "captures" / "tls"
NAMES = ["tls13-store.pcap", "tls12-resume.pcap", "tls-failures.pcap", "tls-hrr.pcap",
         "tls-dcmtk.pcap"]


def _keylog() -> KeyLog:
    kl = KeyLog()
    for k in sorted(TLS.glob("*.keys")):
        kl.add_file(str(k))
    return kl


def hosts_apart(tmp_path: Path) -> Path:
    """The TLS captures in one file, each on its own pair of hosts (10.0.k.1, 10.0.k.2), so
    that the shards really split the TLS connections."""
    from captures import pcapfile

    out = tmp_path / "tls-hosts.pcap"
    frames = []
    header = None
    for k, name in enumerate(NAMES, 1):
        header, _lt = pcapfile.read_header(TLS / name)
        for fr in pcapfile.frames(TLS / name):
            data = bytearray(fr.data)
            if len(data) >= 34 and data[12:14] == b"\x08\x00":
                for off in (26, 30):
                    if data[off:off + 3] == b"\xc0\x00\x02":
                        data[off:off + 4] = bytes([10, 0, k, data[off + 3]])
            frames.append(dataclasses.replace(fr, data=bytes(data)))
    frames.sort(key=lambda f: f.ts)
    pcapfile.write(out, header, frames)
    return out


def records(assocs, capture_findings, sessions) -> list[str]:
    out = []
    for a in assocs:
        out.append(a.to_record())
        out.extend(f.to_record() for f in a.findings)
    out.extend(f.to_record() for f in capture_findings)
    out.extend(s.to_record() for s in sessions)
    return sorted(json.dumps(r, sort_keys=True) for r in out)


def test_shards_decrypt_with_the_key_log_like_one_process(tmp_path: Path) -> None:
    path = hosts_apart(tmp_path)
    kl = _keylog()
    one = Analyzer(tls_keylog=kl)
    analyze_source(str(path), one)
    want = records(one.associations, [f for f in one.findings if f.association is None],
                   one.tls_sessions)
    logs = [run_worker(open_capture(str(path)), i, 3, {"tls_keylog": kl}) for i in range(3)]
    # the TLS work is really spread
    assert sum(any(ev[3] == "tls" for ev in log.events) for log in logs) >= 2
    an = Analyzer(tls_keylog=kl)
    replay(logs, an)
    got = records(an.associations, [f for f in an.findings if f.association is None],
                  an.tls_sessions)
    assert got == want
    decrypted = [s for s in an.tls_sessions if s.outcome == "decrypted"]
    assert decrypted and all(s.association is not None for s in decrypted)
    assert [s.id for s in an.tls_sessions] == list(range(1, len(an.tls_sessions) + 1))


def test_cli_dask_takes_the_key_log() -> None:
    """analyze --dask: the key log reaches the workers (decrypted associations, TLS records)."""
    argv = [sys.executable, "-m", "dicomsniff", "analyze", str(TLS / "tls13-store.pcap"),
            "--tls-keylog", str(TLS / "tls13-store.keys"), "--json", "--no-progress"]
    one = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    dask = subprocess.run([*argv, "--dask", "local", "--workers", "1"], capture_output=True,
                          text=True, timeout=180, check=True)

    def recs(out: str) -> list[dict]:
        return [json.loads(line) for line in out.splitlines()]

    a, b = recs(one.stdout), recs(dask.stdout)
    assert [r for r in b if r["type"] == "tls"] == [r for r in a if r["type"] == "tls"]
    assoc = [r for r in b if r["type"] == "association"]
    assert assoc and assoc[0]["tls"]["decrypted"] is True
    assert b[-1]["tls"] == a[-1]["tls"] and b[-1]["tls"]["outcomes"] == {"decrypted": 1}


def test_store_has_a_tls_table(tmp_path: Path) -> None:
    """analyze --db: TLS connections in their own table, TLS findings naming theirs."""
    db = tmp_path / "t.duckdb"
    subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", str(TLS / "tls-failures.pcap"),
                    "--tls-keylog", str(TLS / "tls-failures.keys"), "--db", str(db)],
                   capture_output=True, text=True, timeout=120, check=True)
    query = ("import duckdb, json, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
             "print(json.dumps([c.execute('select id, outcome, alerts from tls order by id')"
             ".fetchall(), c.execute('select code, tls from findings where tls is not null "
             "order by tls, code').fetchall()]))")
    out = subprocess.run([sys.executable, "-c", query, str(db)], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    rows, findings = json.loads(out)
    assert [(i, o) for i, o, _a in rows] == [(1, "handshake_failed"), (2, "handshake_failed"),
                                            (3, "encrypted"), (4, "handshake_failed"),
                                            (5, "handshake_failed")]
    assert json.loads(rows[0][2])[0]["description"] == "unknown_ca"
    assert ["TLS-ALERT-FATAL", 1] in findings and ["TLS-TO-PLAIN-PORT", 5] in findings


def test_cores_give_the_records_of_one_process() -> None:
    """analyze -j 3: the workers decrypt with the key log, and the TLS records, decrypted
    associations and TLS findings come out as -j 1 writes them, in the same order (the plain
    A-ASSOCIATE-RQ to a TLS port judged in capture order, against every worker's servers)."""
    for name in ("tls-failures", "tls-suites"):
        argv = [sys.executable, "-m", "dicomsniff", "analyze", str(TLS / f"{name}.pcap"),
                "--tls-keylog", str(TLS / f"{name}.keys"), "--json"]
        one = subprocess.run([*argv, "-j", "1"], capture_output=True, text=True, timeout=120,
                             check=True).stdout
        three = subprocess.run([*argv, "-j", "3"], capture_output=True, text=True,
                               timeout=120, check=True).stdout
        assert three == one
        recs = [json.loads(line) for line in one.splitlines()]
        assert [r for r in recs if r["type"] == "tls"]
        if name == "tls-failures":
            assert any(r.get("code") == "TLS-PLAIN-TO-TLS-PORT" and "other connections" in
                       r["message"] for r in recs)
