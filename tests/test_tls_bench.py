"""The benchmark's TLS figure: decryption cost as TLS time per MB over the clear twin's."""

from __future__ import annotations

from bench.run import tls_cost


def _cap(mb: float, ours: float, theirs: float) -> dict:
    return {"mb": mb, "ratio_vs_tshark": {"median": round(theirs / ours, 2)},
            "tools": {"dicomsniff": {"median_s": ours}, "tshark": {"median_s": theirs}}}


def test_tls_cost_per_megabyte() -> None:
    got = tls_cost({"tls": _cap(30.0, 0.6, 0.9), "tls-clear": _cap(20.0, 0.2, 0.5)})
    assert got["dicomsniff"] == {"tls_s": 0.6, "clear_s": 0.2, "tls_over_clear": 2.0}
    assert got["tshark"]["tls_over_clear"] == 1.2
    assert got["ratio_vs_tshark"] == {"tls": {"median": 1.5}, "clear": {"median": 2.5}}
    assert tls_cost({"tls": _cap(30.0, 0.6, 0.9)}) is None  # only with both captures
