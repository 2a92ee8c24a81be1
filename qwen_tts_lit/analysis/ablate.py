"""``python -m qwen_tts_lit ablate``: run a grid of config overlays x seeds as ``fit`` commands and tabulate them.

A grid file (YAML; relative paths are relative to the grid file)::

    description: Does the double shift explain the epoch-10 / scale-0.3 recipe?   # optional, heads the tables
    base: [../recipe.yaml, ../models/qwen3_tts_1.7b.yaml]   # one config or a list, composed first
    variants:                                      # name -> overlays composed on the base ([] = the base alone)
      corrected: []
      upstream_talker_shift: [upstream_talker_shift.yaml]
    seeds: [0, 1, 2]                               # optional (default [0]); --seeds overrides
    args: [--trainer.max_epochs=2]                 # optional: extra fit arguments for every run

Each run lands in ROOT/VARIANT/seed_S/ through a small overlay written there (``ablate.yaml``: the logger list,
default_root_dir and both seeds), so each run is exactly ``python -m qwen_tts_lit fit --config BASE... --config
OVERLAY... --config ROOT/VARIANT/seed_S/ablate.yaml ARGS``. ``ablate.json`` beside it records the exit status.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from qwen_tts_lit.analysis.runs import load_runs, run_finished
from qwen_tts_lit.analysis.tables import ablation_table, table_csv, table_latex, table_markdown
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import shown, write_atomic
from qwen_tts_lit.runs.folder import ABLATE_OVERLAY_FILE as OVERLAY_FILE
from qwen_tts_lit.runs.folder import ABLATE_STATUS_FILE as STATUS_FILE
from qwen_tts_lit.runs.folder import BEST_FILE, ROWS_FILE

GRID_KEYS = ("description", "base", "variants", "seeds", "args")
VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # a folder name on every OS, no shell quoting needed
LOG_FILE = "ablate.log"
TABLES = ("ablation.md", "ablation.tex", "ablation.csv")
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
    return Grid(
        path=path,
        base=files(data["base"], ("base",), allow_empty=False),
        variants={name: files(value, ("variants", name), allow_empty=True) for name, value in variants.items()},
        seeds=tuple(seeds),
        args=tuple(args),
        description=str(data.get("description") or ""),
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


def execute(plan: RunPlan) -> dict[str, Any]:
    """Run one plan in a subprocess (output in ablate.log), then record its status in ablate.json."""
    started = time.monotonic()
    with open(plan.folder / LOG_FILE, "w", encoding="utf-8") as log:
        log.write(f"$ {plan.command}\n")
        log.flush()
        returncode = subprocess.run(
            [sys.executable, "-m", "qwen_tts_lit", *plan.fit_args], stdout=log, stderr=subprocess.STDOUT
        ).returncode
    status = {
        "status": "done" if returncode == 0 else "failed",
        "returncode": returncode,
        "seconds": round(time.monotonic() - started, 1),
        "command": plan.command,
    }
    write_atomic(plan.folder / STATUS_FILE, json.dumps(status, indent=2) + "\n")
    return status


def prepare_folder(plan: RunPlan, fresh: bool) -> None:
    """Write the run's overlay; ``fresh`` first removes an unfinished attempt (stale rows/checkpoints would mix in)."""
    if fresh and plan.folder.exists():
        shutil.rmtree(plan.folder)
    plan.folder.mkdir(parents=True, exist_ok=True)
    write_atomic(plan.folder / OVERLAY_FILE, run_overlay(plan))


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


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""


