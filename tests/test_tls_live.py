"""``live --tls-keylog`` on replayed real captures (``live -r``): the same decrypted
associations, TLS records and findings as ``analyze``, a line per TLS connection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_live_key_log_errors_are_one_line(tmp_path: Path) -> None:
    r = _run("live", "-r", str(TLS / "tls13-store.pcap"), "--tls-keylog",
             str(tmp_path / "missing.keys"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot read key log" in r.stderr
    assert "Traceback" not in r.stderr
    empty = tmp_path / "empty.keys"
    empty.write_text("# nothing yet\n")
    # analyze wants secrets in it; live follows it as peers write it (empty at the start)
    r = _run("analyze", str(TLS / "tls13-store.pcap"), "--tls-keylog", str(empty))
    assert r.returncode == 2 and "no TLS secrets" in r.stderr
    r = _run("live", "-r", str(TLS / "tls13-store.pcap"), "--tls-keylog", str(empty), "--json")
    assert r.returncode == 0 and _records(r.stdout)[-1]["tls"]["outcomes"] == {"encrypted": 1}


# -- a key log written while the capture runs ------------------------------------------------

def _followed(path: Path):
    from dicomsniff.analysis.tls import FollowedKeyLog

    return FollowedKeyLog([str(path)], every=0.0)  # every miss looks at the file


def test_followed_key_log_reads_what_is_appended(tmp_path: Path) -> None:
    lines = [x for x in (TLS / "tls13-store.keys").read_text().splitlines()
             if x and not x.startswith("#")]
    f = tmp_path / "keys.log"
    f.write_text("")
    kl = _followed(f)
    rnd = bytes.fromhex(lines[0].split()[1])
    assert kl.secrets(rnd) is None
    with open(f, "a") as out:  # half a line: not read until it is whole
        out.write(lines[0][:40])
    assert kl.secrets(rnd) is None and len(kl) == 0
    with open(f, "a") as out:
        out.write(lines[0][40:] + "\n" + "\n".join(lines[1:]) + "\n")
    got = kl.secrets(rnd)
    assert got is not None and len(got) == len(lines)
    f.write_text(lines[0] + "\n")  # replaced by a shorter file: read from the start
    assert kl.follow() and len(kl) == 1


@pytest.mark.parametrize("version", ["TLS 1.2", "TLS 1.3"])
def test_keys_written_after_the_server_hello(version: str, tmp_path: Path) -> None:
    """A live capture reads the ServerHello before the client logged the session's secrets:
    they are looked for again at the next ChangeCipherSpec (TLS 1.2) or first protected
    record (TLS 1.3) of each side."""
    import ssl

    from dissectors.tls.connection import TLSConnection
    from tests.test_tls_dissector import CLIENT_DATA, SERVER_DATA, Sink
    from tests.tls_pair import run_pair

    kw = {"version": ssl.TLSVersion.TLSv1_2} if version == "TLS 1.2" else {}
    tr = run_pair(CLIENT_DATA, SERVER_DATA, **kw)
    f = tmp_path / "keys.log"
    f.write_text("")
    sinks = (Sink(), Sink())
    conn = TLSConnection(_followed(f), inner=lambda c: sinks)
    for i, (side, data) in enumerate(tr.chunks):
        conn.sides[side].feed(data, i + 1, float(i))
        if conn.server_hello is not None and not f.read_text():
            assert conn.keys is False  # not yet in the key log
            f.write_text(tr.keylog)  # the client logs the session now
    assert conn.keys is True and conn.decrypted
    assert bytes(sinks[0].data) == CLIENT_DATA
    if version == "TLS 1.2":
        assert bytes(sinks[1].data) == SERVER_DATA
    else:
        # the server's protected flight went by with the ServerHello, before the secrets
        # were logged: that side stays encrypted (docs/tls.md says so)
        assert not sinks[1].data
