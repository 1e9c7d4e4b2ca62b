"""Step 1: read the kubeconfig the way kubectl does.

Which files: `--kubeconfig PATH` if given (it must exist); else every file in
`$KUBECONFIG` (separated by `:`; missing ones are skipped, as kubectl does);
else `~/.kube/config`.

Merging (kubectl's rules): for clusters, users and contexts the first file that
defines a name wins; the first file that sets `current-context` wins. Relative
file paths inside a kubeconfig (CA, client cert/key, token file) are relative
to the file that holds them, so they are made absolute while merging; so is an
exec plugin's `command` when it is relative and contains a path separator.

Parsing (`parse`): YAML, falling back to JSON for JSON files PyYAML rejects
(tab-indented); refused with exit 3: files over 16 MiB, nesting deeper than 100,
and alias bombs ("excessive aliasing", as kubectl says). `*-data` fields are
base64 with line breaks allowed, as Go decodes them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from bootstrap.errors import ConfigError

Entry = Mapping[str, Any]

_PATH_FIELDS = {
    "clusters": ("certificate-authority",),
    "users": ("client-certificate", "client-key", "tokenFile"),
}
_SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}


@dataclass(frozen=True)
class Kubeconfig:
    """The merged view: name -> entry body for each section."""

    clusters: Mapping[str, Entry] = field(default_factory=dict)
    users: Mapping[str, Entry] = field(default_factory=dict)
    contexts: Mapping[str, Entry] = field(default_factory=dict)
    current_context: str | None = None
    sources: tuple[Path, ...] = ()

    @classmethod
    def from_files(cls, paths: Sequence[Path]) -> Kubeconfig:
        from bootstrap.inputs import read_input

        documents = []
        for path in paths:
            data = read_input(path, "kubeconfig", limit=MAX_FILE_BYTES, missing_ok=True)
            if data is None:
                continue
            try:
                text = decode(data)
            except UnicodeDecodeError as e:
                raise ConfigError(f"cannot read kubeconfig {path}: {_reason(e)}") from e
            documents.append((path, parse(text, path)))
        if not documents:
            listed = ", ".join(str(p) for p in paths) or "(none)"
            raise ConfigError(
                f"no kubeconfig found (looked at {listed}); pass --kubeconfig PATH or set KUBECONFIG"
            )
        return cls.from_documents(documents)

    @classmethod
    def from_documents(cls, documents: Sequence[tuple[Path, Mapping[str, Any]]]) -> Kubeconfig:
        merged: dict[str, dict[str, Entry]] = {section: {} for section in _SECTIONS}
        current: str | None = None
        for path, document in documents:
            for section, body_key in _SECTIONS.items():
                for name, body in _entries(document, section, body_key, path):
                    _check_types(section, name, body, path)
                    if name not in merged[section]:
                        merged[section][name] = _absolute_paths(section, body, path.parent)
            if current is None and document.get("current-context"):
                current = str(document["current-context"])
        return cls(
            clusters=MappingProxyType(merged["clusters"]),
            users=MappingProxyType(merged["users"]),
            contexts=MappingProxyType(merged["contexts"]),
            current_context=current,
            sources=tuple(path for path, _ in documents),
        )


def default_paths(explicit: str | None, environ: Mapping[str, str], home: Path) -> list[Path]:
    """The files to read, in priority order (see the module docstring)."""
    if explicit:
        # As kubectl: no ~ expansion here (the shell does it for an unquoted ~/...).
        path = Path(explicit)
        if not path.exists():
            hint = (
                "; kubectl does not expand ~ either: let the shell do it" if "~" in explicit else ""
            )
            raise ConfigError(f"kubeconfig {path} does not exist (from --kubeconfig){hint}")
        return [path]
    env = environ.get("KUBECONFIG", "")
    if env.strip():
        return [Path(p) for p in env.split(os.pathsep) if p.strip()]
    return [home / ".kube" / "config"]


MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 100
# Nodes of the document once every alias is expanded: a real kubeconfig has a few
# thousand; a "billion laughs" file has billions. Go's YAML decoder refuses such a
# file with "excessive aliasing"; so do we, before anything walks the expanded tree.
MAX_EXPANDED_NODES = 1_000_000


def decode(data: bytes) -> str:
    """UTF-8, or UTF-16 with a byte order mark (Go's YAML decoder reads both)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def parse(text: str, path: Path) -> Mapping[str, Any]:
    """Parse one kubeconfig file (YAML, or JSON that PyYAML rejects, e.g. with tabs);
    an empty file is an empty config. Bombs are refused: too big, too deep, or too
    many aliases."""
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError(
            f"kubeconfig {path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; "
            "not a kubeconfig"
        )
    try:
        document = _load_yaml(text, path)
    except yaml.YAMLError as e:
        document = _load_json(text)
        if document is None:
            where = ""
            mark = getattr(e, "problem_mark", None)
            if mark is not None:
                where = f" at line {mark.line + 1}, column {mark.column + 1}"
            problem = getattr(e, "problem", None) or "invalid YAML"
            raise ConfigError(f"kubeconfig {path} is not valid YAML{where}: {problem}") from e
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as e:
        # PyYAML raises these for values it cannot construct (`!!int abc`, a bad
        # date, absurd nesting): still a malformed file, not a crash.
        raise ConfigError(
            f"kubeconfig {path} cannot be loaded: {type(e).__name__}: {e}"[:300]
        ) from e
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"kubeconfig {path} is not a kubeconfig (expected a mapping with clusters, "
            f"users and contexts, got a {type(document).__name__})"
        )
    return document


