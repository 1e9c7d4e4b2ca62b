"""Property: however a kubeconfig is written (JSON or YAML, key order, quoting,
flow or block, comments, base64 wrapped over lines, CRLF, BOM), bootstrap-token
selects the same server, CA and user as kubectl. The oracle is
`kubectl config view --raw --minify -o json` (no cluster call); the tool's side is
its own loading path (`run.load_target`), in process, so 50 examples take seconds."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, event, given, settings
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


def kubectl_view(path: Path | None, env: dict[str, str] | None = None) -> dict[str, Any]:
    by_flag = ["--kubeconfig", str(path)] if path else []
    process = subprocess.run(
        ["kubectl", "config", "view", "--raw", "--minify", "-o", "json", *by_flag],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})},
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


def _decoy(section: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The same name, other content: a later file's entry that must lose."""
    twin = copy.deepcopy(entry)
    body = twin[{"clusters": "cluster", "users": "user", "contexts": "context"}[section]]
    if section == "clusters":
        body["server"] = "https://decoy.example:1"
    elif section == "users":
        twin["user"] = {"token": "decoy-token"}
    else:
        body["user"] = "decoy-user"
    return twin


@st.composite
def split_kubeconfigs(draw: st.DrawFn) -> list[tuple[dict[str, Any], Style]]:
    """One kubeconfig spread over 1-3 files, each in its own style; later files may
    define the same names (and current-context) differently, and must lose."""
    document = draw(kubeconfigs())
    count = draw(st.integers(1, 3))
    files: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Config"} for _ in range(count)]
    for section in ("clusters", "users", "contexts"):
        for entry in document[section]:
            first = draw(st.integers(0, count - 1))
            files[first].setdefault(section, []).append(entry)
            if first < count - 1 and draw(st.booleans()):
                later = draw(st.integers(first + 1, count - 1))
                files[later].setdefault(section, []).append(_decoy(section, entry))
    home = draw(st.integers(0, count - 1))
    files[home]["current-context"] = document["current-context"]
    for later in range(home + 1, count):
        if draw(st.booleans()):
            files[later]["current-context"] = "decoy-context"
    return [(f, draw(styles)) for f in files]


@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(parts=split_kubeconfigs())
def test_any_split_over_kubeconfig_files_merges_like_kubectl(
    parts: list[tuple[dict[str, Any], Style]], tmp_path_factory: Any
) -> None:
    from bootstrap import run

    directory = tmp_path_factory.mktemp("split")
    paths = []
    for index, (document, style) in enumerate(parts):
        path = directory / f"config-{index}"
        path.write_bytes(render(document, style).encode())
        paths.append(str(path))
    environ = {"KUBECONFIG": os.pathsep.join(paths)}
    event(f"{len(parts)} files")
    texts = "".join(render(d, Style(format="json")) for d, _ in parts)
    event("with decoys" if "decoy" in texts else "without decoys")
    view = kubectl_view(None, environ)
    cluster_name = view["clusters"][0]["name"]
    target = run.load_target(run.Options(cluster=cluster_name), environ, directory)
    assert target.server.rstrip("/") == view["clusters"][0]["cluster"]["server"].rstrip("/")
    assert target.context == view["current-context"]
    assert target.user_name == view["users"][0]["name"]
    assert _decoded(dict(target.user)) == _decoded(view["users"][0]["user"])
