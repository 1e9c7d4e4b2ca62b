"""bootstrap.outputs.emit: the env/json/kubeconfig renderings and the atomic, 0600 file writes."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bootstrap.errors import OutputError
from bootstrap.kube.kubeconfig import Kubeconfig
from bootstrap.kube.target import select
from bootstrap.outputs import emit
from bootstrap.outputs.emit import (
    Issued,
    github_mask,
    render_dotenv,
    render_env,
    render_github_outputs,
    render_json,
    render_kubeconfig,
    sh_quote,
    variables,
)

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"

ISSUED = Issued(
    cluster="dev",
    server="https://127.0.0.1:6443",
    namespace="ci",
    service_account="deployer",
    secret="deployer-token",
    token=TOKEN,
    ca_pem=CA_PEM,
    identity="system:serviceaccount:ci:deployer",
)

HOSTILE = [
    "it's",
    'say "hi"',
    "$(touch pwned-subst)",
    "`touch pwned-backtick`",
    "${HOME}$HOME",
    "line one\nline two\n",
    "back\\slash\\n\\",
    "'",
    '"',
    "''\"\"'\"'",
    "; touch pwned-semicolon; #",
    "a\tb\rc",
    "!!:0 *?[x] ~ & | < > ",
    "ünïcødé ✓",
    " leading and trailing ",
    "",
]

SHELLS = [
    pytest.param("sh", id="sh"),
    pytest.param("bash", id="bash"),
    pytest.param(
        "zsh",
        id="zsh",
        marks=pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed"),
    ),
]

VARS = ("APISERVER", "TOKEN", "CACERT", "NAMESPACE")


def source_and_dump(shell: str, script: Path, cwd: Path) -> dict[str, str]:
    """Source `script` in `shell` with an empty environment; return the exported variables."""
    process = subprocess.run(
        [shell, "-c", '. "$1" && exec env -0', shell, str(script)],
        cwd=cwd,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        check=True,
        timeout=10,
    )
    exported = {}
    for item in process.stdout.decode("utf-8").split("\0"):
        if item:
            key, _, value = item.partition("=")
            exported[key] = value
    return exported


# --- env ----------------------------------------------------------------------------


def test_render_env_text() -> None:
    text = render_env(ISSUED, Path("/out/dev.ca.crt"))
    assert text.endswith("\n")
    exports = [line for line in text.splitlines() if not line.startswith("#")]
    assert exports == [
        "export APISERVER='https://127.0.0.1:6443'",
        f"export TOKEN='{TOKEN}'",
        "export CACERT='/out/dev.ca.crt'",
        "export NAMESPACE='ci'",
    ]


def test_render_env_without_ca_has_no_cacert() -> None:
    text = render_env(ISSUED, None)
    assert "CACERT=" not in text.replace('"$CACERT"', "")
    assert "export NAMESPACE='ci'" in text


@pytest.mark.parametrize("shell", SHELLS)
def test_sourcing_env_exports_exact_values(shell: str, tmp_path: Path) -> None:
    script = tmp_path / "dev.env"
    script.write_text(render_env(ISSUED, tmp_path / "dev.ca.crt"))
    exported = source_and_dump(shell, script, tmp_path)
    assert exported["APISERVER"] == ISSUED.server
    assert exported["TOKEN"] == TOKEN
    assert exported["CACERT"] == str(tmp_path / "dev.ca.crt")
    assert exported["NAMESPACE"] == "ci"


@pytest.mark.parametrize("shell", SHELLS)
def test_sourcing_env_with_hostile_values(shell: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for i, value in enumerate(HOSTILE):
        other = HOSTILE[(i + 1) % len(HOSTILE)]
        issued = replace(ISSUED, server=value, token=other, namespace=value + other)
        cacert = Path("/tmp") / (other + "-ca.crt")
        script = tmp_path / f"{i}.env"
        if "\n" in value + other or "\r" in value + other:
            # A line break is refused: our own reader (and dotenv readers) split there.
            with pytest.raises(OutputError, match=r"contains the line break U\+000[AD]"):
                render_env(issued, cacert)
            continue
        script.write_text(render_env(issued, cacert))
        exported = source_and_dump(shell, script, work)
        got = {k: exported.get(k) for k in VARS}
        assert got == {
            "APISERVER": value,
            "TOKEN": other,
            "CACERT": str(cacert),
            "NAMESPACE": value + other,
        }, f"value #{i}: {value!r}"
    assert list(work.iterdir()) == [], "sourcing the env file ran a command"


def test_cluster_name_with_newline_does_not_run_code(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    issued = replace(ISSUED, cluster="dev\ntouch pwned-cluster-name")
    script = tmp_path / "x.env"
    script.write_text(render_env(issued, None))
    source_and_dump("sh", script, work)
    assert list(work.iterdir()) == []


@pytest.fixture(scope="module")
def sh_path() -> Iterator[str]:
    path = shutil.which("sh")
    assert path is not None
    yield path


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0")))
def test_sh_quote_round_trips_any_text(sh_path: str, value: str) -> None:
    process = subprocess.run(
        [sh_path, "-c", "printf '%s' " + sh_quote(value)],
        capture_output=True,
        timeout=10,
        check=True,
    )
    assert process.stdout.decode("utf-8") == value


def test_sh_quote_examples() -> None:
    assert sh_quote("") == "''"
    assert sh_quote("abc") == "'abc'"
    assert sh_quote("it's") == "'it'\"'\"'s'"


# --- json ---------------------------------------------------------------------------


def test_render_json() -> None:
    """Schema bootstrap-token/v1: every field, in order, pinned literally."""
    text = render_json(ISSUED, Path("/out/dev.ca.crt"))
    document = json.loads(text)
    assert list(document) == [
        "apiVersion",
        "cluster",
        "apiserver",
        "namespace",
        "service_account",
        "identity",
        "identity_checked",
        "secret",
        "token",
        "expires_at",
        "ca_pem",
        "cacert_path",
        "insecure_skip_tls_verify",
        "tls_server_name",
        "proxy_url",
        "powers",
        "can",
        "can_incomplete",
        "can_evaluation_error",
    ]
    assert document == {
        "apiVersion": "bootstrap-token/v1",
        "cluster": "dev",
        "apiserver": ISSUED.server,
        "namespace": "ci",
        "service_account": "deployer",
        "identity": "system:serviceaccount:ci:deployer",
        "secret": "deployer-token",
        "token": TOKEN,
        "expires_at": None,
        "ca_pem": CA_PEM.decode(),
        "cacert_path": "/out/dev.ca.crt",
        "insecure_skip_tls_verify": False,
        "identity_checked": True,
        "tls_server_name": None,
        "proxy_url": None,
        "powers": None,
        "can": None,
        "can_incomplete": None,
        "can_evaluation_error": None,
    }
    assert text.endswith("}\n")


def test_render_json_says_what_was_checked() -> None:
    unchecked = json.loads(render_json(replace(ISSUED, identity_checked=False), None))
    assert unchecked["identity"] is None and unchecked["identity_checked"] is False
    powerful = replace(ISSUED, powers=("cluster-admin", "impersonate"))
    assert json.loads(render_json(powerful, None))["powers"] == ["cluster-admin", "impersonate"]
    assert json.loads(render_json(replace(ISSUED, powers=()), None))["powers"] == []


def test_render_json_without_ca_and_with_hostile_values() -> None:
    issued = replace(ISSUED, ca_pem=None, server=HOSTILE[5], token='"}\n{"x": 1')
    document = json.loads(render_json(issued, None))
    assert document["cacert_path"] is None and document["ca_pem"] is None
    assert document["apiserver"] == HOSTILE[5]
    assert document["token"] == '"}\n{"x": 1'


def test_render_json_nulls_never_empty_strings() -> None:
    """Request mode has no Secret (Issued.secret is ""): null in json, like every absent value."""
    issued = replace(
        ISSUED, secret="", ca_pem=None, expires_at="2030-01-02T03:04:05Z", insecure=True
    )
    document = json.loads(render_json(issued, None))
    assert document["secret"] is None
    assert document["expires_at"] == "2030-01-02T03:04:05Z"
    assert document["insecure_skip_tls_verify"] is True
    assert "" not in document.values()


def test_expiry_of_short_lived_tokens_is_carried() -> None:
    issued = replace(ISSUED, expires_at="2030-01-02T03:04:05Z")
    assert json.loads(render_json(issued, None))["expires_at"] == "2030-01-02T03:04:05Z"
    assert "export EXPIRES_AT='2030-01-02T03:04:05Z'\n" in render_env(issued, None)
    assert "EXPIRES_AT=2030-01-02T03:04:05Z\n" in render_dotenv(issued, None)
    assert "expires-at=2030-01-02T03:04:05Z\n" in render_github_outputs(issued, None)


def test_variables_order_and_optional_ones() -> None:
    assert list(variables(ISSUED, Path("/ca"))) == ["APISERVER", "TOKEN", "CACERT", "NAMESPACE"]
    assert list(variables(ISSUED, None)) == ["APISERVER", "TOKEN", "NAMESPACE"]
    expiring = replace(ISSUED, expires_at="2030-01-01T00:00:00Z")
    assert list(variables(expiring, None))[-1] == "EXPIRES_AT"


# --- dotenv and github ------------------------------------------------------------------


def test_render_dotenv_is_verbatim_key_value_lines() -> None:
    issued = replace(ISSUED, server="https://h/$(x)'\"`", namespace="ci")
    assert render_dotenv(issued, Path("/out/dev.ca.crt")) == (
        f"APISERVER=https://h/$(x)'\"`\nTOKEN={TOKEN}\nCACERT=/out/dev.ca.crt\nNAMESPACE=ci\n"
    )


@pytest.mark.parametrize("field", ["server", "token", "namespace"])
@pytest.mark.parametrize("line_break", ["\n", "\r", "\r\n"])
def test_render_dotenv_refuses_line_breaks(field: str, line_break: str) -> None:
    secret = f"s3cr3t{line_break}INJECTED=1"
    with pytest.raises(OutputError) as e:
        render_dotenv(replace(ISSUED, **{field: secret}), None)
    assert "line break" in str(e.value)
    assert "s3cr3t" not in str(e.value)


def test_render_dotenv_refuses_a_cacert_path_with_a_line_break() -> None:
    with pytest.raises(OutputError, match="CACERT contains the line break U\\+000A"):
        render_dotenv(ISSUED, Path("/tmp/a\nb.ca.crt"))


def test_render_dotenv_with_ca_data_carries_the_ca_itself_in_base64() -> None:
    # base64 of CA_PEM, pinned: a later CI job rebuilds the file with `base64 -d`
    data = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJmYWtlCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"
    assert render_dotenv(ISSUED, Path("/out/dev.ca.crt"), ca_data=True) == (
        f"APISERVER=https://127.0.0.1:6443\nTOKEN={TOKEN}\nCACERT=/out/dev.ca.crt\n"
        f"NAMESPACE=ci\nCACERT_DATA={data}\n"
    )
    assert f"P_CACERT_DATA={data}\n" in render_dotenv(ISSUED, None, "P_", ca_data=True)
    # GitHub's $GITHUB_ENV keeps the CA file (it lives as long as the job): no CACERT_DATA
    assert "CACERT_DATA" not in render_dotenv(ISSUED, Path("/out/dev.ca.crt"))
    # no CA known (e.g. a publicly trusted server): nothing to carry
    assert "CACERT_DATA" not in render_dotenv(replace(ISSUED, ca_pem=None), None, ca_data=True)


def test_render_github_outputs_has_no_token() -> None:
    text = render_github_outputs(ISSUED, Path("/runner/tmp/dev.ca.crt"))
    assert text == (
        f"apiserver={ISSUED.server}\n"
        "namespace=ci\n"
        "identity=system:serviceaccount:ci:deployer\n"
        "cacert=/runner/tmp/dev.ca.crt\n"
        "expires-at=\n"
    )
    assert TOKEN not in text
    assert "cacert=\n" in render_github_outputs(ISSUED, None)


def test_github_mask() -> None:
    assert github_mask(ISSUED) == f"::add-mask::{TOKEN}\n"


# --- kubeconfig ---------------------------------------------------------------------


def load(text: str) -> dict[str, Any]:
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


def named(document: dict[str, Any], section: str, name: str) -> list[dict[str, Any]]:
    return [e for e in document[section] if e.get("name") == name]


def test_standalone_kubeconfig() -> None:
    document = load(render_kubeconfig(ISSUED))
    name = "ci/deployer@dev"
    assert ISSUED.entry_name == name
    assert document["apiVersion"] == "v1" and document["kind"] == "Config"
    assert document["current-context"] == name
    assert document["clusters"] == [
        {
            "name": "dev",
            "cluster": {
                "server": ISSUED.server,
                "certificate-authority-data": base64.b64encode(CA_PEM).decode(),
            },
        }
    ]
    assert document["users"] == [{"name": name, "user": {"token": TOKEN}}]
    assert document["contexts"] == [
        {"name": name, "context": {"cluster": "dev", "user": name, "namespace": "ci"}}
    ]


def test_standalone_kubeconfig_is_usable_by_our_own_reader(tmp_path: Path) -> None:
    path = tmp_path / "out.kubeconfig"
    path.write_text(render_kubeconfig(ISSUED))
    target = select(Kubeconfig.from_files([path]), "dev")
    assert target.server == ISSUED.server
    assert target.ca_data == CA_PEM
    assert dict(target.user) == {"token": TOKEN}
    assert target.context == ISSUED.entry_name


def test_standalone_kubeconfig_insecure_has_no_ca() -> None:
    cluster = load(render_kubeconfig(replace(ISSUED, insecure=True)))["clusters"][0]["cluster"]
    assert cluster == {"server": ISSUED.server, "insecure-skip-tls-verify": True}


def test_standalone_kubeconfig_without_ca() -> None:
    cluster = load(render_kubeconfig(replace(ISSUED, ca_pem=None)))["clusters"][0]["cluster"]
    assert cluster == {"server": ISSUED.server}


def existing_config() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {"colors": True},
        "current-context": "prod-admin",
        "clusters": [
            {"name": "prod", "cluster": {"server": "https://prod", "certificate-authority": "/p"}},
            {"name": "dev", "cluster": {"server": "https://127.0.0.1:6443/", "extensions": []}},
            {"name": "staging", "cluster": {"server": "https://staging"}},
        ],
        "users": [
            {"name": "prod-admin", "user": {"client-certificate-data": "Q0VSVA=="}},
            {"name": "oidc", "user": {"exec": {"command": "kubelogin", "args": ["get-token"]}}},
        ],
        "contexts": [
            {"name": "prod-admin", "context": {"cluster": "prod", "user": "prod-admin"}},
            {"name": "dev-oidc", "context": {"cluster": "dev", "user": "oidc", "namespace": "x"}},
        ],
        "extra-top-level": {"kept": "yes"},
    }


def test_merge_keeps_every_existing_entry() -> None:
    existing = existing_config()
    merged = load(render_kubeconfig(ISSUED, existing))
    for section in ("clusters", "users", "contexts"):
        for entry in existing[section]:
            assert entry in merged[section], f"{section} lost {entry['name']}"
    assert merged["preferences"] == {"colors": True}
    assert merged["extra-top-level"] == {"kept": "yes"}
    # The same-named cluster with the same server (modulo a trailing slash) is left as is.
    assert named(merged, "clusters", "dev") == [existing["clusters"][1]]
    assert len(merged["clusters"]) == 3
    name = ISSUED.entry_name
    assert named(merged, "users", name) == [{"name": name, "user": {"token": TOKEN}}]
    assert named(merged, "contexts", name) == [
        {"name": name, "context": {"cluster": "dev", "user": name, "namespace": "ci"}}
    ]
    assert merged["current-context"] == "prod-admin"


def test_merge_does_not_mutate_the_existing_document() -> None:
    existing = existing_config()
    render_kubeconfig(ISSUED, existing)
    assert existing == existing_config()


def test_rerun_replaces_our_user_and_context() -> None:
    first = load(render_kubeconfig(ISSUED, existing_config()))
    rerun = replace(ISSUED, token="new-token")
    second = load(render_kubeconfig(rerun, first))
    name = ISSUED.entry_name
    assert named(second, "users", name) == [{"name": name, "user": {"token": "new-token"}}]
    assert len(named(second, "contexts", name)) == 1
    for section in ("clusters", "users", "contexts"):
        assert len(second[section]) == len(first[section])
    assert TOKEN not in yaml.safe_dump(second)


def test_rerun_replaces_a_stale_user_of_our_name() -> None:
    name = ISSUED.entry_name
    existing = {
        "users": [{"name": name, "user": {"token": "stale", "client-key": "/k"}}],
        "contexts": [{"name": name, "context": {"cluster": "dev", "user": name, "namespace": "o"}}],
    }
    merged = load(render_kubeconfig(ISSUED, existing))
    assert merged["users"] == [{"name": name, "user": {"token": TOKEN}}]
    assert merged["contexts"][0]["context"]["namespace"] == "ci"


def test_merge_adds_our_cluster_when_missing() -> None:
    existing = existing_config()
    existing["clusters"] = [c for c in existing["clusters"] if c["name"] != "dev"]
    merged = load(render_kubeconfig(ISSUED, existing))
    assert named(merged, "clusters", "dev") == [
        {
            "name": "dev",
            "cluster": {
                "server": ISSUED.server,
                "certificate-authority-data": base64.b64encode(CA_PEM).decode(),
            },
        }
    ]


def test_merge_refuses_a_same_named_cluster_with_another_server() -> None:
    existing = existing_config()
    existing["clusters"][1]["cluster"]["server"] = "https://elsewhere:6443"
    with pytest.raises(OutputError) as e:
        render_kubeconfig(ISSUED, existing)
    message = str(e.value)
    assert "'dev'" in message and "https://elsewhere:6443" in message
    assert "--out" in message
    assert e.value.exit_code == 9


def test_merge_refuses_a_same_named_cluster_without_server() -> None:
    existing = {"clusters": [{"name": "dev", "cluster": {}}]}
    with pytest.raises(OutputError):
        render_kubeconfig(ISSUED, existing)


def test_merge_with_a_malformed_same_named_cluster_is_an_output_error() -> None:
    with pytest.raises(OutputError):
        render_kubeconfig(ISSUED, {"clusters": [{"name": "dev", "cluster": "oops"}]})


@pytest.mark.parametrize("section", ["clusters", "users", "contexts"])
def test_merge_refuses_a_section_that_is_not_a_list(section: str) -> None:
    with pytest.raises(OutputError, match=f"'{section}' in the existing kubeconfig is not a list"):
        render_kubeconfig(ISSUED, {section: {"a": 1}})


@pytest.mark.parametrize("current", [None, ""])
def test_merge_sets_current_context_only_when_there_is_none(current: str | None) -> None:
    existing: dict[str, Any] = {"clusters": [], "current-context": current}
    merged = load(render_kubeconfig(ISSUED, existing))
    assert merged["current-context"] == ISSUED.entry_name
    assert merged["apiVersion"] == "v1" and merged["kind"] == "Config"


def test_merge_into_an_empty_file() -> None:
    merged = load(render_kubeconfig(ISSUED, {}))
    assert merged["current-context"] == ISSUED.entry_name
    assert [c["name"] for c in merged["clusters"]] == ["dev"]


# --- tls-server-name and proxy-url carried into every output (docs/compatibility.md) ----

ROUTED = replace(
    ISSUED,
    server="https://10.1.2.3:6443/prefix",
    tls_server_name="kubernetes",
    proxy_url="socks5://proxy.corp:1080",
)


def test_env_carries_tls_server_name_curl_helpers_and_proxy() -> None:
    values = emit.variables(ROUTED, Path("/out/dev.ca.crt"))
    assert list(values) == [
        "APISERVER",
        "TOKEN",
        "CACERT",
        "NAMESPACE",
        "TLS_SERVER_NAME",
        "CURL_CONNECT_TO",
        "CURL_APISERVER",
        "HTTPS_PROXY",
    ]
    assert values["TLS_SERVER_NAME"] == "kubernetes"
    assert values["CURL_CONNECT_TO"] == "kubernetes:6443:10.1.2.3:6443"
    assert values["CURL_APISERVER"] == "https://kubernetes:6443/prefix"
    assert values["HTTPS_PROXY"] == "socks5h://proxy.corp:1080"
    text = render_env(ROUTED, Path("/out/dev.ca.crt"))
    assert (
        '#   curl --connect-to "$CURL_CONNECT_TO" "$CURL_APISERVER/api" '
        '-H "Authorization: Bearer $TOKEN" --cacert "$CACERT"\n'
    ) in text
    assert "export HTTPS_PROXY='socks5h://proxy.corp:1080'\n" in text


def test_env_without_them_is_unchanged() -> None:
    values = emit.variables(ISSUED, Path("/out/dev.ca.crt"))
    assert list(values) == ["APISERVER", "TOKEN", "CACERT", "NAMESPACE"]
    assert '#   curl "$APISERVER/api" -H "Authorization: Bearer $TOKEN"' in render_env(ISSUED, None)


def test_curl_helpers_with_ipv6_and_default_port() -> None:
    assert emit.curl_tls_name("https://[fd00::1]", "api.internal") == (
        "api.internal:443:[fd00::1]:443",
        "https://api.internal:443",
    )
    assert emit.shell_proxy("http://user:pw@p:3128") == "http://user:pw@p:3128"


def test_json_and_kubeconfig_carry_them() -> None:
    document = json.loads(render_json(ROUTED, None))
    assert document["tls_server_name"] == "kubernetes"
    assert document["proxy_url"] == "socks5://proxy.corp:1080"
    cluster = yaml.safe_load(render_kubeconfig(ROUTED))["clusters"][0]["cluster"]
    assert cluster["tls-server-name"] == "kubernetes"
    assert cluster["proxy-url"] == "socks5://proxy.corp:1080"
    assert base64.b64decode(cluster["certificate-authority-data"]) == CA_PEM
    dotenv = emit.render_dotenv(ROUTED, None)
    assert "TLS_SERVER_NAME=kubernetes\n" in dotenv
    assert "HTTPS_PROXY=socks5h://proxy.corp:1080\n" in dotenv


def test_https_proxy_needs_the_proxy_ca_in_the_curl_command() -> None:
    behind = replace(ISSUED, proxy_url="https://proxy.corp:3129")
    assert render_env(behind, Path("/out/dev.ca.crt")).splitlines()[2] == (
        '#   curl "$APISERVER/api" -H "Authorization: Bearer $TOKEN" --cacert "$CACERT" '
        '--proxy-cacert "$CACERT"'
    )
    assert "--proxy-cacert" not in render_env(replace(ISSUED, proxy_url="http://p:3128"), None)
