"""Area 6, lenient parsing: the same admin kubeconfig written as JSON and YAML in
the styles people and tools produce, with odd encodings, and YAML features
(anchors, merge keys, duplicate keys) whose meaning kubectl defines."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conformance.cases import ADMIN, Case, admin_user, cluster, config, variant, write
from tests.conformance.conftest import Lab
from tests.conformance.render import Style, render

STYLES = {
    "json-compact": Style(format="json", indent=0),
    "json-pretty": Style(format="json", indent=4),
    "json-tabs": Style(format="json", indent=-1),
    "json-base64-wrapped": Style(format="json", wrap=76),
    "yaml-flow": Style(flow_from=0),
    "yaml-flow-lists": Style(flow_from=2, keys="'"),
    "yaml-double-quoted-keys-and-values": Style(keys='"', values='"'),
    "yaml-single-quoted": Style(keys="'", values="'"),
    "yaml-comments-and-document-marker": Style(comments=True, marker=True),
    "yaml-base64-wrapped-64": Style(wrap=64),
    "yaml-sorted-keys": Style(order="sorted"),
    "yaml-reversed-keys": Style(order="reversed", values='"'),
    "yaml-crlf": Style(crlf=True, wrap=64),
    "json-crlf": Style(format="json", crlf=True),
    "yaml-utf8-bom": Style(bom=True),
}


def _styled(name: str, style: Style) -> None:
    @variant(f"format-{name}", "parsing")
    def _(lab: Lab, d: Path, ns: str) -> Case:
        text = render(config(cluster(lab), admin_user(lab)), style)
        path = d / "config"
        path.write_bytes(text.encode())
        return Case(kubeconfig=path, who=ADMIN)


for _name, _style in STYLES.items():
    _styled(_name, _style)


def _admin_yaml(lab: Lab) -> tuple[str, str, str]:
    user = admin_user(lab)
    return lab.server, user["client-certificate-data"], user["client-key-data"]


@variant("format-yaml-anchors-and-aliases", "parsing")
def _(lab: Lab, d: Path, ns: str) -> Case:
    server, crt, key = _admin_yaml(lab)
    ca = cluster(lab)["certificate-authority-data"]
    text = f"""apiVersion: v1
kind: Config
clusters:
- name: template
  cluster: &dev
    server: {server}
    certificate-authority-data: {ca}
- name: c
  cluster: *dev
users:
- name: u
  user:
    client-certificate-data: &crt {crt}
    client-key-data: {key}
- name: copy
  user:
    client-certificate-data: *crt
contexts:
- {{name: ctx, context: {{cluster: c, user: u}}}}
current-context: ctx
"""
    return Case(kubeconfig=write(d / "config", text), who=ADMIN)


@variant("format-yaml-merge-key", "parsing")
def _(lab: Lab, d: Path, ns: str) -> Case:
    server, crt, key = _admin_yaml(lab)
    ca = cluster(lab)["certificate-authority-data"]
    text = f"""apiVersion: v1
kind: Config
clusters:
- name: base
  cluster: &base
    server: https://127.0.0.1:1
    certificate-authority-data: {ca}
- name: c
  cluster:
    <<: *base
    server: {server}
users: [{{name: u, user: {{client-certificate-data: {crt}, client-key-data: {key}}}}}]
contexts: [{{name: ctx, context: {{cluster: c, user: u}}}}]
current-context: ctx
"""
    return Case(kubeconfig=write(d / "config", text), who=ADMIN)


@variant("format-yaml-duplicate-key-last-wins", "parsing")
def _(lab: Lab, d: Path, ns: str) -> Case:
    server, crt, key = _admin_yaml(lab)
    ca = cluster(lab)["certificate-authority-data"]
    text = f"""clusters:
- name: c
  cluster:
    server: https://127.0.0.1:1
    certificate-authority-data: {ca}
    server: {server}
