"""Events of the DICOM upper layer (PS3.8): what one direction of an association said.

Small slotted classes, made once per PDU or PDV, never per TCP segment. Wire strings (AE titles,
UIDs, names) arrive already made safe by :func:`dissectors.ul.items.wire_str`.
"""

from __future__ import annotations

from dissectors._plain import Factory, Record


class RoleSelection(Record):
    """SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4)."""

    sop_class: str
    scu_role: int
    scp_role: int


class ExtendedNegotiation(Record):
    """SOP Class Extended Negotiation sub-item (PS3.7 D.3.3.5): opaque application info."""

    sop_class: str
    info: bytes


class CommonExtendedNegotiation(Record):
    """SOP Class Common Extended Negotiation sub-item (PS3.7 D.3.3.6)."""

    sop_class: str
    service_class: str
    related_classes: list[str]


class UserInfo(Record):
    """User Information item (PS3.8 9.3.2.3 / PS3.7 annex D), requestor's or acceptor's."""

    max_pdu: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    async_invoked: int | None = None
    async_performed: int | None = None
    roles: list[RoleSelection] = Factory(list)
    extended: list[ExtendedNegotiation] = Factory(list)
    common_extended: list[CommonExtendedNegotiation] = Factory(list)
    identity_type: int | None = None
    identity_response_requested: bool | None = None
    identity_username: str | None = None
    identity_server_response_length: int | None = None
    unknown_items: list[int] = Factory(list)


class ProposedContext(Record):
    """Presentation context item of an A-ASSOCIATE-RQ (PS3.8 9.3.2.2)."""

    id: int
    abstract_syntax: str
    transfer_syntaxes: list[str]


class AcceptedContext(Record):
    """Presentation context item of an A-ASSOCIATE-AC (PS3.8 9.3.3.2)."""

    id: int
    result: int
    transfer_syntax: str | None


class AssociateRQ(Record):
    frame: int
    ts: float
    length: int
    protocol_version: int
    called_ae: str
    calling_ae: str
    application_context: str | None
    contexts: list[ProposedContext]
    user: UserInfo


class AssociateAC(Record):
    frame: int
    ts: float
    length: int
    protocol_version: int
    called_ae: str
    calling_ae: str
    application_context: str | None
    contexts: list[AcceptedContext]
    user: UserInfo


class AssociateRJ(Record):
    frame: int
    ts: float
    result: int
    source: int
    reason: int


class ReleaseRQ(Record):
    frame: int
    ts: float


class ReleaseRP(Record):
    frame: int
    ts: float


class Abort(Record):
    frame: int
    ts: float
    source: int
    reason: int


class PDataTF(Record):
    """Header of a P-DATA-TF PDU (its PDVs follow as their own events)."""

    frame: int
    ts: float
    length: int


class PdvCommand(Record):
    """A complete command fragment (message control header bit 0 set, PS3.8 E.2)."""

    frame: int
    ts: float
    context_id: int
    last: bool
    value: bytes


class PdvData(Record):
    """Header of a data set fragment; its bytes are counted by the parser, not kept."""

    frame: int
    ts: float
    context_id: int
    last: bool
    length: int


class PdvDataRun(Record):
    """Headers of consecutive data set fragments of one presentation context that a walker
    counted in one go (``ULStream.crossed``): what their ``PdvData`` events would say, summed.
    ``frame``, ``ts``, ``last``: the last fragment's; ``first_frame``: the first's;
    ``fragments`` and ``length``: how many and their value lengths together; ``headers``:
    each as (frame - ``base``, ts, PDU length, context ID, message control header, value
    length), for a reader that needs them one by one."""

    frame: int
    ts: float
    context_id: int
    last: bool
    length: int
    fragments: int
    first_frame: int
    headers: list
    base: int

    def each(self) -> list[PdvData]:
        """The ``PdvData`` events this run stands for, in order."""
        base = self.base
        return [PdvData(base + i, ts, ctx, mch & 2 == 2, vlen)
                for i, ts, _plen, ctx, mch, vlen in self.headers]


class PdvBytes(Record):
    """Data set fragment bytes, only when the parser was asked to collect them (exports)."""

    frame: int
    ts: float
    context_id: int
    data: bytes


class DataComplete(Record):
    """The last byte of a last data set fragment arrived: the message is complete."""

    frame: int
    ts: float
    context_id: int
    partial: bool


class Malformed(Record):
    """Bytes that break PS3.8: becomes a finding; parsing goes on or resynchronises."""

    frame: int
    ts: float
    code: str
    message: str
    pdu_type: int = 0


class Resync(Record):
    """The parser skipped bytes to find a plausible PDU boundary again."""

    frame: int
    ts: float
    skipped: int
    reason: str


class StreamGap(Record):
    """Bytes missing from the capture (TCP gap) inside this direction's stream."""

    frame: int
    ts: float
    missing: int
    resynchronised: bool


Event = (AssociateRQ | AssociateAC | AssociateRJ | ReleaseRQ | ReleaseRP | Abort | PDataTF
         | PdvCommand | PdvData | PdvDataRun | PdvBytes | DataComplete | Malformed | Resync
         | StreamGap)
