"""``dicomsniff diagram``: the diagram model from real captures, collapsing, selection, escaping,
the SVG layout and the command line. The external renderers are in test_diagram_tools.py."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dicomsniff.analysis.run import analyze_source
from dicomsniff.cli import main
from dicomsniff.export import mermaid, plantuml, svg
from dicomsniff.export.selection import SelectionError, select
from dicomsniff.export.sequence import Diagram, Message, Note, Options, build
from dicomsniff.export.wirelog import RecordingAnalyzer
from dicomsniff.model import Association, Transaction
from tests import builders as b

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
SVG_NS = "{http://www.w3.org/2000/svg}"

# AE titles (16 bytes at most) and a comment that are syntax in one format or another.
HOSTILE_AES = ['%getenv("HOME")', '<script>&amp;"', "@enduml --> x", "%%{init:}%%;#`",
               "**b** [[u]] $x", "end note |x"]
HOSTILE_COMMENT = "a;b%%c\n@enduml\n<b>&#37;</b> `x`"


# -- helpers (test_diagram_tools.py uses them too) -----------------------------------------------
def analyze(name: str | Path, *, pdata: bool = False) -> RecordingAnalyzer:
    an = RecordingAnalyzer(pdata=pdata)
    analyze_source(str(CAPTURES / name) if isinstance(name, str) else str(name), an)
    return an


def diagram(name: str | Path, level: str = "dimse", **kw) -> Diagram:
    an = analyze(name, pdata=level == "pdu")
    ids, aes, commands = kw.pop("ids", ()), kw.pop("aes", ()), kw.pop("commands", ())
    sel = select(an.associations, ids=ids, aes=aes, commands=commands)
    return build(sel.associations, log=an.log, selection=sel,
                 options=Options(level=level, **kw), title=str(name))


def messages(d: Diagram) -> list[Message]:
    return [i for i in d.items if isinstance(i, Message)]


def heads(d: Diagram) -> list[str]:
    """First label line of each message, without the '#N ' association prefix."""
    return [re.sub(r"^#\d+ ", "", m.lines[0]) for m in messages(d)]


def write_pcap(path: Path, frames: list[bytes]) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000, i * 1000, len(f), len(f)) + f)
    path.write_bytes(b"".join(out))
    return path


def hostile_capture(path: Path) -> Path:
    """Three associations whose AE titles, SOP class and error comment are format syntax."""
    frames: list[bytes] = []
    for k in range(3):
        calling, called = HOSTILE_AES[2 * k], HOSTILE_AES[2 * k + 1]
        c = b.TcpConversation(client=("192.0.2.1", 40000 + k)).handshake()
        c.send(0, b.associate_rq(called=called, calling=calling))
        c.send(1, b.associate_ac(called=called, calling=calling))
        comment = HOSTILE_COMMENT.encode()
        c.send(0, b.store_request(1, b"\x00" * 64))
        c.send(1, b.p_data(b.pdv(3, 3, b.command_set(
            0x8001, responded_to=1, sop_class="1.2.3;%%<b>`x`", status=0xA700,
            extra={0x0902: comment + b" " * (len(comment) % 2)}))))
        c.send(0, b.release_rq()).send(1, b.release_rp())
        frames += c.close().frames
    return write_pcap(path, frames)


def cli(*args: str) -> int:
    return main(["diagram", *args])


# -- the model from real captures --------------------------------------------------------------
def test_echo_is_the_textbook_sequence():
    d = diagram("echo.pcap")
    assert [lf.title for lf in d.lifelines] == ["ECHOSCU", "STORESCP"]
    assert d.lifelines[1].address.endswith(":104")
    assert heads(d) == ["A-ASSOCIATE-RQ", "A-ASSOCIATE-AC", "C-ECHO-RQ", "C-ECHO-RSP",
                        "A-RELEASE-RQ", "A-RELEASE-RP"]
    rq, ac, echo, rsp, rel, rp = messages(d)
    assert (rq.src, rq.dst, ac.src, ac.dst) == (0, 1, 1, 0)
    assert ac.reply and rsp.reply and rp.reply and not echo.reply
    assert "0x0000 Success" in rsp.lines
    note = d.items[d.items.index(ac) + 1]
    assert isinstance(note, Note) and "Verification SOP Class / Implicit VR Little Endian" in (
        " ".join(note.lines))


def test_move_shows_its_sub_association_inside_it():
    d = diagram("move.pcap")
    titles = [lf.title for lf in d.lifelines]
    assert titles == ["MOVESCU", "ARCHIVE"]  # the move destination is MOVESCU's own listener
    assert d.lifelines[0].address.endswith(":11113")
    h = [m.lines[0] for m in messages(d)]
    move_rq = h.index("#1 C-MOVE-RQ")
    final = max(i for i, x in enumerate(h) if x.startswith("#1 C-MOVE-RSP") and "x" not in x)
    sub = [i for i, x in enumerate(h) if x.startswith("#2 ")]
    assert move_rq < min(sub) and max(sub) < final
    store = next(m for m in messages(d) if m.lines[0].startswith("#2 C-STORE-RQ"))
    assert (titles[store.src], titles[store.dst]) == ("ARCHIVE", "MOVESCU")
    assert any("sub-operations: 4 completed, 0 failed" in x
               for x in messages(d)[final].lines)
    frames = [m.frame for m in messages(d)]
    assert frames == sorted(frames)  # two associations interleaved in capture order


def test_storage_commitment_report_arrives_on_its_own_association():
    d = diagram("storage-commitment-separate.pcap")
    h = [m.lines[0] for m in messages(d)]
    assert h.index("#1 N-ACTION-RQ") < h.index("#2 A-ASSOCIATE-RQ") < h.index(
        "#2 N-EVENT-REPORT-RQ")
    report = messages(d)[h.index("#2 N-EVENT-REPORT-RQ")]
    assert d.lifelines[report.src].title == "ARCHIVE"
    assert report.style == "warning" and "event type 2: failures exist" in report.lines


def test_rejection_and_abort_are_red_with_reasons_in_words():
    rj = [m for m in messages(diagram("associate-reject.pcap")) if "RJ" in m.lines[0]]
    assert len(rj) == 2 and all(m.style == "failure" for m in rj)
    assert any("called-AE-title-not-recognized" in x for x in rj[0].lines)
    d = diagram("abort-mid-transfer.pcap")
    (abort,) = [m for m in messages(d) if m.lines[0] == "A-ABORT"]
    assert abort.style == "failure" and d.lifelines[abort.src].title == "STORESCP"
    notes = [n for n in d.items if isinstance(n, Note) and "DIMSE-NO-RESPONSE" in n.lines[0]]
    assert notes and notes[0].style == "warning"


def test_runs_collapse_unless_asked_not_to():
    assert heads(diagram("store-transfer-syntaxes.pcap"))[2:4] == [
        "C-STORE-RQ x 6", "C-STORE-RSP x 6"]
    rsp = messages(diagram("store-transfer-syntaxes.pcap"))[3]
    assert rsp.lines[1] == "6 Success"
    full = heads(diagram("store-transfer-syntaxes.pcap", collapse=False))
    assert full.count("C-STORE-RQ") == 6 and full.count("C-STORE-RSP") == 6
    pend = heads(diagram("find-pending.pcap"))
    assert "C-FIND-RSP x 36" in pend
    assert heads(diagram("find-pending.pcap", collapse=False)).count("C-FIND-RSP") == 37


def _store(i: int, status: int, category: str) -> Transaction:
    return Transaction(id=i, association=1, command="C-STORE", command_field=1, message_id=i,
                       context_id=1, sent_by="requestor", sop_class=b.CT_STORAGE,
                       request_frame=10 + 2 * i, request_time=1.0 + i, status=status,
                       status_category=category, response_frames=[11 + 2 * i],
                       response_time=1.5 + i)


def test_collapsed_status_summary_counts_and_highlights():
    a = Association(1, "192.0.2.1:5000", "192.0.2.2:104", "CT", "PACS", request_frame=4,
                    accept_frame=5, release_frames=[900, 901], outcome="released")
    a.transactions = [_store(i, 0xB000 if i in (50, 120) else 0,
                             "Warning" if i in (50, 120) else "Success") for i in range(200)]
    d = build([a], options=Options(timing=True))  # no wire log: the model's frames suffice
    assert heads(d) == ["A-ASSOCIATE-RQ", "A-ASSOCIATE-AC", "C-STORE-RQ x 200",
                        "C-STORE-RSP x 200", "A-RELEASE-RQ", "A-RELEASE-RP"]
    rsp = messages(d)[3]
    assert rsp.lines[1] == "198 Success, 2 Warning 0xB000" and rsp.style == "warning"
    assert any(x.startswith("first warning: frame 111") for x in rsp.lines)
    assert any(x.startswith("latency median 500.0 ms") for x in rsp.lines)
    a.transactions[7].status, a.transactions[7].status_category = 0xA700, "Failure"
    rsp = messages(build([a]))[3]
    assert rsp.style == "failure" and "1 Failure 0xA700" in rsp.lines[1]
    assert len(messages(build([a], options=Options(collapse=False, max_messages=999)))) == 404


def test_pdu_level_shows_every_pdu_and_what_it_carries():
    d = diagram("echo.pcap", level="pdu")
    assert all(re.fullmatch(r"P-DATA-TF \(\d+ bytes\)", h) for h in heads(d)[2:4])
    assert any("C-ECHO-RQ msg 1" in x for x in messages(d)[2].lines)
    assert any("C-ECHO-RSP msg 1: 0x0000 Success" in x for x in messages(d)[3].lines)
    an = analyze("store-small-pdu.pcap", pdata=True)
    (a,) = an.associations
    sent = sum(a.pdus["requestor"].values()) + sum(a.pdus["acceptor"].values())
    full = build([a], log=an.log, options=Options(level="pdu", collapse=False,
                                                    max_messages=10_000))
    assert len(messages(full)) == sent
    short = heads(build([a], log=an.log, options=Options(level="pdu")))
    assert any(re.fullmatch(r"P-DATA-TF x \d+", h) for h in short) and len(short) < 12


def test_cut_off_with_a_note_when_too_tall():
    d = diagram("store-concurrent.pcap", collapse=False, max_messages=5)
    assert len(messages(d)) == 5 and d.cut > 0
    assert isinstance(d.items[-1], Note) and "cut off after 5 messages" in d.items[-1].lines[0]
    assert (d.items[-1].first, d.items[-1].last) == (0, len(d.lifelines) - 1)


# -- selection ----------------------------------------------------------------------------------
def test_selection_filters_and_related_associations():
    assocs = analyze("move.pcap").associations
    assert [a.id for a in select(assocs, ids=[2]).associations] == [2]
    assert [a.id for a in select(assocs, commands=["C-MOVE"]).associations] == [1, 2]
    assert len(select(assocs, aes=["movescu"]).associations) == 2
    assert len(select(assocs, between=["ARCHIVE", "MOVESCU"]).associations) == 2
    sc = analyze("storage-commitment-separate.pcap").associations
    assert [a.id for a in select(sc, commands=["N-ACTION"]).associations] == [1, 2]
    d = build((s := select(assocs, commands=["C-STORE"])).associations, selection=s)
    assert not any("C-MOVE" in h for h in heads(d))
    with pytest.raises(SelectionError, match=r"no association #9: .* #1-#2"):
        select(assocs, ids=[9])
    with pytest.raises(SelectionError, match="AE titles seen: ARCHIVE, MOVESCU"):
        select(assocs, aes=["NOPE"])
    with pytest.raises(SelectionError, match="commands seen: C-MOVE, C-STORE"):
        select(assocs, commands=["C-FIND"])
    with pytest.raises(SelectionError, match="no DICOM association"):
        select([])


# -- escaping -----------------------------------------------------------------------------------
@pytest.mark.parametrize("s", [*HOSTILE_AES, HOSTILE_COMMENT, "a\\nb $x %date() !include x"])
def test_escapers_leave_no_syntax(s):
    p = plantuml.text(s)
    assert not re.search(r'[%$\\"\n@!#*~\[\]|`;>]', re.sub(r"&#\d+;|<U\+[0-9A-F]{4}>", "", p))
    assert "<" not in re.sub(r"<U\+[0-9A-F]{4}>", "", p)
    for alias in (False, True):
        rest = re.sub(r"#\d+;", "", mermaid.text(s, alias=alias))
        assert not re.search(r"[#;%<>\"\n`{}\[\]*$@|&]", rest)


def test_hostile_strings_stay_data_in_every_format(tmp_path):
    cap = hostile_capture(tmp_path / "hostile.pcap")
    for fmt, ext in (("plantuml", "puml"), ("mermaid", "mmd"), ("svg", "svg")):
        assert cli(str(cap), "-o", str(tmp_path / f"h.{ext}")) == 0, fmt
    puml = (tmp_path / "h.puml").read_text()
    assert puml.count("@enduml") == 1 and puml.rstrip().endswith("@enduml")
    assert "%getenv" not in puml and "<script" not in puml
    mmd = (tmp_path / "h.mmd").read_text()
    assert ";" not in re.sub(r"#\d+;", "", mmd) and "%%" not in mmd
    assert len(mmd.splitlines()) == len(mermaid.render(diagram(cap)).splitlines())
    root = ET.parse(tmp_path / "h.svg").getroot()
    assert not root.findall(f".//{SVG_NS}script")
    texts = "".join(t.text or "" for t in root.iter(f"{SVG_NS}text"))
    for title in HOSTILE_AES:
        assert title in texts
    assert "comment: a;b%%c\\x0a@enduml" in texts  # the newline came from the wire: shown


# -- SVG layout ---------------------------------------------------------------------------------
def _svg(d: Diagram) -> ET.Element:
    return ET.fromstring(svg.render(d).encode())


def _size(root: ET.Element) -> tuple[float, float]:
    return float(root.get("width")), float(root.get("height"))


def test_svg_grows_with_lifelines_and_messages_and_arrows_never_share_a_row():
    w_echo, h_echo = _size(_svg(diagram("echo.pcap")))
    many = diagram("store-many-associations.pcap")
    w_many, h_many = _size(_svg(many))
    assert len(many.lifelines) == 6 and w_many > 2 * w_echo and h_many > h_echo
    collapsed = _size(_svg(diagram("store-transfer-syntaxes.pcap")))[1]
    assert _size(_svg(diagram("store-transfer-syntaxes.pcap", collapse=False)))[1] > collapsed
    root = _svg(many)
    rows = [float(ln.get("y1")) for ln in root.iter(f"{SVG_NS}line")
            if ln.get("y1") == ln.get("y2")]
    assert len(rows) == len(messages(many)) and len(set(rows)) == len(rows)


def test_svg_labels_fit_between_their_lifelines():
    from dicomsniff.export.fontmetrics import text_width
    from dicomsniff.export.svg import _block_width, _columns

    for name in ("move.pcap", "store-many-associations.pcap", "associate-reject.pcap"):
        d = diagram(name, timing=True)
        lay = _columns(d)
        assert lay.xs[0] - lay.head_w[0] / 2 >= lay.gutter  # clear of the frame column
        for m in messages(d):
            if m.src != m.dst:
                assert _block_width(m.lines) + 20 <= abs(lay.xs[m.src] - lay.xs[m.dst]), m
        assert text_width("C-STORE-RSP", 13, True) > text_width("C-STORE-RSP", 13)


# -- command line -------------------------------------------------------------------------------
def test_cli_formats_and_help(tmp_path, capsys):
    assert cli(str(CAPTURES / "echo.pcap")) == 0
    assert capsys.readouterr().out.startswith("@startuml")
    assert cli(str(CAPTURES / "echo.pcap"), "-o", str(tmp_path / "e.mmd"), "--timing") == 0
    assert (tmp_path / "e.mmd").read_text().startswith("sequenceDiagram")
    assert cli(str(CAPTURES / "echo.pcap"), "--format", "svg") == 0
    ET.fromstring(capsys.readouterr().out.encode())
    with pytest.raises(SystemExit):
        main(["diagram", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--between" in out and "--max-messages" in out


@pytest.mark.parametrize("args, message", [
    (["missing.pcap"], "missing.pcap"),
    (["{readme}"], "README.md"),
    (["{echo}", "--association", "7"], "no association #7"),
    (["{echo}", "--ae", "NOBODY"], "AE titles seen: ECHOSCU, STORESCP"),
    (["{echo}", "--command", "C-MOVE"], "commands seen: C-ECHO"),
    (["{echo}", "-o", "{tmp}/out.gif"], "cannot tell the diagram format"),
    (["{echo}", "-o", "{tmp}/nodir/out.svg"], "no such directory"),
    (["{echo}", "-o", "/dev/full", "--format", "svg"], "cannot write /dev/full"),
])
def test_cli_errors_are_one_line_and_exit_2(args, message, tmp_path, capsys):
    repl = {"{echo}": str(CAPTURES / "echo.pcap"), "{tmp}": str(tmp_path),
            "{readme}": str(CAPTURES.parent / "README.md")}
    argv = [repl.get(a, a) for a in args]
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "missing.pcap":
        argv[0] = str(tmp_path / "missing.pcap")
    assert cli(*argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_cli_warns_on_cut_off_and_bad_command_is_usage_error(tmp_path, capsys):
    out = tmp_path / "c.svg"
    assert cli(str(CAPTURES / "store-concurrent.pcap"), "--no-collapse", "--max-messages", "4",
               "-o", str(out)) == 0
    assert "cut off after 4 messages" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["diagram", str(CAPTURES / "echo.pcap"), "--command", "C-WHATEVER"])
    assert exc.value.code == 2


def test_import_stays_light():
    code = ("import sys, dicomsniff.cli.diagram; "
            "print(sorted(m for m in ('dicomsniff.analysis.engine', 'dicomsniff.export.svg', "
            "'dicomsniff.export.sequence') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def move_triangle_capture(path: Path) -> Path:
    """SCU asks ARCHIVE to move a study to a third AE: the classic C-MOVE triangle."""
    move_uid = "1.2.840.10008.5.1.4.1.2.2.2"
    ctx = [(1, move_uid, [b.IMPLICIT_LE])]
    scu = b.TcpConversation(client=("192.0.2.1", 41000), server=("192.0.2.2", 104)).handshake()
    scu.send(0, b.associate_rq("ARCHIVE", "VIEWER", contexts=ctx))
    scu.send(1, b.associate_ac("ARCHIVE", "VIEWER", results=[(1, 0, b.IMPLICIT_LE)]))
    scu.send(0, b.p_data(b.pdv(1, 3, b.command_set(0x0021, message_id=7, sop_class=move_uid,
                                                   priority=0, move_destination="WORKSTATION",
                                                   has_dataset=True))))
    scu.send(0, b.p_data(b.pdv(1, 2, b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")))
    mark = len(scu.frames)
    counts = {0x1021: struct.pack("<H", 2), 0x1022: struct.pack("<H", 1),
              0x1023: struct.pack("<H", 0)}
    scu.send(1, b.p_data(b.pdv(1, 3, b.command_set(0x8021, responded_to=7, sop_class=move_uid,
                                                   status=0xB000, extra=counts))))
    scu.send(0, b.release_rq()).send(1, b.release_rp()).close()
    sub = b.TcpConversation(client=("192.0.2.2", 52000), server=("192.0.2.3", 104)).handshake()
    sub.send(0, b.associate_rq("WORKSTATION", "ARCHIVE"))
    sub.send(1, b.associate_ac("WORKSTATION", "ARCHIVE"))
    for i, status in enumerate((0, 0, 0xA700)):
        sub.send(0, b.store_request(i + 1, b"\x00" * 200)).send(1, b.store_response(i + 1, status))
    sub.send(0, b.release_rq()).send(1, b.release_rp()).close()
    return write_pcap(path, scu.frames[:mark] + sub.frames + scu.frames[mark:])


def test_move_triangle_with_a_third_ae(tmp_path):
    cap = move_triangle_capture(tmp_path / "triangle.pcap")
    d = diagram(cap, commands=["C-MOVE"])
    assert [lf.title for lf in d.lifelines] == ["VIEWER", "ARCHIVE", "WORKSTATION"]
    assert d.lifelines[2].address == "192.0.2.3:104"
    ms = messages(d)
    who = [(d.lifelines[m.src].title, d.lifelines[m.dst].title, m.lines[0]) for m in ms]
    assert who[2] == ("VIEWER", "ARCHIVE", "#1 C-MOVE-RQ")
    assert who[3] == ("ARCHIVE", "WORKSTATION", "#2 A-ASSOCIATE-RQ")
    stores = [m for m in ms if m.lines[0].startswith("#2 C-STORE-RSP")]
    assert stores[0].lines[1] == "2 Success, 1 Failure 0xA700" and stores[0].style == "failure"
    final = next(m for m in ms if m.lines[0] == "#1 C-MOVE-RSP")
    assert ms.index(final) > ms.index(stores[0])
    assert "sub-operations: 2 completed, 1 failed, 0 warning" in final.lines
    assert final.lines[1].startswith("0xB000 Warning")
    assert final.style == "failure"  # a failed sub-operation is red whatever the status says


def test_damaged_capture_is_drawn_then_exit_3(tmp_path, capsys):
    data = (CAPTURES / "echo.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])
    out = tmp_path / "cut.svg"
    assert cli(str(cut), "-o", str(out)) == 3
    assert "capture damaged" in capsys.readouterr().err
    ET.parse(out)


def test_capture_on_standard_input(monkeypatch, capsys):
    import io

    raw = io.BytesIO((CAPTURES / "echo.pcap").read_bytes())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(raw))
    assert cli("-", "--format", "mermaid") == 0
    assert "C-ECHO-RQ" in capsys.readouterr().out


def self_association() -> Association:
    """An AE that associates with itself (same title, same host): one lifeline."""
    a = Association(1, "192.0.2.1:5000", "192.0.2.1:104", "SELF", "SELF", request_frame=4,
                    accept_frame=5, release_frames=[9, 10], outcome="released")
    a.transactions = [_store(1, 0xC000, "Failure")]
    return a


def test_one_lifeline_draws_messages_to_itself():
    d = build([self_association()])
    assert len(d.lifelines) == 1 and d.lifelines[0].address == "192.0.2.1:104"
    assert all(m.src == m.dst == 0 for m in messages(d))
    root = _svg(d)
    assert _size(root)[0] > 200
    assert "note over P1 " in plantuml.render(d) or "P1 -> P1" in plantuml.render(d)
    assert "P1->>P1" in mermaid.render(d)


def test_selection_subtitle_keeps_the_wire_spelling_of_ae_titles():
    """--ae matches regardless of case, but the subtitle names the AE as it was sent."""
    assocs = analyze("echo.pcap").associations
    sel = select(assocs, aes=["echoscu"])
    assert "AE ECHOSCU" in sel.description and "echoscu" not in sel.description
    called = assocs[0].called_ae
    sel = select(assocs, between=["echoscu", called.lower()])
    assert f"between ECHOSCU and {called}" in sel.description


def test_cmove_selection_brings_the_linked_sub_association():
    assocs = analyze("move.pcap").associations
    sel = select(assocs, commands=["C-MOVE"])
    assert sel.related == {2} and {a.id for a in sel.associations} == {1, 2}


# -- notes and runs that read right (issue: a new user's first hour) -----------------------------
def test_collapsed_runs_keep_their_interleaving():
    """move.pcap: each C-STORE on the sub-association is followed by a pending C-MOVE-RSP.
    Collapsed, the runs are drawn where they start, with their frame ranges, so the pending
    responses do not seem to come before the C-STORE-RSPs."""
    h = heads(diagram("move.pcap"))
    i = h.index("C-STORE-RQ x 4")
    assert h[i:i + 3] == ["C-STORE-RQ x 4", "C-STORE-RSP x 4", "C-MOVE-RSP x 4"]
    for m in messages(diagram("move.pcap")):
        if " x " in m.lines[0]:
            assert any(re.fullmatch(r"frames \d+-\d+", x) for x in m.lines), m.lines


def test_findings_notes_are_short_and_not_said_twice():
    d = diagram("findings/killed-scu.pcap")
    notes = [n for n in d.items if isinstance(n, Note)]
    assert not any(n.lines[0].startswith("TCP connection closed") for n in notes)
    closed = [n for n in notes if "ASSOC-CLOSED-NO-RELEASE" in n.lines[0]]
    assert len(closed) == 1
    assert all(len(n.lines) <= 4 for n in notes if n.style in ("warning", "failure"))
    assert closed[0].lines[-1].endswith("…")


def test_notes_do_not_stretch_over_other_aes():
    d = diagram("store-many-associations.pcap")
    assert len(d.lifelines) > 3
    for n in d.items:
        if isinstance(n, Note) and not (n.first == 0 and n.last == len(d.lifelines) - 1
                                        and n.lines[0].startswith("capture")):
            assert n.last - n.first <= 1, n.lines


def test_slow_responses_show_their_time_without_timing():
    """store-slow.pcap: the 6th C-STORE took 1.5 s (a pynetdicom SCP told to sleep)."""
    collapsed = diagram("findings/store-slow.pcap")
    rsp = next(m for m in messages(collapsed) if m.lines[0].startswith("C-STORE-RSP x"))
    assert any(re.fullmatch(r"latency median [\d.]+ ms, max 1\.5\d* s", x) for x in rsp.lines)
    assert rsp.style == "warning"  # DIMSE-SLOW-RESPONSE was raised for it
    single = diagram("findings/store-slow.pcap", collapse=False)
    slow = [m for m in messages(single) if m.lines[0].startswith("C-STORE-RSP (took ")]
    assert len(slow) == 1 and slow[0].lines[0].startswith("C-STORE-RSP (took 1.5")
    assert not any("took" in m.lines[0] or "latency" in " ".join(m.lines)
                   for m in messages(diagram("echo.pcap")))


def test_png_is_written_whole_even_when_taller_than_plantuml_allows():
    """PlantUML cuts PNGs at 4096 px; dicomsniff rasterises its own SVG with resvg instead."""
    from dicomsniff.export import png

    d = diagram("store-many-associations.pcap", level="pdu", collapse=False)
    data = png.render(d, zoom=1.0)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    svg_height = int(re.search(r'height="(\d+)"', svg.render(d)).group(1))
    assert height == svg_height and height > 4096
    assert plantuml.LIMIT_NOTE in plantuml.render(d)


def test_diagram_cli_writes_png(tmp_path):
    out = tmp_path / "move.png"
    assert main(["diagram", str(CAPTURES / "move.pcap"), "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24])[1] > 1000
