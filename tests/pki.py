"""Throwaway certificates for TLS tests: a CA and a certificate it signs for ``localhost``
and ``127.0.0.1``,
whose key is encrypted with :data:`KEY_PASSWORD`, plus a key that is not the certificate's.
Made with the ``cryptography`` package when installed, else the ``openssl`` command.
Used by ``tests/test_tls.py`` (in-memory handshakes) and the adapters' TLS broker tests.
"""

from __future__ import annotations

import datetime
import importlib
import ipaddress
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

__all__ = ["KEY_PASSWORD", "Pki", "make_pki"]

KEY_PASSWORD = "ZQkey1-right"


class Pki(NamedTuple):
    ca: Path
    cert: Path
    key: Path  # encrypted with KEY_PASSWORD
    other_key: Path  # not the certificate's
    plain_key: Path  # the certificate's key, unencrypted (for servers that take no password)

    @property
    def key_password(self) -> str:
        """The password of :attr:`key` (:data:`KEY_PASSWORD`)."""
        return KEY_PASSWORD


def _with_cryptography(folder: Path) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key, other = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = (x509.CertificateBuilder().subject_name(name("mqkit test CA"))
          .issuer_name(name("mqkit test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("localhost"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    pki = Pki(folder / "ca.pem", folder / "cert.pem", folder / "key.pem",
              folder / "other.pem", folder / "plain-key.pem")
    pki.ca.write_bytes(ca.public_bytes(pem))
    pki.cert.write_bytes(cert.public_bytes(pem))
    pki.key.write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY_PASSWORD.encode())))
    pki.plain_key.write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pki.other_key.write_bytes(other.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return pki


def _with_openssl(folder: Path) -> Pki:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")
    run("req", "-x509", *ec, "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
        "-days", "1", "-subj", "/CN=mqkit test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-new", *ec, "-keyout", "key.pem", "-out", "cert.csr", "-subj",
        "/CN=localhost", "-passout", f"pass:{KEY_PASSWORD}")
    (folder / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                    "basicConstraints=critical,CA:FALSE\n"
                                    "authorityKeyIdentifier=keyid\n")
    run("x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
        "-CAcreateserial", "-days", "1", "-out", "cert.pem", "-extfile", "ext.cnf")
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-out", "other.pem")
    run("pkey", "-in", "key.pem", "-passin", f"pass:{KEY_PASSWORD}", "-out", "plain-key.pem")
    return Pki(folder / "ca.pem", folder / "cert.pem", folder / "key.pem",
               folder / "other.pem", folder / "plain-key.pem")


def make_pki(folder: Path) -> Pki | None:
    """A fresh PKI in ``folder``; None when neither ``cryptography`` nor ``openssl`` is
    available."""
    try:
        importlib.import_module("cryptography.x509")
    except ImportError:
        if shutil.which("openssl") is None:
            return None
        return _with_openssl(folder)
    return _with_cryptography(folder)
