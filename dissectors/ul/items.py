"""A-ASSOCIATE-RQ/AC items and user information sub-items (PS3.8 9.3.2, 9.3.3, annex D).

Parses a whole, already framed PDU. Every length is checked against the bytes that are really
there before it is used; an item that overruns its parent becomes a problem and the parse keeps
what it had, so a broken negotiation is reported, never raised.
"""

from __future__ import annotations

import struct

from ..wiretext import from_bytes
from .events import (
    AcceptedContext,
    AssociateAC,
    AssociateRQ,
    CommonExtendedNegotiation,
    ExtendedNegotiation,
    ProposedContext,
    RoleSelection,
    UserInfo,
)
from .pdu import (
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RQ,
    ABSTRACT_SYNTAX,
    APPLICATION_CONTEXT,
    ASYNCHRONOUS_OPERATIONS_WINDOW,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    MAXIMUM_LENGTH,
    PDU_NAMES,
    PRESENTATION_CONTEXT_AC,
    PRESENTATION_CONTEXT_RQ,
    SCP_SCU_ROLE_SELECTION,
    SOP_CLASS_COMMON_EXTENDED_NEGOTIATION,
    SOP_CLASS_EXTENDED_NEGOTIATION,
    TRANSFER_SYNTAX,
    USER_IDENTITY_AC,
    USER_IDENTITY_RQ,
    USER_INFORMATION,
    item_name,
)

_ITEM = struct.Struct("!BxH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")

# Problem = (code, message); codes are stable identifiers for findings.
Problem = tuple[str, str]


def wire_str(raw: bytes | memoryview, *, strip_nul: bool = True) -> str:
    """Bytes from the wire as a safe, printable string.

    Control characters, non-ASCII bytes and backslashes become ``\\xNN`` escapes, so a value
    can never move a terminal cursor, ring a bell or smuggle an escape sequence into output.
    Padding (spaces, and NUL for UIDs) is stripped as PS3.5 allows.
    """
    b = bytes(raw)
    if strip_nul:
        b = b.rstrip(b"\x00")
    return from_bytes(b.strip(b" "))


def _sub_items(buf: bytes, start: int, end: int, where: str, problems: list[Problem]):
    """Yield (type, value_start, value_end) of the items in buf[start:end]."""
    pos = start
    while pos < end:
        if end - pos < 4:
            problems.append(("UL-ITEM-TRUNCATED", f"{where}: {end - pos} stray byte(s) where an "
                                                  "item header was expected"))
            return
        itype, ilen = _ITEM.unpack_from(buf, pos)
        vstart = pos + 4
        vend = vstart + ilen
        if vend > end:
            problems.append(("UL-ITEM-OVERRUN",
                             f"{where}: item 0x{itype:02X} says {ilen} bytes but only "
                             f"{end - vstart} remain"))
            return
        yield itype, vstart, vend
        pos = vend


def _uid(buf: bytes, a: int, b: int) -> str:
    return wire_str(buf[a:b])


