"""Read finished run folders into pandas, plot them, and build ablation tables. No Lightning: works in any notebook.

A run folder (``runs/NAME/version_N`` or ``ROOT/VARIANT/seed_S`` from ``ablate``) holds ``config.yaml``,
``metrics.csv``, ``eval/rows.jsonl`` (one row per synthesized utterance) and ``best.json`` (the chosen epoch x
lora_scale). ``ablate`` adds ``ablate.yaml`` (the run's folder and seed) and ``ablate.json`` (exit status, command).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from qwen_tts_lit.files import write_atomic
from qwen_tts_lit.metrics.selection import aggregate, select_best

__all__ = [
    "Run",
    "ablation_table",
    "cells",
    "latest_run",
    "load_cells",
    "load_metrics",
    "load_run",
    "load_runs",
    "plot_ablation",
    "plot_heatmap",
    "plot_metric_vs_epoch",
    "plot_variants_vs_epoch",
    "run_finished",
    "select_best",
    "table_csv",
    "table_latex",
    "table_markdown",
    "write_atomic",
]

ROWS_FILE, BEST_FILE, STATUS_FILE, OVERLAY_FILE = "eval/rows.jsonl", "best.json", "ablate.json", "ablate.yaml"
RUN_MARKERS = ("config.yaml", "metrics.csv", BEST_FILE, STATUS_FILE, OVERLAY_FILE)
SEED_DIR = re.compile(r"seed_(-?\d+)$")
# The ablation table's default columns: what was selected and how it scored (best.json), plus frames vs the real take.
TABLE_METRICS = ("epoch", "lora_scale", "wer", "spk_sim", "rate_ratio", "eos_fail", "frame_ratio")
BEST_METRICS = ("wer", "cer", "spk_sim", "spk_sim_model", "rate_ratio", "rate_error", "words_per_second", "eos_fail")
LABELS = {"lora_scale": "scale", "wer": "WER", "spk_sim": "SIM", "eos_fail": "eos_fail", "frame_ratio": "frames/real"}
DIGITS = {"epoch": 1, "lora_scale": 2}  # everything else: 3


@dataclass(frozen=True)
class Run:
    """One run folder, loaded."""

    path: Path
    """The run folder."""
    config: dict
    """config.yaml as written by LightningCLI (empty when missing)."""
    metrics: pd.DataFrame
    """metrics.csv, one row per epoch (see :func:`load_metrics`)."""
    rows: pd.DataFrame
    """eval/rows.jsonl, one row per synthesized utterance, plus frame_ratio = frames / real_frames."""
    best: dict | None
    """best.json, or None when the run has no evaluation."""
    status: dict | None
    """ablate.json (status, returncode, seconds, command), or None when the run was not started by ablate."""

    @property
    def cells(self) -> pd.DataFrame:
        """One row per (epoch, lora_scale) with the mean metrics the selection rule sees."""
        return cells(self.rows)

    def best_rows(self) -> pd.DataFrame:
        """The evaluation rows of the chosen (epoch, lora_scale) cell; empty without best.json."""
        if self.best is None or self.rows.empty:
            return self.rows.iloc[0:0]
        chosen = (self.rows["epoch"] == self.best["epoch"]) & (self.rows["lora_scale"] == self.best["lora_scale"])
        return self.rows[chosen]


def read_json(path: Path) -> dict | None:
    """A JSON file as a dict, or None when it is missing."""
    return json.loads(path.read_text()) if path.is_file() else None


def load_metrics(path: Path | str, per_epoch: bool = True) -> pd.DataFrame:
    """metrics.csv as a DataFrame: raw (one row per log call) or one row per epoch.

    Per epoch, a column logged once (val/*, */loss_epoch) keeps its value and a column logged every step
    (train/loss_step, the learning rate) is averaged; ``step`` is the epoch's last global step. Rows without an
    epoch (LearningRateMonitor logs none) get the epoch of their step.
    """
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame()
    raw = pd.read_csv(path)
    if not per_epoch or raw.empty or "epoch" not in raw:
        return raw
    epoch_of_step = raw.dropna(subset=["epoch"]).groupby("step")["epoch"].min()
    raw["epoch"] = raw["epoch"].fillna(raw["step"].map(epoch_of_step)).ffill().bfill()
    grouped = raw.groupby("epoch")
    merged = grouped.mean(numeric_only=True)  # step-level columns: the epoch's mean
    merged["step"] = grouped["step"].max()
    once = grouped.count().max() <= 1
    for column in once[once].index.drop("step", errors="ignore"):
        merged[column] = grouped[column].last()
    merged.index = merged.index.astype(int)
    return merged.reset_index()


def load_rows(path: Path) -> pd.DataFrame:
    """eval/rows.jsonl as a DataFrame (empty when missing), with frame_ratio = frames / real_frames per row."""
    if not path.is_file():
        return pd.DataFrame(columns=["epoch", "lora_scale", "utt_id"])
    rows = pd.read_json(path, lines=True)
    if {"frames", "real_frames"} <= set(rows.columns):
        rows["frame_ratio"] = rows["frames"] / rows["real_frames"].where(rows["real_frames"] > 0)
    return rows


def load_run(path: Path | str) -> Run:
    """Load one run folder: config, per-epoch metrics, evaluation rows, best.json and ablate's status."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such run folder")
    config = yaml.safe_load((path / "config.yaml").read_text()) if (path / "config.yaml").is_file() else {}
    return Run(
        path=path,
        config=config or {},
        metrics=load_metrics(path / "metrics.csv"),
        rows=load_rows(path / ROWS_FILE),
        best=read_json(path / BEST_FILE),
        status=read_json(path / STATUS_FILE),
    )


