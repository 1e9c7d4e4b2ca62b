"""Where a module can be mutated, and how: one `Site` per mutant.

A site is found by walking a fresh `ast.parse` of the source in `ast.walk` order,
so `apply` can re-parse, find the same node by index and change it: every mutant
starts from pristine source and nothing is ever written to the working tree.

Operators (the `kind` of a site):
  compare   == <-> !=, < <-> <=, > <-> >=, is <-> is not, in <-> not in
  bool      and <-> or;  `not x` -> `x`
  arith     + <-> -, * <-> //, and `a | b` -> `a` / `b` (drops a flag such as O_EXCL)
  const     True <-> False, integer n -> n+1 and n-1, string -> "" (or "" -> "XX")
  regex     a pattern given to re.*: character classes widened (`_`, `.`, `-`) or
            narrowed, anchors dropped, `*` -> `+`
  return    `return X` -> `return None`
  delete    a call statement or a `raise` -> `pass`; a dunder method removed
  except    one type dropped from `except (A, B, C)`
  api       security-relevant API swaps: yaml.safe_load -> yaml.unsafe_load
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Transform = Callable[[ast.AST], ast.AST | None]

_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_ARITH_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Div: ast.Mult,
}
_API_SWAPS = {"safe_load": "unsafe_load"}
_REGEX_FUNCTIONS = {"compile", "match", "fullmatch", "search", "sub", "subn", "split", "findall"}
_SYMBOLS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.FloorDiv: "//",
    ast.Div: "/",
}


@dataclass(frozen=True)
class Site:
    """One mutant: the node (by walk index), what to do to it, and where it is."""

    node_index: int
    variant: int
    kind: str
    description: str
    lineno: int
    end_lineno: int
    stmt_lineno: int  # the enclosing statement's first line (what a tracer sees)
    module_level: bool  # runs at import (class bodies, defaults), not inside a call


def sites(source: str) -> list[Site]:
    tree = ast.parse(source)
    context = _Context(tree)
    found = []
    for index, node in enumerate(ast.walk(tree)):
        if context.skipped(node):
            continue
        for variant, (kind, description, _) in enumerate(_mutations(node, context)):
            stmt = context.statement(node)
            found.append(
                Site(
                    node_index=index,
                    variant=variant,
                    kind=kind,
                    description=description,
                    lineno=getattr(node, "lineno", stmt.lineno),
                    end_lineno=getattr(node, "end_lineno", None) or stmt.lineno,
                    stmt_lineno=stmt.lineno,
                    module_level=context.module_level(node),
                )
            )
    return sorted(found, key=lambda s: (s.lineno, s.node_index, s.variant))


def apply(source: str, site: Site) -> ast.Module:
    """A fresh tree of `source` with `site` applied."""
    tree = ast.parse(source)
    context = _Context(tree)
    node = list(ast.walk(tree))[site.node_index]
    _, _, transform = list(_mutations(node, context))[site.variant]
    replacement = transform(node)
    if replacement is not node:
        _replace(context.parents[node], node, replacement)
    return ast.fix_missing_locations(tree)


def mutated_line(source: str, site: Site) -> str:
    """The mutated statement as code, one line, for the report."""
    tree = apply(source, site)
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and node.lineno == site.stmt_lineno:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                break
            text = ast.unparse(node).split("\n", 1)[0]
            return text if len(text) <= 120 else text[:117] + "..."
    return ""


class _Context:
    def __init__(self, tree: ast.Module) -> None:
        self.parents: dict[ast.AST, ast.AST] = {}
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        self.tree = tree

    def statement(self, node: ast.AST) -> ast.stmt:
        while not isinstance(node, ast.stmt):
            node = self.parents[node]
        return node

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        while node in self.parents:
            node = self.parents[node]
            yield node

    def skipped(self, node: ast.AST) -> bool:
        """Docstrings, annotations, f-string pieces and imports are not mutated."""
        if isinstance(node, ast.Import | ast.ImportFrom):
            return True
        child = node
        for parent in self.ancestors(node):
            if isinstance(parent, ast.JoinedStr | ast.Import | ast.ImportFrom):
                return True
            if isinstance(parent, ast.arg) and child is parent.annotation:
                return True
            if isinstance(parent, ast.AnnAssign) and child is parent.annotation:
                return True
            if isinstance(parent, ast.FunctionDef) and child is parent.returns:
                return True
            child = parent
        return _is_docstring(node, self.parents.get(node))

    def module_level(self, node: ast.AST) -> bool:
        """True when the node is evaluated at import time: not inside a function body."""
        child = node
        for parent in self.ancestors(node):
            if isinstance(parent, ast.Lambda):
                return False
            if isinstance(parent, ast.FunctionDef):
                # Defaults and decorators of a def run at import; its body does not.
                return not any(child is stmt for stmt in parent.body)
            child = parent
        return True


def _is_docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    if not isinstance(node, ast.Expr) and not (
        isinstance(node, ast.Constant) and isinstance(parent, ast.Expr)
    ):
        return False
    expr = node if isinstance(node, ast.Expr) else parent
    if not (isinstance(expr, ast.Expr) and isinstance(expr.value, ast.Constant)):
        return False
    return isinstance(expr.value.value, str)


def _mutations(node: ast.AST, context: _Context) -> Iterator[tuple[str, str, Transform]]:
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            swap = _COMPARE_SWAPS.get(type(op))
            if swap is not None:
                yield "compare", f"{_SYMBOLS[type(op)]} -> {_SYMBOLS[swap]}", _set_op(i, swap)
    elif isinstance(node, ast.BoolOp):
        other = ast.Or if isinstance(node.op, ast.And) else ast.And
        names = {ast.And: "and", ast.Or: "or"}
        yield "bool", f"{names[type(node.op)]} -> {names[other]}", _set_attr("op", other)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "bool", "not x -> x", lambda n: n.operand  # type: ignore[attr-defined]
    elif isinstance(node, ast.BinOp):
        yield from _binop(node)
    elif isinstance(node, ast.Constant):
        yield from _constant(node, context)
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            yield "return", "return X -> return None", _set_attr_value("value", None)
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        yield "delete", f"delete call {_callee(node.value)}()", lambda n: ast.Pass()
    elif isinstance(node, ast.Raise):
        yield "delete", "delete raise", lambda n: ast.Pass()
    elif isinstance(node, ast.FunctionDef) and isinstance(context.parents.get(node), ast.ClassDef):
        if node.name.startswith("__") and node.name.endswith("__"):
            yield "delete", f"delete method {node.name}", lambda n: None
    elif isinstance(node, ast.ExceptHandler) and isinstance(node.type, ast.Tuple):
        for i, element in enumerate(node.type.elts):
            yield "except", f"except: drop {ast.unparse(element)}", _drop_except(i)
    elif isinstance(node, ast.Attribute) and node.attr in _API_SWAPS:
        api = _API_SWAPS[node.attr]
        yield "api", f"{node.attr} -> {api}", _set_attr_value("attr", api)


def _binop(node: ast.BinOp) -> Iterator[tuple[str, str, Transform]]:
    if isinstance(node.op, ast.BitOr | ast.BitAnd):
        symbol = "|" if isinstance(node.op, ast.BitOr) else "&"
        right, left = ast.unparse(node.right), ast.unparse(node.left)
        yield "arith", f"drop '{symbol} {right}'", lambda n: n.left  # type: ignore[attr-defined]
        yield "arith", f"drop '{left} {symbol}'", lambda n: n.right  # type: ignore[attr-defined]
        return
    swap = _ARITH_SWAPS.get(type(node.op))
    if swap is not None:
        yield "arith", f"{_SYMBOLS[type(node.op)]} -> {_SYMBOLS[swap]}", _set_attr("op", swap)


def _constant(node: ast.Constant, context: _Context) -> Iterator[tuple[str, str, Transform]]:
    value = node.value
    if isinstance(value, bool):
        yield "const", f"{value} -> {not value}", _set_attr_value("value", not value)
    elif isinstance(value, int):
        yield "const", f"{value} -> {value + 1}", _set_attr_value("value", value + 1)
        yield "const", f"{value} -> {value - 1}", _set_attr_value("value", value - 1)
    elif isinstance(value, str):
        if _is_regex_argument(node, context):
            for new, why in regex_variants(value):
                yield "regex", f"regex {why}: {new!r}", _set_attr_value("value", new)
        elif value:
            yield "const", f"{_short(value)} -> ''", _set_attr_value("value", "")
        else:
            yield "const", "'' -> 'XX'", _set_attr_value("value", "XX")


def regex_variants(pattern: str) -> list[tuple[str, str]]:
    """A few cheap tweaks of a pattern: each one changes what it accepts."""
    found: list[tuple[str, str]] = []
    for match in re.finditer(r"(?<!\\)\[(\^?)((?:\\.|[^\]\\])+)\]", pattern):
        start, end = match.span(2)
        body = match.group(2)
        where = f"class [{body}] at {match.start()}"
        for extra in ("_", ".", "-"):
            if extra not in body:
                found.append(
                    (pattern[:start] + body + extra + pattern[end:], f"{where} +{extra!r}")
                )
        if len(body) > 1:
            found.append((pattern[:start] + body[:-1] + pattern[end:], f"{where} -last"))
    if pattern.startswith("^"):
        found.append((pattern[1:], "drop ^"))
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        found.append((pattern[:-1], "drop $"))
    for match in re.finditer(r"(?<![\\\[])\*", pattern):
        i = match.start()
        found.append((pattern[:i] + "+" + pattern[i + 1 :], f"'*' at {i} -> '+'"))
    return found


def _is_regex_argument(node: ast.Constant, context: _Context) -> bool:
    call = context.parents.get(node)
    if not (isinstance(call, ast.Call) and call.args and call.args[0] is node):
        return False
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr in _REGEX_FUNCTIONS
        and isinstance(func.value, ast.Name)
        and func.value.id == "re"
    )


def _callee(call: ast.Call) -> str:
    return ast.unparse(call.func)


def _short(value: str) -> str:
    return repr(value if len(value) <= 30 else value[:27] + "...")


def _set_op(index: int, op: type[ast.cmpop]) -> Transform:
    def transform(node: ast.AST) -> ast.AST:
        node.ops[index] = op()  # type: ignore[attr-defined]
        return node

    return transform


def _set_attr(name: str, op: type[ast.AST]) -> Transform:
    def transform(node: ast.AST) -> ast.AST:
        setattr(node, name, op())
        return node

    return transform


def _set_attr_value(name: str, value: object) -> Transform:
    def transform(node: ast.AST) -> ast.AST:
        setattr(node, name, value)
        return node

    return transform


def _drop_except(index: int) -> Transform:
    def transform(node: ast.AST) -> ast.AST:
        elts = node.type.elts  # type: ignore[attr-defined]
        del elts[index]
        return node

    return transform


def _replace(parent: ast.AST, old: ast.AST, new: ast.AST | None) -> None:
    for field, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, field, new)
            return
        if isinstance(value, list) and any(item is old for item in value):
            i = next(i for i, item in enumerate(value) if item is old)
            if new is None:
                del value[i]
                if not value:
                    value.append(ast.Pass())
            else:
                value[i] = new
            return
    raise ValueError(f"{old!r} is not a child of {parent!r}")
