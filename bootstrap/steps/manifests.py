"""Render the objects bootstrap-token applies from the YAML templates in manifests/.

The templates live in the top-level `manifests/`; the wheel ships them as
`bootstrap/_manifests/*.yaml` (a package-dir mapping in pyproject.toml, no symlink). Rendering
is pure: load a template, fill in names, return a plain dict ready to POST.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

MANAGED_BY = ("app.kubernetes.io/managed-by", "bootstrap-token")
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
SA_LABEL = "bootstrap-token/service-account"
# The lease (--ttl): when `sweep` may delete the object, RFC 3339 in UTC. Only ever set on
# an object the run itself created (see docs/lifecycle.md#leases---ttl-and-sweep).
LEASE_ANNOTATION = "bootstrap-token/expires-at"


@cache
def template(name: str) -> dict[str, Any]:
    filename = f"{name}.yaml"
    here = Path(__file__).resolve().parents[1]  # bootstrap/
    for candidate in (here / "_manifests" / filename, here.parent / "manifests" / filename):
        # Installed from a wheel or an sdist, then a checkout (editable install, or
        # run from the source tree): plain files, read without importlib.resources,
        # whose import (zipfile...) would cost a plain run more than the read.
        if candidate.is_file():
            text = candidate.read_text("utf-8")
            break
    else:  # inside a zip (a zipapp): only importlib.resources can read it
        from importlib import resources

        packaged = resources.files("bootstrap").joinpath("_manifests").joinpath(filename)
        text = packaged.read_text("utf-8")
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


def with_lease(body: dict[str, Any], lease: str | None) -> dict[str, Any]:
    """`body` (a new object's manifest) carrying the lease annotation, when there is one."""
    if lease is not None:
        body.setdefault("metadata", {}).setdefault("annotations", {})[LEASE_ANNOTATION] = lease
    return body


def lease_of(body: Mapping[str, Any]) -> str | None:
    """The lease annotation of an object as text (not checked), or None."""
    metadata = body.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    value = annotations.get(LEASE_ANNOTATION) if isinstance(annotations, Mapping) else None
    return value if isinstance(value, str) else None


def is_managed(body: dict[str, Any]) -> bool:
    """Whether bootstrap-token created this object (revoke touches nothing else)."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY[0]) == MANAGED_BY[1])


# --- names in URL paths, and which existing objects are ours ----------------------------
# Pure rules: revoke, rotate and issue ask them before deleting or reusing anything, and
# each returns the reason an object must be left alone (None: it is ours to touch).


def segment(name: str) -> str:
    """`name` as one URL path segment. Names are validated before any request, but a
    name must never be able to add a query (`?dryRun=All`) or another segment."""
    return quote(name, safe=":")


def role_name_problem(name: str) -> str | None:
    """Why `name` cannot be a Role/ClusterRole name, or None.

    The API server validates RBAC names as path segments: anything but empty, `.`,
    `..`, and names holding `/` or `%` (so `system:auth-delegator` is fine, and so
    are dots and capitals). On top of that, whitespace, control characters, `?` and
    `#` are refused: the server would take some of them, but no real role name holds
    them and they are a typo or an attempt to rewrite the request URL.
    """
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return f"{name!r} cannot be an object name"
    for char in "/%":
        if char in name:
            return f"it contains {char!r}, which the API server refuses in RBAC names"
    for char in "?#":
        if char in name:
            return f"it contains {char!r}, which would end the URL path"
    if any(c.isspace() or not c.isprintable() for c in name):
        return "it contains whitespace or control characters"
    return None


def not_ours(secret: dict[str, Any], service_account: str, *, need_label: bool) -> str | None:
    """Why token Secret `secret` is not one of ServiceAccount `service_account`'s, or None.

    `need_label`: only a Secret bootstrap-token created may be deleted; a hand-made
    token Secret of the same ServiceAccount (the docs' recipe) may still be reused.
    """
    if need_label and not is_managed(secret):
        return "was not created by bootstrap-token"
    if secret.get("type") != TOKEN_SECRET_TYPE:
        return f"has type {secret.get('type')!r}, not a service-account token"
    owner = _annotations(secret).get(SA_NAME_ANNOTATION)
    if owner != service_account:
        return f"belongs to ServiceAccount {owner!r}, not {service_account!r}"
    return None


def stale(secret: dict[str, Any], service_account: str, uid: str | None) -> str | None:
    """Why a token Secret naming `service_account` does not belong to the live one
    (UID `uid`, None when it does not exist), or None. The token of such a Secret no
    longer authenticates, and the token controller deletes the Secret itself. A
    Secret the controller has not stamped with a UID yet belongs to the live one."""
    if uid is None:
        return f"names ServiceAccount {service_account!r}, which does not exist"
    owner_uid = _annotations(secret).get(SA_UID_ANNOTATION)
    if owner_uid and owner_uid != uid:
        return (
            f"belongs to an earlier ServiceAccount {service_account!r} (uid {owner_uid}, "
            f"the live one is {uid})"
        )
    return None


def other_subjects(binding: dict[str, Any], namespace: str, service_account: str) -> list[str]:
    """The subjects of a (Cluster)RoleBinding other than this ServiceAccount, as text."""
    ours = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    others = []
    for subject in binding.get("subjects") or []:
        if {k: subject.get(k) for k in ours} == ours:
            continue
        where = f"{subject.get('namespace')}/" if subject.get("namespace") else ""
        others.append(f"{subject.get('kind')} {where}{subject.get('name')}")
    return others


def _annotations(body: dict[str, Any]) -> dict[str, Any]:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return annotations if isinstance(annotations, dict) else {}
