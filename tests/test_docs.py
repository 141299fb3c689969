"""The front page and the docs pages: every relative link and image points to a file that exists (and,
for a `#fragment`, to a heading or id on that page), every generated block is in README exactly once
where its writer looks for it, and README's test command is the one CI runs."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# the blocks the report notebooks (kdlib.report.write_block) and scripts/benchmark.py rewrite in README.md
BLOCKS = ["headline", "pu", "rating", "multi", "budget", "layers", "benchmark"]


def prose(text):
    """The text outside fenced code blocks and inline code, where a link is a link."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def links(text):
    """Targets of Markdown links and images, [label](target) and ![alt](target), and of src/href attributes."""
    text = prose(text)
    return re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text) + re.findall(r"(?:src|href)=\"([^\"]+)\"", text)


def anchors(text):
    """The fragments GitHub gives a page's headings (github-slugger: lower case, punctuation dropped, a
    space a hyphen, repeats numbered) and its explicit ids."""
    seen, out = {}, set(re.findall(r"\bid=\"([^\"]+)\"", text))
    for title in re.findall(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M), flags=re.M):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link in a heading counts by its text
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_to_an_existing_file_and_heading(page):
    bad = []
    for target in links(page.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.I):  # https:, mailto:, ...
            continue
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest.read_text()):
            bad.append(f"{target}: no heading #{fragment} on {dest.relative_to(ROOT).as_posix()}")
    assert not bad, f"{page.relative_to(ROOT).as_posix()}: " + "; ".join(bad)


def test_the_slugs_are_githubs():
    assert anchors("# What `make test` checks\n## Study 1: IMDB, teacher → students\n## A\n## A\n") == {
        "what-make-test-checks", "study-1-imdb-teacher--students", "a", "a-1"}


def test_every_generated_block_is_in_readme_once():
    text = (ROOT / "README.md").read_text()
    for name in BLOCKS:
        assert len(re.findall(rf"<!-- {name}:start\b", text)) == 1, name
        assert text.count(f"<!-- {name}:end -->") == 1, name
        assert text.index(f"<!-- {name}:start") < text.index(f"<!-- {name}:end -->"), name
    for page in PAGES[1:]:  # a block copied into a docs page would go stale there: its writer targets README
        assert not re.search(r"<!-- \w+:start", page.read_text()), page.name


def test_readmes_test_command_is_what_ci_runs():
    commands = re.search(r"^## Two commands\n+```bash\n(.*?)^```", (ROOT / "README.md").read_text(), flags=re.S | re.M)
    assert commands and re.search(r"^make test\b", commands.group(1), flags=re.M)
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), flags=re.M)
