"""Exec credential plugins (client.authentication.k8s.io v1 and v1beta1), run the
way client-go's `plugin/pkg/client/auth/exec` runs them.

- `command` is looked up on PATH, or, when it contains a path separator and is
  relative, next to the kubeconfig file that defined it (kubeconfig.py resolves
  that while merging). `args` and `env` are passed on.
- `KUBERNETES_EXEC_INFO` holds an ExecCredential with `spec.interactive`, and
  with `provideClusterInfo: true` also `spec.cluster` (server, CA data,
  tls-server-name, insecure-skip-tls-verify, proxy-url, disable-compression and
  `config` from the cluster extension `client.authentication.k8s.io/exec`).
- `interactiveMode` (required in v1; v1beta1 defaults to IfAvailable): Never,
  IfAvailable (interactive when stdin is a terminal), Always (fails without one).
  Only an interactive plugin gets our stdin; its stderr then goes straight to ours
  (prompts). Otherwise stderr is captured: replayed on success, and its last line
  ends the error message on failure.
- The plugin (and its process group) is killed at the run's deadline, or once it has
  written more than MAX_STDOUT to stdout. Of its stderr, however long, only the first and
  the last MAX_STDERR bytes are kept.

Messages follow client-go's ("exec: executable X not found", "exec plugin didn't
return a token or cert/key pair", ...), prefixed with the user's name.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from bootstrap.errors import ConfigError

GROUP = "client.authentication.k8s.io"
VERSIONS = (f"{GROUP}/v1", f"{GROUP}/v1beta1")
CLUSTER_EXTENSION = f"{GROUP}/exec"
MODES = ("Never", "IfAvailable", "Always")
# What of a plugin's stderr is shown (after a success); the rest is only counted.
MAX_STDERR = 64 * 1024
# An ExecCredential is a few KB (a token, or a certificate and key); more is refused.
MAX_STDOUT = 4 * 1024 * 1024
_INSTALL_HELP = (
    "\n\nIt looks like you are trying to use a client-go credential plugin that is not "
    "installed.\n\nTo learn more about this feature, consult the documentation available at:\n"
    "      https://kubernetes.io/docs/reference/access-authn-authz/authentication/"
    "#client-go-credential-plugins"
)


class ExecError(Exception):
    """A plugin failure, in client-go's words."""


@dataclass(frozen=True)
class ExecConfig:
    command: str
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    api_version: str
    interactive_mode: str
    provide_cluster_info: bool
    install_hint: str


@dataclass(frozen=True)
class ExecResult:
    token: str | None
    cert_pem: bytes | None
    key_pem: bytes | None
    expires_at: str | None

    def __repr__(self) -> str:
        return "ExecResult(<redacted>)"


def exec_config(exec_entry: object, user: str) -> ExecConfig:
    """Validate a user's `exec` block as clientcmd's validation does."""
    if not isinstance(exec_entry, Mapping):
        raise ConfigError(f"user {user!r}: 'exec' must be a mapping")
    problems = []
    command = exec_entry.get("command")
    if not isinstance(command, str) or not command:
        problems.append(f"command must be specified for {user} to use exec authentication plugin")
    api_version = exec_entry.get("apiVersion")
    if not isinstance(api_version, str) or not api_version:
        problems.append(
            f"apiVersion must be specified for {user} to use exec authentication plugin"
        )
    env: list[tuple[str, str]] = []
    for item in exec_entry.get("env") or []:
        if not isinstance(item, Mapping) or not item.get("name"):
            problems.append(
                f"env variable name must be specified for {user} to use exec authentication plugin"
            )
            continue
        env.append((str(item["name"]), str(item.get("value") or "")))
    mode = exec_entry.get("interactiveMode") or ""
    if not mode and api_version == f"{GROUP}/v1beta1":
        mode = "IfAvailable"  # clientcmd's default for v1beta1 only
    if not mode:
        problems.append(
            f"interactiveMode must be specified for {user} to use exec authentication plugin"
        )
    elif mode not in MODES:
        problems.append(f"invalid interactiveMode for {user}: {mode!r}")
    if problems:
        raise ConfigError(f"user {user!r}: invalid configuration: " + "; ".join(problems))
    if api_version not in VERSIONS:
        raise ConfigError(f"user {user!r}: exec plugin: invalid apiVersion {api_version!r}")
    args = exec_entry.get("args") or []
    if not isinstance(args, list):
        raise ConfigError(f"user {user!r}: exec 'args' must be a list")
    return ExecConfig(
        command=str(command),
        args=tuple(str(a) for a in args),
        env=tuple(env),
        api_version=str(api_version),
        interactive_mode=str(mode),
        provide_cluster_info=exec_entry.get("provideClusterInfo") is True,
        install_hint=str(exec_entry.get("installHint") or ""),
    )


