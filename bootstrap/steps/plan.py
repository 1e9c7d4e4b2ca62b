"""What a run did to the cluster or, with --dry-run, would do: one entry per object.

Each entry is logged once, when it is decided (so no object is reported twice), and
`render` turns the entries of a dry run into the plan printed on stdout. In a dry
run every create and delete is still sent, with `?dryRun=All`: the API server runs
validation, admission and RBAC on it and changes nothing, so a dry run fails exactly
where the real run would.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("bootstrap")

DRY_RUN = "dryRun=All"
# Fields a dry run makes up (or the server keeps for itself): not part of the plan.
_VOLATILE = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


@dataclass(frozen=True)
class Entry:
    action: str  # "exists" (and reused), "create", "delete" or "keep"
    what: str  # e.g. "Secret ns/name"
    note: str = ""  # why it is kept, or a detail
    body: Mapping[str, Any] | None = None  # for "create": the object as the server would store it


_DONE = {
    "exists": "{what} exists, reusing it{note}",
    "create": "{what} created{note}",
    "delete": "deleted {what}{note}",
    "keep": "{what} {note}; kept",
}
_DRY = {
    "exists": "{what} exists, would be reused{note}",
    "create": "{what} would be created{note}",
    "delete": "{what} would be deleted{note}",
    "keep": "{what} {note}; would be kept",
}


@dataclass
class Plan:
    dry_run: bool = False
    entries: list[Entry] = field(default_factory=list)

    def path(self, path: str) -> str:
        """The path of a create or delete: with `dryRun=All` in a dry run."""
        if not self.dry_run:
            return path
        return f"{path}{'&' if '?' in path else '?'}{DRY_RUN}"

    def record(
        self,
        action: str,
        what: str,
        note: str = "",
        body: Mapping[str, Any] | None = None,
        quiet: bool = False,
    ) -> None:
        """Remember an outcome and log it once (`quiet`: at debug level, because a later
        step reports it better, e.g. a reused Secret whose token is already there)."""
        self.entries.append(Entry(action, what, note, _clean(body) if body else None))
        shown = note if action == "keep" or not note else f" ({note})"
        line = (_DRY if self.dry_run else _DONE)[action].format(what=what, note=shown)
        log.log(logging.DEBUG if quiet and not self.dry_run else logging.INFO, "%s", line)

    def count(self, action: str) -> int:
        return sum(1 for entry in self.entries if entry.action == action)

    def details(self) -> str:
        """What was deleted and kept, on one line (revoke's result line, shown by default;
        each step's own line is for -v)."""
        parts = []
        for entry in self.entries:
            if entry.action in ("delete", "keep"):
                shown = (
                    entry.note if entry.action == "keep" or not entry.note else f" ({entry.note})"
                )
                parts.append(_DONE[entry.action].format(what=entry.what, note=shown))
        return "; ".join(parts)

    def summary(self) -> str:
        """One line for the end of the run (or the fleet table)."""
        deleted, kept = self.count("delete"), self.count("keep")
        if self.dry_run:
            created, existing = self.count("create"), self.count("exists")
            parts = [f"{created} to create", f"{existing} existing"] if created or existing else []
            if deleted or kept or not parts:
                parts += [f"{deleted} to delete", f"{kept} to keep"]
            return "dry run, nothing was changed: " + ", ".join(parts)
        return f"{deleted} deleted, {kept} kept" if kept else f"{deleted} deleted"


def render(title: str, plan: Plan) -> str:
    """The dry-run plan for stdout: `# ACTION  KIND NS/NAME  (note)` comment lines,
    then, as YAML documents, each object that would be created, as the API server
    returned it from the dry run. `yaml.safe_load_all` reads just the objects."""
    import yaml

    lines = [f"# {title}"]
    for entry in plan.entries:
        note = f"  ({entry.note})" if entry.note else ""
        lines.append(f"# {entry.action:<7} {entry.what}{note}")
    text = "\n".join(lines) + "\n"
    bodies = [dict(e.body) for e in plan.entries if e.action == "create" and e.body]
    if bodies:
        text += "---\n" + yaml.safe_dump_all(bodies, sort_keys=False)
    return text


def _clean(body: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = copy.deepcopy(dict(body))
    metadata = cleaned.get("metadata")
    if isinstance(metadata, dict):
        for key in _VOLATILE:
            metadata.pop(key, None)
    return cleaned
