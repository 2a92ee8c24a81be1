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
    "listening": 9,
    "analysis": 10,
    "cli": 11, "__main__": 11,
}  # fmt: skip
LIGHTNING_ALLOWED = ("train/", "callbacks/", "cli/", "data/datamodule.py")
RUN_FOLDER_NAMES = re.compile(r"best\.json|rows\.jsonl")
SPEAKER_FILE_NAME = re.compile(r"speaker\.safetensors")  # shared by prepared datasets, runs and adapter exports
EXPORT_FOLDER_NAMES = re.compile(r"qwen_tts_lit\.json|adapter_config\.json")  # written by export/, read by synthesis/
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
# The prepared-dataset contract (docs/architecture.md): its file and folder names have one owner.
PREPARED_OWNER = PACKAGE / "data" / "prepare" / "outputs.py"
PREPARED_NAMES = re.compile(r"(train|val)\.jsonl|report\.(json|txt)|prepare_config\.json|^(audio|codes)/")
PREPARED_DIRS = ("audio", "codes")


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


def module_name(path: Path) -> str:
    """qwen_tts_lit/data/prepare/ids.py -> qwen_tts_lit.data.prepare.ids (a package is its __init__.py)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, function-local imports included (``from pkg import mod`` is mod)."""
    names = {module_name(p): p for p in MODULES}
    graph = {}
    for name, path in names.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in names else node.module
                          for a in node.names}  # fmt: skip
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
        graph[name] = {m for m in found if m in names and m != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan): modules that import each other, however
    indirectly. A package importing its own submodules lazily (``__getattr__``) is not one: they never import it."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycle():
    """An import inside a function to dodge a circle still is one: modules that need each other are one job (or
    share a rule that wants its own module, as the id rules did)."""
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check works
    assert import_cycles(import_graph()) == []


def prepared_names_spelled(path: Path) -> list[str]:
    """Where a module spells a prepared-dataset name in code: a string (or f-string part) naming one of its files,
    or a path join ``folder / "audio"`` / ``folder / "codes"``. Docstrings and comments may name them."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.value) for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }  # fmt: skip
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if PREPARED_NAMES.search(node.value):
                found.append(f"line {node.lineno}: {node.value!r}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant):
            if node.right.value in PREPARED_DIRS:
                found.append(f"line {node.lineno}: / {node.right.value!r}")
    return found


def test_prepared_dataset_names_are_spelled_only_by_their_owner():
    spelled = [f"{p.relative_to(PACKAGE)} {where}" for p in MODULES if p != PREPARED_OWNER
               for where in prepared_names_spelled(p)]  # fmt: skip
    assert spelled == []
    assert prepared_names_spelled(PREPARED_OWNER), "the owner spells them: the check looks for the right thing"


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
