"""Render one kubeconfig (a dict) as text in many equivalent styles: JSON
(compact, indented, tabs) or YAML (block or flow, plain/single/double-quoted keys
and values, comment lines, a document marker, `*-data` base64 wrapped over lines),
with CRLF line endings or a BOM. kubectl and bootstrap-token must read every
rendering the same way."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Style:
    format: str = "yaml"  # yaml | json
    indent: int = 2  # json: 0 = compact, -1 = tabs
    keys: str = ""  # yaml key quoting: "", "'" or '"'
    values: str = ""  # yaml value quoting: "", "'" or '"'
    flow_from: int = 99  # yaml: mappings/lists at this depth and deeper are written in flow style
    comments: bool = False
    marker: bool = False  # yaml: "---" first, "..." last
    wrap: int = 0  # wrap *-data base64 at this width (0: one line)
    order: str = "as-is"  # as-is | sorted | reversed
    crlf: bool = False
    bom: bool = False


def render(document: dict[str, Any], style: Style) -> str:
    ordered = _order(document, style.order)
    text = _json(ordered, style) if style.format == "json" else _yaml(ordered, style)
    if style.crlf:
        text = text.replace("\n", "\r\n")
    return ("\ufeff" if style.bom else "") + text


def _order(value: Any, order: str) -> Any:
    if isinstance(value, dict):
        keys = list(value)
        if order == "sorted":
            keys.sort()
        elif order == "reversed":
            keys.reverse()
        return {k: _order(value[k], order) for k in keys}
    if isinstance(value, list):
        return [_order(v, order) for v in value]
    return value


def _wrapped(key: str, value: Any, style: Style) -> Any:
    if style.wrap and isinstance(value, str) and key.endswith("-data") and len(value) > style.wrap:
        return "\n".join(textwrap.wrap(value, style.wrap)) + "\n"
    return value


def _json(document: dict[str, Any], style: Style) -> str:
    def fix(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: fix(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        return _wrapped(key, value, style)

    fixed = fix(document)
    if style.indent == 0:
        return json.dumps(fixed, separators=(",", ":"))
    return json.dumps(fixed, indent="\t" if style.indent < 0 else style.indent) + "\n"


def _scalar(value: Any, quote: str) -> str:
    if isinstance(value, str) and quote == '"':
        return json.dumps(value)
    if isinstance(value, str) and quote == "'":
        return "'" + value.replace("'", "''") + "'"
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _flow(value: Any, style: Style) -> str:
    if isinstance(value, dict):
        items = (f"{_scalar(k, style.keys)}: {_flow(v, style)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v, style) for v in value) + "]"
    return _scalar(value, style.values or '"')  # plain scalars in flow context are fragile


def _block(value: Any, style: Style, depth: int, pad: str) -> list[str]:
    """Lines for a mapping or list in block style (or flow, from `flow_from` on)."""
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if style.comments:
                lines.append(f"{pad}# {key}")
            head = f"{pad}{_scalar(key, style.keys)}:"
            item = _wrapped(key, item, style)
            if isinstance(item, str) and "\n" in item:
                lines.append(f"{head} |")
                lines += [f"{pad}  {line}" for line in item.splitlines()]
            elif isinstance(item, dict | list) and item and depth + 1 < style.flow_from:
                lines.append(head)
                lines += _block(item, style, depth + 1, pad + "  ")
            elif isinstance(item, dict | list):
                lines.append(f"{head} {_flow(item, style)}")
            else:
                lines.append(f"{head} {_scalar(item, style.values)}")
    else:
        for item in value:
            if isinstance(item, dict) and item and depth + 1 < style.flow_from:
                inner = _block(item, style, depth + 1, pad + "  ")
                first = next(i for i, line in enumerate(inner) if not line.lstrip().startswith("#"))
                inner[first] = f"{pad}- {inner[first][len(pad) + 2 :]}"
                lines += inner
            else:
                lines.append(f"{pad}- {_flow(item, style)}")
    return lines


def _yaml(document: dict[str, Any], style: Style) -> str:
    body = [_flow(document, style)] if style.flow_from <= 0 else _block(document, style, 0, "")
    head = ["---"] if style.marker else []
    tail = ["..."] if style.marker else []
    top = ["# kubeconfig rendered by the conformance suite"] if style.comments else []
    return "\n".join(top + head + body + tail) + "\n"
