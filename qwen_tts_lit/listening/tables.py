"""A listening test's results as tables, like the ablation tables: Markdown and LaTeX (booktabs) for reading, with
every figure as "mean [low, high]" (metrics/uncertainty.py's formatters), and CSV with the raw numbers; the number of
raters and items in every row, the command that produced them under every table (docs/listening_analysis.md).

Tables per design: MOS/SMOS/MUSHRA ``systems`` (each system's mean) and ``differences`` (each pair, paired by rater
and item); CMOS and A/B ``pairs``; MUSHRA ``screening`` (every rater, whether excluded and why); CMOS/A/B
``attention`` (each rater's identical-pair trials) when the test had any.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from qwen_tts_lit.files import shown, write_atomic
from qwen_tts_lit.listening.results import ListeningResults
from qwen_tts_lit.metrics.uncertainty import Difference, format_difference, format_interval

SCORE_NAMES = {"mos": "MOS", "smos": "SMOS", "mushra": "MUSHRA", "cmos": "CMOS", "ab": "A/B"}
DIGITS = {"mos": 2, "smos": 2, "cmos": 2, "mushra": 1, "ab": 2}  # a 1-5 mean to 0.01, a 0-100 one to 0.1


@dataclass(frozen=True)
class Table:
    """One table: ``shown`` (display strings, the Markdown and LaTeX cells) and ``raw`` (numbers, the CSV rows)."""

    name: str
    title: str
    shown: list[dict[str, str]]
    raw: list[dict[str, object]]


def listening_command(results: ListeningResults, out_dir: Path | str) -> str:
    """The command that reproduces the tables, as the command line reads it (--results takes one list)."""
    paths = ", ".join(shown(p) for p in results.rating_paths)
    return (f"python -m qwen_tts_lit listen --results '[{paths}]' --key {shown(results.key_path)} "
            f"--output {shown(out_dir)}")  # fmt: skip


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.2g}"


def _label(results: ListeningResults, system: str) -> str:
    label = results.systems[system].label
    return system if label == system else f"{system} ({label})"


def listening_tables(results: ListeningResults) -> list[Table]:
    """The design's tables (module docstring), in reading order."""
    design, digits = results.design, DIGITS[results.design]
    name = SCORE_NAMES[design]
    tables = []
    if results.scores:
        shown_rows, raw = [], []
        for s in results.scores:
            shown_rows.append({"system": _label(results, s.system), "role": s.role,
                               f"{name} [95 % CI]": format_interval(s.score.interval(), digits),
                               "raters": str(s.score.raters), "items": str(s.score.items),
                               "ratings": str(s.score.ratings)})  # fmt: skip
            raw.append({"system": s.system, "label": s.label, "role": s.role, "mean": s.score.mean,
                        "low": s.score.low, "high": s.score.high, "se": s.score.se, "df": s.score.df,
                        "raters": s.score.raters, "items": s.score.items, "ratings": s.score.ratings})  # fmt: skip
        tables.append(Table("systems", f"{name} per system", shown_rows, raw))
    if results.differences:
        shown_rows, raw = [], []
        for d in results.differences:
            c = d.difference
            text = format_difference(Difference(c.interval(), d.p_value, False), digits, units="pairs")
            shown_rows.append({"first": _label(results, d.first), "second": _label(results, d.second),
                               f"Δ{name} first − second [95 % CI]": text,
                               "raters": str(c.raters), "items": str(c.items)})  # fmt: skip
            raw.append({"first": d.first, "second": d.second, "mean": c.mean, "low": c.low, "high": c.high,
                        "p": d.p_value, "se": c.se, "df": c.df, "raters": c.raters, "items": c.items,
                        "pairs": c.ratings})  # fmt: skip
        tables.append(Table("differences", f"{name}: paired differences (by rater and item)", shown_rows, raw))
    if results.cmos:
        shown_rows, raw = [], []
        for c in results.cmos:
            s = c.score
            shown_rows.append({"first": _label(results, c.first), "second": _label(results, c.second),
                               "CMOS first vs second [95 % CI]": format_interval(s.interval(), digits),
                               "better / worse / same": f"{c.signs.wins} / {c.signs.losses} / {c.signs.ties}",
                               "sign test p": _p(c.signs.p_value), "raters": str(s.raters),
                               "items": str(s.items)})  # fmt: skip
            raw.append({"first": c.first, "second": c.second, "mean": s.mean, "low": s.low, "high": s.high,
                        "se": s.se, "df": s.df, "better": c.signs.wins, "worse": c.signs.losses,
                        "same": c.signs.ties, "p_sign": c.signs.p_value, "p_crossed": c.p_crossed,
                        "raters": s.raters, "items": s.items, "answers": s.ratings})  # fmt: skip
        tables.append(Table("pairs", "CMOS per pair (+3: first much better)", shown_rows, raw))
    if results.ab:
        shown_rows, raw = [], []
        for a in results.ab:
            p = a.preference

            def share(count: int, p=p) -> str:
                return f"{count} ({p.share(count):.0%})"

            shown_rows.append({"first": _label(results, a.first), "second": _label(results, a.second),
                               "prefer first": share(p.first), "prefer second": share(p.second),
                               "no preference": share(p.none),
                               "first's share of decided [95 % CI]": format_interval(p.decided_share, 2),
                               "binomial p": _p(p.p_value), "raters": str(a.raters),
                               "items": str(a.items)})  # fmt: skip
            raw.append({"first": a.first, "second": a.second, "prefer_first": p.first, "prefer_second": p.second,
                        "no_preference": p.none, "share_first": p.share(p.first), "share_second": p.share(p.second),
                        "share_none": p.share(p.none), "decided_share": p.decided_share.mean,
                        "decided_low": p.decided_share.low, "decided_high": p.decided_share.high,
                        "p": p.p_value, "raters": a.raters, "items": a.items, "answers": p.total})  # fmt: skip
        tables.append(Table("pairs", "A/B preference per pair", shown_rows, raw))
    if design == "mushra":
        tables.append(_screening(results))
    elif results.attention:
        shown_rows = [{"rater": a.rater, "attention trials": str(a.trials), "failed": str(a.failed)}
                      for a in results.attention]  # fmt: skip
        raw = [{"rater": a.rater, "trials": a.trials, "failed": a.failed} for a in results.attention]
        tables.append(Table("attention", "attention checks per rater (identical pair: expected 0 / none)",
                            shown_rows, raw))  # fmt: skip
    return tables


