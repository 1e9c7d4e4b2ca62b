"""A server URL, parsed and checked the way Go's url.Parse and dialer would: a bad
port or host is a configuration error, not a network failure. Shared by the
transport and the proxies (which tunnel to an endpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Endpoint:
    """A parsed server URL."""

    scheme: str  # https or http
    host: str  # without brackets
    port: int
    prefix: str  # path before /api, without trailing slash

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def host_field(self) -> str:
        """The Host header field: hostport, an internationalised name in its ASCII form."""
        return self.hostport if self.hostport.isascii() else self.hostport.encode("idna").decode()


def parse_server(url: str) -> Endpoint:
    """Check a server URL as Go's url.Parse and dialer would; ValueError says what is
    wrong. As in Go, an empty port means the default one and a query is ignored."""
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("it contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        if "IPv6" in str(e):
            raise ValueError(
                "unclosed '[' in the host (an IPv6 address is written [addr])"
            ) from None
        raise ValueError("the port is not a number from 1 to 65535") from None
    if parts.scheme not in ("https", "http"):
        raise ValueError("it must start with https:// or http://")
    if not parts.hostname:
        raise ValueError("it names no host")
    if port == 0:
        raise ValueError("the port is not a number from 1 to 65535")
    try:
        parts.hostname.encode("idna")  # what the resolver will do with it
    except UnicodeError:
        raise ValueError(f"the host name {parts.hostname!r} is not a valid DNS name") from None
    return Endpoint(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (443 if parts.scheme == "https" else 80),
        prefix=parts.path.rstrip("/"),
    )


# --- TLS ------------------------------------------------------------------------------
