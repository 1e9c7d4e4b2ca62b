"""bootstrap.kube.kubeconfig: which files are read, how they merge, and how bad input is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bootstrap.errors import ConfigError
from bootstrap.kube.kubeconfig import Kubeconfig, default_paths, parse


def write(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def config(
    clusters: dict[str, dict[str, object]] | None = None,
    users: dict[str, dict[str, object]] | None = None,
    contexts: dict[str, dict[str, object]] | None = None,
    current: str | None = None,
) -> dict[str, object]:
    document: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": b} for n, b in (clusters or {}).items()],
        "users": [{"name": n, "user": b} for n, b in (users or {}).items()],
        "contexts": [{"name": n, "context": b} for n, b in (contexts or {}).items()],
    }
    if current is not None:
        document["current-context"] = current
    return document


# --- default_paths ----------------------------------------------------------------


def test_explicit_path_is_used_alone(tmp_path: Path) -> None:
    explicit = write(tmp_path / "explicit", {})
    other = write(tmp_path / "other", {})
    assert default_paths(str(explicit), {"KUBECONFIG": str(other)}, tmp_path) == [explicit]


def test_explicit_missing_path_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "config"
    with pytest.raises(ConfigError) as e:
        default_paths(str(missing), {}, tmp_path)
    assert str(missing) in str(e.value)
    assert "--kubeconfig" in str(e.value)
    assert e.value.exit_code == 3


def test_no_tilde_expansion_as_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kubectl --kubeconfig '~/kc' says "stat ~/kc: no such file": the shell expands ~."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "kc", {})
    with pytest.raises(ConfigError) as e:
        default_paths("~/kc", {}, Path("/nonexistent"))
    assert str(e.value) == (
        "kubeconfig ~/kc does not exist (from --kubeconfig); kubectl does not expand ~ either: "
        "let the shell do it"
    )
    assert default_paths(None, {"KUBECONFIG": "~/kc"}, tmp_path) == [Path("~/kc")]


def test_kubeconfig_env_lists_several_files_in_order(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    env = {"KUBECONFIG": f"{a}::{b}: :{c}:"}
    assert default_paths(None, env, tmp_path / "home") == [a, b, c]


@pytest.mark.parametrize("value", ["", "   "])
def test_blank_kubeconfig_env_falls_back_to_home(tmp_path: Path, value: str) -> None:
    assert default_paths(None, {"KUBECONFIG": value}, tmp_path) == [tmp_path / ".kube" / "config"]


def test_kubeconfig_env_of_only_separators_names_no_file(tmp_path: Path) -> None:
    # As with kubectl: KUBECONFIG is set, so ~/.kube/config is not consulted.
    (tmp_path / ".kube").mkdir()
    write(tmp_path / ".kube" / "config", {})
    assert default_paths(None, {"KUBECONFIG": "::"}, tmp_path) == []
    with pytest.raises(ConfigError, match=r"looked at \(none\)"):
        Kubeconfig.from_files([])


def test_default_is_dot_kube_config_under_home(tmp_path: Path) -> None:
    assert default_paths(None, {}, tmp_path) == [tmp_path / ".kube" / "config"]


def test_missing_files_from_env_are_skipped(tmp_path: Path) -> None:
    present = write(tmp_path / "present", config(clusters={"dev": {"server": "https://dev"}}))
    env = {"KUBECONFIG": f"{tmp_path / 'missing-1'}:{present}:{tmp_path / 'missing-2'}"}
    loaded = Kubeconfig.from_files(default_paths(None, env, tmp_path))
    assert list(loaded.clusters) == ["dev"]
    assert loaded.sources == (present,)


def test_no_file_at_all_is_a_config_error(tmp_path: Path) -> None:
    paths = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(ConfigError) as e:
        Kubeconfig.from_files(paths)
    message = str(e.value)
    assert str(tmp_path / "a") in message and str(tmp_path / "b") in message
    assert "--kubeconfig" in message and "KUBECONFIG" in message


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    directory = tmp_path / "is-a-directory"
    directory.mkdir()
    with pytest.raises(ConfigError, match="cannot read kubeconfig"):
        Kubeconfig.from_files([directory])


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1"
    path.write_bytes(b"clusters: [{name: caf\xe9}]\n")
    with pytest.raises(ConfigError, match="cannot read kubeconfig"):
        Kubeconfig.from_files([path])


def test_empty_file_is_an_empty_config(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_text("")
    loaded = Kubeconfig.from_files([path])
    assert dict(loaded.clusters) == {} and dict(loaded.users) == {}
    assert dict(loaded.contexts) == {} and loaded.current_context is None


# --- merging ----------------------------------------------------------------------


def test_first_file_wins_per_name(tmp_path: Path) -> None:
    first = write(
        tmp_path / "first",
        config(
            clusters={"shared": {"server": "https://first"}, "only-first": {"server": "https://f"}},
            users={"u": {"token": "first-token"}},
            contexts={"c": {"cluster": "shared", "user": "u", "namespace": "first"}},
        ),
    )
    second = write(
        tmp_path / "second",
        config(
            clusters={
                "shared": {"server": "https://second"},
                "only-second": {"server": "https://s"},
            },
            users={"u": {"token": "second-token"}, "u2": {"token": "t2"}},
            contexts={"c": {"cluster": "other", "user": "u2"}, "c2": {"cluster": "x", "user": "u"}},
        ),
    )
    loaded = Kubeconfig.from_files([first, second])
    assert loaded.clusters["shared"]["server"] == "https://first"
    assert set(loaded.clusters) == {"shared", "only-first", "only-second"}
    assert loaded.users["u"]["token"] == "first-token"
    assert set(loaded.users) == {"u", "u2"}
    assert loaded.contexts["c"]["namespace"] == "first"
    assert set(loaded.contexts) == {"c", "c2"}
    assert loaded.sources == (first, second)


def test_first_current_context_wins(tmp_path: Path) -> None:
    none = write(tmp_path / "0", config())
    first = write(tmp_path / "1", config(current="one"))
    second = write(tmp_path / "2", config(current="two"))
    assert Kubeconfig.from_files([none, first, second]).current_context == "one"
    assert Kubeconfig.from_files([second, first]).current_context == "two"
    assert Kubeconfig.from_files([none]).current_context is None


def test_empty_current_context_does_not_win(tmp_path: Path) -> None:
    blank = write(tmp_path / "blank", config(current=""))
    later = write(tmp_path / "later", config(current="later"))
    assert Kubeconfig.from_files([blank, later]).current_context == "later"


def test_relative_paths_are_made_absolute_relative_to_their_file(tmp_path: Path) -> None:
    first = write(
        tmp_path / "one" / "config",
        config(
            clusters={"a": {"server": "https://a", "certificate-authority": "pki/ca.crt"}},
            users={
                "u": {
                    "client-certificate": "pki/u.crt",
                    "client-key": "../keys/u.key",
                    "tokenFile": "token",
                }
            },
        ),
    )
    second = write(
        tmp_path / "two" / "sub" / "config",
        config(
            clusters={"b": {"server": "https://b", "certificate-authority": "ca.crt"}},
            users={"v": {"tokenFile": "./t"}},
        ),
    )
    loaded = Kubeconfig.from_files([first, second])
    one, two = (tmp_path / "one").resolve(), (tmp_path / "two" / "sub").resolve()
    assert loaded.clusters["a"]["certificate-authority"] == str(one / "pki" / "ca.crt")
    assert loaded.users["u"]["client-certificate"] == str(one / "pki" / "u.crt")
    assert loaded.users["u"]["client-key"] == str((tmp_path / "keys" / "u.key").resolve())
    assert loaded.users["u"]["tokenFile"] == str(one / "token")
    assert loaded.clusters["b"]["certificate-authority"] == str(two / "ca.crt")
    assert loaded.users["v"]["tokenFile"] == str(two / "t")


def test_absolute_paths_and_other_fields_are_left_alone(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config",
        config(
            clusters={"a": {"server": "https://a", "certificate-authority": "/etc/ca.crt"}},
            users={"u": {"client-key": "/k", "token": "relative/looking", "username": "x/y"}},
            contexts={"c": {"cluster": "a", "user": "u", "namespace": "ns"}},
        ),
    )
    loaded = Kubeconfig.from_files([path])
    assert loaded.clusters["a"]["certificate-authority"] == "/etc/ca.crt"
    assert loaded.users["u"]["client-key"] == "/k"
    assert loaded.users["u"]["token"] == "relative/looking"
    assert loaded.users["u"]["username"] == "x/y"
    assert dict(loaded.contexts["c"]) == {"cluster": "a", "user": "u", "namespace": "ns"}


def test_merged_view_is_read_only(tmp_path: Path) -> None:
    path = write(tmp_path / "config", config(clusters={"a": {"server": "https://a"}}))
    loaded = Kubeconfig.from_files([path])
    with pytest.raises(TypeError):
        loaded.clusters["b"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        loaded.clusters["a"]["server"] = "https://evil"  # type: ignore[index]


def test_entry_without_body_is_an_empty_body(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("clusters:\n- name: a\nusers:\n- name: u\n  user:\n")
    loaded = Kubeconfig.from_files([path])
    assert dict(loaded.clusters["a"]) == {}
    assert dict(loaded.users["u"]) == {}


# --- malformed input --------------------------------------------------------------


def test_invalid_yaml_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken"
    path.write_text("apiVersion: v1\nclusters:\n- name: a\n  cluster: {server: [\n")
    with pytest.raises(ConfigError) as e:
        Kubeconfig.from_files([path])
    message = str(e.value)
    assert str(path) in message
    assert "not valid YAML" in message
    assert "line 5" in message and "column" in message


def test_invalid_yaml_tab_indentation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not valid YAML at line 2, column 1"):
        parse("clusters:\n\t- name: a\n", tmp_path / "x")


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- a\n- b\n", "list"), ("just a string\n", "str"), ("42\n", "int")],
)
def test_top_level_not_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(text, tmp_path / "x")
    assert "is not a kubeconfig" in str(e.value)
    assert f"got a {kind}" in str(e.value)


@pytest.mark.parametrize("section", ["clusters", "users", "contexts"])
def test_section_not_a_list(tmp_path: Path, section: str) -> None:
    path = tmp_path / "config"
    path.write_text(f"{section}:\n  a: {{}}\n")
    with pytest.raises(ConfigError) as e:
        Kubeconfig.from_files([path])
    assert f"'{section}' must be a list" in str(e.value)
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    "entry",
    [
        "{cluster: {server: x}}",
        "{name: '', cluster: {}}",
        "{name: 7, cluster: {}}",
        "just-a-string",
    ],
)
def test_entry_without_name(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "config"
    path.write_text(f"clusters:\n- {{name: ok, cluster: {{}}}}\n- {entry}\n")
    with pytest.raises(ConfigError, match=r"clusters\[1\] has no name"):
        Kubeconfig.from_files([path])


def test_entry_body_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("users:\n- name: u\n  user: [a, b]\n")
    with pytest.raises(ConfigError, match=r"users entry 'u': 'user' must be a mapping"):
        Kubeconfig.from_files([path])


@pytest.mark.parametrize(
    "text",
    [
        "current-context: 2024-02-30\n",
        "clusters: !!int abc\n",
        "clusters: !!timestamp soon\n",
        "[" * 1000 + "]" * 1000,
    ],
    ids=["impossible-date", "bad-int-tag", "bad-timestamp-tag", "deep-nesting"],
)
def test_yaml_constructor_failures_are_config_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        parse(text, tmp_path / "x")


@pytest.mark.parametrize("escape", ["\\0", "\\ud800"], ids=["nul", "lone-surrogate"])
def test_unencodable_relative_path_field_is_a_config_error(tmp_path: Path, escape: str) -> None:
    path = tmp_path / "config"
    path.write_text(
        f'clusters:\n- name: a\n  cluster: {{server: x, certificate-authority: "ca{escape}"}}\n'
    )
    with pytest.raises(ConfigError):
        Kubeconfig.from_files([path])


@pytest.mark.parametrize("where", ["--kubeconfig", "KUBECONFIG", "tokenFile"])
def test_tilde_of_an_unknown_user(tmp_path: Path, where: str) -> None:
    unknown = "~no-such-user-bootstrap-token/config"
    try:
        if where == "--kubeconfig":
            default_paths(unknown, {}, tmp_path)
        elif where == "KUBECONFIG":
            assert default_paths(None, {"KUBECONFIG": unknown}, tmp_path) == [Path(unknown)]
        else:
            path = write(tmp_path / "config", config(users={"u": {"tokenFile": unknown}}))
            Kubeconfig.from_files([path])
    except ConfigError:
        pass


# --- input kubectl reads, and bombs it refuses ------------------------------------------


def test_alias_bomb_is_refused_quickly() -> None:
    import time

    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="excessive aliasing"):
        parse("\n".join(lines), Path("bomb"))
    assert time.monotonic() - started < 1


def test_a_few_aliases_are_fine() -> None:
    text = "users:\n- name: a\n  user: &u {token: x}\n- name: b\n  user: *u\n"
    assert parse(text, Path("k"))["users"][1]["user"] == {"token": "x"}


def test_depth_and_size_limits() -> None:
    with pytest.raises(ConfigError, match="nested deeper than 100 levels"):
        parse("a: " + "[" * 150 + "]" * 150, Path("deep"))
    with pytest.raises(ConfigError, match="larger than 16 MiB"):
        parse("#" * (16 * 1024 * 1024 + 1), Path("big"))


def test_tab_indented_json_is_read_as_kubectl_does() -> None:
    text = '{\n\t"clusters": [\n\t\t{"name": "c", "cluster": {"server": "https://h"}}\n\t]\n}\n'
    assert parse(text, Path("k.json"))["clusters"][0]["name"] == "c"


def test_base64_wrapped_over_lines_like_go() -> None:
    from bootstrap.kube.kubeconfig import data_field

    assert data_field("QUJD\nREVG\r\n", "x") == b"ABCDEF"
    with pytest.raises(ConfigError, match="x is not valid base64"):
        data_field("QUJD REVG", "x")


def test_relative_exec_command_with_a_separator_is_relative_to_its_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "users": [
                    {"name": "rel", "user": {"exec": {"command": "./bin/plugin"}}},
                    {"name": "path", "user": {"exec": {"command": "gke-gcloud-auth-plugin"}}},
                ]
            }
        )
    )
    config = Kubeconfig.from_files([path])
    assert config.users["rel"]["exec"]["command"] == str(tmp_path / "conf" / "bin" / "plugin")
    assert config.users["path"]["exec"]["command"] == "gke-gcloud-auth-plugin"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_utf8_and_utf16_with_bom_are_read(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "config"
    path.write_bytes("clusters:\n- name: ünï\n  cluster: {server: https://h}\n".encode(encoding))
    assert list(Kubeconfig.from_files([path]).clusters) == ["ünï"]


def test_tilde_in_a_kubeconfig_path_is_not_the_home(tmp_path: Path) -> None:
    """client-go never expands ~ in kubeconfig entries: it is a relative path."""
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({"users": [{"name": "u", "user": {"tokenFile": "~/token"}}]}))
    config = Kubeconfig.from_files([path])
    assert config.users["u"]["tokenFile"] == str(tmp_path / "~" / "token")


@pytest.mark.parametrize(
    ("section", "body", "message"),
    [
        ("users", {"token": 12345}, "users entry 'x': token must be a string, not int"),
        ("users", {"as-groups": "devs"}, "as-groups must be a list, not str"),
        ("users", {"exec": {"args": "x"}}, "exec args must be a list, not str"),
        ("users", {"exec": {"args": [1]}}, "every exec args item must be a string"),
        ("clusters", {"insecure-skip-tls-verify": "true"}, "must be true or false, not str"),
        ("contexts", {"namespace": 7}, "contexts entry 'x': namespace must be a string, not int"),
    ],
)
def test_fields_of_the_wrong_type_are_refused_as_by_kubectl(
    tmp_path: Path, section: str, body: dict[str, object], message: str
) -> None:
    key = {"users": "user", "clusters": "cluster", "contexts": "context"}[section]
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({section: [{"name": "x", key: body}]}))
    with pytest.raises(ConfigError) as e:
        Kubeconfig.from_files([path])
    assert str(e.value).startswith(f"kubeconfig {path}: {section} entry 'x': ")
    assert message in str(e.value)


def test_unknown_fields_and_nulls_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "config"
    body = {"server": "https://h", "tls-server-name": None, "future-field": {"x": 1}}
    path.write_text(yaml.safe_dump({"clusters": [{"name": "c", "cluster": body}]}))
    assert Kubeconfig.from_files([path]).clusters["c"]["future-field"] == {"x": 1}