users: [{{name: u, user: {{client-certificate-data: {crt}, client-key-data: {key}}}}}]
contexts: [{{name: ctx, context: {{cluster: c, user: u}}}}]
current-context: ctx
"""
    return Case(kubeconfig=write(d / "config", text), who=ADMIN)


@variant("format-unknown-fields-and-extensions", "parsing")
def _(lab: Lab, d: Path, ns: str) -> Case:
    document = config(cluster(lab), admin_user(lab))
    document["preferences"] = {"colors": True}
    document["x-vendor"] = {"anything": [1, 2]}
    document["clusters"][0]["cluster"]["extensions"] = [{"name": "vendor", "extension": {"a": 1}}]
    document["users"][0]["user"]["extensions"] = [{"name": "vendor", "extension": "x"}]
    return Case(kubeconfig=write(d / "config", document), who=ADMIN)


@variant("format-utf16-bom", "parsing")
def _(lab: Lab, d: Path, ns: str) -> Case:
    path = d / "config"
    path.write_bytes(render(config(cluster(lab), admin_user(lab)), Style()).encode("utf-16"))
    return Case(kubeconfig=path, who=ADMIN)


@variant("format-invalid-yaml", "parsing", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    text = render(config(cluster(lab), admin_user(lab)), Style()) + "users: [unclosed\n"
    return Case(kubeconfig=write(d / "config", text))


@variant("format-tab-indented-yaml", "parsing", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    text = render(config(cluster(lab), admin_user(lab)), Style()).replace("  ", "\t")
    return Case(kubeconfig=write(d / "config", text))


@variant("format-base64-with-spaces", "parsing", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    body = cluster(lab)
    data = body["certificate-authority-data"]
    body["certificate-authority-data"] = data[:40] + " " + data[40:]
    return Case(kubeconfig=write(d / "config", config(body, admin_user(lab))))


@variant("format-yaml-yes-is-true", "parsing")
def _(lab: Lab, d: Path, ns: str) -> Case:
    text = render(config(cluster(lab, certificate_authority_data=None), admin_user(lab)), Style())
    text = re.sub(r"( +)server:", r"\1insecure-skip-tls-verify: yes\n\1server:", text, count=1)
    return Case(kubeconfig=write(d / "config", text), who=ADMIN)


@variant("format-quoted-true-is-not-a-bool", "parsing", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    text = render(config(cluster(lab, certificate_authority_data=None), admin_user(lab)), Style())
    text = re.sub(r"( +)server:", r"\1insecure-skip-tls-verify: 'true'\n\1server:", text, count=1)
    return Case(kubeconfig=write(d / "config", text))


@variant("format-numeric-cluster-name", "parsing", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    text = render(config(cluster(lab), admin_user(lab), name="c"), Style())
    text = text.replace("name: c\n", "name: 123\n").replace("cluster: c\n", "cluster: 123\n")
    return Case(kubeconfig=write(d / "config", text), cluster="123")


# kubectl decodes into typed structs: a value of the wrong type is an error, not a guess.


@variant("format-as-groups-string-not-list", "parsing", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    user = {**admin_user(lab), "as": "conform-someone", "as-groups": "system:masters"}
    return Case(kubeconfig=write(d / "config", config(cluster(lab), user)))


@variant("format-token-is-a-number", "parsing", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    return Case(kubeconfig=write(d / "config", config(cluster(lab), {"token": 12345})))


@variant("format-exec-args-string-not-list", "parsing", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    body = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "/bin/true",
        "args": "x",
        "interactiveMode": "Never",
    }
    return Case(kubeconfig=write(d / "config", config(cluster(lab), {"exec": body})))


@variant("format-clusters-mapping-not-list", "parsing", accepts=False, exit_code=3)
def _(lab: Lab, d: Path, ns: str) -> Case:
    document = config(cluster(lab), admin_user(lab))
    document["clusters"] = {"c": document["clusters"][0]}
    return Case(kubeconfig=write(d / "config", document))
