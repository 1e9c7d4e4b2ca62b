"""Packaging (issue 12, items 2-4): from a checkout made with `core.symlinks=false`,
`python -m build` makes an sdist and, from that sdist, a wheel; `twine check` accepts
both; the wheel carries the manifests and the LICENSE; installed with plain pip (and
pipx) into a fresh venv it issues a real token from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, TRANSCRIPT, Admin, DevCluster, remember_token

MANIFESTS = sorted(p.name for p in (REPO / "manifests").glob("*.yaml"))


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KUBECONFIG", "VIRTUAL_ENV", "PYTHONPATH")
        and not k.startswith("BOOTSTRAP_TOKEN_")
    }
    env.update(extra)
    return env


def sh(*args: str | Path, cwd: Path | None = None, **extra: str) -> str:
    process = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_env(**extra),
        timeout=600,
    )
    assert process.returncode == 0, (
        f"{args} failed:\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}"
    )
    return process.stdout + process.stderr


@dataclass
class Built:
    checkout: Path
    sdist: Path
    wheel: Path
    log: str


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The working tree's tracked files (committed or not), cloned without symlinks, built."""
    base = tmp_path_factory.mktemp("packaging")
    commit = (
        sh("git", "stash", "create", cwd=REPO).strip()
        or sh("git", "rev-parse", "HEAD", cwd=REPO).strip()
    )
    checkout = base / "checkout"
    sh("git", "clone", "-q", "-c", "core.symlinks=false", "--no-checkout", REPO, checkout)
    sh("git", "-c", "advice.detachedHead=false", "checkout", "-q", commit, cwd=checkout)
    log = sh(sys.executable, "-m", "build", "--outdir", base / "dist", checkout)
    [sdist] = (base / "dist").glob("*.tar.gz")
    [wheel] = (base / "dist").glob("*.whl")
    return Built(checkout, sdist, wheel, log)


def test_checkout_without_symlinks_builds_an_sdist_and_a_wheel_from_it(built: Built) -> None:
    assert sh("git", "config", "core.symlinks", cwd=built.checkout).strip() == "false"
    links = [p for p in built.checkout.rglob("*") if p.is_symlink()]
    assert links == []
    assert (built.sdist.name, built.wheel.name) == (
        "bootstrap_token-0.1.0.tar.gz",
        "bootstrap_token-0.1.0-py3-none-any.whl",
    )
    # python -m build makes the sdist first, then the wheel from the unpacked sdist
    assert "Building wheel from sdist" in built.log


def test_twine_check_accepts_both(built: Built) -> None:
    out = sh(sys.executable, "-m", "twine", "check", "--strict", built.sdist, built.wheel)
    assert out.count("PASSED") == 2, out


