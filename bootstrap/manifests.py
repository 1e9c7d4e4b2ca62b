"""Render the objects bootstrap-token applies from the YAML templates in manifests/.

The templates ship inside the wheel (`bootstrap/_manifests` links to `manifests/`). Rendering
is pure: load a template, fill in names, return a plain dict ready to POST.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from typing import Any

import yaml

MANAGED_BY = ("app.kubernetes.io/managed-by", "bootstrap-token")
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"


@cache
def template(name: str) -> dict[str, Any]:
    text = resources.files("bootstrap").joinpath("_manifests", f"{name}.yaml").read_text("utf-8")
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
    return body
