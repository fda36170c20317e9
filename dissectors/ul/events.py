"""Events of the DICOM upper layer (PS3.8): what one direction of an association said.

Small slotted classes, made once per PDU or PDV, never per TCP segment. Wire strings (AE titles,
UIDs, names) arrive already made safe by :func:`dissectors.ul.items.wire_str`.
"""

from __future__ import annotations

from dissectors._plain import Record


class RoleSelection(Record):
    """SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4)."""

    _fields = ("sop_class", "scu_role", "scp_role")
    __slots__ = _fields
    sop_class: str
    scu_role: int
    scp_role: int

    def __init__(self, sop_class: str, scu_role: int, scp_role: int) -> None:
        self.sop_class = sop_class
        self.scu_role = scu_role
        self.scp_role = scp_role


class ExtendedNegotiation(Record):
    """SOP Class Extended Negotiation sub-item (PS3.7 D.3.3.5): opaque application info."""

    _fields = ("sop_class", "info")
    __slots__ = _fields
    sop_class: str
    info: bytes

    def __init__(self, sop_class: str, info: bytes) -> None:
        self.sop_class = sop_class
        self.info = info


class CommonExtendedNegotiation(Record):
    """SOP Class Common Extended Negotiation sub-item (PS3.7 D.3.3.6)."""

    _fields = ("sop_class", "service_class", "related_classes")
    __slots__ = _fields
    sop_class: str
    service_class: str
    related_classes: list[str]

    def __init__(self, sop_class: str, service_class: str, related_classes: list[str]) -> None:
        self.sop_class = sop_class
        self.service_class = service_class
        self.related_classes = related_classes


class UserInfo(Record):
    """User Information item (PS3.8 9.3.2.3 / PS3.7 annex D), requestor's or acceptor's."""

    _fields = (
        "max_pdu",
        "implementation_class_uid",
        "implementation_version_name",
        "async_invoked",
        "async_performed",
        "roles",
        "extended",
        "common_extended",
        "identity_type",
        "identity_response_requested",
        "identity_username",
        "identity_server_response_length",
        "unknown_items",
    )
    __slots__ = _fields
    max_pdu: int | None
    implementation_class_uid: str | None
    implementation_version_name: str | None
    async_invoked: int | None
    async_performed: int | None
    roles: list[RoleSelection]
    extended: list[ExtendedNegotiation]
    common_extended: list[CommonExtendedNegotiation]
    identity_type: int | None
    identity_response_requested: bool | None
    identity_username: str | None
    identity_server_response_length: int | None
    unknown_items: list[int]

    def __init__(
        self,
        max_pdu: int | None = None,
        implementation_class_uid: str | None = None,
        implementation_version_name: str | None = None,
        async_invoked: int | None = None,
        async_performed: int | None = None,
        roles: list[RoleSelection] | None = None,
        extended: list[ExtendedNegotiation] | None = None,
        common_extended: list[CommonExtendedNegotiation] | None = None,
        identity_type: int | None = None,
        identity_response_requested: bool | None = None,
        identity_username: str | None = None,
        identity_server_response_length: int | None = None,
        unknown_items: list[int] | None = None,
    ) -> None:
        self.max_pdu = max_pdu
        self.implementation_class_uid = implementation_class_uid
        self.implementation_version_name = implementation_version_name
        self.async_invoked = async_invoked
        self.async_performed = async_performed
        self.roles = [] if roles is None else roles
        self.extended = [] if extended is None else extended
        self.common_extended = [] if common_extended is None else common_extended
        self.identity_type = identity_type
        self.identity_response_requested = identity_response_requested
        self.identity_username = identity_username
        self.identity_server_response_length = identity_server_response_length
        self.unknown_items = [] if unknown_items is None else unknown_items


