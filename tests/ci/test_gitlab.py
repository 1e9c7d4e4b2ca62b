"""The GitLab CI/CD component (templates/bootstrap-token.yml) run by gitlab-ci-local with the
shell executor against the dev cluster.

The pipeline is the README's GitLab example, with the component included as `local:` (the
same file a `component:` include fetches) and the one-file build fetched from a file:// URL.
`--shell-isolation` gives every job its own copy of the project, and the later job also starts
in an empty directory of its own: it reaches the API with the dotenv report's variables alone,
TLS verified with the CA from CACERT_DATA. A `.post` job revokes the token (the README's
"revoke at the end" for GitLab).

gitlab-ci-local runs a job that names an image in docker, which this machine lacks: the test's
pipeline sets the component job's `image: null` (with json schema validation off for that
run only; a first run with validation on checks the pipeline as GitLab would).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import yaml

from tests.ci.conftest import load, readme_ci_examples
from tests.cluster.test_features import eventually_status
from tests.cluster.test_readme import readme_kubeconfig
from tests.conftest import REPO, TRANSCRIPT, Admin, DevCluster, remember_token


def pipeline(namespace: str, pyz: Path) -> dict[str, object]:
    example = readme_ci_examples()[1]
    document = load(example.replace("namespace: ci", f"namespace: {namespace}"))
    (include,) = document["include"]
    assert include.pop("component") == (
        "$CI_SERVER_FQDN/your-group/bootstrap-token/bootstrap-token@1"
    )
    include["local"] = "templates/bootstrap-token.yml"
    assert include["inputs"]["pyz"] == "https://your-host/bootstrap-token.pyz"
    include["inputs"]["pyz"] = f"file://{pyz}"
    deploy = document["deploy"]
    assert deploy["stage"] == "deploy"
    deploy["script"] = [
        'cd "$(mktemp -d)"',
        *deploy["script"],
        'curl -sS --fail "$APISERVER/api" -H "Authorization: Bearer $TOKEN" --cacert ca.crt '
        '-o /dev/null -w "curl: %{http_code}\\n"',
        'KUBECONFIG=/dev/null kubectl auth whoami --server "$APISERVER" --token "$TOKEN" '
        "--certificate-authority ca.crt -o jsonpath='whoami: {.status.userInfo.username}{\"\\n\"}'",
        'echo "expires: $EXPIRES_AT"',
        'printf %s "$TOKEN" > "$TOKEN_FILE"',
    ]
    document["revoke"] = {
        "stage": ".post",
        "when": "always",
        "script": [
            f'python3 {pyz} revoke --kubeconfig "$ADMIN_KUBECONFIG" --cluster prod '
            f"-n {namespace} --service-account deployer --all"
        ],
    }
    return document


def gitlab_ci_local_run(
    binary: Path, project: Path, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    home = project.parent / "home"  # no ~/.gitlab-ci-local/variables.yml of the machine
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [str(binary), "--no-color", "--max-job-name-padding", "0", *args],
        capture_output=True, text=True, timeout=timeout, cwd=project,
        env={**os.environ, "HOME": str(home)},
    )  # fmt: skip


def test_the_component_in_gitlab_ci_local_hands_credentials_to_a_later_stage(
    gitlab_ci_local: Path,
    pyz: Path,
    dev_cluster: DevCluster,
    admin: Admin,
    namespace: str,
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "templates").mkdir(parents=True)
    shutil.copy(REPO / "templates" / "bootstrap-token.yml", project / "templates")
    document = pipeline(namespace, pyz)
    (project / ".gitlab-ci.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    git = ["git", "-C", str(project), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "pipeline"], check=True)
    # As GitLab would see it (schema validation on): the jobs and their stages.
    listed = gitlab_ci_local_run(gitlab_ci_local, project, "--list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    jobs = {line.split()[0]: line for line in listed.stdout.splitlines()[1:] if line.strip()}
    assert set(jobs) == {"bootstrap-token", "deploy", "revoke"}, listed.stdout
    assert ".pre" in jobs["bootstrap-token"]

    document["bootstrap-token"] = {"image": None}  # shell executor: see the module docstring
    (project / ".gitlab-ci.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    subprocess.run([*git, "commit", "-qam", "shell executor"], check=True)
    kubeconfig = readme_kubeconfig(dev_cluster, tmp_path / "admin.kubeconfig")
    token_file = tmp_path / "token"
    start = time.monotonic()
    process = gitlab_ci_local_run(
        gitlab_ci_local, project, "--json-schema-validation=false", "--shell-isolation",
        "--variable", f"ADMIN_KUBECONFIG={kubeconfig}", "--variable", f"TOKEN_FILE={token_file}",
    )  # fmt: skip
    elapsed = time.monotonic() - start
    log = process.stdout + process.stderr
    token = token_file.read_text() if token_file.exists() else ""
    remember_token(token)
    TRANSCRIPT.outputs.append(("gitlab-ci-local's log", log))
    (REPO / ".tools" / "logs").mkdir(parents=True, exist_ok=True)  # gitignored
    (REPO / ".tools" / "logs" / "gitlab-ci-local.log").write_text(f"{elapsed:.1f} s\n{log}")
    assert process.returncode == 0, log[-6000:]
    assert len(token) > 100
    assert token not in log
    whoami = f"system:serviceaccount:{namespace}:deployer"
    assert "deploy > curl: 200" in log, log[-6000:]
    assert f"deploy > whoami: {whoami}" in log
    assert re.search(r"^deploy > expires: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", log, re.M), log
    for job in ("bootstrap-token", "deploy", "revoke"):
        assert re.search(rf"PASS\s+{re.escape(job)}\b", log), log[-3000:]
    # the dotenv report: the CA travels inside it
    report = (project / ".gitlab-ci-local" / "artifacts" / "bootstrap-token" / ".gitlab-ci-reports"
              / "dotenv" / "bootstrap-token.env")  # fmt: skip
    names = [line.split("=", 1)[0] for line in report.read_text().splitlines()]
    assert names == ["APISERVER", "TOKEN", "CACERT", "NAMESPACE", "EXPIRES_AT", "CACERT_DATA"]
    assert report.stat().st_size < 5120  # GitLab's limit for a dotenv report
    # revoked by the .post job
    assert eventually_status(admin, token, 401) == 401
