"""Property: whatever a kubeconfig holds, reading it and selecting a cluster either gives a
Target or raises a BootstrapError (one `error:` line and a documented exit code), never
any other exception (which the CLI would report as an internal error)."""

from __future__ import annotations

import base64
import re
import string
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bootstrap.errors import BootstrapError
from bootstrap.kube.kubeconfig import Kubeconfig, parse
from bootstrap.kube.target import Target, select

PATH = Path("/home/me/.kube/config")
NAMES = ["dev", "prod", "ctx", "admin", "dev-admin", ""]
FIELDS = [
    "name",
    "cluster",
    "user",
    "context",
    "namespace",
    "server",
    "certificate-authority",
    "certificate-authority-data",
    "insecure-skip-tls-verify",
    "tls-server-name",
    "client-certificate",
    "client-key",
    "tokenFile",
    "token",
]
SECTIONS = ["clusters", "users", "contexts", "current-context", "apiVersion", "kind"]

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def outcome(error: BootstrapError) -> str:
    """The error class and its message with the quoted names blanked, for the statistics."""
    message = re.sub(r"'[^']*'", "X", str(error))
    return f"outcome: {type(error).__name__}: {message[:40]}"


# Strings: mostly names that collide (so lookups succeed and select goes deep), plus
# arbitrary text (NUL and lone surrogates included) and base64-looking text for the CA data.
strings = st.one_of(
    st.sampled_from(NAMES),
    st.text(alphabet=st.characters(), max_size=12),
    st.text(alphabet=string.ascii_letters + string.digits + "+/=", max_size=24),
    st.sampled_from(["https://dev:6443/", "pki/ca.crt", "~/ca", "../x", "/abs"]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), strings)
keys = st.one_of(st.sampled_from(FIELDS + SECTIONS), strings)
yamlish = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=8,
)


def entry(body_key: str) -> st.SearchStrategy[Any]:
    body = st.one_of(st.dictionaries(st.sampled_from(FIELDS), yamlish, max_size=5), yamlish)
    shaped = st.fixed_dictionaries(
        {"name": st.one_of(st.sampled_from(NAMES), yamlish)}, optional={body_key: body}
    )
    return st.one_of(shaped, yamlish)


def section(body_key: str) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(entry(body_key), max_size=3), yamlish)


kubeconfig_like = st.fixed_dictionaries(
    {},
    optional={
        "clusters": section("cluster"),
        "users": section("user"),
        "contexts": section("context"),
        "current-context": st.one_of(st.sampled_from(NAMES), yamlish),
        "apiVersion": st.just("v1"),
    },
)
documents = st.one_of(kubeconfig_like, yamlish)
cluster_names = st.one_of(st.sampled_from(NAMES), st.text(max_size=10))
context_names = st.one_of(st.none(), st.sampled_from(NAMES), st.text(max_size=10))


def read_and_select(texts: list[str], cluster: str, context: str | None) -> None:
    """parse -> from_documents -> select; only a Target or a BootstrapError may come out."""
    try:
        parsed = [(PATH.with_name(f"config{i}"), parse(t, PATH)) for i, t in enumerate(texts)]
        config = Kubeconfig.from_documents(parsed)
        assert isinstance(select(config, cluster, context), Target)
        event("outcome: Target")
    except BootstrapError as e:
        assert str(e), "a BootstrapError without a message"
        event(outcome(e))


@SETTINGS
@given(st.lists(st.text(max_size=200), min_size=1, max_size=2), cluster_names, context_names)
def test_arbitrary_text(texts: list[str], cluster: str, context: str | None) -> None:
    read_and_select(texts, cluster, context)


yaml_syntax = st.text(alphabet="{}[]:,-?!&*#|>'\" \n\tabdevprod\\", max_size=120)


@SETTINGS
@given(st.lists(yaml_syntax, min_size=1, max_size=2), cluster_names, context_names)
def test_yaml_punctuation_soup(texts: list[str], cluster: str, context: str | None) -> None:
    read_and_select(texts, cluster, context)


@SETTINGS
@given(st.lists(documents, min_size=1, max_size=3), cluster_names, context_names)
def test_yamlish_structures_via_yaml(docs: list[Any], cluster: str, context: str | None) -> None:
    read_and_select([yaml.safe_dump(d) for d in docs], cluster, context)


@SETTINGS
@given(st.lists(kubeconfig_like, min_size=1, max_size=3), cluster_names, context_names)
def test_yamlish_structures_direct(docs: list[Any], cluster: str, context: str | None) -> None:
    try:
        config = Kubeconfig.from_documents([(PATH, d) for d in docs])
        assert isinstance(select(config, cluster, context), Target)
        event("outcome: Target")
    except BootstrapError as e:
        assert str(e)
        event(outcome(e))


# Mostly-valid configs, so that many examples get all the way to a Target.
CLUSTERS, USERS, CONTEXTS = ["dev", "prod"], ["admin", "ops"], ["dev", "dev-admin", "prod-ops"]
urls = st.sampled_from(["https://dev:6443", "https://dev:6443/", "http://x"])
valid_ca = st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())
cluster_body = st.fixed_dictionaries(
    {"server": st.one_of(urls, urls, urls, strings)},
    optional={
        "certificate-authority-data": st.one_of(valid_ca, valid_ca, valid_ca, strings),
        "certificate-authority": strings,
        "insecure-skip-tls-verify": st.one_of(st.booleans(), strings),
        "tls-server-name": strings,
    },
)
user_body = st.dictionaries(
    st.sampled_from(["token", "tokenFile", "client-key", "username"]), strings
)
context_body = st.fixed_dictionaries(
    {
        "cluster": st.sampled_from([*CLUSTERS, "gone"]),
        "user": st.sampled_from([*USERS, *USERS, "ghost", ""]),
    },
    optional={"namespace": strings},
)


def named_list(names: list[str], body_key: str, body: st.SearchStrategy[Any]) -> Any:
    item = st.fixed_dictionaries({"name": st.sampled_from(names), body_key: body})
    return st.lists(item, min_size=1, max_size=4)


well_formed = st.fixed_dictionaries(
    {
        "clusters": named_list(CLUSTERS, "cluster", cluster_body),
        "users": named_list(USERS, "user", user_body),
        "contexts": named_list(CONTEXTS, "context", context_body),
    },
    optional={"current-context": st.sampled_from([*CONTEXTS, "other"])},
)


@SETTINGS
@given(
    st.lists(well_formed, min_size=1, max_size=2),
    st.sampled_from(CLUSTERS),
    st.one_of(st.none(), st.none(), st.sampled_from([*CONTEXTS, "nope"])),
)
def test_well_formed_kubeconfigs(docs: list[Any], cluster: str, context: str | None) -> None:
    try:
        config = Kubeconfig.from_documents([(PATH, d) for d in docs])
        target = select(config, cluster, context)
    except BootstrapError as e:
        assert str(e)
        event(outcome(e))
        return
    event("outcome: Target")
    assert target.cluster == cluster
    assert config.contexts[target.context]["cluster"] == cluster
    assert target.user_name in config.users
    assert not target.server.endswith("/")
    if context is not None:
        assert target.context == context
