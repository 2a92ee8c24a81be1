"""The grid format of ``ablate``: a grid file parsed and checked, expanded into variants x seeds, and the exact ``fit``
command (and per-run overlay) of each run. Pure: it runs nothing (:mod:`~qwen_tts_lit.analysis.ablate` does).

A grid file (YAML; relative paths are relative to the grid file)::

    description: Does the double shift explain the epoch-10 / scale-0.3 recipe?   # optional, heads the tables
    base: [../recipe.yaml, ../models/qwen3_tts_1.7b.yaml]   # one config or a list, composed first
    variants:                                      # name -> overlays composed on the base ([] = the base alone)
      corrected: []
      upstream_talker_shift: [upstream_talker_shift.yaml]
    seeds: [0, 1, 2]                               # optional (default [0]); --seeds overrides
    args: [--trainer.max_epochs=2]                 # optional: extra fit arguments for every run
    slurm: {partition: gpu, gpus_per_task: 1, time: 240}   # optional: ablate --launcher slurm's settings

Each run lands in ROOT/VARIANT/seed_S/ through a small overlay written there (``ablate.yaml``: the logger list,
default_root_dir and both seeds), so each run is exactly ``python -m qwen_tts_lit fit --config BASE... --config
OVERLAY... --config ROOT/VARIANT/seed_S/ablate.yaml ARGS``.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qwen_tts_lit.analysis.launchers.options import option_problem
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import shown
from qwen_tts_lit.runs.folder import ABLATE_OVERLAY_FILE as OVERLAY_FILE

GRID_KEYS = ("description", "base", "variants", "seeds", "args", "slurm")
VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # a folder name on every OS, no shell quoting needed
# The loggers of every ablation run: CSV first (analysis reads its metrics; EvalSuite writes into its log_dir).
LOGGERS = ("lightning.pytorch.loggers.CSVLogger", "lightning.pytorch.loggers.TensorBoardLogger")


@dataclass(frozen=True)
class Grid:
    """A parsed grid file."""

    path: Path
    """The grid file."""
    base: tuple[Path, ...]
    """Configs composed first, in order."""
    variants: dict[str, tuple[Path, ...]]
    """Variant name -> overlays composed on the base."""
    seeds: tuple[int, ...]
    """Seeds of every variant."""
    args: tuple[str, ...]
    """Extra fit arguments appended to every command."""
    description: str
    """Free text for the table header."""
    slurm: dict[str, Any] = field(default_factory=dict)
    """The ``slurm:`` section: SlurmOptions fields (``--launcher slurm``; the command line overrides each)."""


@dataclass(frozen=True)
class RunPlan:
    """One variant x seed: where it goes and the fit arguments that produce it."""

    variant: str
    """Variant name (the folder under the root)."""
    seed: int
    """seed_everything and model.seed."""
    folder: Path
    """The run folder ROOT/VARIANT/seed_S."""
    fit_args: tuple[str, ...]
    """Arguments after ``python -m qwen_tts_lit``."""

    @property
    def command(self) -> str:
        """The exact shell command of this run."""
        return shlex.join(["python", "-m", "qwen_tts_lit", *self.fit_args])


def key_lines(node: yaml.Node, key: tuple = ()) -> dict[tuple, int]:
    """YAML line (1-based) of every key path in a composed document, for error messages."""
    lines = {key: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for name, value in node.value:
            lines |= key_lines(value, (*key, name.value))
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            lines |= key_lines(value, (*key, index))
    return lines


def field_name(key: tuple) -> str:
    """('variants', 'x', 0) -> 'variants.x[0]'."""
    return "".join(f"[{k}]" if isinstance(k, int) else (f".{k}" if i else k) for i, k in enumerate(key))


def distinct_ints(values: Any) -> bool:
    """A non-empty list of distinct integers (bool is not an integer here)."""
    return (
        isinstance(values, list)
        and bool(values)
        and all(type(v) is int for v in values)
        and len(set(values)) == len(values)
    )


def load_grid(path: Path | str) -> Grid:
    """Parse and check a grid file; a problem raises UserError naming the file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        lines, data = key_lines(yaml.compose(text) or yaml.ScalarNode("", "")), yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"--grid {path}: cannot read it ({error})") from error
    except yaml.YAMLError as error:
        raise UserError(f"--grid {path}: not valid YAML ({error})") from error

    def fail(key: tuple, problem: str) -> UserError:
        line = lines.get(key, lines.get(key[:-1], 1))
        return UserError(f"{path}:{line}: {field_name(key) or 'grid'}: {problem}")

    def config_file(value: Any, key: tuple) -> Path:
        if not isinstance(value, str) or not value:
            raise fail(key, f"expected a config file path, got {value!r}")
        file = Path(os.path.normpath(path.parent.absolute() / value))  # an absolute value stays itself
        if not file.is_file():
            raise fail(key, f"no such file: {value} (relative paths are relative to the grid file)")
        return file

    def files(value: Any, key: tuple, allow_empty: bool) -> tuple[Path, ...]:
        items = [value] if isinstance(value, str) else ([] if value is None and allow_empty else value)
        if not isinstance(items, list) or (not items and not allow_empty):
            raise fail(key, f"expected a config file or a {'' if allow_empty else 'non-empty '}list of them")
        return tuple(config_file(item, (*key, i)) for i, item in enumerate(items))

    if not isinstance(data, dict):
        raise fail((), f"expected a mapping with keys {', '.join(GRID_KEYS)}")
    for key in data:
        if key not in GRID_KEYS:
            raise fail((key,), f"unknown key (expected one of {', '.join(GRID_KEYS)})")
    for key in ("base", "variants"):
        if key not in data:
            raise fail((), f"missing key {key!r}")
    variants = data["variants"]
    if not isinstance(variants, dict) or not variants:
        raise fail(("variants",), "expected a non-empty mapping: variant name -> list of overlay configs")
    for name in variants:
        if not isinstance(name, str) or not VARIANT_NAME.match(name):
            raise fail(("variants", name), "a variant name is a folder name: letters, digits, _ . + - only")
    seeds = data.get("seeds", [0])
    if not distinct_ints(seeds):
        raise fail(("seeds",), f"expected a non-empty list of distinct integers, got {seeds!r}")
    args = data.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise fail(("args",), f"expected a list of strings (fit arguments), got {args!r}")
    slurm = data.get("slurm") or {}
    if not isinstance(slurm, dict):
        raise fail(("slurm",), "expected a mapping of SLURM settings (partition, gpus_per_task, time, ...)")
    for key, value in slurm.items():
        if problem := option_problem(key, value):
            raise fail(("slurm", key), problem)
    return Grid(
        path=path,
        base=files(data["base"], ("base",), allow_empty=False),
        variants={name: files(value, ("variants", name), allow_empty=True) for name, value in variants.items()},
        seeds=tuple(seeds),
        args=tuple(args),
        description=str(data.get("description") or ""),
        slurm=dict(slurm),
    )


