"""The encoding of a data set, read from its first element header (PS3.5 7.1).

For data sets whose transfer syntax the capture does not tell (the negotiation was missed) and
to check that a data set is encoded as its presentation context's transfer syntax says. The one
sniffer of the project: rules, exports and ``show`` all ask this.
"""

from __future__ import annotations

Encoding = tuple[bool, bool]  # (explicit VR, little endian)

_VRS = frozenset(v.encode() for v in (
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    "UN UR US UT UV").split())


def sniff_encoding(head: bytes | bytearray | memoryview) -> Encoding | None:
    """(explicit VR, little endian) from the first 8 bytes of a data set, or None if unclear.

    Byte order: data set groups are small (0008, 0010, 0040...), so one of the two group bytes
    is zero. VR: explicit encodings carry one of PS3.5's two-letter VRs after the tag, where an
    implicit one has the low bytes of a 32-bit length.
    """
    if len(head) < 8:
        return None
    if head[1] == 0 and head[0] != 0:
        little = True
    elif head[0] == 0 and head[1] != 0:
        little = False
    else:
        return None
    return (bytes(head[4:6]) in _VRS, little)


def encoding_name(enc: Encoding) -> str:
    return f"{'explicit' if enc[0] else 'implicit'} VR {'little' if enc[1] else 'big'} endian"