def cells(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (epoch, lora_scale): the selection rule's aggregate plus mean frames, real_frames, frame_ratio."""
    if rows.empty:
        return pd.DataFrame(columns=["epoch", "lora_scale", "n"])
    table = pd.DataFrame(aggregate(rows))
    extra = [c for c in ("frames", "real_frames", "frame_ratio") if c in rows.columns]
    if extra:
        means = rows.groupby(["epoch", "lora_scale"])[extra].mean().reset_index()
        table = table.merge(means, on=["epoch", "lora_scale"], how="left")
    return table


def latest_run(root: Path | str) -> Path | None:
    """The newest ``version_N`` folder under ``root`` (e.g. runs/demo), or None when there is none."""
    versions = [p for p in Path(root).glob("version_*") if p.name.split("_")[-1].isdigit()]
    return max(versions, key=lambda p: int(p.name.split("_")[-1])) if versions else None


def max_epochs(config: dict) -> int | None:
    """trainer.max_epochs from a resolved config, or None."""
    value = (config.get("trainer") or {}).get("max_epochs")
    return int(value) if isinstance(value, int) and value > 0 else None


def run_finished(path: Path | str) -> bool:
    """True when ablate recorded a successful exit, or (a run started elsewhere, e.g. by a cluster scheduler) when
    best.json exists and the evaluation reached the config's last epoch (EvalSuite rewrites best.json every epoch)."""
    path = Path(path)
    status = read_json(path / STATUS_FILE)
    if status is not None:
        return status.get("status") == "done"
    if not (path / BEST_FILE).is_file() or not (path / "config.yaml").is_file():
        return False
    last = max_epochs(yaml.safe_load((path / "config.yaml").read_text()) or {})
    rows = load_rows(path / ROWS_FILE)
    return last is None or (not rows.empty and int(rows["epoch"].max()) == last - 1)


def run_summary(run: Run) -> dict[str, Any]:
    """The chosen cell of a run as flat columns: epoch, lora_scale, best.json's metrics, frame_ratio, status."""
    status = run.status or {}
    summary: dict[str, Any] = {
        "status": status.get("status", "done" if run_finished(run.path) else "incomplete"),
        "returncode": status.get("returncode"),
        "seconds": status.get("seconds"),
        "command": status.get("command"),
        "has_eval": not run.rows.empty,
        "best_source": "best.json" if run.best is not None else None,
    }
    best = run.best
    if best is None and not run.rows.empty:  # e.g. killed before best.json was renamed in: same rule, from the rows
        best, summary["best_source"] = select_best(run.rows), "rows"
    summary |= {"epoch": math.nan, "lora_scale": math.nan, "passed_filters": None}
    summary |= {name: math.nan for name in (*BEST_METRICS, "frame_ratio")}
    if best is not None:
        summary |= {"epoch": best["epoch"], "lora_scale": best["lora_scale"], "passed_filters": best["passed_filters"]}
        summary |= {k: (math.nan if v is None else v) for k, v in best["metrics"].items() if k in BEST_METRICS}
        chosen = run.best_rows() if run.best is not None else run.rows[
            (run.rows["epoch"] == best["epoch"]) & (run.rows["lora_scale"] == best["lora_scale"])
        ]  # fmt: skip
        if "frame_ratio" in chosen:
            summary["frame_ratio"] = chosen["frame_ratio"].mean()
    return summary


def find_run_folders(root: Path) -> list[Path]:
    """Folders under ``root`` (root included) that look like run folders, outermost only, sorted."""
    found = sorted({marker.parent for name in RUN_MARKERS for marker in root.rglob(name)})
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


def load_runs(root: Path | str) -> pd.DataFrame:
    """One row per run folder under ``root``: variant, seed, path, status, and the chosen cell's metrics."""
    root = Path(root)
    records = []
    for path in find_run_folders(root):
        run = load_run(path)
        variant, seed = variant_and_seed(path, root, run.config)
        records.append({"variant": variant, "seed": seed, "path": str(path)} | run_summary(run))
    return pd.DataFrame(records, columns=None if records else ["variant", "seed", "path", "status"])


def load_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """Every (epoch, lora_scale) cell of every run in a :func:`load_runs` frame, with its variant and seed."""
    frames = [
        cells(load_rows(Path(r.path) / ROWS_FILE)).assign(variant=r.variant, seed=r.seed) for r in runs.itertuples()
    ]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["variant", "seed", "epoch"])


