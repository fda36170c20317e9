"""DICOM Part 10 framing (PS3.10 7.1): preamble, "DICM" and the File Meta Information.

Written by hand with struct rather than pydicom: it is a dozen bytes per element, it must be
ready before the first data set byte is streamed behind it, and the export's hot path stays
free of pydicom. The data set itself is never touched: it is appended exactly as it was sent.
"""

from __future__ import annotations

import struct
import uuid

from dissectors.dimse.encoding import sniff_encoding

from .. import __version__
from ..uids import EXPLICIT_VR_BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN

# A UID of our own under the UUID-derived root (PS3.5 B.2), fixed so files are reproducible.
IMPLEMENTATION_CLASS_UID = "2.25." + str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                    "dicomsniff/implementation").int)
IMPLEMENTATION_VERSION_NAME = ("DICOMSNIFF_" + __version__.replace(".", ""))[:16]

IMPLICIT_LE = IMPLICIT_VR_LITTLE_ENDIAN
EXPLICIT_LE = EXPLICIT_VR_LITTLE_ENDIAN
EXPLICIT_BE = EXPLICIT_VR_BIG_ENDIAN

MAX_UID = 1024  # bytes of a UID written to the meta (PS3.5 allows 64; the wire may not care)
_SHORT = struct.Struct("<HH2sH")  # tag, VR, 16-bit length
_LONG = struct.Struct("<HH2s2xI")  # tag, VR (OB/UN/SQ...), 32-bit length


def _elem(element: int, vr: str, value: bytes) -> bytes:
    pad = b"\x00" if vr in ("UI", "OB") else b" "
    if len(value) % 2:
        value += pad
    if vr == "OB":
        return _LONG.pack(0x0002, element, b"OB", len(value)) + value
    if len(value) > 0xFFFF:
        raise ValueError(f"(0002,{element:04X}) value too long for {vr}")
    return _SHORT.pack(0x0002, element, vr.encode(), len(value)) + value


def _ascii(text: str, limit: int) -> bytes:
    """A wire string made safe for a meta element: ASCII (escapes stay as text), bounded.

    UIDs are kept whole up to a sanity bound even past PS3.5's 64 characters: the meta must
    name the instance the command named, and a cut UID would name another one.
    """
    return text.encode("ascii", "backslashreplace")[:limit]


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str,
              source_ae: str | None) -> bytes:
    """Preamble, prefix and group 0002 for one object, as PS3.10 7.1 lays them out."""
    body = (_elem(0x0001, "OB", b"\x00\x01")
            + _elem(0x0002, "UI", _ascii(sop_class, MAX_UID))
            + _elem(0x0003, "UI", _ascii(sop_instance, MAX_UID))
            + _elem(0x0010, "UI", _ascii(transfer_syntax, MAX_UID))
            + _elem(0x0012, "UI", IMPLEMENTATION_CLASS_UID.encode())
            + _elem(0x0013, "SH", IMPLEMENTATION_VERSION_NAME.encode()))
    if source_ae:
        body += _elem(0x0016, "AE", _ascii(source_ae, 16))
    group_length = _SHORT.pack(0x0002, 0x0000, b"UL", 4) + struct.pack("<I", len(body))
    return bytes(128) + b"DICM" + group_length + body


def guess_transfer_syntax(head: bytes) -> str | None:
    """The uncompressed transfer syntax the first data set element implies, or None.

    Only for associations whose negotiation the capture missed (the one encoding sniffer,
    :func:`dissectors.dimse.encoding.sniff_encoding`). Deflated and encapsulated syntaxes
    cannot be told apart this way; the caller says it guessed.
    """
    enc = sniff_encoding(head)
    if enc is None:
        return None
    explicit, little = enc
    if not little:
        return EXPLICIT_BE
    return EXPLICIT_LE if explicit else IMPLICIT_LE
