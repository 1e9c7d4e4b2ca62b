"""What an answer or a failure of the API server means, in words an operator can act on.

`answer` turns an HTTP answer into the JSON object asked for or the error it is
(401 and 403 name the credentials and the action, 429 and 5xx are transient and
carry Retry-After); `network_reason` and `tls_message` say why a connection failed.
Pure: no I/O. Error messages carry the API's Status message (one visible line,
bounded), never a request or token.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Mapping
from typing import Any

from bootstrap.errors import (
    ApiError,
    AuthError,
    ConflictError,
    NotFoundError,
    TransientError,
)
from bootstrap.kube import http1, transport


def answer(
    status: int, headers: Mapping[str, str], data: bytes, what: str, server: str, who: str
) -> dict[str, Any]:
    """The JSON object of a 2xx answer to `what`; else the error the answer is."""
    document: Any = None
    try:
        document = json.loads(data) if data else {}
    except (ValueError, RecursionError):  # UnicodeDecodeError included; nesting too deep
        document = None
    if 200 <= status < 300:
        if not isinstance(document, dict):
            kind = headers.get("content-type", "no content type")[:100]
            raise ApiError(
                f"unexpected response to {what} from {server}: HTTP {status} "
                f"with {kind}, not a JSON object (is this a Kubernetes API server?)",
                status,
            )
        return document
    message = status_message(document) or f"HTTP {status}"
    if status == 401:
        raise AuthError(
            f"the API server rejected {who} (401 Unauthorized) while trying to {what}: "
            f"{message}; the credentials are invalid or expired, refresh them",
            status,
        )
    if status == 403:
        raise AuthError(f"forbidden: {who} may not {what} ({message})", status)
    if status == 404:
        raise NotFoundError(message, status)
    if status == 409:
        raise ConflictError(message, status)
    if status == 429 or status >= 500:
        raise TransientError(
            f"the API server could not {what} (HTTP {status}): {message}",
            status,
            retry_after(headers.get("retry-after")),
        )
    raise ApiError(f"cannot {what}: {message} (HTTP {status})", status)


def status_message(document: Any) -> str | None:
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        # One line: some Status messages (RBAC escalation refusals) span several.
        from bootstrap.sanitize import visible

        return visible(" ".join(str(document["message"]).split())[:500])
    return None


def retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def network_reason(error: BaseException) -> str:
    if isinstance(error, socket.gaierror):
        return "host name does not resolve"
    proxies = sys.modules.get("bootstrap.kube.proxies")  # imported only if a proxy is used
    if proxies is not None and isinstance(error, proxies.ProxyFailure):
        return str(error)
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, transport.ConnectTimeout):
        return "connection timed out"
    if isinstance(error, TimeoutError):
        return "no response within the request timeout"
    if isinstance(error, http1.ProtocolError):
        return str(error)
    if isinstance(error, ConnectionError):
        return "connection reset or closed by the server"
    return (
        error.strerror.lower()
        if isinstance(error, OSError) and error.strerror
        else type(error).__name__
    )


def tls_message(server: str, error: BaseException) -> str:
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        detail = text.split("certificate verify failed:")[-1].split("(")[0].strip(" )'\"")
        if "mismatch" in detail:
            return (
                f"TLS verification of {server} failed ({detail.rstrip('.')}): the server's "
                "certificate is not issued for that name; check the server URL or the "
                "cluster's tls-server-name"
            )
        return (
            f"TLS verification of {server} failed ({detail or 'untrusted certificate'}): the "
            "server's certificate does not match the CA in the kubeconfig; fix the CA, or pass "
            "--insecure-skip-tls-verify if you really trust this network"
        )
    return f"TLS handshake with {server} failed: {text[:200]}"