def test_the_wheel_and_sdist_carry_manifests_license_and_metadata(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read("bootstrap_token-0.1.0.dist-info/METADATA").decode()
        license_text = wheel.read("bootstrap_token-0.1.0.dist-info/licenses/LICENSE").decode()
        for name in MANIFESTS:
            assert (
                wheel.read(f"bootstrap/_manifests/{name}")
                == (REPO / "manifests" / name).read_bytes()
            )
    assert {f"bootstrap/_manifests/{n}" for n in MANIFESTS} <= names
    assert "bootstrap/py.typed" in names
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert "Requires-Python: >=3.10" in metadata.splitlines()
    assert license_text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text
    with tarfile.open(built.sdist) as sdist:
        members = set(sdist.getnames())
    root = "bootstrap_token-0.1.0"
    assert {f"{root}/manifests/{n}" for n in MANIFESTS} | {f"{root}/LICENSE"} <= members


@pytest.fixture(scope="session")
def fresh_venv(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new venv with only the wheel installed, by plain pip (dependencies from the index)."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    sh(sys.executable, "-m", "venv", venv)
    sh(venv / "bin" / "python", "-m", "pip", "install", "-q", built.wheel)
    yield venv


def test_installed_wheel_finds_its_manifests_outside_the_checkout(
    fresh_venv: Path, tmp_path: Path
) -> None:
    code = (
        "import bootstrap, importlib.resources as r; print(bootstrap.__file__); "
        "d = r.files('bootstrap').joinpath('_manifests'); "
        "print(sorted(p.name for p in d.iterdir()))"
    )
    out = sh(fresh_venv / "bin" / "python", "-c", code, cwd=tmp_path).splitlines()
    assert out[0].startswith(str(fresh_venv)), out  # not the checkout, not editable
    assert out[1] == repr(MANIFESTS)


def test_installed_wheel_issues_a_real_token_from_any_directory(
    fresh_venv: Path, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    process = subprocess.run(
        [str(fresh_venv / "bin" / "bootstrap-token"), "--cluster", "dev", "-n", namespace,
         "--service-account", "viewer", "--clusterrole", "view", "--format", "json",
         "--out", "-"],
        capture_output=True, text=True, cwd=elsewhere, timeout=120,
        env=clean_env(KUBECONFIG=str(dev_cluster.kubeconfig)),
    )  # fmt: skip
    TRANSCRIPT.outputs.append(("stderr of the installed wheel", process.stderr))
    assert process.returncode == 0, process.stderr
    document = json.loads(process.stdout)
    remember_token(document["token"])
    assert document["identity"] == f"system:serviceaccount:{namespace}:viewer"
    assert admin.whoami(document["token"])[0] == 201
    # the ClusterRoleBinding came from the packaged manifests/clusterrolebinding.yaml
    status, body = admin.request(
        "GET",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/"
        f"bootstrap-token:{namespace}:viewer:view",
    )
    assert status == 200, body
    assert body["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "bootstrap-token"
    admin.request(
        "DELETE",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/"
        f"bootstrap-token:{namespace}:viewer:view",
    )
    # the kubectl plugin entry point is installed too
    usage = sh(fresh_venv / "bin" / "kubectl-bootstrap_token", "--help", cwd=elsewhere)
    assert usage.startswith("Usage: kubectl bootstrap-token [COMMAND] [FLAGS]...")


def test_pipx_install_of_the_wheel(built: Built, fresh_venv: Path, tmp_path: Path) -> None:
    """The README's `pipx install`: pipx (installed for the test) puts bootstrap-token
    in its own venv and on PIPX_BIN_DIR."""
    sh(fresh_venv / "bin" / "python", "-m", "pip", "install", "-q", "pipx")
    home, bin_dir = tmp_path / "pipx-home", tmp_path / "bin"
    env = {
        "PIPX_HOME": str(home),
        "PIPX_BIN_DIR": str(bin_dir),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
    }
    sh(fresh_venv / "bin" / "pipx", "install", built.wheel, **env)
    out = sh(bin_dir / "bootstrap-token", "--help", cwd=tmp_path)
    assert out.startswith("Usage: bootstrap-token [COMMAND] [FLAGS]...")


def test_a_plain_install_is_light_and_names_the_extra_for_auth_providers(
    built: Built, fresh_venv: Path, tmp_path: Path
) -> None:
    """Issue 18: `kubernetes` (~150 MB with its dependencies) is the `auth-provider` extra;
    a plain install holds the tool and its three pure-Python dependencies only."""
    with zipfile.ZipFile(built.wheel) as wheel:
        metadata = wheel.read("bootstrap_token-0.1.0.dist-info/METADATA").decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert [r for r in requires if "extra ==" not in r] == [
        "Requires-Dist: pyyaml>=6",
        "Requires-Dist: tenacity>=8.2",
        "Requires-Dist: click>=8.1",
    ]
    assert 'Requires-Dist: kubernetes>=28; extra == "auth-provider"' in requires
    listed = sh(fresh_venv / "bin" / "python", "-m", "pip", "list", "--format", "json")
    names = {p["name"].lower() for p in json.loads(listed)} - {"pip", "setuptools", "pipx"}
    assert "kubernetes" not in names
    assert {"bootstrap-token", "click", "pyyaml", "tenacity"} <= names
    kubeconfig = tmp_path / "legacy.yaml"
    kubeconfig.write_text(
        json.dumps(
            {
                "clusters": [{"name": "gke", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "me", "user": {"auth-provider": {"name": "gcp", "config": {}}}}],
                "contexts": [{"name": "gke", "context": {"cluster": "gke", "user": "me"}}],
                "current-context": "gke",
            }
        )
    )
    process = subprocess.run(
        [str(fresh_venv / "bin" / "bootstrap-token"), "--cluster", "gke"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env=clean_env(KUBECONFIG=str(kubeconfig)),
    )  # fmt: skip
    assert process.returncode == 3, process.stderr  # kubeconfig error
    assert "Traceback" not in process.stderr
    assert [line for line in process.stderr.splitlines() if line.startswith("error:")] == [
        "error: user 'me' uses a legacy auth-provider (gcp), which needs the kubernetes "
        "client: pip install 'bootstrap-token[auth-provider]'"
    ]
