"""Publish an evaluation: merge new rows into the run's rows, let the rule choose over all of them, rebuild the
listening report. Re-scored cells replace their old rows; every file is written atomically (``runs.records``).

The report is written last and records which rows and chosen cell it shows; :func:`refresh` rebuilds the chosen cell
and the report of a run whose writes a kill interrupted (``evaluate`` and fit's closing lines call it)."""

from __future__ import annotations

from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.evaluation.report import render_report
from qwen_tts_lit.evaluation.settings import EvalSettings
from qwen_tts_lit.files import shown
from qwen_tts_lit.metrics.selection import SelectionRule, aggregate, select_best
from qwen_tts_lit.runs.config import callback_args, read_config
from qwen_tts_lit.runs.folder import REPORT_FILE
from qwen_tts_lit.runs.records import (
    PRESETS_KEPT,
    best_path,
    carry_presets,
    merge_rows,
    read_best,
    read_rows,
    sources_fingerprint,
    sources_meta,
    stale_report,
    write_best,
    write_report,
    write_rows,
)


def publish(
    run_dir: Path, new_rows: list[dict], rule: SelectionRule, old_rows: list[dict] | None = None
) -> dict | None:
    """Write the merged rows, the chosen cell and the report; return the chosen cell (None while only zero-shot
    baseline rows exist: nothing trained to choose yet). ``old_rows``: the run's rows when the caller has read them
    (an opened run), else they are read here."""
    rows = merge_rows(read_rows(run_dir) if old_rows is None else old_rows, new_rows)
    best = select_best(rows, rule) if aggregate(rows) else None
    if best is not None:
        best = carry_presets(_previous_best(run_dir), best)
    write_rows(run_dir, rows)
    _write_best_and_report(run_dir, rows, best)
    return best


def record_presets(run_dir: Path, record: dict) -> dict:
    """Put the presets-kept record (measured when fit ends, for the chosen cell) into the chosen cell and rebuild the
    report; returns the chosen cell."""
    best = {**read_best(run_dir), PRESETS_KEPT: record}
    _write_best_and_report(run_dir, read_rows(run_dir), best)
    return best


def _previous_best(run_dir: Path) -> dict | None:
    try:
        return read_best(run_dir)
    except UserError:  # unreadable: it is about to be replaced anyway
        return None


def _write_best_and_report(run_dir: Path, rows: list[dict], best: dict | None) -> None:
    if best is not None:
        write_best(run_dir, best)
    head = sources_meta(sources_fingerprint(run_dir))  # the files as written just now: what the report shows
    write_report(run_dir, render_report(rows, best, f"Evaluation: {run_dir}", head))


def refresh(run_dir: Path) -> str | None:
    """Rebuild the chosen cell and the report from the run's rows when the report is stale (:func:`stale_report`),
    by the rule the chosen cell records (else the run's EvalSuite rule); returns why it was stale, or None."""
    reason = stale_report(run_dir)
    if reason is None:
        return None
    best = read_best(run_dir)
    if best is not None and isinstance(best.get("rule"), dict):
        recorded = best["rule"]
        rule = SelectionRule(**{k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()})
    else:
        rule = EvalSettings.from_args(callback_args(read_config(run_dir), "EvalSuite")).rule
    publish(run_dir, [], rule)
    return reason


def result_lines(run_dir: Path) -> list[str]:
    """Where a run's results are (the chosen cell, the report), after rebuilding a report a kill left stale: what
    fit, validate and evaluate print when they end."""
    refreshed = refresh(run_dir)
    lines = [f"  rebuilt {REPORT_FILE}: {refreshed}"] if refreshed else []
    best = read_best(run_dir) if best_path(run_dir).is_file() else None
    if best is not None:
        lines.append(f"  best:   {shown(best_path(run_dir))} (epoch {best['epoch']}, "
                     f"lora_scale {float(best['lora_scale']):g})")  # fmt: skip
    else:
        lines.append(f"  best:   no {best_path(run_dir).name} (no evaluation ran); export with --epoch N")
    if (run_dir / REPORT_FILE).is_file():
        lines.append(f"  report: {shown(run_dir / REPORT_FILE)}")
    return lines
