"""Every typed kubeconfig field is checked as kubectl's typed decoding checks it, named in the
error ("json: cannot unmarshal number into Go struct field ... of type string"). The field
lists are literal here, so dropping one from the code is a failing test."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bootstrap.errors import ConfigError, UsageError
from bootstrap.kube.kubeconfig import Kubeconfig
from bootstrap.kube.target import default_cluster

BASE = {
    "clusters": [{"name": "c", "cluster": {"server": "https://h"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "x",
}
CLUSTER_STRINGS = ["server", "certificate-authority", "certificate-authority-data",
                   "tls-server-name", "proxy-url"]  # fmt: skip
USER_STRINGS = ["client-certificate", "client-certificate-data", "client-key", "client-key-data",
                "token", "tokenFile", "as", "as-uid", "username", "password"]  # fmt: skip
CONTEXT_STRINGS = ["cluster", "user", "namespace"]


def load(tmp_path: Path, section: str, field: str, value: object) -> Kubeconfig:
    document = yaml.safe_load(yaml.safe_dump(BASE))
    document[section][0][section[:-1]][field] = value
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(document))
    return Kubeconfig.from_files([path])


CASES = (
    [("clusters", f, 123, "a string") for f in CLUSTER_STRINGS]
    + [
        ("clusters", f, "yes", "true or false")
        for f in ("insecure-skip-tls-verify", "disable-compression")
    ]
    + [("clusters", "extensions", "x", "a list")]
    + [("users", f, 123, "a string") for f in USER_STRINGS]
    + [("users", "as-groups", "g", "a list"), ("users", "as-user-extra", ["x"], "a mapping")]
    + [("users", "exec", "cmd", "a mapping"), ("users", "auth-provider", "p", "a mapping")]
    + [("users", "extensions", {"a": 1}, "a list")]
    + [("contexts", f, 123, "a string") for f in CONTEXT_STRINGS]
    + [("contexts", "extensions", "x", "a list")]
)


@pytest.mark.parametrize(("section", "field", "value", "kind"), CASES)
def test_a_field_of_the_wrong_type_is_a_config_error_naming_it(
    tmp_path: Path, section: str, field: str, value: object, kind: str
) -> None:
    name = {"clusters": "c", "users": "u", "contexts": "x"}[section]
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, section, field, value)
    assert f"{section} entry {name!r}: {field} must be {kind}" in str(caught.value)


def test_null_is_the_empty_value(tmp_path: Path) -> None:
    assert load(tmp_path, "clusters", "proxy-url", None).clusters["c"].get("proxy-url") is None


def test_default_cluster_messages(tmp_path: Path) -> None:
    config = Kubeconfig.from_documents([(tmp_path / "k", {**BASE, "current-context": "gone"})])
    with pytest.raises(ConfigError) as missing:
        default_cluster(config, None)
    assert str(missing.value) == (
        "the current context 'gone' is not defined in the kubeconfig; contexts: x; "
        "pass --cluster NAME or --context CTX"
    )
    empty = Kubeconfig.from_documents([(tmp_path / "k", {"current-context": "gone"})])
    with pytest.raises(ConfigError, match="; contexts: none; "):
        default_cluster(empty, None)
    two = {**BASE, "contexts": [*BASE["contexts"], {"name": "y", "context": {"cluster": "c"}}]}
    with pytest.raises(ConfigError, match="; contexts: x, y; "):
        default_cluster(Kubeconfig.from_documents([(tmp_path / "k", two)]), "z")
    assert default_cluster(Kubeconfig.from_documents([(tmp_path / "k", BASE)]), None) == "c"
    assert default_cluster(Kubeconfig.from_documents([(tmp_path / "k", two)]), "y") == "c"
    with pytest.raises(UsageError, match="no current context"):
        default_cluster(Kubeconfig.from_documents([(tmp_path / "k", {})]), None)


def test_curl_tls_name_default_ports() -> None:
    from bootstrap.outputs.emit import curl_tls_name

    assert curl_tls_name("http://10.0.0.1", "kubernetes") == (
        "kubernetes:80:10.0.0.1:80",
        "http://kubernetes:80",
    )
    assert curl_tls_name("https://10.0.0.1/base/", "kubernetes") == (
        "kubernetes:443:10.0.0.1:443",
        "https://kubernetes:443/base",
    )
