"""The TLS registries this dissector needs, one place (IANA TLS parameters, RFC 8446, RFC 5246).

Names are the RFCs' own (``unknown_ca``, ``TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256``) so a reader
who knows TLS finds them, and so they match what OpenSSL, Wireshark and the key log speak of.
A cipher suite's row says how to decrypt it (key exchange, bulk cipher, MAC, PRF hash) and why
it is weak, if it is; suites without a row are named by their code and never decrypted.
"""

from __future__ import annotations

from typing import Any

# Record content types (RFC 8446 5.1): the numbers are the record layer's (records.py).
from .records import (  # noqa: F401 - re-exported: the registries' names
    ALERT,
    APPLICATION_DATA,
    CHANGE_CIPHER_SPEC,
    CLIENT_HELLO,
    HANDSHAKE,
    HEARTBEAT,
)

CONTENT_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake",
                 23: "application_data", 24: "heartbeat"}

# Handshake message types (RFC 8446 4, RFC 5246 7.4).
HANDSHAKE_TYPES = {
    0: "hello_request", 1: "client_hello", 2: "server_hello", 4: "new_session_ticket",
    5: "end_of_early_data", 8: "encrypted_extensions", 11: "certificate",
    12: "server_key_exchange", 13: "certificate_request", 14: "server_hello_done",
    15: "certificate_verify", 16: "client_key_exchange", 20: "finished",
    22: "certificate_status", 24: "key_update", 254: "message_hash",
}
SERVER_HELLO, NEW_SESSION_TICKET = 2, 4  # CLIENT_HELLO (1): records.py
ENCRYPTED_EXTENSIONS, CERTIFICATE, SERVER_KEY_EXCHANGE = 8, 11, 12
CERTIFICATE_REQUEST, SERVER_HELLO_DONE, CERTIFICATE_VERIFY = 13, 14, 15
CLIENT_KEY_EXCHANGE, FINISHED, KEY_UPDATE = 16, 20, 24

# Protocol versions as on the wire.
VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
            0x0304: "TLS 1.3"}
TLS10, TLS11, TLS12, TLS13 = 0x0301, 0x0302, 0x0303, 0x0304

# The ServerHello.random that marks a HelloRetryRequest (RFC 8446 4.1.3).
HRR_RANDOM = bytes.fromhex(
    "CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")

# Extensions (IANA TLS ExtensionType Values) the dissector reads or names.
EXT_SERVER_NAME = 0
EXT_SUPPORTED_GROUPS = 10
EXT_ALPN = 16
EXT_ENCRYPT_THEN_MAC = 22
EXT_EXTENDED_MASTER_SECRET = 23
EXT_SESSION_TICKET = 35
EXT_PRE_SHARED_KEY = 41
EXT_EARLY_DATA = 42
EXT_SUPPORTED_VERSIONS = 43
EXT_KEY_SHARE = 51
EXTENSIONS = {0: "server_name", 5: "status_request", 10: "supported_groups",
              11: "ec_point_formats", 13: "signature_algorithms", 16: "alpn",
              18: "signed_certificate_timestamp", 21: "padding", 22: "encrypt_then_mac",
              23: "extended_master_secret", 35: "session_ticket", 41: "pre_shared_key",
              42: "early_data", 43: "supported_versions", 44: "cookie",
              45: "psk_key_exchange_modes", 49: "post_handshake_auth", 51: "key_share",
              65281: "renegotiation_info"}

GROUPS = {23: "secp256r1", 24: "secp384r1", 25: "secp521r1", 29: "x25519", 30: "x448",
          256: "ffdhe2048", 257: "ffdhe3072", 258: "ffdhe4096"}

# Alerts (RFC 8446 6, RFC 5246 7.2).
ALERT_LEVELS = {1: "warning", 2: "fatal"}
ALERTS = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
    21: "decryption_failed", 22: "record_overflow", 30: "decompression_failure",
    40: "handshake_failure", 41: "no_certificate", 42: "bad_certificate",
    43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
    46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied",
    50: "decode_error", 51: "decrypt_error", 60: "export_restriction", 70: "protocol_version",
    71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback",
    90: "user_canceled", 100: "no_renegotiation", 109: "missing_extension",
    110: "unsupported_extension", 112: "unrecognized_name",
    113: "bad_certificate_status_response", 115: "unknown_psk_identity",
    116: "certificate_required", 120: "no_application_protocol",
}

