"""Read an output file of the tool back: env, dotenv, kubeconfig, json, or the Argo CD
and kubeconfig Secret manifests of deliver.py (detected).

Pure: text in, `FileCredentials` out (`check` and `issue --renew-before` use it). A
relative path in the file (CACERT, a kubeconfig's certificate-authority) is relative
to the file's directory. Errors never quote the file's content.

A file read back is evidence, not configuration:
- Only credentials written inside the file are taken. A kubeconfig user that
  refers to anything outside it (tokenFile, client-certificate, client-key) or
  would run something (exec, auth-provider) is refused (UsageError) before any
  connection; a plugin is never run. A CA *path* (CACERT, cacert_path,
  certificate-authority) is returned as `ca_file` for the caller to vet:
  `check` accepts only the CA file the tool writes beside its output.
- A line is what bash takes for one: text up to `\n` (`str.splitlines()` would also
  break at U+2028, `\x1c` and others, so a value could smuggle a line that only
  this reader sees); the writers refuse every such character (emit.line_safe).
- `foreign` says whether a file has anything the tool does not write (an unknown
  line, header or key): `--renew-before` renews such a file instead of keeping it.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from bootstrap.errors import ConfigError, UsageError
from bootstrap.sanitize import visible

# What PyYAML's safe loader raises for a malformed file: a YAMLError, or one of these for
# a value it cannot construct (`!!int abc`, a bad date, absurd nesting; as kubeconfig.parse).
_YAML_ERRORS = (
    yaml.YAMLError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    RecursionError,
)
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


@dataclass(frozen=True)
class FileCredentials:
    """What an output file holds: where to go, with which token, trusting which CA."""

    format: str  # env, dotenv, kubeconfig or json
    server: str
    token: str
    ca_pem: bytes | None = None
    ca_file: str | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    namespace: str | None = None
    expires_at: str | None = None  # as written in the file (request mode)

    def __repr__(self) -> str:
        return f"FileCredentials(format={self.format!r}, server={self.server!r}, token=<redacted>)"


# --- reading the file (pure) ------------------------------------------------------------


def split_lines(text: str) -> list[str]:
    """The lines of `text` as bash and POSIX sh see them: split at `\n` only."""
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    return lines


def detect(text: str) -> str:
    """The format of an output of the tool: json, env, dotenv or kubeconfig."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return "json"
    lines = [
        line for line in split_lines(text) if line.strip() and not line.lstrip().startswith("#")
    ]
    if lines and all(_ASSIGNMENT.match(line) for line in lines):
        return "env" if any(line.lstrip().startswith("export ") for line in lines) else "dotenv"
    return "kubeconfig"


def parse(
    text: str, base: Path, *, context: str | None = None, prefix: str | None = None
) -> FileCredentials:
    """The credentials in `text` (the file's content); relative paths (CACERT, a
    kubeconfig's certificate-authority or tokenFile) are relative to `base`.
    `context`: the kubeconfig context to read (default: current-context, else the
    only one); `prefix`: the --env-prefix of env/dotenv variables (default: found)."""
    kind = detect(text)
    if kind == "json":
        return _from_json(text, base)
    if kind == "kubeconfig":
        delivered = read_secret(text, base, context)  # argocd, kubeconfig-secret manifests
        if delivered is not None:
            return delivered
        return _from_kubeconfig(text, base, context)
    return _from_variables(text, base, kind, prefix)


def _from_variables(text: str, base: Path, kind: str, prefix: str | None) -> FileCredentials:
    values: dict[str, str] = {}
    for number, line in enumerate(split_lines(text), 1):
        match = _ASSIGNMENT.match(line)
        if not match:
            continue
        key, raw = match.groups()
        if kind == "dotenv":
            values[key] = raw
            continue
        try:
            words = shlex.split(raw, comments=False, posix=True)
        except ValueError:
            raise UsageError(f"line {number} is not valid shell quoting") from None
        values[key] = words[0] if len(words) == 1 else "".join(words)
    if prefix is None:
        prefixes = sorted({k[: -len("APISERVER")] for k in values if k.endswith("APISERVER")})
        if len(prefixes) > 1:
            raise UsageError(
                f"the file holds several credentials (variable prefixes {', '.join(prefixes)}); "
                "pass --env-prefix to pick one"
            )
        prefix = prefixes[0] if prefixes else ""

    def get(name: str) -> str | None:
        return values.get(prefix + name) or None

    server, token = get("APISERVER"), get("TOKEN")
    if not server or not token:
        raise UsageError(f"no {prefix}APISERVER and {prefix}TOKEN variables found in the file")
    cacert = get("CACERT")
    return FileCredentials(
        format=kind,
        server=server,
        token=token,
        ca_file=str(base / cacert) if cacert else None,
        tls_server_name=get("TLS_SERVER_NAME"),
        proxy_url=get("HTTPS_PROXY"),
        namespace=get("NAMESPACE"),
        expires_at=get("EXPIRES_AT"),
    )


