"""``ablate``'s options (one documented field per flag); importing this module loads nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qwen_tts_lit.analysis.launchers.options import SlurmOptions


@dataclass(frozen=True)
class AblateRequest:
    """run a grid of config overlays x seeds as fit commands and write ablation tables (md, tex, csv)

    Each variant x seed runs as `python -m qwen_tts_lit fit --config ...` into ROOT/VARIANT/seed_S (on this machine,
    one after another or --jobs N at once, or on SLURM as a job array with --launcher slurm; finished, queued and
    running runs are skipped, a run whose folder holds a checkpoint continues from it, a failed run does not stop
    the others), then ROOT/ablation.md, .tex and .csv get one row per variant: the selected epoch, scale, WER, SIM,
    rate_ratio, eos_fail as mean +- std over seeds, each with its command. Grid format: docs/ablations.md.
    """

    grid: Path
    """Grid YAML (base configs, variants -> overlays, seeds, an optional slurm section)."""
    root: Path
    """Output folder: ROOT/VARIANT/seed_S run folders and the tables."""
    seeds: tuple[int, ...] | None = None
    """Seeds to run (default: the grid's seeds)."""
    dry_run: bool = False
    """Print the fit commands of the unfinished runs (one per line), run none."""
    status: bool = False
    """Print each run's state (not submitted, queued, running, done, failed: with its log's last line), run none."""
    launcher: str = "local"
    """local (this machine) or slurm (a submitit job array, one run per task)."""
    jobs: int = 1
    """local: this many runs at once, each pinned to its own GPU when there are GPUs."""
    wait: bool = False
    """slurm: wait until every submitted task has ended, then write the tables (else write them from what is done)."""
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    """SLURM settings of each task; each one given here overrides the grid file's slurm section."""