def ablation_table(
    runs: pd.DataFrame, by: str | Sequence[str] = "variant", metrics: Sequence[str] = TABLE_METRICS
) -> pd.DataFrame:
    """Mean and sample std (ddof=1; NaN for one seed) of each metric over the runs of each group.

    With a status column (from :func:`load_runs`) only finished runs count: n = status "done", failed = status
    "failed"; unfinished ones are left out. Then ``<metric>_mean`` / ``<metric>_std`` per metric, missing values
    skipped. Groups keep their first-seen order.
    """
    keys = [by] if isinstance(by, str) else list(by)
    everything = pd.Series(True, index=runs.index)
    done = runs["status"].eq("done") if "status" in runs else everything
    failed = runs["status"].eq("failed") if "status" in runs else ~everything
    order = runs.groupby(keys, sort=False).size().index
    table = pd.DataFrame(index=order)
    table["n"] = runs[done].groupby(keys, sort=False).size().reindex(order, fill_value=0)
    table["failed"] = runs[failed].groupby(keys, sort=False).size().reindex(order, fill_value=0)
    for name in metrics:
        values = runs[name].astype(float) if name in runs else pd.Series(math.nan, index=runs.index)
        grouped = runs[done].assign(_value=values[done]).groupby(keys, sort=False)["_value"]
        table[f"{name}_mean"] = grouped.mean().reindex(order)
        table[f"{name}_std"] = grouped.std(ddof=1).reindex(order)
    return table


def mean_std(mean: float, std: float, digits: int, pm: str = " ± ") -> str:
    """'0.123 ± 0.004'; only the mean when std is undefined (one seed); '–' when there is no value."""
    if mean is None or math.isnan(mean):
        return "–"
    if std is None or math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f}{pm}{std:.{digits}f}"


def metric_names(table: pd.DataFrame) -> list[str]:
    """The metrics of an :func:`ablation_table`, in column order."""
    return [c[: -len("_mean")] for c in table.columns if c.endswith("_mean")]


def formatted(table: pd.DataFrame, pm: str = " ± ") -> pd.DataFrame:
    """The table as display strings: group key(s), n, one 'mean ± std' column per metric."""
    out = pd.DataFrame(index=table.index)
    out["n"] = table["n"].astype(str) + table["failed"].map(lambda f: f" ({f} failed)" if f else "")
    for name in metric_names(table):
        digits = DIGITS.get(name, 3)
        out[LABELS.get(name, name)] = [
            mean_std(m, s, digits, pm) for m, s in zip(table[f"{name}_mean"], table[f"{name}_std"], strict=True)
        ]
    return out.reset_index()