def _screening(results: ListeningResults) -> Table:
    shown_rows, raw = [], []
    for a in results.attention:
        why = results.excluded.get(a.rater, "")
        shown_rows.append({"rater": a.rater, "excluded": "yes" if why else "no", "why": why or "–",
                           "trials": str(a.trials), "reference below 90": str(a.failed)})  # fmt: skip
        raw.append(
            {"rater": a.rater, "excluded": bool(why), "why": why, "trials": a.trials, "reference_below_90": a.failed}
        )
    return Table("screening", "MUSHRA post-screening (ITU-R BS.1534-3)", shown_rows, raw)


def table_markdown(table: Table, command: str | None = None) -> str:
    """A GitHub Markdown table under its title; ``command`` (the one that made it) as a line under it."""
    columns = list(table.shown[0]) if table.shown else []
    lines = [f"**{table.title}**", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row[c].replace("|", "\\|") for c in columns) + " |" for row in table.shown]
    if command:
        lines += ["", f"`{command}`"]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX specials in a cell (as analysis/tables.py does, which this layer cannot import)."""
    text = re.sub(r"([&%$#_{}])", r"\\\1", text).replace("~", r"\textasciitilde{}")
    return text.replace("Δ", r"$\Delta$").replace("−", "$-$").replace("–", "--")


def table_latex(table: Table, command: str | None = None) -> str:
    """A booktabs tabular with the title as a comment above it and ``command`` as a comment below."""
    columns = list(table.shown[0]) if table.shown else []
    lines = [f"% {table.title}", r"\begin{tabular}{l" + "r" * (len(columns) - 1) + "}", r"\toprule"]
    lines.append(" & ".join(latex_escape(c) for c in columns) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(latex_escape(row[c]) for c in columns) + r" \\" for row in table.shown]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if command:
        lines.append(f"% {command}")
    return "\n".join(lines) + "\n"


def table_csv(table: Table, command: str | None = None) -> str:
    """The raw numbers (empty where there is none), plus a ``command`` column when given."""
    rows = [{**row, "command": command} if command else row for row in table.raw]
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
    return out.getvalue()


def _csv_value(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def write_listening_tables(results: ListeningResults, out_dir: Path | str) -> list[Path]:
    """Each table as ``listening_<design>_<table>.md``, ``.tex`` and ``.csv`` in ``out_dir`` (atomic writes);
    returns the paths written."""
    out_dir = Path(out_dir)
    command = listening_command(results, out_dir)
    written = []
    for table in listening_tables(results):
        stem = f"listening_{results.design}_{table.name}"
        for suffix, render in ((".md", table_markdown), (".tex", table_latex), (".csv", table_csv)):
            written.append(write_atomic(out_dir / f"{stem}{suffix}", render(table, command)))
    return written
