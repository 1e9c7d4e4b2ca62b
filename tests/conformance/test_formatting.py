"""Property: however a kubeconfig is written (JSON or YAML, key order, quoting,
flow or block, comments, base64 wrapped over lines, CRLF, BOM), bootstrap-token
selects the same server, CA and user as kubectl. The oracle is
`kubectl config view --raw --minify -o json` (no cluster call); the tool's side is
its own loading path (`run.load_target`), in process, so 50 examples take seconds."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conformance.render import Style, render

CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n" + bytes(range(256)) * 3 + b"\n").decode()
SERVERS = [
    "https://127.0.0.1:6443",
    "https://kubernetes.default.svc:443/prefix",
    "https://[::1]:8443",
]
NAMES = ["dev", "prod", "staging-eu", "a.b.c", "kind-kind"]
# Strings YAML could take for something else unless quoted right.
TOKENS = [
    "abc.def_ghi",
    "a: b",
    "x #y",
    "it's",
    'say "hi"',
    "yes",
    "null",
    "0123",
    "~",
    "ü-ñ",
    "- x",
]

styles = st.builds(
    Style,
    format=st.sampled_from(["yaml", "json"]),
    indent=st.sampled_from([0, 2, 4, -1]),
    keys=st.sampled_from(["", "'", '"']),
    values=st.sampled_from(["", "'", '"']),
    flow_from=st.sampled_from([0, 1, 2, 3, 99]),
    comments=st.booleans(),
    marker=st.booleans(),
    wrap=st.sampled_from([0, 0, 60, 64, 76]),
    order=st.sampled_from(["as-is", "sorted", "reversed"]),
    crlf=st.booleans(),
    bom=st.booleans(),
)


@st.composite
def kubeconfigs(draw: st.DrawFn) -> dict[str, Any]:
    """Several clusters, users and contexts; every context uses the chosen cluster,
    so only current-context decides which user kubectl and the tool take."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    clusters = [
        {
            "name": n,
            "cluster": {"server": draw(st.sampled_from(SERVERS)), "certificate-authority-data": CA},
        }
        for n in names
    ]
    users = []
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["token", "cert", "files"]))
        body: dict[str, Any] = {
            "token": {"token": draw(st.sampled_from(TOKENS))},
            "cert": {
                "client-certificate-data": base64.b64encode(b"crt%d" % i * 40).decode(),
                "client-key-data": base64.b64encode(b"key%d" % i * 40).decode(),
            },
            "files": {"client-certificate": f"/etc/k/{i}.crt", "client-key": f"/etc/k/{i}.key"},
        }[kind]
        users.append({"name": f"user-{i}", "user": body})
    chosen = draw(st.sampled_from(names))
    contexts = [
        {"name": f"ctx-{u['name']}", "context": {"cluster": chosen, "user": u["name"]}}
        for u in users
    ]
    current = draw(st.sampled_from(contexts))["name"]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "users": users,
        "contexts": contexts,
        "current-context": current,
    }


def kubectl_view(path: Path) -> dict[str, Any]:
    process = subprocess.run(
        ["kubectl", "config", "view", "--raw", "--minify", "-o", "json", "--kubeconfig", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert process.returncode == 0, process.stderr
    view: dict[str, Any] = json.loads(process.stdout)
    return view


def _decoded(user: dict[str, Any]) -> dict[str, Any]:
    return {k: base64.b64decode(v) if k.endswith("-data") else v for k, v in user.items()}


# No shrinking: each example costs a kubectl run, and the example as drawn is readable.
@settings(
    max_examples=50,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(document=kubeconfigs(), style=styles)
def test_any_rendering_selects_what_kubectl_selects(
    document: dict[str, Any], style: Style, tmp_path_factory: Any
) -> None:
    from bootstrap import run

    path = tmp_path_factory.mktemp("render") / "config"
    path.write_bytes(render(document, style).encode())
    view = kubectl_view(path)
    cluster_name = view["clusters"][0]["name"]
    target = run.load_target(
        run.Options(cluster=cluster_name, kubeconfig=str(path)), {}, path.parent
    )
    assert target.server.rstrip("/") == view["clusters"][0]["cluster"]["server"].rstrip("/")
    assert target.ca_data == base64.b64decode(
        view["clusters"][0]["cluster"]["certificate-authority-data"]
    )
    assert target.context == view["current-context"]
    assert target.user_name == view["users"][0]["name"]
    assert _decoded(dict(target.user)) == _decoded(view["users"][0]["user"])
