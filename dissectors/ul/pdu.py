"""The upper layer's numbers and their PS3.8 names: PDU types, item types, the two roles.

One table each, for every module that parses, counts or shows them.
"""

from __future__ import annotations

# -- the two sides of an association (PS3.8 7.1: association-requestor, -acceptor) ------------
REQUESTOR = 0  # the side that sent the A-ASSOCIATE-RQ (and, normally, opened the connection)
ACCEPTOR = 1
ROLES = ("requestor", "acceptor")  # by side: ROLES[REQUESTOR] == "requestor"

# -- PDU types (PS3.8 9.3.1, Table 9-11) -----------------------------------------------------
A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07

PDU_NAMES: dict[int, str] = {
    A_ASSOCIATE_RQ: "A-ASSOCIATE-RQ",
    A_ASSOCIATE_AC: "A-ASSOCIATE-AC",
    A_ASSOCIATE_RJ: "A-ASSOCIATE-RJ",
    P_DATA_TF: "P-DATA-TF",
    A_RELEASE_RQ: "A-RELEASE-RQ",
    A_RELEASE_RP: "A-RELEASE-RP",
    A_ABORT: "A-ABORT",
}

# -- items and sub-items of A-ASSOCIATE-RQ/AC (PS3.8 9.3.2-9.3.3, Annex D; PS3.7 Annex D) -----
APPLICATION_CONTEXT = 0x10
PRESENTATION_CONTEXT_RQ = 0x20
PRESENTATION_CONTEXT_AC = 0x21
ABSTRACT_SYNTAX = 0x30
TRANSFER_SYNTAX = 0x40
USER_INFORMATION = 0x50
MAXIMUM_LENGTH = 0x51
IMPLEMENTATION_CLASS_UID = 0x52
ASYNCHRONOUS_OPERATIONS_WINDOW = 0x53
SCP_SCU_ROLE_SELECTION = 0x54
IMPLEMENTATION_VERSION_NAME = 0x55
SOP_CLASS_EXTENDED_NEGOTIATION = 0x56
SOP_CLASS_COMMON_EXTENDED_NEGOTIATION = 0x57
USER_IDENTITY_RQ = 0x58
USER_IDENTITY_AC = 0x59

ITEM_NAMES: dict[int, str] = {
    APPLICATION_CONTEXT: "Application Context Item",
    PRESENTATION_CONTEXT_RQ: "Presentation Context Item (RQ)",
    PRESENTATION_CONTEXT_AC: "Presentation Context Item (AC)",
    ABSTRACT_SYNTAX: "Abstract Syntax Sub-Item",
    TRANSFER_SYNTAX: "Transfer Syntax Sub-Item",
    USER_INFORMATION: "User Information Item",
    MAXIMUM_LENGTH: "Maximum Length Sub-Item",
    IMPLEMENTATION_CLASS_UID: "Implementation Class UID Sub-Item",
    ASYNCHRONOUS_OPERATIONS_WINDOW: "Asynchronous Operations Window Sub-Item",
    SCP_SCU_ROLE_SELECTION: "SCP/SCU Role Selection Sub-Item",
    IMPLEMENTATION_VERSION_NAME: "Implementation Version Name Sub-Item",
    SOP_CLASS_EXTENDED_NEGOTIATION: "SOP Class Extended Negotiation Sub-Item",
    SOP_CLASS_COMMON_EXTENDED_NEGOTIATION: "SOP Class Common Extended Negotiation Sub-Item",
    USER_IDENTITY_RQ: "User Identity Sub-Item (RQ)",
    USER_IDENTITY_AC: "User Identity Sub-Item (AC)",
}


def pdu_name(pdu_type: int) -> str:
    return PDU_NAMES.get(pdu_type, f"PDU type 0x{pdu_type:02X}")


def item_name(item_type: int) -> str:
    return ITEM_NAMES.get(item_type, f"item type 0x{item_type:02X}")
