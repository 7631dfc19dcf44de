"""Every relative link in README.md and docs/*.md leads somewhere: the file exists and, when
the link names an anchor, the target file has a heading with that anchor.

The README is the front page and the manual lives in docs/, so the two are tied together by
links; moving a section or renaming a heading must not leave one dangling. Anchors follow
GitHub's rule: the heading's text, lower-cased, without punctuation other than `-` and `_`,
spaces turned into `-`, and `-1`, `-2`, … appended to repeats.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
LINK = re.compile(r"\]\(([^()\s]+)\)")


def prose(text: str) -> str:
    """The page without fenced code blocks, where `#` lines and `](` are not markdown."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for match in HEADING.finditer(prose(path.read_text())):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(path: Path) -> list[str]:
    text = INLINE_CODE.sub("", prose(path.read_text()))
    return [m.group(1) for m in LINK.finditer(text)]


def broken(path: Path) -> list[str]:
    found = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            found.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            found.append(f"{target}: no heading #{anchor} in {dest.name}")
    return found


def test_slug_follows_github() -> None:
    assert slug("`backends.<name>`") == "backendsname"
    assert slug("Results (last run)") == "results-last-run"
    assert slug("The sandbox, and how to relax it") == "the-sandbox-and-how-to-relax-it"
    assert slug("`classifier`, `pinning`, `benchmark`") == "classifier-pinning-benchmark"


def test_pages_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/deployment.md", "docs/configuration.md"} <= names
    assert len(links(ROOT / "README.md")) > 10


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    assert broken(page) == []


def test_every_doc_is_linked_from_the_readme() -> None:
    linked = {
        (ROOT / t.partition("#")[0]).resolve()
        for t in links(ROOT / "README.md")
        if t.startswith("docs/")
    }
    orphans = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert orphans == [], "docs pages the README does not link to"
