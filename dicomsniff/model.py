"""The model every output is built on: associations, transactions, findings.

Built incrementally by :mod:`dicomsniff.analysis` and serialised one-to-one by ``to_record``
(the ``--json`` contract, documented in docs/json.md). A data set is a reference (frames, length,
context, transfer syntax), never bytes.
"""

from __future__ import annotations

from typing import Any

from dissectors._plain import Factory, Record
from dissectors.wiretext import OPEN, shorten_marked, unmark

SEVERITIES = ("error", "warning", "info")


def context_result_text(result: int | None) -> str:
    """Presentation context result in words; 'no answer' when no A-ASSOCIATE-AC was seen."""
    if result is None:
        return "no answer"
    from dissectors.ul.reasons import context_result

    return context_result(result)


class Finding(Record):
    """Something that went wrong or deserves attention, pointing at packets and the standard."""

    severity: str
    code: str
    message: str
    frame: int | None = None
    association: int | None = None
    section: str | None = None
    frames: list[int] = Factory(list)
    # What the finding is about, by UID (the study journey's): {"study_instance_uid": ...}
    uids: dict[str, Any] | None = None
    # the message as text output shows it, wire values cut (``shown``): None when it quotes
    # none; else (that text, the length of the whole message it was made from)
    display: tuple[str, int] | None = None
    tls: int | None = None  # id of the TLS connection it is about (no association)

    def __init__(self, severity: str, code: str, message: str, frame: int | None = None,
                 association: int | None = None, section: str | None = None,
                 frames: list[int] | None = None, uids: dict[str, Any] | None = None,
                 tls: int | None = None) -> None:
        """``message`` may quote wire values marked with ``dissectors.wiretext.mark``: it is
        kept with them whole (JSON), and ``shown`` gives it with them cut (text output)."""
        self.severity, self.code, self.frame = severity, code, frame
        self.association, self.section, self.uids = association, section, uids
        self.frames = [] if frames is None else frames
        self.tls = tls
        if OPEN in message:
            self.message = unmark(message)
            self.display = (shorten_marked(message), len(self.message))
        else:
            self.message = message
            self.display = None

    @property
    def shown(self) -> str:
        """The message for text output: each wire value it quotes at most DISPLAY_LIMIT
        characters (what rules added after it was made, as it is)."""
        d = self.display
        return self.message if d is None else d[0] + self.message[d[1]:]

    def to_record(self) -> dict[str, Any]:
        return {"type": "finding", "association": self.association, "severity": self.severity,
                "code": self.code, "message": self.message, "frame": self.frame,
                "section": self.section, "frames": self.frames,
                **({"uids": self.uids} if self.uids else {}),
                **({"tls": self.tls} if self.tls is not None else {})}


class PresentationContext(Record):
    id: int
    abstract_syntax: str | None = None
    transfer_syntaxes: list[str] = Factory(list)
    result: int | None = None
    transfer_syntax: str | None = None


    @property
    def accepted(self) -> bool:
        return self.result == 0


class Side(Record):
    """What one side of an association announced about itself (user information)."""

    max_pdu: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    async_invoked: int | None = None
    async_performed: int | None = None
    roles: list[dict[str, Any]] = Factory(list)
    extended: list[dict[str, Any]] = Factory(list)
    common_extended: list[dict[str, Any]] = Factory(list)
    user_identity: dict[str, Any] | None = None


    def to_record(self) -> dict[str, Any]:
        return {"max_pdu": self.max_pdu,
                "implementation_class_uid": self.implementation_class_uid,
                "implementation_version_name": self.implementation_version_name,
                "async_ops": None if self.async_invoked is None else
                {"invoked": self.async_invoked, "performed": self.async_performed},
                "roles": self.roles, "extended_negotiation": self.extended,
                "common_extended_negotiation": self.common_extended,
                "user_identity": self.user_identity}


