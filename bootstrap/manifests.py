"""Render the objects bootstrap-token applies from the YAML templates in manifests/.

The templates live in the top-level `manifests/`; the wheel ships them as
`bootstrap/_manifests/*.yaml` (a package-dir mapping in pyproject.toml, no symlink). Rendering
is pure: load a template, fill in names, return a plain dict ready to POST.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

MANAGED_BY = ("app.kubernetes.io/managed-by", "bootstrap-token")
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
SA_LABEL = "bootstrap-token/service-account"


@cache
def template(name: str) -> dict[str, Any]:
    filename = f"{name}.yaml"
    packaged = resources.files("bootstrap").joinpath("_manifests").joinpath(filename)
    if packaged.is_file():  # installed from a wheel or an sdist
        text = packaged.read_text("utf-8")
    else:  # a checkout (editable install, or run from the source tree)
        text = (Path(__file__).resolve().parent.parent / "manifests" / filename).read_text("utf-8")
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise ValueError(f"manifests/{name}.yaml is not a mapping")
    return document


def service_account(namespace: str, name: str) -> dict[str, Any]:
    body = copy.deepcopy(template("serviceaccount"))
    body["metadata"].update(name=name, namespace=namespace)
    return body


def token_secret(namespace: str, name: str, service_account: str, uid: str) -> dict[str, Any]:
    body = copy.deepcopy(template("token-secret"))
    body["metadata"].update(name=name, namespace=namespace)
    body["metadata"]["annotations"] = {SA_NAME_ANNOTATION: service_account, SA_UID_ANNOTATION: uid}
    body["metadata"]["labels"].update(account_labels(service_account))
    return body


def account_labels(service_account: str) -> dict[str, str]:
    """A label naming the ServiceAccount, so finding its token Secrets lists only
    those. Label values stop at 63 characters; longer names go without it."""
    return {SA_LABEL: service_account} if len(service_account) <= 63 else {}


def managed_selector(extra: dict[str, str] | None = None) -> str:
    """labelSelector (URL-encoded) for what bootstrap-token made (and `extra` labels)."""
    labels = {MANAGED_BY[0]: MANAGED_BY[1], **(extra or {})}
    return quote(",".join(f"{k}={v}" for k, v in labels.items()), safe="")


def token_secret_selector(service_account: str) -> str:
    """labelSelector (URL-encoded) for the token Secrets bootstrap-token made for an SA."""
    return managed_selector(account_labels(service_account))


def role_binding(namespace: str, service_account: str, role: str) -> dict[str, Any]:
    """A RoleBinding granting Role `role` in the ServiceAccount's namespace."""
    body = copy.deepcopy(template("rolebinding"))
    body["metadata"].update(name=f"bootstrap-token:{service_account}:{role}", namespace=namespace)
    body["roleRef"]["name"] = role
    body["subjects"] = [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}]
    return body


def cluster_role_binding(namespace: str, service_account: str, cluster_role: str) -> dict[str, Any]:
    """A ClusterRoleBinding granting ClusterRole `cluster_role` cluster-wide."""
    body = copy.deepcopy(template("clusterrolebinding"))
    body["metadata"]["name"] = f"bootstrap-token:{namespace}:{service_account}:{cluster_role}"
    body["roleRef"]["name"] = cluster_role
    body["subjects"] = [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}]
    return body


def is_managed(body: dict[str, Any]) -> bool:
    """Whether bootstrap-token created this object (revoke touches nothing else)."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY[0]) == MANAGED_BY[1])
