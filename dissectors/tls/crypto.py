"""Record protection: keys from the key log's secrets, and one record decrypted at a time.

The ciphers and MACs are ``cryptography``'s (AESGCM, AESCCM, ChaCha20Poly1305, AES/3DES-CBC,
HMAC, HKDFExpand). Two pieces are written here because the library has no API for them:

- the TLS 1.0-1.2 PRF (RFC 2246 5, RFC 5246 5): ``cryptography`` exposes no TLS PRF; it is
  P_hash, a few HMAC calls per session, built on the library's HMAC;
- the TLS 1.3 ``HKDF-Expand-Label`` (RFC 8446 7.1): HKDFExpand is the library's; only the
  ``HkdfLabel`` structure it takes as ``info`` is built here.

Record formats: RFC 5246 6.2.3 (CBC, MAC-then-encrypt; RFC 7366 encrypt-then-MAC), RFC 5288
(AES-GCM: 4-byte salt + 8-byte explicit nonce), RFC 6655 (AES-CCM), RFC 7905 (ChaCha20-Poly1305:
IV xor sequence number), RFC 8446 5.2-5.3 (TLS 1.3: IV xor sequence number, header as AAD,
inner content type after the plaintext and zero padding). TLS 1.0 CBC chains the IV from the
previous record's last ciphertext block (RFC 2246 6.2.3.2).
"""

from __future__ import annotations

import hmac as _stdlib_hmac  # only compare_digest: constant-time comparison of MACs
import struct
from typing import Any

from .tables import TLS10, TLS13, Suite

# cryptography's primitives are bound here on first use (_load): importing them costs some
# 35 ms and 10 MB, which every run paid at start-up, TLS in its capture or not.
InvalidTag: Any = None
hashes: Any = None
hmac: Any = None
Cipher: Any = None
algorithms: Any = None
modes: Any = None
AESCCM: Any = None
AESGCM: Any = None
ChaCha20Poly1305: Any = None
HKDFExpand: Any = None


def _load() -> None:
    global InvalidTag, hashes, hmac, Cipher, algorithms, modes, AESCCM, AESGCM  # noqa: PLW0603
    global ChaCha20Poly1305, HKDFExpand  # noqa: PLW0603
    if hashes is not None:
        return
    from cryptography.exceptions import InvalidTag as _invalid_tag
    from cryptography.hazmat.primitives import hashes as _hashes
    from cryptography.hazmat.primitives import hmac as _hmac
    from cryptography.hazmat.primitives.ciphers import Cipher as _cipher
    from cryptography.hazmat.primitives.ciphers import algorithms as _algorithms
    from cryptography.hazmat.primitives.ciphers import modes as _modes
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM as _aesccm
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM as _aesgcm
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305 as _chacha
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand as _hkdf_expand

    InvalidTag, hmac, Cipher, algorithms, modes = (_invalid_tag, _hmac, _cipher, _algorithms,
                                                   _modes)
    AESCCM, AESGCM, ChaCha20Poly1305, HKDFExpand = _aesccm, _aesgcm, _chacha, _hkdf_expand
    hashes = _hashes


def _hash(name: str) -> Any:
    _load()
    return getattr(hashes, name)()


_HASHES = frozenset({"SHA1", "SHA256", "SHA384", "MD5"})
_HASH_LEN = {"SHA1": 20, "SHA256": 32, "SHA384": 48, "MD5": 16}
# cipher -> (key length, fixed IV length in the key block for TLS 1.2, block size or 0)
_CIPHERS = {
    "AES-128-GCM": (16, 4, 0), "AES-256-GCM": (32, 4, 0),
    "AES-128-CCM": (16, 4, 0), "AES-256-CCM": (32, 4, 0),
    "AES-128-CCM8": (16, 4, 0), "AES-256-CCM8": (32, 4, 0),
    "CHACHA20-POLY1305": (32, 12, 0),
    "AES-128-CBC": (16, 16, 16), "AES-256-CBC": (32, 16, 16), "3DES-CBC": (24, 8, 8),
    "NULL": (0, 0, 0),
}
_SEQ = struct.Struct("!Q")
_AAD12 = struct.Struct("!QBHH")


class DecryptError(Exception):
    """A record that does not decrypt or authenticate with the keys we have."""


def supported(suite: Suite | None) -> bool:
    return suite is not None and suite.cipher in _CIPHERS and (
        suite.mac is None or suite.mac in _HASHES)


# -- key derivation ----------------------------------------------------------------------------

