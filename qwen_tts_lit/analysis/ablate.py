"""``python -m qwen_tts_lit ablate``: run a grid's variants x seeds as ``fit`` commands, resume, tabulate them.

The grid format, its expansion into runs and their exact commands are :mod:`~qwen_tts_lit.analysis.grid`'s. Here:
each unfinished run is executed in a subprocess (output in ROOT/VARIANT/seed_S/ablate.log, exit status in
``ablate.json`` beside it); a finished run is skipped, so running the same command again resumes; then the tables
(ablation.md, .tex, .csv) are written from the run folders.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qwen_tts_lit.analysis.grid import OVERLAY_FILE, Grid, RunPlan, load_grid, plan_runs, run_overlay, variant_commands
from qwen_tts_lit.analysis.runs import load_runs, load_sentences, run_finished
from qwen_tts_lit.analysis.tables import ablation_table, table_csv, table_latex, table_markdown
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import shown, write_atomic
from qwen_tts_lit.runs.folder import ABLATE_STATUS_FILE as STATUS_FILE
from qwen_tts_lit.runs.folder import BEST_FILE, ROWS_FILE
from qwen_tts_lit.runs.records import best_path

LOG_FILE = "ablate.log"
TABLES = ("ablation.md", "ablation.tex", "ablation.csv")


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
    sentences = load_sentences(runs) if not runs.empty else None
    table = ablation_table(runs, sentences=sentences)  # the reference: the grid's first variant
    commands = variant_commands(plans)
    failed = runs[runs["status"] == "failed"] if not runs.empty else runs
    notes = [f"- failed: {r.variant} seed {r.seed} (exit {r.returncode}; log: {shown(Path(r.path))}/{LOG_FILE})"
             for r in failed.itertuples()]  # fmt: skip
    evaluated = not runs.empty and runs["has_eval"].any()
    header = [
        f"# Ablation: {grid.description or shown(grid.path)}",
        "",
        f"Produced by `{ablate_command}`. Each row: the (epoch, lora_scale) that each seed's {BEST_FILE} selected",
        "(mean ± sample std over seeds; n = finished runs) and its metrics there: the mean over seeds with its 95 %",
        "interval [low, high] over the held-out sentences (each sentence's figure averaged over the seeds; sentences",
        "= how many); Δ = the paired difference from the first variant (per seed and sentence, averaged over seeds",
        "per sentence) with its 95 % interval and the two-sided p of an exact sign-flip test over sentences",
        "(docs/uncertainty.md). frames/real = generated frames / the real recording's frames in that cell. The",
        f"command beside a row reproduces its runs (the seed_S/{OVERLAY_FILE} overlays it names are written by",
        "ablate, also with --dry_run).",
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
    missing = [p for p in plans if run_finished(p.folder) and not best_path(p.folder).is_file()]
    if missing:
        say(f"note: {len(missing)} finished run(s) have no {BEST_FILE} (no EvalSuite in trainer.callbacks?), e.g. "
            f"{shown(missing[0].folder)}: their table cells are empty")  # fmt: skip
    return failures
