"""Step 6: render the issued credentials (pure); `files.py` writes them safely.

Formats:
  env         `export APISERVER=... TOKEN=... CACERT=... NAMESPACE=...`, POSIX-quoted,
              for `source` in sh, bash and zsh; CACERT is a CA file written beside it.
  kubeconfig  standalone (CA embedded, token user, context with namespace); merged
              into an existing file without dropping any of its entries.
  json        one object (schema bootstrap-token/v1, see json_document), or a list of
              them for several tokens on stdout.
  dotenv      plain KEY=value lines (GitLab dotenv reports, docker --env-file), plus
              CACERT_DATA: the CA itself, base64, since a later CI job has no CA file.
  github      for GitHub Actions: `::add-mask::` for the token on stdout first, then
              the variables appended to $GITHUB_ENV (and non-secret ones to $GITHUB_OUTPUT).

Shell-ish formats (env, dotenv, github) may prefix every variable name
(`--env-prefix`), so that several tokens can live in one environment.

Lines: a value of a line-based format (env, dotenv, github) must stay on its
line for every reader of that format: bash and POSIX sh (`\n`; a NUL ends a
string), python-dotenv and docker compose (`\r` too), GitLab's dotenv report and
the GitHub runner's env file parser (`\r`, `\n`), and our own reader (readback.py
splits on `\n` only, as the shells do; `str.splitlines()` would also split on
`\v`, `\f`, `\x1c`-`\x1e`, U+0085, U+2028 and U+2029). `line_safe` refuses all of
these, NUL, and lone surrogates (not UTF-8), rather than escape them: no reader
agrees on an escape.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from bootstrap.errors import OutputError

if TYPE_CHECKING:
    from bootstrap.steps.rules import Rules


@dataclass(frozen=True)
class Issued:
    """A verified token and everything needed to use it."""

    cluster: str
    server: str
    namespace: str
    service_account: str
    secret: str
    token: str
    ca_pem: bytes | None
    identity: str
    insecure: bool = False
    expires_at: str | None = None  # RFC 3339, for short-lived (TokenRequest) tokens
    identity_checked: bool = True  # False: the server would not say who the token is
    powers: tuple[str, ...] | None = None  # what it can do (see powers.py); None: not checked
    tls_server_name: str | None = None  # the kubeconfig's tls-server-name, carried over
    proxy_url: str | None = None  # the kubeconfig's proxy-url, carried over
    can: Rules | None = None  # what it may do in its namespace (rules.py); None: not asked
    lease: str | None = None  # --ttl: when sweep may delete what the run created (RFC 3339)

    def __repr__(self) -> str:
        return f"Issued(cluster={self.cluster!r}, identity={self.identity!r}, token=<redacted>)"

    @property
    def entry_name(self) -> str:
        """The user and context name used in kubeconfig output."""
        return f"{self.namespace}/{self.service_account}@{self.cluster}"


# Everything any reader of a line-based output splits a line on (see the docstring).
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_UNSAFE = re.compile("[\x00" + LINE_BREAKS + "\ud800-\udfff]")


def line_safe(key: str, value: str, format_name: str) -> str:
    """`value` unchanged if it stays one value on one line for every reader of
    `format_name`; else OutputError (before anything is written)."""
    found = _UNSAFE.search(value)
    if found:
        what = "a NUL" if found.group() == "\x00" else f"the line break U+{ord(found.group()):04X}"
        if 0xD800 <= ord(found.group()) <= 0xDFFF:
            what = "a lone surrogate (not UTF-8)"
        raise OutputError(
            f"{key} contains {what}, which {format_name} cannot carry on one line; "
            "use --format json or kubeconfig"
        )
    return value


def sh_quote(value: str) -> str:
    """Single-quote for POSIX shells: nothing inside '...' is special but the quote itself."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def variables(issued: Issued, cacert: Path | None, prefix: str = "") -> dict[str, str]:
    """The variables every shell-ish format carries, in order (docs/compatibility.md),
    named PREFIX + NAME (--env-prefix)."""
    values = {"APISERVER": issued.server, "TOKEN": issued.token}
    if cacert is not None:
        values["CACERT"] = str(cacert)
    values["NAMESPACE"] = issued.namespace
    if issued.expires_at:
        values["EXPIRES_AT"] = issued.expires_at
    if issued.tls_server_name:
        connect_to, url = curl_tls_name(issued.server, issued.tls_server_name)
        values["TLS_SERVER_NAME"] = issued.tls_server_name
        values["CURL_CONNECT_TO"] = connect_to
        values["CURL_APISERVER"] = url
    if issued.proxy_url:
        values["HTTPS_PROXY"] = shell_proxy(issued.proxy_url)
    return {prefix + key: value for key, value in values.items()}


