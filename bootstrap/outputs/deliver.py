"""Deliver the token where it is consumed: as a Secret manifest for Argo CD or for
Flux / Cluster API, written like any output or applied into a management cluster.

Formats (both a `v1 Secret` in YAML, labelled app.kubernetes.io/managed-by=bootstrap-token):
  argocd             Argo CD's declarative cluster Secret: label
                     argocd.argoproj.io/secret-type=cluster; stringData `name`, `server`
                     and `config` (JSON: bearerToken, tlsClientConfig {caData, serverName,
                     insecure}, proxyUrl). Default: `cluster-CLUSTER` in namespace `argocd`.
  kubeconfig-secret  the standalone kubeconfig under the key `value` (Flux
                     `kubeConfig.secretRef`, Cluster API's `CLUSTER-kubeconfig`).
                     Default: `CLUSTER-kubeconfig`, no namespace (`kubectl apply -n NS`).

`--apply-to CONTEXT/NAMESPACE` sends the Secret with a server-side apply (field manager
`bootstrap-token`, forced) to the cluster of that kubeconfig context instead of writing
it, so the token never touches the disk. `prepare` checks everything it can before the
target cluster is asked for anything: the context, the namespace, that an existing
Secret of that name is ours, and (a server-side dry run) that the context's user may
apply it there. Rendering is pure; `Delivery` does the I/O.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import yaml

from bootstrap.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ConflictError,
    NotFoundError,
    UsageError,
)
from bootstrap.kube.target import select, validate_name
from bootstrap.outputs.emit import SECRET_FORMATS

if TYPE_CHECKING:
    from bootstrap.kube.client import Api
    from bootstrap.outputs.emit import Issued
    from bootstrap.steps.options import Options

log = logging.getLogger("bootstrap")

# format -> default file extension (./CLUSTER.EXT)
FIELD_MANAGER = "bootstrap-token"
MANAGED_BY = ("app.kubernetes.io/managed-by", "bootstrap-token")
ARGOCD_LABEL = ("argocd.argoproj.io/secret-type", "cluster")
ARGOCD_NAMESPACE = "argocd"


@dataclass(frozen=True)
class Destination:
    """--apply-to CONTEXT/NAMESPACE."""

    context: str
    namespace: str


def parse_apply_to(value: str) -> Destination:
    """Split at the last `/`: a context name may hold `/` (EKS names contexts by ARN,
    `arn:aws:eks:...:cluster/prod`), a namespace never does."""
    context, slash, namespace = value.rpartition("/")
    if not slash or not context:
        raise UsageError(
            f"--apply-to {value!r} must be CONTEXT/NAMESPACE, e.g. mgmt-admin/argocd "
            "(a context of your kubeconfig and a namespace of its cluster)"
        )
    validate_name(namespace, "--apply-to namespace")
    return Destination(context, namespace)


def validate(options: Options) -> None:
    """The delivery flags, checked with the rest of the options (no I/O)."""
    secret_format = options.format in SECRET_FORMATS
    if options.apply_to is not None:
        if not secret_format:
            raise UsageError(
                "--apply-to needs --format argocd or --format kubeconfig-secret "
                f"(not {options.format})"
            )
        if options.out is not None:
            raise UsageError(
                "--apply-to and --out exclude each other: the Secret is applied, not written"
            )
        parse_apply_to(options.apply_to)
    if options.delivery_name is not None:
        if not secret_format:
            raise UsageError("--secret-name needs --format argocd or --format kubeconfig-secret")
        validate_name(options.delivery_name, "--secret-name", subdomain=True)


def check_jobs(jobs: list[Options]) -> None:
    """One delivered Secret per cluster: several jobs must not render the same one."""
    if not jobs or jobs[0].format not in SECRET_FORMATS:
        return
    if len({o.service_account for o in jobs}) > 1:
        raise UsageError(
            f"--format {jobs[0].format} delivers one Secret per cluster: name one --service-account"
        )
    if len(jobs) > 1 and jobs[0].delivery_name:
        raise UsageError("--secret-name names one Secret; drop it when naming several clusters")


def dns_name(text: str) -> str:
    """A cluster name as part of a Secret name: lower case, anything but a-z, 0-9,
    `.` and `-` made `-` (EKS ARNs, upper case), at most 200 characters."""
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", text.lower())
    cleaned = re.sub(r"-{2,}", "-", cleaned)[:200].strip(".-")
    return cleaned or "cluster"


def default_name(output_format: str, cluster: str) -> str:
    """`cluster-CLUSTER` for Argo CD, `CLUSTER-kubeconfig` for Flux / Cluster API."""
    base = dns_name(cluster)
    return f"cluster-{base}" if output_format == "argocd" else f"{base}-kubeconfig"


def secret_ref(options: Options) -> tuple[str | None, str]:
    """(namespace, name) of the delivered Secret; namespace None: not set in the file."""
    name = options.delivery_name or default_name(options.format, options.cluster)
    if options.apply_to is not None:
        return parse_apply_to(options.apply_to).namespace, name
    return (ARGOCD_NAMESPACE if options.format == "argocd" else None), name


def argocd_config(issued: Issued) -> dict[str, Any]:
    """Argo CD's ClusterConfig (pkg/apis/application/v1alpha1, `config` of the Secret)."""
    tls: dict[str, Any] = {}
    if issued.ca_pem and not issued.insecure:  # client-go refuses a CA with insecure
        tls["caData"] = base64.b64encode(issued.ca_pem).decode()
    if issued.tls_server_name:
        tls["serverName"] = issued.tls_server_name
    tls["insecure"] = bool(issued.insecure)
    config: dict[str, Any] = {"bearerToken": issued.token, "tlsClientConfig": tls}
    if issued.proxy_url:
        config["proxyUrl"] = issued.proxy_url
    return config


