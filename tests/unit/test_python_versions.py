"""What differs between the supported Pythons (3.10 to 3.13) and must not change behaviour."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

from bootstrap.kube.transport import tls_context


def test_tls_verification_is_not_x509_strict(tmp_path: Path) -> None:
    """Python 3.13 turns on OpenSSL's strict mode by default, which refuses a CA without
    keyUsage (the dev cluster's, and many real ones); Go and kubectl accept it, and so must
    the tool on every Python. (On 3.13, tests/cluster proves it with real handshakes.)"""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=no-key-usage-ca", "-keyout", str(tmp_path / "ca.key"),
         "-out", str(tmp_path / "ca.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    pem = (tmp_path / "ca.crt").read_bytes()
    for context in (tls_context(pem, "the CA", False),):
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert not context.verify_flags & ssl.VERIFY_X509_STRICT
