"""Gap analysis: an institution's requirements (CSV or xlsx) checked against observed facts.

A requirement row names an AE title, a role (SCU or SCP), a SOP class and optionally a transfer
syntax (UID, pydicom keyword or the standard's name; empty means any). Its status:

* ``met``: a presentation context with that abstract syntax (and that transfer syntax, when
  given) was accepted on an association where the AE played that role (see
  :mod:`.facts` for roles: requestor SCU and acceptor SCP unless role selection said otherwise);
* ``refused``: such a context was proposed with the AE in that role and never accepted (the
  context was refused, the association rejected, or another transfer syntax chosen), with the
  reason;
* ``not_observed``: nothing of the kind crossed the wire.

``write_template`` turns what was observed into a requirements file to edit.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any

from ..uids import uid_from_text, uid_keyword, uid_name
from .facts import SCP, SCU, Evidence, Facts

MAX_ROWS = 100_000
MAX_FILE_BYTES = 64 << 20
COLUMNS = ("ae", "role", "sop_class", "transfer_syntax")
_ALIASES = {
    "ae": "ae", "ae title": "ae", "ae_title": "ae", "aet": "ae", "aetitle": "ae",
    "role": "role",
    "sop class": "sop_class", "sop_class": "sop_class", "sop class uid": "sop_class",
    "sop_class_uid": "sop_class", "abstract syntax": "sop_class", "sop": "sop_class",
    "transfer syntax": "transfer_syntax", "transfer_syntax": "transfer_syntax",
    "transfer syntax uid": "transfer_syntax", "transfer_syntax_uid": "transfer_syntax",
    "ts": "transfer_syntax",
}
MET, REFUSED, NOT_OBSERVED = "met", "refused", "not_observed"


class RequirementsError(Exception):
    """A requirements file that cannot be used; the message is one line naming file and row."""


class Requirement:
    __slots__ = ("ae", "role", "sop_class", "transfer_syntax", "row", "status", "evidence",
                 "reason")

    def __init__(self, ae: str, role: str, sop_class: str, transfer_syntax: str | None,
                 row: int) -> None:
        self.ae, self.role, self.sop_class = ae, role, sop_class
        self.transfer_syntax = transfer_syntax
        self.row = row
        self.status = NOT_OBSERVED
        self.evidence: Evidence | None = None
        self.reason: str | None = None

    def to_record(self) -> dict[str, Any]:
        ev = None
        if self.evidence is not None:
            ev = self.evidence.to_record()
            if self.reason:
                ev["reason"] = self.reason
        return {"type": "requirement", "ae": self.ae, "role": self.role,
                "sop_class": self.sop_class, "sop_class_name": uid_name(self.sop_class),
                "transfer_syntax": self.transfer_syntax,
                "transfer_syntax_name": uid_name(self.transfer_syntax),
                "status": self.status, "evidence": ev, "row": self.row}


def _cell(v: Any) -> str:
    """A cell as text; the quote that ``render.safe_cell`` puts before a would-be formula goes."""
    t = "" if v is None else str(v).strip()
    return t[1:] if t[:1] == "'" and t[1:2] in ("=", "+", "-", "@") else t


def _rows_csv(path: str) -> list[list[str]]:
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise RequirementsError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    # The delimiter is whichever of , ; TAB the header line uses most (spreadsheets in some
    # locales write ;). csv.Sniffer is not used: it guesses ' as a quote character when a
    # cell starts with the quote that keeps a formula-like AE title text.
    header = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(",;\t", key=header.count) if header else ","
    try:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        return [row for _, row in zip(range(MAX_ROWS + 2), reader, strict=False)]
    except csv.Error as exc:
        raise RequirementsError(f"{path}: not a readable CSV file: {exc}") from None


def _rows_xlsx(path: str) -> list[list[str]]:
    import zipfile

    from openpyxl import load_workbook

    if os.path.getsize(path) > MAX_FILE_BYTES:
        raise RequirementsError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB")
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise RequirementsError(f"{path}: not a readable xlsx workbook ({exc})") from None
    try:
        ws = wb["Requirements"] if "Requirements" in wb.sheetnames else wb.worksheets[0]
        out = []
        for row in ws.iter_rows(values_only=True):
            out.append([_cell(v) for v in row])
            if len(out) > MAX_ROWS + 1:
                break
        return out
    finally:
        wb.close()


def read_requirements(path: str) -> list[Requirement]:
    """Rows of a CSV (comma, semicolon or tab) or xlsx requirements file, resolved to UIDs."""
    if not os.path.isfile(path):
        raise RequirementsError(f"{path}: no such file")
    try:
        rows = _rows_xlsx(path) if path.lower().endswith((".xlsx", ".xlsm")) else _rows_csv(path)
    except OSError as exc:
        raise RequirementsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    rows = [r for r in rows if any(_cell(c) for c in r)]
    if not rows:
        raise RequirementsError(f"{path}: empty; expected a header row "
                                "'ae,role,sop_class,transfer_syntax'")
    if len(rows) > MAX_ROWS + 1:
        raise RequirementsError(f"{path}: more than {MAX_ROWS} requirement rows")
    header = [_ALIASES.get(_cell(c).lower().replace("-", " ")) for c in rows[0]]
    missing = [c for c in COLUMNS[:3] if c not in header]
    if missing:
        raise RequirementsError(f"{path}: header row lacks column(s) {', '.join(missing)} "
                                "(expected ae, role, sop_class and optionally transfer_syntax)")
    idx = {name: header.index(name) for name in COLUMNS if name in header}
    out = []
    for n, row in enumerate(rows[1:], 2):
        def get(name: str, row: list[Any] = row) -> str:
            i = idx.get(name)
            return _cell(row[i]) if i is not None and i < len(row) else ""
        ae, role, sop, ts = get("ae"), get("role").upper(), get("sop_class"), get("transfer_syntax")
        if not ae:
            raise RequirementsError(f"{path}: row {n}: no AE title")
        if role not in (SCU, SCP):
            raise RequirementsError(f"{path}: row {n}: role must be SCU or SCP, not {role!r}")
        sop_uid = uid_from_text(sop)
        if sop_uid is None:
            raise RequirementsError(f"{path}: row {n}: unknown SOP class {sop!r} (give a UID, "
                                    "a keyword like CTImageStorage or the standard's name)")
        ts_uid = None
        if ts and ts.lower() not in ("any", "*"):
            ts_uid = uid_from_text(ts)
            if ts_uid is None:
                raise RequirementsError(f"{path}: row {n}: unknown transfer syntax {ts!r}")
        out.append(Requirement(ae, role, sop_uid, ts_uid, n))
    return out


def evaluate(reqs: list[Requirement], facts: Facts) -> list[Requirement]:
    """Give each requirement its status, evidence and reason (in place); returns ``reqs``."""
    for r in reqs:
        ae = facts.aes.get(r.ae)
        ev = ae.evidence.get((r.role, r.sop_class)) if ae is not None else None
        key = r.transfer_syntax or ""
        r.status, r.evidence, r.reason = NOT_OBSERVED, None, None
        if ev is None:
            continue
        if key in ev.accepted:
            r.status, r.evidence = MET, ev.accepted[key]
        elif key in ev.not_accepted:
            r.status = REFUSED
            r.evidence, r.reason = ev.not_accepted[key]
    return reqs


def gaps(reqs: list[Requirement]) -> int:
    return sum(r.status != MET for r in reqs)


def template_rows(facts: Facts) -> list[list[str]]:
    """What was observed, as requirement rows (header first): every accepted SOP class and
    transfer syntax per AE and role, keywords where the standard has one."""
    rows = []
    for title in sorted(facts.aes):
        ae = facts.aes[title]
        for (role, sop), ev in sorted(ae.evidence.items()):
            for ts in sorted(t for t in ev.accepted if t):
                rows.append([title, role, uid_keyword(sop) or sop, uid_keyword(ts) or ts,
                             ev.accepted[ts].text()])
    return [["ae", "role", "sop_class", "transfer_syntax", "observed"], *rows]


def write_template(path: str, facts: Facts) -> int:
    """Write the observed facts as a requirements file (CSV, or xlsx by extension)."""
    rows = template_rows(facts)
    if path.lower().endswith(".xlsx"):
        from .render import write_xlsx
        from .views import Table

        write_xlsx(path, [Table("Requirements", rows[0], rows[1:])])
    else:
        from .render import safe_cell

        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            for row in rows:
                w.writerow([safe_cell(c) for c in row])
    return len(rows) - 1
