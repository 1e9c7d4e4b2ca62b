"""In-cluster mode: inside a Pod, bootstrap with the Pod's own ServiceAccount.

This is client-go's `rest.InClusterConfig` (and what kubectl falls back to when it
finds no kubeconfig), as a named constructor of a `Target`:

- server: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT` (an IPv6 host
  is bracketed, as Go's `net.JoinHostPort` does);
- credentials: the bearer token in `DIR/token`, given as a token *file* so it is
  read again for every run (the kubelet rotates a projected token about hourly);
- CA: `DIR/ca.crt`;
- namespace (the default of `-n`): `$POD_NAMESPACE`, else `DIR/namespace`, else
  `default` (clientcmd's in-cluster `Namespace()`).

DIR is `/var/run/secrets/kubernetes.io/serviceaccount`. Tests point it elsewhere
with `BOOTSTRAP_TOKEN_SERVICEACCOUNT_DIR` (an undocumented variable, for tests and
unusual mounts only).

When in-cluster mode applies:

=========================  ====================================  ===============================
--in-cluster               kubeconfig (--kubeconfig, KUBECONFIG,  result
                           ~/.kube/config)
=========================  ====================================  ===============================
given                      any                                   in-cluster (missing files: exit 3)
not given                  --kubeconfig given                    kubeconfig
not given                  some file of the list exists          kubeconfig
not given                  none exists, Pod environment present  in-cluster (as kubectl)
not given                  none exists, no Pod environment       kubeconfig (its "no kubeconfig
                                                                 found" error)
=========================  ====================================  ===============================

"Pod environment present" is kubectl's test: both variables set and `DIR/token` a file.
With --in-cluster, a kubeconfig (--kubeconfig or $KUBECONFIG) is not used to bootstrap:
it can still name the management cluster of --apply-to. In in-cluster mode the loaded
kubeconfig also holds a context `in-cluster` (cluster, user and context of that name:
the Pod's own), so `--apply-to in-cluster/argocd` applies into the Pod's cluster.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bootstrap.errors import ConfigError, UsageError
from bootstrap.kube.kubeconfig import Kubeconfig, default_paths, parse
from bootstrap.kube.target import Target

DEFAULT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DIR_VARIABLE = "BOOTSTRAP_TOKEN_SERVICEACCOUNT_DIR"  # for tests: a Pod-like directory
DEFAULT_CLUSTER = "in-cluster"
CONTEXT = "in-cluster"  # what messages call the "context" of the bootstrap credentials
HOST, PORT = "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"


def service_account_dir(environ: Mapping[str, str]) -> Path:
    """Where the ServiceAccount's files are mounted."""
    return Path(environ.get(DIR_VARIABLE) or DEFAULT_DIR)


def possible(directory: Path, environ: Mapping[str, str]) -> bool:
    """kubectl's test for in-cluster credentials (clientcmd `inClusterClientConfig.Possible`)."""
    return bool(environ.get(HOST)) and bool(environ.get(PORT)) and (directory / "token").is_file()


def wanted(
    asked: bool,
    kubeconfig_flag: str | None,
    environ: Mapping[str, str],
    home: Path,
    directory: Path,
) -> bool:
    """Whether this run uses in-cluster credentials (see the table in the module docstring)."""
    if asked:
        return True
    if kubeconfig_flag:
        return False
    if any(path.exists() for path in default_paths(None, environ, home)):
        return False
    return possible(directory, environ)


def server_url(environ: Mapping[str, str]) -> str:
    """`https://host:port` from the variables the kubelet sets in every Pod."""
    host, port = environ.get(HOST, "").strip(), environ.get(PORT, "").strip()
    if not host or not port:
        raise ConfigError(
            f"in-cluster mode needs ${HOST} and ${PORT} (set in every Pod); "
            "outside a Pod, use a kubeconfig (--kubeconfig PATH)"
        )
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"${PORT} {port!r} is not a port number")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address, as net.JoinHostPort writes it
    return f"https://{host}:{port}"


def pod_namespace(directory: Path, environ: Mapping[str, str]) -> str:
    """The Pod's namespace: $POD_NAMESPACE, else DIR/namespace, else `default`."""
    if environ.get("POD_NAMESPACE"):
        return environ["POD_NAMESPACE"]
    from bootstrap.inputs import read_input

    try:
        data = read_input(directory / "namespace", "namespace", limit=4096, missing_ok=True)
        text = (data or b"").decode("utf-8").strip()
    except (ConfigError, UnicodeDecodeError):
        return "default"
    return text or "default"


