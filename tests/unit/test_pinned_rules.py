"""Security and contract rules pinned with literal values, so that breaking one fails a test.

Each test here kills mutants that survived `scripts/mutation` (docs/mutation.md): safe
YAML loading, token redaction in repr/str, DNS-1123 name rules and length limits, the
types kubectl accepts in a cluster entry, and every exit code with its meaning.
Expectations are written out, never computed from the code under test.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from bootstrap import errors, run
from bootstrap.commands.cli import command
from bootstrap.errors import (
    ApiError,
    AuthError,
    BootstrapError,
    ConfigError,
    ConflictError,
    NotFoundError,
    OutputError,
    TLSVerificationError,
    TransientError,
    UnreachableError,
    UsageError,
    VerifyError,
    WaitTimeout,
)
from bootstrap.kube.client import Credentials
from bootstrap.kube.kubeconfig import Kubeconfig, data_field, expand, parse
from bootstrap.kube.target import select, validate_name
from bootstrap.outputs.emit import (
    Issued,
    render_env,
    render_json,
    render_kubeconfig,
    safe_file_name,
)
from bootstrap.steps.manifests import account_labels
from bootstrap.steps.wait import Token

EXIT_CODES_PAGE = Path(__file__).resolve().parents[2] / "docs" / "exit-codes.md"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwaW5uZWQifQ.c2VjcmV0LXNpZ25hdHVyZQ"


def kubeconfig_text(cluster_extra: str = "", top_extra: str = "") -> str:
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        "- name: dev\n"
        "  cluster:\n"
        "    server: https://127.0.0.1:6443\n"
        f"{cluster_extra}"
        "users:\n"
        "- name: admin\n"
        "  user: {token: admin-token}\n"
        "contexts:\n"
        "- name: dev-admin\n"
        "  context: {cluster: dev, user: admin}\n"
        f"{top_extra}"
    )


def load(tmp_path: Path, text: str) -> Kubeconfig:
    path = tmp_path / "config"
    path.write_text(text)
    return Kubeconfig.from_files([path])


def invoke(*args: str) -> Result:
    return CliRunner().invoke(command, list(args), prog_name="bootstrap-token")


# --- YAML is loaded safely: a python tag is refused and never executed ---------------------


def test_python_object_tag_is_a_config_error_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = kubeconfig_text(
        top_extra=f'current-context: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert not marker.exists(), "the kubeconfig ran a command"
    assert str(caught.value) == (
        f"kubeconfig {tmp_path / 'config'} is not valid YAML at line 13, column 18: "
        "could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system'"
    )


def test_python_object_tag_as_the_whole_document_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ConfigError, match="could not determine a constructor"):
        parse(f'!!python/object/apply:os.system ["touch {marker}"]\n', tmp_path / "config")
    assert not marker.exists(), "the kubeconfig ran a command"


def test_python_tag_through_the_cli_exits_3_and_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "ran"
    path = tmp_path / "config"
    path.write_text(f'clusters: !!python/object/apply:os.system ["touch {marker}"]\n')
    result = invoke("--list-clusters", "--kubeconfig", str(path))
    assert result.exit_code == 3
    assert not marker.exists(), "the kubeconfig ran a command"
    assert result.stderr.startswith(f"error: kubeconfig {path} is not valid YAML at line 1")


# --- tokens never appear in repr/str ---------------------------------------------------------


def issued() -> Issued:
    return Issued(
        cluster="dev",
        server="https://127.0.0.1:6443",
        namespace="ci",
        service_account="build",
        secret="build-token",
        token=TOKEN,
        ca_pem=None,
        identity="system:serviceaccount:ci:build",
    )


def test_issued_repr_and_str_hide_the_token() -> None:
    value = issued()
    expected = "Issued(cluster='dev', identity='system:serviceaccount:ci:build', token=<redacted>)"
    assert repr(value) == expected
    assert str(value) == expected
    assert f"{value}" == expected
    assert TOKEN not in repr([value]) and TOKEN not in str({"issued": value})


def test_credentials_repr_and_str_hide_every_secret() -> None:
    credentials = Credentials(
        token=TOKEN,
        basic=("admin", "hunter2-password"),
        cert_pem=b"-----BEGIN CERTIFICATE-----\nCERT\n",
        key_pem=b"-----BEGIN PRIVATE KEY-----\nPRIVATEKEYBYTES\n",
        cert_files=("/etc/k/cert.pem", "/etc/k/key.pem"),
        impersonation=(("Impersonate-User", "someone"),),
    )
    for text in (repr(credentials), str(credentials), f"{credentials}", repr([credentials])):
        assert "Credentials(<redacted>)" in text
        for secret in (TOKEN, "hunter2-password", "PRIVATEKEYBYTES"):
            assert secret not in text


def test_token_repr_hides_the_token() -> None:
    value = Token(token=TOKEN, ca_pem=b"CA", namespace="ci")
    assert repr(value) == "Token(<redacted>, namespace='ci')"
    assert TOKEN not in str(value)


# --- names: DNS-1123 label (namespace) and subdomain (service account, secret) -------------


@pytest.mark.parametrize(
    "name",
    [
        *("a.b-", "a.b_c", "a_b", "_a", "a_", "a._b", "a.b_", "-a", "a-", "a.-b", "a-.b"),
        *(".a", "a.", "a..b", "a.b.", "a.b..c", "A", "a.B", "a b", "a/b", "é", "", "a\n"),
    ],
)
def test_invalid_subdomains_are_refused(name: str) -> None:
    with pytest.raises(UsageError) as caught:
        validate_name(name, "--service-account", subdomain=True)
    assert str(caught.value) == (
        f"--service-account {name!r} is not a valid DNS-1123 subdomain: use at most 253 "
        "lowercase letters, digits and '-', starting and ending with a letter or digit "
        "('.' also allowed)"
    )


@pytest.mark.parametrize(
    "name",
    ["a", "0", "9a", "ab", "a-b", "a.b", "ab.cd", "a-b.c-d", "a9b.c9d", "9a.9b", "a9.b9", "1.2.3"],
)
def test_valid_subdomains_pass(name: str) -> None:
    assert validate_name(name, "--secret", subdomain=True) == name


@pytest.mark.parametrize(
    "name", ["a.b", "a_b", "_a", "a_", "-a", "a-", ".a", "a.", "A", "a b", "", "a.b-", "a\n"]
)
def test_invalid_labels_are_refused(name: str) -> None:
    with pytest.raises(UsageError) as caught:
        validate_name(name, "--namespace")
    assert str(caught.value) == (
        f"--namespace {name!r} is not a valid DNS-1123 label: use at most 63 lowercase "
        "letters, digits and '-', starting and ending with a letter or digit"
    )


@pytest.mark.parametrize("name", ["a", "0", "9a", "a9", "ab", "a9b", "a-b", "a--b", "kube-system"])
def test_valid_labels_pass(name: str) -> None:
    assert validate_name(name, "--namespace") == name


def test_label_length_limit_is_63() -> None:
    assert validate_name("a" * 63, "--namespace") == "a" * 63
    assert validate_name("a" + "-" * 61 + "z", "--namespace") == "a" + "-" * 61 + "z"
    for name in ("a" * 64, "a" + "-" * 62 + "z"):
        with pytest.raises(UsageError, match="at most 63 "):
            validate_name(name, "--namespace")


def test_subdomain_length_limit_is_253() -> None:
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(longest) == 253
    assert validate_name(longest, "--secret", subdomain=True) == longest
    with pytest.raises(UsageError, match="at most 253 "):
        validate_name(longest + "d", "--secret", subdomain=True)
    # Like the API server (IsDNS1123Subdomain), only the total length is limited.
    assert validate_name("e" * 64, "--secret", subdomain=True) == "e" * 64
    assert validate_name("e" * 253, "--secret", subdomain=True) == "e" * 253


def test_names_are_checked_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("reached run.issue")

    monkeypatch.setattr(run, "issue", refuse)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config"
    path.write_text(kubeconfig_text())
    base = ["--cluster", "dev", "--kubeconfig", str(path)]
    for extra, flag in (
        (["-n", "a.b"], "--namespace 'a.b'"),
        (["-n", "x" * 64], "--namespace 'xxx"),
        (["-n", "ci", "--service-account", "a.b-"], "--service-account 'a.b-'"),
        (["-n", "ci", "--service-account", "a.b_c"], "--service-account 'a.b_c'"),
    ):
        result = invoke(*base, *extra)
        assert result.exit_code == 2, (extra, result.output)
        assert result.stderr.startswith(f"error: {flag}"), result.stderr


# --- cluster fields kubectl decodes as strings --------------------------------------------


@pytest.mark.parametrize("key", ["certificate-authority", "tls-server-name"])
@pytest.mark.parametrize("value", ["123", "true", "{a: 1}", "[x]"])
def test_non_string_tls_fields_are_config_errors_as_in_kubectl(
    tmp_path: Path, key: str, value: str
) -> None:
    # kubectl 1.32: error loading config file "kc": json: cannot unmarshal number into
    # Go struct field Cluster.clusters.cluster.certificate-authority of type string
    with pytest.raises(ConfigError, match=f"clusters entry 'dev': {key} must be a string"):
        select(load(tmp_path, kubeconfig_text(cluster_extra=f"    {key}: {value}\n")), "dev")


@pytest.mark.parametrize("key", ["certificate-authority", "tls-server-name"])
@pytest.mark.parametrize("value", ['""', "null"])
def test_empty_tls_fields_are_ignored_as_in_kubectl(tmp_path: Path, key: str, value: str) -> None:
    config = load(tmp_path, kubeconfig_text(cluster_extra=f"    {key}: {value}\n"))
    target = select(config, "dev")
    assert (target.ca_file, target.tls_server_name) == (None, None)


def test_string_tls_fields_reach_target(tmp_path: Path) -> None:
    extra = "    certificate-authority: ca.crt\n    tls-server-name: api.internal\n"
    target = select(load(tmp_path, kubeconfig_text(cluster_extra=extra)), "dev")
    assert target.ca_file == str(tmp_path / "ca.crt")
    assert target.tls_server_name == "api.internal"


# --- exit codes: numbers, meanings, classes, the CLI boundary and docs/exit-codes.md ---


def test_exit_codes_and_meanings_are_pinned() -> None:
    assert errors.EXIT_CODES == {
        0: "success",
        1: "unexpected internal error (a bug: rerun with --debug and report it)",
        2: "usage error: invalid flag or name",
        3: "kubeconfig error: missing, malformed, unknown or ambiguous cluster/context",
        4: "API server unreachable, TLS failure, or unexpected API error",
        5: "authentication or authorization refused (401/403)",
        6: "conflict: an existing object is not ours, or the Secret was deleted",
        7: "timed out waiting for the token controller",
        8: "the issued token did not verify",
        9: "the output could not be written (or stdout was closed)",
        10: "several clusters or service accounts: at least one failed (see the summary table)",
        11: "check: the token is rejected (401): revoked or invalid",
        12: "check: the token has expired",
        13: "check: the token works but expires within --expires-within",
        130: "interrupted (Ctrl-C)",
    }
    assert list(errors.EXIT_CODES) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 130]
    assert errors.FLEET_FAILED == 10


CLASS_CODES: list[tuple[type[BootstrapError], int]] = [
    (BootstrapError, 1),
    (UsageError, 2),
    (ConfigError, 3),
    (ApiError, 4),
    (UnreachableError, 4),
    (TLSVerificationError, 4),
    (TransientError, 4),
    (NotFoundError, 4),
    (AuthError, 5),
    (ConflictError, 6),
    (WaitTimeout, 7),
    (VerifyError, 8),
    (OutputError, 9),
]


@pytest.mark.parametrize(("cls", "code"), CLASS_CODES, ids=[c.__name__ for c, _ in CLASS_CODES])
def test_each_error_class_has_its_documented_exit_code(
    cls: type[BootstrapError], code: int
) -> None:
    assert cls.exit_code == code
    assert issubclass(cls, BootstrapError)


def test_api_errors_keep_status_and_retry_hint() -> None:
    assert ApiError("refused", 500).status == 500
    assert str(ApiError("refused", 500)) == "refused"
    assert str(AuthError("forbidden: create secrets", 403)) == "forbidden: create secrets"
    assert ApiError("refused").status is None
    transient = TransientError("busy", 429, 2.5)
    assert (transient.status, transient.retry_after, str(transient)) == (429, 2.5, "busy")
    assert (AuthError("no", 403).status, ConflictError("taken", 409).status) == (403, 409)


def _error(cls: type[BootstrapError]) -> BootstrapError:
    if cls is TransientError:
        return TransientError("pinned failure", 503, None)
    return cls("pinned failure")


@pytest.mark.parametrize(("cls", "code"), CLASS_CODES, ids=[c.__name__ for c, _ in CLASS_CODES])
def test_the_cli_exits_with_each_class_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cls: type[BootstrapError], code: int
) -> None:
    def issue(*args: Any, **kwargs: Any) -> Issued:
        raise _error(cls)

    monkeypatch.setattr(run, "issue", issue)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config"
    path.write_text(kubeconfig_text())
    result = invoke("--cluster", "dev", "--kubeconfig", str(path), "-n", "ci", "-q")
    assert result.exit_code == code
    if cls is WaitTimeout:  # issue 19: says what it left behind and how to remove it
        assert result.stderr == (
            "error: pinned failure. Left behind: the token Secret ci/default-token (and the "
            "ServiceAccount and bindings this run created); to remove them: bootstrap-token "
            f"revoke --cluster dev --kubeconfig {path} -n ci --service-account default --all\n"
        )
        return
    assert result.stderr == "error: pinned failure\n"


def test_fleet_with_one_failure_exits_10(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def issue(options: Any, target: Any, *args: Any, **kwargs: Any) -> Issued:
        if target.cluster == "prod":
            raise AuthError("forbidden", 403)
        return issued()

    monkeypatch.setattr(run, "issue", issue)
    monkeypatch.chdir(tmp_path)
    document = yaml.safe_load(kubeconfig_text())
    document["clusters"].append({"name": "prod", "cluster": {"server": "https://prod:6443"}})
    document["contexts"].append(
        {"name": "prod-admin", "context": {"cluster": "prod", "user": "admin"}}
    )
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(document))
    result = invoke(
        "--all-clusters", "--kubeconfig", str(path), "-n", "ci", "-q", "--out", "{cluster}.env"
    )
    assert result.exit_code == 10, result.output
    assert (tmp_path / "dev.env").exists()
    assert not (tmp_path / "prod.env").exists()


def test_help_points_to_the_exit_codes_in_one_line() -> None:
    """Issue 19: the table moved to docs/exit-codes.md; --help has one line pointing there."""
    result = invoke("--help")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == (
        "Exit codes: 0 success, 2 usage error, 10 a job of several failed; "
        "every code: docs/exit-codes.md"
    )


def test_exit_code_page_table_has_the_same_rows() -> None:
    section = EXIT_CODES_PAGE.read_text(encoding="utf-8")
    rows = [
        (int(m.group(1)), m.group(2))
        for m in re.finditer(r"^\| (\d+) \| (.+) \|$", section, re.MULTILINE)
    ]
    assert [code for code, _ in rows] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 130]
    keywords = [
        "success",
        "unexpected internal error",
        "usage error",
        "kubeconfig error",
        "API server unreachable",
        "(401/403)",
        "conflict",
        "timed out waiting for the token controller",
        "did not verify",
        "could not be written",
        "at least one failed",
        "revoked or invalid",
        "has expired",
        "expires within",
        "interrupted",
    ]
    for (code, meaning), keyword in zip(rows, keywords, strict=True):
        assert keyword in meaning, (code, meaning)


# --- kubeconfig loading: exact messages and edge values -------------------------------------


def test_no_kubeconfig_found_lists_every_path_looked_at(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        Kubeconfig.from_files([tmp_path / "a", tmp_path / "b"])
    assert str(caught.value) == (
        f"no kubeconfig found (looked at {tmp_path}/a, {tmp_path}/b); "
        "pass --kubeconfig PATH or set KUBECONFIG"
    )


def test_merged_kubeconfig_is_immutable(tmp_path: Path) -> None:
    config = load(tmp_path, kubeconfig_text())
    with pytest.raises(AttributeError):
        config.current_context = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.clusters["evil"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        config.clusters["dev"]["server"] = "https://evil"  # type: ignore[index]


def test_yaml_error_without_a_position_says_invalid_yaml() -> None:
    # PyYAML's ReaderError (a control character) has neither problem_mark nor problem.
    with pytest.raises(ConfigError) as caught:
        parse("current-context: a\x07b\n", Path("/home/me/.kube/config"))
    assert str(caught.value) == "kubeconfig /home/me/.kube/config is not valid YAML: invalid YAML"


def test_yaml_syntax_error_names_line_column_and_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse("clusters:\n- name: a\n  cluster: [\n", Path("/k"))
    assert str(caught.value) == (
        "kubeconfig /k is not valid YAML at line 4, column 1: "
        "expected the node content, but found '<stream end>'"
    )


def test_constructor_failure_message_is_cut_at_300_characters() -> None:
    path = Path("/" + "d" * 400)
    with pytest.raises(ConfigError) as caught:
        parse("clusters: !!int abc\n", path)
    assert len(str(caught.value)) == 300
    assert str(caught.value).startswith("kubeconfig /ddd")


def test_empty_data_field_is_unset_and_bad_base64_is_an_error() -> None:
    assert data_field("", "cluster 'dev': certificate-authority-data") is None
    assert data_field(None, "cluster 'dev': certificate-authority-data") is None
    assert data_field("YWJj", "x") == b"abc"
    for bad in ("YWJj!", "é", "YWJ"):
        with pytest.raises(ConfigError) as caught:
            data_field(bad, "cluster 'dev': certificate-authority-data")
        assert str(caught.value) == "cluster 'dev': certificate-authority-data is not valid base64"
    with pytest.raises(ConfigError) as caught:
        data_field(123, "user 'admin': client-key-data")
    assert str(caught.value) == "user 'admin': client-key-data must be a string"


def test_expand_keeps_an_unknown_home_and_expands_a_known_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", "/home/pinned")
    assert expand("~/kube/config") == Path("/home/pinned/kube/config")
    assert expand("~no-such-user-here/config") == Path("~no-such-user-here/config")
    assert expand("/abs/config") == Path("/abs/config")


@pytest.mark.parametrize(
    "text",
    ["current-context: !!bool maybe\n", "clusters: !!int ''\n", "clusters: !!float ''\n"],
    ids=["bool-maybe", "empty-int", "empty-float"],
)
def test_every_bad_tag_is_a_config_error(text: str) -> None:
    # kubectl 1.32: error loading config file "kc": yaml: cannot decode !!str `maybe` as a !!bool
    with pytest.raises(ConfigError, match="kubeconfig /k cannot be loaded: "):
        parse(text, Path("/k"))


# --- target selection: exact messages, immutable result ------------------------------------


def test_unknown_cluster_message_is_exact(tmp_path: Path) -> None:
    config = load(tmp_path, kubeconfig_text())
    with pytest.raises(ConfigError) as caught:
        select(config, "staging")
    assert str(caught.value) == "unknown cluster 'staging'; known clusters: dev"
    with pytest.raises(ConfigError) as caught:
        select(config, "dev-admin")
    assert str(caught.value) == (
        "unknown cluster 'dev-admin' ('dev-admin' is a context name; its cluster is 'dev'); "
        "known clusters: dev"
    )


def test_target_is_immutable(tmp_path: Path) -> None:
    target = select(load(tmp_path, kubeconfig_text()), "dev")
    assert (target.cluster, target.context, target.user_name) == ("dev", "dev-admin", "admin")
    with pytest.raises(AttributeError):
        target.server = "https://evil.example"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        issued().token = "other"  # type: ignore[misc]


# --- output rendering: exact text, no injection, no path climbing --------------------------

CA_WITH_NON_ASCII = b"-----BEGIN CERTIFICATE-----\nQ\xff\n-----END CERTIFICATE-----\n"
CA_DATA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClH/Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"


def test_env_comment_cannot_carry_a_command() -> None:
    # A line break in a name would start a new shell line in a file meant for `source`.
    hostile = dataclasses.replace(
        issued(), identity="sa\nrm -rf ~\x1b[2J", cluster="dev\r\necho pwned"
    )
    text = render_env(hostile, Path("/w/ca.crt"))
    assert text == (
        "# bootstrap-token: sa?rm -rf ~?[2J on cluster dev??echo pwned\n"
        "# Use: source this file, then\n"
        '#   curl "$APISERVER/api" -H "Authorization: Bearer $TOKEN" --cacert "$CACERT"\n'
        "export APISERVER='https://127.0.0.1:6443'\n"
        f"export TOKEN='{TOKEN}'\n"
        "export CACERT='/w/ca.crt'\n"
        "export NAMESPACE='ci'\n"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("..", "cluster"),
        ("...", "cluster"),
        ("", "cluster"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("arn:aws:eks:us-east-1:1:cluster/prod", "arn_aws_eks_us-east-1_1_cluster_prod"),
        (".hidden", "hidden"),
        ("a b\n", "a_b_"),
        ("Dev_1.2-x", "Dev_1.2-x"),
    ],
)
def test_cluster_names_become_one_safe_file_name(name: str, expected: str) -> None:
    assert safe_file_name(name) == expected


def test_json_output_is_exact() -> None:
    value = dataclasses.replace(issued(), ca_pem=CA_WITH_NON_ASCII)
    assert render_json(value, Path("/w/dev.ca.crt")) == (
        "{\n"
        '  "apiVersion": "bootstrap-token/v1",\n'
        '  "cluster": "dev",\n'
        '  "apiserver": "https://127.0.0.1:6443",\n'
        '  "namespace": "ci",\n'
        '  "service_account": "build",\n'
        '  "identity": "system:serviceaccount:ci:build",\n'
        '  "identity_checked": true,\n'
        '  "secret": "build-token",\n'
        f'  "token": "{TOKEN}",\n'
        '  "expires_at": null,\n'
        '  "ca_pem": "-----BEGIN CERTIFICATE-----\\nQ\\ufffd\\n-----END CERTIFICATE-----\\n",\n'
        '  "cacert_path": "/w/dev.ca.crt",\n'
        '  "insecure_skip_tls_verify": false,\n'
        '  "tls_server_name": null,\n'
        '  "proxy_url": null,\n'
        '  "powers": null,\n'
        '  "can": null,\n'
        '  "can_incomplete": null,\n'
        '  "can_evaluation_error": null\n'
        "}\n"
    )


USER_AND_CONTEXT = (
    "users:\n"
    "- name: ci/build@dev\n"
    "  user:\n"
    f"    token: {TOKEN}\n"
    "contexts:\n"
    "- name: ci/build@dev\n"
    "  context:\n"
    "    cluster: dev\n"
    "    user: ci/build@dev\n"
    "    namespace: ci\n"
)


def test_standalone_kubeconfig_is_exact() -> None:
    value = dataclasses.replace(issued(), ca_pem=CA_WITH_NON_ASCII)
    assert render_kubeconfig(value) == (
        "apiVersion: v1\n"
        "kind: Config\n"
        "preferences: {}\n"
        "clusters:\n"
        "- name: dev\n"
        "  cluster:\n"
        "    server: https://127.0.0.1:6443\n"
        f"    certificate-authority-data: {CA_DATA}\n"
        f"{USER_AND_CONTEXT}"
        "current-context: ci/build@dev\n"
    )


def test_merged_kubeconfig_keeps_the_file_order_and_its_current_context() -> None:
    value = dataclasses.replace(issued(), ca_pem=CA_WITH_NON_ASCII)
    existing = {
        "kind": "Config",
        "apiVersion": "v1",
        "clusters": [{"name": "other", "cluster": {"server": "https://o"}}],
        "current-context": "x",
        "preferences": {},
    }
    assert render_kubeconfig(value, existing) == (
        "kind: Config\n"
        "apiVersion: v1\n"
        "clusters:\n"
        "- name: other\n"
        "  cluster:\n"
        "    server: https://o\n"
        "- name: dev\n"
        "  cluster:\n"
        "    server: https://127.0.0.1:6443\n"
        f"    certificate-authority-data: {CA_DATA}\n"
        "current-context: x\n"
        "preferences: {}\n"
        f"{USER_AND_CONTEXT}"
    )


def test_service_account_label_stops_at_63_characters() -> None:
    assert account_labels("s" * 63) == {"bootstrap-token/service-account": "s" * 63}
    assert account_labels("s" * 64) == {}
    assert account_labels("a.b") == {"bootstrap-token/service-account": "a.b"}


def test_symlink_loop_in_a_kubeconfig_path_is_not_an_internal_error(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to("loop")
    text = kubeconfig_text(cluster_extra="    certificate-authority: loop/ca.crt\n")
    try:
        config = load(tmp_path, text)
    except ConfigError as e:
        assert "certificate-authority" in str(e)
    else:
        assert config.clusters["dev"]["certificate-authority"].endswith("ca.crt")


def test_unreadable_kubeconfig_names_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        Kubeconfig.from_files([tmp_path])
    assert (
        str(caught.value)
        == f"cannot read kubeconfig {tmp_path}: it is a directory, not a regular file"
    )
    binary = tmp_path / "binary"
    binary.write_bytes(b"clusters: \xff\n")
    with pytest.raises(ConfigError) as caught:
        Kubeconfig.from_files([binary])
    assert str(caught.value) == f"cannot read kubeconfig {binary}: UnicodeDecodeError"
