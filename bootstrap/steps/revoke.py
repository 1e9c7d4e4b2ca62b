"""Revoke: delete what bootstrap-token created for this ServiceAccount, and nothing else.

Deleting a token Secret revokes its legacy token (the authenticator checks that
the Secret still exists). Everything is looked at first, then deleted:

- a token Secret goes only if it is labelled `app.kubernetes.io/managed-by:
  bootstrap-token`, of type `kubernetes.io/service-account-token`, and annotated
  with this ServiceAccount's name and (once the token controller stamped it) the
  live ServiceAccount's UID. A Secret of an earlier ServiceAccount of the same name
  is kept and reported: its token is dead already and the controller deletes it.
- the Secret named by `--secret` (default `SA-token`) that is not ours at all
  (unlabelled, another type, another ServiceAccount's) stops `revoke` before
  anything is deleted (exit 6); `rotate`'s clean-up only reports it as kept.
- with `everything`: a RoleBinding/ClusterRoleBinding goes only if it is ours and
  binds nothing but this ServiceAccount (one that also binds others is kept and
  reported), and the ServiceAccount only if it is labelled as ours.

Deletes carry the UID as a precondition, so an object replaced in between is not
deleted by mistake. With a dry-run `plan`, the deletes are sent with `?dryRun=All`.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

from bootstrap.errors import AuthError, ConflictError, NotFoundError
from bootstrap.kube.client import Api
from bootstrap.steps import manifests
from bootstrap.steps.apply import RBAC, rotated_secrets
from bootstrap.steps.manifests import segment
from bootstrap.steps.plan import Plan

log = logging.getLogger("bootstrap")


def revoke(
    api: Api,
    namespace: str,
    service_account: str,
    secret: str,
    everything: bool,
    keep: str | None = None,
    plan: Plan | None = None,
) -> Plan:
    """Delete the token Secret `secret` and its rotated successors (`secret-*`), except
    `keep` (rotate's new one, which also makes foreign Secrets a note, not an error);
    with `everything` also the bindings and the ServiceAccount. Return what was done."""
    plan = plan if plan is not None else Plan()
    ns = segment(namespace)
    sa_path = f"/api/v1/namespaces/{ns}/serviceaccounts/{segment(service_account)}"
    account = _get(api, sa_path, f"get serviceaccounts in namespace {namespace}")
    uid = (account or {}).get("metadata", {}).get("uid") or None
    secrets_path = f"/api/v1/namespaces/{ns}/secrets"
    doomed: list[tuple[str, str, dict[str, Any]]] = []  # (path, what, body)

    def consider_secret(body: dict[str, Any], named: bool) -> None:
        name = body["metadata"]["name"]
        where = f"Secret {namespace}/{name}"
        reason = manifests.not_ours(body, service_account, need_label=True)
        if reason and named and keep is None:
            raise ConflictError(
                f"{where} {reason}; it is left alone and nothing was deleted (if "
                f"ServiceAccount {service_account!r} has another token Secret, name it "
                "with --secret)"
            )
        reason = reason or manifests.stale(body, service_account, uid)
        if reason:
            plan.record("keep", where, reason)
        else:
            doomed.append((f"{secrets_path}/{segment(name)}", where, body))

    if secret != keep:
        named = _get(
            api, f"{secrets_path}/{segment(secret)}", f"get secrets in namespace {namespace}"
        )
        if named is None:
            log.info("Secret %s/%s does not exist (already revoked?)", namespace, secret)
        else:
            consider_secret(named, named=True)
    # Rotated successors come from a LIST on our own labels: no need to GET each again.
    for item in rotated_secrets(api, namespace, secret, service_account):
        if item["metadata"]["name"] != keep:
            consider_secret(item, named=False)

    if everything:
        doomed += _bindings(api, namespace, service_account, plan)
        where = f"ServiceAccount {namespace}/{service_account}"
        if account is not None and manifests.is_managed(account):
            doomed.append((sa_path, where, account))
        elif account is not None:
            plan.record("keep", where, "was not created by bootstrap-token")

    for path, where, body in doomed:
        resource = path.rsplit("/", 2)[-2]
        scope = "cluster-wide" if resource == "clusterrolebindings" else f"in namespace {namespace}"
        _delete(api, plan.path(path), body, f"delete {resource} {scope}", plan.dry_run)
        plan.record("delete", where)
    return plan


def _bindings(
    api: Api, namespace: str, service_account: str, plan: Plan
) -> list[tuple[str, str, dict[str, Any]]]:
    """Our bindings of this ServiceAccount that bind nothing else; the others are kept."""
    found = []
    selector = f"labelSelector={manifests.managed_selector()}"
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    for path, resource, scope in (
        (
            f"{RBAC}/namespaces/{segment(namespace)}/rolebindings",
            "rolebindings",
            f"in namespace {namespace}",
        ),
        (f"{RBAC}/clusterrolebindings", "clusterrolebindings", "cluster-wide"),
    ):
        try:
            listing = api.get(f"{path}?{selector}", f"list {resource} {scope}")
        except AuthError as e:
            if resource != "clusterrolebindings" or e.status != 403:
                raise
            # A bootstrapper bound by a RoleBinding cannot list cluster-scoped objects (nor
            # could it have made a ClusterRoleBinding): say so, and revoke the rest.
            plan.record(
                "keep",
                f"ClusterRoleBindings of ServiceAccount {namespace}/{service_account}",
                "were not looked for (listing clusterrolebindings cluster-wide is forbidden "
                "to these credentials; a RoleBinding cannot grant it): one made with "
                "--clusterrole stays until revoke --all runs with cluster-wide rights",
            )
            continue
        for item in listing.get("items") or []:
            if subject not in (item.get("subjects") or []) or not manifests.is_managed(item):
                continue
            name = item["metadata"]["name"]
            kind = "ClusterRoleBinding" if resource == "clusterrolebindings" else "RoleBinding"
            where = (
                f"{kind} {name}" if kind == "ClusterRoleBinding" else f"{kind} {namespace}/{name}"
            )
            others = manifests.other_subjects(item, namespace, service_account)
            if others:
                plan.record(
                    "keep",
                    where,
                    f"also binds {', '.join(others)}, so it is not ours alone (edit its "
                    "subjects by hand if it must go)",
                )
            else:
                found.append((f"{path}/{segment(name)}", where, item))
    return found


def _get(api: Api, path: str, what: str) -> dict[str, Any] | None:
    try:
        return api.get(path, what)
    except NotFoundError:
        return None


def _delete(api: Api, path: str, body: dict[str, Any], what: str, dry_run: bool) -> None:
    """DELETE exactly the object looked at: its UID is a precondition. The options go in
    the body, and the API server then ignores the query: `dryRun` must be in the body."""
    options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
    uid = (body.get("metadata") or {}).get("uid")
    if uid:
        options["preconditions"] = {"uid": uid}
    if dry_run:
        options["dryRun"] = ["All"]
    with suppress(NotFoundError):  # gone already: the goal is reached
        api.request("DELETE", path, what, options)
