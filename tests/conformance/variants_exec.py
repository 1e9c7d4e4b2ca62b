"""Area 3: exec credential plugins, written as small Python scripts per variant.
The plugin checks what client-go promises it (KUBERNETES_EXEC_INFO's apiVersion,
`interactive`, `spec.cluster` with provideClusterInfo, its args and env) and fails
loudly, on stderr, when a promise is broken."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.conformance.cases import ADMIN, SA_ADMIN, Case, b64, cluster, config, variant, write
from tests.conformance.conftest import Lab

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"

_PLUGIN = """#!{python}
import json, os, sys
expect = json.loads({expect!r})
info = json.loads(os.environ.get("KUBERNETES_EXEC_INFO") or "null")
def fail(why):
    sys.stderr.write("conform-plugin: " + why + "\\n")
    sys.exit(1)
if info is None:
    fail("KUBERNETES_EXEC_INFO is not set")
if info.get("apiVersion") != expect["apiVersion"]:
    fail("KUBERNETES_EXEC_INFO apiVersion is %r" % info.get("apiVersion"))
if info.get("spec", {{}}).get("interactive") not in (False, None):
    fail("interactive should be false")
if sys.argv[1:] != expect["args"]:
    fail("args are %r" % sys.argv[1:])
for name, value in expect["env"].items():
    if os.environ.get(name) != value:
        fail("env %s is %r" % (name, os.environ.get(name)))
cluster = info.get("spec", {{}}).get("cluster")
if expect["cluster"] is not None:
    if not cluster:
        fail("no spec.cluster although provideClusterInfo is true")
    for key, value in expect["cluster"].items():
        if cluster.get(key) != value:
            fail("spec.cluster.%s is %r, expected %r" % (key, cluster.get(key), value))
if expect["fail"]:
    fail(expect["fail"])
print(json.dumps({{"apiVersion": expect["apiVersion"], "kind": "ExecCredential",
                   "status": expect["status"]}}))
