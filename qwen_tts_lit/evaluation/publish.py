"""Publish an evaluation: merge new rows into the run's rows, let the rule choose over all of them, rebuild the
listening report. Re-scored cells replace their old rows; every file is written atomically (``runs.records``)."""

from __future__ import annotations

from pathlib import Path

from qwen_tts_lit.evaluation.report import render_report
from qwen_tts_lit.metrics.selection import SelectionRule, aggregate, select_best
from qwen_tts_lit.runs.records import merge_rows, read_rows, write_best, write_report, write_rows


def publish(run_dir: Path, new_rows: list[dict], rule: SelectionRule) -> dict | None:
    """Write the merged rows, the chosen cell and the report; return the chosen cell (None while only zero-shot
    baseline rows exist: nothing trained to choose yet)."""
    rows = merge_rows(read_rows(run_dir), new_rows)
    best = select_best(rows, rule) if aggregate(rows) else None
    write_rows(run_dir, rows)
    if best is not None:
        write_best(run_dir, best)
    write_report(run_dir, render_report(rows, best, f"Evaluation: {run_dir}"))
    return best
