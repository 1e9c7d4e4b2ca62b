"""transport.py's and proxies.py's pure parts: server URLs, proxy choice (Go's httpproxy rules), PEM
bundles and the TLS context flags."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from bootstrap.kube.proxies import Proxy, bypasses_proxy, choose_proxy, parse_proxy_url
from bootstrap.kube.transport import Endpoint, parse_server, pem_certificates, tls_context

# Go's net/http/httpproxy TestUseProxy table (NO_PROXY and expectations, port 80).
GO_NO_PROXY = (
    "foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, 192.168.1.3:80, "
    "10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:2]:443, [2001:db8::52:0:3]:80, "
    "2002:db8:a::45/64"
)


@pytest.mark.parametrize(
    ("host", "proxied"),
    [
        ("localhost", False),
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("::1", False),
        ("::2", True),
        ("192.168.1.1", False),
        ("192.168.1.2", True),
        ("192.168.1.3", False),
        ("192.168.1.4", True),
        ("10.0.0.2", False),
        ("2001:db8::52:0:1", False),
        ("2001:db8::52:0:2", True),
        ("2001:db8::52:0:3", False),
        ("2002:db8:a::123", False),
        ("fe80::424b:c8be:1643:a1b6", True),
        ("barbaz.net", True),
        ("www.barbaz.net", False),
        ("foobar.com", False),
        ("www.foobar.com", False),
        ("foofoobar.com", True),
        ("baz.com", True),
        ("localhost.net", True),
        ("local.localhost", True),
        ("barbarbaz.net", True),
        ("wildcard.io", True),
        ("nested.wildcard.io", False),
        ("awildcard.io", True),
    ],
)
def test_no_proxy_rules_match_go(host: str, proxied: bool) -> None:
    assert bypasses_proxy(host, 80, GO_NO_PROXY) is not proxied


def test_no_proxy_star_and_case() -> None:
    assert bypasses_proxy("anything.example", 443, " * ")
    assert bypasses_proxy("API.Example.COM", 443, "example.com")
    assert not bypasses_proxy("api.example.com", 443, "example.com:6443")
    assert bypasses_proxy("api.example.com", 6443, "example.com:6443")


HTTPS = Endpoint("https", "api.example.com", 6443, "")
HTTP = Endpoint("http", "api.example.com", 8080, "")


def test_proxy_url_wins_over_the_environment_and_no_proxy() -> None:
    environ = {"HTTPS_PROXY": "http://env:3128", "NO_PROXY": "*"}
    assert choose_proxy(HTTPS, "socks5://user:p%40ss@sock:1080", environ) == Proxy(
        "socks5", "sock", 1080, "user", "p@ss"
    )
    # Even for loopback: proxy-url applies to every request.
    local = Endpoint("https", "127.0.0.1", 6443, "")
    assert choose_proxy(local, "http://p:8080", {}) == Proxy("http", "p", 8080)


def test_environment_proxy_by_scheme_upper_case_first() -> None:
    environ = {
        "HTTPS_PROXY": "https://upper:443",
        "https_proxy": "http://lower:1",
        "HTTP_PROXY": "h:3128",
    }
    assert choose_proxy(HTTPS, None, environ) == Proxy("https", "upper", 443)
    assert choose_proxy(HTTP, None, environ) == Proxy("http", "h", 3128)  # no scheme: http
    assert choose_proxy(HTTPS, None, {"https_proxy": "http://lower:1"}) == Proxy("http", "lower", 1)
    assert choose_proxy(HTTP, None, {"HTTPS_PROXY": "http://x:1"}) is None
    assert choose_proxy(HTTP, None, {"HTTP_PROXY": "http://x:1", "REQUEST_METHOD": "GET"}) is None


def test_environment_proxy_respects_no_proxy_and_loopback() -> None:
    environ = {"HTTPS_PROXY": "http://p:3128", "no_proxy": ".example.com"}
    assert choose_proxy(HTTPS, None, environ) is None
    assert (
        choose_proxy(Endpoint("https", "localhost", 6443, ""), None, {"HTTPS_PROXY": "p:1"}) is None
    )
    assert choose_proxy(Endpoint("https", "::1", 6443, ""), None, {"HTTPS_PROXY": "p:1"}) is None


@pytest.mark.parametrize("url", ["ftp://p:21", "socks4://p:1080", "p:3128"])
def test_proxy_url_scheme_must_be_http_https_or_socks5(url: str) -> None:
    with pytest.raises(ValueError, match="must be http, https, or socks5"):
        parse_proxy_url(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h:6443", Endpoint("https", "h", 6443, "")),
        ("https://h", Endpoint("https", "h", 443, "")),
        ("http://h", Endpoint("http", "h", 80, "")),
        ("https://h:", Endpoint("https", "h", 443, "")),
        ("https://[::1]:6443/prefix/", Endpoint("https", "::1", 6443, "/prefix")),
    ],
)
def test_valid_server_urls(url: str, expected: Endpoint) -> None:
    assert parse_server(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://h:99999", "the port is not a number from 1 to 65535"),
        ("https://h:abc", "the port is not a number from 1 to 65535"),
        ("https://h:0", "the port is not a number from 1 to 65535"),
        ("https://[::1", "unclosed '['"),
        ("h:6443", "it must start with https:// or http://"),
        ("https://", "it names no host"),
        ("https://h\n:6443", "whitespace or control characters"),
        ("https://a..b:6443", "the host name 'a..b' is not a valid DNS name"),
        ("https://" + "x" * 64 + ".example", "is not a valid DNS name"),
    ],
)
def test_invalid_server_urls(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("[", r"\[")):
        parse_server(url)


def test_endpoint_hostport_brackets_ipv6() -> None:
    assert Endpoint("https", "::1", 6443, "").hostport == "[::1]:6443"


def test_the_host_field_is_ascii_as_a_resolver_sends_the_name() -> None:
    assert parse_server("https://münchen.example:6443").host_field == "xn--mnchen-3ya.example:6443"
    assert Endpoint("https", "::1", 6443, "").host_field == "[::1]:6443"
    assert Endpoint("https", "k.example", 443, "").host_field == "k.example:443"
    assert Endpoint("https", "h", 443, "").hostport == "h:443"


def _ca(tmp_path: Path, name: str) -> bytes:
    key, crt = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", f"/CN={name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt.read_bytes()


def test_pem_bundle_with_text_around_the_blocks(tmp_path: Path) -> None:
    one, two = _ca(tmp_path, "one"), _ca(tmp_path, "two")
    bundle = b"subject=CN=one\n" + one + b"\nsome comment\n" + two + b"trailing text"
    assert pem_certificates(bundle) == [one.strip(), two.strip()]
    context = tls_context(bundle, "the CA", insecure=False)
    assert len(context.get_ca_certs()) == 2


def test_ca_without_any_certificate_is_refused() -> None:
    with pytest.raises(ValueError, match="the CA holds no PEM certificate"):
        tls_context(b"no certificate here", "the CA", insecure=False)


def test_tls_context_verifies_like_go(tmp_path: Path) -> None:
    context = tls_context(_ca(tmp_path, "ca"), "the CA", insecure=False)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert not context.verify_flags & ssl.VERIFY_X509_STRICT
    assert context.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    insecure = tls_context(None, "none", insecure=True)
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname


def test_proxy_repr_hides_the_password() -> None:
    proxy = Proxy("http", "p", 1, "user", "secret")
    assert "secret" not in repr(proxy) and "secret" not in proxy.display


def test_proxy_basic_auth_from_the_url() -> None:
    proxy = parse_proxy_url("http://us%40er:p%3Ass@p:3128")
    assert proxy.basic_auth() == "Basic dXNAZXI6cDpzcw=="  # base64 of "us@er:p:ss"
