"""The documentation a reader has with the repository alone: every relative link and anchor resolves, the pages
point nowhere a reader cannot open, and the README keeps the two commands CI and the hooks look for."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "FIGURES.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code (a link there is an example, not a link)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped but - and _, spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M).splitlines():
        if match := re.match(r"#{1,6} (.+)", line):
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page.read_text())) if not re.match(r"[a-z]+:", t)]


def test_the_pages_exist():
    names = {p.name for p in PAGES}
    wanted = {"getting-started.md", "concepts.md", "pipeline.md", "configuration.md", "your-own-model.md"}
    wanted |= {"cluster.md", "performance.md", "differences.md", "claims.md", "README.md", "CHANGELOG.md"}
    assert wanted <= names, wanted - names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with anchor #{anchor} in {file.name}")
    assert not broken, broken


def test_slugs_follow_github():
    assert slug("SAM's SDE: closed-form moments") == "sams-sde-closed-form-moments"
    assert slug("The mini-batch SDEs, and what can share noise") == "the-mini-batch-sdes-and-what-can-share-noise"
    assert slug("`weak_error`") == "weak_error"


def test_no_pointer_a_reader_cannot_open():
    """No "issue N" and no reference to the project's private notes in the documentation."""
    for page in PAGES:
        text = page.read_text()
        assert not re.search(r"issue [0-9]|paper notes|paper-notes", text, re.I), page.name


def test_readme_is_short_and_keeps_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "pip install -e . && snakemake --cores 2" in readme
    assert 'pip install -e ".[test]" && python -m pytest' in readme
    assert "https://arxiv.org/abs/2301.08203" in readme and "@inproceedings" in readme