class ProposedContext(Record):
    """Presentation context item of an A-ASSOCIATE-RQ (PS3.8 9.3.2.2)."""

    _fields = ("id", "abstract_syntax", "transfer_syntaxes")
    __slots__ = _fields
    id: int
    abstract_syntax: str
    transfer_syntaxes: list[str]

    def __init__(self, id: int, abstract_syntax: str, transfer_syntaxes: list[str]) -> None:
        self.id = id
        self.abstract_syntax = abstract_syntax
        self.transfer_syntaxes = transfer_syntaxes


class AcceptedContext(Record):
    """Presentation context item of an A-ASSOCIATE-AC (PS3.8 9.3.3.2)."""

    _fields = ("id", "result", "transfer_syntax")
    __slots__ = _fields
    id: int
    result: int
    transfer_syntax: str | None

    def __init__(self, id: int, result: int, transfer_syntax: str | None) -> None:
        self.id = id
        self.result = result
        self.transfer_syntax = transfer_syntax


class AssociateRQ(Record):
    _fields = (
        "frame",
        "ts",
        "length",
        "protocol_version",
        "called_ae",
        "calling_ae",
        "application_context",
        "contexts",
        "user",
    )
    __slots__ = _fields
    frame: int
    ts: float
    length: int
    protocol_version: int
    called_ae: str
    calling_ae: str
    application_context: str | None
    contexts: list[ProposedContext]
    user: UserInfo

    def __init__(
        self,
        frame: int,
        ts: float,
        length: int,
        protocol_version: int,
        called_ae: str,
        calling_ae: str,
        application_context: str | None,
        contexts: list[ProposedContext],
        user: UserInfo,
    ) -> None:
        self.frame = frame
        self.ts = ts
        self.length = length
        self.protocol_version = protocol_version
        self.called_ae = called_ae
        self.calling_ae = calling_ae
        self.application_context = application_context
        self.contexts = contexts
        self.user = user


class AssociateAC(Record):
    _fields = (
        "frame",
        "ts",
        "length",
        "protocol_version",
        "called_ae",
        "calling_ae",
        "application_context",
        "contexts",
        "user",
    )
    __slots__ = _fields
    frame: int
    ts: float
    length: int
    protocol_version: int
    called_ae: str
    calling_ae: str
    application_context: str | None
    contexts: list[AcceptedContext]
    user: UserInfo

    def __init__(
        self,
        frame: int,
        ts: float,
        length: int,
        protocol_version: int,
        called_ae: str,
        calling_ae: str,
        application_context: str | None,
        contexts: list[AcceptedContext],
        user: UserInfo,
    ) -> None:
        self.frame = frame
        self.ts = ts
        self.length = length
        self.protocol_version = protocol_version
        self.called_ae = called_ae
        self.calling_ae = calling_ae
        self.application_context = application_context
        self.contexts = contexts
        self.user = user


class AssociateRJ(Record):
    _fields = ("frame", "ts", "result", "source", "reason")
    __slots__ = _fields
    frame: int
    ts: float
    result: int
    source: int
    reason: int

    def __init__(self, frame: int, ts: float, result: int, source: int, reason: int) -> None:
        self.frame = frame
        self.ts = ts
        self.result = result
        self.source = source
        self.reason = reason


class ReleaseRQ(Record):
    _fields = ("frame", "ts")
    __slots__ = _fields
    frame: int
    ts: float

    def __init__(self, frame: int, ts: float) -> None:
        self.frame = frame
        self.ts = ts


class ReleaseRP(Record):
    _fields = ("frame", "ts")
    __slots__ = _fields
    frame: int
    ts: float

    def __init__(self, frame: int, ts: float) -> None:
        self.frame = frame
        self.ts = ts


class Abort(Record):
    _fields = ("frame", "ts", "source", "reason")
    __slots__ = _fields
    frame: int
    ts: float
    source: int
    reason: int

    def __init__(self, frame: int, ts: float, source: int, reason: int) -> None:
        self.frame = frame
        self.ts = ts
        self.source = source
        self.reason = reason


