"""``ablate``'s options (one documented field per flag); importing this module loads nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AblateRequest:
    """run a grid of config overlays x seeds as fit commands and write ablation tables (md, tex, csv)

    Each variant x seed runs as `python -m qwen_tts_lit fit --config ...` into ROOT/VARIANT/seed_S (sequentially;
    finished runs are skipped, a failed run does not stop the others), then ROOT/ablation.md, .tex and .csv get one
    row per variant: the selected epoch, scale, WER, SIM, rate_ratio, eos_fail as mean +- std over seeds, each with
    its command. Grid format: docs/ablations.md.
    """

    grid: Path
    """Grid YAML (base configs, variants -> overlays, seeds)."""
    root: Path
    """Output folder: ROOT/VARIANT/seed_S run folders and the tables."""
    seeds: tuple[int, ...] | None = None
    """Seeds to run (default: the grid's seeds)."""
    dry_run: bool = False
    """Print the fit commands of the unfinished runs (one per line), run none."""