"""


def plugin(
    path: Path,
    api_version: str,
    status: dict[str, Any],
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    cluster_info: dict[str, Any] | None = None,
    fail: str | None = None,
) -> Path:
    expect = {
        "apiVersion": api_version,
        "status": status,
        "args": args or [],
        "env": env or {},
        "cluster": cluster_info,
        "fail": fail,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_PLUGIN.format(python=sys.executable, expect=json.dumps(expect)))
    path.chmod(0o755)
    return path


def _exec_case(
    lab: Lab, d: Path, exec_body: dict[str, Any], who: str | None = None, **case: Any
) -> Case:
    document = config(cluster(lab), {"exec": exec_body})
    return Case(kubeconfig=write(d / "config", document), who=who, **case)


def _token(lab: Lab) -> dict[str, Any]:
    return {"token": lab.sa_token}


def _cert(lab: Lab) -> dict[str, Any]:
    return {
        "clientCertificateData": lab.admin.crt.read_text(),
        "clientKeyData": lab.admin.key.read_text(),
    }


@variant("exec-v1-token", "exec")
def _(lab: Lab, d: Path, ns: str) -> Case:
    command = plugin(d / "plugin", V1, _token(lab))
    return _exec_case(
        lab, d, {"apiVersion": V1, "command": str(command), "interactiveMode": "Never"}, SA_ADMIN
    )


@variant("exec-v1beta1-token", "exec")
def _(lab: Lab, d: Path, ns: str) -> Case:
    command = plugin(d / "plugin", V1BETA1, _token(lab))
    return _exec_case(lab, d, {"apiVersion": V1BETA1, "command": str(command)}, SA_ADMIN)


@variant("exec-v1-client-certificate", "exec")
def _(lab: Lab, d: Path, ns: str) -> Case:
    command = plugin(d / "plugin", V1, _cert(lab))
    return _exec_case(
        lab, d, {"apiVersion": V1, "command": str(command), "interactiveMode": "IfAvailable"}, ADMIN
    )


@variant("exec-v1beta1-client-certificate", "exec")
def _(lab: Lab, d: Path, ns: str) -> Case:
    command = plugin(d / "plugin", V1BETA1, _cert(lab))
    return _exec_case(lab, d, {"apiVersion": V1BETA1, "command": str(command)}, ADMIN)


@variant("exec-relative-command-run-elsewhere", "exec")
def _(lab: Lab, d: Path, ns: str) -> Case:
    plugin(d / "bin" / "conform-plugin", V1, _token(lab))
    (d / "elsewhere").mkdir()
    body = {"apiVersion": V1, "command": "./bin/conform-plugin", "interactiveMode": "Never"}
    return _exec_case(lab, d, body, SA_ADMIN, cwd=d / "elsewhere")


@variant("exec-args-and-env", "exec")
def _(lab: Lab, d: Path, ns: str) -> Case:
    args = ["get-token", "--cluster=dev", "with space"]
    command = plugin(
        d / "plugin", V1, _token(lab), args=args, env={"CONFORM_A": "1", "CONFORM_B": "two words"}
    )
    body = {
        "apiVersion": V1,
        "command": str(command),
        "args": args,
        "interactiveMode": "Never",
        "env": [{"name": "CONFORM_A", "value": "1"}, {"name": "CONFORM_B", "value": "two words"}],
    }
    return _exec_case(lab, d, body, SA_ADMIN)


@variant("exec-provide-cluster-info", "exec")
def _(lab: Lab, d: Path, ns: str) -> Case:
    expected = {
        "server": lab.server,
        "certificate-authority-data": b64(lab.ca_pem),
        "config": {"audience": "conformance"},
    }
    command = plugin(d / "plugin", V1, _token(lab), cluster_info=expected)
    body = {
        "apiVersion": V1,
        "command": str(command),
        "interactiveMode": "Never",
        "provideClusterInfo": True,
    }
    document = config(cluster(lab), {"exec": body})
    document["clusters"][0]["cluster"]["extensions"] = [
        {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "conformance"}}
    ]
    return Case(kubeconfig=write(d / "config", document), who=SA_ADMIN)


@variant("exec-on-path", "exec")
def _(lab: Lab, d: Path, ns: str) -> Case:
    plugin(d / "path" / "conform-credential-helper", V1, _token(lab))
    path = f"{d / 'path'}{os.pathsep}{os.environ.get('PATH', '')}"
    body = {"apiVersion": V1, "command": "conform-credential-helper", "interactiveMode": "Never"}
    return _exec_case(lab, d, body, SA_ADMIN, env={"PATH": path})


@variant("exec-missing-command-install-hint", "exec", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    hint = "install conform-login from https://example.com/conform"
    body = {
        "apiVersion": V1,
        "command": "conform-login-not-installed",
        "interactiveMode": "Never",
        "installHint": hint,
    }
    return _exec_case(lab, d, body, error_has=hint)


@variant("exec-plugin-fails", "exec", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    command = plugin(d / "plugin", V1, _token(lab), fail="session expired, run conform-login")
    body = {"apiVersion": V1, "command": str(command), "interactiveMode": "Never"}
    return _exec_case(lab, d, body, error_has="session expired, run conform-login")


@variant("exec-v1-without-interactive-mode", "exec", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    command = plugin(d / "plugin", V1, _token(lab))
    return _exec_case(lab, d, {"apiVersion": V1, "command": str(command)})


@variant("exec-unknown-api-version", "exec", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    version = "client.authentication.k8s.io/v1alpha1"
    command = plugin(d / "plugin", version, _token(lab))
    return _exec_case(
        lab, d, {"apiVersion": version, "command": str(command), "interactiveMode": "Never"}
    )


@variant("exec-plugin-prints-wrong-api-version", "exec", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    command = plugin(d / "plugin", V1, _token(lab))
    text = command.read_text().replace('{"apiVersion": expect["apiVersion"]', '{"apiVersion": "v0"')
    command.write_text(text)
    return _exec_case(
        lab, d, {"apiVersion": V1, "command": str(command), "interactiveMode": "Never"}
    )


@variant("exec-cluster-info-with-tls-name-and-proxy", "exec")
def _(lab: Lab, d: Path, ns: str) -> Case:
    server = f"https://{lab.forwarder.address}"
    expected = {"server": server, "tls-server-name": "kubernetes", "proxy-url": lab.http_proxy.url}
    command = plugin(d / "plugin", V1, _token(lab), cluster_info=expected)
    body = {
        "apiVersion": V1,
        "command": str(command),
        "interactiveMode": "Never",
        "provideClusterInfo": True,
    }
    cluster_body = cluster(
        lab, server=server, tls_server_name="kubernetes", proxy_url=lab.http_proxy.url
    )
    document = config(cluster_body, {"exec": body})
    return Case(
        kubeconfig=write(d / "config", document),
        who=SA_ADMIN,
        via=(lab.http_proxy, lab.forwarder.address),
    )


@variant("exec-plugin-prints-garbage", "exec", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    command = d / "plugin"
    command.write_text(
        f"#!{sys.executable}\nprint('Welcome! here is your token:')\nprint('{{}}')\n"
    )
    command.chmod(0o755)
    return _exec_case(
        lab, d, {"apiVersion": V1, "command": str(command), "interactiveMode": "Never"}
    )


@variant("exec-token-with-expiry", "exec")
def _(lab: Lab, d: Path, ns: str) -> Case:
    status = {**_token(lab), "expirationTimestamp": "2099-01-01T00:00:00Z"}
    command = plugin(d / "plugin", V1BETA1, status)
    return _exec_case(lab, d, {"apiVersion": V1BETA1, "command": str(command)}, SA_ADMIN)


@variant("exec-bare-command-not-searched-beside-kubeconfig", "exec", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    # Without a path separator the command is looked up on PATH only, never in the
    # kubeconfig's directory or the working directory.
    plugin(d / "conform-beside", V1, _token(lab))
    body = {"apiVersion": V1, "command": "conform-beside", "interactiveMode": "Never"}
    return _exec_case(lab, d, body)


@variant("exec-interactive-always-without-terminal", "exec", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    command = plugin(d / "plugin", V1, _token(lab))
    return _exec_case(
        lab, d, {"apiVersion": V1, "command": str(command), "interactiveMode": "Always"}
    )


@variant("exec-plugin-certificate-without-key", "exec", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    status = {"clientCertificateData": lab.admin.crt.read_text()}
    command = plugin(d / "plugin", V1, status)
    return _exec_case(
        lab, d, {"apiVersion": V1, "command": str(command), "interactiveMode": "Never"}
    )