def _p_hash(name: str, secret: bytes, seed: bytes, n: int) -> bytes:
    _load()

    def mac(data: bytes) -> bytes:
        h = hmac.HMAC(secret, _hash(name))
        h.update(data)
        return h.finalize()

    out = bytearray()
    a = seed
    while len(out) < n:
        a = mac(a)
        out += mac(a + seed)
    return bytes(out[:n])


def prf(version: int, prf_hash: str, secret: bytes, label: bytes, seed: bytes, n: int) -> bytes:
    """The TLS PRF: RFC 5246 5 for TLS 1.2 (P_<suite hash>), RFC 2246 5 for 1.0/1.1."""
    if version > 0x0302:
        return _p_hash(prf_hash, secret, label + seed, n)
    half = (len(secret) + 1) // 2
    md5 = _p_hash("MD5", secret[:half], label + seed, n)
    sha = _p_hash("SHA1", secret[len(secret) - half:], label + seed, n)
    return bytes(x ^ y for x, y in zip(md5, sha, strict=True))


def hkdf_expand_label(hash_name: str, secret: bytes, label: bytes, context: bytes,
                      length: int) -> bytes:
    """RFC 8446 7.1: HKDFExpand(secret, HkdfLabel, length); HkdfLabel is built here."""
    full = b"tls13 " + label
    info = struct.pack("!HB", length, len(full)) + full + bytes([len(context)]) + context
    digest = _hash(hash_name)
    return HKDFExpand(digest, length, info).derive(secret)


def next_traffic_secret(hash_name: str, secret: bytes) -> bytes:
    """RFC 8446 7.2: application_traffic_secret_N+1 after a KeyUpdate."""
    return hkdf_expand_label(hash_name, secret, b"traffic upd", b"", _HASH_LEN[hash_name])


# -- one direction's record protection ---------------------------------------------------------

