"""The study journey's stand-in (analysis/journey/lazy.py) against the journey attached eagerly,
as it was before the stand-in: the same ``analyze --json`` records, byte for byte, and the same
study records, on every sample capture; the journey made only where the capture needs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicomsniff.analysis.journey import lazy
from dicomsniff.analysis.journey.core import Journey
from dicomsniff.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p for p in (ROOT / "captures").rglob("*.pcap*")
                 if p.suffix in (".pcap", ".pcapng"))
LAZY = lazy.LazyJourney


def run(path: Path, eager: bool, monkeypatch, capsys) -> tuple[list[str], list[str], list]:
    """``analyze --json PATH``: its lines, the studies released (as JSON) and the journeys."""
    studies: list[str] = []
    made: list = []

    def make(**options):
        j = Journey(**options) if eager else LAZY(**options)
        j.on_study.append(lambda st: studies.append(json.dumps(st.record(), sort_keys=True)))
        made.append(j)
        return j

    monkeypatch.setattr(lazy, "LazyJourney", make)  # what the engine makes
    code = main(["analyze", "--json", str(path)])
    out = capsys.readouterr().out
    assert code in (0, 1, 3), code  # 3: a damaged capture (reported, analysed)
    return out.splitlines(), studies, made


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: str(p.relative_to(ROOT / "captures")))
def test_every_sample_gives_the_records_of_the_eager_journey(path: Path, monkeypatch,
                                                               capsys) -> None:
    eager, eager_studies, _ = run(path, True, monkeypatch, capsys)
    lines, studies, (j,) = run(path, False, monkeypatch, capsys)
    assert lines == eager
    assert studies == eager_studies
    if not j.awake:  # left asleep: the eager journey had nothing to say either
        assert not studies
        assert not [x for x in lines if '"code": "STUDY-' in x or '"code": "PRINT-' in x
                    or '"code": "UPS-' in x]


def _awake(name: str, monkeypatch, capsys) -> bool:
    _, _, (j,) = run(ROOT / "captures" / name, False, monkeypatch, capsys)
    return j.awake


def test_the_journey_is_made_only_for_the_traffic_it_follows(monkeypatch, capsys) -> None:
    """Not vacuous: asleep on echo, a query, an N-GET; awake on a store, a
    worklist query, MPPS, a store picked up mid-association and a STOW-RS."""
    for name in ("echo.pcap", "find-pending.pcap", "nget.pcap"):
        assert not _awake(name, monkeypatch, capsys), name
    for name in ("store-small-pdu.pcap", "mid-association.pcap", "worklist.pcap", "mpps.pcap",
                 "journey/journey-clean.pcap", "dicomweb/stow.pcap"):
        assert _awake(name, monkeypatch, capsys), name


def test_the_studies_command_and_its_attributes_reach_the_real_journey() -> None:
    """What the ``studies`` command and the -j merge read or set goes to the real journey."""
    from dicomsniff.analysis.engine import Analyzer

    an = Analyzer()
    assert not an.journey.awake
    an.journey.max_studies = 3  # setting wakes it
    assert an.journey.awake and an.journey.real().max_studies == 3
    assert an.journey.printing.sessions == [] and an.journey.released == 0
    an.finish()
