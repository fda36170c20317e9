"""``dicomsniff studies``: one timeline per study, across associations, AEs and captures.

Only argparse is imported at start-up; the analysis (dicomsniff/analysis/journey/) and the
text (dicomsniff/report/studies.py) load when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import inflate
from .args import (
    add_capture_arguments,
    add_limit_options,
    add_port_option,
    add_rule_options,
    add_tls_option,
    positive_int,
)

EPILOG = """\
examples:
  dicomsniff studies night.pcapng                    one timeline per study
  dicomsniff studies modality.pcap archive.pcap      several captures, merged by time
  dicomsniff studies night.pcapng --study JACC0001   one study (UID, accession, patient, SPS)
  dicomsniff studies night.pcapng --json > s.jsonl   {"type": "study"} records

Per study: scheduled (the worklist item and which AE fetched it), performed (MPPS status
transitions), stored (instances per series, to which AE, with their statuses), committed
(requested, succeeded, failed with the reason), available (IAN), one timeline per
scheduled procedure step, and what does not add up (findings STUDY-*; print sessions and
UPS workitems with their subscribers follow, with PRINT-* and UPS-*).
Frame numbers count across the merged captures, in time order. docs/studies.md has more.
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "studies", help="follow each study across worklist, MPPS, storage, commitment, IAN",
        description="Follow each study across associations, AEs and services: the worklist "
                    "item, the MPPS, the C-STOREs, storage commitment and Instance "
                    "Availability Notification, and what does not add up; print sessions "
                    "and UPS workitems too.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_capture_arguments(p)
    p.add_argument("--json", action="store_true",
                   help="write JSON Lines: one study record per study, then print sessions, "
                        "workitems, the journey's findings and a summary")
    p.add_argument("--study", metavar="KEY", action="append", default=[],
                   help="only studies whose Study Instance UID, Accession Number, Patient ID "
                        "or Scheduled Procedure Step ID is KEY (repeatable)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--max-studies", type=positive_int, default=10_000, metavar="N",
                   help="studies followed at once (default 10000); beyond, the oldest is "
                        "judged early (STUDY-CAP)")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    add_port_option(p)
    add_tls_option(p)  # HTTPS: STOW-RS stores inside TLS count too
    add_limit_options(p)
    add_rule_options(p)
    inflate.add_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Analyse the captures as one; each study is written as it is released, then print
    sessions, workitems and the journey findings that belong to no study."""
    import json

    from ..analysis.engine import Analyzer
    from ..analysis.run import analyze_source
    from ..inflate import apply_option
    from ..report.studies import film_lines, is_journey_code, study_lines, workitem_lines
    from ..sources.capture import CaptureError
    from .args import (
        EXIT_DAMAGED,
        EXIT_OK,
        EXIT_UNUSABLE,
        Progress,
        finish_input,
        keylog_from,
        limits_from,
        open_input,
        open_output,
        rules_from,
    )

    apply_option(args)
    keylog = keylog_from(args)  # before the capture opens: a bad key log is one line, exit 2
    try:
        capset = open_input(args)  # the one way every subcommand opens its capture
    except CaptureError as exc:
        sys.stderr.write(f"dicomsniff: {exc}\n")
        return EXIT_UNUSABLE
    an = Analyzer(ports=args.port, limits=limits_from(args), keep=False, rules=rules_from(args),
                  tls_keylog=keylog)
    an.journey.max_studies = max(1, args.max_studies)
    out = open_output(args.output)
    keys = set(args.study)
    pending: dict[str, list[Any]] = {}  # study UID -> its findings, until it is released
    other: list[Any] = []
    shown = [0]

    by_item: dict[str, list[Any]] = {}  # film box, workitem or association -> findings

    def on_finding(f: Any) -> None:
        if not is_journey_code(f.code):
            return
        uids = f.uids or {}
        uid = uids.get("study_instance_uid")
        if uid:
            pending.setdefault(uid, []).append(f)
        elif f.code.startswith("UPS-") and uids.get("sop_instance"):
            by_item.setdefault(uids["sop_instance"], []).append(f)
        elif f.code.startswith("PRINT-") and f.association is not None:
            by_item.setdefault(f"#{f.association}", []).append(f)
        else:
            other.append(f)

    def wanted(rec: dict[str, Any]) -> bool:
        return not keys or bool(keys & {rec["study_instance_uid"], rec.get("accession_number"),
                                        rec.get("patient_id"),
                                        *(s["sps_id"] for s in rec["procedure_steps"])})

    folded: set[str] = set()  # MPPS and commitment UIDs the study blocks already speak of

    def on_study(st: Any) -> None:
        rec = st.record()
        fs = pending.pop(st.uid, [])
        if not wanted(rec):
            return
        shown[0] += 1
        folded.update(m["sop_instance"] for m in rec["mpps"])
        folded.update(c["transaction_uid"] for c in rec["commitment"] if c["transaction_uid"])
        if args.json:
            out.write(json.dumps(rec, sort_keys=True) + "\n")
            for f in fs:
                out.write(json.dumps(f.to_record(), sort_keys=True) + "\n")
        else:
            out.write("\n".join(study_lines(rec, fs)) + "\n\n")

    an.on_finding.append(on_finding)
    an.journey.on_study.append(on_study)
    damaged = None
    bar = Progress(capset, args.no_progress, "reading")
    try:
        damaged = analyze_source(capset, an, bar.callback).reader_error
    except CaptureError as exc:
        sys.stderr.write(f"dicomsniff: {exc}\n")
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        an.finish()
    finally:
        bar.stop()
    films = an.journey.printing.sessions
    items = an.journey.ups.records()
    # Findings that arrived after their study was released (the rules' capture-end checks).
    late = [f for fs in pending.values() for f in fs] + other
    if args.json:
        for rec in [*films, *items]:
            out.write(json.dumps(rec, sort_keys=True) + "\n")
        late += [f for fs in by_item.values() for f in fs]
        for f in late:
            out.write(json.dumps(f.to_record(), sort_keys=True) + "\n")
        out.write(json.dumps({"type": "summary", "studies": shown[0],
                              "studies_released": an.journey.released,
                              "studies_evicted": an.journey.evicted,
                              "film_sessions": len(films), "workitems": len(items),
                              "headers_read": an.journey.headers_read,
                              "headers_unreadable": an.journey.headers_failed,
                              "frames": an.stats.frames, "capture_error": damaged},
                             sort_keys=True) + "\n")
    else:
        for rec in films:
            fs = by_item.pop(f"#{rec['association']}", [])
            out.write("\n".join(film_lines(rec, fs)) + "\n\n")
        for rec in items:
            out.write("\n".join(workitem_lines(rec, by_item.pop(rec["sop_instance"], [])))
                      + "\n\n")
        late += [f for fs in by_item.values() for f in fs]
        late = [f for f in late if not (f.code.startswith("WORKFLOW-")
                                        and any(u in f.message for u in folded))]
        if late:
            out.write("Also found\n")
            for f in late:
                out.write(f"  {f.severity.upper()} {f.code}: {f.shown} [{f.section}]\n")
            out.write("\n")
        out.write(f"{shown[0]} stud{'y' if shown[0] == 1 else 'ies'}, {len(films)} print "
                  f"association(s), {len(items)} workitem(s) in {an.stats.frames} frames\n")
    if out is not sys.stdout:
        out.close()
    if not capset.single:  # several files: each problem was one line already
        return EXIT_DAMAGED if finish_input(capset) else EXIT_OK
    if damaged:
        sys.stderr.write(f"dicomsniff: capture damaged: {damaged}\n")
        return EXIT_DAMAGED
    return EXIT_OK