def _parse_user_info(buf: bytes, a: int, b: int, problems: list[Problem]) -> UserInfo:
    ui = UserInfo()
    for t, s, e in _sub_items(buf, a, b, "user information", problems):
        n = e - s
        if t == MAXIMUM_LENGTH:
            if n == 4:
                ui.max_pdu = _U32.unpack_from(buf, s)[0]
            else:
                problems.append(("UL-MAXLEN-BAD", f"maximum length sub-item has {n} bytes, not 4"))
        elif t == IMPLEMENTATION_CLASS_UID:
            ui.implementation_class_uid = _uid(buf, s, e)
        elif t == IMPLEMENTATION_VERSION_NAME:
            ui.implementation_version_name = wire_str(buf[s:e])
        elif t == ASYNCHRONOUS_OPERATIONS_WINDOW:
            if n == 4:
                ui.async_invoked = _U16.unpack_from(buf, s)[0]
                ui.async_performed = _U16.unpack_from(buf, s + 2)[0]
            else:
                problems.append(("UL-ASYNC-BAD", f"asynchronous operations window has {n} bytes"))
        elif t == SCP_SCU_ROLE_SELECTION:
            if n < 2:
                problems.append(("UL-ROLE-BAD", "role selection sub-item too short"))
                continue
            ulen = _U16.unpack_from(buf, s)[0]
            if s + 2 + ulen + 2 > e:
                problems.append(("UL-ROLE-BAD", "role selection UID length overruns its sub-item"))
                continue
            ui.roles.append(RoleSelection(_uid(buf, s + 2, s + 2 + ulen),
                                          buf[s + 2 + ulen], buf[s + 3 + ulen]))
        elif t == SOP_CLASS_EXTENDED_NEGOTIATION:
            if n < 2:
                problems.append(("UL-EXTNEG-BAD", "extended negotiation sub-item too short"))
                continue
            ulen = _U16.unpack_from(buf, s)[0]
            if s + 2 + ulen > e:
                problems.append(("UL-EXTNEG-BAD", "extended negotiation UID length overruns"))
                continue
            ui.extended.append(ExtendedNegotiation(_uid(buf, s + 2, s + 2 + ulen),
                                                   bytes(buf[s + 2 + ulen:e])))
        elif t == SOP_CLASS_COMMON_EXTENDED_NEGOTIATION:
            ce = _parse_common_extended(buf, s, e, problems)
            if ce is not None:
                ui.common_extended.append(ce)
        elif t == USER_IDENTITY_RQ:
            if n < 4:
                problems.append(("UL-IDENTITY-BAD", "user identity sub-item too short"))
                continue
            ui.identity_type = buf[s]
            ui.identity_response_requested = bool(buf[s + 1])
            plen = _U16.unpack_from(buf, s + 2)[0]
            if s + 4 + plen > e:
                problems.append(("UL-IDENTITY-BAD", "user identity primary field overruns"))
                continue
            if ui.identity_type in (1, 2):  # user name; never keep the passcode that follows
                ui.identity_username = wire_str(buf[s + 4:s + 4 + plen])
        elif t == USER_IDENTITY_AC:
            if n >= 2:
                ui.identity_server_response_length = _U16.unpack_from(buf, s)[0]
        else:
            ui.unknown_items.append(t)
    return ui


def _parse_common_extended(buf: bytes, s: int, e: int,
                           problems: list[Problem]) -> CommonExtendedNegotiation | None:
    pos = s
    uids: list[str] = []
    for _ in range(2):
        if pos + 2 > e:
            problems.append(("UL-COMMONEXT-BAD", "common extended negotiation truncated"))
            return None
        ln = _U16.unpack_from(buf, pos)[0]
        if pos + 2 + ln > e:
            problems.append(("UL-COMMONEXT-BAD", "common extended negotiation UID overruns"))
            return None
        uids.append(_uid(buf, pos + 2, pos + 2 + ln))
        pos += 2 + ln
    related: list[str] = []
    if pos + 2 <= e:
        rlen = _U16.unpack_from(buf, pos)[0]
        pos += 2
        rend = min(pos + rlen, e)
        while pos + 2 <= rend:
            ln = _U16.unpack_from(buf, pos)[0]
            if pos + 2 + ln > rend:
                problems.append(("UL-COMMONEXT-BAD", "related SOP class UID overruns"))
                break
            related.append(_uid(buf, pos + 2, pos + 2 + ln))
            pos += 2 + ln
    return CommonExtendedNegotiation(uids[0], uids[1], related)


_FIXED = 6 + 68  # PDU header + protocol version .. reserved (PS3.8 table 9-11)