def curl_tls_name(server: str, tls_server_name: str) -> tuple[str, str]:
    """curl cannot set SNI apart from the URL's host: the URL names the TLS name and
    `--connect-to NAME:PORT:HOST:PORT` sends the connection to the real server."""
    parts = urlsplit(server)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    name = f"[{tls_server_name}]" if ":" in tls_server_name else tls_server_name
    url = f"{parts.scheme}://{name}:{port}{parts.path.rstrip('/')}"
    return f"{name}:{port}:{host}:{port}", url


def shell_proxy(proxy_url: str) -> str:
    """client-go lets a SOCKS5 proxy resolve the server's name; curl and most other
    tools do that for socks5h:// only."""
    if proxy_url.lower().startswith("socks5://"):
        return "socks5h://" + proxy_url[len("socks5://") :]
    return proxy_url


def curl_command(issued: Issued, prefix: str = "") -> str:
    """The curl command that fits an env file (documented in docs/compatibility.md)."""
    p = prefix
    auth = f'-H "Authorization: Bearer ${p}TOKEN" --cacert "${p}CACERT"'
    if issued.proxy_url and p:
        # curl reads HTTPS_PROXY by itself, but not a prefixed one.
        auth += f' --proxy "${p}HTTPS_PROXY"'
    if (issued.proxy_url or "").lower().startswith("https://"):
        # Go verifies an https proxy with the cluster's CA too; curl needs to be told.
        auth += f' --proxy-cacert "${p}CACERT"'
    if issued.tls_server_name:
        return f'curl --connect-to "${p}CURL_CONNECT_TO" "${p}CURL_APISERVER/api" {auth}'
    return f'curl "${p}APISERVER/api" {auth}'


def render_env(issued: Issued, cacert: Path | None, prefix: str = "") -> str:
    lines = [
        f"# bootstrap-token: {_printable(issued.identity)} on cluster {_printable(issued.cluster)}",
        "# Use: source this file, then",
        f"#   {curl_command(issued, prefix)}",
    ]
    lines += [
        f"export {k}={sh_quote(line_safe(k, v, 'an env file'))}"
        for k, v in variables(issued, cacert, prefix).items()
    ]
    return "\n".join(lines) + "\n"


def _printable(text: str) -> str:
    """Safe inside a `#` comment line: no line breaks or other control characters."""
    return "".join(c if c.isprintable() else "?" for c in text)


