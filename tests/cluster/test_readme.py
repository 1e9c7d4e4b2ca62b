"""The README stays true: every `sh` and `python` block in it runs against the dev cluster.

So do the blocks of the docs/ pages that hold what moved out of the README (issue 19), in the
order of PAGES, after the README's. Blocks run in order, each in its own `bash -euo pipefail`
(or Python) process, in one working directory, with the installed `bootstrap-token` on PATH and
a kubeconfig in which clusters `prod` and `staging` are the dev cluster
(`https://127.0.0.1:PORT`, `https://localhost:PORT`), contexts `prod-admin` (current) and
`staging-admin`; namespace `ci` exists. A block preceded by
`<!-- readme-test: skip (REASON) -->` is not run here; REASON names the test that covers it
(checked below). The `yaml` examples of the README's `## CI` section are run by the CI runners
themselves: tests/ci/test_action.py (act) and tests/ci/test_gitlab.py (gitlab-ci-local); the
plain-CLI pipelines of docs/usage.md are covered by tests/cluster/test_features.py
(test_github_format_masks_first_and_exports_to_github_env, test_dotenv_format_is_plain_key_value)
and tests/packaging/test_wheel.py (pip install of a checkout's build).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO, TRANSCRIPT, Admin, DevCluster, remember_token

README = REPO / "README.md"
# The README, then the pages that received its sections, in the order their blocks need (the
# user guide creates what the later pages' commands use).
PAGES = [
    README,
    *(REPO / "docs" / name for name in ("usage.md", "flags.md", "formats.md", "python-api.md")),
    REPO / "docs" / "development.md",
]
SKIP = re.compile(r"^<!-- readme-test: skip \((?P<reason>.+)\) -->$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    body: str
    skip_reason: str | None


def readme_blocks(text: str, page: str = "README.md") -> list[Block]:
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = re.fullmatch(r"```(sh|python)", lines[i])
        if match:
            end = lines.index("```", i + 1)
            previous = lines[i - 1] if i else ""
            marker = SKIP.match(previous)
            blocks.append(
                Block(
                    page,
                    i + 1,
                    match.group(1),
                    "\n".join(lines[i + 1 : end]) + "\n",
                    marker.group("reason") if marker else None,
                )
            )
            i = end
        i += 1
    return blocks


def page_blocks() -> list[Block]:
    return [
        block
        for path in PAGES
        for block in readme_blocks(path.read_text(), path.relative_to(REPO).as_posix())
    ]


def test_every_readme_block_is_run_or_names_its_test() -> None:
    blocks = page_blocks()
    skipped = [b for b in blocks if b.skip_reason]
    for block in skipped:
        assert re.search(r"tests/\S+\.py", block.skip_reason or ""), (
            f"{block.page} line {block.line}: a skipped block must name the test covering it"
        )
    run = [b for b in blocks if not b.skip_reason]

    def commands(page: str) -> list[str]:
        return [
            line.split("#")[0].strip()
            for b in run
            if b.language == "sh" and b.page == page
            for line in b.body.splitlines()
            if line.strip()
        ]

    # the README's main promises are among the commands run
    assert "bootstrap-token --cluster prod" in commands("README.md")
    assert "bootstrap-token revoke --cluster prod --all" in commands("README.md")
    assert "bootstrap-token check app@prod.env" in commands("README.md")
    assert 'eval "$(_BOOTSTRAP_TOKEN_COMPLETE=bash_source bootstrap-token)"' in commands(
        "docs/usage.md"
    )
    assert [(b.page, b.language) for b in run if b.language == "python"] == [
        ("docs/python-api.md", "python")
    ]
    assert len(run) == 24, [(b.page, b.line) for b in run]
    # install, shell completion (writes start-up files), scripts/demo + scripts/test (README
    # and development.md), kubectl proxy, the dev cluster's own commands
    assert len(skipped) == 7, [(b.page, b.line) for b in skipped]


def readme_kubeconfig(dev_cluster: DevCluster, path: Path) -> Path:
    config = dev_cluster.config
    bodies = {c["name"]: c["cluster"] for c in config["clusters"]}
    user = config["users"][0]["name"]
    config["clusters"] = [
        {"name": "prod", "cluster": bodies["dev"]},
        {"name": "staging", "cluster": bodies["dev-localhost"]},
    ]
    config["contexts"] = [
        {"name": f"{name}-admin", "context": {"cluster": name, "user": user}}
        for name in ("prod", "staging")
    ]
    config["current-context"] = "prod-admin"
    path.write_text(json.dumps(config))
    return path


def fresh_namespace(admin: Admin, name: str) -> None:
    """Create `name`, waiting first for an earlier run's copy to finish terminating."""
    deadline = time.monotonic() + 120
    while True:
        status, body = admin.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        if status == 201:
            return
        assert status == 409 and time.monotonic() < deadline, body
        phase = admin.request("GET", f"/api/v1/namespaces/{name}")[1]
        if phase.get("status", {}).get("phase") == "Active":
            admin.request("DELETE", f"/api/v1/namespaces/{name}")
        time.sleep(0.5)


