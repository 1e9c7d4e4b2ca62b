"""The variant registry and the small vocabulary the variant modules share.

A variant is a function that writes a kubeconfig (and plugins, CA files...) into
a directory and returns a `Case`: how to call kubectl and bootstrap-token on it,
and what only this variant can show (the proxy it must go through, the text the
error must carry). `@variant(id, accepts=...)` registers it; `accepts` is what
kubectl does with it, and the suite checks that kubectl still agrees.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conformance.conftest import Lab
from tests.conformance.relay import RelayServer


@dataclass(frozen=True)
class Case:
    kubeconfig: Path | None = None  # --kubeconfig for kubectl and the tool; else env KUBECONFIG
    env: Mapping[str, str] = field(default_factory=dict)  # KUBECONFIG, HTTPS_PROXY, NO_PROXY...
    cwd: Path | None = None  # default: the variant's directory
    cluster: str = "c"  # the tool's --cluster: the cluster of kubectl's current context
    namespace_from_context: bool = False  # the tool runs without -n
    who: str | None = None  # the user kubectl auth whoami must show, when accepted
    whoami_extra: Mapping[str, Any] = field(default_factory=dict)  # more userInfo fields
    via: tuple[RelayServer, str] | None = None  # every client must go through it to this target
    not_via: RelayServer | None = None  # must see no connection at all
    error_has: str | None = None  # refused: the tool's stderr must contain this
    python: str | None = None  # interpreter for the tool (default: the test's)
    curl_env: Mapping[str, str] | None = None  # when curl needs what Go does implicitly


Builder = Callable[[Lab, Path, str], Case]


@dataclass(frozen=True)
class Variant:
    id: str
    area: str
    accepts: bool
    build: Builder
    needs_py313: bool = False
    exit_code: int | None = None  # refused: the tool's exit code (docs/compatibility.md)


VARIANTS: list[Variant] = []


def variant(
    id: str, area: str, accepts: bool = True, py313: bool = False, exit_code: int | None = None
) -> Callable[[Builder], Builder]:
    def register(build: Builder) -> Builder:
        assert all(v.id != id for v in VARIANTS), f"duplicate variant id {id}"
        assert accepts or exit_code, f"{id}: a refused variant names the tool's exit code"
        VARIANTS.append(Variant(id, area, accepts, build, py313, exit_code))
        return build

    return register


ADMIN = "dev-admin"  # the CN of the dev cluster's admin certificate
SA_ADMIN = "system:serviceaccount:conformance-system:admin"


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def cluster(lab: Lab, **fields: Any) -> dict[str, Any]:
    """The dev cluster by IP with its CA embedded; keyword fields override (None drops)."""
    body: dict[str, Any] = {"server": lab.server, "certificate-authority-data": b64(lab.ca_pem)}
    body.update({k.replace("_", "-"): v for k, v in fields.items()})
    return {k: v for k, v in body.items() if v is not None}


def admin_user(lab: Lab) -> dict[str, Any]:
    return {
        "client-certificate-data": b64(lab.admin.crt.read_bytes()),
        "client-key-data": b64(lab.admin.key.read_bytes()),
    }


def config(
    cluster_body: Mapping[str, Any],
    user_body: Mapping[str, Any],
    namespace: str | None = None,
    name: str = "c",
) -> dict[str, Any]:
    context: dict[str, Any] = {"cluster": name, "user": "u"}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": dict(cluster_body)}],
        "users": [{"name": "u", "user": dict(user_body)}],
        "contexts": [{"name": "ctx", "context": context}],
        "current-context": "ctx",
    }


def write(path: Path, document: Mapping[str, Any] | str, style: str = "yaml") -> Path:
    """Write a kubeconfig as block YAML, JSON (`json`), or verbatim text."""
    if isinstance(document, str):
        text = document
    elif style == "json":
        text = json.dumps(document, indent=2)
    else:
        text = yaml.safe_dump(dict(document), sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def simple(
    lab: Lab,
    directory: Path,
    cluster_body: Mapping[str, Any],
    user_body: Mapping[str, Any] | None = None,
    **case: Any,
) -> Case:
    """One cluster, one user, one context: the common shape."""
    document = config(cluster_body, admin_user(lab) if user_body is None else user_body)
    case.setdefault("who", ADMIN if user_body is None else None)
    return Case(kubeconfig=write(directory / "config", document), **case)