def parse_associate(pdu: bytes, frame: int, ts: float,
                    problems: list[Problem]) -> AssociateRQ | AssociateAC | None:
    """Parse a whole A-ASSOCIATE-RQ (type 1) or -AC (type 2) PDU, header included."""
    ptype = pdu[0] if pdu else 0
    name = PDU_NAMES[ptype] if ptype in (A_ASSOCIATE_RQ, A_ASSOCIATE_AC) else "PDU"
    if len(pdu) < _FIXED:
        problems.append(("UL-ASSOC-SHORT",
                         f"{name} is {len(pdu)} bytes, shorter than its 74-byte fixed part"))
        return None
    version = _U16.unpack_from(pdu, 6)[0]
    called = wire_str(pdu[10:26], strip_nul=False)
    calling = wire_str(pdu[26:42], strip_nul=False)
    if ptype == 1:  # the AC's copies are "not tested" (PS3.8 9.3.3)
        for which, raw in (("called", pdu[10:26]), ("calling", pdu[26:42])):
            if raw == b" " * 16:
                problems.append(("UL-AE-BLANK", f"{name}: the {which} AE title is 16 spaces "
                                 "('no Application Name specified'), which PS3.8 9.3.2 "
                                 "forbids"))
    app_ctx = None
    proposed: list[ProposedContext] = []
    accepted: list[AcceptedContext] = []
    user: UserInfo | None = None
    for t, s, e in _sub_items(pdu, _FIXED, len(pdu), name, problems):
        if t == APPLICATION_CONTEXT:
            app_ctx = _uid(pdu, s, e)
        elif t == PRESENTATION_CONTEXT_RQ and ptype == A_ASSOCIATE_RQ:
            if e - s < 4:
                problems.append(("UL-CONTEXT-BAD", "presentation context item shorter than 4"))
                continue
            ctx_id = pdu[s]
            abstract = ""
            tss: list[str] = []
            for st, ss, se in _sub_items(pdu, s + 4, e, f"presentation context {ctx_id}",
                                         problems):
                if st == ABSTRACT_SYNTAX:
                    abstract = _uid(pdu, ss, se)
                elif st == TRANSFER_SYNTAX:
                    tss.append(_uid(pdu, ss, se))
            proposed.append(ProposedContext(ctx_id, abstract, tss))
        elif t == PRESENTATION_CONTEXT_AC and ptype == A_ASSOCIATE_AC:
            if e - s < 4:
                problems.append(("UL-CONTEXT-BAD", "presentation context item shorter than 4"))
                continue
            ctx_id, result = pdu[s], pdu[s + 2]
            ts_uid = None
            for st, ss, se in _sub_items(pdu, s + 4, e, f"presentation context {ctx_id}",
                                         problems):
                if st == TRANSFER_SYNTAX:
                    ts_uid = _uid(pdu, ss, se)
            accepted.append(AcceptedContext(ctx_id, result, ts_uid))
        elif t == USER_INFORMATION:
            user = _parse_user_info(pdu, s, e, problems)
        else:
            problems.append(("UL-ITEM-UNEXPECTED",
                             f"{name}: unexpected {item_name(t)} (type 0x{t:02X}, "
                             f"{e - s} bytes)"))
    if user is None:
        section = "PS3.8 9.3.2.3" if ptype == 1 else "PS3.8 9.3.3.3"
        cut = bool(problems) and problems[-1][0] == "UL-ITEM-OVERRUN" and problems[-1][1] \
            .startswith(f"{name}: item 0x50 ")
        if cut:
            problems.append(("UL-NO-USERINFO", f"{name}: its user information item is cut "
                             "short, so its maximum length, implementation and other "
                             f"sub-items are unknown ({section})"))
        else:
            problems.append(("UL-NO-USERINFO",
                             f"{name} has no user information item ({section})"))
        user = UserInfo()
    if ptype == A_ASSOCIATE_RQ:
        return AssociateRQ(frame, ts, len(pdu) - 6, version, called, calling, app_ctx, proposed,
                           user)
    return AssociateAC(frame, ts, len(pdu) - 6, version, called, calling, app_ctx, accepted, user)