def _from_json(text: str, base: Path) -> FileCredentials:
    try:
        document = json.loads(text)
    except ValueError as e:
        raise UsageError(f"the file looks like JSON but does not parse: {e}") from None
    if not isinstance(document, dict):
        raise UsageError("the JSON file is not an object")
    server, token = document.get("apiserver"), document.get("token")
    if not isinstance(server, str) or not isinstance(token, str) or not token:
        raise UsageError('the JSON file has no "apiserver" and "token" strings')
    # schema bootstrap-token/v1: ca_pem, cacert_path (ca_crt, cacert: files from before v1)
    ca_crt = document.get("ca_pem") or document.get("ca_crt")
    cacert = document.get("cacert_path") or document.get("cacert")

    def text_field(name: str) -> str | None:
        value = document.get(name)
        return value if isinstance(value, str) and value else None

    return FileCredentials(
        format="json",
        server=server,
        token=token,
        ca_pem=ca_crt.encode() if isinstance(ca_crt, str) and ca_crt else None,
        ca_file=str(base / cacert) if isinstance(cacert, str) and cacert else None,
        tls_server_name=text_field("tls_server_name"),
        proxy_url=text_field("proxy_url"),
        namespace=text_field("namespace"),
        expires_at=text_field("expires_at"),
    )


# A user's fields that reach out of the file, and what they would do.
_OUTSIDE = {
    "tokenFile": "takes its token from another file",
    "client-certificate": "takes its client certificate from another file",
    "client-key": "takes its client key from another file",
    "exec": "runs a credential plugin",
    "auth-provider": "runs an auth provider",
}


def _from_kubeconfig(text: str, base: Path, context: str | None) -> FileCredentials:
    from bootstrap.kube.kubeconfig import Kubeconfig, data_field
    from bootstrap.kube.kubeconfig import parse as parse_kubeconfig

    path = base / "kubeconfig"
    try:
        config = Kubeconfig.from_documents([(path, parse_kubeconfig(text, path))])
    except (yaml.YAMLError, ConfigError):
        raise UsageError("the file is neither env, dotenv, JSON nor a kubeconfig") from None
    if not config.contexts:
        raise UsageError("the file is neither env, dotenv, JSON nor a kubeconfig with a context")
    name = context or config.current_context
    if name is None and len(config.contexts) == 1:
        name = next(iter(config.contexts))
    if name is None or name not in config.contexts:
        known = ", ".join(visible(c) for c in sorted(config.contexts))
        raise UsageError(f"the kubeconfig has no context {name!r} (it has: {known})")
    entry = config.contexts[name]
    cluster = config.clusters.get(str(entry.get("cluster")))
    user = config.users.get(str(entry.get("user")))
    if cluster is None or user is None:
        raise UsageError(f"context {name!r} names a cluster or user the file does not define")
    outside = [key for key in _OUTSIDE if user.get(key)]
    if outside:
        raise UsageError(
            f"the user of context {name!r} {_OUTSIDE[outside[0]]} "
            f"(users[].user.{outside[0]}): only credentials written inside the file are "
            "used, and nothing it names is read or run"
        )
    token = user.get("token")
    server = cluster.get("server")
    if not isinstance(token, str) or not token or not isinstance(server, str):
        raise UsageError(f"context {name!r} has no server or no token user")
    where = f"cluster of context {name!r}"
    return FileCredentials(
        format="kubeconfig",
        server=server,
        token=token,
        ca_pem=data_field(cluster.get("certificate-authority-data"), where),
        ca_file=cluster.get("certificate-authority") or None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
        proxy_url=cluster.get("proxy-url") or None,
        namespace=entry.get("namespace") or None,
    )


def read_secret(text: str, base: Path, context: str | None = None) -> FileCredentials | None:
    """The credentials in a Secret manifest of these formats (for `check` and
    `--renew-before`, via parse); None when `text` is not a Secret.
    Errors never quote the file's content."""
    try:
        document = yaml.safe_load(text)
    except _YAML_ERRORS:
        return None
    if not isinstance(document, dict) or document.get("kind") != "Secret":
        return None
    values = _secret_values(document)
    if "value" in values:
        inner = parse(values["value"], base, context=context)
        return replace(inner, format="kubeconfig-secret")
    if "config" not in values or "server" not in values:
        raise UsageError(
            "the Secret holds neither an Argo CD cluster config (server, config) nor a "
            "kubeconfig under value"
        )
    try:
        config = json.loads(values["config"])
        tls = config.get("tlsClientConfig") or {}
        token = config["bearerToken"]
        ca_data = tls.get("caData")
        ca_pem = base64.b64decode(ca_data, validate=True) if ca_data else None
    except (ValueError, TypeError, KeyError, AttributeError):
        raise UsageError(
            "the Argo CD Secret's config is not JSON with a bearerToken and valid caData"
        ) from None
    if not isinstance(token, str) or not token:
        raise UsageError("the Argo CD Secret's config has no bearerToken")
    return FileCredentials(
        format="argocd",
        server=values["server"],
        token=token,
        ca_pem=ca_pem,
        insecure=tls.get("insecure") is True,
        tls_server_name=_text(tls.get("serverName")),
        proxy_url=_text(config.get("proxyUrl")),
    )


