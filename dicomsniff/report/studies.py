"""The study timeline as text (80 columns) and the journey's JSON records.

One block per study: who it is, then one line per stage (scheduled, performed, stored,
committed, available) and what does not add up. Values from the wire were escaped when they
were read (:func:`.decode.esc`); UIDs are shown whole (they are what a PACS administrator
searches for), each on a line of its own where it would not fit.
"""

from __future__ import annotations

from typing import Any

from ..analysis.journey.decode import esc

WIDTH = 80
JOURNEY_PREFIXES = ("STUDY-", "PRINT-", "UPS-")
FOLDED = ("WORKFLOW-MPPS-NOT-COMPLETED", "WORKFLOW-COMMIT-FAILURES")


def is_journey_code(code: str) -> bool:
    return code.startswith(JOURNEY_PREFIXES) or code in FOLDED


def _frames(frames: list[int | None]) -> str:
    fs = sorted({f for f in frames if f is not None})
    if not fs:
        return ""
    if len(fs) == 1:
        return f"frame {fs[0]}"
    return f"frames {fs[0]}-{fs[-1]}"


def _wrap(label: str, text: str, indent: int = 14) -> list[str]:
    """``label`` in a column, ``text`` wrapped after it at word boundaries."""
    out, line = [], f"  {label:<{indent - 2}}"
    for word in text.split(" "):
        if len(line) + len(word) + 1 > WIDTH and line.strip() and len(line) > indent:
            out.append(line.rstrip())
            line = " " * indent
        line += word + " "
    out.append(line.rstrip())
    return out


def study_lines(rec: dict[str, Any], findings: list[Any]) -> list[str]:
    """The text block of one ``{"type": "study"}`` record and its findings."""
    lines = [f"Study {rec['study_instance_uid']}"]
    who = []
    if rec.get("accession_number"):
        who.append(f"accession {esc(rec['accession_number'])}")
    if rec.get("patient_id"):
        who.append(f"patient {esc(rec['patient_id'])}")
    if rec.get("patient_name"):
        who.append(esc(rec["patient_name"]))
    if who:
        lines.append("  " + "  ".join(who))
    sch = rec.get("scheduled")
    if sch:
        how = rec.get("scheduled_match")
        matched = "" if how in (None, "study_instance_uid") else f" (matched by {how})"
        lines += _wrap("scheduled", f"SPS {esc(sch.get('sps_id'))}, requested procedure "
                       f"{esc(sch.get('requested_procedure_id'))}, {esc(sch.get('modality'))} "
                       f"on {esc(sch.get('scheduled_station_ae'))}; fetched by "
                       f"{esc(sch.get('fetched_by'))} from {esc(sch.get('worklist_ae'))} "
                       f"(#{sch.get('association')}, frame {sch.get('frame')}){matched}")
    else:
        lines += _wrap("scheduled", "no worklist item matched")
    for m in rec.get("mpps") or []:
        steps = " -> ".join(f"{esc(t['status'])} (frame {t['frame']})"
                            for t in m.get("transitions") or [])
        hop = ""
        tr = (m.get("transitions") or [None])[0]
        if tr:
            hop = f" {esc(tr['from'])} -> {esc(tr['to'])}"
        final = m.get("status") in ("COMPLETED", "DISCONTINUED")
        lines += _wrap("performed", f"MPPS {m['sop_instance']}: {steps or '?'}{hop}; "
                       f"{m.get('performed_instances', 0)} instance(s) listed"
                       + ("" if final else "; never COMPLETED or DISCONTINUED"))
    if not rec.get("mpps"):
        lines += _wrap("performed", "no MPPS seen")
    counts = rec.get("instances") or {}
    series = rec.get("series") or []
    if series:
        to = sorted({ae for s in series for ae in s.get("stored_to") or []})
        statuses: dict[str, int] = {}
        for s in series:
            for k, v in (s.get("statuses") or {}).items():
                statuses[k] = statuses.get(k, 0) + v
        st = ", ".join(f"{v} {k}" for k, v in sorted(statuses.items()))
        lines += _wrap("stored", f"{sum(s['instances'] for s in series)} instance(s) in "
                       f"{len(series)} series to {', '.join(esc(x) for x in to) or '?'}: {st}")
    else:
        lines += _wrap("stored", "no C-STORE seen")
    commits = rec.get("commitment") or []
    for c in commits:
        rq, rp = c.get("request"), c.get("report")
        where = _frames([rq and rq.get("frame"), rp and rp.get("frame")])
        text = (f"{c['requested']} requested, {c['committed']} committed, {c['failed']} "
                f"failed ({where})")
        if rq is not None and rp is None:
            text += "; no report seen"
        for f in (c.get("failures") or [])[:3]:
            text += f"; {f['sop_instance']}: {f.get('reason_text') or 'no reason given'}"
        lines += _wrap("committed", text)
    if not commits:
        lines += _wrap("committed", "no storage commitment seen")
    ians = rec.get("ian") or []
    for ian in ians:
        av = ", ".join(f"{v} {esc(k)}" for k, v in (ian.get("availability") or {}).items())
        lines += _wrap("available", f"IAN {esc(ian.get('from'))} -> {esc(ian.get('to'))}: "
                       f"{ian['instances']} instance(s) {av} (frame {ian.get('frame')})")
    if not ians:
        lines += _wrap("available", "no IAN seen")
    cut = rec.get("cut_stores") or []
    if rec.get("capture_began_inside"):
        lines += _wrap("cut", "the capture began inside an association of this study: its "
                       "earlier C-STOREs were not seen"
                       + (f"; {len(cut)} C-STORE(s) on it cut (only their responses "
                          "captured: their study is not known, see STUDY-STORE-CUT)"
                          if cut else ""))
    lines += _wrap("counts", f"{counts.get('stored', 0)} stored, {counts.get('in_mpps', 0)} in "
                   f"MPPS, {counts.get('committed', 0)} committed, "
                   f"{counts.get('commit_failed', 0)} commit failed, "
                   f"{counts.get('in_ian', 0)} in IAN")
    lines += timeline_lines(rec)
    problems = [f"{f.severity.upper()} {f.code}: {f.shown} [{f.section}]" for f in findings]
    # Folded in under their own (older, stable) codes, raised at the end of the capture.
    for m in rec.get("mpps") or []:
        if m.get("status") not in ("COMPLETED", "DISCONTINUED"):
            problems.append(f"WARNING WORKFLOW-MPPS-NOT-COMPLETED: the MPPS {m['sop_instance']} "
                            f"was left {esc(m.get('status'))} [PS3.4 F.7.2]")
    if counts.get("commit_failed"):
        problems.append(f"WARNING WORKFLOW-COMMIT-FAILURES: {counts['commit_failed']} "
                        "instance(s) NOT committed (see 'committed') [PS3.4 J.3.3.1]")
    for p in problems:
        lines += _wrap("!", p)
    if not problems:
        lines += _wrap("ok", "the journey adds up")
    return lines