def target_from_service_account(
    directory: Path, environ: Mapping[str, str], cluster_name: str = DEFAULT_CLUSTER
) -> Target:
    """The bootstrap target of a Pod: its API server, its ServiceAccount's token and CA.

    `cluster_name` only names the cluster in the outputs. The token is checked to be
    there (and not empty) now, and read again when the requests are made.
    """
    server = server_url(environ)
    token_file, ca_file = directory / "token", directory / "ca.crt"
    token = _read(token_file, "token")
    ca = _read(ca_file, "CA certificate")
    if not token.strip():
        raise ConfigError(f"in-cluster mode: the ServiceAccount token file {token_file} is empty")
    if "-----BEGIN CERTIFICATE-----" not in ca:
        raise ConfigError(f"in-cluster mode: {ca_file} holds no PEM certificate")
    return Target(
        cluster=cluster_name,
        server=server,
        context=CONTEXT,
        user_name=token_subject(token) or "in-cluster service account",
        user={"tokenFile": str(token_file.absolute())},
        ca_data=None,
        ca_file=str(ca_file.absolute()),
        insecure=False,
        tls_server_name=None,
    )


def token_subject(token: str) -> str | None:
    """The `sub` claim of a JWT (e.g. `system:serviceaccount:ns:name`), for messages only:
    nothing is trusted from it (the API server checks the token)."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    subject = payload.get("sub") if isinstance(payload, dict) else None
    return subject if isinstance(subject, str) and subject.isprintable() else None


def _read(path: Path, what: str) -> str:
    from bootstrap.inputs import MAX_PEM_BYTES, read_input

    try:
        data = read_input(path, f"the ServiceAccount {what}", limit=MAX_PEM_BYTES, missing_ok=True)
    except ConfigError as e:
        raise ConfigError(f"in-cluster mode: {e}") from None
    if data is None:
        raise ConfigError(
            f"in-cluster mode: the ServiceAccount {what} {path} does not exist; is a "
            "ServiceAccount token mounted in this Pod (automountServiceAccountToken)? "
            "Outside a Pod, use a kubeconfig (--kubeconfig PATH)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"in-cluster mode: cannot read {path}: not UTF-8 text") from None


def flag_updates(
    flags: Mapping[str, Any], namespace_given: bool, environ: Mapping[str, str], home: Path
) -> dict[str, Any]:
    """The command line's flags to change for in-cluster mode (empty: not in-cluster):
    `in_cluster` set, `--cluster` defaulting to `in-cluster`, `-n` to the Pod's namespace.
    Flags that only make sense with a kubeconfig are usage errors."""
    directory = service_account_dir(environ)
    if not wanted(bool(flags.get("in_cluster")), flags.get("kubeconfig"), environ, home, directory):
        return {}
    for flag, key in (
        ("--context", "context"),
        ("--all-clusters", "all_clusters"),
        ("--list-clusters", "list_clusters"),
    ):
        if flags.get(key):
            raise UsageError(
                f"{flag} needs a kubeconfig; in-cluster mode (the Pod's ServiceAccount) has "
                "one cluster: name it in the outputs with --cluster NAME"
            )
    clusters = tuple(flags.get("clusters") or ())
    if len(clusters) > 1:
        raise UsageError(
            "in-cluster mode reaches one cluster, the Pod's own: give --cluster at most once"
        )
    updates: dict[str, Any] = {"in_cluster": True, "clusters": clusters or (DEFAULT_CLUSTER,)}
    if not namespace_given:
        updates["namespace"] = pod_namespace(directory, environ)
    return updates


def pod_document(directory: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """The Pod's credentials as a kubeconfig document: cluster, user and context all
    named `in-cluster`, so that what takes a context (`--apply-to in-cluster/NS`) can
    name the Pod's own cluster."""
    target = target_from_service_account(directory, environ)
    return {
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {"server": target.server, "certificate-authority": target.ca_file},
            }
        ],
        "users": [{"name": CONTEXT, "user": dict(target.user)}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {
                    "cluster": CONTEXT,
                    "user": CONTEXT,
                    "namespace": pod_namespace(directory, environ),
                },
            }
        ],
    }


def kubeconfig_with_pod(
    paths: list[Path], directory: Path, environ: Mapping[str, str]
) -> Kubeconfig:
    """In in-cluster mode: the kubeconfig files that exist (none is fine), merged with
    the Pod's `in-cluster` context last (a file's entry of the same name wins, as in
    any merge)."""
    documents: list[tuple[Path, Mapping[str, Any]]] = []
    from bootstrap.inputs import read_input
    from bootstrap.kube.kubeconfig import MAX_FILE_BYTES, decode

    for path in paths:
        data = read_input(path, "kubeconfig", limit=MAX_FILE_BYTES, missing_ok=True)
        if data is None:
            continue
        try:
            text = decode(data)
        except UnicodeDecodeError as e:
            raise ConfigError(f"cannot read kubeconfig {path}: {type(e).__name__}") from e
        documents.append((path, parse(text, path)))
    documents.append((directory / "kubeconfig", pod_document(directory, environ)))
    return Kubeconfig.from_documents(documents)
