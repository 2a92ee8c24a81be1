"""Run folders under a root (an ``ablate`` root or any folder of runs) and ablate's layout ROOT/VARIANT/seed_S: pure
paths, read by ``analysis`` (tables, notebooks) and ``listening`` (a test of variant against variant)."""

from __future__ import annotations

import re
from pathlib import Path

from qwen_tts_lit.runs.folder import RUN_MARKERS

SEED_DIR = re.compile(r"seed_(-?\d+)$")


def find_run_folders(root: Path) -> list[Path]:
    """Folders under ``root`` (root included) that look like run folders, outermost only, sorted."""
    found = sorted({marker.parent for name in RUN_MARKERS for marker in Path(root).rglob(name)})
    return [p for p in found if not any(q != p and q in p.parents for q in found)]


def variant_and_seed(path: Path, root: Path, config: dict) -> tuple[str, int | None]:
    """ablate's layout ROOT/VARIANT/seed_S -> (VARIANT, S); any other folder -> (its path under root, config seed)."""
    match = SEED_DIR.match(path.name)
    if match:
        variant = path.parent.relative_to(root).as_posix() if path.parent != root else root.name
        return variant, int(match.group(1))
    seed = config.get("seed_everything")
    variant = path.relative_to(root).as_posix() if path != root else path.name
    return variant, seed if isinstance(seed, int) else None
