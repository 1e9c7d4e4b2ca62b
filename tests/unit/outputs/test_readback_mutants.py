"""readback.py rules that mutants of it survived: what a line of an env/dotenv file is,
the shell words of a value, the --env-prefix found, each field of env, JSON, kubeconfig
and Argo CD Secret files, the exact refusals, and `foreign`'s verdicts. Literal
expectations, in-process (no server)."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bootstrap.errors import UsageError
from bootstrap.outputs import readback

BASE = Path("/o/d")


def usage_error(text: str, base: Path = BASE, **kwargs: Any) -> str:
    with pytest.raises(UsageError) as caught:
        readback.parse(text, base, **kwargs)
    return str(caught.value)


# --- FileCredentials ----------------------------------------------------------------------


def test_file_credentials_are_frozen_secure_by_default_and_redact_the_token() -> None:
    creds = readback.FileCredentials("env", "https://a", "s3cr3t")
    assert creds.insecure is False
    assert repr(creds) == "FileCredentials(format='env', server='https://a', token=<redacted>)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        creds.token = "x"  # type: ignore[misc]


# --- what a variable line is ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("A=1\n", "dotenv"),  # a one-letter name
        ("A=\n", "dotenv"),  # an empty value
        ("A=1\n\nB=2\n", "dotenv"),  # a blank line is skipped
        ("# c\nA=1\n", "dotenv"),
        ("A=1\nexport B=2\n", "env"),
        (".A=1\n", "kubeconfig"),  # not a shell name
        ("A.B=1\n", "kubeconfig"),
        ("# only a comment\n", "kubeconfig"),
        ("", "kubeconfig"),
        ("  {}", "json"),
    ],
)
def test_detect(text: str, kind: str) -> None:
    assert readback.detect(text) == kind


# --- env and dotenv -------------------------------------------------------------------------------


def test_an_env_value_is_read_as_bash_reads_it() -> None:
    text = (
        "export APISERVER='https://a' # not a comment\n"
        "export TOKEN=t0k3n\n"
        "export NAMESPACE=\n"
        "export EXPIRES_AT=\"2030\"'-01'\n"
        "export TLS_SERVER_NAME=kube rnetes\n"
    )
    creds = readback.parse(text, BASE)
    assert creds.format == "env"
    assert creds.server == "https://a#notacomment"
    assert creds.token == "t0k3n"
    assert creds.namespace is None
    assert creds.expires_at == "2030-01"
    assert creds.tls_server_name == "kubernetes"  # two words, joined


def test_a_dotenv_value_is_taken_as_written() -> None:
    creds = readback.parse("APISERVER='https://a'\nTOKEN=t\n", BASE)
    assert (creds.format, creds.server) == ("dotenv", "'https://a'")


def test_bad_shell_quoting_names_its_line() -> None:
    text = "export APISERVER=https://a\nexport TOKEN='t\n"
    assert usage_error(text) == "line 2 is not valid shell quoting"


def test_every_variable_is_read() -> None:
    text = (
        "APISERVER=https://a\nTOKEN=t\nCACERT=p.ca.crt\nNAMESPACE=ns\nEXPIRES_AT=2030\n"
        "TLS_SERVER_NAME=kubernetes\nHTTPS_PROXY=http://p:3128\n"
    )
    creds = readback.parse(text, BASE)
    assert (creds.server, creds.token, creds.ca_file, creds.namespace, creds.expires_at) == (
        "https://a", "t", "/o/d/p.ca.crt", "ns", "2030",
    )  # fmt: skip
    assert (creds.tls_server_name, creds.proxy_url) == ("kubernetes", "http://p:3128")
    assert (creds.ca_pem, creds.insecure) == (None, False)
    absolute = readback.parse("APISERVER=https://a\nTOKEN=t\nCACERT=/etc/ca\n", BASE)
    assert absolute.ca_file == "/etc/ca"


def test_the_prefix_is_found_or_must_be_named() -> None:
    one = readback.parse("DEV_APISERVER=https://a\nDEV_TOKEN=t\n", BASE)
    assert (one.server, one.token) == ("https://a", "t")
    two = "A_APISERVER=https://a\nA_TOKEN=t\nB_APISERVER=https://b\nB_TOKEN=u\n"
    assert usage_error(two) == (
        "the file holds several credentials (variable prefixes A_, B_); "
        "pass --env-prefix to pick one"
    )
    assert readback.parse(two, BASE, prefix="B_").server == "https://b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("APISERVER=https://a\n", "no APISERVER and TOKEN variables found in the file"),
        ("TOKEN=t\n", "no APISERVER and TOKEN variables found in the file"),
        ("APISERVER=https://a\nTOKEN=\n", "no APISERVER and TOKEN variables found in the file"),
        ("X_APISERVER=https://a\n", "no X_APISERVER and X_TOKEN variables found in the file"),
    ],
)
def test_a_variable_file_without_server_or_token_is_refused(text: str, message: str) -> None:
    assert usage_error(text) == message


# --- JSON ---------------------------------------------------------------------------------------------


def test_every_json_field_is_read() -> None:
    document = {
        "apiserver": "https://a", "token": "t", "ca_pem": "PEM", "cacert_path": "p.ca.crt",
        "tls_server_name": "kubernetes", "proxy_url": "http://p:3128", "namespace": "ns",
        "expires_at": "2030",
    }  # fmt: skip
    creds = readback.parse(json.dumps(document), BASE)
    assert (creds.format, creds.server, creds.token, creds.ca_pem, creds.ca_file) == (
        "json", "https://a", "t", b"PEM", "/o/d/p.ca.crt",
    )  # fmt: skip
    assert (creds.tls_server_name, creds.proxy_url, creds.namespace, creds.expires_at) == (
        "kubernetes", "http://p:3128", "ns", "2030",
    )  # fmt: skip


def test_json_files_from_before_v1_are_read() -> None:
    old = {"apiserver": "https://a", "token": "t", "ca_crt": "PEM", "cacert": "old.crt"}
    creds = readback.parse(json.dumps(old), BASE)
    assert (creds.ca_pem, creds.ca_file) == (b"PEM", "/o/d/old.crt")


def test_json_fields_of_the_wrong_type_or_empty_are_none() -> None:
    document = {
        "apiserver": "https://a", "token": "t", "ca_pem": 5, "cacert_path": 7,
        "tls_server_name": "", "proxy_url": 3, "namespace": "", "expires_at": [1],
    }  # fmt: skip
    creds = readback.parse(json.dumps(document), BASE)
    assert (creds.ca_pem, creds.ca_file, creds.tls_server_name, creds.proxy_url) == (
        None, None, None, None,
    )  # fmt: skip
    assert (creds.namespace, creds.expires_at) == (None, None)


@pytest.mark.parametrize(
    "document",
    [
        {"apiserver": "https://a"},
        {"token": "t"},
        {"apiserver": 5, "token": "t"},
        {"apiserver": "https://a", "token": 5},
        {"apiserver": "https://a", "token": ""},
    ],
)
def test_a_json_file_without_server_or_token_is_refused(document: dict[str, Any]) -> None:
    assert (
        usage_error(json.dumps(document)) == 'the JSON file has no "apiserver" and "token" strings'
    )


def test_json_refusals() -> None:
    assert usage_error("{nope") == (
        "the file looks like JSON but does not parse: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )
    with pytest.raises(UsageError) as caught:
        readback._from_json("[1]", BASE)
    assert str(caught.value) == "the JSON file is not an object"


# --- kubeconfig -----------------------------------------------------------------------------------


def config(
    contexts: list[str], current: str | None = None, cluster: dict[str, object] | None = None
) -> str:
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://a", **(cluster or {})}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": name, "context": {"cluster": "c", "user": "u", "namespace": name}}
            for name in contexts
        ],
    }
    if current is not None:
        document["current-context"] = current
    return yaml.safe_dump(document)


def test_the_context_read_is_the_one_asked_else_current_else_the_only_one() -> None:
    assert readback.parse(config(["a"]), BASE).namespace == "a"
    assert readback.parse(config(["a", "b"], "b"), BASE).namespace == "b"
    assert readback.parse(config(["a", "b"], "b"), BASE, context="a").namespace == "a"
    assert usage_error(config(["a", "b"])) == "the kubeconfig has no context None (it has: a, b)"
    assert usage_error(config(["a", "b"], "b"), context="z") == (
        "the kubeconfig has no context 'z' (it has: a, b)"
    )


def test_every_kubeconfig_field_is_read() -> None:
    pem = base64.b64encode(b"PEM").decode()
    cluster = {
        "certificate-authority-data": pem, "certificate-authority": "ca.crt",
        "insecure-skip-tls-verify": True, "tls-server-name": "kubernetes",
        "proxy-url": "http://p:3128",
    }  # fmt: skip
    creds = readback.parse(config(["a"], cluster=cluster), BASE)
    assert (creds.format, creds.server, creds.token, creds.ca_pem, creds.ca_file) == (
        "kubeconfig", "https://a", "t", b"PEM", "/o/d/ca.crt",
    )  # fmt: skip
    assert (creds.insecure, creds.tls_server_name, creds.proxy_url, creds.namespace) == (
        True, "kubernetes", "http://p:3128", "a",
    )  # fmt: skip
    bare = readback.parse(config(["a"]), BASE)
    assert (bare.ca_pem, bare.ca_file, bare.insecure, bare.tls_server_name, bare.proxy_url) == (
        None, None, False, None, None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("key: [unclosed\n", "the file is neither env, dotenv, JSON nor a kubeconfig"),
        ("clusters: 5\n", "the file is neither env, dotenv, JSON nor a kubeconfig"),
        (
            "apiVersion: v1\nkind: Config\n",
            "the file is neither env, dotenv, JSON nor a kubeconfig with a context",
        ),
    ],
)
def test_what_is_not_a_kubeconfig_is_refused(text: str, message: str) -> None:
    assert usage_error(text) == message


def test_a_context_without_its_cluster_or_user_or_token_is_refused() -> None:
    loaded = yaml.safe_load(config(["a"]))
    loaded["users"] = []
    assert usage_error(yaml.safe_dump(loaded)) == (
        "context 'a' names a cluster or user the file does not define"
    )
    loaded = yaml.safe_load(config(["a"]))
    loaded["clusters"] = []
    assert usage_error(yaml.safe_dump(loaded)) == (
        "context 'a' names a cluster or user the file does not define"
    )
    for user in ({}, {"token": ""}):
        loaded = yaml.safe_load(config(["a"]))
        loaded["users"][0]["user"] = user
        assert usage_error(yaml.safe_dump(loaded)) == "context 'a' has no server or no token user"
    loaded = yaml.safe_load(config(["a"]))
    del loaded["clusters"][0]["cluster"]["server"]
    assert usage_error(yaml.safe_dump(loaded)) == "context 'a' has no server or no token user"


# --- Secret manifests -------------------------------------------------------------------------


def argocd(config: object, **extra: str) -> str:
    text = config if isinstance(config, str) else json.dumps(config)
    return yaml.safe_dump(
        {"kind": "Secret", "stringData": {"server": "https://a", "config": text, **extra}}
    )


ARGO_ERROR = "the Argo CD Secret's config is not JSON with a bearerToken and valid caData"


def test_every_argocd_field_is_read() -> None:
    pem = base64.b64encode(b"PEM").decode()
    tls = {"caData": pem, "insecure": True, "serverName": "kubernetes"}
    full = {"bearerToken": "t", "tlsClientConfig": tls, "proxyUrl": "http://p:3128"}
    creds = readback.parse(argocd(full), BASE)
    assert (creds.format, creds.server, creds.token, creds.ca_pem, creds.insecure) == (
        "argocd", "https://a", "t", b"PEM", True,
    )  # fmt: skip
    assert (creds.tls_server_name, creds.proxy_url, creds.ca_file) == (
        "kubernetes", "http://p:3128", None,
    )  # fmt: skip
    bare = readback.parse(argocd({"bearerToken": "t"}), BASE)
    assert (bare.ca_pem, bare.insecure, bare.tls_server_name, bare.proxy_url) == (
        None, False, None, None,
    )  # fmt: skip
    # Only a JSON true is insecure.
    truthy = {"bearerToken": "t", "tlsClientConfig": {"insecure": "true"}}
    assert readback.parse(argocd(truthy), BASE).insecure is False


@pytest.mark.parametrize(
    "config",
    [
        "not json",
        "[1]",  # a list has no .get
        {"tlsClientConfig": {}},  # no bearerToken
        {"bearerToken": "t", "tlsClientConfig": 5},
        {"bearerToken": "t", "tlsClientConfig": {"caData": 5}},
        {"bearerToken": "t", "tlsClientConfig": {"caData": "UEVN!"}},  # not strict base64
    ],
)
def test_a_broken_argocd_config_is_refused(config: object) -> None:
    assert usage_error(argocd(config)) == ARGO_ERROR


@pytest.mark.parametrize("token", ["", 5])
def test_an_argocd_config_without_a_token_string_is_refused(token: object) -> None:
    assert usage_error(argocd({"bearerToken": token})) == (
        "the Argo CD Secret's config has no bearerToken"
    )


@pytest.mark.parametrize("values", [{"server": "https://a"}, {"config": "{}"}, {"other": "x"}])
def test_a_secret_of_neither_kind_is_refused(values: dict[str, str]) -> None:
    text = yaml.safe_dump({"kind": "Secret", "stringData": values})
    assert usage_error(text) == (
        "the Secret holds neither an Argo CD cluster config (server, config) nor a "
        "kubeconfig under value"
    )


def test_a_kubeconfig_secret_is_read_from_data_or_string_data() -> None:
    inner = "APISERVER=https://a\nTOKEN=t\n"
    data = {"value": base64.b64encode(inner.encode()).decode()}
    creds = readback.parse(yaml.safe_dump({"kind": "Secret", "data": data}), BASE)
    assert (creds.format, creds.server, creds.token) == ("kubeconfig-secret", "https://a", "t")
    both = {
        "kind": "Secret",
        "data": data,
        "stringData": {"value": "APISERVER=https://b\nTOKEN=u\n"},
    }
    assert readback.parse(yaml.safe_dump(both), BASE).server == "https://b"


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"not base64!"])
def test_secret_data_that_is_not_base64_text_is_refused(raw: bytes) -> None:
    value = base64.b64encode(raw).decode() if raw.startswith(b"\xff") else raw.decode()
    text = yaml.safe_dump({"kind": "Secret", "data": {"value": value}})
    assert usage_error(text) == "the Secret's data.value is not base64 text"


def test_a_secret_is_read_with_the_safe_loader_only() -> None:
    # A python tag: a SafeLoader error, so not a Secret (and not a kubeconfig either).
    text = "kind: Secret\nstringData: {server: https://a, config: !!python/str '{}'}\n"
    assert usage_error(text) == "the file is neither env, dotenv, JSON nor a kubeconfig"
    assert readback.foreign(text, context="x") == "YAML that does not parse"


# --- foreign --------------------------------------------------------------------------------------

HEADER = (
    "# bootstrap-token: system:serviceaccount:ns:sa on cluster c\n"
    "# Use: source this file, then\n"
    "#   curl -H ...\n"
)


def test_foreign_env_header_lines_are_matched_exactly_or_by_their_start() -> None:
    assert readback.foreign(HEADER + "export TOKEN='t'\n") is None
    longer = HEADER.replace("then\n", "then rm -rf ~\n")
    assert readback.foreign(longer + "export TOKEN='t'\n") == "its header is not bootstrap-token's"
    assert readback.foreign("export TOKEN='t'\n") == "its header is not bootstrap-token's"


@pytest.mark.parametrize(
    ("line", "verdict"),
    [
        ("export TOKEN='t'", None),
        ('export TOKEN="t"', "a line bootstrap-token does not write (env line 4)"),
        ("export TOKEN='a' 'b'", "a line bootstrap-token does not write (env line 4)"),
        ("export TOKEN='a", "a line bootstrap-token does not write (env line 4)"),
        ("export TOKEN=", "a line bootstrap-token does not write (env line 4)"),
        ("TOKEN='t'", "an unknown line (dotenv line 1)"),  # no export: a dotenv file
        ("export OTHER='t'", "an unknown line (env line 4)"),
    ],
)
def test_foreign_env_lines(line: str, verdict: str | None) -> None:
    assert readback.foreign(HEADER + line + "\n") == verdict


def test_foreign_dotenv_lines_are_numbered_from_one() -> None:
    assert readback.foreign("TOKEN=t\nX=1\n") == "an unknown line (dotenv line 2)"
    assert readback.foreign("TOKEN=t\nTOKEN=u\n") == "an unknown line (dotenv line 2)"
    assert readback.foreign("DEV_TOKEN=t\n", "DEV_") is None


# --- foreign text in a message is shown, never obeyed --------------------------------------


def test_names_from_the_file_in_a_message_cannot_forge_a_line() -> None:
    forged = "a\nerror: forged\x1b[2J"
    contexts = {"contexts": [{"name": n, "context": {}} for n in (forged, "b")]}
    assert usage_error(yaml.safe_dump(contexts)) == (
        "the kubeconfig has no context None (it has: a\\x0aerror: forged\\x1b[2J, b)"
    )
    secret = yaml.safe_dump({"kind": "Secret", "data": {forged: "!"}})
    assert usage_error(secret) == (
        "the Secret's data.a\\x0aerror: forged\\x1b[2J is not base64 text"
    )


@pytest.mark.parametrize("value", ["!!int abc", "2020-13-45"])
def test_a_yaml_value_the_safe_loader_cannot_construct_is_refused_not_a_crash(value: str) -> None:
    # PyYAML raises ValueError here, not a YAMLError.
    text = f"kind: Secret\nx: {value}\n"
    assert usage_error(text) == "the file is neither env, dotenv, JSON nor a kubeconfig"
    assert readback.foreign(text, context="x") == "YAML that does not parse"


def test_argocd_fields_of_the_wrong_type_are_none_not_a_crash() -> None:
    # A number or list reached the connection code and ended in an internal error.
    tls = {"serverName": [1], "insecure": True}
    creds = readback.parse(
        argocd({"bearerToken": "t", "tlsClientConfig": tls, "proxyUrl": 5}), BASE
    )
    assert (creds.tls_server_name, creds.proxy_url, creds.insecure) == (None, None, True)