class Protection:
    """Decrypts one direction's records in order; ``seq`` is the record sequence number."""

    __slots__ = ("suite", "version", "seq", "_aead", "_iv", "_key", "_mac_key", "_tag",
                 "_etm", "_block")

    def __init__(self, suite: Suite, version: int, key: bytes, iv: bytes,
                 mac_key: bytes = b"", etm: bool = False) -> None:
        _load()
        self.suite, self.version, self.seq = suite, version, 0
        self._key, self._iv, self._mac_key, self._etm = key, iv, mac_key, etm
        c = suite.cipher
        self._tag = 8 if c.endswith("CCM8") else 16
        self._block = _CIPHERS[c][2]
        if c.endswith("GCM"):
            self._aead = AESGCM(key)
        elif c.startswith("CHACHA20"):
            self._aead = ChaCha20Poly1305(key)
        elif "CCM" in c:
            self._aead = AESCCM(key, tag_length=self._tag)
        else:
            self._aead = None

    @classmethod
    def tls13(cls, suite: Suite, secret: bytes) -> Protection:
        klen = _CIPHERS[suite.cipher][0]
        return cls(suite, TLS13, hkdf_expand_label(suite.prf, secret, b"key", b"", klen),
                   hkdf_expand_label(suite.prf, secret, b"iv", b"", 12))

    def decrypt(self, ctype: int, version: int, payload: bytes) -> tuple[int, bytes]:
        """(content type, plaintext) of one record; DecryptError if it does not authenticate."""
        seq = self.seq
        self.seq += 1
        if self.version == TLS13:
            return self._tls13(payload, seq)
        if self._aead is not None:
            return ctype, self._aead12(ctype, version, payload, seq)
        return ctype, self._mac_cipher(ctype, version, payload, seq)

    def _nonce_xor(self, seq: int) -> bytes:
        iv = self._iv
        return iv[:4] + bytes(a ^ b for a, b in zip(iv[4:], _SEQ.pack(seq), strict=True))

    def _tls13(self, payload: bytes, seq: int) -> tuple[int, bytes]:
        if len(payload) < self._tag + 1:
            raise DecryptError(f"record of {len(payload)} bytes is shorter than its tag")
        aad = struct.pack("!BHH", 23, 0x0303, len(payload))
        try:
            inner = self._aead.decrypt(self._nonce_xor(seq), payload, aad)  # type: ignore[union-attr]
        except InvalidTag:
            raise DecryptError("authentication tag does not match (wrong key or corrupt "
                               "record)") from None
        end = len(inner)
        while end and inner[end - 1] == 0:  # RFC 8446 5.4: strip zero padding
            end -= 1
        if not end:
            raise DecryptError("TLS 1.3 inner plaintext has no content type")
        return inner[end - 1], inner[:end - 1]

    def _aead12(self, ctype: int, version: int, payload: bytes, seq: int) -> bytes:
        if self.suite.cipher.startswith("CHACHA20"):
            nonce, body = self._nonce_xor(seq), payload
        else:
            if len(payload) < 8:
                raise DecryptError("record shorter than its explicit nonce")
            nonce, body = self._iv[:4] + payload[:8], payload[8:]
        n = len(body) - self._tag
        if n < 0:
            raise DecryptError(f"record of {len(payload)} bytes is shorter than its tag")
        try:
            return self._aead.decrypt(nonce, body, _AAD12.pack(seq, ctype, version, n))  # type: ignore[union-attr]
        except InvalidTag:
            raise DecryptError("authentication tag does not match (wrong key or corrupt "
                               "record)") from None

    def _mac(self, seq: int, ctype: int, version: int, data: bytes) -> bytes:
        h = hmac.HMAC(self._mac_key, _hash(self.suite.mac))  # type: ignore[arg-type]
        h.update(_AAD12.pack(seq, ctype, version, len(data)))
        h.update(data)
        return h.finalize()

    def _mac_cipher(self, ctype: int, version: int, payload: bytes, seq: int) -> bytes:
        mlen = _HASH_LEN[self.suite.mac]  # type: ignore[index]
        bs = self._block
        if not bs:  # NULL cipher: the plaintext and its MAC
            if len(payload) < mlen:
                raise DecryptError("record shorter than its MAC")
            data = payload[:len(payload) - mlen]
            if not _stdlib_hmac.compare_digest(self._mac(seq, ctype, version, data),
                                               payload[len(payload) - mlen:]):
                raise DecryptError("record MAC does not match")
            return data
        explicit_iv = self.version > TLS10
        if self._etm:  # RFC 7366: MAC over IV + ciphertext, checked before decrypting
            if len(payload) < mlen + bs:
                raise DecryptError("record shorter than its MAC and one block")
            body, tag = payload[:len(payload) - mlen], payload[len(payload) - mlen:]
            if not _stdlib_hmac.compare_digest(self._mac(seq, ctype, version, body), tag):
                raise DecryptError("record MAC does not match (encrypt-then-MAC)")
        else:
            body = payload
        if explicit_iv:
            iv, ct = body[:bs], body[bs:]
        else:
            iv, ct = self._iv, body
        if not ct or len(ct) % bs:
            raise DecryptError(f"ciphertext of {len(ct)} bytes is not whole {bs}-byte blocks")
        if not explicit_iv:
            self._iv = bytes(ct[-bs:])  # TLS 1.0: the next record's IV
        algo = (algorithms.AES(self._key) if self.suite.cipher.startswith("AES")
                else _triple_des(self._key))
        dec = Cipher(algo, modes.CBC(bytes(iv))).decryptor()
        plain = dec.update(bytes(ct)) + dec.finalize()
        pad = plain[-1]
        if pad + 1 > len(plain) or plain[len(plain) - pad - 1:] != bytes([pad]) * (pad + 1):
            raise DecryptError("CBC padding is wrong (wrong key or corrupt record)")
        plain = plain[:len(plain) - pad - 1]
        if self._etm:
            return plain
        if len(plain) < mlen:
            raise DecryptError("record shorter than its MAC")
        data, tag = plain[:len(plain) - mlen], plain[len(plain) - mlen:]
        if not _stdlib_hmac.compare_digest(self._mac(seq, ctype, version, data), tag):
            raise DecryptError("record MAC does not match")
        return data


    # -- after records were lost (a gap in the capture) ---------------------------------------
    def resume(self, ctype: int, version: int, payload: bytes, guess: int, lo: int, hi: int,
               max_trials: int) -> tuple[int, bytes] | None:
        """Decrypt the first record seen after lost records, whose sequence number is unknown:
        it lies in ``[lo, hi]`` and is probably near ``guess``. The sequence number enters every
        record's nonce or MAC (RFC 5246 6.2.3, RFC 8446 5.3), so it is found by trial, the
        authentication tag (or MAC) telling the right one; at most ``max_trials`` tries. An
        explicit GCM/CCM nonce is tried first: OpenSSL and most stacks send the sequence
        number there. On success ``seq`` follows on from the record found; None when no
        number in range authenticates it (``seq`` is left as it was).

        TLS 1.0 CBC cannot resume on this record: its IV is the last ciphertext block of the
        previous record, which was lost. ``resume_iv`` takes this record's last block as the
        next IV and the caller tries again on the next record."""
        order: list[int] = []
        if (self.version != TLS13 and self._aead is not None
                and not self.suite.cipher.startswith("CHACHA20") and len(payload) >= 8):
            explicit = int.from_bytes(payload[:8], "big")
            if lo <= explicit <= hi:
                order.append(explicit)
        guess = min(max(guess, lo), hi)
        k = 0
        while len(order) < max_trials and (guess - k >= lo or guess + k <= hi):
            for seq in (guess + k, guess - k) if k else (guess,):
                if lo <= seq <= hi and seq not in order[:1]:
                    order.append(seq)
            k += 1
        saved_iv = self._iv
        for seq in order[:max_trials]:
            self._iv = saved_iv
            try:
                if self.version == TLS13:
                    got = self._tls13(payload, seq)
                elif self._aead is not None:
                    got = ctype, self._aead12(ctype, version, payload, seq)
                else:
                    got = ctype, self._mac_cipher(ctype, version, payload, seq)
            except DecryptError:
                continue
            self.seq = seq + 1
            return got
        self._iv = saved_iv
        return None

    @property
    def overhead(self) -> int:
        """Bytes a record adds to its plaintext (CBC: IV, MAC and an average padding)."""
        if self.version == TLS13:
            return self._tag + 1  # and the content type (padding, rare, not counted)
        if self._aead is not None:
            return self._tag + (0 if self.suite.cipher.startswith("CHACHA20") else 8)
        mac = _HASH_LEN[self.suite.mac]  # type: ignore[index]
        if not self._block:
            return mac
        return (self._block if self.version > TLS10 else 0) + mac + self._block // 2

    @property
    def chained_iv(self) -> bool:
        """TLS 1.0 CBC: each record's IV is the previous record's last ciphertext block."""
        return self._aead is None and bool(self._block) and self.version <= TLS10

    def resume_iv(self, payload: bytes) -> None:
        """TLS 1.0 CBC after a loss: this record (undecryptable) gives the next one's IV."""
        body = payload[:len(payload) - _HASH_LEN[self.suite.mac]] if self._etm else payload
        if len(body) >= self._block:
            self._iv = bytes(body[-self._block:])