def safe_file_name(name: str) -> str:
    """A cluster name as one file name in the current directory: EKS names clusters
    by ARN (`arn:aws:eks:...:cluster/prod`), and `..` must not climb out."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return cleaned or "cluster"


def render_dotenv(
    issued: Issued, cacert: Path | None, prefix: str = "", ca_data: bool = False
) -> str:
    """KEY=value lines, unquoted: docker --env-file and GitLab dotenv take values verbatim.

    `ca_data` (--format dotenv) adds CACERT_DATA, the CA as one base64 line: a GitLab
    dotenv report reaches jobs of later stages, where the CACERT file of the job that
    wrote it does not exist (docs/ci.md: `echo "$CACERT_DATA" | base64 -d > ca.crt`)."""
    values = variables(issued, cacert, prefix)
    if ca_data and issued.ca_pem:
        values[prefix + "CACERT_DATA"] = base64.b64encode(issued.ca_pem).decode("ascii")
    lines = []
    for key, value in values.items():
        lines.append(f"{key}={line_safe(key, value, 'dotenv')}")
    return "\n".join(lines) + "\n"


def render_github_outputs(issued: Issued, cacert: Path | None, prefix: str = "") -> str:
    """Non-secret step outputs for $GITHUB_OUTPUT; the token stays in the masked env.
    Named `prefix` in lower case + name: `DEV_` gives `dev_apiserver`."""
    outputs = {
        "apiserver": issued.server,
        "namespace": issued.namespace,
        "identity": issued.identity,
        "cacert": str(cacert) if cacert else "",
        "expires-at": issued.expires_at or "",
    }
    return "".join(
        f"{prefix.lower()}{k}={line_safe(k, v, '$GITHUB_OUTPUT')}\n" for k, v in outputs.items()
    )


def github_mask(issued: Issued) -> str:
    """Registers the token as a secret with the runner, so it is masked in every log line."""
    return f"::add-mask::{line_safe('TOKEN', issued.token, 'a workflow command')}\n"


# The Secret manifests of deliver.py, and their file extensions (named here so that a
# run writing another format never imports deliver).
SECRET_FORMATS = {"argocd": "argocd.yaml", "kubeconfig-secret": "kubeconfig-secret.yaml"}
JSON_API_VERSION = "bootstrap-token/v1"


def json_document(issued: Issued, cacert: Path | None) -> dict[str, Any]:
    """The json output and the Python API's result, schema `bootstrap-token/v1`.

    Stable: a field is never renamed or removed within v1; new fields may be added
    (add them here, the one place). A value that does not apply is null, never "".
    `ca_pem` is the CA certificate itself (PEM text); `cacert_path` is the file it was
    written to (null when none was written).
    """
    return {
        "apiVersion": JSON_API_VERSION,
        "cluster": issued.cluster,
        "apiserver": issued.server,
        "namespace": issued.namespace,
        "service_account": issued.service_account,
        "identity": issued.identity if issued.identity_checked else None,
        "identity_checked": issued.identity_checked,
        "secret": issued.secret or None,
        "token": issued.token,
        "expires_at": issued.expires_at or None,
        "ca_pem": issued.ca_pem.decode("ascii", "replace") if issued.ca_pem else None,
        "cacert_path": str(cacert) if cacert else None,
        "insecure_skip_tls_verify": issued.insecure,
        "tls_server_name": issued.tls_server_name,
        "proxy_url": issued.proxy_url,
        "powers": list(issued.powers) if issued.powers is not None else None,
        # SelfSubjectRulesReview in the namespace, as the API returns the rules (rules.py)
        "can": list(issued.can.can) if issued.can is not None else None,
        "can_incomplete": issued.can.incomplete if issued.can is not None else None,
        "can_evaluation_error": issued.can.evaluation_error if issued.can is not None else None,
    }


def render_json(issued: Issued, cacert: Path | None) -> str:
    return json.dumps(json_document(issued, cacert), indent=2) + "\n"


def kubeconfig_entries(issued: Issued) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": issued.server}
    if issued.insecure:
        cluster["insecure-skip-tls-verify"] = True
    elif issued.ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(issued.ca_pem).decode()
    if issued.tls_server_name:
        cluster["tls-server-name"] = issued.tls_server_name
    if issued.proxy_url:
        cluster["proxy-url"] = issued.proxy_url
    name = issued.entry_name
    return {
        "clusters": [{"name": issued.cluster, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": issued.token}}],
        "contexts": [
            {
                "name": name,
                "context": {
                    "cluster": issued.cluster,
                    "user": name,
                    "namespace": issued.namespace,
                },
            }
        ],
    }


def render_kubeconfig(issued: Issued, existing: Mapping[str, Any] | None = None) -> str:
    """A standalone kubeconfig, or `existing` with our entries merged in.

    Merge rules: every existing entry is kept. Our user and context (named
    NS/SA@CLUSTER) replace earlier ones of the same name: they are ours. A
    cluster of the same name is kept as is when it points at the same server,
    and is an error when it points elsewhere. current-context is set only
    when the file has none.
    """
    ours = kubeconfig_entries(issued)
    if existing is None:
        document: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "preferences": {}}
        document.update(ours)
        document["current-context"] = issued.entry_name
        return yaml.safe_dump(document, sort_keys=False)

    document = dict(existing)
    document.setdefault("apiVersion", "v1")
    document.setdefault("kind", "Config")
    for section in ("clusters", "users", "contexts"):
        current = document.get(section) or []
        if not isinstance(current, list):
            raise OutputError(f"cannot merge: '{section}' in the existing kubeconfig is not a list")
        merged = list(current)
        for entry in ours[section]:
            index = next(
                (
                    i
                    for i, e in enumerate(merged)
                    if isinstance(e, dict) and e.get("name") == entry["name"]
                ),
                None,
            )
            if index is None:
                merged.append(entry)
            elif section == "clusters":
                body = merged[index].get("cluster")
                server = body.get("server") if isinstance(body, dict) else None
                if str(server).rstrip("/") != issued.server:
                    raise OutputError(
                        f"cannot merge: the existing kubeconfig already has a cluster named "
                        f"{issued.cluster!r} with server {server!r}; it is left alone: "
                        "choose another --out"
                    )
            else:
                merged[index] = entry
        document[section] = merged
    if not document.get("current-context"):
        document["current-context"] = issued.entry_name
    return yaml.safe_dump(document, sort_keys=False)
