"""Events of the DICOM upper layer (PS3.8): what one direction of an association said.

Small slotted classes, made once per PDU or PDV, never per TCP segment. Wire strings (AE titles,
UIDs, names) arrive already made safe by :func:`dissectors.ul.items.wire_str`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class RoleSelection:
    """SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4)."""

    sop_class: str
    scu_role: int
    scp_role: int


@dataclass(slots=True)
class ExtendedNegotiation:
    """SOP Class Extended Negotiation sub-item (PS3.7 D.3.3.5): opaque application info."""

    sop_class: str
    info: bytes


@dataclass(slots=True)
class CommonExtendedNegotiation:
    """SOP Class Common Extended Negotiation sub-item (PS3.7 D.3.3.6)."""

    sop_class: str
    service_class: str
    related_classes: list[str]


@dataclass(slots=True)
class UserInfo:
    """User Information item (PS3.8 9.3.2.3 / PS3.7 annex D), requestor's or acceptor's."""

    max_pdu: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    async_invoked: int | None = None
    async_performed: int | None = None
    roles: list[RoleSelection] = field(default_factory=list)
    extended: list[ExtendedNegotiation] = field(default_factory=list)
    common_extended: list[CommonExtendedNegotiation] = field(default_factory=list)
    # User identity: type and whether a positive response was requested. The primary field
    # (user name) is kept only for username types; the passcode/secondary field never is.
    identity_type: int | None = None
    identity_response_requested: bool | None = None
    identity_username: str | None = None
    identity_server_response_length: int | None = None
    unknown_items: list[int] = field(default_factory=list)


@dataclass(slots=True)
class ProposedContext:
    """Presentation context item of an A-ASSOCIATE-RQ (PS3.8 9.3.2.2)."""

    id: int
    abstract_syntax: str
    transfer_syntaxes: list[str]


@dataclass(slots=True)
class AcceptedContext:
    """Presentation context item of an A-ASSOCIATE-AC (PS3.8 9.3.3.2)."""

    id: int
    result: int
    transfer_syntax: str | None


@dataclass(slots=True)
class AssociateRQ:
    frame: int
    ts: float
    length: int
    protocol_version: int
    called_ae: str
    calling_ae: str
    application_context: str | None
    contexts: list[ProposedContext]
    user: UserInfo


@dataclass(slots=True)
class AssociateAC:
    frame: int
    ts: float
    length: int
    protocol_version: int
    called_ae: str
    calling_ae: str
    application_context: str | None
    contexts: list[AcceptedContext]
    user: UserInfo


@dataclass(slots=True)
class AssociateRJ:
    frame: int
    ts: float
    result: int
    source: int
    reason: int


@dataclass(slots=True)
class ReleaseRQ:
    frame: int
    ts: float


@dataclass(slots=True)
class ReleaseRP:
    frame: int
    ts: float


@dataclass(slots=True)
class Abort:
    frame: int
    ts: float
    source: int
    reason: int


@dataclass(slots=True)
class PDataTF:
    """Header of a P-DATA-TF PDU (its PDVs follow as their own events)."""

    frame: int
    ts: float
    length: int


@dataclass(slots=True)
class PdvCommand:
    """A complete command fragment (message control header bit 0 set, PS3.8 E.2)."""

    frame: int
    ts: float
    context_id: int
    last: bool
    value: bytes


@dataclass(slots=True)
class PdvData:
    """Header of a data set fragment; its bytes are counted by the parser, not kept."""

    frame: int
    ts: float
    context_id: int
    last: bool
    length: int


@dataclass(slots=True)
class PdvBytes:
    """Data set fragment bytes, only when the parser was asked to collect them (exports)."""

    frame: int
    ts: float
    context_id: int
    data: bytes


@dataclass(slots=True)
class DataComplete:
    """The last byte of a last data set fragment arrived: the message is complete."""

    frame: int
    ts: float
    context_id: int
    partial: bool  # bytes of this data set were missing from the capture


@dataclass(slots=True)
class Malformed:
    """Bytes that break PS3.8: becomes a finding; parsing goes on or resynchronises."""

    frame: int
    ts: float
    code: str
    message: str
    pdu_type: int = 0  # for UL-STREAM-TRUNCATED: the PDU left incomplete


@dataclass(slots=True)
class Resync:
    """The parser skipped bytes to find a plausible PDU boundary again."""

    frame: int
    ts: float
    skipped: int
    reason: str


@dataclass(slots=True)
class StreamGap:
    """Bytes missing from the capture (TCP gap) inside this direction's stream."""

    frame: int
    ts: float
    missing: int
    resynchronised: bool  # False: the gap fell inside a data set and framing was kept


Event = (AssociateRQ | AssociateAC | AssociateRJ | ReleaseRQ | ReleaseRP | Abort | PDataTF
         | PdvCommand | PdvData | PdvBytes | DataComplete | Malformed | Resync | StreamGap)
