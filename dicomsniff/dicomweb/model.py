"""DICOMweb in the project's model: an HTTP connection (the DICOMweb counterpart of an
association) and a web transaction (one request with its response).

``to_record`` gives the ``--json`` records: ``{"type": "http_connection", ...}`` and
``{"type": "transaction", "protocol": "dicomweb", ...}``, whose shared fields (``id``,
``command``, ``status``, ``status_category``, ``status_meaning``, ``request_frame``,
``response_frames``, ``request_time``, ``response_time``, ``latency``, ``sop_class``,
``sop_instance``) mean what they mean for a DIMSE transaction, so one response-time table, one
filter and one diagram serve both protocols.
"""

from __future__ import annotations

from typing import Any

from dissectors._plain import Record


class HttpConnectionInfo(Record):
    """One TCP connection that carried HTTP: who, with what software, how many requests."""

    _fields = ("id", "client", "server", "user_agent", "server_software", "first_frame",
               "last_frame", "start", "end", "requests", "responses", "bytes", "outcome",
               "transactions", "findings", "tunnelled", "http2")
    __slots__ = _fields
    id: int
    client: str
    server: str
    user_agent: str | None
    server_software: str | None
    first_frame: int | None
    last_frame: int | None
    start: float | None
    end: float | None
    requests: int
    responses: int
    bytes: dict[str, int]
    outcome: str | None
    transactions: int
    findings: int
    tunnelled: bool
    http2: str | None  # "prior knowledge" or "h2c upgrade": HTTP/2, not decoded

    def __init__(self, id: int, client: str, server: str) -> None:
        self.id = id
        self.client = client
        self.server = server
        self.user_agent = None
        self.server_software = None
        self.first_frame = None
        self.last_frame = None
        self.start = None
        self.end = None
        self.requests = 0
        self.responses = 0
        self.bytes = {"client": 0, "server": 0}
        self.outcome = None
        self.transactions = 0
        self.findings = 0
        self.tunnelled = False
        self.http2 = None

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start

    def to_record(self) -> dict[str, Any]:
        return {"type": "http_connection", "protocol": "dicomweb", "id": self.id,
                "client": self.client, "server": self.server, "user_agent": self.user_agent,
                "server_software": self.server_software, "start": self.start,
                "end": self.end, "duration": self.duration, "first_frame": self.first_frame,
                "last_frame": self.last_frame, "requests": self.requests,
                "responses": self.responses, "bytes": self.bytes, "outcome": self.outcome,
                "tunnelled": self.tunnelled, "http2": self.http2, "transactions": self.transactions,
                "findings": self.findings}


class WebTransaction(Record):
    """One DICOMweb request and its response: what was asked, what came back."""

    _fields = (
        "id", "connection", "command", "action", "method", "target", "http_version",
        "level", "study", "series", "instance", "frames", "workitem", "query",
        "accept", "request_content_type", "response_content_type", "transfer_syntax",
        "status", "reason_phrase", "status_category", "status_meaning", "informational",
        "request_frame", "request_end_frame", "response_frames", "request_time",
        "request_end_time", "response_time", "response_end_time", "request_bytes",
        "response_bytes", "request_complete", "response_complete", "bytes_missing",
        "results", "parts", "instances", "failed", "warnings", "error_text", "user_agent",
    )
    __slots__ = _fields
    id: int
    connection: int
    command: str  # QIDO-RS, WADO-RS, WADO-URI, STOW-RS, UPS-RS, or HTTP (not DICOMweb)
    action: str
    method: str
    target: str
    http_version: str
    level: str | None
    study: str | None
    series: str | None
    instance: str | None
    frames: list[int]
    workitem: str | None
    query: list[str]  # the query parameters in words (QIDO-RS) or as sent
    accept: list[str]
    request_content_type: str | None
    response_content_type: str | None
    transfer_syntax: str | None  # of the instances moved (STOW-RS request, WADO-RS response)
    status: int | None
    reason_phrase: str | None
    status_category: str | None
    status_meaning: str
    informational: list[int]
    request_frame: int
    request_end_frame: int | None
    response_frames: list[int]
    request_time: float
    request_end_time: float | None
    response_time: float | None
    response_end_time: float | None
    request_bytes: int
    response_bytes: int
    request_complete: bool
    response_complete: bool
    bytes_missing: int
    results: int | None  # QIDO-RS matches; WADO-RS metadata data sets
    parts: list[dict[str, Any]]  # multipart parts, of the request (STOW) or the response
    instances: list[dict[str, Any]]  # SOP instances involved, with their outcome
    failed: list[dict[str, Any]]  # STOW-RS Failed SOP Sequence items
    warnings: list[str]  # Warning header fields, STOW-RS warning reasons
    error_text: str | None  # the origin server's own words for an error
    user_agent: str | None

    def __init__(self, id: int, connection: int, command: str, action: str, method: str,
                 target: str, http_version: str, request_frame: int,
                 request_time: float) -> None:
        self.id = id
        self.connection = connection
        self.command = command
        self.action = action
        self.method = method
        self.target = target
        self.http_version = http_version
        self.level = self.study = self.series = self.instance = self.workitem = None
        self.frames = []
        self.query = []
        self.accept = []
        self.request_content_type = self.response_content_type = None
        self.transfer_syntax = None
        self.status = None
        self.reason_phrase = None
        self.status_category = None
        self.status_meaning = "no response"
        self.informational = []
        self.request_frame = request_frame
        self.request_end_frame = None
        self.response_frames = []
        self.request_time = request_time
        self.request_end_time = None
        self.response_time = None
        self.response_end_time = None
        self.request_bytes = 0
        self.response_bytes = 0
        self.request_complete = False
        self.response_complete = False
        self.bytes_missing = 0
        self.results = None
        self.parts = []
        self.instances = []
        self.failed = []
        self.warnings = []
        self.error_text = None
        self.user_agent = None

    @property
    def latency(self) -> float | None:
        """Request head seen to response head seen (as DIMSE: request to final response)."""
        if self.response_time is None:
            return None
        return self.response_time - self.request_time

    @property
    def short_target(self) -> str:
        """The target with its UIDs as {study}, {series}, {sop}, {workitem} and, when the
        query is told in words, without its query string: a path of three UIDs fits no line."""
        path = self.target.split("?", 1)[0] if self.query else self.target
        for uid, what in ((self.study, "study"), (self.series, "series"),
                          (self.instance, "sop"), (self.workitem, "workitem")):
            if uid:
                path = path.replace(uid, "{" + what + "}")
        return path

    @property
    def sop_instance(self) -> str | None:
        return self.instance or (self.instances[0]["sop_instance"] if len(self.instances) == 1
                                 else None)

    @property
    def sop_class(self) -> str | None:
        return self.instances[0].get("sop_class") if len(self.instances) == 1 else None

    def to_record(self) -> dict[str, Any]:
        r: dict[str, Any] = {"type": "transaction", "protocol": "dicomweb"}
        for name in self._fields:
            r[name] = getattr(self, name)
        r["association"] = None
        r["latency"] = self.latency
        r["sop_class"] = self.sop_class
        r["sop_instance"] = self.sop_instance
        r["dataset_bytes"] = self.request_bytes
        r["response_dataset_bytes"] = self.response_bytes
        return r
