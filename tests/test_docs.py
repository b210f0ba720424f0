"""The manual: README.md and docs/*.md link only to what exists, and the README stays short."""

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [a or b for a, b in LINK.findall(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_relative_links_and_anchors_resolve(page):
    broken = []
    for link in links(page):
        if re.match(r"[a-z]+:", link):
            continue  # another site: not checked offline
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no {target.relative_to(REPO) if target.is_relative_to(REPO) else target}")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


@pytest.mark.parametrize(
    "heading, anchor",
    [
        ("## CoNLL-2003", "conll-2003"),
        ("## What a word is, and what an entity is", "what-a-word-is-and-what-an-entity-is"),
        ("### `--backend` options", "--backend-options"),
    ],
)
def test_anchors_are_made_as_github_makes_them(heading, anchor):
    assert slug(heading.lstrip("#")) == anchor


def test_the_readme_is_a_short_manual():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


def test_every_docs_page_is_linked_from_the_readme():
    readme = set(links(REPO / "README.md"))
    assert {f"docs/{page.name}" for page in PAGES[1:]} <= readme