# What an alert means for the person reading the report: who refused what, and what to check.
ALERT_ADVICE = {
    "unknown_ca": "the certificate's issuing CA is not in the sender's trust store: add the "
                  "peer's CA certificate to it, or have the peer use a certificate from a "
                  "trusted CA",
    "bad_certificate": "the certificate was rejected (signature, key usage or a "
                       "verification error): check the chain and the key usage",
    "certificate_expired": "a certificate is outside its validity period: renew it, and "
                           "check both machines' clocks",
    "certificate_unknown": "the certificate was not accepted for an unspecified reason: "
                           "check the chain, host name and key usage",
    "certificate_revoked": "the certificate was revoked by its CA: issue a new one",
    "unsupported_certificate": "the certificate's type or key is not supported by the peer",
    "certificate_required": "the server demands a client certificate and none was sent: "
                            "configure the client's certificate and key",
    "handshake_failure": "no common security parameters (cipher suites, groups, signature "
                         "algorithms), or a client certificate the server demanded is "
                         "missing: compare both sides' TLS profiles",
    "protocol_version": "no TLS version both sides accept: enable TLS 1.2 or 1.3 on the "
                        "older side",
    "insufficient_security": "the server requires stronger cipher suites than the client "
                             "offered",
    "decrypt_error": "a handshake signature or Finished check failed: a key that does not "
                     "match its certificate, or a middlebox altering the handshake",
    "bad_record_mac": "a record failed its integrity check: corruption in transit or a "
                      "broken middlebox",
    "illegal_parameter": "a handshake field was out of range or inconsistent",
    "decode_error": "a message could not be parsed by the peer",
    "unexpected_message": "a message arrived out of order: often plain data where TLS was "
                          "expected, or a protocol confusion",
    "unrecognized_name": "the server does not know the name sent in SNI",
    "no_application_protocol": "no ALPN protocol in common",
    "access_denied": "the peer's identity was verified but access is denied by policy",
    "internal_error": "the peer failed internally (often a configuration error)",
}


class Suite:
    """How a cipher suite decrypts: key exchange, bulk cipher, MAC, PRF hash; and its weakness.

    ``cipher`` is one of AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305, AES-128-CCM, AES-256-CCM,
    AES-128-CCM8, AES-256-CCM8, AES-128-CBC, AES-256-CBC, 3DES-CBC, RC4, NULL; ``mac`` is
    SHA1, SHA256, SHA384 or None (AEAD).
    """

    __slots__ = ("code", "name", "kex", "cipher", "mac", "prf", "weak")

    def __init__(self, code: int, name: str, kex: str, cipher: str, mac: str | None,
                 prf: str, weak: str | None) -> None:
        self.code, self.name, self.kex, self.cipher = code, name, kex, cipher
        self.mac, self.prf, self.weak = mac, prf, weak