def cluster_info(cluster: Mapping[str, Any], server: str, ca_pem: bytes | None) -> dict[str, Any]:
    """spec.cluster as client-go's ConfigToExecCluster fills it (empty fields omitted)."""
    info: dict[str, Any] = {"server": server}
    for key in ("tls-server-name", "proxy-url"):
        if cluster.get(key):
            info[key] = str(cluster[key])
    if cluster.get("insecure-skip-tls-verify") is True:
        info["insecure-skip-tls-verify"] = True
    if ca_pem:
        info["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    if cluster.get("disable-compression") is True:
        info["disable-compression"] = True
    for extension in cluster.get("extensions") or []:
        if isinstance(extension, Mapping) and extension.get("name") == CLUSTER_EXTENSION:
            info["config"] = extension.get("extension")
    return info


def exec_info(config: ExecConfig, interactive: bool, cluster: Mapping[str, Any] | None) -> str:
    """The KUBERNETES_EXEC_INFO value."""
    spec: dict[str, Any] = {"interactive": interactive}
    if config.provide_cluster_info and cluster is not None:
        spec["cluster"] = dict(cluster)
    document = {"kind": "ExecCredential", "apiVersion": config.api_version, "spec": spec}
    return json.dumps(document, separators=(",", ":"))


def is_interactive(mode: str, stdin_is_terminal: bool) -> bool:
    if mode == "Never":
        return False
    if mode == "Always" and not stdin_is_terminal:
        raise ExecError(
            "exec plugin cannot support interactive mode: standard input is not a terminal"
        )
    return stdin_is_terminal


def parse_output(stdout: bytes, api_version: str) -> ExecResult:
    """Check the plugin's ExecCredential as client-go does."""
    try:
        document = json.loads(stdout)
    except (ValueError, UnicodeDecodeError) as e:
        document = _yaml(stdout)  # client-go's universal decoder also reads YAML
        if document is None:
            raise ExecError(f"decoding stdout: {e}"[:300]) from None
    if not isinstance(document, dict):
        raise ExecError("decoding stdout: not a JSON object")
    returned = document.get("apiVersion")
    if document.get("kind") != "ExecCredential" or not returned:
        raise ExecError("decoding stdout: not an ExecCredential (kind or apiVersion missing)")
    if returned != api_version:
        raise ExecError(
            f"exec plugin is configured to use API version {api_version}, "
            f"plugin returned version {returned}"
        )
    status = document.get("status")
    if not isinstance(status, dict):
        raise ExecError("exec plugin didn't return a status field")
    token = status.get("token") or ""
    cert = status.get("clientCertificateData") or ""
    key = status.get("clientKeyData") or ""
    if not all(isinstance(v, str) for v in (token, cert, key)):
        raise ExecError("decoding stdout: status fields must be strings")
    if not token and not cert and not key:
        raise ExecError("exec plugin didn't return a token or cert/key pair")
    if bool(cert) != bool(key):
        raise ExecError("exec plugin returned only certificate or key, not both")
    expires = status.get("expirationTimestamp")
    return ExecResult(
        token=token or None,
        cert_pem=cert.encode() if cert else None,
        key_pem=key.encode() if key else None,
        expires_at=str(expires) if expires else None,
    )


def run(
    config: ExecConfig,
    cluster: Mapping[str, Any] | None,
    timeout: float,
    environ: Mapping[str, str],
    stdin_is_terminal: bool | None = None,
) -> ExecResult:
    """Run the plugin once; ExecError says why it gave no credentials."""
    if stdin_is_terminal is None:
        stdin_is_terminal = _stdin_is_terminal()
    interactive = is_interactive(config.interactive_mode, stdin_is_terminal)
    env = dict(environ)
    env.update(config.env)
    env["KUBERNETES_EXEC_INFO"] = exec_info(config, interactive, cluster)
    executable = shutil.which(config.command, path=env.get("PATH"))
    if executable is None:
        hint = _INSTALL_HELP + (f"\n\n{config.install_hint}" if config.install_hint else "")
        raise ExecError(f"exec: executable {config.command} not found{hint}")
    try:
        process = subprocess.Popen(
            [executable, *config.args],
            env=env,
            stdin=None if interactive else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None if interactive else subprocess.PIPE,
            # Its own process group (unless it needs our terminal), so everything it
            # started dies with it at the deadline.
            start_new_session=not interactive,
        )
    except OSError as e:
        raise ExecError(f"exec: {e.strerror or e}") from None
    try:
        stdout, stderr = _collect(process, max(0.01, timeout))
    except subprocess.TimeoutExpired:
        _kill(process, group=not interactive)
        raise ExecError(
            f"exec: executable {config.command} did not finish before --timeout; killed it"
        ) from None
    except _TooMuch:
        _kill(process, group=not interactive)
        raise ExecError(
            f"exec: executable {config.command} wrote more than {MAX_STDOUT >> 20} MiB to "
            "stdout; killed it"
        ) from None
    if process.returncode != 0:
        last = _last_line(stderr.tail)
        raise ExecError(
            f"exec: executable {config.command} failed with exit code {process.returncode}"
            + (f": {last}" if last else "")
        )
    result = parse_output(stdout, config.api_version)
    if stderr.total:
        replay_stderr(stderr.head, result, stderr.total)
    return result


class _TooMuch(Exception):
    """The plugin wrote more than MAX_STDOUT to stdout."""


@dataclass
class _Stderr:
    """What is kept of a plugin's stderr, however much it writes: the first MAX_STDERR
    bytes (replayed), the last MAX_STDERR bytes (for the last line) and the count."""

    head: bytes = b""
    tail: bytes = b""
    total: int = 0

    def add(self, chunk: bytes) -> None:
        if len(self.head) < MAX_STDERR:
            self.head += chunk[: MAX_STDERR - len(self.head)]
        self.tail = (self.tail + chunk)[-MAX_STDERR:]
        self.total += len(chunk)


def _collect(process: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, _Stderr]:
    """Read the plugin's stdout (at most MAX_STDOUT, else _TooMuch) and stderr (kept as
    _Stderr) until both end and it exits; TimeoutExpired past `timeout` seconds. Unlike
    communicate(), what a plugin writes never grows our memory beyond those bounds."""
    import selectors
    import time

    deadline = time.monotonic() + timeout
    stdout, stderr = bytearray(), _Stderr()
    with selectors.DefaultSelector() as selector:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(process.args, timeout)
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.fileobj is process.stdout:
                    stdout += chunk
                    if len(stdout) > MAX_STDOUT:
                        raise _TooMuch
                else:
                    stderr.add(chunk)
    process.wait(timeout=max(0.0, deadline - time.monotonic()))
    return bytes(stdout), stderr


def replay_stderr(stderr: bytes, result: ExecResult, total: int | None = None) -> None:
    """Show what the plugin said on stderr, once the credential it returned is
    registered for redaction (a plugin with debug logging may print it): redacted,
    control characters made visible, at most MAX_STDERR bytes (the rest counted).
    `total`: how many bytes it wrote, when `stderr` holds only the first ones."""
    total = len(stderr) if total is None else total
    from bootstrap.redact import redact, register
    from bootstrap.sanitize import visible

    register(result.token)
    register(result.key_pem.decode("utf-8", "replace") if result.key_pem else None)
    # Redacted whole first (a key spans lines), then each line made visible.
    text = redact(stderr[:MAX_STDERR].decode("utf-8", "replace"))
    lines = [visible(line) for line in text.split("\n")]
    if lines and not lines[-1]:
        lines.pop()
    out = "".join(f"{line}\n" for line in lines)
    if total > MAX_STDERR:
        out += f"[exec plugin stderr: {total - MAX_STDERR} more bytes not shown]\n"
    sys.stderr.write(out)
    sys.stderr.flush()


def _yaml(stdout: bytes) -> Any:
    import yaml

    try:
        document = yaml.safe_load(stdout.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _kill(process: subprocess.Popen[bytes], group: bool) -> None:
    with suppress(OSError):
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    # Pipes may be held open by a grandchild that escaped the group: don't wait for EOF.
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            with suppress(OSError):
                stream.close()
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=1)


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    from bootstrap.redact import redact
    from bootstrap.sanitize import visible

    return redact(visible(lines[-1][:300]))


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and os.isatty(sys.stdin.fileno())
    except (OSError, ValueError):
        return False