def render_secret(
    issued: Issued, output_format: str, name: str, namespace: str | None
) -> dict[str, Any]:
    """The Secret as a document, with the values in `stringData` (readable in a file)."""
    from bootstrap.outputs.emit import render_kubeconfig

    labels = dict([MANAGED_BY])
    if output_format == "argocd":
        labels = dict([ARGOCD_LABEL, MANAGED_BY])
        string_data = {
            "name": issued.cluster,
            "server": issued.server,
            "config": json.dumps(argocd_config(issued), indent=2) + "\n",
        }
    else:
        string_data = {"value": render_kubeconfig(issued)}
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = labels
    document: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": metadata}
    if output_format == "argocd":
        document["type"] = "Opaque"
    document["stringData"] = string_data
    return document


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the config JSON, the kubeconfig) as readable `|` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def render(issued: Issued, options: Options) -> str:
    """The manifest file: a comment saying what it is, then the Secret."""
    namespace, name = secret_ref(options)
    document = render_secret(issued, options.format, name, namespace)
    identity = "".join(c if c.isprintable() else "?" for c in issued.identity)
    header = f"# bootstrap-token: {identity}; kubectl apply -f this file\n"
    return header + yaml.dump(document, Dumper=_BlockDumper, sort_keys=False)


def apply_body(document: Mapping[str, Any]) -> dict[str, Any]:
    """`stringData` as base64 `data`: a server-side apply then owns (and on the next
    rotation replaces) exactly the `data` keys, and nothing lingers in `stringData`."""
    body = {k: v for k, v in document.items() if k != "stringData"}
    body["data"] = {
        key: base64.b64encode(value.encode()).decode()
        for key, value in document.get("stringData", {}).items()
    }
    return body


