"""The fused small-message path against the general one.

A whole command set with nothing in progress (``MessageAssembler.whole_command``) and the end of
a data set nobody collects (``MessageAssembler.data_done``) are handled as they come, without
the assembler's ``out`` queue (docs/performance.md). They must give exactly what the queue
gives: the same messages, in the same order, with the same fields and problems, on random PDV
event sequences (including hostile command sets, interleaving, gaps) and, through the whole
analyzer, the same associations, transactions and findings on every sample capture.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.tracker import AssociationTracker
from dicomsniff.sources.capture import CaptureReader
from dissectors.dimse.assembler import MessageAssembler
from dissectors.ul import events as ev
from tests.fuzz.targets import AssemblerCase, assembler_strategy

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p for p in (ROOT / "captures").rglob("*.pcap*")
                 if p.suffix in (".pcap", ".pcapng"))
FIELDS = ("context_id", "command", "command_field", "frame", "ts", "first_frame",
          "expects_dataset", "dataset_bytes", "dataset_fragments", "dataset_first_frame",
          "dataset_last_frame", "end_ts", "complete", "partial", "problems", "dataset_missing")


def _replay(case: AssemblerCase, fused: bool) -> list:
    """The assembler driven as the tracker drives it; what a consumer sees, in order."""
    asm = MessageAssembler(case.max_command_bytes)
    seen: list = []
    ids: dict[int, int] = {}
    keep: list = []

    def show(kind: str, m) -> None:
        keep.append(m)
        n = ids.setdefault(id(m), len(ids))
        seen.append((kind, n, tuple(repr(getattr(m, f)) for f in FIELDS)))

    def drain() -> None:
        seen.extend(("problem", *p) for p in asm.problems)
        asm.problems.clear()
        for kind, m in asm.out:
            show(kind, m)
        asm.out.clear()

    for i, op in enumerate(case.ops):
        if op[0] == "cmd":
            e = ev.PdvCommand(i, float(i), op[1], op[2], op[3])
            m = asm.whole_command(e) if fused and not asm.problems else None
            if m is not None:
                show("command", m)
                if m.complete:
                    show("complete", m)
                continue
            asm.on_command(e)
        elif op[0] == "data":
            asm.on_data(ev.PdvData(i, float(i), op[1], op[2], op[3]))
        elif op[0] == "done":
            e = ev.DataComplete(i, float(i), op[1], op[2])
            m = asm.data_done(e) if fused and not asm.problems else None
            if m is not None:
                show("complete", m)
                continue
            asm.on_data_complete(e)
        else:
            asm.on_gap(ev.StreamGap(i, float(i), 10, op[1]))
        if asm.out:  # the tracker hands problems over with the next message
            drain()
    asm.close(len(case.ops), 0.0)
    drain()
    return seen


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(assembler_strategy())
def test_fused_assembler_gives_what_the_queue_gives(case: AssemblerCase) -> None:
    assert _replay(case, fused=True) == _replay(case, fused=False)


def test_fused_path_is_taken_for_a_plain_message() -> None:
    from tests.fuzz import seeds

    echo = next(c for c in seeds.command_sets() if len(c) > 20)
    asm = MessageAssembler()
    m = asm.whole_command(ev.PdvCommand(1, 0.0, 1, True, echo))
    assert m is not None and not asm.out
    assert asm.whole_command(ev.PdvCommand(2, 0.0, 1, False, echo)) is None  # a fragment


def _story(path: Path) -> str:
    a = Analyzer()
    with CaptureReader(str(path)) as r:
        a.consume(r)
    a.finish()
    out = [json.dumps(x.to_record(), sort_keys=True, default=str) for x in a.associations]
    out += [json.dumps(t.to_record(), sort_keys=True, default=str)
            for x in a.associations for t in x.transactions]
    out += [json.dumps(f.to_record(), sort_keys=True, default=str) for f in a.findings]
    return "\n".join(out)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: str(p.relative_to(ROOT / "captures")))
def test_fused_and_queued_paths_agree_on_every_sample(path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fused = _story(path)
    monkeypatch.setattr(AssociationTracker, "fused", False)
    assert _story(path) == fused