def test_readme_commands_work_against_the_dev_cluster(
    dev_cluster: DevCluster, admin: Admin, tmp_path: Path
) -> None:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(home),
        "KUBECONFIG": str(readme_kubeconfig(dev_cluster, tmp_path / "kubeconfig")),
    }
    fresh_namespace(admin, "ci")
    bindings = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
    binding = f"{bindings}/bootstrap-token:ci:reader:view"
    app_binding = f"{bindings}/bootstrap-token:ci:app:view"
    try:
        for block in page_blocks():
            if block.skip_reason:
                continue
            if block.language == "sh":
                command = ["bash", "-euo", "pipefail", "-c", block.body]
            else:
                command = [sys.executable, "-c", block.body]
            process = subprocess.run(
                command, capture_output=True, text=True, cwd=work, env=env, timeout=300
            )
            where = f"{block.page} line {block.line}"
            TRANSCRIPT.outputs += [
                (f"stderr of {where}", process.stderr),
                (f"stdout of {where}", process.stdout),
            ]
            assert process.returncode == 0, f"{where}:\n{block.body}\n{process.stderr[-3000:]}"
            assert "Traceback" not in process.stderr, where
            if block.language == "python":  # `print(...)  # EXPECTED` comments are true
                expected = re.findall(r"^\s*print\(.*\)\s+#\s*(.+)$", block.body, re.M)
                assert process.stdout.splitlines() == expected, where
        tokens = [
            line.split("=", 1)[1].strip("'")
            for env_file in work.rglob("*.env")
            for line in env_file.read_text().splitlines()
            if line.startswith("export TOKEN=")
        ]
        assert len(tokens) >= 5
        for token in tokens:
            remember_token(token)
        # what the README's commands left behind is what it says
        assert (work / "ci.kubeconfig").is_file() and (work / "creds" / "prod.env").is_file()
        assert (work / "app@prod.env").is_file()
        assert admin.request("GET", binding)[0] == 200  # --clusterrole view
        # the README's `revoke --all` of `app` took its ServiceAccount and binding with it
        assert admin.request("GET", "/api/v1/namespaces/ci/serviceaccounts/app")[0] == 404
        assert admin.request("GET", app_binding)[0] == 404
    finally:
        admin.request("DELETE", binding)
        admin.request("DELETE", app_binding)
        admin.request("DELETE", "/api/v1/namespaces/default/secrets/default-token")
        admin.request("DELETE", "/api/v1/namespaces/ci")


def test_scripts_demo_works(dev_cluster: DevCluster) -> None:
    """The README's first command for a fresh clone (setup is quick once installed)."""
    process = subprocess.run(
        [str(REPO / "scripts" / "demo")],
        capture_output=True,
        text=True,
        timeout=900,
        env={**{k: v for k, v in os.environ.items() if k != "KUBECONFIG"}, "SKIP_PY_MATRIX": "1"},
    )
    TRANSCRIPT.outputs.append(("stderr of scripts/demo", process.stderr))
    assert process.returncode == 0, process.stderr[-3000:]
    assert "identity: system:serviceaccount:default:demo" in process.stdout
    assert re.search(r'"kind":\s*"APIVersions"', process.stdout)
