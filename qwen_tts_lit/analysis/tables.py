"""Ablation tables: per variant, each metric's mean over seeds with its sample std, and, given the runs' chosen cells
per held-out sentence (``analysis.runs.load_sentences``), its 95 % interval over the sentences and each variant's
paired difference from the reference variant (paired by seed and sentence) with its interval and sign-flip test;
formatted as Markdown, LaTeX (booktabs) or CSV, each row optionally with the command that reproduces it.

The unit of the intervals is the held-out sentence (docs/uncertainty.md): every seed and every variant speaks the same
sentences, so the (seed, sentence) pairs of one sentence share its difficulty and are not independent draws. A
variant's value of a sentence is the mean over its seeds of that sentence's figure in each seed's chosen cell; a
difference's, the mean over the seeds both variants finished of (variant - reference) on that sentence. The interval
is then over the sentences: it says how much the figure depends on which sentences were held out, for these seeds;
the spread between seeds is the std column (CSV: ``<metric>_std``), which with 2 or 3 seeds no interval can resolve."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import pandas as pd

from qwen_tts_lit.metrics.uncertainty import Interval, format_interval, format_paired, mean_intervals, paired_difference

# The ablation table's default columns: what was selected and how it scored, plus frames vs the real take.
TABLE_METRICS = ("epoch", "lora_scale", "wer", "spk_sim", "rate_ratio", "eos_fail", "frame_ratio")
LABELS = {"lora_scale": "scale", "wer": "WER", "spk_sim": "SIM", "eos_fail": "eos_fail", "frame_ratio": "frames/real"}
DIGITS = {"epoch": 1, "lora_scale": 2}  # everything else: 3
DIFFERENCE_METRICS = ("wer", "spk_sim")  # the paired differences from the reference variant a table shows


def ablation_table(
    runs: pd.DataFrame,
    by: str | Sequence[str] = "variant",
    metrics: Sequence[str] = TABLE_METRICS,
    sentences: pd.DataFrame | None = None,
    reference: str | tuple | None = None,
    differences: Sequence[str] = DIFFERENCE_METRICS,
) -> pd.DataFrame:
    """Mean and sample std (ddof=1; NaN for one seed) of each metric over the runs of each group.

    With a status column (from :func:`load_runs`) only finished runs count: n = status "done", failed = status
    "failed"; unfinished ones are left out. Then ``<metric>_mean`` / ``<metric>_std`` per metric, missing values
    skipped. Groups keep their first-seen order.

    With ``sentences`` (:func:`~qwen_tts_lit.analysis.runs.load_sentences`: the chosen cells per held-out sentence,
    with the ``by`` columns, seed and sentence), also ``sentences`` (how many) and, for each metric measured per
    sentence, ``<metric>_low`` / ``<metric>_high`` (95 % interval over sentences, seeds averaged within each), and
    for each of ``differences`` the paired difference from the ``reference`` group (default: the first)
    ``d_<metric>_mean`` / ``_low`` / ``_high`` / ``_p`` (sign-flip test) and ``d_<metric>_n`` (sentences paired).
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
    if sentences is not None:
        add_sentence_intervals(table, sentences, keys, metrics, reference, differences)
    return table


def _group(frame: pd.DataFrame, keys: list[str], group) -> pd.DataFrame:
    """The rows of ``frame`` in ``group`` (a value, or a tuple with several keys)."""
    values = group if isinstance(group, tuple) else (group,)
    mask = pd.Series(True, index=frame.index)
    for key, value in zip(keys, values, strict=True):
        mask &= frame[key] == value
    return frame[mask]


def add_sentence_intervals(
    table: pd.DataFrame,
    sentences: pd.DataFrame,
    keys: list[str],
    metrics: Sequence[str],
    reference,
    differences: Sequence[str],
) -> None:
    """The interval columns of :func:`ablation_table` (in place), all intervals in one batch."""
    measured = [name for name in metrics if name in sentences]
    groups = list(table.index)
    frames = {group: _group(sentences, keys, group) for group in groups}
    table["sentences"] = [frame["sentence"].nunique() for frame in frames.values()]
    wanted, samples = [], []
    for group, frame in frames.items():
        for name in measured:
            values = frame.groupby("sentence", sort=False)[name].mean().dropna()  # seeds averaged per sentence
            wanted.append((group, name))
            samples.append(values.to_list())
    for name in measured:
        table[f"{name}_low"], table[f"{name}_high"] = math.nan, math.nan
    for (group, name), interval in zip(wanted, mean_intervals(samples), strict=True):
        if interval.low is not None:
            table.loc[[group], f"{name}_low"], table.loc[[group], f"{name}_high"] = interval.low, interval.high
    if not groups:
        return
    reference = groups[0] if reference is None else reference
    base = frames.get(reference)
    if base is None:
        raise ValueError(f"ablation_table: reference {reference!r} is not one of the groups {groups}")
    table.attrs["reference"] = reference  # what the formatted table names its difference columns after
    for name in (d for d in differences if d in sentences):
        columns = {f"d_{name}_{part}": [] for part in ("mean", "low", "high", "p", "n")}
        for group in groups:
            paired = frames[group].merge(base, on=["seed", "sentence"], suffixes=("", "_ref"))
            gaps = (paired[name] - paired[f"{name}_ref"]).groupby(paired["sentence"], sort=False).mean().dropna()
            difference = paired_difference(gaps.to_dict(), dict.fromkeys(gaps.index, 0.0))
            interval = difference.interval
            for part, value in (("mean", interval.mean), ("low", interval.low), ("high", interval.high),
                                ("p", difference.p_value), ("n", interval.n)):  # fmt: skip
                columns[f"d_{name}_{part}"].append(math.nan if value is None or group == reference else value)
        for column, values in columns.items():
            table[column] = values


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


