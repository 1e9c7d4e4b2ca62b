"""The GitHub Action (action.yml) run by act in host mode against the dev cluster.

One workflow, three jobs run one after the other (they share a ServiceAccount name):
- `readme`: the README's Action example as written (the action used as `uses: ./`, after a
  first step that copies the checkout into the empty host-mode workspace, standing in for
  actions/checkout), plus steps that use only what the action exported: `kubectl auth whoami`
  (the README's), curl with TLS verified, the outputs, and an echo of $TOKEN (masked).
- `kubeconfig`: `format: kubeconfig` writes a kubeconfig that kubectl uses through $KUBECONFIG.
- `plain`: the README's plain-CLI step (the one-file build, fetched with curl from a file://
  URL instead of a web server).
act's whole log is then searched for the token: it must appear only as `***`.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from tests.ci.conftest import load, readme_ci_examples
from tests.cluster.test_features import eventually_status
from tests.cluster.test_readme import readme_kubeconfig
from tests.conftest import REPO, TRANSCRIPT, Admin, DevCluster, remember_token

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

CHECKOUT = {
    "name": "Check out (stands in for actions/checkout: the host-mode workspace starts empty)",
    "run": 'cd "$CHECKOUT" && git ls-files -co --exclude-standard -z '
    '| xargs -0 tar cf - | tar xf - -C "$GITHUB_WORKSPACE"',
}


def with_namespace(text: str, namespace: str) -> str:
    return text.replace("namespace: ci", f"namespace: {namespace}").replace(
        " -n ci ", f" -n {namespace} "
    )


def print_outputs(job: str) -> dict[str, str]:
    names = ("apiserver", "identity", "expires", "kubeconfig")
    lines = [f"echo '{job} output {n}=${{{{ steps.creds.outputs.{n} }}}}'" for n in names]
    return {"name": "outputs", "run": "\n".join(lines)}


def outputs_of(job: str, log: str) -> dict[str, str]:
    return dict(re.findall(rf"\| {job} output (\w+)=(.*)$", log, re.M))


def workflow(namespace: str, pyz: Path) -> dict[str, Any]:
    action_example, _, plain_example = readme_ci_examples()
    assert "uses: your-org/bootstrap-token@v1" in action_example
    readme = load(with_namespace(action_example, namespace))["jobs"]["deploy"]
    steps = readme["steps"]
    write_kubeconfig, use, whoami, revoke = steps
    assert use["uses"] == "your-org/bootstrap-token@v1"
    use["uses"], use["id"] = "./", "creds"
    assert revoke["if"] == "always()" and " revoke " in revoke["run"]
    readme["steps"] = [
        CHECKOUT,
        write_kubeconfig,
        use,
        whoami,
        {"name": "curl, TLS verified", "run": 'curl -sS --fail "$APISERVER/api" '
         '-H "Authorization: Bearer $TOKEN" --cacert "$CACERT" -o /dev/null -w "curl: %{http_code}\\n"'},
        print_outputs("readme"),
        {"name": "PATH", "run": 'echo "python3: $(command -v python3)"'},
        {"name": "masked", "run": 'echo "the token: $TOKEN"; printf %s "$TOKEN" > "$TOKEN_FILE.readme"'},
        revoke,
    ]  # fmt: skip
    kubeconfig_job = {
        "runs-on": "ubuntu-latest",
        "needs": "readme",
        "steps": [
            CHECKOUT,
            write_kubeconfig,
            {
                "uses": "./",
                "id": "creds",
                "with": {
                    "kubeconfig": "${{ runner.temp }}/admin.kubeconfig",
                    "cluster": "prod",
                    "namespace": namespace,
                    "service-account": "deployer",
                    "role": "view-pods, edit-nothing",
                    "format": "kubeconfig",
                },
            },
            {"run": "kubectl auth whoami -o jsonpath='whoami: {.status.userInfo.username}{\"\\n\"}'"},
            print_outputs("kubeconfig"),
            {"run": 'echo "KUBECONFIG=$KUBECONFIG"'},
            {"run": 'printf %s "$(sed -n "s/^ *token: //p" "$KUBECONFIG")" > "$TOKEN_FILE.kubeconfig"'},
            revoke,
        ],
    }  # fmt: skip
    plain = load(with_namespace(plain_example, namespace))
    assert (
        len(plain) == 1 and "curl -fsSLO https://your-host/bootstrap-token.pyz" in plain[0]["run"]
    )
    plain[0]["run"] = plain[0]["run"].replace(
        "https://your-host/bootstrap-token.pyz", f"file://{pyz}"
    )
    plain_job = {
        "runs-on": "ubuntu-latest",
        "needs": "kubeconfig",
        "steps": [
            write_kubeconfig,
            *plain,
            {"run": 'curl -sS --fail "$APISERVER/api" -H "Authorization: Bearer $TOKEN" '
             '--cacert "$CACERT" -o /dev/null -w "plain curl: %{http_code}\\n"'},
            {"run": 'printf %s "$TOKEN" > "$TOKEN_FILE.plain"'},
            {"if": "always()", "run": revoke["run"].replace("bootstrap-token revoke",
                                                             "python3 bootstrap-token.pyz revoke")},
        ],
    }  # fmt: skip
    return {
        "name": "bootstrap-token action",
        "on": "push",
        "jobs": {"readme": readme, "kubeconfig": kubeconfig_job, "plain": plain_job},
    }


def test_the_action_in_act_issues_masks_exports_and_revokes(
    act: Path, pyz: Path, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    for role in ("view-pods", "edit-nothing"):
        body = {"metadata": {"name": role}, "rules": []}
        status, _ = admin.request(
            "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles", body
        )
        assert status == 201
    flow = tmp_path / "workflow.yml"
    flow.write_text(yaml.safe_dump(workflow(namespace, pyz), sort_keys=False))
    kubeconfig = readme_kubeconfig(dev_cluster, tmp_path / "admin.kubeconfig")
    token_file = tmp_path / "token"
    start = time.monotonic()
    process = subprocess.run(
        [str(act), "push", "-W", str(flow), "-P", "ubuntu-latest=-self-hosted",
         "--action-offline-mode", "-s", f"ADMIN_KUBECONFIG={kubeconfig.read_text()}",
         "--env", f"CHECKOUT={REPO}", "--env", f"TOKEN_FILE={token_file}"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    elapsed = time.monotonic() - start
    log = process.stdout + process.stderr
    tokens = {
        job: (Path(f"{token_file}.{job}").read_text() if Path(f"{token_file}.{job}").exists() else "")
        for job in ("readme", "kubeconfig", "plain")
    }  # fmt: skip
    for token in tokens.values():
        remember_token(token)
    TRANSCRIPT.outputs.append(("act's log", log))
    (REPO / ".tools" / "logs").mkdir(parents=True, exist_ok=True)  # gitignored
    (REPO / ".tools" / "logs" / "act.log").write_text(f"{elapsed:.1f} s\n{log}")
    assert process.returncode == 0, log[-6000:]
    assert all(len(t) > 100 for t in tokens.values()), tokens.keys()
    for job, token in tokens.items():
        assert token not in log, f"job {job}: the token appears unmasked in act's log"
        # revoked at the end of its job: the ServiceAccount is gone, so is its token
        # (after kube-apiserver's 10 s cache of a successful authentication)
        assert eventually_status(admin, token, 401) == 401, job
    assert "the token: ***" in log

    whoami = f"system:serviceaccount:{namespace}:deployer"
    assert re.search(rf"\| Username\s+{re.escape(whoami)}\s*$", log, re.M), log[-6000:]
    # the action's venv gives later steps bootstrap-token, not its python
    assert re.search(r"\| python3: (?!.*bootstrap-token)", log), log[-6000:]
    assert "curl: 200" in log and "plain curl: 200" in log
    assert f"whoami: {whoami}" in log
    readme_outputs, kubeconfig_outputs = outputs_of("readme", log), outputs_of("kubeconfig", log)
    assert readme_outputs["apiserver"] == dev_cluster.server
    assert readme_outputs["identity"] == whoami
    assert RFC3339.match(readme_outputs["expires"]), readme_outputs
    assert readme_outputs["kubeconfig"] == ""
    assert kubeconfig_outputs["identity"] == whoami
    assert kubeconfig_outputs["expires"] == ""  # a Secret token
    assert kubeconfig_outputs["kubeconfig"].endswith("/bootstrap-token/kubeconfig")
    assert f"KUBECONFIG={kubeconfig_outputs['kubeconfig']}" in log
    # `role: "view-pods, edit-nothing"`: one RoleBinding per item, deleted by the revoke step
    # (revoke says it in one line: `deleted Secret ...; deleted RoleBinding ...; ...`)
    [revoked] = [
        line
        for line in log.splitlines()
        if line.startswith("[bootstrap-token action/kubeconfig]   | bootstrap-token: deleted ")
    ]
    for role in ("edit-nothing", "view-pods"):
        assert f"deleted RoleBinding {namespace}/bootstrap-token:deployer:{role}" in revoked