def plan_runs(grid: Grid, root: Path, seeds: Sequence[int] | None = None) -> list[RunPlan]:
    """Every variant x seed, variants in grid order, seeds in the given order."""
    plans = []
    for variant, overlays in grid.variants.items():
        for seed in seeds if seeds is not None else grid.seeds:
            folder = root / variant / f"seed_{seed}"
            configs = [*grid.base, *overlays, folder / OVERLAY_FILE]
            fit_args = ("fit", *(a for c in configs for a in ("--config", shown(c))), *grid.args)
            plans.append(RunPlan(variant, seed, folder, fit_args))
    return plans


def run_overlay(plan: RunPlan) -> str:
    """The per-run overlay: every logger (a list replaces the base's whole list) and default_root_dir point into
    the run folder (CSV first, so ``log_dir`` is ROOT/VARIANT/seed_S), and both seeds are the run's seed."""
    save_dir, name, version = shown(plan.folder.parent.parent), plan.folder.parent.name, plan.folder.name
    loggers = [
        {"class_path": c, "init_args": {"save_dir": save_dir, "name": name, "version": version}} for c in LOGGERS
    ]
    overlay = {
        "seed_everything": plan.seed,
        "trainer": {"default_root_dir": shown(plan.folder), "logger": loggers},
        "model": {"seed": plan.seed},
    }
    header = f"# Written by `python -m qwen_tts_lit ablate`: run folder and seed of {plan.variant}, seed {plan.seed}.\n"
    return header + yaml.safe_dump(overlay, sort_keys=False)


def variant_commands(plans: Sequence[RunPlan]) -> dict[str, str]:
    """variant -> one shell line reproducing all its seeds (a loop over the seed folders' overlays)."""
    commands = {}
    for variant in dict.fromkeys(p.variant for p in plans):
        runs = [p for p in plans if p.variant == variant]
        if len(runs) == 1:
            commands[variant] = runs[0].command
            continue
        marker = f"seed_{runs[0].seed}/{OVERLAY_FILE}"
        command = runs[0].command.replace(marker, f"seed_$s/{OVERLAY_FILE}")
        commands[variant] = f"for s in {' '.join(str(p.seed) for p in runs)}; do {command}; done"
    return commands
