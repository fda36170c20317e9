"""Conformance building blocks: latency quantiles, caps, hostile wire strings in every output,
and the requirements reader under hostile input (a fuzz target, hypothesis with a budget)."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomsniff.conformance import facts as facts_mod
from dicomsniff.conformance.facts import ConformanceBuilder, build
from dicomsniff.conformance.latency import EXACT, Latencies
from dicomsniff.conformance.render import write_csv, write_markdown, write_xlsx
from dicomsniff.conformance.requirements import RequirementsError, read_requirements
from dicomsniff.conformance.views import all_tables
from dicomsniff.model import Association, PresentationContext, Side, Transaction

CT = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = "1.2.840.10008.1.2"


def test_latency_exact_then_histogram_within_two_percent() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(-3, 1) for _ in range(EXACT * 3)]
    lat = Latencies()
    for v in values[:100]:
        lat.add(v)
    assert lat.quantile(0.5) == sorted(values[:100])[49]  # exact while few
    for v in values[100:]:
        lat.add(v)
    assert lat.exact is None and lat.count == len(values)
    ordered = sorted(values)
    for q in (0.5, 0.95):
        true = ordered[int(q * len(values)) - 1]
        assert abs(lat.quantile(q) - true) / true < 0.02
    assert len(lat.buckets) < 1500  # bounded, whatever the count


def test_latency_merge_equals_one_pass() -> None:
    rng = random.Random(3)
    values = [rng.random() for _ in range(EXACT + 500)]
    one, a, b = Latencies(), Latencies(), Latencies()
    for v in values:
        one.add(v)
    for v in values[:300]:
        a.add(v)
    for v in values[300:]:
        b.add(v)
    a.merge(b)
    assert a.count == one.count and a.quantile(0.95) == one.quantile(0.95)
    bad = Latencies()
    bad.add(-1.0)
    bad.add(float("nan"))
    assert bad.count == 0 and bad.quantile(0.5) is None


def _assoc(n: int, calling: str, called: str, sop: str = CT) -> Association:
    a = Association(n, f"192.0.2.1:{40000 + n}", "192.0.2.2:104", calling, called)
    a.request_frame, a.accept_frame, a.outcome = 1, 2, "released"
    a.requestor = Side(16384, "1.2.3", "X")
    a.acceptor = Side(16384, "1.2.4", "Y")
    a.contexts[1] = PresentationContext(1, sop, [IMPLICIT], 0, IMPLICIT)
    t = Transaction(1, n, "C-STORE", 1, 1, 1, "requestor", sop_class=sop)
    t.status, t.status_category, t.request_time, t.response_time = 0, "Success", 1.0, 1.5
    a.transactions.append(t)
    return a


def test_ae_titles_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A capture with endless distinct AE titles cannot grow the facts without bound."""
    monkeypatch.setattr(facts_mod, "MAX_AES", 10)
    b = ConformanceBuilder("x.pcap")
    for n in range(50):
        b.association(_assoc(n, f"SCU{n}", "ARCHIVE"))
    assert len(b.facts.aes) == 10 and b.facts.dropped == 41
    assert b.facts.aes["ARCHIVE"].as_acceptor == 9


HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2", "@SUM(A1)", "A|B*C_[x](y)`z`",
           "[red]bold[/red]", "x\\x1b[2J"]


def test_hostile_wire_strings_stay_text_everywhere(tmp_path: Path) -> None:
    """AE titles are wire data: never a formula in a workbook or CSV, never markup."""
    from openpyxl import load_workbook
    from python_calamine import CalamineWorkbook
    from rich.console import Console

    from dicomsniff.conformance.render import print_terminal

    facts = build([_assoc(n, title, "ARCHIVE") for n, title in enumerate(HOSTILE)])
    tables = all_tables(facts)
    path = tmp_path / "h.xlsx"
    write_xlsx(str(path), tables.values())
    wb = load_workbook(path)
    cells = [c for row in wb["AEs"].iter_rows() for c in row]
    for title in HOSTILE:
        cell = next(c for c in cells if c.value == title)
        assert cell.data_type == "s"  # a string, not a formula
    cal = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("AEs").to_python()
    assert {r[0] for r in cal[1:]} >= set(HOSTILE)
    buf = io.StringIO()
    write_csv(buf, tables["aes"])
    firsts = [r[0] for r in csv.reader(io.StringIO(buf.getvalue()))]
    assert "'=HYPERLINK(\"http://x\",\"y\")" in firsts and "'@SUM(A1)" in firsts
    md = io.StringIO()
    write_markdown(md, facts, tables)
    assert "## A\\|B\\*C\\_\\[x\\](y)\\`z\\`" in md.getvalue()
    out = io.StringIO()
    print_terminal(Console(file=out, width=100, color_system=None), facts, tables)
    assert "[red]bold[/red]" in out.getvalue()  # printed as typed, not as a style


def test_template_quote_round_trips(tmp_path: Path) -> None:
    """A template CSV with a formula-like AE title reads back as the same title."""
    from dicomsniff.conformance.requirements import evaluate, write_template

    facts = build([_assoc(1, "=EVIL", "ARCHIVE")])
    path = tmp_path / "t.csv"
    write_template(str(path), facts)
    reqs = evaluate(read_requirements(str(path)), facts)
    assert {r.ae for r in reqs} == {"=EVIL", "ARCHIVE"} and all(r.status == "met" for r in reqs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048))
def test_requirements_reader_fuzz(tmp_path: Path, data: bytes) -> None:
    """Any bytes: rows or one RequirementsError, nothing else (CSV and xlsx paths)."""
    for name in ("r.csv", "r.xlsx"):
        p = tmp_path / name
        p.write_bytes(data)
        try:
            reqs = read_requirements(str(p))
        except RequirementsError as exc:
            assert "\n" not in str(exc)
        else:
            assert all(r.role in ("SCU", "SCP") and r.sop_class for r in reqs)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(st.sampled_from(
    ["ae", "role", "sop_class", "transfer_syntax", "SCP", "scu", "CTImageStorage", "", "any",
     "1.2.840.10008.1.2", "1..2", "X" * 70, "=A1", "'=A1", "\x00", "é"]), max_size=6),
    max_size=8))
def test_requirements_reader_structured_fuzz(tmp_path: Path, rows: list[list[str]]) -> None:
    p = tmp_path / "r.csv"
    with open(p, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    try:
        read_requirements(str(p))
    except RequirementsError as exc:
        assert str(exc).startswith(str(p))


def test_mutated_corpus_builds_facts_or_says_why(tmp_path: Path) -> None:
    """Damaged and malicious captures (tests/mutate_corpus.py): facts, or one FileProblem for
    a file that is no capture at all; never an exception from the fold. All at once through
    the command: exit 0 or 3, no traceback."""
    import subprocess
    import sys

    from dicomsniff.conformance.run import FileProblem, build_facts
    from tests.mutate_corpus import generate

    corpus = generate(tmp_path, full=False)
    usable = []
    for cf in corpus:
        try:
            build_facts([str(cf.path)], ports=[int(a) for a in cf.args if a.isdigit()])
        except FileProblem as exc:
            assert str(exc).strip()
        else:
            usable.append(str(cf.path))
    assert len(usable) > len(corpus) // 2
    r = subprocess.run([sys.executable, "-m", "dicomsniff", "conformance", *usable,
                        "--format", "markdown"], capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 3) and "Traceback" not in r.stderr, r.stderr[-2000:]
