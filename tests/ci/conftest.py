"""CI runners for real: act (GitHub Actions, host mode) and gitlab-ci-local (shell executor)
run the repository's action, component and one-file build against the dev cluster.

The runners are installed by scripts/setup (act built from the Go module proxy by
scripts/build-act, gitlab-ci-local from npm into .tools/); a missing one fails the test with
the command that installs it, it never skips. The README's `## CI` examples are taken from the
README itself, with only what names a place that does not exist here replaced (the action's
and component's published names, the pyz download URL, the namespace).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

ACT_VERSION = "v0.2.89"
GITLAB_CI_LOCAL = REPO / ".tools" / "node_modules" / ".bin" / "gitlab-ci-local"


def readme_ci_examples() -> list[str]:
    """The yaml blocks of the README's `## CI` section, in order: the action, the
    component, the plain CLI."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("\n## CI\n") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"^```yaml\n(.*?)^```$", section, re.M | re.S)


def load(text: str) -> Any:
    return yaml.safe_load(text)


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/bootstrap-token.pyz as scripts/package builds it (into a temporary place)."""
    out = tmp_path_factory.mktemp("pyz") / "bootstrap-token.pyz"
    process = subprocess.run(
        [str(REPO / "scripts" / "package"), str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    return out


@pytest.fixture(scope="session")
def act() -> Path:
    cache = Path(
        os.environ.get("BOOTSTRAP_TOKEN_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bootstrap-token"
    )
    binary = cache / "tools" / f"act-{ACT_VERSION}" / "act"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"act is not built at {binary}: run scripts/setup (or scripts/build-act)")
    return binary


@pytest.fixture(scope="session")
def gitlab_ci_local() -> Path:
    if not os.access(GITLAB_CI_LOCAL, os.X_OK):
        pytest.fail(f"gitlab-ci-local is not installed at {GITLAB_CI_LOCAL}: run scripts/setup")
    if not shutil.which("rsync"):
        pytest.fail(
            "gitlab-ci-local needs rsync: run scripts/setup as root, or apt-get install rsync"
        )
    return GITLAB_CI_LOCAL