class Transaction(Record):
    """One DIMSE request with its responses (pending and final)."""

    id: int
    association: int
    command: str
    command_field: int
    message_id: int | None
    context_id: int
    sent_by: str
    sop_class: str | None = None
    sop_instance: str | None = None
    priority: int | None = None
    move_destination: str | None = None
    request_frame: int | None = None
    request_time: float | None = None
    request_end_time: float | None = None
    dataset_bytes: int = 0
    dataset_frames: tuple[int, int] | None = None
    dataset_partial: bool = False
    transfer_syntax: str | None = None
    status: int | None = None
    status_category: str | None = None
    status_meaning: str | None = None
    pending: int = 0
    response_frames: list[int] = Factory(list)
    response_time: float | None = None
    response_dataset_bytes: int = 0
    suboperations: dict[str, int] | None = None
    error_comment: str | None = None
    cancel_frame: int | None = None
    event_type: int | None = None
    action_type: int | None = None
    request_command: dict[str, Any] | None = None
    response_command: dict[str, Any] | None = None
    sub_associations: list[int] = Factory(list)
    dataset_missing: int = 0
    response_lost: bool = False  # no final response, and the capture lost bytes it could be in
    response_frames_dropped: int = 0  # responses past the cap of response_frames (counted)


    @property
    def latency(self) -> float | None:
        if self.response_time is None or self.request_time is None:
            return None
        return self.response_time - self.request_time

    @property
    def done(self) -> bool:
        return self.status is not None and self.status_category != "Pending"

    def to_record(self) -> dict[str, Any]:
        from .uids import uid_name

        rec: dict[str, Any] = {
            "type": "transaction", "id": self.id, "association": self.association,
            "command": self.command, "command_field": self.command_field,
            "message_id": self.message_id, "context_id": self.context_id,
            "sent_by": self.sent_by, "sop_class": self.sop_class,
            "sop_class_name": uid_name(self.sop_class), "sop_instance": self.sop_instance,
            "priority": self.priority, "status": self.status,
            "status_category": self.status_category, "status_meaning": self.status_meaning,
            "pending": self.pending, "request_frame": self.request_frame,
            "response_frames": self.response_frames, "request_time": self.request_time,
            "request_end_time": self.request_end_time, "response_time": self.response_time,
            "latency": self.latency, "dataset_bytes": self.dataset_bytes,
            "dataset_partial": self.dataset_partial, "dataset_missing": self.dataset_missing,
            "transfer_syntax": self.transfer_syntax,
            "response_dataset_bytes": self.response_dataset_bytes,
        }
        if self.command in ("C-MOVE", "C-GET"):
            rec["suboperations"] = self.suboperations
        if self.command == "C-MOVE":
            rec["move_destination"] = self.move_destination
            rec["sub_associations"] = self.sub_associations
        if self.error_comment is not None:
            rec["error_comment"] = self.error_comment
        if self.cancel_frame is not None:
            rec["cancel_frame"] = self.cancel_frame
        if self.response_lost:
            rec["response_lost"] = True
        if self.event_type is not None:
            rec["event_type"] = self.event_type
        if self.action_type is not None:
            rec["action_type"] = self.action_type
        if self.response_frames_dropped:
            rec["response_frames_dropped"] = self.response_frames_dropped
        return rec


class Association(Record):
    """One TCP connection carrying a DICOM association, from A-ASSOCIATE-RQ to its end."""

    id: int
    client: str
    server: str
    calling_ae: str | None = None
    called_ae: str | None = None
    start: float | None = None
    end: float | None = None
    first_frame: int | None = None
    last_frame: int | None = None
    outcome: str = 'incomplete'
    source: str | None = None
    reason: str | None = None
    reject: dict[str, int] | None = None
    abort: dict[str, Any] | None = None
    protocol_version: int | None = None
    application_context: str | None = None
    requestor: Side = Factory(Side)
    acceptor: Side = Factory(Side)
    contexts: dict[int, PresentationContext] = Factory(dict)
    pdus: dict[str, dict[str, int]] = Factory(lambda: {"requestor": {}, "acceptor": {}})
    bytes: dict[str, int] = Factory(lambda: {"requestor": 0, "acceptor": 0})
    midstream: bool = False
    request_frame: int | None = None
    accept_frame: int | None = None
    release_frames: list[int] = Factory(list)
    transactions: list[Transaction] = Factory(list)
    findings: list[Finding] = Factory(list)
    # reported transactions that left ``transactions`` (past the cap per association, handed to
    # the on_retire hooks first): counted here
    transactions_retired: int = 0
    move_transaction: int | None = None
    tls: dict[str, Any] | None = None  # TLS facts when decrypted from TLS (analysis/tls.py)


    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start

    def to_record(self) -> dict[str, Any]:
        from .uids import uid_name

        return {
            "type": "association", "id": self.id, "client": self.client, "server": self.server,
            "calling_ae": self.calling_ae, "called_ae": self.called_ae,
            "start": self.start, "end": self.end, "duration": self.duration,
            "first_frame": self.first_frame, "last_frame": self.last_frame,
            "outcome": self.outcome, "source": self.source, "reason": self.reason,
            "reject": self.reject, "abort": self.abort, "midstream": self.midstream,
            "protocol_version": self.protocol_version,
            "application_context": self.application_context,
            "max_pdu": {"requestor": self.requestor.max_pdu, "acceptor": self.acceptor.max_pdu},
            "implementation": {
                "requestor": {"class_uid": self.requestor.implementation_class_uid,
                              "version_name": self.requestor.implementation_version_name},
                "acceptor": {"class_uid": self.acceptor.implementation_class_uid,
                             "version_name": self.acceptor.implementation_version_name}},
            "requestor": self.requestor.to_record(), "acceptor": self.acceptor.to_record(),
            "contexts": [{"id": c.id, "abstract_syntax": c.abstract_syntax,
                          "abstract_syntax_name": uid_name(c.abstract_syntax),
                          "transfer_syntaxes": c.transfer_syntaxes, "result": c.result,
                          "result_text": context_result_text(c.result),
                          "transfer_syntax": c.transfer_syntax}
                         for c in self.contexts.values()],
            "pdus": self.pdus, "bytes": self.bytes,
            "transactions": len(self.transactions) + self.transactions_retired,
            "findings": len(self.findings),
            "move_transaction": self.move_transaction,
            **({"tls": self.tls} if self.tls is not None else {}),
        }
