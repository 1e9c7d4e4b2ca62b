"""The README stays a user's page and every relative link of the documentation leads somewhere.

The README holds what a user needs first (install, quick start, the five commands, CI); the
rest lives in docs/ (issue 19). These tests keep it that way: a size and a line-length bound,
the contributors' two commands in its Development section, and every relative link of
README.md and docs/*.md pointing at a file that exists and, with `#anchor`, at a heading of it
(GitHub's anchor rules). The commands in the code blocks are run by tests/cluster/test_readme.py.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"

# Pages written on other branches that this branch links to; the lead removes an entry when
# the page arrives at merge time (then its anchors are checked too).
ON_OTHER_BRANCHES: set[str] = set()

LINK = re.compile(r"\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)\)")


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code, where links are links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def github_anchor(heading: str, seen: dict[str, int]) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens,
    `-1`, `-2` ... for repeats."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else f"{slug}-{count}"


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {
        github_anchor(match.group(1), seen)
        for match in re.finditer(r"^#{1,6} +(.+?) *#*$", text, re.M)
    }


def relative_links(path: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(prose(path.read_text(encoding="utf-8")))
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:
    ]


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        relative = resolved.relative_to(REPO).as_posix() if resolved.is_relative_to(REPO) else ""
        if relative in ON_OTHER_BRANCHES:
            continue
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {relative or resolved.name}")
    return broken


def test_readme_is_at_most_15000_bytes_with_no_line_over_100_characters() -> None:
    data = README.read_bytes()
    assert len(data) <= 15_000, len(data)
    long_lines = [
        number
        for number, line in enumerate(data.decode("utf-8").splitlines(), 1)
        if len(line) > 100
    ]
    assert long_lines == []


def test_readme_development_section_holds_the_two_contributor_commands() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Development\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert commands == ["scripts/demo", "scripts/test"]
    # the top of the page (before Install) links to it, in one line
    top = text.split("\n## Install\n", 1)[0]
    assert "[Development](#development)" in top
    # CI runs exactly the README's test command
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == "scripts/test"


def test_readme_has_the_users_sections_in_order() -> None:
    headings = re.findall(r"^## (.+)$", README.read_text(encoding="utf-8"), re.M)
    assert headings == [
        "Install",
        "Quick start",
        "Commands",
        "CI",
        "Documentation",
        "Development",
        "License",
    ]
    commands = re.findall(r"^### (\w+):", README.read_text(encoding="utf-8"), re.M)
    assert sorted(commands) == ["check", "issue", "list", "revoke", "rotate", "sweep"]


def test_github_anchor_follows_githubs_rules() -> None:
    seen: dict[str, int] = {}
    assert github_anchor("Quick start", seen) == "quick-start"
    assert github_anchor("`--dry-run`: issue, rotate, revoke", seen) == (
        "--dry-run-issue-rotate-revoke"
    )
    assert github_anchor("The json schema, `bootstrap-token/v1`", seen) == (
        "the-json-schema-bootstrap-tokenv1"
    )
    assert github_anchor("Does this file still work? `check FILE`", seen) == (
        "does-this-file-still-work-check-file"
    )
    assert github_anchor("Quick start", seen) == "quick-start-1"


def test_broken_links_are_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A section\n")
    page.write_text(
        "# Page\n\n[ok](other.md#a-section) [self](#page) [web](https://example.com)\n"
        "[gone](missing.md) [no anchor](other.md#nowhere) `[code](missing.md)`\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nowhere: no heading #nowhere in other.md",
    ]


def test_every_relative_link_of_the_readme_and_docs_resolves() -> None:
    broken = {
        path.relative_to(REPO).as_posix(): broken_links(path)
        for path in pages()
        if broken_links(path)
    }
    assert broken == {}


def test_the_docs_index_links_every_docs_page() -> None:
    index = DOCS / "README.md"
    linked = {target.partition("#")[0] for target in relative_links(index)}
    on_disk = {path.name for path in DOCS.glob("*.md")} - {"README.md"}
    assert on_disk <= linked, sorted(on_disk - linked)
    assert "docs/README.md" in relative_links(README)
