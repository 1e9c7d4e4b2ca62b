"""Output safety against the real cluster: planted symlinks, FIFOs and unwritable
outputs are refused before the cluster is changed; concurrent merges take client-go's
lock; output names and GitHub variable names never collide silently."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.conftest import Admin, DevCluster, DevTool, remember_token, run_tool
from tests.unit.outputs.test_files import planted_link


def nothing_created(admin: Admin, namespace: str) -> None:
    """The cluster was not changed: no ServiceAccount but the controller's `default`,
    no Secret."""
    status, accounts = admin.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts")
    assert status == 200, accounts
    assert {a["metadata"]["name"] for a in accounts["items"]} <= {"default"}
    status, secrets = admin.request("GET", f"/api/v1/namespaces/{namespace}/secrets")
    assert status == 200, secrets
    assert secrets["items"] == []


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """Like /tmp: world-writable with the sticky bit."""
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o1777)
    return directory


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    precious = tmp_path / "precious"
    precious.write_text("precious\n")
    return precious


@contextmanager
def read_only(directory: Path) -> Iterator[Path]:
    """Not writable even by root (chattr +i): root ignores permission bits."""
    directory.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(directory)], check=True)
    else:
        directory.chmod(0o555)
    try:
        yield directory
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        directory.chmod(0o755)


def token_of_env(path: Path, name: str = "TOKEN") -> str:
    out = subprocess.run(
        ["sh", "-c", f'. "{path}" && printf %s "${name}"'], capture_output=True, text=True
    ).stdout
    remember_token(out)
    return out


# --- 1. planted symlinks ------------------------------------------------------------------


@pytest.mark.parametrize("out", ["file", "stdout"])
def test_planted_ca_link_in_a_shared_directory_is_refused_before_any_request(
    dev_tool: DevTool, admin: Admin, namespace: str, shared: Path, victim: Path, out: str
) -> None:
    if out == "file":
        link = planted_link(shared / "ci.ca.crt", victim)
        result = dev_tool("--service-account", "bot", "--out", str(shared / "ci.env"))
    else:  # --out -: the CA file goes to the current directory
        link = planted_link(shared / "dev.ca.crt", victim)
        result = dev_tool(
            "--service-account", "bot", "--out", "-", cwd=shared, stdout_may_hold_token=True
        )
    assert result.returncode == 9, result.stderr
    assert result.error_lines == [
        f"error: refusing to use {link}: {link} is a symlink owned by uid 65534, not by you "
        f"(uid {os.geteuid()}), in the world-writable sticky directory {shared}; another "
        "user may have planted it to redirect the write: remove it or choose another --out"
    ]
    assert result.stdout == ""
    assert victim.read_text() == "precious\n"
    assert os.readlink(link) == str(victim)
    assert [p.name for p in shared.iterdir()] == [link.name]
    nothing_created(admin, namespace)


def test_planted_kubeconfig_link_is_never_merged_into(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, shared: Path
) -> None:
    """Else the admin credentials of the link's target would be copied into the
    shared directory (merged output and FILE.bak)."""
    admin_config = shared.parent / "admin.kubeconfig"
    shutil.copy(dev_cluster.kubeconfig, admin_config)
    before = admin_config.read_bytes()
    planted_link(shared / "ci.kubeconfig", admin_config)
    result = dev_tool(
        "--service-account", "bot", "--format", "kubeconfig", "--out", str(shared / "ci.kubeconfig")
    )
    assert result.returncode == 9, result.stderr
    assert len(result.error_lines) == 1 and "symlink owned by uid 65534" in result.stderr
    assert admin_config.read_bytes() == before
    assert [p.name for p in shared.iterdir()] == ["ci.kubeconfig"]
    nothing_created(admin, namespace)


def test_own_symlinked_kubeconfig_is_updated_through_the_link(
    dev_tool: DevTool, dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    """~/.kube/config -> ../dotfiles/kubeconfig stays a link, as with kubectl."""
    dotfiles, kube = tmp_path / "dotfiles", tmp_path / "home" / ".kube"
    dotfiles.mkdir()
    kube.mkdir(parents=True)
    shutil.copy(dev_cluster.kubeconfig, dotfiles / "kubeconfig")
    before = (dotfiles / "kubeconfig").read_bytes()
    config = kube / "config"
    config.symlink_to("../../dotfiles/kubeconfig")
    result = dev_tool("--format", "kubeconfig", "--out", str(config))
    assert result.returncode == 0, result.stderr
    assert config.is_symlink() and os.readlink(config) == "../../dotfiles/kubeconfig"
    merged = yaml.safe_load((dotfiles / "kubeconfig").read_text())
    name = f"{namespace}/default@dev"
    [user] = [u for u in merged["users"] if u["name"] == name]
    remember_token(user["user"]["token"])
    assert sorted(p.name for p in kube.iterdir()) == ["config", "config.bak"]
    assert (kube / "config.bak").read_bytes() == before
    whoami = subprocess.run(
        ["kubectl", "--kubeconfig", str(config), "--context", name, "auth", "whoami", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert whoami.returncode == 0, whoami.stderr
    assert f"system:serviceaccount:{namespace}:default" in whoami.stdout


# --- 2. checked before the cluster is changed ----------------------------------------------


@pytest.mark.parametrize("output_format", ["env", "kubeconfig"])
def test_fifo_output_is_refused_before_any_request_and_never_hangs(
    dev_tool: DevTool, admin: Admin, namespace: str, tmp_path: Path, output_format: str
) -> None:
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    result = dev_tool(
        "--service-account", "bot", "--format", output_format, "--out", "out", timeout=60
    )
    assert result.returncode == 9, result.stderr
    assert result.error_lines == [
        f"error: cannot write {fifo}: it is a FIFO (named pipe), not a regular file"
    ]
    assert fifo.is_fifo()
    nothing_created(admin, namespace)


@pytest.mark.parametrize(
    "case",
    [
        "read-only directory",
        "--out names a directory",
        "the CA file beside it is not writable",
        "GITHUB_ENV is not writable",
    ],
)
def test_unwritable_output_is_reported_before_the_cluster_is_changed(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path, case: str
) -> None:
    args = ["--cluster", "dev", "-n", namespace, "--service-account", "bot"]
    env = {"KUBECONFIG": str(dev_cluster.kubeconfig)}
    with read_only(tmp_path / "ro") as ro:
        if case == "read-only directory":
            args += ["--out", "ro/x.env"]
            expected = f"error: cannot write {ro / 'x.env'}: "
        elif case == "--out names a directory":
            (tmp_path / "d").mkdir()
            args += ["--out", "d"]
            expected = f"error: cannot write {tmp_path / 'd'}: it is a directory"
        elif case == "the CA file beside it is not writable":
            (tmp_path / "x.ca.crt").mkdir()
            args += ["--out", "x.env"]
            expected = f"error: cannot write {tmp_path / 'x.ca.crt'}: it is a directory"
        else:
            args += ["--format", "github"]
            env.update(GITHUB_ENV=str(ro / "env"), RUNNER_TEMP=str(tmp_path))
            expected = f"error: cannot write {ro / 'env'}: "
        result = run_tool(*args, env=env, cwd=tmp_path, stdout_may_hold_token=True)
    assert result.returncode == 9, result.stderr
    assert len(result.error_lines) == 1 and result.error_lines[0].startswith(expected)
    assert result.stdout == ""
    nothing_created(admin, namespace)


# --- 3. concurrent merges take client-go's lock -------------------------------------------


def test_ten_concurrent_merges_into_one_kubeconfig_keep_all_ten_entries(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    env = {**os.environ, "KUBECONFIG": str(dev_cluster.kubeconfig)}
    base = [sys.executable, "-m", "bootstrap", "--cluster", "dev", "-n", namespace, "-q"]
    processes = [
        subprocess.Popen(
            [*base, "--service-account", f"sa-{i}", "--format", "kubeconfig", "--out", "merged"],
            env=env,
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(10)
    ]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 10, errors
    merged = yaml.safe_load((tmp_path / "merged").read_text())
    for user in merged["users"]:
        remember_token(user["user"]["token"])
    expected = sorted(f"{namespace}/sa-{i}@dev" for i in range(10))
    assert sorted(u["name"] for u in merged["users"]) == expected
    assert sorted(c["name"] for c in merged["contexts"]) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged", "merged.bak"]


def test_kubectl_and_bootstrap_token_take_the_same_lock(
    dev_tool: DevTool, dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    shutil.copy(dev_cluster.kubeconfig, config)
    lock = tmp_path / "config.lock"
    lock.write_text("")  # as kubectl holds it while it changes the file
    kubectl = subprocess.run(
        ["kubectl", "--kubeconfig", str(config), "config", "set-context", "x", "--cluster", "dev"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert kubectl.returncode == 1 and "config.lock: file exists" in kubectl.stderr

    held = dev_tool("--format", "kubeconfig", "--out", "config", "--timeout", "3")
    assert held.returncode == 9, held.stderr
    assert held.error_lines == [
        f"error: cannot merge into {config}: {lock} exists (kubectl or another bootstrap-token "
        "is changing it) and was not released before --timeout ran out; if no such command "
        f"is running, the lock is stale: remove {lock}"
    ]
    assert lock.exists()

    release = threading.Timer(1.0, lock.unlink)
    release.start()
    waited = dev_tool("--format", "kubeconfig", "--out", "config", "--timeout", "30")
    release.join()
    assert waited.returncode == 0, waited.stderr
    merged = yaml.safe_load(config.read_text())
    [user] = [u for u in merged["users"] if u["name"] == f"{namespace}/default@dev"]
    remember_token(user["user"]["token"])
    assert not lock.exists()


# --- 4. names never collide silently ---------------------------------------------------------


def test_clusters_mapping_to_one_file_are_refused_before_any_request(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    names = ["prod/eu", "prod:eu"]
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                # Port 1: if a request were made, the run would fail with exit 4 or 10.
                "clusters": [
                    {"name": n, "cluster": {"server": "https://127.0.0.1:1"}} for n in names
                ],
                "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": n, "context": {"cluster": n, "user": "u"}} for n in names],
            }
        )
    )
    result = run_tool(
        "--cluster",
        "prod/eu",
        "--cluster",
        "prod:eu",
        env={"KUBECONFIG": str(kubeconfig)},
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.error_lines == [
        "error: cluster 'prod/eu' (service account 'default') and cluster 'prod:eu' (service "
        f"account 'default') would both write {tmp_path / 'prod_eu.env'}; give them distinct "
        "--out names (or run them separately)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kubeconfig"]


def test_github_with_several_accounts_needs_env_prefix(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    github_env = tmp_path / "github_env"
    env = {
        "KUBECONFIG": str(dev_cluster.kubeconfig),
        "GITHUB_ENV": str(github_env),
        "RUNNER_TEMP": str(tmp_path),
    }
    args = ["--cluster", "dev", "-n", namespace, "--format", "github"]
    args += ["--service-account", "alpha", "--service-account", "beta"]
    same = run_tool(*args, env=env, cwd=tmp_path, stdout_may_hold_token=True)
    assert same.returncode == 2, same.stderr
    assert len(same.error_lines) == 1
    assert "would append the same variable names to $GITHUB_ENV" in same.stderr
    assert "--env-prefix '{cluster}_{service_account}_'" in same.stderr
    assert not github_env.exists()
    nothing_created(admin, namespace)

    prefixed = run_tool(
        *args,
        "--env-prefix",
        "{service_account}_",
        env=env,
        cwd=tmp_path,
        stdout_may_hold_token=True,
    )
    assert prefixed.returncode == 0, prefixed.stderr
    values = dict(line.split("=", 1) for line in github_env.read_text().splitlines())
    assert set(values) == {
        f"{sa}_{name}"
        for sa in ("ALPHA", "BETA")
        for name in ("APISERVER", "TOKEN", "CACERT", "NAMESPACE")
    }
    for sa in ("alpha", "beta"):
        token = values[f"{sa.upper()}_TOKEN"]
        remember_token(token)
        assert admin.whoami(token) == (201, f"system:serviceaccount:{namespace}:{sa}")
        assert f"::add-mask::{token}" in prefixed.stdout


def test_env_prefix_names_the_variables_of_an_env_file(
    dev_tool: DevTool, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    result = dev_tool("--env-prefix", "{cluster}_")
    assert result.returncode == 0, result.stderr
    token = token_of_env(tmp_path / "dev.env", "DEV_TOKEN")
    assert admin.whoami(token) == (201, f"system:serviceaccount:{namespace}:default")
    assert token_of_env(tmp_path / "dev.env", "TOKEN") == ""


# --- 6. the default name includes the ServiceAccount -----------------------------------------


def test_default_name_includes_the_service_account_and_rotate_writes_there(
    dev_tool: DevTool, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    first = dev_tool("--service-account", "deployer")
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deployer@dev.ca.crt", "deployer@dev.env"]
    old = token_of_env(tmp_path / "deployer@dev.env")
    rotated = dev_tool("rotate", "--service-account", "deployer")
    assert rotated.returncode == 0, rotated.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deployer@dev.ca.crt", "deployer@dev.env"]
    new = token_of_env(tmp_path / "deployer@dev.env")
    assert new != old
    assert admin.whoami(new) == (201, f"system:serviceaccount:{namespace}:deployer")