def _load_yaml(text: str, path: Path) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, path)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_size(root: yaml.Node, path: Path) -> None:
    """Count the nodes of the alias-expanded document without expanding it."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise ConfigError(f"kubeconfig {path} is nested deeper than {MAX_DEPTH} levels")
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        if total > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"kubeconfig {path} cannot be loaded: excessive aliasing "
                f"(more than {MAX_EXPANDED_NODES} nodes once its aliases are expanded)"
            )
        sizes[id(node)] = total
        return total

    size(root, 0)


def _load_json(text: str) -> Any:
    """kubectl reads JSON kubeconfigs PyYAML rejects (tab indentation): try JSON."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _entries(
    document: Mapping[str, Any], section: str, body_key: str, path: Path
) -> list[tuple[str, Entry]]:
    items = document.get(section)
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(f"kubeconfig {path}: '{section}' must be a list")
    entries: list[tuple[str, Entry]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ConfigError(f"kubeconfig {path}: {section}[{index}] has no name")
        body = item.get(body_key)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ConfigError(
                f"kubeconfig {path}: {section} entry {item['name']!r}: '{body_key}' must be a mapping"
            )
        entries.append((item["name"], body))
    return entries


# Field types of the entries, as kubectl's typed decoding enforces them ("json: cannot
# unmarshal number into Go struct field AuthInfo.users.user.token of type string").
# Unknown fields are ignored, as by kubectl; null is the empty value.
_STR, _BOOL, _LIST, _MAP = "a string", "true or false", "a list", "a mapping"
_TYPES: dict[str, dict[str, str]] = {
    "clusters": {
        **dict.fromkeys(
            ("server", "certificate-authority", "certificate-authority-data",
             "tls-server-name", "proxy-url"), _STR),
        **dict.fromkeys(("insecure-skip-tls-verify", "disable-compression"), _BOOL),
        "extensions": _LIST,
    },
    "users": {
        **dict.fromkeys(
            ("client-certificate", "client-certificate-data", "client-key", "client-key-data",
             "token", "tokenFile", "as", "as-uid", "username", "password"), _STR),
        "as-groups": _LIST, "as-user-extra": _MAP, "exec": _MAP, "auth-provider": _MAP,
        "extensions": _LIST,
    },
    "contexts": {**dict.fromkeys(("cluster", "user", "namespace"), _STR), "extensions": _LIST},
}  # fmt: skip
_EXEC_TYPES = {
    **dict.fromkeys(("command", "apiVersion", "installHint", "interactiveMode"), _STR),
    "args": _LIST,
    "env": _LIST,
    "provideClusterInfo": _BOOL,
}
_CHECKS = {_STR: str, _BOOL: bool, _LIST: list, _MAP: dict}


def _check_types(section: str, name: str, body: Entry, path: Path) -> None:
    where = f"kubeconfig {path}: {section} entry {name!r}"
    fields = [(key, body.get(key), kind) for key, kind in _TYPES[section].items()]
    exec_entry = body.get("exec")
    if section == "users" and isinstance(exec_entry, dict):
        fields += [(f"exec {k}", exec_entry.get(k), kind) for k, kind in _EXEC_TYPES.items()]
        for key, item_kind in (("args", _STR), ("env", _MAP)):
            items = exec_entry.get(key) or []
            if isinstance(items, list) and not all(
                isinstance(i, _CHECKS[item_kind]) for i in items
            ):
                raise ConfigError(f"{where}: every exec {key} item must be {item_kind}")
    for key, value, kind in fields:
        if value is not None and not isinstance(value, _CHECKS[kind]):
            raise ConfigError(f"{where}: {key} must be {kind}, not {type(value).__name__}")


def _absolute_paths(section: str, body: Entry, base: Path) -> Entry:
    fixed = dict(body)
    exec_entry = fixed.get("exec")
    if section == "users" and isinstance(exec_entry, Mapping):
        command = exec_entry.get("command")
        # client-go: a relative command with a path separator is relative to this file.
        if isinstance(command, str) and os.sep in command and not os.path.isabs(command):
            fixed["exec"] = {**exec_entry, "command": os.path.abspath(base / command)}
    for key in _PATH_FIELDS.get(section, ()):
        value = fixed.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            try:
                fixed[key] = str((base / value).resolve())  # no ~ expansion, as client-go
            except (ValueError, OSError, RuntimeError) as e:  # RuntimeError: a symlink loop
                raise ConfigError(
                    f"kubeconfig {base}: {section} {key} {value!r} is not a usable path"
                ) from e
    return MappingProxyType(fixed)


def data_field(value: object, where: str) -> bytes | None:
    """Decode a `*-data` field (base64); `where` names it in the error, e.g.
    "cluster 'dev': certificate-authority-data". Like Go's decoder, line breaks
    (\\r, \\n) are ignored, so base64 wrapped over lines works; spaces are not."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string")
    try:
        return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ConfigError(f"{where} is not valid base64") from e


def expand(path: str) -> Path:
    """`~` expansion that keeps the path as written when the home is unknown
    (a kubeconfig copied from another machine may name `~someone`)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return type(error).__name__
