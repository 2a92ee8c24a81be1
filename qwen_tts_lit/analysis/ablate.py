"""``python -m qwen_tts_lit ablate``: run a grid's variants x seeds as ``fit`` commands through a launcher, resume,
report where each run stands, tabulate them.

The grid format, its expansion into runs and their exact commands are :mod:`~qwen_tts_lit.analysis.grid`'s; how a
run is started (this machine, N at once, SLURM) is :mod:`~qwen_tts_lit.analysis.launchers`'. Here: which runs to
start (not finished, not queued or running; a failed one again, continuing from its checkpoint if it saved one),
``--status``, and the tables (ablation.md, .tex, .csv) from the runs that are done, naming those that are not.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from qwen_tts_lit.analysis.grid import OVERLAY_FILE, Grid, RunPlan, load_grid, plan_runs, run_overlay, variant_commands
from qwen_tts_lit.analysis.launchers import LAUNCHERS, Launcher, LocalLauncher, SlurmLauncher
from qwen_tts_lit.analysis.launchers.options import SlurmOptions, merged
from qwen_tts_lit.analysis.launchers.states import RunState, run_states
from qwen_tts_lit.analysis.launchers.task import LOG_FILE
from qwen_tts_lit.analysis.runs import load_runs, load_sentences, run_finished
from qwen_tts_lit.analysis.tables import ablation_table, table_csv, table_latex, table_markdown
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import shown, write_atomic
from qwen_tts_lit.runs.checkpoints import resume_checkpoint
from qwen_tts_lit.runs.folder import ABLATE_STATUS_FILE as STATUS_FILE
from qwen_tts_lit.runs.folder import BEST_FILE, ROWS_FILE
from qwen_tts_lit.runs.records import best_path

TABLES = ("ablation.md", "ablation.tex", "ablation.csv")


def prepare_folder(plan: RunPlan, fresh: bool) -> bool:
    """Write the run's overlay; with ``fresh``, an earlier attempt that saved a checkpoint is kept to be continued
    (its exit status removed) and one that saved none is removed (stale rows would mix in). True: it continues."""
    resumes = fresh and plan.folder.is_dir() and resume_checkpoint(plan.folder) is not None
    if resumes:
        (plan.folder / STATUS_FILE).unlink(missing_ok=True)
    elif fresh and plan.folder.exists():
        shutil.rmtree(plan.folder)
    plan.folder.mkdir(parents=True, exist_ok=True)
    write_atomic(plan.folder / OVERLAY_FILE, run_overlay(plan))
    return resumes


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""


def write_tables(
    grid: Grid, root: Path, plans: Sequence[RunPlan], ablate_command: str, states: Sequence[RunState] | None = None
) -> list[Path]:
    """ablation.md / .tex / .csv under ``root``: one row per variant over the planned runs, each with its command;
    the Markdown names the runs that are missing (not done, not failed) and their state."""
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
    missing = [(p, s) for p, s in zip(plans, states or [], strict=False) if s.state not in ("done", "failed")]
    if missing:
        notes.append(f"- missing ({len(missing)} of {len(plans)} runs not done yet; the rows above are over the "
                     "finished runs only):")  # fmt: skip
        notes += [f"  - {p.variant} seed {p.seed}: {s.state}{f' ({s.detail})' if s.detail else ''}" for p, s in missing]
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


def launcher_of(name: str, jobs: int, slurm: SlurmOptions, wait: bool) -> Launcher:
    """The launcher named on the command line (its options checked here, once)."""
    if name not in LAUNCHERS:
        raise UserError(f"--launcher {name}: expected one of {', '.join(LAUNCHERS)}")
    if jobs < 1:
        raise UserError(f"--jobs {jobs}: expected a whole number >= 1")
    if name == "slurm":
        if jobs != 1:
            raise UserError("--jobs: local only; on SLURM every run is its own task (--slurm.array_parallelism "
                            "limits how many run at once)")  # fmt: skip
        return SlurmLauncher(slurm, wait=wait, poll_s=float(os.environ.get("QWEN_TTS_LIT_SLURM_POLL_S", 10)))
    return LocalLauncher(jobs)


def status_lines(plans: Sequence[RunPlan], states: Sequence[RunState]) -> list[str]:
    """``--status``: one line per run (variant, seed, state, detail, log), and the log's last line under a failed or
    running one."""
    lines = []
    for plan, state in zip(plans, states, strict=True):
        where = f" [{state.detail}]" if state.detail else ""
        log = f"  log: {shown(state.log)}" if state.log is not None else ""
        lines.append(f"{plan.variant} seed {plan.seed}: {state.state}{where}{log}")
        if state.state in ("failed", "running") and state.last_line:
            lines.append(f"    {state.last_line}")
    counts = {name: sum(s.state == name for s in states) for name in dict.fromkeys(s.state for s in states)}
    return [*lines, ", ".join(f"{n} {name}" for name, n in counts.items())]


def ablate(
    grid_path: Path | str,
    root: Path | str,
    seeds: Sequence[int] | None = None,
    dry_run: bool = False,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    status: bool = False,
    launcher: str = "local",
    jobs: int = 1,
    slurm: SlurmOptions | None = None,
    wait: bool = False,
) -> int:
    """Start (or, with ``dry_run``, print) every run that is not done, queued or running through the launcher, then
    write the tables from what is done; with ``status`` only report each run's state. Return #failed."""
    grid, root = load_grid(grid_path), Path(root)
    if seeds is not None and len(set(seeds)) < len(seeds):
        raise UserError(f"--seeds: repeated seed in {list(seeds)}")
    chosen = launcher_of(launcher, jobs, merged(grid.slurm, slurm or SlurmOptions()), wait)
    plans = plan_runs(grid, root, seeds)
    states = run_states([p.folder for p in plans], [run_finished(p.folder) for p in plans])
    if status:
        for line in status_lines(plans, states):
            print(line, flush=True)
        return 0  # a report: the failed runs are in it
    todo = [p for p, s in zip(plans, states, strict=True) if s.state not in ("done", "queued", "running")]
    active = sum(s.active for s in states)
    finished = sum(s.state == "done" for s in states)
    say(f"ablate: {len(plans)} runs ({len(grid.variants)} variants x {len(plans) // len(grid.variants)} seeds), "
        f"{finished} finished and skipped, " + (f"{active} queued or running, " if active else "")
        + f"{len(todo)} to run")  # fmt: skip
    if dry_run:
        for plan in todo:
            prepare_folder(plan, fresh=False)  # the printed commands need their overlay; nothing else is touched
            print(plan.command, flush=True)
        return 0
    if todo:
        cwd = os.getcwd()
        for plan in todo:
            if prepare_folder(plan, fresh=True):
                say(f"{plan.variant} seed {plan.seed}: continues from {shown(resume_checkpoint(plan.folder))} "
                    f"(remove {shown(plan.folder)} to start it afresh)")  # fmt: skip
        tasks = [chosen.task(shown(p.folder), p.fit_args, cwd) for p in todo]
        chosen.submit(root, tasks, [p.command for p in todo], say)
        states = run_states([p.folder for p in plans], [run_finished(p.folder) for p in plans])
    command = shlex.join(["python", "-m", "qwen_tts_lit", "ablate", "--grid", shown(grid.path), "--root", shown(root),
                          *(["--seeds", *map(str, seeds)] if seeds is not None else [])])  # fmt: skip
    for path in write_tables(grid, root, plans, command, states):
        say(f"wrote {shown(path)}")
    for plan, state in zip(plans, states, strict=True):
        if state.state == "failed" and plan in todo:
            say(f"{plan.variant} seed {plan.seed}: FAILED ({state.detail}), log {shown(plan.folder / LOG_FILE)}:\n"
                f"{tail(plan.folder / LOG_FILE)}")  # fmt: skip
    waiting = [s for s in states if s.active]
    if waiting:
        say(f"{len(waiting)} run(s) queued or running: the tables cover the finished ones; see where each stands "
            f"with `{command} --status true`, and run the same ablate again to tabulate them")  # fmt: skip
    missing = [p for p in plans if run_finished(p.folder) and not best_path(p.folder).is_file()]
    if missing:
        say(f"note: {len(missing)} finished run(s) have no {BEST_FILE} (no EvalSuite in trainer.callbacks?), e.g. "
            f"{shown(missing[0].folder)}: their table cells are empty")  # fmt: skip
    return sum(s.state == "failed" for p, s in zip(plans, states, strict=True) if p in todo)
