"""Finished run folders into pandas, tables and plots, and ``ablate`` (grids of runs). No Lightning: this is what
the notebooks import (``from qwen_tts_lit.analysis import load_run, load_runs, ablation_table, ...``).

:mod:`~.runs` (one run or a root of runs), :mod:`~.tables` (mean ± std over seeds; Markdown, LaTeX, CSV),
:mod:`~.listening` (a listening test's results),
:mod:`~.plots`, :mod:`~.grid` (the grid format), :mod:`~.ablate` (running a grid) and :mod:`~.request` (the
command). The names below load their module on first
use, so reading ``ablate``'s options (``--help``) imports neither pandas nor matplotlib.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Run": "runs",
    "cells": "runs",
    "latest_run": "runs",
    "load_cells": "runs",
    "load_metrics": "runs",
    "load_rows": "runs",
    "load_run": "runs",
    "load_runs": "runs",
    "load_sentences": "runs",
    "chosen_sentences": "runs",
    "run_finished": "runs",
    "select_best": "runs",
    "listening_results": "listening",
    "ablation_table": "tables",
    "table_csv": "tables",
    "table_latex": "tables",
    "table_markdown": "tables",
    "plot_ablation": "plots",
    "plot_heatmap": "plots",
    "plot_metric_vs_epoch": "plots",
    "plot_variants_vs_epoch": "plots",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
