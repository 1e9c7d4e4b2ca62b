"""Revoke: delete what bootstrap-token created, and nothing else.

Deleting a token Secret revokes its legacy token (the authenticator checks that
the Secret still exists). With `everything`, the ServiceAccount and the RBAC
bindings go too, but only objects carrying the label
`app.kubernetes.io/managed-by: bootstrap-token`: a ServiceAccount that existed
before (such as `default`) is never deleted.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

from bootstrap import manifests
from bootstrap.apply import rotated_secrets
from bootstrap.client import Api
from bootstrap.errors import ConflictError, NotFoundError

log = logging.getLogger("bootstrap")

RBAC = "/apis/rbac.authorization.k8s.io/v1"


def revoke(
    api: Api,
    namespace: str,
    service_account: str,
    secret: str,
    everything: bool,
    keep: str | None = None,
) -> list[str]:
    """Delete the token Secret `secret` and its rotated successors (`secret-*`), except
    `keep`; with `everything` also the SA and bindings. Return what went."""
    deleted: list[str] = []
    secrets_path = f"/api/v1/namespaces/{namespace}/secrets"
    if secret != keep and _delete_if_ours(
        api, f"{secrets_path}/{secret}", f"Secret {namespace}/{secret}", "secrets", namespace
    ):
        deleted.append(f"Secret {namespace}/{secret}")
    # Rotated successors come from a LIST on our own labels: no need to GET each again.
    for item in rotated_secrets(api, namespace, secret, service_account):
        name = item["metadata"]["name"]
        if name != keep:
            _delete(api, f"{secrets_path}/{name}", f"delete secrets in namespace {namespace}")
            log.info("deleted Secret %s/%s", namespace, name)
            deleted.append(f"Secret {namespace}/{name}")
    if not everything:
        return deleted
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    selector = f"labelSelector={manifests.managed_selector()}"
    for path, resource, scope in (
        (
            f"{RBAC}/namespaces/{namespace}/rolebindings",
            "rolebindings",
            f"in namespace {namespace}",
        ),
        (f"{RBAC}/clusterrolebindings", "clusterrolebindings", "cluster-wide"),
    ):
        listing = api.get(f"{path}?{selector}", f"list {resource} {scope}")
        for item in listing.get("items") or []:
            if subject in (item.get("subjects") or []) and manifests.is_managed(item):
                name = item["metadata"]["name"]
                _delete(api, f"{path}/{name}", f"delete {resource} {scope}")
                deleted.append(f"{item.get('kind', resource)} {name}")
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}"
    where = f"ServiceAccount {namespace}/{service_account}"
    if _delete_if_ours(api, path, where, "serviceaccounts", namespace, strict=False):
        deleted.append(where)
    return deleted


def _delete_if_ours(
    api: Api, path: str, where: str, resource: str, namespace: str, strict: bool = True
) -> bool:
    try:
        body: dict[str, Any] = api.get(path, f"get {resource} in namespace {namespace}")
    except NotFoundError:
        log.info("%s does not exist (already revoked?)", where)
        return False
    if not manifests.is_managed(body):
        if strict:
            raise ConflictError(f"{where} was not created by bootstrap-token; it is left alone")
        log.info("%s was not created by bootstrap-token; kept", where)
        return False
    _delete(api, path, f"delete {resource} in namespace {namespace}")
    log.info("deleted %s", where)
    return True


def _delete(api: Api, path: str, what: str) -> None:
    with suppress(NotFoundError):  # gone already: the goal is reached
        api.delete(path, what)
