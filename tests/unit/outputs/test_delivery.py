"""bootstrap.outputs.deliver: the Argo CD and kubeconfig Secret manifests (literal renderings),
--apply-to parsing and the checks made before any request."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bootstrap import run
from bootstrap.commands.cli import command
from bootstrap.errors import UsageError
from bootstrap.outputs import deliver, readback
from bootstrap.outputs import write as outputs
from bootstrap.outputs.emit import Issued

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"

ISSUED = Issued(
    cluster="dev",
    server="https://127.0.0.1:6443",
    namespace="ci",
    service_account="argocd-manager",
    secret="argocd-manager-token",
    token=TOKEN,
    ca_pem=b"CA\n",  # base64: Q0EK
    identity="system:serviceaccount:ci:argocd-manager",
)


ARGOCD = f"""\
# bootstrap-token: system:serviceaccount:ci:argocd-manager; kubectl apply -f this file
apiVersion: v1
kind: Secret
metadata:
  name: cluster-dev
  namespace: argocd
  labels:
    argocd.argoproj.io/secret-type: cluster
    app.kubernetes.io/managed-by: bootstrap-token
type: Opaque
stringData:
  name: dev
  server: https://127.0.0.1:6443
  config: |
    {{
      "bearerToken": "{TOKEN}",
      "tlsClientConfig": {{
        "caData": "Q0EK",
        "insecure": false
      }}
    }}
"""

KUBECONFIG_SECRET = f"""\
# bootstrap-token: system:serviceaccount:ci:argocd-manager; kubectl apply -f this file
apiVersion: v1
kind: Secret
metadata:
  name: dev-kubeconfig
  labels:
    app.kubernetes.io/managed-by: bootstrap-token
stringData:
  value: |
    apiVersion: v1
    kind: Config
    preferences: {{}}
    clusters:
    - name: dev
      cluster:
        server: https://127.0.0.1:6443
        certificate-authority-data: Q0EK
    users:
    - name: ci/argocd-manager@dev
      user:
        token: {TOKEN}
    contexts:
    - name: ci/argocd-manager@dev
      context:
        cluster: dev
        user: ci/argocd-manager@dev
        namespace: ci
    current-context: ci/argocd-manager@dev