def _event_text(ev: dict[str, Any]) -> str:
    what = esc(ev["what"])
    if ev["stage"] == "stored":
        st = ", ".join(f"{v} {esc(k)}" for k, v in sorted((ev.get("statuses") or {}).items()))
        what += f" {ev['instances']} instance(s) ({st})"
    elif ev["stage"] == "committed" and "committed" in ev:
        what += f": {ev['committed']} committed, {ev['failed']} failed"
    elif ev.get("instances") is not None:
        what += f": {ev['instances']} instance(s)"
    return f"{what} {esc(ev['from'])} -> {esc(ev['to'])}"


def timeline_lines(rec: dict[str, Any]) -> list[str]:
    """One timeline per scheduled procedure step: capture time from the step's first event,
    frame(s), stage, what happened and between which AEs."""
    out: list[str] = []
    for step in rec.get("procedure_steps") or []:
        sps = step["sps_id"]
        head = (f"SPS {esc(sps)}" if sps else "no Scheduled Procedure Step ID") + (
            " (the worklist item's)" if step["scheduled"] else " (no worklist item)")
        out += _wrap("timeline", f"{head}, reached: {esc(step['state'])}")
        t0 = next((e["time"] for e in step["timeline"] if e["time"] is not None), None)
        for ev in step["timeline"]:
            dt = (f"+{ev['time'] - t0:.3f}s" if t0 is not None and ev["time"] is not None
                  else "")
            fr = _frames([ev["frame"], ev.get("last_frame")]).replace("frames ", "#").replace(
                "frame ", "#")
            out += _wrap(f"  {dt:>9} {fr:<8}", f"{ev['stage']}: {_event_text(ev)}", 24)
    return out


def _problems(findings: list[Any]) -> list[str]:
    out: list[str] = []
    for f in findings:
        out += _wrap("!", f"{f.severity.upper()} {f.code}: {f.shown} [{f.section}]")
    return out


def film_lines(rec: dict[str, Any], findings: list[Any]) -> list[str]:
    lines = [f"Print on {esc(rec['printer'])} from {esc(rec['scu'])} "
             f"(association #{rec['association']})"]
    for fb in rec["film_boxes"]:
        printed = (f"printed (frame {fb['printed_frame']})" if fb["printed_frame"]
                   else "never printed")
        lines += _wrap("film box", f"{fb['sop_instance']}: {fb['image_boxes_set']} of "
                       f"{fb['image_boxes']} image box(es) set, {printed}"
                       + (f", deleted (frame {fb['deleted_frame']})" if fb["deleted_frame"]
                          else ""))
    return lines + _problems(findings)


def workitem_lines(rec: dict[str, Any], findings: list[Any]) -> list[str]:
    lines = [f"Workitem {rec['sop_instance']}  state {esc(rec['state'])}"]
    for h in rec["history"]:
        what = h["action"] or h["command"]
        st = f"0x{h['status']:04X}" if isinstance(h.get("status"), int) else "no answer"
        lines += _wrap(esc(h["command"]), f"{what}"
                       + (f" -> {esc(h['requested_state'])}" if h["requested_state"] else "")
                       + f" by {esc(h['by'])}: {st} (frame {h['frame']})")
    for sub in rec.get("subscriptions") or []:
        lines += _wrap("subscriber", f"{esc(sub['ae'])} ({sub['scope']}, frame {sub['frame']}"
                       + (f" to {sub['until_frame']}" if sub["until_frame"] else "")
                       + f"): {sub['reports']} state report(s)")
    for e in rec["events"]:
        lines += _wrap("event", f"{e['event'] or e['event_type']}: {esc(e['state'])} "
                       f"{esc(e['from'])} -> {esc(e['to'])} (frame {e['frame']})")
    return lines + _problems(findings)