def table_markdown(table: pd.DataFrame, commands: dict[str, str] | None = None) -> str:
    """A GitHub markdown table; with ``commands`` (group -> command) each row ends with its command."""
    shown = formatted(table)
    if commands is not None:
        shown["command"] = [f"`{commands.get(str(key), '')}`" for key in shown.iloc[:, 0]]
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in shown.itertuples(False)]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX specials in a cell."""
    return re.sub(r"([&%$#_{}])", r"\\\1", text).replace("~", r"\textasciitilde{}")


def table_latex(table: pd.DataFrame, commands: dict[str, str] | None = None) -> str:
    """A booktabs tabular; each row is followed by a ``% command`` comment line when ``commands`` is given."""
    shown = formatted(table, pm=r" $\pm$ ")
    head = [latex_escape(str(c)) for c in shown.columns]
    lines = [r"\begin{tabular}{l" + "r" * (len(head) - 1) + "}", r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
    for row in shown.itertuples(False):
        cells_ = [latex_escape(str(v)) if "$" not in str(v) else str(v) for v in row]
        lines.append(" & ".join(c.replace("–", "--") for c in cells_) + r" \\")
        if commands is not None and str(row[0]) in commands:
            lines.append(f"% {commands[str(row[0])]}")
    return "\n".join([*lines, r"\bottomrule", r"\end{tabular}"]) + "\n"


def table_csv(table: pd.DataFrame, commands: dict[str, str] | None = None) -> str:
    """Raw numbers (mean and std columns, n, failed) as CSV; plus a command column when ``commands`` is given."""
    out = table.reset_index()
    if commands is not None:
        out["command"] = [commands.get(str(key), "") for key in out.iloc[:, 0]]
    return out.to_csv(index=False)


def cell_table(source: Run | pd.DataFrame) -> pd.DataFrame:
    """Cells from a Run or from evaluation rows."""
    return source.cells if isinstance(source, Run) else cells(source)


def plot_metric_vs_epoch(source: Run | pd.DataFrame, metric: str = "wer", best: dict | None = None) -> Figure:
    """One line per lora_scale: the cell mean of ``metric`` against epoch; the chosen cell circled."""
    table = cell_table(source)
    best = best if best is not None or not isinstance(source, Run) else source.best
    figure = Figure(figsize=(6, 3.5), layout="constrained")
    ax = figure.add_subplot()
    for scale, group in table.groupby("lora_scale"):
        ax.plot(group["epoch"], group[metric].astype(float), marker="o", label=f"scale {scale:g}")
    if best is not None:
        chosen = table[(table["epoch"] == best["epoch"]) & (table["lora_scale"] == best["lora_scale"])]
        ax.scatter(chosen["epoch"], chosen[metric].astype(float), s=220, facecolors="none", edgecolors="black",
                   label="chosen")  # fmt: skip
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch and LoRA scale")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small")
    return figure


def plot_heatmap(source: Run | pd.DataFrame, metric: str = "wer") -> Figure:
    """Heat map of the cell mean of ``metric``: epochs down, lora_scales across, values written in."""
    grid = cell_table(source).pivot(index="epoch", columns="lora_scale", values=metric).astype(float)
    figure = Figure(figsize=(1.2 + 0.9 * grid.shape[1], 1.0 + 0.45 * grid.shape[0]), layout="constrained")
    ax = figure.add_subplot()
    image = ax.imshow(grid.to_numpy(), aspect="auto", cmap="viridis")
    ax.set_xticks(range(grid.shape[1]), [f"{s:g}" for s in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(e) for e in grid.index])
    for (i, j), value in pd.DataFrame(grid.to_numpy()).stack().items():
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white", fontsize="small")
    ax.set(xlabel="lora_scale", ylabel="epoch", title=metric)
    figure.colorbar(image, ax=ax)
    return figure


def plot_ablation(runs: pd.DataFrame, metric: str = "wer", by: str = "variant") -> Figure:
    """Mean ± std of ``metric`` per group as bars, with each seed's value as a dot."""
    table = ablation_table(runs, by=by, metrics=[metric])
    figure = Figure(figsize=(1.5 + 1.2 * len(table), 3.5), layout="constrained")
    ax = figure.add_subplot()
    positions = range(len(table))
    ax.bar(positions, table[f"{metric}_mean"], yerr=table[f"{metric}_std"].fillna(0), capsize=4, alpha=0.6)
    counted = runs[runs["status"] == "done"] if "status" in runs else runs  # the runs the table counts
    for x, key in zip(positions, table.index, strict=True):
        values = counted.loc[counted[by] == key, metric].astype(float)
        ax.scatter([x] * len(values), values, color="black", s=12)
    ax.set_xticks(list(positions), [str(k) for k in table.index], rotation=20, ha="right")
    ax.set(ylabel=metric, title=f"{metric}: mean ± std over seeds")
    return figure


def plot_variants_vs_epoch(all_cells: pd.DataFrame, metric: str = "frame_ratio", lora_scale: float = 1.0) -> Figure:
    """One line per variant: ``metric`` at ``lora_scale`` against epoch, mean over seeds with a ± std band."""
    chosen = all_cells[all_cells["lora_scale"] == lora_scale]
    figure = Figure(figsize=(6, 3.5), layout="constrained")
    ax = figure.add_subplot()
    for variant, group in chosen.groupby("variant", sort=False):
        stats = group.groupby("epoch")[metric].agg(["mean", "std"]).fillna({"std": 0.0})
        ax.plot(stats.index, stats["mean"], marker="o", label=str(variant))
        ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"], alpha=0.2)
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} at lora_scale {lora_scale:g}: mean ± std over seeds")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small")
    return figure
