"""Certificates for the variants, made with the openssl command (as the dev
cluster's own PKI is): an unrelated CA, an HTTPS proxy's serving certificate
signed by the dev CA, and an intermediate CA with a client certificate under it
(a client certificate chain that the API server accepts)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pair:
    crt: Path
    key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def self_signed_ca(directory: Path, name: str) -> Pair:
    """A CA unrelated to the cluster (with the usual extensions, unlike the dev CA)."""
    pair = Pair(directory / f"{name}.crt", directory / f"{name}.key")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-keyout",
        str(pair.key),
        "-out",
        str(pair.crt),
        "-subj",
        f"/CN={name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    return pair


def issue(directory: Path, name: str, subject: str, extensions: str, ca: Pair) -> Pair:
    """A key and a certificate for `subject`, signed by `ca`."""
    pair = Pair(directory / f"{name}.crt", directory / f"{name}.key")
    csr, ext = directory / f"{name}.csr", directory / f"{name}.ext"
    ext.write_text(extensions)
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(pair.key),
        "-out",
        str(csr),
        "-subj",
        subject,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca.crt),
        "-CAkey",
        str(ca.key),
        "-CAcreateserial",
        "-days",
        "30",
        "-out",
        str(pair.crt),
        "-extfile",
        str(ext),
    )
    pair.key.chmod(0o600)
    return pair


SERVER_EXT = (
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
)
CLIENT_EXT = (
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=clientAuth\n"
)
INTERMEDIATE_EXT = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"


@dataclass(frozen=True)
class Material:
    other_ca: Pair  # trusted by nobody here
    proxy: Pair  # serving cert of the HTTPS proxy, signed by the dev CA
    chain_client: Pair  # crt holds leaf + intermediate; leaf is in system:masters
    chain_leaf_only: Pair  # the same leaf without its intermediate
    ec_client: Pair  # P-256 key (SEC1 "EC PRIVATE KEY"), system:masters
    admin_pkcs1_key: Path  # the admin key as "RSA PRIVATE KEY"
    admin_encrypted_key: (
        Path  # the admin key as "ENCRYPTED PRIVATE KEY" (no password given anywhere)
    )


def _ec_client(directory: Path, dev_ca: Pair) -> Pair:
    pair = Pair(directory / "ec-admin.crt", directory / "ec-admin.key")
    csr, ext = directory / "ec-admin.csr", directory / "ec-admin.ext"
    ext.write_text(CLIENT_EXT.replace("keyEncipherment", "keyAgreement"))
    _openssl("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", str(pair.key))
    _openssl(
        "req",
        "-new",
        "-key",
        str(pair.key),
        "-out",
        str(csr),
        "-subj",
        "/O=system:masters/CN=ec-admin",
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(dev_ca.crt),
        "-CAkey",
        str(dev_ca.key),
        "-CAcreateserial",
        "-days",
        "30",
        "-out",
        str(pair.crt),
        "-extfile",
        str(ext),
    )
    return pair


def make_material(directory: Path, dev_ca: Pair, admin_key: Path) -> Material:
    directory.mkdir(parents=True, exist_ok=True)
    other = self_signed_ca(directory, "other-ca")
    proxy = issue(directory, "proxy", "/CN=conformance-proxy", SERVER_EXT, dev_ca)
    intermediate = issue(
        directory, "intermediate", "/CN=dev-intermediate", INTERMEDIATE_EXT, dev_ca
    )
    leaf = issue(
        directory, "chain-leaf", "/O=system:masters/CN=chain-admin", CLIENT_EXT, intermediate
    )
    chain = directory / "chain-client.crt"
    chain.write_bytes(leaf.crt.read_bytes() + intermediate.crt.read_bytes())
    pkcs1, encrypted = directory / "admin-pkcs1.key", directory / "admin-encrypted.key"
    _openssl("rsa", "-in", str(admin_key), "-traditional", "-out", str(pkcs1))
    _openssl(
        "pkcs8",
        "-topk8",
        "-in",
        str(admin_key),
        "-v2",
        "aes256",
        "-passout",
        "pass:conform",
        "-out",
        str(encrypted),
    )
    ec = _ec_client(directory, dev_ca)
    return Material(other, proxy, Pair(chain, leaf.key), leaf, ec, pkcs1, encrypted)
