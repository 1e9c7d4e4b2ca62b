"""bootstrap.kube.target: --cluster/--context resolution (the table in select's docstring),
name validation, and the --list-clusters table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bootstrap.errors import ConfigError, UsageError
from bootstrap.kube.kubeconfig import Kubeconfig
from bootstrap.kube.target import Target, cluster_table, render_table, select, validate_name

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def kubeconfig(
    clusters: dict[str, dict[str, Any]],
    contexts: dict[str, dict[str, Any]] | None = None,
    users: dict[str, dict[str, Any]] | None = None,
    current: str | None = None,
) -> Kubeconfig:
    document = {
        "clusters": [{"name": n, "cluster": b} for n, b in clusters.items()],
        "contexts": [{"name": n, "context": b} for n, b in (contexts or {}).items()],
        "users": [{"name": n, "user": b} for n, b in (users or {"admin": {"token": "t"}}).items()],
    }
    if current is not None:
        document["current-context"] = current  # type: ignore[assignment]
    return Kubeconfig.from_documents([(Path("/home/me/.kube/config"), document)])


def two_clusters(
    contexts: dict[str, dict[str, Any]], current: str | None = None, **cluster: Any
) -> Kubeconfig:
    return kubeconfig(
        clusters={
            "dev": {"server": "https://dev:6443", **cluster},
            "prod": {"server": "https://p"},
        },
        contexts=contexts,
        users={"admin": {"token": "a"}, "ops": {"token": "o"}},
        current=current,
    )


# --- the table, row by row ----------------------------------------------------------


def test_no_context_given_and_none_uses_the_cluster() -> None:
    config = two_clusters({"prod-admin": {"cluster": "prod", "user": "admin"}})
    with pytest.raises(ConfigError) as e:
        select(config, "dev")
    message = str(e.value)
    assert "no context uses cluster 'dev'" in message
    assert "--context" in message and "set-context" in message


def test_no_context_given_and_exactly_one_uses_the_cluster() -> None:
    config = two_clusters(
        {
            "dev-admin": {"cluster": "dev", "user": "admin"},
            "prod-ops": {"cluster": "prod", "user": "ops"},
        },
        current="prod-ops",
    )
    target = select(config, "dev")
    assert target.context == "dev-admin"
    assert target.cluster == "dev"
    assert target.user_name == "admin"
    assert dict(target.user) == {"token": "a"}


def test_no_context_given_several_and_current_context_among_them() -> None:
    config = two_clusters(
        {
            "dev-admin": {"cluster": "dev", "user": "admin"},
            "dev-ops": {"cluster": "dev", "user": "ops"},
        },
        current="dev-ops",
    )
    target = select(config, "dev")
    assert target.context == "dev-ops"
    assert target.user_name == "ops"


def test_no_context_given_several_and_current_context_not_among_them() -> None:
    config = two_clusters(
        {
            "dev-ops": {"cluster": "dev", "user": "ops"},
            "dev-admin": {"cluster": "dev", "user": "admin"},
            "prod-ops": {"cluster": "prod", "user": "ops"},
        },
        current="prod-ops",
    )
    with pytest.raises(ConfigError) as e:
        select(config, "dev")
    message = str(e.value)
    assert "several contexts use cluster 'dev': dev-admin, dev-ops" in message
    assert "--context" in message
    assert "prod-ops" not in message


def test_no_context_given_several_and_no_current_context() -> None:
    config = two_clusters(
        {"a": {"cluster": "dev", "user": "ops"}, "b": {"cluster": "dev", "user": "admin"}}
    )
    with pytest.raises(ConfigError, match="several contexts use cluster 'dev': a, b"):
        select(config, "dev")


def test_context_given_exists_and_uses_the_cluster() -> None:
    config = two_clusters(
        {
            "dev-admin": {"cluster": "dev", "user": "admin"},
            "dev-ops": {"cluster": "dev", "user": "ops"},
        },
        current="dev-admin",
    )
    target = select(config, "dev", "dev-ops")
    assert target.context == "dev-ops"  # --context beats current-context
    assert target.user_name == "ops"


def test_context_given_exists_but_uses_another_cluster() -> None:
    config = two_clusters(
        {
            "dev-admin": {"cluster": "dev", "user": "admin"},
            "prod-ops": {"cluster": "prod", "user": "ops"},
        }
    )
    with pytest.raises(ConfigError) as e:
        select(config, "dev", "prod-ops")
    message = str(e.value)
    assert "context 'prod-ops' uses cluster 'prod', not 'dev'" in message
    assert "dev-admin" in message


def test_context_given_does_not_exist() -> None:
    config = two_clusters(
        {
            "dev-admin": {"cluster": "dev", "user": "admin"},
            "dev-ops": {"cluster": "dev", "user": "ops"},
            "prod-ops": {"cluster": "prod", "user": "ops"},
        }
    )
    with pytest.raises(ConfigError) as e:
        select(config, "dev", "nope")
    message = str(e.value)
    assert "unknown context 'nope'" in message
    assert "contexts for cluster 'dev': dev-admin, dev-ops" in message
    assert "prod-ops" not in message


def test_context_given_does_not_exist_and_none_uses_the_cluster() -> None:
    config = two_clusters({})
    with pytest.raises(ConfigError, match="contexts for cluster 'dev': none"):
        select(config, "dev", "nope")


# --- other errors ---------------------------------------------------------------------


def test_unknown_cluster_lists_the_known_ones() -> None:
    config = two_clusters({"dev-admin": {"cluster": "dev", "user": "admin"}})
    with pytest.raises(ConfigError) as e:
        select(config, "staging")
    message = str(e.value)
    assert "unknown cluster 'staging'" in message
    assert "known clusters: dev, prod" in message
    assert "context name" not in message
    assert e.value.exit_code == 3


def test_unknown_cluster_in_an_empty_kubeconfig() -> None:
    with pytest.raises(ConfigError, match="known clusters: none"):
        select(kubeconfig({}), "dev")


def test_context_name_passed_as_cluster_gets_a_hint() -> None:
    config = two_clusters({"dev-admin": {"cluster": "dev", "user": "admin"}})
    with pytest.raises(ConfigError) as e:
        select(config, "dev-admin")
    message = str(e.value)
    assert "'dev-admin' is a context name; its cluster is 'dev'" in message
    assert "known clusters: dev, prod" in message


@pytest.mark.parametrize("body", [{}, {"server": ""}, {"server": 6443}, {"server": None}])
def test_cluster_without_server(body: dict[str, Any]) -> None:
    # A server of the wrong type is refused while loading, as kubectl's typed decoding does.
    with pytest.raises(ConfigError, match=r"cluster 'dev' has no server|server must be a string"):
        select(kubeconfig({"dev": body}, {"c": {"cluster": "dev", "user": "admin"}}), "dev")


def test_context_naming_a_missing_user() -> None:
    config = two_clusters({"dev-ghost": {"cluster": "dev", "user": "ghost"}})
    with pytest.raises(ConfigError) as e:
        select(config, "dev")
    assert "context 'dev-ghost' names user 'ghost', which is not defined" in str(e.value)


@pytest.mark.parametrize("user", [None, "", 5])
def test_context_naming_no_user(user: object) -> None:
    with pytest.raises(ConfigError, match=r"context 'dev-x' names no user|user must be a string"):
        select(two_clusters({"dev-x": {"cluster": "dev", "user": user}}), "dev")


@pytest.mark.parametrize("data", ["not base64!", "QUJD QUJD", "QUJ", "ünïcode", "QUJD\t"])
def test_invalid_base64_in_certificate_authority_data(data: str) -> None:
    config = two_clusters(
        {"dev-admin": {"cluster": "dev", "user": "admin"}}, **{"certificate-authority-data": data}
    )
    with pytest.raises(ConfigError) as e:
        select(config, "dev")
    assert "cluster 'dev': certificate-authority-data is not valid base64" in str(e.value)


def test_certificate_authority_data_not_a_string() -> None:
    with pytest.raises(ConfigError) as e:
        two_clusters(
            {"dev-admin": {"cluster": "dev", "user": "admin"}},
            **{"certificate-authority-data": 12},
        )
    assert str(e.value) == (
        "kubeconfig /home/me/.kube/config: clusters entry 'dev': certificate-authority-data "
        "must be a string, not int"
    )


# --- the resolved target ---------------------------------------------------------------


def test_target_fields() -> None:
    config = two_clusters(
        {"dev-admin": {"cluster": "dev", "user": "admin"}},
        **{
            "server": "https://dev:6443///",
            "certificate-authority": "pki/ca.crt",
            "tls-server-name": "kubernetes",
        },
    )
    target = select(config, "dev")
    assert target == Target(
        cluster="dev",
        server="https://dev:6443",
        context="dev-admin",
        user_name="admin",
        user=config.users["admin"],
        ca_data=None,
        ca_file="/home/me/.kube/pki/ca.crt",
        insecure=False,
        tls_server_name="kubernetes",
    )


def test_insecure_as_a_string_is_refused_as_by_kubectl() -> None:
    with pytest.raises(
        ConfigError, match="insecure-skip-tls-verify must be true or false, not str"
    ):
        two_clusters(
            {"dev-admin": {"cluster": "dev", "user": "admin"}},
            **{"insecure-skip-tls-verify": "true"},
        )


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), (None, False)])
def test_insecure_only_when_literally_true(value: object, expected: bool) -> None:
    config = two_clusters(
        {"dev-admin": {"cluster": "dev", "user": "admin"}},
        **{"insecure-skip-tls-verify": value},
    )
    assert select(config, "dev").insecure is expected


def test_optional_fields_absent() -> None:
    target = select(two_clusters({"dev-admin": {"cluster": "dev", "user": "admin"}}), "dev")
    assert target.ca_data is None and target.ca_file is None
    assert target.tls_server_name is None and target.insecure is False


# --- validate_name ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "a", "0", "kube-system", "a1-b2", "x" * 63])
def test_valid_namespace(name: str) -> None:
    assert validate_name(name, "--namespace") == name


@pytest.mark.parametrize(
    "name",
    ["", "Bad_NS", "UPPER", "-a", "a-", "a.b", "a_b", "a b", " a", "ä", "x" * 64],
)
def test_invalid_namespace(name: str) -> None:
    with pytest.raises(UsageError) as e:
        validate_name(name, "--namespace")
    message = str(e.value)
    assert message.startswith(f"--namespace {name!r} is not a valid DNS-1123 label")
    assert "at most 63" in message
    assert "'.'" not in message
    assert e.value.exit_code == 2


@pytest.mark.parametrize(
    "name",
    ["default", "a.b", "my-sa.v2", "a" * 253, ".".join(["x" * 63] * 3) + "." + "y" * 61],
)
def test_valid_subdomain(name: str) -> None:
    assert len(name) <= 253
    assert validate_name(name, "--service-account", subdomain=True) == name


@pytest.mark.parametrize(
    "name", ["", "a..b", ".a", "a.", "a.-b", "a-.b", "A.b", "a_b", "a" * 254, "a." * 126 + "ab"]
)
def test_invalid_subdomain(name: str) -> None:
    with pytest.raises(UsageError) as e:
        validate_name(name, "--secret", subdomain=True)
    message = str(e.value)
    assert message.startswith("--secret ")
    assert "DNS-1123 subdomain" in message and "at most 253" in message
    assert "'.' also allowed" in message


@pytest.mark.parametrize("subdomain", [False, True], ids=["label", "subdomain"])
def test_trailing_newline_is_rejected(subdomain: bool) -> None:
    with pytest.raises(UsageError):
        validate_name("default\n", "--namespace", subdomain=subdomain)


# --- --list-clusters --------------------------------------------------------------------


def test_cluster_table_is_sorted_with_dash_for_no_server() -> None:
    config = kubeconfig(
        {"zeta": {"server": "https://z"}, "alpha": {"server": "https://a:6443"}, "mid": {}}
    )
    assert cluster_table(config) == [
        ("alpha", "https://a:6443"),
        ("mid", "-"),
        ("zeta", "https://z"),
    ]


def test_render_table_aligns_columns() -> None:
    text = render_table([("a", "https://a"), ("long-cluster-name", "https://l")])
    assert text == (
        "CLUSTER            SERVER\na                  https://a\nlong-cluster-name  https://l\n"
    )


def test_render_table_header_wider_than_names() -> None:
    assert render_table([("a", "s")]) == "CLUSTER  SERVER\na        s\n"
    assert render_table([]) == "CLUSTER  SERVER\n"


# --- what the connection needs: URL checks, proxy-url, the context's namespace ----------


@pytest.mark.parametrize(
    ("server", "reason"),
    [
        ("https://dev:99999", "the port is not a number from 1 to 65535"),
        ("https://dev:abc", "the port is not a number from 1 to 65535"),
        ("https://[::1", "unclosed '['"),
    ],
)
def test_malformed_server_is_a_config_error_naming_the_field(server: str, reason: str) -> None:
    config = two_clusters({"dev-admin": {"cluster": "dev", "user": "admin"}}, server=server)
    with pytest.raises(ConfigError) as e:
        select(config, "dev")
    assert str(e.value) == f"cluster 'dev': server {server!r} is not a valid URL: " + (
        reason if reason != "unclosed '['" else str(e.value).split("valid URL: ")[1]
    )
    assert reason in str(e.value)


def test_proxy_url_is_checked_and_carried() -> None:
    contexts = {"dev-admin": {"cluster": "dev", "user": "admin", "namespace": "team"}}
    target = select(two_clusters(contexts, **{"proxy-url": "socks5://p:1080"}), "dev")
    assert (target.proxy_url, target.namespace) == ("socks5://p:1080", "team")
    assert target.cluster_entry["proxy-url"] == "socks5://p:1080"
    with pytest.raises(ConfigError) as e:
        select(two_clusters(contexts, **{"proxy-url": "ftp://p:21"}), "dev")
    assert str(e.value) == (
        "cluster 'dev': error parsing proxy-url 'ftp://p:21': unsupported scheme 'ftp', "
        "must be http, https, or socks5"
    )


def test_no_namespace_in_the_context() -> None:
    target = select(two_clusters({"dev-admin": {"cluster": "dev", "user": "admin"}}), "dev")
    assert target.namespace is None


def test_insecure_together_with_a_ca_is_refused_as_by_kubectl() -> None:
    config = two_clusters(
        {"dev-admin": {"cluster": "dev", "user": "admin"}},
        **{"insecure-skip-tls-verify": True, "certificate-authority-data": "QUJD"},
    )
    with pytest.raises(ConfigError) as e:
        select(config, "dev")
    assert str(e.value) == (
        "cluster 'dev': specifying a root certificates file with the insecure flag is not "
        "allowed (kubectl refuses it too): drop insecure-skip-tls-verify or "
        "certificate-authority-data"
    )


def test_ca_data_and_file_both_set_is_refused_as_by_kubectl() -> None:
    config = two_clusters(
        {"dev-admin": {"cluster": "dev", "user": "admin"}},
        **{"certificate-authority": "/ca.crt", "certificate-authority-data": "QUJD"},
    )
    with pytest.raises(ConfigError, match="certificate-authority-data and certificate-authority"):
        select(config, "dev")