def _text(value: object) -> str | None:
    """A non-empty string, else None (a field of the wrong type is taken as absent)."""
    return value if isinstance(value, str) and value else None


def _secret_values(document: Mapping[str, Any]) -> dict[str, str]:
    """`stringData`, else `data` decoded (a Secret read back from the cluster)."""
    values: dict[str, str] = {}
    data = document.get("data")
    if isinstance(data, dict):
        for key, value in data.items():
            try:
                values[str(key)] = base64.b64decode(str(value), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise UsageError(
                    f"the Secret's data.{visible(str(key))} is not base64 text"
                ) from None
    string_data = document.get("stringData")
    if isinstance(string_data, dict):
        values.update({str(k): str(v) for k, v in string_data.items()})
    return values


# --- did the tool write this file? ------------------------------------------------------

# The variables of env and dotenv outputs (emit.variables), after the --env-prefix.
VARIABLES = (
    "APISERVER",
    "TOKEN",
    "CACERT",
    "NAMESPACE",
    "EXPIRES_AT",
    "TLS_SERVER_NAME",
    "CURL_CONNECT_TO",
    "CURL_APISERVER",
    "HTTPS_PROXY",
)
_ENV_HEADER = ("# bootstrap-token: ", "# Use: source this file, then", "#   curl ")
_CLUSTER_KEYS = {
    "server",
    "certificate-authority-data",
    "insecure-skip-tls-verify",
    "tls-server-name",
    "proxy-url",
}


def foreign(text: str, prefix: str = "", context: str | None = None) -> str | None:
    """What in `text` the tool would not have written (None: nothing). An env file
    must be our header and `export NAME='value'` lines of our variables, each quoted
    as we quote; a dotenv file our `NAME=value` lines; a JSON file our keys; in a
    kubeconfig, our `context` and its user and cluster only the fields we write."""
    kind = detect(text)
    if kind == "json":
        return _foreign_json(text)
    if kind == "kubeconfig":
        return _foreign_kubeconfig(text, context)
    names = {prefix + name for name in VARIABLES}
    seen: set[str] = set()
    lines = split_lines(text)
    first = 1
    if kind == "env":
        # (Fewer than three lines fail too: an env file has an export line, no header.)
        if not all(
            line.startswith(head) if head.endswith(" ") else line == head
            for line, head in zip(lines, _ENV_HEADER, strict=False)
        ):
            return "its header is not bootstrap-token's"
        lines, first = lines[3:], 4
    for number, line in enumerate(lines, first):
        match = _ASSIGNMENT.match(line)
        if not match or match.group(1) not in names or match.group(1) in seen:
            return f"an unknown line ({kind} line {number})"
        name, raw = match.groups()
        seen.add(name)
        if kind == "env" and line != f"export {name}={_requote(raw)}":
            return f"a line bootstrap-token does not write ({kind} line {number})"
    return None


def _requote(raw: str) -> str | None:
    """`raw` parsed as one shell word and quoted again as emit.sh_quote does."""
    from bootstrap.outputs.emit import sh_quote

    try:
        words = shlex.split(raw, comments=False, posix=True)
    except ValueError:
        return None
    return sh_quote(words[0]) if len(words) == 1 else None


def _foreign_json(text: str) -> str | None:
    from bootstrap.outputs.emit import JSON_API_VERSION, Issued, json_document

    try:
        document = json.loads(text)
    except ValueError:
        return "JSON that does not parse"
    sample = Issued("c", "https://x", "ns", "sa", "s", "t", None, "id")
    known = set(json_document(sample, None))
    if not isinstance(document, dict) or document.get("apiVersion") != JSON_API_VERSION:
        return "JSON without bootstrap-token's apiVersion"
    unknown = sorted(set(document) - known)
    return f"an unknown JSON key {unknown[0]!r}" if unknown else None


def _foreign_kubeconfig(text: str, context: str | None) -> str | None:
    try:
        document = yaml.safe_load(text)
    except _YAML_ERRORS:
        return "YAML that does not parse"
    if not isinstance(document, dict) or context is None:
        return (
            None
            if isinstance(document, dict) and document.get("kind") == "Secret"
            else ("no context of bootstrap-token's")
        )

    def body(section: str, key: str, name: object) -> dict[str, object] | None:
        for entry in document.get(section) or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                inner = entry.get(key)
                return inner if isinstance(inner, dict) else None
        return None

    ctx = body("contexts", "context", context)
    if ctx is None:
        return f"no context {context!r}"
    user = body("users", "user", ctx.get("user"))
    cluster = body("clusters", "cluster", ctx.get("cluster"))
    checks = (
        ("context", ctx, {"cluster", "user", "namespace"}),
        ("user", user, {"token"}),
        ("cluster", cluster, _CLUSTER_KEYS),
    )
    for what, entry, allowed in checks:
        if entry is None:
            return f"no {what} for context {context!r}"
        unknown = sorted(set(entry) - allowed)
        if unknown:
            return f"a field bootstrap-token does not write ({what} {unknown[0]!r})"
    return None
