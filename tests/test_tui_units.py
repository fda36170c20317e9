"""The TUI's plain-Python parts: filter language, ladder layout, refs, frames, data sets,
exports, store. No terminal involved (the screens are in test_tui.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source
from dicomsniff.export.sequence import Message, Note, Options, build
from dicomsniff.model import Association, Finding, Transaction
from dicomsniff.tui import dataset, exports, frames, refs
from dicomsniff.tui.feed import Batch, Collector, FileSource
from dicomsniff.tui.filter import FilterError, parse
from dicomsniff.tui.ladder import layout
from dicomsniff.tui.store import FAILURE, OPEN, SUCCESS, WARNING, Store, summarize

CAPTURES = Path(__file__).resolve().parent.parent / "captures"


def analyzed(name: str) -> list[Association]:
    an = Analyzer()
    analyze_source(str(CAPTURES / name), an)
    return an.associations


def assoc(i: int, calling: str = "CT1", called: str = "PACS", client: str = "192.0.2.1:5000",
          server: str = "192.0.2.2:104", outcome: str = "released",
          txns: list[tuple[str, str | None]] = ()) -> Association:
    a = Association(i, client, server, calling, called, start=1.7e9 + i, end=1.7e9 + i + 1,
                    outcome=outcome)
    for k, (cmd, cat) in enumerate(txns):
        a.transactions.append(Transaction(k, i, cmd, 1, k, 1, "requestor",
                                          sop_class="1.2.840.10008.5.1.4.1.1.2",
                                          status=None if cat is None else 0,
                                          status_category=cat))
    return a


# -- filter language -------------------------------------------------------------------------
def test_filter_keys_combine_and_negate():
    a = assoc(1, txns=[("C-STORE", "Failure"), ("C-ECHO", "Success")])
    b = assoc(2, "MR7", "PACS", "10.1.2.3:4000", "192.0.2.2:11112", "aborted",
              [("C-STORE", "Success")])
    a.findings.append(Finding("error", "X", "x", association=1))
    cases = {
        "ae:CT1 command:C-STORE status:failure": [1],
        "command:store status:success": [2],  # the same transaction must match both
        "ip:192.0.2.1": [1], "ip:10.0.0.0/8": [2], "ip:192.0.2.2": [1, 2],
        "port:104": [1], "port:11112": [2], "sop:CT": [1, 2], "sop:1.2.840.10008.5.1.4": [1, 2],
        "sop:MR": [], "findings": [1], "findings:warning": [], "-outcome:released": [2],
        "ae:ct1 ae:mr7": [1, 2], "aborted": [2], "mr7": [2], "id:2-9": [2],
        "status:0x0000": [1, 2], "-findings": [2], "": [1, 2],
    }
    for text, want in cases.items():
        f = parse(text)
        assert [x.id for x in (a, b) if f.matches(x)] == want, text
    f = parse("command:C-ECHO")
    assert [t.command for t in a.transactions if f.shows(t)] == ["C-ECHO"]


@pytest.mark.parametrize("text, words", [
    ("colour:red", "unknown filter key"), ("port:http", "not a TCP port"),
    ("status:sad", "0xA700"), ("ip:999.1.1.1", "not an address"), ("ae:", "needs a value"),
    ('ae:"x', "unbalanced quote"), ("command:C-FETCH", "unknown DIMSE command"),
    ("outcome:fine", "one of"), ("id:x", "a number")])
def test_filter_errors_say_what_to_type(text, words):
    with pytest.raises(FilterError, match=words):
        parse(text)


# -- store -----------------------------------------------------------------------------------
def test_row_states():
    assert summarize(assoc(1, txns=[("C-STORE", "Success")]), True).state == SUCCESS
    assert summarize(assoc(1, txns=[("C-STORE", "Warning")]), True).state == WARNING
    assert summarize(assoc(1, txns=[("C-STORE", None)]), True).state == WARNING  # unanswered
    assert summarize(assoc(1, txns=[("C-STORE", None)]), False).state == OPEN
    assert summarize(assoc(1, outcome="rejected"), True).state == FAILURE
    assert summarize(assoc(1, txns=[("C-FIND", "Failure")]), True).state == FAILURE
    s = summarize(assoc(1, txns=[("C-STORE", "Success")] * 3 + [("C-ECHO", "Success")]), True)
    assert s.ops_text == "3 C-STORE, 1 C-ECHO" and s.operations == 4


def test_store_applies_batches_and_counts_changes():
    st = Store()
    a, b = assoc(1), assoc(2)
    new, changed = st.apply(Batch(started=[a]))
    assert new == [a] and changed == {1}
    new, changed = st.apply(Batch(ended=[a, b], findings=[Finding("info", "C", "m",
                                                                  association=2)]))
    assert new == [b] and changed == {1, 2} and st.ended == {1, 2} and len(st.findings) == 1
    st.apply(Batch(finished=True, error="x"))
    assert st.finished and st.error == "x"


def test_file_source_feeds_the_collector_in_batches():
    c = Collector()
    FileSource(str(CAPTURES / "move.pcap")).run(c)
    b = c.drain()
    assert b.finished and b.error is None and b.frames == 150
    assert sorted(a.id for a in b.ended) == [1, 2] and len(b.transactions) == 5
    assert c.log is not None  # the ladder gets the times of every PDU
    assert not c.drain()


# -- ladder and refs -------------------------------------------------------------------------
def test_ladder_layout_draws_every_item_between_the_lifelines():
    assocs = analyzed("move.pcap")
    d = build(assocs, options=Options(timing=True))
    lad = layout(d)
    assert [x.plain.strip() for x in lad.heads()[:1]][0].split()[-2:] == ["MOVESCU", "ARCHIVE"]
    assert lad.height == sum(lad.heights) and len(lad.starts) == len(d.items)
    body = [lad.line(n).plain for n in range(lad.height)]
    assert any("C-STORE-RQ x 4" in x for x in body)
    assert any("▶" in x for x in body) and any("◁" in x for x in body)
    for i, start in enumerate(lad.starts):
        assert lad.item_at(start) == i and lad.item_at(start + lad.heights[i] - 1) == i
    assert all(len(x) == lad.width for x in body)


@pytest.mark.parametrize("name", ["move.pcap", "find-cancel.pcap", "associate-reject.pcap",
                                  "abort-mid-transfer.pcap", "get.pcap", "mid-association.pcap",
                                  "storage-commitment-separate.pcap"])
def test_every_ladder_item_resolves_to_the_model(name):
    assocs = analyzed(name)
    d = build(assocs, options=Options(collapse=True))
    r = refs.Resolver(assocs)
    prev = None
    for it in d.items:
        ref = r.resolve(it, prev)
        if isinstance(it, Message):
            assert ref.kind != "note", it.lines
            assert ref.association is not None
            if ref.kind in ("request", "response"):
                assert ref.transaction is not None
                assert ref.transaction.command in it.lines[0]
            prev = ref
        else:
            assert isinstance(it, Note)


def test_collapsed_run_knows_its_exchanges():
    assocs = analyzed("move.pcap")
    d = build(assocs)
    r = refs.Resolver(assocs)
    run = [r.resolve(it) for it in d.items if "C-STORE-RQ x 4" in it.lines[0]][0]
    assert run.count == 4 and len(run.run) == 4 and run.kind == "request"


# -- frames ----------------------------------------------------------------------------------
def test_connection_packets_and_message_pdus():
    path = str(CAPTURES / "move.pcap")
    a1, a2 = analyzed("move.pcap")
    pk = [p for _a, p in frames.connection_packets(path, [a1])]
    assert pk[0].flags & 0x02 and pk[0].frame < a1.first_frame  # from the SYN
    assert {p.side for p in pk} == {0, 1}
    pdus, _hit = frames.message_pdus(path, a1, 0, a1.request_frame)
    assert [p.name for p in pdus] == ["A-ASSOCIATE-RQ"] and pdus[0].data[:1] == b"\x01"
    t = a1.transactions[0]
    pdus, _hit = frames.message_pdus(path, a1, 1, t.response_frames[-1])
    assert pdus and all(p.name == "P-DATA-TF" for p in pdus)
    lines = frames.hexdump(bytes(range(40)))
    assert lines[0].startswith("00000000  00 01 02") and len(lines) == 3


def test_pcap_export_holds_exactly_the_selected_association(tmp_path):
    path = str(CAPTURES / "move.pcap")
    a1, a2 = analyzed("move.pcap")
    out = tmp_path / "a2.pcap"
    n, skipped = frames.export_pcap(path, [a2], str(out))
    assert n > 0 and skipped == 0
    again = analyzed_path(out)
    assert len(again) == 1 and again[0].calling_ae == "ARCHIVE"
    assert again[0].outcome == "released" and len(again[0].transactions) == 4
    assert not again[0].midstream  # the handshake came along


def analyzed_path(p: Path) -> list[Association]:
    an = Analyzer()
    analyze_source(str(p), an)
    return an.associations


# -- data sets -------------------------------------------------------------------------------
def _labels(entries: list[dataset.Entry], depth: int = 0) -> list[str]:
    out = []
    for e in entries:
        out.append("  " * depth + e.label.plain)
        if e.children is not None:
            out += _labels(e.children(), depth + 1)
    return out


def _decoded(name: str, command: str, all_responses: bool = False) -> list[list[str]]:
    a = next(x for x in analyzed(name) if any(t.command == command for t in x.transactions))
    t = next(t for t in a.transactions if t.command == command)
    got = dataset.collect(str(CAPTURES / name), a,
                          dataset.wanted_messages(t, all_responses=all_responses))
    return [_labels(dataset.decode(c, t.transfer_syntax)) for c in got]


def test_worklist_keys_and_items_decode_with_sequences():
    keys = _decoded("worklist.pcap", "C-FIND")
    assert len(keys) == 1  # the request's identifier: the query keys, empty but one
    assert any("Scheduled Procedure Step Sequence: 1 item" in x for x in keys[0])
    assert any("Patient's Name: (empty)" in x for x in keys[0])
    items = _decoded("worklist.pcap", "C-FIND", all_responses=True)
    assert len(items) == 5  # one per pending response; the final one carries none
    assert any("SYNTHETIC^" in x for x in items[0])
    assert any(x.strip().startswith("(0040,0001) AE Scheduled Station AE Title")
               for x in items[0])
    names = {x for s in items for x in s if "Patient's Name" in x}
    assert len(names) == len(items)  # every pending response its own item


def test_mpps_and_storage_commitment_attributes():
    create = _decoded("mpps.pcap", "N-CREATE")[0]
    assert any("IN PROGRESS" in x for x in create)
    commit = _decoded("storage-commitment.pcap", "N-ACTION")[0]
    assert any("Referenced SOP Sequence: 3 items" in x for x in commit)


@pytest.mark.parametrize("index", range(6))
def test_images_in_every_transfer_syntax_stop_before_pixel_data(index):
    name = "store-transfer-syntaxes.pcap"
    a = analyzed(name)[0]
    t = a.transactions[index]
    got = dataset.collect(str(CAPTURES / name), a, dataset.wanted_messages(t))
    labels = _labels(dataset.decode(got[0], t.transfer_syntax))
    assert any("Patient's Name: 'SYNTHETIC^ALICE'" in x for x in labels), t.transfer_syntax
    pixel = [x for x in labels if x.startswith("(7FE0,0010)")]
    assert len(pixel) == 1 and "not decoded" in pixel[0] and "bytes" in pixel[0]


# -- exports ---------------------------------------------------------------------------------
def test_json_export_is_the_analyze_json_records(tmp_path):
    assocs = analyzed("move.pcap")
    out = tmp_path / "sel.jsonl"
    exports.export("json", str(out), assocs[1:], capture=None)
    mine = [json.loads(x) for x in out.read_text().splitlines()]
    r = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", "--json",
                        str(CAPTURES / "move.pcap")], capture_output=True, text=True, check=True)
    theirs = [json.loads(x) for x in r.stdout.splitlines()]
    want = [x for x in theirs if x.get("association", x.get("id")) == 2
            and x["type"] in ("association", "transaction", "finding")
            and not (x["type"] == "association" and x["id"] != 2)]
    assert mine == want


@pytest.mark.parametrize("fmt, head", [("svg", "<svg"), ("plantuml", "@startuml"),
                                       ("mermaid", "sequenceDiagram")])
def test_diagram_exports(tmp_path, fmt, head):
    out = tmp_path / f"d{exports.FORMATS[fmt][1]}"
    what = exports.export(fmt, str(out), analyzed("move.pcap"), capture=None)
    assert head in out.read_text()[:2000] and "2 association(s)" in what
    assert exports.format_for(str(out), "json") == fmt


def test_export_errors(tmp_path):
    with pytest.raises(ValueError, match="nothing selected"):
        exports.export("json", str(tmp_path / "x"), [], capture=None)
    with pytest.raises(ValueError, match="no capture file"):
        exports.export("pcap", str(tmp_path / "x"), analyzed("echo.pcap"), capture=None)
    with pytest.raises(OSError):
        exports.export("json", str(tmp_path / "no" / "x.jsonl"), analyzed("echo.pcap"),
                       capture=None)
    assert exports.default_name("/x/move.pcap", analyzed("move.pcap"), "svg") == "move-a1-2.svg"
