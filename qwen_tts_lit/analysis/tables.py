"""Ablation tables: mean and sample std over seeds per variant, formatted as Markdown, LaTeX (booktabs) or CSV,
each row optionally with the command that reproduces it."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import pandas as pd

# The ablation table's default columns: what was selected and how it scored, plus frames vs the real take.
TABLE_METRICS = ("epoch", "lora_scale", "wer", "spk_sim", "rate_ratio", "eos_fail", "frame_ratio")
LABELS = {"lora_scale": "scale", "wer": "WER", "spk_sim": "SIM", "eos_fail": "eos_fail", "frame_ratio": "frames/real"}
DIGITS = {"epoch": 1, "lora_scale": 2}  # everything else: 3


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
