"""Step 6: render the issued credentials (pure) and write them safely (I/O).

Formats:
  env         `export APISERVER=... TOKEN=... CACERT=... NAMESPACE=...`, POSIX-quoted,
              for `source` in sh, bash and zsh; CACERT is a CA file written beside it.
  kubeconfig  standalone (CA embedded, token user, context with namespace); merged
              into an existing file without dropping any of its entries.
  json        one object (schema bootstrap-token/v1, see json_document), or a list of
              them for several tokens on stdout.
  dotenv      plain KEY=value lines (GitLab dotenv reports, docker --env-file).
  github      for GitHub Actions: `::add-mask::` for the token on stdout first, then
              the variables appended to $GITHUB_ENV (and non-secret ones to $GITHUB_OUTPUT).

Files are written atomically: a temp file in the same directory, created with
mode 0600 (never wider, not even for an instant), fsynced, then renamed over the
target. A failed write leaves the previous file intact.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bootstrap.errors import OutputError
from bootstrap.kubeconfig import parse


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

    def __repr__(self) -> str:
        return f"Issued(cluster={self.cluster!r}, identity={self.identity!r}, token=<redacted>)"

    @property
    def entry_name(self) -> str:
        """The user and context name used in kubeconfig output."""
        return f"{self.namespace}/{self.service_account}@{self.cluster}"


def sh_quote(value: str) -> str:
    """Single-quote for POSIX shells: nothing inside '...' is special but the quote itself."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def variables(issued: Issued, cacert: Path | None) -> dict[str, str]:
    """The variables every shell-ish format carries, in order."""
    values = {"APISERVER": issued.server, "TOKEN": issued.token}
    if cacert is not None:
        values["CACERT"] = str(cacert)
    values["NAMESPACE"] = issued.namespace
    if issued.expires_at:
        values["EXPIRES_AT"] = issued.expires_at
    return values


def render_env(issued: Issued, cacert: Path | None) -> str:
    lines = [
        f"# bootstrap-token: {_printable(issued.identity)} on cluster {_printable(issued.cluster)}",
        "# Use: source this file, then",
        '#   curl "$APISERVER/api" -H "Authorization: Bearer $TOKEN" --cacert "$CACERT"',
    ]
    lines += [f"export {k}={sh_quote(v)}" for k, v in variables(issued, cacert).items()]
    return "\n".join(lines) + "\n"


def _printable(text: str) -> str:
    """Safe inside a `#` comment line: no line breaks or other control characters."""
    return "".join(c if c.isprintable() else "?" for c in text)


def safe_file_name(name: str) -> str:
    """A cluster name as one file name in the current directory: EKS names clusters
    by ARN (`arn:aws:eks:...:cluster/prod`), and `..` must not climb out."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return cleaned or "cluster"


def render_dotenv(issued: Issued, cacert: Path | None) -> str:
    """KEY=value lines, unquoted: docker --env-file and GitLab dotenv take values verbatim."""
    lines = []
    for key, value in variables(issued, cacert).items():
        if "\n" in value or "\r" in value:
            raise OutputError(f"{key} contains a line break, which dotenv cannot carry")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def render_github_outputs(issued: Issued, cacert: Path | None) -> str:
    """Non-secret step outputs for $GITHUB_OUTPUT; the token stays in the masked env."""
    outputs = {
        "apiserver": issued.server,
        "namespace": issued.namespace,
        "identity": issued.identity,
        "cacert": str(cacert) if cacert else "",
        "expires-at": issued.expires_at or "",
    }
    return "".join(f"{k}={v}\n" for k, v in outputs.items())


def github_mask(issued: Issued) -> str:
    """Registers the token as a secret with the runner, so it is masked in every log line."""
    return f"::add-mask::{issued.token}\n"


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
        "identity": issued.identity,
        "secret": issued.secret or None,
        "token": issued.token,
        "expires_at": issued.expires_at or None,
        "ca_pem": issued.ca_pem.decode("ascii", "replace") if issued.ca_pem else None,
        "cacert_path": str(cacert) if cacert else None,
        "insecure_skip_tls_verify": issued.insecure,
    }


def render_json(issued: Issued, cacert: Path | None) -> str:
    return json.dumps(json_document(issued, cacert), indent=2) + "\n"


def kubeconfig_entries(issued: Issued) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": issued.server}
    if issued.insecure:
        cluster["insecure-skip-tls-verify"] = True
    elif issued.ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(issued.ca_pem).decode()
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


def ca_path_for(out: Path | None, cluster: str, cwd: Path) -> Path:
    """The CA file goes beside the output (`creds.env` -> `creds.ca.crt`), or in the
    current directory when the output is stdout."""
    if out is None:
        return (cwd / f"{safe_file_name(cluster)}.ca.crt").resolve()
    return out.with_name(out.name.rsplit(".", 1)[0] + ".ca.crt").resolve()


def read_existing_kubeconfig(path: Path) -> Mapping[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise OutputError(f"cannot read the existing {path} to merge into it: {e}") from e
    try:
        return parse(text, path)
    except Exception as e:
        raise OutputError(f"cannot merge into {path}: {e}; it is left alone") from e


def append(path: Path, text: str) -> None:
    """Append to a file another program owns (e.g. $GITHUB_ENV); one write call."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise OutputError(_write_failure(path, e)) from None


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a mix."""
    directory = path.parent
    # Short, so any valid target name still leaves room for the temp name.
    tmp = directory / f".bt-{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    except OSError as e:
        raise OutputError(_write_failure(path, e)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(_write_failure(path, e)) from None
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # the rename is done; a directory fsync is best effort on some filesystems


def backup(path: Path) -> Path | None:
    """Keep the previous version of a file we are about to merge into."""
    if not path.exists():
        return None
    target = path.with_name(path.name + ".bak")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise OutputError(f"cannot back up {path} before merging: {e}") from None
    write_atomic(target, data, 0o600)
    return target


def _write_failure(path: Path, error: OSError) -> str:
    reasons = {
        errno.ENOENT: "the directory does not exist",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EFBIG: "file too large for the device or the size limit",
        errno.EISDIR: "it is a directory",
        errno.ENOTDIR: "a parent is not a directory",
    }
    reason = reasons.get(error.errno or 0, error.strerror or type(error).__name__)
    return f"cannot write {path}: {reason}; nothing was changed there"
