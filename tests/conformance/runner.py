"""Running the three programs a variant compares: kubectl (the oracle),
bootstrap-token (under any Python), and curl as a user runs it after
`source FILE.env` (the command documented in docs/compatibility.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.conftest import TRANSCRIPT, Result, remember_token

# Nothing from the caller's environment may steer a variant: each one says
# exactly which of these it sets.
_SCRUBBED = {
    "KUBECONFIG",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "KUBERNETES_EXEC_INFO",
}


def environment(extra: Mapping[str, str], home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SCRUBBED}
    env["HOME"] = str(home)  # kubectl's cache and ~/.kube/config stay out of the way
    env.update(extra)
    return env


def kubectl(args: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 30) -> Result:
    process = subprocess.run(
        ["kubectl", "--request-timeout=10s", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=dict(env),
        cwd=cwd,
        timeout=timeout,
    )
    return Result(args, process.returncode, process.stdout, process.stderr)


def whoami(result: Result) -> dict[str, Any]:
    """userInfo from `kubectl auth whoami -o json`."""
    info: dict[str, Any] = json.loads(result.stdout)["status"]["userInfo"]
    return info


def tool(
    args: list[str],
    env: Mapping[str, str],
    cwd: Path,
    python: str | None = None,
    timeout: float = 60,
) -> Result:
    """bootstrap-token as a whole process; what it prints joins the session's leak check."""
    env = dict(env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # cache the bytecode: ~100 runs of the tool
    if "PYTHONPATH" not in env and os.environ.get("CONFORMANCE_PRODUCT"):
        env["PYTHONPATH"] = os.environ["CONFORMANCE_PRODUCT"]
    process = subprocess.run(
        [python or sys.executable, "-m", "bootstrap", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=dict(env),
        cwd=cwd,
        timeout=timeout,
    )
    label = " ".join(args)
    TRANSCRIPT.outputs.append((f"stderr of: {label}", process.stderr))
    TRANSCRIPT.outputs.append((f"stdout of: {label}", process.stdout))
    return Result(args, process.returncode, process.stdout, process.stderr)


_SSR = '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}'
# First the command the env file itself shows (its third line, "#   curl ..."), verbatim;
# then the documented command (docs/compatibility.md) as a SelfSubjectReview, to learn
# who the token is.
_CURL = r"""
set -eu
. "$1"
own=$(sed -n 3p "$1")
case "$own" in
  "#   curl "*) eval "${own#\#   }" ;;
  *) echo "the env file's third line is not its curl command: $own" >&2; exit 97 ;;
esac
printf "\n@@@@\n"
proxy=()
case "${HTTPS_PROXY:-}" in https://*) proxy=(--proxy-cacert "$CACERT") ;; esac
if [ -n "${CURL_CONNECT_TO:-}" ]; then
  curl -sS --fail --max-time 10 --connect-to "$CURL_CONNECT_TO" "$CURL_APISERVER/apis/authentication.k8s.io/v1/selfsubjectreviews" -H "Authorization: Bearer $TOKEN" --cacert "$CACERT" "${proxy[@]}" -H 'Content-Type: application/json' -d "$2"
else
  curl -sS --fail --max-time 10 "$APISERVER/apis/authentication.k8s.io/v1/selfsubjectreviews" -H "Authorization: Bearer $TOKEN" --cacert "$CACERT" "${proxy[@]}" -H 'Content-Type: application/json' -d "$2"
fi
"""


def read_env_file(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["bash", "-c", f'. "{path}" && env -0'],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    ).stdout
    values = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    if "TOKEN" in values:
        remember_token(values["TOKEN"])
    return values


def curl_as_env_file(env_file: Path, env: Mapping[str, str], cwd: Path) -> tuple[str, str]:
    """Source the env file in bash and run its own curl command and the documented
    one: (the kind GET /api answered, the SelfSubjectReview's username). Raises
    AssertionError with curl's error."""
    process = subprocess.run(
        ["bash", "-c", _CURL, "curl-check", str(env_file), _SSR],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=dict(env),
        cwd=cwd,
        timeout=30,
    )
    assert process.returncode == 0, f"documented curl failed: {process.stderr.strip()}"
    api, review = process.stdout.split("\n@@@@\n", 1)
    return json.loads(api)["kind"], json.loads(review)["status"]["userInfo"]["username"]
