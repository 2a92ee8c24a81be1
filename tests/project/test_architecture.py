"""The layout is a contract: imports flow one way between the stage packages, Lightning stays in the training
packages, run-folder file names are spelled only in ``runs/`` (the speaker file's only in ``speaker_file.py``, an
export folder's only in ``export_folder.py``), and nothing points outside the repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "qwen_tts_lit"
# docs/architecture.md: a module imports only from its own layer or a lower one.
LAYERS = {
    "errors": 0, "files": 0, "cache": 0, "audio": 0, "languages": 0, "speaker_file": 0, "export_folder": 0,
    "upstream": 1,
    "model": 2, "metrics": 2,
    "runs": 3,
    "data": 4,
    "synthesis": 5,
    "evaluation": 6,
    "train": 7, "callbacks": 7,
    "export": 8,
    "analysis": 9,
    "cli": 10, "__main__": 10,
}  # fmt: skip
LIGHTNING_ALLOWED = ("train/", "callbacks/", "cli/", "data/datamodule.py")
RUN_FOLDER_NAMES = re.compile(r"best\.json|rows\.jsonl")
SPEAKER_FILE_NAME = re.compile(r"speaker\.safetensors")  # shared by prepared datasets, runs and adapter exports
EXPORT_FOLDER_NAMES = re.compile(r"qwen_tts_lit\.json|adapter_config\.json")  # written by export/, read by synthesis/
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def stage(path: Path) -> str:
    """The top-level package (or module) of a file of qwen_tts_lit."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, function-local imports included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_every_stage_has_a_layer():
    assert {stage(p) for p in MODULES if stage(p) != "__init__"} == set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path: Path):
    if stage(path) == "__init__":
        return
    mine = LAYERS[stage(path)]
    upward = []
    for line, module in imported_modules(path):
        parts = module.split(".")
        if parts[0] == "qwen_tts_lit" and len(parts) > 1 and LAYERS[parts[1]] > mine:
            upward.append(f"line {line}: {module} (layer {LAYERS[parts[1]]} > {mine})")
    assert not upward, upward


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_lightning_only_where_training_happens(path: Path):
    relative = path.relative_to(PACKAGE).as_posix()
    uses = [m for _, m in imported_modules(path) if m.split(".")[0] in ("lightning", "pytorch_lightning")]
    assert not uses or relative.startswith(LIGHTNING_ALLOWED), uses


def _spelled(pattern: re.Pattern, owners: tuple[str, ...]) -> list[str]:
    return [
        f"{p.relative_to(PACKAGE)}:{n}" for p in MODULES if stage(p) not in owners
        for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)
    ]  # fmt: skip


def test_run_folder_file_names_are_spelled_only_in_runs():
    assert _spelled(RUN_FOLDER_NAMES, ("runs",)) == []


def test_the_speaker_file_name_is_spelled_only_in_its_module():
    assert _spelled(SPEAKER_FILE_NAME, ("speaker_file",)) == []


def test_export_folder_names_are_spelled_only_in_their_module():
    assert _spelled(EXPORT_FOLDER_NAMES, ("export_folder",)) == []


def test_no_comment_points_outside_the_repository():
    root = PACKAGE.parent
    sources = [*MODULES, *root.glob("benchmarks/*.py"), *root.glob("scripts/*.py"), *root.rglob("tests/**/*.py")]
    pointers = ("../shared", "FACTS.md")
    outside = [f"{p.relative_to(root)}:{n}" for p in sources if p != Path(__file__)
               for n, line in enumerate(p.read_text().splitlines(), 1) if any(s in line for s in pointers)]  # fmt: skip
    assert outside == []


def test_test_files_have_unique_names():
    """pytest imports test files by basename (no __init__.py in tests/): two files of one name break collection."""
    names = [p.name for p in (PACKAGE.parent / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
