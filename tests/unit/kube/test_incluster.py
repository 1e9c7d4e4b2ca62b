"""bootstrap.kube.incluster: when in-cluster mode applies, and the Target it builds (no cluster)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError, UsageError
from bootstrap.kube.incluster import (
    flag_updates,
    kubeconfig_with_pod,
    pod_namespace,
    possible,
    server_url,
    target_from_service_account,
    token_subject,
    wanted,
)

POD = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def fake_jwt(claims: dict[str, object]) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.fixture
def mount(tmp_path: Path) -> Path:
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    (directory / "token").write_text(fake_jwt({"sub": "system:serviceaccount:ops:boot"}))
    (directory / "ca.crt").write_text(CA)
    (directory / "namespace").write_text("ops")
    return directory


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("10.96.0.1", "443", "https://10.96.0.1:443"),
        ("fd00:10:96::1", "443", "https://[fd00:10:96::1]:443"),
        ("kubernetes.default.svc", "6443", "https://kubernetes.default.svc:6443"),
    ],
)
def test_server_url_is_go_join_host_port(host: str, port: str, url: str) -> None:
    environ = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
    assert server_url(environ) == url


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
        {"KUBERNETES_SERVICE_PORT": "443"},
        {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "https"},
        {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "70000"},
    ],
)
def test_server_url_needs_both_variables_and_a_port(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        server_url(environ)


def test_target_reads_the_token_from_its_file_each_time(mount: Path) -> None:
    target = target_from_service_account(mount, POD, "prod")
    assert target.cluster == "prod"
    assert target.server == "https://10.96.0.1:443"
    assert target.context == "in-cluster"
    assert target.user_name == "system:serviceaccount:ops:boot"
    # A token file, not the token: client.credentials_for reads it per run (it rotates).
    assert dict(target.user) == {"tokenFile": str(mount / "token")}
    assert target.ca_file == str(mount / "ca.crt")
    assert target.ca_data is None
    assert target.insecure is False


def test_default_cluster_name_is_in_cluster(mount: Path) -> None:
    assert target_from_service_account(mount, POD).cluster == "in-cluster"


@pytest.mark.parametrize(
    ("missing", "words"),
    [("token", "ServiceAccount token"), ("ca.crt", "ServiceAccount CA certificate")],
)
def test_missing_files_are_config_errors(mount: Path, missing: str, words: str) -> None:
    (mount / missing).unlink()
    with pytest.raises(ConfigError, match=f"the {words} .*{missing} does not exist"):
        target_from_service_account(mount, POD)


def test_empty_token_and_ca_without_pem_are_config_errors(mount: Path) -> None:
    (mount / "ca.crt").write_text("not a certificate")
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        target_from_service_account(mount, POD)
    (mount / "token").write_text("\n")
    with pytest.raises(ConfigError, match=r"token file .* is empty"):
        target_from_service_account(mount, POD)


def test_pod_namespace_precedence(mount: Path) -> None:
    assert pod_namespace(mount, {}) == "ops"
    assert pod_namespace(mount, {"POD_NAMESPACE": "downward"}) == "downward"
    (mount / "namespace").write_text("  \n")
    assert pod_namespace(mount, {}) == "default"
    (mount / "namespace").unlink()
    assert pod_namespace(mount, {}) == "default"


def test_possible_is_kubectls_test(mount: Path) -> None:
    assert possible(mount, POD)
    assert not possible(mount, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    assert not possible(mount / "nowhere", POD)
    (mount / "token").unlink()
    (mount / "token").mkdir()  # a directory is not a token file
    assert not possible(mount, POD)


def test_wanted_follows_the_docstring_table(mount: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # --in-cluster: always (a kubeconfig may still serve --apply-to).
    assert wanted(True, "/some/kubeconfig", {}, home, mount)
    # --kubeconfig: never automatically.
    assert not wanted(False, "/some/kubeconfig", POD, home, mount)
    # No kubeconfig anywhere, Pod environment: in-cluster, as kubectl.
    assert wanted(False, None, POD, home, mount)
    # No Pod environment: not in-cluster (the kubeconfig error follows).
    assert not wanted(False, None, {}, home, mount)
    # $KUBECONFIG naming only missing files counts as no kubeconfig, as in kubectl.
    assert wanted(False, None, {**POD, "KUBECONFIG": str(tmp_path / "missing")}, home, mount)
    # An existing $KUBECONFIG file or ~/.kube/config wins.
    existing = tmp_path / "config"
    existing.write_text("{}")
    assert not wanted(False, None, {**POD, "KUBECONFIG": str(existing)}, home, mount)
    (home / ".kube").mkdir()
    (home / ".kube" / "config").write_text("{}")
    assert not wanted(False, None, POD, home, mount)


def _flags(**overrides: object) -> dict[str, object]:
    flags: dict[str, object] = {
        "in_cluster": False,
        "kubeconfig": None,
        "clusters": (),
        "all_clusters": False,
        "context": None,
        "namespace": "default",
    }
    flags.update(overrides)
    return flags


def test_flag_updates_fill_cluster_and_namespace(mount: Path, tmp_path: Path) -> None:
    environ = {**POD, "BOOTSTRAP_TOKEN_SERVICEACCOUNT_DIR": str(mount)}
    home = tmp_path / "home"
    assert flag_updates(_flags(), False, environ, home) == {
        "in_cluster": True,
        "clusters": ("in-cluster",),
        "namespace": "ops",
    }
    # A typed -n and --cluster are kept.
    assert flag_updates(_flags(clusters=("prod",)), True, environ, home) == {
        "in_cluster": True,
        "clusters": ("prod",),
    }
    # Outside a Pod nothing changes.
    assert flag_updates(_flags(), False, {}, home) == {}


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"context": "admin"}, "--context needs a kubeconfig"),
        ({"all_clusters": True}, "--all-clusters needs a kubeconfig"),
        ({"list_clusters": True}, "--list-clusters needs a kubeconfig"),
        ({"clusters": ("a", "b")}, "give --cluster at most once"),
    ],
)
def test_kubeconfig_only_flags_are_usage_errors_in_cluster(
    mount: Path, tmp_path: Path, overrides: dict[str, object], words: str
) -> None:
    environ = {**POD, "BOOTSTRAP_TOKEN_SERVICEACCOUNT_DIR": str(mount)}
    with pytest.raises(UsageError, match=words):
        flag_updates(_flags(in_cluster=True, **overrides), False, environ, tmp_path)


@pytest.mark.parametrize(
    ("token", "subject"),
    [
        (fake_jwt({"sub": "system:serviceaccount:a:b"}), "system:serviceaccount:a:b"),
        (fake_jwt({"iss": "x"}), None),
        (fake_jwt({"sub": "evil\x1b[2J"}), None),
        ("not-a-jwt", None),
        ("a.!!!.c", None),
    ],
)
def test_token_subject_names_the_account_or_nothing(token: str, subject: str | None) -> None:
    assert token_subject(token) == subject


def test_pod_context_joins_the_kubeconfig_for_apply_to(mount: Path, tmp_path: Path) -> None:
    from bootstrap.kube.target import select

    management = tmp_path / "management.kubeconfig"
    management.write_text(
        "clusters: [{name: mgmt, cluster: {server: 'https://mgmt.example:6443'}}]\n"
        "users: [{name: admin, user: {token: abc}}]\n"
        "contexts: [{name: mgmt-admin, context: {cluster: mgmt, user: admin}}]\n"
    )
    config = kubeconfig_with_pod([management, tmp_path / "missing"], mount, POD)
    assert sorted(config.contexts) == ["in-cluster", "mgmt-admin"]
    assert dict(config.contexts["in-cluster"]) == {
        "cluster": "in-cluster",
        "user": "in-cluster",
        "namespace": "ops",
    }
    pod = select(config, "in-cluster", "in-cluster")
    assert pod.server == "https://10.96.0.1:443"
    assert dict(pod.user) == {"tokenFile": str(mount / "token")}
    assert pod.ca_file == str(mount / "ca.crt")
    assert select(config, "mgmt", "mgmt-admin").server == "https://mgmt.example:6443"
    # No kubeconfig at all is fine in a Pod: the Pod's context alone.
    assert sorted(kubeconfig_with_pod([tmp_path / "missing"], mount, POD).contexts) == [
        "in-cluster"
    ]