"""


def options(**kwargs: object) -> run.Options:
    values: dict[str, object] = {"cluster": "dev", "format": "argocd"}
    values.update(kwargs)
    options = run.Options(**values).validate()  # type: ignore[arg-type]
    deliver.validate(options)
    return options


# --- rendering --------------------------------------------------------------------------


def test_argocd_manifest() -> None:
    assert deliver.render(ISSUED, options()) == ARGOCD


def test_argocd_manifest_is_what_argo_cd_reads() -> None:
    document = yaml.safe_load(deliver.render(ISSUED, options()))
    config = yaml.safe_load(document["stringData"]["config"])  # JSON is YAML
    assert config == {
        "bearerToken": TOKEN,
        "tlsClientConfig": {"caData": "Q0EK", "insecure": False},
    }


def test_argocd_server_name_and_proxy_url() -> None:
    issued = replace(ISSUED, tls_server_name="api.internal", proxy_url="http://proxy.corp:3128")
    assert deliver.argocd_config(issued) == {
        "bearerToken": TOKEN,
        "tlsClientConfig": {"caData": "Q0EK", "serverName": "api.internal", "insecure": False},
        "proxyUrl": "http://proxy.corp:3128",
    }


def test_argocd_insecure_carries_no_ca() -> None:
    """client-go refuses a CA together with insecure: true."""
    insecure = replace(ISSUED, insecure=True)
    assert deliver.argocd_config(insecure)["tlsClientConfig"] == {"insecure": True}


def test_argocd_server_is_the_emitted_server() -> None:
    issued = replace(ISSUED, server="https://proxy.example:8443")
    document = yaml.safe_load(deliver.render(issued, options()))
    assert document["stringData"]["server"] == "https://proxy.example:8443"


def test_kubeconfig_secret_manifest() -> None:
    assert deliver.render(ISSUED, options(format="kubeconfig-secret")) == KUBECONFIG_SECRET


def test_secret_name_and_apply_to_namespace() -> None:
    document = yaml.safe_load(
        deliver.render(
            ISSUED,
            options(
                format="kubeconfig-secret", delivery_name="prod.x", apply_to="mgmt/flux-system"
            ),
        )
    )
    assert document["metadata"]["name"] == "prod.x"
    assert document["metadata"]["namespace"] == "flux-system"


def test_apply_body_moves_string_data_to_base64_data() -> None:
    document = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "n"},
        "stringData": {"value": "abc", "name": "dev"},
    }
    assert deliver.apply_body(document) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "n"},
        "data": {"value": "YWJj", "name": "ZGV2"},
    }


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cluster", "argocd", "kubeconfig"),
    [
        ("dev", "cluster-dev", "dev-kubeconfig"),
        ("Prod_EU", "cluster-prod-eu", "prod-eu-kubeconfig"),
        (
            "arn:aws:eks:eu-west-1:123:cluster/prod",
            "cluster-arn-aws-eks-eu-west-1-123-cluster-prod",
            "arn-aws-eks-eu-west-1-123-cluster-prod-kubeconfig",
        ),
        ("..", "cluster-cluster", "cluster-kubeconfig"),
    ],
)
def test_default_names(cluster: str, argocd: str, kubeconfig: str) -> None:
    assert deliver.default_name("argocd", cluster) == argocd
    assert deliver.default_name("kubeconfig-secret", cluster) == kubeconfig


def test_default_files_and_no_ca_file(tmp_path: Path) -> None:
    assert outputs.output_path(options(), tmp_path) == tmp_path / "dev.argocd.yaml"
    kubeconfig_secret = options(format="kubeconfig-secret", service_account="ci")
    assert outputs.output_path(kubeconfig_secret, tmp_path) == (
        tmp_path / "ci@dev.kubeconfig-secret.yaml"
    )
    assert outputs.ca_path(options(), tmp_path, {}) is None
    assert outputs.ca_path(kubeconfig_secret, tmp_path, {}) is None


def test_apply_to_writes_no_file(tmp_path: Path) -> None:
    applied = options(apply_to="mgmt-admin/argocd")
    assert outputs.output_path(applied, tmp_path) is None
    assert outputs.ca_path(applied, tmp_path, {}) is None


# --- --apply-to and the checks ----------------------------------------------------------


def test_parse_apply_to() -> None:
    assert deliver.parse_apply_to("mgmt-admin/argocd") == deliver.Destination(
        "mgmt-admin", "argocd"
    )
    # EKS names contexts by ARN: the namespace is after the last slash.
    assert deliver.parse_apply_to("arn:aws:eks:eu-west-1:1:cluster/mgmt/argocd") == (
        deliver.Destination("arn:aws:eks:eu-west-1:1:cluster/mgmt", "argocd")
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mgmt-admin", "--apply-to 'mgmt-admin' must be CONTEXT/NAMESPACE"),
        ("/argocd", "--apply-to '/argocd' must be CONTEXT/NAMESPACE"),
        ("mgmt/Argo_CD", "--apply-to namespace 'Argo_CD' is not a valid DNS-1123 label"),
        ("mgmt/", "--apply-to namespace '' is not a valid DNS-1123 label"),
    ],
)
def test_bad_apply_to(value: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        deliver.parse_apply_to(value)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"format": "env", "apply_to": "m/argocd"},
            "--apply-to needs --format argocd or --format kubeconfig-secret (not env)",
        ),
        (
            {"apply_to": "m/argocd", "out": "x.yaml"},
            "--apply-to and --out exclude each other: the Secret is applied, not written",
        ),
        (
            {"format": "json", "delivery_name": "x"},
            "--secret-name needs --format argocd or --format kubeconfig-secret",
        ),
        ({"delivery_name": "Bad_Name"}, "--secret-name 'Bad_Name' is not a valid DNS-1123"),
    ],
)
def test_invalid_combinations(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        options(**kwargs)
    assert str(caught.value).startswith(message)


def test_one_secret_per_cluster() -> None:
    with pytest.raises(UsageError, match="delivers one Secret per cluster"):
        deliver.check_jobs([options(service_account="a"), options(service_account="b")])
    with pytest.raises(UsageError, match="--secret-name names one Secret"):
        deliver.check_jobs([options(delivery_name="x"), options(cluster="prod", delivery_name="x")])
    deliver.check_jobs([options(), options(cluster="prod")])  # distinct default names


def test_cli_usage_error_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("reached the network")

    monkeypatch.setattr(run, "issue", refuse)
    result = CliRunner().invoke(
        command, ["--cluster", "dev", "--format", "kubeconfig", "--apply-to", "m/ns"]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --apply-to needs --format argocd or --format kubeconfig-secret (not kubeconfig)\n"
    )


def test_help_names_the_formats_and_flags() -> None:
    result = CliRunner().invoke(command, ["issue", "--help"])
    assert "dotenv, github, argocd, kubeconfig-secret" in result.output
    assert "--apply-to CONTEXT/NAMESPACE" in result.output
    assert "--secret-name NAME" in result.output


# --- reading a delivered Secret back (check, --renew-before) -----------------------------


def test_read_back_argocd_manifest(tmp_path: Path) -> None:
    creds = readback.read_secret(ARGOCD, tmp_path)
    assert creds is not None
    assert (creds.format, creds.server, creds.token, creds.ca_pem, creds.insecure) == (
        "argocd",
        "https://127.0.0.1:6443",
        TOKEN,
        b"CA\n",
        False,
    )


def test_read_back_argocd_from_the_cluster_as_data(tmp_path: Path) -> None:
    """`kubectl get secret -o yaml` shows base64 `data`, not `stringData`."""
    text = """\
