"""TLS finding codes (raised by dicomsniff/analysis/tls.py as each TLS connection ends).

Listed here so ``python -m dicomsniff.analysis.rules`` shows them with every other code. The
sections: RFC 8446 (TLS 1.3), RFC 5246 (TLS 1.2), RFC 8996 (TLS 1.0/1.1 deprecated), PS3.15
Annex B (DICOM secure transport connection profiles, BCP 195).
"""

from __future__ import annotations

from .base import code

TLS_ALERT_FATAL = code(
    "TLS-ALERT-FATAL", "error", "RFC 8446 6.2 / RFC 5246 7.2.2",
    "a fatal TLS alert: one side refused the other (which side, why, what to check)",
    origin="tls")
TLS_CERT_EXPIRED = code(
    "TLS-CERT-EXPIRED", "error", "RFC 5280 4.1.2.5",
    "a certificate was outside its validity period at capture time", origin="tls")
TLS_CLIENT_CERT_MISSING = code(
    "TLS-CLIENT-CERT-MISSING", "error", "PS3.15 B.1 / RFC 8446 4.4.2.4",
    "the server asked for a client certificate and the client sent none", origin="tls")
TLS_PLAIN_TO_TLS_PORT = code(
    "TLS-PLAIN-TO-TLS-PORT", "error", "PS3.15 B.1",
    "a plain DICOM A-ASSOCIATE-RQ was sent to a port that speaks TLS", origin="tls")
TLS_NOT_TLS_SERVER = code(
    "TLS-TO-PLAIN-PORT", "error", "PS3.15 B.1",
    "a TLS ClientHello got no TLS answer: the port speaks plain DICOM or nothing", origin="tls")
TLS_OLD_VERSION = code(
    "TLS-OLD-VERSION", "warning", "RFC 8996 / PS3.15 B.9 (BCP 195)",
    "TLS 1.1 or older was negotiated (deprecated, refused by current profiles)", origin="tls")
TLS_WEAK_CIPHER = code(
    "TLS-WEAK-CIPHER", "warning", "PS3.15 B.9 (BCP 195, RFC 9325 4.2)",
    "the cipher suite chosen is weak (no forward secrecy, CBC, NULL, RC4, 3DES)",
    origin="tls")
TLS_LIKELY_REFUSED = code(
    "TLS-LIKELY-REFUSED", "warning", "RFC 8446 6.2",
    "a TLS 1.3 connection ended right after its handshake with an alert-sized record: likely "
    "an encrypted refusal (a key log confirms)", origin="tls")
TLS_ENCRYPTED_DICOM = code(
    "TLS-ENCRYPTED-DICOM", "info", "PS3.15 B.1",
    "DICOM over TLS without keys: counted, not decoded (give --tls-keylog)", origin="tls")
TLS_NO_KEY = code(
    "TLS-NO-KEY", "warning", None,
    "a key log was given but holds no secrets for this TLS session", origin="tls")
TLS_DECRYPT_FAILED = code(
    "TLS-DECRYPT-FAILED", "error", "RFC 8446 5.2 / RFC 5246 6.2.3",
    "records that do not decrypt with the key log's secrets (wrong key or corrupt record)",
    origin="tls")
TLS_CIPHER_UNSUPPORTED = code(
    "TLS-CIPHER-UNSUPPORTED", "warning", None,
    "the session's cipher suite cannot be decrypted by dicomsniff", origin="tls")
TLS_MALFORMED = code(
    "TLS-MALFORMED", "error", "RFC 8446 5.1 / 4",
    "bytes that are not valid TLS records or handshake messages; that direction is not "
    "followed further", origin="tls")
TLS_HANDSHAKE_TOO_LARGE = code(
    "TLS-HANDSHAKE-TOO-LARGE", "warning", None,
    "a handshake message over the size cap was skipped", origin="tls")
TLS_GAP = code(
    "TLS-GAP", "warning", None,
    "bytes missing from the capture inside a TLS stream: the record lost, or the next record "
    "header searched for and decryption resumed where the cipher allows (the message says)",
    origin="tls")