@dataclass
class Delivery:
    """A checked --apply-to destination: apply the Secret there once the token exists."""

    api: Api
    context: str
    namespace: str
    name: str
    output_format: str

    @property
    def path(self) -> str:
        return (
            f"/api/v1/namespaces/{quote(self.namespace)}/secrets/{quote(self.name)}"
            f"?fieldManager={FIELD_MANAGER}&force=true"
        )

    @property
    def label(self) -> str:
        return f"Secret {self.namespace}/{self.name} (context {self.context!r})"

    def _apply(self, body: Mapping[str, Any], dry_run: bool) -> dict[str, Any]:
        what = f"apply secrets in namespace {self.namespace} (server-side apply)"
        path = self.path + ("&dryRun=All" if dry_run else "")
        try:
            return self.api.request(
                "PATCH", path, what, body, content_type="application/apply-patch+yaml"
            )
        except AuthError as e:
            raise self._forbidden(e, " (e.g. a Role with those verbs, bound to it)") from None
        except ApiError as e:
            if e.status == 404:
                raise ApiError(
                    f"--apply-to: namespace {self.namespace!r} does not exist in the cluster "
                    f"of context {self.context!r} ({e}); create it or name another",
                    e.status,
                ) from None
            raise

    def _forbidden(self, error: AuthError, hint: str = "") -> AuthError:
        """A 403 says which permission is missing; a 401 stays as it is."""
        if error.status != 403:
            return error
        return AuthError(
            f"--apply-to: {error}; the context's user needs get, create and patch on secrets in "
            f"namespace {self.namespace}{hint}",
            error.status,
        )

    def check(self) -> None:
        """Before the token exists: an existing Secret of that name must be ours, and a
        dry-run apply must pass (permission, namespace, admission)."""
        try:
            existing = self.api.get(
                self.path.split("?", 1)[0], f"get secrets in namespace {self.namespace}"
            )
        except NotFoundError:
            existing = None
        except AuthError as e:
            raise self._forbidden(e) from None
        if existing is not None:
            labels = (existing.get("metadata") or {}).get("labels") or {}
            if labels.get(MANAGED_BY[0]) != MANAGED_BY[1]:
                raise ConflictError(
                    f"--apply-to: {self.label} exists and was not made by bootstrap-token "
                    f"(no label {MANAGED_BY[0]}={MANAGED_BY[1]}); it is left alone: choose "
                    "another name with --secret-name, or add that label to hand it over"
                )
        skeleton = {"apiVersion": "v1", "kind": "Secret", "metadata": self._metadata()}
        self._apply(skeleton, dry_run=True)

    def _metadata(self) -> dict[str, Any]:
        labels = dict([MANAGED_BY])
        if self.output_format == "argocd":
            labels = dict([ARGOCD_LABEL, MANAGED_BY])
        return {"name": self.name, "namespace": self.namespace, "labels": labels}

    def apply(self, issued: Issued) -> str:
        """Apply the Secret; returns what was done, for the log."""
        document = render_secret(issued, self.output_format, self.name, self.namespace)
        result = self._apply(apply_body(document), dry_run=False)
        version = (result.get("metadata") or {}).get("resourceVersion", "?")
        log.info("applied %s (server-side apply, resourceVersion %s)", self.label, version)
        return self.label


def prepare(
    options: Options, environ: Mapping[str, str], home: Path, seconds: float
) -> Delivery | None:
    """Resolve and check --apply-to (None without it), before the target is touched.
    Requests go to the context's own server, never to --server, and TLS is verified
    unless the context's cluster itself says insecure-skip-tls-verify."""
    if options.apply_to is None:
        return None
    from bootstrap.kube.client import Deadline
    from bootstrap.steps import connect

    destination = parse_apply_to(options.apply_to)
    config = connect.load_kubeconfig(options, environ, home)
    if destination.context not in config.contexts:
        known = ", ".join(sorted(config.contexts)) or "none"
        raise ConfigError(
            f"--apply-to: unknown context {destination.context!r}; the kubeconfig's "
            f"contexts: {known}"
        )
    cluster = config.contexts[destination.context].get("cluster")
    if not isinstance(cluster, str) or not cluster:
        raise ConfigError(f"--apply-to: context {destination.context!r} names no cluster")
    target = select(config, cluster, destination.context)
    plain = replace(options, server=None, insecure_skip_tls_verify=False)
    api = connect.admin_api(plain, target, Deadline(seconds))
    _, name = secret_ref(options)
    delivery = Delivery(api, destination.context, destination.namespace, name, options.format)
    delivery.check()
    return delivery