def _suite(code: int, name: str) -> Suite:
    """Derive the row from the suite's systematic name (one table, no second list to drift)."""
    body = name[4:]
    if code >> 8 == 0x13:  # TLS 1.3 suites name only the AEAD and the hash
        cipher = body.rsplit("_", 1)[0].replace("_", "-")
        cipher = {"AES-128-CCM-8": "AES-128-CCM8"}.get(cipher, cipher)
        return Suite(code, name, "TLS13", cipher, None, body.rsplit("_", 1)[1], None)
    kex, rest = body.split("_WITH_")
    parts = rest.split("_")
    mac = parts[-1] if parts[-1] in ("SHA", "SHA256", "SHA384", "MD5") else None
    cipher_parts = parts[:-1] if mac else parts
    if cipher_parts[-1] in ("SHA256", "SHA384"):  # AEAD: the hash names the PRF
        prf = cipher_parts[-1]
        cipher_parts = cipher_parts[:-1]
    else:
        prf = "SHA384" if mac == "SHA384" else "SHA256"
    cipher = "-".join(cipher_parts)
    if cipher.endswith(("GCM", "CCM", "CCM-8", "POLY1305")) and mac:
        prf, mac = mac, None  # AEAD: the trailing hash names the PRF, there is no MAC
    cipher = {"3DES-EDE-CBC": "3DES-CBC", "RC4-128": "RC4", "AES-128-CCM-8": "AES-128-CCM8",
              "AES-256-CCM-8": "AES-256-CCM8"}.get(cipher, cipher)
    mac = {"SHA": "SHA1"}.get(mac, mac) if mac else None
    weak = None
    if cipher in ("NULL",):
        weak = "no encryption (NULL cipher): DICOM travels readable by anyone on the path"
    elif cipher in ("RC4", "3DES-CBC", "DES-CBC") or "EXPORT" in kex:
        weak = f"{cipher} is broken (RFC 7465, SWEET32)"
    elif mac == "MD5":
        weak = "MD5 record MAC"
    elif "anon" in kex:
        weak = "anonymous key exchange: no server authentication"
    elif kex in ("RSA", "PSK"):
        weak = "RSA key exchange: no forward secrecy (BCP 195 recommends ECDHE)"
    elif cipher.endswith("CBC"):
        weak = ("CBC mode (BCP 195 recommends AEAD suites; MAC-then-encrypt CBC invites "
                "padding oracles)")
    return Suite(code, name, kex, cipher, mac, prf, weak)


_SUITE_NAMES = {
    0x0000: "TLS_NULL_WITH_NULL_NULL",
    0x0001: "TLS_RSA_WITH_NULL_MD5", 0x0002: "TLS_RSA_WITH_NULL_SHA",
    0x0004: "TLS_RSA_WITH_RC4_128_MD5", 0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA", 0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA", 0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    0x003B: "TLS_RSA_WITH_NULL_SHA256",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x0067: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", 0x006B: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", 0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0xC006: "TLS_ECDHE_ECDSA_WITH_NULL_SHA", 0xC010: "TLS_ECDHE_RSA_WITH_NULL_SHA",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xC09C: "TLS_RSA_WITH_AES_128_CCM", 0xC09D: "TLS_RSA_WITH_AES_256_CCM",
    0xC09E: "TLS_DHE_RSA_WITH_AES_128_CCM", 0xC09F: "TLS_DHE_RSA_WITH_AES_256_CCM",
    0xC0A0: "TLS_RSA_WITH_AES_128_CCM_8", 0xC0A1: "TLS_RSA_WITH_AES_256_CCM_8",
    0xC0A2: "TLS_DHE_RSA_WITH_AES_128_CCM_8", 0xC0A3: "TLS_DHE_RSA_WITH_AES_256_CCM_8",
    0xC0AC: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", 0xC0AD: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
    0xC0AE: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", 0xC0AF: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256", 0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
}
SUITES: dict[int, Suite]  # code -> row: derived on first use (module __getattr__ below)
SIGNALLING = {0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV", 0x5600: "TLS_FALLBACK_SCSV"}


def is_grease(value: int) -> bool:
    """RFC 8701 GREASE values (0x0A0A, 0x1A1A, ...): ignored when reporting what was offered."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def suite_name(code: int) -> str:
    s = __getattr__("SUITES").get(code)
    if s is not None:
        return s.name
    return SIGNALLING.get(code) or f"0x{code:04X}"


def version_name(code: int | None) -> str | None:
    if code is None:
        return None
    return VERSIONS.get(code) or f"0x{code:04X}"


def alert_name(code: int) -> str:
    return ALERTS.get(code) or f"alert {code}"


def __getattr__(name: str) -> Any:
    """``SUITES``, derived from the names when first read: only a TLS handshake needs the rows,
    and every start imports this module (the record layer's constants decide what is TLS)."""
    if name == "SUITES":
        rows = globals().get("SUITES")
        if rows is None:
            rows = globals()["SUITES"] = {c: _suite(c, n) for c, n in _SUITE_NAMES.items() if c}
        return rows
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