def _value(number: float | None) -> float | None:
    """A table cell's number, None where it has none (NaN)."""
    return None if number is None or math.isnan(number) else float(number)


def mean_interval_text(mean: float, low: float, high: float, std: float, digits: int, pm: str) -> str:
    """'0.123 [0.101, 0.150]' with an interval (:func:`~qwen_tts_lit.metrics.uncertainty.format_interval`, as
    everywhere), else :func:`mean_std`."""
    if _value(mean) is None or _value(low) is None:
        return mean_std(mean, std, digits, pm)
    return format_interval(Interval(_value(mean), _value(low), _value(high), n=0), digits)  # n: the sentences column


def difference_text(mean: float, low: float, high: float, p: float, n: float, digits: int = 3) -> str:
    """'-0.012 [-0.031, +0.004] (n=8, p=0.31)' (:func:`~qwen_tts_lit.metrics.uncertainty.format_paired`, as the
    report's confidence sentence writes it), '–' with no value (the reference row, or nothing paired)."""
    count = 0 if _value(n) is None else int(n)
    return format_paired(Interval(_value(mean), _value(low), _value(high), count), _value(p), digits, missing="–")


def difference_names(table: pd.DataFrame) -> list[str]:
    """The metrics of an :func:`ablation_table`'s paired differences, in column order."""
    return [c[len("d_") : -len("_mean")] for c in table.columns if c.startswith("d_") and c.endswith("_mean")]


def formatted(table: pd.DataFrame, pm: str = " ± ") -> pd.DataFrame:
    """The table as display strings: group key(s), n (and the sentences), one column per metric ('mean [low,
    high]' where the table has its interval, else 'mean ± std'), one per paired difference from the reference."""
    out = pd.DataFrame(index=table.index)
    out["n"] = table["n"].astype(str) + table["failed"].map(lambda f: f" ({f} failed)" if f else "")
    if "sentences" in table:
        out["sentences"] = table["sentences"].astype(str)
    for name in [n for n in metric_names(table) if not n.startswith("d_")]:
        digits = DIGITS.get(name, 3)
        low = table.get(f"{name}_low", pd.Series(math.nan, index=table.index))
        high = table.get(f"{name}_high", pd.Series(math.nan, index=table.index))
        out[LABELS.get(name, name)] = [
            mean_interval_text(m, lo, hi, s, digits, pm)
            for m, lo, hi, s in zip(table[f"{name}_mean"], low, high, table[f"{name}_std"], strict=True)
        ]
    reference = table.attrs.get("reference")
    named = "/".join(map(str, reference)) if isinstance(reference, tuple) else str(reference)
    for name in difference_names(table):
        parts = [table[f"d_{name}_{part}"] for part in ("mean", "low", "high", "p", "n")]
        texts = [difference_text(*values) for values in zip(*parts, strict=True)]
        texts = ["reference" if group == reference else text for group, text in zip(table.index, texts, strict=True)]
        out[f"Δ{LABELS.get(name, name)} vs {named}"] = texts
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
    head = [latex_escape(str(c)).replace("Δ", r"$\Delta$") for c in shown.columns]
    lines = [r"\begin{tabular}{l" + "r" * (len(head) - 1) + "}", r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
    for row in shown.itertuples(False):
        cells_ = [latex_escape(str(v)) if "$" not in str(v) else str(v) for v in row]
        lines.append(" & ".join(c.replace("–", "--") for c in cells_) + r" \\")
        if commands is not None and str(row[0]) in commands:
            lines.append(f"% {commands[str(row[0])]}")
    return "\n".join([*lines, r"\bottomrule", r"\end{tabular}"]) + "\n"


def table_csv(table: pd.DataFrame, commands: dict[str, str] | None = None) -> str:
    """Raw numbers (mean and std columns, n, failed; with sentences their count, each interval's low and high and
    the paired differences' d_* columns) as CSV; plus a command column when ``commands`` is given."""
    out = table.reset_index()
    if commands is not None:
        out["command"] = [commands.get(str(key), "") for key in out.iloc[:, 0]]
    return out.to_csv(index=False)
