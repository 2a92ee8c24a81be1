"""The README is the front door and docs/ the manual: every link, file path, subcommand and make target they name
exists, every docs page is in the index, and the README stays short enough to read in ten minutes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qwen_tts_lit.cli.commands import COMMANDS, LIGHTNING_COMMANDS

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# A path of the repository named in the text (`configs/demo.yaml`, tests/model/test_step.py, data/demo/...; a path
# inside the package, `data/sampler.py`, is not one of these: it is read relative to qwen_tts_lit/)
PATH = re.compile(
    r"(?<![\w./-])((?:configs|benchmarks|tests|qwen_tts_lit|scripts|notebooks|data/demo|docs)/[\w./=*-]*\w)"
)
PLACEHOLDER = re.compile(r"(^|/)[A-Z][A-Z_]+(/|\.|::|$)")  # tests/PATH, RUN/config.yaml: what the user fills in
LINK = re.compile(r"\]\(([^)\s]+)\)")
README_LINES = 300


def _ids(pages: list[Path]) -> list[str]:
    return [page.relative_to(REPO).as_posix() for page in pages]


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_link_resolves(page: Path):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in _anchors(file)):
            broken.append(target)
    assert not broken, broken


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_path_named_exists(page: Path):
    named = {m for m in PATH.findall(page.read_text()) if not PLACEHOLDER.search(m)}
    missing = sorted(p for p in named if not (list(REPO.glob(p)) if "*" in p else (REPO / p).exists()))
    assert not missing, missing


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_subcommand_and_make_target_named_exists(page: Path):
    text = page.read_text()
    known = {*COMMANDS, *LIGHTNING_COMMANDS, "--help"}
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    assert set(re.findall(r"python -m qwen_tts_lit ([\w-]+)", text)) - known == set()
    assert set(re.findall(r"(?<![\w-])make ([a-z][\w-]*)", text)) - targets == set()


def test_every_docs_page_is_in_the_index_and_the_readme_links_the_index():
    index = set(LINK.findall((REPO / "docs" / "README.md").read_text()))
    pages = {page.name for page in PAGES[1:] if page.name != "README.md"}
    assert pages - index == set()
    assert "docs/README.md" in LINK.findall((REPO / "README.md").read_text())


def test_the_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text().count("\n")
    assert lines <= README_LINES, f"README.md has {lines} lines: move the detail into docs/ (docs/README.md)"
