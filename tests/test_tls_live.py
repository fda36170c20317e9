"""``live --tls-keylog`` on replayed real captures (``live -r``): the same decrypted
associations, TLS records and findings as ``analyze``, a line per TLS connection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TLS = Path(__file__).resolve().parent.parent / "captures" / "tls"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dicomsniff", *argv], capture_output=True,
                          text=True, timeout=120)


def _records(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_live_replay_decrypts_like_analyze() -> None:
    for name in ("tls12-resume", "tls-failures"):
        cap, keys = str(TLS / f"{name}.pcap"), str(TLS / f"{name}.keys")
        live = _run("live", "-r", cap, "--tls-keylog", keys, "--json")
        assert live.returncode == 0, live.stderr
        offline = _run("analyze", cap, "--tls-keylog", keys, "--json")
        got, want = _records(live.stdout), _records(offline.stdout)

        def key(recs: list[dict]) -> list[str]:
            return sorted(json.dumps(r, sort_keys=True) for r in recs if r["type"] != "summary")

        assert key(got) == key(want)
        assert got[-1]["tls"] == want[-1]["tls"]
        assert got[-1]["tls"]["connections"] == len([r for r in want if r["type"] == "tls"])
    # the resumed sessions' DICOM was decrypted live
    decrypted = [r for r in _records(_run("live", "-r", str(TLS / "tls12-resume.pcap"),
                                          "--tls-keylog", str(TLS / "tls12-resume.keys"),
                                          "--json").stdout) if r["type"] == "association"]
    assert len(decrypted) == 4 and all(r["tls"]["decrypted"] for r in decrypted)


def test_live_without_key_log_and_its_lines() -> None:
    out = _run("live", "-r", str(TLS / "tls12-resume.pcap"), "--json")
    recs = _records(out.stdout)
    assert not [r for r in recs if r["type"] == "association"]
    assert recs[-1]["tls"]["outcomes"] == {"encrypted": 4}
    text = _run("live", "-r", str(TLS / "tls-failures.pcap"), "--tls-keylog",
                str(TLS / "tls-failures.keys")).stdout
    lines = [line for line in text.splitlines() if "        TLS 192.0.2.1:" in line]
    assert len(lines) == 5 and "client alert unknown_ca" in lines[0]
    assert "5 TLS connection(s) (1 encrypted, 4 handshake failed)" in text
    # --ae: TLS connections have no AE titles, so they are left out with their findings
    ae = _run("live", "-r", str(TLS / "tls-failures.pcap"), "--ae", "NOBODY").stdout
    assert " TLS 192.0.2.1:" not in ae and "TLS-ALERT-FATAL" not in ae


def test_live_bad_key_log_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.keys"
    empty.write_text("# nothing\n")
    r = _run("live", "-r", str(TLS / "tls13-store.pcap"), "--tls-keylog", str(empty))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no TLS secrets" in r.stderr
    assert "Traceback" not in r.stderr
