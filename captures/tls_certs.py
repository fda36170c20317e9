"""Synthetic certificates for the TLS captures and tests, made with ``cryptography`` at run time.

A trusted CA, a second CA nobody trusts, server and client certificates from the trusted CA,
one server certificate that expired, and one from the untrusted CA. Keys are small (RSA 2048,
EC P-256) and throwaway; nothing here protects anything real.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.timezone.utc)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dicomsniff test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key(kind: str):
    return rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(
        ec.SECP256R1())


def make_ca(cn: str, kind: str = "rsa"):
    key = _key(kind)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_leaf(ca, cn: str, *, server: bool, kind: str = "rsa", days: tuple[int, int] = (-1, 365),
              hosts: tuple[str, ...] = ()):
    ca_key, ca_cert = ca
    key = _key(kind)
    eku = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(NOW + dt.timedelta(days=days[0]))
         .not_valid_after(NOW + dt.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([eku]), critical=False))
    if hosts:
        import ipaddress
        names: list[x509.GeneralName] = []
        for h in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, b.sign(ca_key, hashes.SHA256())


def write_pem(path: Path, key, cert) -> tuple[Path, Path]:
    """key -> path.key, certificate -> path.crt (PEM, unencrypted key)."""
    kp, cp = path.with_suffix(".key"), path.with_suffix(".crt")
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption()))
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return kp, cp


def make_set(out: Path, server_hosts: tuple[str, ...] = ("192.0.2.2", "archive.test")) -> dict:
    """Write the whole set into ``out``; returns {name: (key path, cert path)}."""
    out.mkdir(parents=True, exist_ok=True)
    ca = make_ca("dicomsniff Test CA")
    rogue = make_ca("Untrusted Rogue CA")
    files = {
        "ca": write_pem(out / "ca", *ca),
        "rogue-ca": write_pem(out / "rogue-ca", *rogue),
        "server": write_pem(out / "server", *make_leaf(ca, "ARCHIVE", server=True,
                                                      hosts=server_hosts)),
        "server-ec": write_pem(out / "server-ec", *make_leaf(ca, "ARCHIVE-EC", server=True,
                                                            kind="ec", hosts=server_hosts)),
        "client": write_pem(out / "client", *make_leaf(ca, "MODALITY", server=False)),
        "expired": write_pem(out / "expired", *make_leaf(ca, "ARCHIVE-EXPIRED", server=True,
                                                        days=(-400, -30),
                                                        hosts=server_hosts)),
        "rogue-server": write_pem(out / "rogue-server", *make_leaf(rogue, "ARCHIVE-ROGUE",
                                                                  server=True,
                                                                  hosts=server_hosts)),
    }
    return files
