"""The one-file build (scripts/package → bootstrap-token.pyz): copied alone into an empty
directory and run by pyenv's oldest and newest supported CPython in isolated mode (`-I`: no
site-packages, no PYTHON* variables, not even the script's directory's neighbours), it issues
a working token against the dev cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.cluster.test_features import read_env
from tests.conftest import TRANSCRIPT, Admin, DevCluster, remember_token


def pyenv_python(minor: str) -> Path:
    if not shutil.which("pyenv"):
        pytest.fail("pyenv is needed to run the one-file build with Python " + minor)
    versions = subprocess.run(
        ["pyenv", "versions", "--bare"], capture_output=True, text=True, check=True
    ).stdout.split()
    patches = sorted(
        (v for v in versions if v.startswith(minor + ".") and v.count(".") == 2),
        key=lambda v: int(v.split(".")[2]),
    )
    if not patches:
        pytest.fail(f"Python {minor} is not installed in pyenv (pyenv install {minor})")
    prefix = subprocess.run(
        ["pyenv", "prefix", patches[-1]], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path(prefix) / "bin" / "python3"


def test_the_pyz_holds_no_extension_module_and_no_kubernetes_client(pyz: Path) -> None:
    with zipfile.ZipFile(pyz) as archive:
        names = archive.namelist()
    tops = {name.split("/")[0] for name in names}
    assert {"__main__.py", "bootstrap", "click", "yaml", "tenacity"} <= tops
    assert not [n for n in names if n.endswith(".so")]  # a zip cannot load them
    # bytecode for the building Python, beside each module (zipimport's layout)
    assert "bootstrap/commands/cli.pyc" in names and "click/core.pyc" in names
    assert not [t for t in tops if t.startswith(("kubernetes", "urllib3", "requests"))]
    assert "bootstrap/_manifests/serviceaccount.yaml" in names
    assert pyz.stat().st_size < 2_000_000


@pytest.mark.parametrize("minor", ["3.10", "3.13"])
def test_the_pyz_issues_a_token_with_nothing_installed(
    minor: str,
    pyz: Path,
    dev_cluster: DevCluster,
    admin: Admin,
    namespace: str,
    tmp_path: Path,
) -> None:
    python = pyenv_python(minor)
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(pyz, empty / "bootstrap-token.pyz")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "KUBECONFIG": str(dev_cluster.kubeconfig),
    }
    process = subprocess.run(
        [str(python), "-I", "bootstrap-token.pyz", "--cluster", "dev", "-n", namespace,
         "--service-account", "one-file", "--mode", "request", "--duration", "10m"],
        capture_output=True, text=True, cwd=empty, env=env, timeout=120,
    )  # fmt: skip
    TRANSCRIPT.outputs.append((f"stderr of the pyz on {minor}", process.stderr))
    TRANSCRIPT.outputs.append((f"stdout of the pyz on {minor}", process.stdout))
    assert process.returncode == 0, process.stderr
    assert sorted(p.name for p in empty.iterdir()) == [
        "bootstrap-token.pyz",
        "one-file@dev.ca.crt",
        "one-file@dev.env",
    ]
    token = read_env(empty / "one-file@dev.env")["TOKEN"]
    remember_token(token)
    assert admin.whoami(token) == (201, f"system:serviceaccount:{namespace}:one-file")
    version = subprocess.run(
        [str(python), "-I", "bootstrap-token.pyz", "--version"],
        capture_output=True, text=True, cwd=empty, env=env, check=True,
    )  # fmt: skip
    assert version.stdout == "bootstrap-token, version 0.1.0\n"
