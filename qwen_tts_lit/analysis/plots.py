"""Plots of one run (metric per epoch and scale, heat map) and of an ablation (bars over seeds, variants per
epoch), as matplotlib Figures that notebooks display."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from qwen_tts_lit.analysis.runs import Run, cells
from qwen_tts_lit.analysis.tables import ablation_table


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