def write_tables(grid: Grid, root: Path, plans: Sequence[RunPlan], ablate_command: str) -> list[Path]:
    """ablation.md / .tex / .csv under ``root``: one row per variant over the planned runs, each with its command."""
    runs = load_runs(root)
    planned = {shown(p.folder) for p in plans}
    runs = runs[runs["path"].map(lambda p: shown(Path(p)) in planned)] if not runs.empty else runs
    order = {variant: i for i, variant in enumerate(grid.variants)}
    runs = runs.sort_values(["variant", "seed"], key=lambda c: c.map(order) if c.name == "variant" else c)
    table = ablation_table(runs)
    commands = variant_commands(plans)
    failed = runs[runs["status"] == "failed"] if not runs.empty else runs
    notes = [f"- failed: {r.variant} seed {r.seed} (exit {r.returncode}; log: {shown(Path(r.path))}/{LOG_FILE})"
             for r in failed.itertuples()]  # fmt: skip
    evaluated = not runs.empty and runs["has_eval"].any()
    header = [
        f"# Ablation: {grid.description or shown(grid.path)}",
        "",
        f"Produced by `{ablate_command}`. Each row: the (epoch, lora_scale) that each seed's {BEST_FILE} selected",
        "and its metrics there, as mean ± sample std over seeds (n = finished runs); frames/real = generated frames",
        "/ the real recording's frames in that cell. The command beside a row reproduces its runs (the",
        f"seed_S/{OVERLAY_FILE} overlays it names are written by ablate, also with --dry_run).",
    ]
    if not evaluated:
        header += ["", f"No run has evaluation outputs ({BEST_FILE}, {ROWS_FILE}): is EvalSuite in trainer.callbacks?"]
    markdown = (
        "\n".join(header) + "\n\n" + table_markdown(table, commands) + ("\n" + "\n".join(notes) + "\n" if notes else "")
    )
    latex = f"% {ablate_command}\n" + table_latex(table, commands)
    outputs = [markdown, latex, table_csv(table, commands)]
    return [write_atomic(root / name, text) for name, text in zip(TABLES, outputs, strict=True)]


def ablate(
    grid_path: Path | str,
    root: Path | str,
    seeds: Sequence[int] | None = None,
    dry_run: bool = False,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> int:
    """Run (or, with ``dry_run``, print) every unfinished variant x seed, then write the tables; return #failed."""
    grid, root = load_grid(grid_path), Path(root)
    if seeds is not None and len(set(seeds)) < len(seeds):
        raise UserError(f"--seeds: repeated seed in {list(seeds)}")
    plans = plan_runs(grid, root, seeds)
    todo = [p for p in plans if not run_finished(p.folder)]
    say(f"ablate: {len(plans)} runs ({len(grid.variants)} variants x {len(plans) // len(grid.variants)} seeds), "
        f"{len(plans) - len(todo)} finished and skipped, {len(todo)} to run")  # fmt: skip
    if dry_run:
        for plan in todo:
            prepare_folder(plan, fresh=False)  # the printed commands need their overlay; nothing else is touched
            print(plan.command, flush=True)
        return 0
    failures = 0
    for index, plan in enumerate(todo, 1):
        prepare_folder(plan, fresh=True)
        say(f"[{index}/{len(todo)}] {plan.variant} seed {plan.seed}: {plan.command}")
        status = execute(plan)
        if status["status"] == "done":
            say(f"[{index}/{len(todo)}] {plan.variant} seed {plan.seed}: done in {status['seconds']:.0f} s")
        else:
            failures += 1
            log = plan.folder / LOG_FILE
            say(f"[{index}/{len(todo)}] {plan.variant} seed {plan.seed}: FAILED (exit {status['returncode']}), "
                f"log {shown(log)}:\n{tail(log)}")  # fmt: skip
    command = shlex.join(["python", "-m", "qwen_tts_lit", "ablate", "--grid", shown(grid.path), "--root", shown(root),
                          *(["--seeds", *map(str, seeds)] if seeds is not None else [])])  # fmt: skip
    for path in write_tables(grid, root, plans, command):
        say(f"wrote {shown(path)}")
    missing = [p for p in plans if run_finished(p.folder) and not (p.folder / BEST_FILE).is_file()]
    if missing:
        say(f"note: {len(missing)} finished run(s) have no {BEST_FILE} (no EvalSuite in trainer.callbacks?), e.g. "
            f"{shown(missing[0].folder)}: their table cells are empty")  # fmt: skip
    return failures