class NullUnverified:
    """A NULL-cipher suite without keys: the plaintext travels in clear, followed by its MAC,
    which cannot be checked without the MAC key (RFC 5246 6.2.3.1). Used so that the retired
    "authenticated unencrypted" DICOM profile (PS3.15 B.2, TLS_RSA_WITH_NULL_SHA) is readable
    without a key log, as it is to anyone on the path."""

    __slots__ = ("mac_len", "seq")

    def __init__(self, suite: Suite) -> None:
        self.mac_len = _HASH_LEN[suite.mac]  # type: ignore[index]
        self.seq = 0

    def decrypt(self, ctype: int, version: int, payload: bytes) -> tuple[int, bytes]:
        self.seq += 1
        if len(payload) < self.mac_len:
            raise DecryptError("record shorter than its MAC")
        return ctype, payload[:len(payload) - self.mac_len]

    chained_iv = False

    @property
    def overhead(self) -> int:
        return self.mac_len

    def resume(self, ctype: int, version: int, payload: bytes, guess: int, lo: int, hi: int,
               max_trials: int) -> tuple[int, bytes] | None:
        """In clear: nothing to find (the unchecked MAC does not need the number)."""
        try:
            got = self.decrypt(ctype, version, payload)
        except DecryptError:
            return None
        self.seq = guess + 1
        return got


def _triple_des(key: bytes):
    try:
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    except ImportError:  # older cryptography
        TripleDES = algorithms.TripleDES  # type: ignore[attr-defined]  # noqa: N806
    return TripleDES(key)


def tls12_protections(suite: Suite, version: int, master: bytes, client_random: bytes,
                      server_random: bytes, etm: bool) -> tuple[Protection, Protection]:
    """(client write, server write) protections from a TLS 1.0-1.2 master secret (RFC 5246 6.3)."""
    klen, ivlen, _bs = _CIPHERS[suite.cipher]
    mlen = _HASH_LEN[suite.mac] if suite.mac else 0
    if version > TLS10 and _bs:
        ivlen = 0  # TLS 1.1+ CBC: each record carries its IV (RFC 4346 6.3)
    block = prf(version, suite.prf, master, b"key expansion", server_random + client_random,
                2 * (mlen + klen + ivlen))
    p = 0
    out = []
    for n in (mlen, mlen, klen, klen, ivlen, ivlen):
        out.append(block[p:p + n])
        p += n
    cmac, smac, ckey, skey, civ, siv = out
    return (Protection(suite, version, ckey, civ, cmac, etm),
            Protection(suite, version, skey, siv, smac, etm))