apiVersion: v1
kind: Secret
metadata: {name: cluster-dev}
data:
  server: aHR0cHM6Ly9hcGkuZXhhbXBsZTo2NDQz
  config: eyJiZWFyZXJUb2tlbiI6ICJ0b2siLCAidGxzQ2xpZW50Q29uZmlnIjogeyJzZXJ2ZXJOYW1lIjogImFwaSIsICJpbnNlY3VyZSI6IGZhbHNlfSwgInByb3h5VXJsIjogImh0dHA6Ly9wOjMxMjgifQ==
"""
    creds = readback.read_secret(text, tmp_path)
    assert creds is not None
    assert (creds.server, creds.token, creds.ca_pem) == ("https://api.example:6443", "tok", None)
    assert (creds.tls_server_name, creds.proxy_url) == ("api", "http://p:3128")


def test_read_back_kubeconfig_secret(tmp_path: Path) -> None:
    creds = readback.read_secret(KUBECONFIG_SECRET, tmp_path)
    assert creds is not None
    assert (creds.format, creds.server, creds.token, creds.ca_pem, creds.namespace) == (
        "kubeconfig-secret",
        "https://127.0.0.1:6443",
        TOKEN,
        b"CA\n",
        "ci",
    )


def test_read_back_leaves_other_yaml_alone(tmp_path: Path) -> None:
    assert readback.read_secret("apiVersion: v1\nkind: Config\n", tmp_path) is None
    assert readback.read_secret("{not: [yaml", tmp_path) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Secret\nstringData: {other: x}\n", "the Secret holds neither"),
        (
            "kind: Secret\nstringData: {server: s, config: 'not json'}\n",
            "the Argo CD Secret's config is not JSON with a bearerToken and valid caData",
        ),
        (
            'kind: Secret\nstringData: {server: s, config: \'{"bearerToken": ""}\'}\n',
            "the Argo CD Secret's config has no bearerToken",
        ),
        ("kind: Secret\ndata: {server: '***'}\n", "the Secret's data.server is not base64 text"),
    ],
)
def test_read_back_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        readback.read_secret(text, tmp_path)
    assert str(caught.value) == message or str(caught.value).startswith(message)
