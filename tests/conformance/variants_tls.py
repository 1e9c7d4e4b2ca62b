"""Areas 2 and 8: `tls-server-name`, the CA in every form kubectl takes (file,
relative file, text around the PEM block, bundles), TLS verified like Go (the dev
CA has no keyUsage extension; Python 3.13 would reject it with its default
strict flags) and a client certificate chain through an intermediate CA."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.cases import (
    Case,
    b64,
    cluster,
    config,
    simple,
    variant,
    write,
)
from tests.conformance.conftest import Lab

# --- tls-server-name ------------------------------------------------------------


def _forwarded(lab: Lab) -> str:
    return f"https://{lab.forwarder.address}"


@variant("tls-server-name-via-forwarder", "tls-server-name")
def _(lab: Lab, d: Path, ns: str) -> Case:
    # 127.0.0.2 is not in the serving certificate; kubernetes.default is.
    body = cluster(lab, server=_forwarded(lab), tls_server_name="kubernetes.default")
    return simple(lab, d, body, via=(lab.forwarder, f"127.0.0.1:{lab.port}"))


@variant("tls-server-name-full-service-name", "tls-server-name")
def _(lab: Lab, d: Path, ns: str) -> Case:
    body = cluster(lab, tls_server_name="kubernetes.default.svc.cluster.local")
    return simple(lab, d, body)


@variant("tls-server-name-with-proxy-url", "tls-server-name")
def _(lab: Lab, d: Path, ns: str) -> Case:
    body = cluster(
        lab, server=_forwarded(lab), tls_server_name="kubernetes", proxy_url=lab.http_proxy.url
    )
    return simple(lab, d, body, via=(lab.http_proxy, lab.forwarder.address))


@variant("tls-server-name-missing-for-forwarder", "tls-server-name", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab, server=_forwarded(lab)))


@variant("tls-server-name-not-in-cert", "tls-server-name", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab, tls_server_name="evil.example"))


# --- the CA ---------------------------------------------------------------------------


@variant("ca-server-by-hostname", "ca")
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab, server=f"https://localhost:{lab.port}"))


@variant("ca-file-absolute", "ca")
def _(lab: Lab, d: Path, ns: str) -> Case:
    body = cluster(lab, certificate_authority_data=None, certificate_authority=str(lab.ca_file))
    return simple(lab, d, body)


@variant("ca-file-relative-run-elsewhere", "ca")
def _(lab: Lab, d: Path, ns: str) -> Case:
    (d / "pki").mkdir()
    (d / "pki" / "ca.pem").write_bytes(lab.ca_pem)
    (d / "elsewhere").mkdir()
    body = cluster(lab, certificate_authority_data=None, certificate_authority="pki/ca.pem")
    return simple(lab, d, body, cwd=d / "elsewhere")


@variant("ca-file-text-around-pem", "ca")
def _(lab: Lab, d: Path, ns: str) -> Case:
    ca = d / "ca.txt"
    ca.write_bytes(b"Issuer: dev-cluster-ca\nsome notes\n\n" + lab.ca_pem + b"\ntrailing words\n")
    return simple(
        lab, d, cluster(lab, certificate_authority_data=None, certificate_authority=str(ca))
    )


@variant("ca-bundle-file-other-ca-first", "ca")
def _(lab: Lab, d: Path, ns: str) -> Case:
    bundle = d / "bundle.pem"
    bundle.write_bytes(lab.material.other_ca.crt.read_bytes() + lab.ca_pem)
    return simple(
        lab, d, cluster(lab, certificate_authority_data=None, certificate_authority=str(bundle))
    )


@variant("ca-bundle-data-dev-ca-first", "ca")
def _(lab: Lab, d: Path, ns: str) -> Case:
    data = lab.ca_pem + lab.material.other_ca.crt.read_bytes()
    return simple(lab, d, cluster(lab, certificate_authority_data=b64(data)))


@variant("ca-data-and-file-both-set", "ca", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    # kubectl refuses: "certificate-authority-data and certificate-authority are both specified"
    body = cluster(lab, certificate_authority=str(lab.material.other_ca.crt))
    return simple(lab, d, body)


@variant("ca-pem-crlf", "ca")
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(
        lab, d, cluster(lab, certificate_authority_data=b64(lab.ca_pem.replace(b"\n", b"\r\n")))
    )


@variant("ca-insecure-skip-tls-verify", "ca")
def _(lab: Lab, d: Path, ns: str) -> Case:
    body = cluster(lab, certificate_authority_data=None, insecure_skip_tls_verify=True)
    return simple(lab, d, body)


@variant("ca-other-ca", "ca", accepts=False, exit_code=4)
def _(lab: Lab, d: Path, ns: str) -> Case:
    other = lab.material.other_ca.crt.read_bytes()
    return simple(lab, d, cluster(lab, certificate_authority_data=b64(other)))


@variant("ca-file-missing", "ca", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    body = cluster(lab, certificate_authority_data=None, certificate_authority=str(d / "nope.crt"))
    return simple(lab, d, body)


@variant("ca-data-not-a-certificate", "ca", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab, certificate_authority_data=b64("not a certificate\n")))


# --- client certificate chains ------------------------------------------------------


@variant("cert-chain-leaf-plus-intermediate", "credentials")
def _(lab: Lab, d: Path, ns: str) -> Case:
    chain = lab.material.chain_client
    user = {
        "client-certificate-data": b64(chain.crt.read_bytes()),
        "client-key-data": b64(chain.key.read_bytes()),
    }
    return simple(lab, d, cluster(lab), user, who="chain-admin")


@variant("cert-chain-leaf-without-intermediate", "credentials", accepts=False, exit_code=5)
def _(lab: Lab, d: Path, ns: str) -> Case:
    leaf = lab.material.chain_leaf_only
    user = {"client-certificate": str(leaf.crt), "client-key": str(leaf.key)}
    return simple(lab, d, cluster(lab), user)


# --- Python 3.13: the dev CA without keyUsage must still verify (as in Go) ---------


@variant("py313-ca-without-key-usage", "tls-like-go", py313=True)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab))


@variant("py313-ca-file-bundle", "tls-like-go", py313=True)
def _(lab: Lab, d: Path, ns: str) -> Case:
    bundle = d / "bundle.pem"
    bundle.write_bytes(lab.material.other_ca.crt.read_bytes() + lab.ca_pem)
    return simple(
        lab, d, cluster(lab, certificate_authority_data=None, certificate_authority=str(bundle))
    )


@variant("py313-tls-server-name", "tls-like-go", py313=True)
def _(lab: Lab, d: Path, ns: str) -> Case:
    body = cluster(lab, server=_forwarded(lab), tls_server_name="kubernetes.default")
    return simple(lab, d, body, via=(lab.forwarder, f"127.0.0.1:{lab.port}"))


@variant("py313-proxy-url-https", "tls-like-go", py313=True)
def _(lab: Lab, d: Path, ns: str) -> Case:
    server = f"https://kubernetes.default.svc:{lab.port}"
    body = cluster(lab, server=server, proxy_url=lab.https_proxy.url)
    return simple(lab, d, body, via=(lab.https_proxy, f"kubernetes.default.svc:{lab.port}"))


@variant("py313-token-user", "tls-like-go", py313=True)
def _(lab: Lab, d: Path, ns: str) -> Case:
    document = config(cluster(lab), {"token": lab.sa_token})
    return Case(
        kubeconfig=write(d / "config", document),
        who="system:serviceaccount:conformance-system:admin",
    )


@variant("ca-file-tilde-is-not-home", "ca")
def _(lab: Lab, d: Path, ns: str) -> Case:
    # client-go never expands "~" in kubeconfig paths: <kubeconfig dir>/~/ca.crt.
    (d / "~").mkdir()
    (d / "~" / "ca.crt").write_bytes(lab.ca_pem)
    return simple(
        lab, d, cluster(lab, certificate_authority_data=None, certificate_authority="~/ca.crt")
    )


@variant("ca-file-tilde-only-in-home", "ca", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    home = d.parent / "home"  # the HOME every program of the variant runs with
    home.mkdir(exist_ok=True)
    (home / "ca.crt").write_bytes(lab.ca_pem)
    return simple(
        lab, d, cluster(lab, certificate_authority_data=None, certificate_authority="~/ca.crt")
    )


@variant("ca-server-uppercase-hostname", "ca")
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab, server=f"https://LocalHost:{lab.port}"))


@variant("ca-server-without-scheme", "ca", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return simple(lab, d, cluster(lab, server=lab.server.removeprefix("https://")))


@variant("ca-file-is-a-directory", "ca", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    (d / "ca.d").mkdir()
    (d / "ca.d" / "ca.crt").write_bytes(lab.ca_pem)
    return simple(
        lab, d, cluster(lab, certificate_authority_data=None, certificate_authority=str(d / "ca.d"))
    )
