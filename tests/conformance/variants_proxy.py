"""Area 1, proxies: a cluster's `proxy-url` (http, https, socks5) and Go's
ProxyFromEnvironment (HTTPS_PROXY, NO_PROXY with suffixes, CIDRs, ports and `*`;
loopback is never proxied from the environment). The server is usually named
`kubernetes.default.svc`, which only the proxy resolves: working at all proves
the proxy was used, and the proxy's record of CONNECTs says so again."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.cases import Case, cluster, simple, variant
from tests.conformance.conftest import Lab

SVC = "kubernetes.default.svc"


def _svc(lab: Lab) -> str:
    return f"https://{SVC}:{lab.port}"


# --- proxy-url ----------------------------------------------------------------


@variant("proxy-url-http", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    body = cluster(lab, server=_svc(lab), proxy_url=lab.http_proxy.url)
    return simple(lab, d, body, via=(lab.http_proxy, f"{SVC}:{lab.port}"))


@variant("proxy-url-https", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    # TLS to the proxy too, with a certificate from the dev CA (the cluster's CA
    # is what client-go trusts for the proxy as well).
    body = cluster(lab, server=_svc(lab), proxy_url=lab.https_proxy.url)
    return simple(lab, d, body, via=(lab.https_proxy, f"{SVC}:{lab.port}"))


@variant("proxy-url-socks5", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    # client-go sends the host name to the SOCKS5 proxy, which resolves it.
    body = cluster(lab, server=_svc(lab), proxy_url=lab.socks_proxy.url)
    return simple(lab, d, body, via=(lab.socks_proxy, f"{SVC}:{lab.port}"))


@variant("proxy-url-wins-for-loopback", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    # Unlike HTTPS_PROXY, a proxy-url is used for 127.0.0.1 as well.
    body = cluster(lab, proxy_url=lab.http_proxy.url)
    return simple(lab, d, body, via=(lab.http_proxy, f"127.0.0.1:{lab.port}"))


@variant("proxy-url-ignores-no-proxy", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    body = cluster(lab, server=_svc(lab), proxy_url=lab.http_proxy.url)
    return simple(
        lab,
        d,
        body,
        env={"NO_PROXY": "*"},
        via=(lab.http_proxy, f"{SVC}:{lab.port}"),
        curl_env={},  # curl honours NO_PROXY even for a proxy it was given (see the docs' --noproxy '')
    )


@variant("proxy-url-dead", "proxy", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab, proxy_url=f"http://127.0.0.1:{lab.dead_port}"))


@variant("proxy-url-socks5-dead", "proxy", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(
        lab, d, cluster(lab, server=_svc(lab), proxy_url=f"socks5://127.0.0.1:{lab.dead_port}")
    )


@variant("proxy-url-unknown-scheme", "proxy", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab, proxy_url=f"ftp://127.0.0.1:{lab.http_proxy.port}"))


# --- the environment --------------------------------------------------------------


def _env_case(
    lab: Lab, d: Path, env: dict[str, str], server: str | None = None, target: str = SVC
) -> Case:
    body = cluster(lab, server=server or _svc(lab))
    proxied = env.get("HTTPS_PROXY") or env.get("https_proxy") or ""
    proxy = lab.socks_proxy if proxied.startswith("socks5") else lab.http_proxy
    return simple(lab, d, body, env=env, via=(proxy, f"{target}:{lab.port}"))


@variant("env-https-proxy", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    return _env_case(lab, d, {"HTTPS_PROXY": lab.http_proxy.url})


@variant("env-https-proxy-lowercase", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    return _env_case(lab, d, {"https_proxy": lab.http_proxy.url})


@variant("env-https-proxy-socks5", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    return _env_case(lab, d, {"HTTPS_PROXY": lab.socks_proxy.url.replace("socks5:", "socks5h:")})


@variant("env-no-proxy-unrelated-rules", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    rules = "example.com,.cluster.local,svc.example,192.168.0.0/16,10.0.0.2,other:443"
    return _env_case(lab, d, {"HTTPS_PROXY": lab.http_proxy.url, "NO_PROXY": rules})


@variant("env-proxy-ip-server-cidr-not-matching", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    env = {"HTTPS_PROXY": lab.http_proxy.url, "NO_PROXY": "192.168.0.0/16,10.0.0.2/32,fd00::/8"}
    return _env_case(lab, d, env, server=f"https://10.0.0.1:{lab.port}", target="10.0.0.1")


@variant("env-proxy-dead-loopback-never-proxied", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    # Go never proxies 127.0.0.1 or localhost from the environment; curl does, so
    # the curl step runs with NO_PROXY set for it (what a curl user must do).
    env = {"HTTPS_PROXY": f"http://127.0.0.1:{lab.dead_port}"}
    return simple(lab, d, cluster(lab), env=env, curl_env={**env, "NO_PROXY": "127.0.0.1"})


@variant("env-proxy-localhost-never-proxied", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    env = {"HTTPS_PROXY": lab.http_proxy.url}
    body = cluster(lab, server=f"https://localhost:{lab.port}")
    return simple(
        lab, d, body, env=env, not_via=lab.http_proxy, curl_env={**env, "NO_PROXY": "localhost"}
    )


@variant("env-http-proxy-not-for-https", "proxy", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return _env_case(lab, d, {"HTTP_PROXY": lab.http_proxy.url})


@variant("env-no-proxy-dot-suffix", "proxy", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return _env_case(lab, d, {"HTTPS_PROXY": lab.http_proxy.url, "NO_PROXY": "example.com,.svc"})


@variant("env-no-proxy-bare-suffix", "proxy", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return _env_case(lab, d, {"HTTPS_PROXY": lab.http_proxy.url, "NO_PROXY": "default.svc"})


@variant("env-no-proxy-star", "proxy", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return _env_case(lab, d, {"HTTPS_PROXY": lab.http_proxy.url, "NO_PROXY": "*"})


@variant("env-no-proxy-host-and-port", "proxy", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    env = {"HTTPS_PROXY": lab.http_proxy.url, "NO_PROXY": f"{SVC}:{lab.port}"}
    return _env_case(lab, d, env)


@variant("env-no-proxy-cidr", "proxy", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    env = {"HTTPS_PROXY": lab.http_proxy.url, "NO_PROXY": "10.0.0.0/8"}
    return _env_case(lab, d, env, server=f"https://10.0.0.1:{lab.port}", target="10.0.0.1")


@variant("proxy-url-with-credentials", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    url = lab.http_proxy.url.replace("http://", "http://user:p%40ss@")
    body = cluster(lab, server=_svc(lab), proxy_url=url)
    return simple(lab, d, body, via=(lab.http_proxy, f"{SVC}:{lab.port}"))


@variant("env-https-proxy-without-scheme", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    return _env_case(lab, d, {"HTTPS_PROXY": lab.http_proxy.address})


@variant("env-https-proxy-uppercase-wins", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    # Go reads HTTPS_PROXY before https_proxy; curl the other way round, so curl
    # gets only the one that Go used.
    good, dead = lab.http_proxy.url, f"http://127.0.0.1:{lab.dead_port}"
    case = _env_case(lab, d, {"HTTPS_PROXY": good, "https_proxy": dead})
    return Case(**{**case.__dict__, "curl_env": {"HTTPS_PROXY": good}})


@variant("env-no-proxy-lowercase", "proxy", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return _env_case(lab, d, {"HTTPS_PROXY": lab.http_proxy.url, "no_proxy": SVC})


@variant("env-no-proxy-spaces-and-case", "proxy", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    env = {"HTTPS_PROXY": lab.http_proxy.url, "NO_PROXY": "example.com , KUBERNETES.Default.SVC "}
    return _env_case(lab, d, env)


@variant("proxy-url-socks5h-scheme", "proxy", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    # clientcmd takes http, https and socks5 only (socks5h is for the env file's curl).
    url = lab.socks_proxy.url.replace("socks5:", "socks5h:")
    return simple(lab, d, cluster(lab, server=_svc(lab), proxy_url=url))


def _auth_proxy_url(lab: Lab, userinfo: str) -> str:
    return f"http://{userinfo}@{lab.auth_proxy.address}"


@variant("proxy-url-proxy-wants-credentials", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    # Percent-encoded in the URL, sent decoded in Proxy-Authorization (as Go does).
    body = cluster(lab, server=_svc(lab), proxy_url=_auth_proxy_url(lab, "conform:p%40ss%3Aw"))
    return simple(lab, d, body, via=(lab.auth_proxy, f"{SVC}:{lab.port}"))


@variant("env-https-proxy-wants-credentials", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    body = cluster(lab, server=_svc(lab))
    env = {"HTTPS_PROXY": _auth_proxy_url(lab, "conform:p%40ss%3Aw")}
    return simple(lab, d, body, env=env, via=(lab.auth_proxy, f"{SVC}:{lab.port}"))


@variant("proxy-url-wrong-proxy-credentials", "proxy", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    body = cluster(lab, server=_svc(lab), proxy_url=_auth_proxy_url(lab, "conform:wrong"))
    return simple(lab, d, body)


@variant("proxy-url-no-proxy-credentials", "proxy", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    body = cluster(lab, server=_svc(lab), proxy_url=f"http://{lab.auth_proxy.address}")
    return simple(lab, d, body)


@variant("proxy-url-socks5-wants-credentials", "proxy")
def _(lab: Lab, d: Path, ns: str) -> Case:
    url = f"socks5://conform:p%40ss%3Aw@{lab.socks_auth_proxy.address}"
    body = cluster(lab, server=_svc(lab), proxy_url=url)
    return simple(lab, d, body, via=(lab.socks_auth_proxy, f"{SVC}:{lab.port}"))


@variant("proxy-url-socks5-wrong-credentials", "proxy", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    url = f"socks5://conform:wrong@{lab.socks_auth_proxy.address}"
    return simple(lab, d, cluster(lab, server=_svc(lab), proxy_url=url))
