"""credentials.py and exec_plugin.py: headers, token rules, mixed data/file
certificates, exec configuration, KUBERNETES_EXEC_INFO and ExecCredential parsing."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.kube import exec_plugin
from bootstrap.kube.credentials import (
    Credentials,
    Deadline,
    credentials_for,
    escape_header_key,
    impersonation_headers,
    static_credentials,
)
from bootstrap.kube.exec_plugin import ExecError, cluster_info, exec_config, exec_info, parse_output


def test_impersonation_headers() -> None:
    user = {
        "as": "jane",
        "as-uid": "42",
        "as-groups": ["devs", "ops"],
        "as-user-extra": {"scopes": ["view", "edit"], "team name/x": ["a"]},
    }
    assert impersonation_headers(user, "u") == (
        ("Impersonate-User", "jane"),
        ("Impersonate-Uid", "42"),
        ("Impersonate-Group", "devs"),
        ("Impersonate-Group", "ops"),
        ("Impersonate-Extra-scopes", "view"),
        ("Impersonate-Extra-scopes", "edit"),
        ("Impersonate-Extra-team%20name%2Fx", "a"),
    )


def test_impersonating_groups_without_a_user_is_refused() -> None:
    with pytest.raises(ConfigError, match="without impersonating a user"):
        impersonation_headers({"as-groups": ["x"]}, "u")


def test_header_key_escape_like_client_go() -> None:
    assert escape_header_key("example.com/key") == "example.com%2Fkey"
    assert escape_header_key("100%") == "100%25"
    assert escape_header_key("ünï") == "%C3%BCn%C3%AF"


def test_headers_bearer_wins_over_basic() -> None:
    both = Credentials(token="tok", basic=("u", "p"), impersonation=(("Impersonate-User", "j"),))
    assert both.headers() == [("Authorization", "Bearer tok"), ("Impersonate-User", "j")]
    assert Credentials(basic=("u", "p")).headers() == [("Authorization", "Basic dTpw")]
    assert repr(both) == "Credentials(<redacted>)"


def test_token_file_wins_over_token_and_is_trimmed(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("\n  from-file \n")
    both = {"token": "inline", "tokenFile": str(tmp_path / "t")}
    assert static_credentials(both, "u").token == "from-file"
    assert static_credentials({"tokenFile": str(tmp_path / "t")}, "u").token == "from-file"
    # Unreadable or empty file: client-go falls back to the inline token.
    gone = {"token": "inline", "tokenFile": str(tmp_path / "missing")}
    assert static_credentials(gone, "u").token == "inline"
    (tmp_path / "empty").write_text(" \n")
    assert (
        static_credentials({"token": "inline", "tokenFile": str(tmp_path / "empty")}, "u").token
        == "inline"
    )
    with pytest.raises(ConfigError, match="tokenFile: cannot read"):
        static_credentials({"tokenFile": str(tmp_path / "missing")}, "u")


@pytest.mark.parametrize("token", ["a\nb", "a\r\nb", "abc\n"])
def test_token_with_line_break_is_a_config_error(token: str) -> None:
    with pytest.raises(ConfigError, match="user 'u': token contains a line break"):
        static_credentials({"token": token}, "u")


def test_token_file_with_line_break_inside(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("abc\ndef\n")
    with pytest.raises(ConfigError, match=r"tokenFile .* contains a line break"):
        static_credentials({"tokenFile": str(tmp_path / "t")}, "u")


@pytest.mark.parametrize("data_side", ["certificate", "key"])
def test_client_certificate_from_data_and_key_from_file(tmp_path: Path, data_side: str) -> None:
    (tmp_path / "f").write_bytes(b"FROM FILE")
    data = base64.b64encode(b"FROM DATA").decode()
    if data_side == "certificate":
        user = {"client-certificate-data": data, "client-key": str(tmp_path / "f")}
    else:
        user = {"client-certificate": str(tmp_path / "f"), "client-key-data": data}
    got = static_credentials(user, "u")
    cert, key = (
        (b"FROM DATA", b"FROM FILE") if data_side == "certificate" else (b"FROM FILE", b"FROM DATA")
    )
    assert (got.cert_pem, got.key_pem) == (cert, key)


def test_combinations_kubectl_refuses(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"FILE")
    both = {
        "client-certificate-data": base64.b64encode(b"DATA").decode(),
        "client-certificate": str(tmp_path / "f"),
        "client-key-data": base64.b64encode(b"KEY").decode(),
    }
    with pytest.raises(ConfigError, match="client-cert-data and client-cert are both specified"):
        static_credentials(both, "u")
    with pytest.raises(ConfigError, match="client-key is not set"):
        static_credentials({"client-certificate": str(tmp_path / "f")}, "u")
    with pytest.raises(ConfigError) as e:
        static_credentials({"token": "t", "username": "a", "password": "b"}, "u")
    assert str(e.value) == (
        "user 'u': more than one authentication method found for u; found [token basicAuth], "
        "only one is allowed"
    )


V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


def test_exec_config_requires_interactive_mode_in_v1_only() -> None:
    with pytest.raises(
        ConfigError,
        match="interactiveMode must be specified for u to use exec authentication plugin",
    ):
        exec_config({"command": "x", "apiVersion": V1}, "u")
    assert (
        exec_config({"command": "x", "apiVersion": V1BETA1}, "u").interactive_mode == "IfAvailable"
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"apiVersion": V1, "interactiveMode": "Never"}, "command must be specified for u"),
        ({"command": "x", "interactiveMode": "Never"}, "apiVersion must be specified for u"),
        ({"command": "x", "apiVersion": V1, "interactiveMode": "Sometimes"}, "invalid interactiveMode for u: 'Sometimes'"),
        ({"command": "x", "apiVersion": "client.authentication.k8s.io/v1alpha1", "interactiveMode": "Never"}, "exec plugin: invalid apiVersion"),
        ({"command": "x", "apiVersion": V1, "interactiveMode": "Never", "env": [{"value": "v"}]}, "env variable name must be specified"),
    ],
)  # fmt: skip
def test_exec_config_errors(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        exec_config(entry, "u")


def test_exec_info_and_cluster_info() -> None:
    config = exec_config(
        {"command": "x", "apiVersion": V1, "interactiveMode": "Never", "provideClusterInfo": True},
        "u",
    )
    cluster = {
        "server": "ignored",
        "tls-server-name": "kubernetes",
        "proxy-url": "socks5://p:1080",
        "insecure-skip-tls-verify": False,
        "extensions": [
            {"name": "other", "extension": {"no": 1}},
            {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "a"}},
        ],
    }
    info = json.loads(exec_info(config, False, cluster_info(cluster, "https://s:6443", b"PEM")))
    assert info == {
        "kind": "ExecCredential",
        "apiVersion": V1,
        "spec": {
            "interactive": False,
            "cluster": {
                "server": "https://s:6443",
                "tls-server-name": "kubernetes",
                "proxy-url": "socks5://p:1080",
                "certificate-authority-data": "UEVN",
                "config": {"audience": "a"},
            },
        },
    }
    without = exec_config({"command": "x", "apiVersion": V1, "interactiveMode": "Never"}, "u")
    assert "cluster" not in json.loads(exec_info(without, True, {"server": "s"}))["spec"]


def _credential(status: object, version: str = V1) -> bytes:
    return json.dumps({"apiVersion": version, "kind": "ExecCredential", "status": status}).encode()


def test_parse_output_token_and_certificate() -> None:
    assert parse_output(_credential({"token": "t"}), V1).token == "t"
    as_yaml = f"apiVersion: {V1}\nkind: ExecCredential\nstatus:\n  token: y\n".encode()
    assert parse_output(as_yaml, V1).token == "y"
    pair = parse_output(_credential({"clientCertificateData": "C", "clientKeyData": "K"}), V1)
    assert (pair.cert_pem, pair.key_pem, pair.token) == (b"C", b"K", None)


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        (b"not json", "decoding stdout"),
        (_credential({"token": "t"}, V1BETA1), f"configured to use API version {V1}, plugin returned version {V1BETA1}"),
        (json.dumps({"apiVersion": V1, "kind": "ExecCredential"}).encode(), "didn't return a status field"),
        (_credential({}), "didn't return a token or cert/key pair"),
        (_credential({"clientCertificateData": "C"}), "returned only certificate or key, not both"),
    ],
)  # fmt: skip
def test_parse_output_errors(stdout: bytes, message: str) -> None:
    with pytest.raises(ExecError, match=message):
        parse_output(stdout, V1)


def test_interactive_modes() -> None:
    assert exec_plugin.is_interactive("Never", True) is False
    assert exec_plugin.is_interactive("IfAvailable", True) is True
    assert exec_plugin.is_interactive("IfAvailable", False) is False
    with pytest.raises(ExecError, match="standard input is not a terminal"):
        exec_plugin.is_interactive("Always", False)


def test_exec_only_without_static_credentials(tmp_path: Path) -> None:
    """client-go runs the plugin only when no token, basic auth or certificate is set."""
    marker = tmp_path / "ran"
    script = tmp_path / "plugin"
    script.write_text(
        f"#!/bin/sh\ntouch {marker}\necho '{_credential({'token': 'from-exec'}).decode()}'\n"
    )
    script.chmod(0o755)
    user = {"exec": {"command": str(script), "apiVersion": V1, "interactiveMode": "Never"}}
    got = credentials_for({**user, "token": "static"}, "u", Deadline(5), environ={})
    assert got.token == "static" and not marker.exists()
    got = credentials_for(user, "u2", Deadline(5), environ={"PATH": "/usr/bin:/bin"})
    assert got.token == "from-exec" and marker.exists()


def test_exec_plugin_stderr_ends_the_error(tmp_path: Path) -> None:
    script = tmp_path / "plugin"
    script.write_text("#!/bin/sh\necho first >&2\necho 'the reason' >&2\nexit 3\n")
    script.chmod(0o755)
    config = exec_config(
        {"command": str(script), "apiVersion": V1, "interactiveMode": "Never"}, "u"
    )
    with pytest.raises(ExecError) as e:
        exec_plugin.run(config, None, 5, {"PATH": "/usr/bin:/bin"}, stdin_is_terminal=False)
    assert str(e.value) == f"exec: executable {script} failed with exit code 3: the reason"


def test_missing_plugin_names_the_install_hint() -> None:
    config = exec_config(
        {
            "command": "no-such-cmd-xyz",
            "apiVersion": V1,
            "interactiveMode": "Never",
            "installHint": "get it",
        },
        "u",
    )
    with pytest.raises(ExecError) as e:
        exec_plugin.run(config, None, 5, {"PATH": "/nonexistent"}, stdin_is_terminal=False)
    assert str(e.value).startswith("exec: executable no-such-cmd-xyz not found")
    assert str(e.value).endswith("\n\nget it")


def test_auth_provider_without_the_kubernetes_client_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes `import kubernetes` raise ImportError: a plain install
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    user = {"auth-provider": {"name": "oidc\n", "config": {"id-token": "x.y.z"}}}
    with pytest.raises(ConfigError) as e:
        credentials_for(user, "me", Deadline(5), environ={})
    assert str(e.value) == (
        "user 'me' uses a legacy auth-provider (oidc?), which needs the kubernetes client: "
        "pip install 'bootstrap-token[auth-provider]'"
    )
    assert e.value.exit_code == 3