class PDataTF(Record):
    """Header of a P-DATA-TF PDU (its PDVs follow as their own events)."""

    _fields = ("frame", "ts", "length")
    __slots__ = _fields
    frame: int
    ts: float
    length: int

    def __init__(self, frame: int, ts: float, length: int) -> None:
        self.frame = frame
        self.ts = ts
        self.length = length


class PdvCommand(Record):
    """A complete command fragment (message control header bit 0 set, PS3.8 E.2)."""

    _fields = ("frame", "ts", "context_id", "last", "value")
    __slots__ = _fields
    frame: int
    ts: float
    context_id: int
    last: bool
    value: bytes

    def __init__(self, frame: int, ts: float, context_id: int, last: bool, value: bytes) -> None:
        self.frame = frame
        self.ts = ts
        self.context_id = context_id
        self.last = last
        self.value = value


class PdvData(Record):
    """Header of a data set fragment; its bytes are counted by the parser, not kept."""

    _fields = ("frame", "ts", "context_id", "last", "length")
    __slots__ = _fields
    frame: int
    ts: float
    context_id: int
    last: bool
    length: int

    def __init__(self, frame: int, ts: float, context_id: int, last: bool, length: int) -> None:
        self.frame = frame
        self.ts = ts
        self.context_id = context_id
        self.last = last
        self.length = length


class PdvBytes(Record):
    """Data set fragment bytes, only when the parser was asked to collect them (exports)."""

    _fields = ("frame", "ts", "context_id", "data")
    __slots__ = _fields
    frame: int
    ts: float
    context_id: int
    data: bytes

    def __init__(self, frame: int, ts: float, context_id: int, data: bytes) -> None:
        self.frame = frame
        self.ts = ts
        self.context_id = context_id
        self.data = data


class DataComplete(Record):
    """The last byte of a last data set fragment arrived: the message is complete."""

    _fields = ("frame", "ts", "context_id", "partial")
    __slots__ = _fields
    frame: int
    ts: float
    context_id: int
    partial: bool

    def __init__(self, frame: int, ts: float, context_id: int, partial: bool) -> None:
        self.frame = frame
        self.ts = ts
        self.context_id = context_id
        self.partial = partial


class Malformed(Record):
    """Bytes that break PS3.8: becomes a finding; parsing goes on or resynchronises."""

    _fields = ("frame", "ts", "code", "message", "pdu_type")
    __slots__ = _fields
    frame: int
    ts: float
    code: str
    message: str
    pdu_type: int

    def __init__(self, frame: int, ts: float, code: str, message: str, pdu_type: int = 0) -> None:
        self.frame = frame
        self.ts = ts
        self.code = code
        self.message = message
        self.pdu_type = pdu_type


class Resync(Record):
    """The parser skipped bytes to find a plausible PDU boundary again."""

    _fields = ("frame", "ts", "skipped", "reason")
    __slots__ = _fields
    frame: int
    ts: float
    skipped: int
    reason: str

    def __init__(self, frame: int, ts: float, skipped: int, reason: str) -> None:
        self.frame = frame
        self.ts = ts
        self.skipped = skipped
        self.reason = reason


class StreamGap(Record):
    """Bytes missing from the capture (TCP gap) inside this direction's stream."""

    _fields = ("frame", "ts", "missing", "resynchronised")
    __slots__ = _fields
    frame: int
    ts: float
    missing: int
    resynchronised: bool

    def __init__(self, frame: int, ts: float, missing: int, resynchronised: bool) -> None:
        self.frame = frame
        self.ts = ts
        self.missing = missing
        self.resynchronised = resynchronised


Event = (AssociateRQ | AssociateAC | AssociateRJ | ReleaseRQ | ReleaseRP | Abort | PDataTF
         | PdvCommand | PdvData | PdvBytes | DataComplete | Malformed | Resync | StreamGap)
