"""Step 3: create or reuse the ServiceAccount, then its token Secret.

Order matters: the token controller deletes a token Secret whose ServiceAccount
does not exist (or has another UID), so the ServiceAccount comes first and its
UID goes into the Secret's annotation. The Secret is never added to the
ServiceAccount's `secrets` list (legacy-token clean-up only touches those).
Running twice reuses both objects, so it yields the same token.

A legacy token is a pure function of the namespace, the ServiceAccount's name
and UID, and the Secret's name: deleting a Secret and creating it again under the
same name brings the very same token back. So `rotate` (`fresh=True`) creates a
Secret with a new name, `<base>-<random>`, and lookups find such rotated Secrets
by their managed-by label and service-account annotation.

With a dry-run `Plan`, every GET is made as usual and every create is sent with
`?dryRun=All`: the API server validates, admits and authorizes it, and stores nothing.
Each object's outcome is recorded in the plan (and logged once there).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from typing import Any

from bootstrap.errors import ApiError, AuthError, ConflictError, NotFoundError
from bootstrap.kube.client import Api
from bootstrap.steps import manifests
from bootstrap.steps.manifests import segment
from bootstrap.steps.plan import Plan

log = logging.getLogger("bootstrap")

INVALID_SINCE_LABEL = "kubernetes.io/legacy-token-invalid-since"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def apply(
    api: Api,
    namespace: str,
    service_account: str,
    secret: str | None,
    roles: tuple[str, ...] = (),
    cluster_roles: tuple[str, ...] = (),
    fresh: bool = False,
    plan: Plan | None = None,
    lease: str | None = None,
) -> dict[str, Any] | None:
    """Apply everything; return the token Secret as the server has it (None when
    `secret` is None: TokenRequest mode needs no Secret). With a dry-run `plan`, the
    creates are only checked by the server, and `plan` says what would happen.

    `lease` (--ttl: an RFC 3339 time) is stamped on every object this call creates, in
    the create itself, so the first object made already expires; an object that was
    there before (reused) is left as it is."""
    plan = plan if plan is not None else Plan()
    uid = ensure_service_account(api, namespace, service_account, plan, lease)
    ensure_bindings(api, namespace, service_account, roles, cluster_roles, plan, lease)
    if secret is None:
        return None
    account = f"ServiceAccount {namespace}/{service_account}"
    new_account = any(e.what == account and e.action == "create" for e in plan.entries)
    return ensure_token_secret(
        api,
        namespace,
        secret,
        service_account,
        uid,
        fresh,
        plan,
        new_account=new_account,
        lease=lease,
    )


def ensure_bindings(
    api: Api,
    namespace: str,
    service_account: str,
    roles: tuple[str, ...],
    cluster_roles: tuple[str, ...],
    plan: Plan | None = None,
    lease: str | None = None,
) -> None:
    """Bind the ServiceAccount to each Role / ClusterRole; reuse a binding that is already
    ours. A role that does not exist (yet) is allowed by RBAC, but warned about."""
    plan = plan if plan is not None else Plan()
    ns = segment(namespace)
    wanted = [
        (
            f"{RBAC}/namespaces/{ns}/rolebindings",
            f"in namespace {namespace}",
            manifests.with_lease(manifests.role_binding(namespace, service_account, r), lease),
            f"{RBAC}/namespaces/{ns}/roles/{segment(r)}",
            f"Role {namespace}/{r}",
        )
        for r in roles
    ] + [
        (
            f"{RBAC}/clusterrolebindings",
            "cluster-wide",
            manifests.with_lease(
                manifests.cluster_role_binding(namespace, service_account, r), lease
            ),
            f"{RBAC}/clusterroles/{segment(r)}",
            f"ClusterRole {r}",
        )
        for r in cluster_roles
    ]
    for path, scope, body, role_path, role in wanted:
        _warn_if_missing(api, role_path, role, scope)
        kind, name = body["kind"], body["metadata"]["name"]
        resource = kind.lower() + "s"
        where = f"{kind} {name}" if kind == "ClusterRoleBinding" else f"{kind} {namespace}/{name}"
        target = f"{path}/{segment(name)}"
        try:
            existing = api.get(target, f"get {resource} {scope}")
        except NotFoundError:
            try:
                created = api.post(plan.path(path), body, f"create {resource} {scope}")
                plan.record("create", where, f"grants {role}", created)
                continue
            except ConflictError:
                existing = api.get(target, f"get {resource} {scope}")
        if (
            existing.get("roleRef") != body["roleRef"]
            or existing.get("subjects") != body["subjects"]
        ):
            raise ConflictError(
                f"{where} already exists with another role or subjects; it is left alone"
            )
        plan.record("exists", where, f"grants {role}")


def _warn_if_missing(api: Api, path: str, role: str, scope: str) -> None:
    resource = "roles" if role.startswith("Role ") else "clusterroles"
    try:
        api.get(path, f"get {resource} {scope}")
    except NotFoundError:
        log.warning(
            "warning: %s does not exist (yet): the binding grants nothing until it is "
            "created; check the name",
            role,
        )
    except AuthError:  # binding needs `bind`, not `get`: not knowing is no reason to stop
        log.info("cannot check that %s exists (not allowed to read it)", role)


def ensure_service_account(
    api: Api, namespace: str, name: str, plan: Plan | None = None, lease: str | None = None
) -> str:
    """The ServiceAccount's UID, creating it first if needed (in a dry run: the UID the
    server made up for the object it did not create)."""
    plan = plan if plan is not None else Plan()
    path = f"/api/v1/namespaces/{segment(namespace)}/serviceaccounts"
    what = f"ServiceAccount {namespace}/{name}"
    created = False
    get = f"{path}/{segment(name)}", f"get serviceaccounts in namespace {namespace}"
    # Create first, read on conflict: a new account (a CI job's) costs one request, an
    # existing one two; credentials that may only read accounts fall back to reading.
    try:
        body = api.post(
            plan.path(path),
            manifests.with_lease(manifests.service_account(namespace, name), lease),
            f"create serviceaccounts in namespace {namespace}",
        )
        created = True
    except NotFoundError as e:
        raise _missing_namespace(namespace) from e
    except ConflictError:  # it exists (or our own retried request created it)
        body = api.get(*get)
    except AuthError as refused:
        if refused.status != 403:  # 401: the credentials themselves are refused
            raise
        try:
            body = api.get(*get)
        except NotFoundError:
            raise refused from None  # it does not exist and may not be created
    uid = body.get("metadata", {}).get("uid")
    if not isinstance(uid, str) or not uid:
        raise ApiError(f"{what} came back without a uid")
    if created:
        plan.record("create", what, body=body)
    else:
        mine = manifests.is_managed(body)
        plan.record("exists", what, "" if mine else "not created by bootstrap-token")
    return uid


def ensure_token_secret(
    api: Api,
    namespace: str,
    base: str,
    service_account: str,
    uid: str,
    fresh: bool = False,
    plan: Plan | None = None,
    new_account: bool = False,
    lease: str | None = None,
) -> dict[str, Any]:
    """Reuse the token Secret `base` (or its newest rotated successor), else create one.

    With `fresh`, always create a Secret under a new name (see the module docstring).
    `new_account`: this run just created the ServiceAccount, so no Secret can be its
    token yet: the lookup is skipped (one round trip less); a Secret `base` left from
    an earlier account of that name still shows up, as a conflict, when creating it.
    """
    plan = plan if plan is not None else Plan()
    path = f"/api/v1/namespaces/{segment(namespace)}/secrets"
    if not fresh and not new_account:
        existing = find_token_secrets(api, namespace, base, service_account)
        if existing:
            if lease is not None:
                log.warning(
                    "warning: --ttl: Secret %s/%s existed before this run, so it gets no lease "
                    "and sweep never deletes it (revoke it, or rotate --ttl for a token that "
                    "expires)",
                    namespace,
                    existing[0]["metadata"]["name"],
                )
            return _reuse(existing[0], namespace, service_account, uid, plan)
    name = f"{base}-{os.urandom(3).hex()}" if fresh else base
    body = manifests.with_lease(
        manifests.token_secret(namespace, name, service_account, uid), lease
    )
    try:
        created = api.post(plan.path(path), body, f"create secrets in namespace {namespace}")
    except ConflictError:
        # Not ours (so not listed), created concurrently, or by our own retried request.
        found = api.get(f"{path}/{segment(name)}", f"get secrets in namespace {namespace}")
        return _reuse(found, namespace, service_account, uid, plan)
    shown = created
    account = f"ServiceAccount {namespace}/{service_account}"
    if plan.dry_run and any(e.what == account and e.action == "create" for e in plan.entries):
        # The UID of a ServiceAccount that a dry run did not create means nothing.
        shown = copy.deepcopy(created)
        shown.setdefault("metadata", {}).setdefault("annotations", {})[
            manifests.SA_UID_ANNOTATION
        ] = f"<uid of ServiceAccount {namespace}/{service_account}, once created>"
    plan.record("create", f"Secret {namespace}/{name}", body=shown)
    return created


def _reuse(
    body: dict[str, Any], namespace: str, service_account: str, uid: str, plan: Plan
) -> dict[str, Any]:
    name = body["metadata"]["name"]
    check_reusable(body, namespace, name, service_account, uid)
    has_token = bool((body.get("data") or {}).get("token"))
    # With its token present, the wait step reports the reuse ("token already present").
    plan.record(
        "exists",
        f"Secret {namespace}/{name}",
        "" if has_token else "its token is not filled yet",
        quiet=has_token,
    )
    return body


def find_token_secrets(
    api: Api, namespace: str, base: str, service_account: str
) -> list[dict[str, Any]]:
    """The token Secrets bootstrap-token made for this ServiceAccount under the name
    `base` or a rotated `base-*`, newest first: one LIST request. (A Secret named
    `base` that is not ours shows up as a conflict when creating it.)"""
    return _managed_token_secrets(
        api, namespace, service_account, lambda name: name == base or name.startswith(f"{base}-")
    )


def rotated_secrets(
    api: Api, namespace: str, base: str, service_account: str
) -> list[dict[str, Any]]:
    """The rotated successors (`base-*`) of token Secret `base`, newest first."""
    return _managed_token_secrets(
        api, namespace, service_account, lambda name: name.startswith(f"{base}-")
    )


def _managed_token_secrets(
    api: Api, namespace: str, service_account: str, wanted: Callable[[str], bool]
) -> list[dict[str, Any]]:
    listing = api.get(
        f"/api/v1/namespaces/{segment(namespace)}/secrets"
        f"?labelSelector={manifests.token_secret_selector(service_account)}",
        f"list secrets in namespace {namespace}",
    )
    found = [
        item
        for item in listing.get("items") or []
        if item.get("type") == manifests.TOKEN_SECRET_TYPE
        and wanted(str(item.get("metadata", {}).get("name", "")))
        and (item["metadata"].get("annotations") or {}).get(manifests.SA_NAME_ANNOTATION)
        == service_account
    ]
    found.sort(
        key=lambda s: (s["metadata"].get("creationTimestamp", ""), s["metadata"]["name"]),
        reverse=True,
    )
    return found


def check_reusable(
    secret: dict[str, Any], namespace: str, name: str, service_account: str, uid: str
) -> None:
    """An existing Secret is reused only if it is a token Secret of this exact ServiceAccount."""
    metadata = secret.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    labels = metadata.get("labels") or {}
    where = f"Secret {namespace}/{name}"
    if secret.get("type") != manifests.TOKEN_SECRET_TYPE:
        raise ConflictError(
            f"{where} already exists with type {secret.get('type')!r}, not a service-account "
            "token; it is left alone: pick another --secret name"
        )
    owner = annotations.get(manifests.SA_NAME_ANNOTATION)
    if owner != service_account:
        raise ConflictError(
            f"{where} already exists and belongs to ServiceAccount {owner!r}, not "
            f"{service_account!r}; it is left alone: pick another --secret name"
        )
    owner_uid = annotations.get(manifests.SA_UID_ANNOTATION)
    if owner_uid and owner_uid != uid:
        raise ConflictError(
            f"{where} belongs to an earlier ServiceAccount {service_account!r} (uid differs); "
            "the token controller will delete it: delete it and run again"
        )
    if INVALID_SINCE_LABEL in labels:
        raise ConflictError(
            f"{where} holds a token invalidated since {labels[INVALID_SINCE_LABEL]} "
            "(legacy token clean-up); delete it and run again for a fresh token"
        )


def _missing_namespace(namespace: str) -> ApiError:
    return NotFoundError(
        f"namespace {namespace!r} does not exist; create it "
        f"(kubectl create namespace {namespace}) or pick another --namespace"
    )
