"""What a TLS record header looks like (RFC 8446 5.1, RFC 5246 6.2): enough to recognise TLS.

Kept apart from :mod:`.connection` so that detection, asked of every new connection, loads
neither the record layer nor the handshake parser nor the crypto glue (``hmac``, ``hashlib``):
a capture without TLS never imports them.
"""

from __future__ import annotations

import struct

# Record content types (RFC 8446 5.1) and the handshake type a client opens with (RFC 8446 4):
# the record layer's numbers, defined here so that detection loads no registry; tables.py,
# which names them, takes them from here.
CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA, HEARTBEAT = 20, 21, 22, 23, 24
CLIENT_HELLO = 1

MAX_RECORD = (1 << 14) + 2048  # RFC 5246 6.2.3: plaintext 2^14 plus expansion
RECORD_HEADER = struct.Struct("!BHH")  # content type, version, length
_HS = struct.Struct("!I")  # handshake type (1 byte) and length (3 bytes)


def plausible_tls(head: bytes | bytearray | memoryview) -> bool | None:
    """Do these first bytes of a client's stream look like a TLS ClientHello record?

    None: too few bytes to tell. Checks the record header (handshake, version 3.x, a length
    that fits a record) and the handshake header (client_hello whose length fits the record).
    """
    if len(head) < 9:
        return None if len(head) < 1 or head[0] == HANDSHAKE else False
    ctype, ver, length = RECORD_HEADER.unpack_from(head, 0)
    if ctype != HANDSHAKE or ver >> 8 != 3 or not 4 <= length <= MAX_RECORD:
        return False
    v = _HS.unpack_from(head, 5)[0]
    return v >> 24 == CLIENT_HELLO and 38 <= v & 0xFFFFFF


def plausible_tls_record(head: bytes | bytearray | memoryview) -> bool:
    """Do these bytes start with a TLS record header (a connection picked up mid-stream)?"""
    if len(head) < 5:
        return False
    ctype, ver, length = RECORD_HEADER.unpack_from(head, 0)
    return 20 <= ctype <= 23 and 0x0301 <= ver <= 0x0304 and 0 < length <= MAX_RECORD
