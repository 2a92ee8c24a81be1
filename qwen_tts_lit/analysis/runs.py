"""Run folders into pandas: one run (config, per-epoch metrics, evaluation rows, the chosen cell, ablate's status),
or every run under a root with its variant and seed. The folder's files are named by :mod:`qwen_tts_lit.runs`, and
the rows and the chosen cell are read by :mod:`qwen_tts_lit.runs.records` (old runs' rows read as new ones there)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from qwen_tts_lit.metrics.evidence import per_sentence
from qwen_tts_lit.metrics.selection import aggregate, as_records, select_best
from qwen_tts_lit.runs.config import max_epochs, read_config
from qwen_tts_lit.runs.folder import (
    ABLATE_STATUS_FILE,
    BEST_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    latest_version,
)
from qwen_tts_lit.runs.records import best_path, read_best, read_rows
from qwen_tts_lit.runs.roots import find_run_folders, variant_and_seed

# The chosen cell's figures that have a value per held-out sentence (epoch and lora_scale have one per run).
SENTENCE_METRICS = ("error_rate", "wer", "cer", "spk_sim", "spk_sim_model", "rate_ratio", "rate_error",
                    "words_per_second", "eos_fail", "frame_ratio", "dnsmos_ovrl")  # fmt: skip
BEST_METRICS = ("wer", "cer", "spk_sim", "spk_sim_model", "rate_ratio", "rate_error", "words_per_second", "eos_fail",
                "dnsmos_ovrl")  # fmt: skip


@dataclass(frozen=True)
class Run:
    """One run folder, loaded."""

    path: Path
    """The run folder."""
    config: dict
    """The resolved config LightningCLI saved (empty when missing)."""
    metrics: pd.DataFrame
    """The CSV logger's metrics, one row per epoch (see :func:`load_metrics`)."""
    rows: pd.DataFrame
    """The evaluation rows, one per synthesized utterance, plus frame_ratio = frames / real_frames."""
    best: dict | None
    """The chosen cell, or None when the run has no evaluation."""
    status: dict | None
    """ablate's status record (status, returncode, seconds, command), or None when ablate did not start the run."""

    @property
    def cells(self) -> pd.DataFrame:
        """One row per (epoch, lora_scale) with the mean metrics the selection rule sees."""
        return cells(self.rows)

    def best_rows(self) -> pd.DataFrame:
        """The evaluation rows of the chosen (epoch, lora_scale) cell; empty without a chosen cell."""
        if self.best is None or self.rows.empty:
            return self.rows.iloc[0:0]
        chosen = (self.rows["epoch"] == self.best["epoch"]) & (self.rows["lora_scale"] == self.best["lora_scale"])
        return self.rows[chosen]


def read_status(run: Path) -> dict | None:
    """ablate's status record of a run folder, or None when ablate did not start it."""
    path = run / ABLATE_STATUS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def load_metrics(path: Path | str, per_epoch: bool = True) -> pd.DataFrame:
    """The CSV logger's metrics as a DataFrame: raw (one row per log call) or one row per epoch.

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


def load_rows(run: Path | str) -> pd.DataFrame:
    """A run folder's evaluation rows (``runs.records.read_rows``) as a DataFrame, empty when it has none, with
    frame_ratio = frames / real_frames per row."""
    records = read_rows(Path(run))
    if not records:
        return pd.DataFrame(columns=["epoch", "lora_scale", "utt_id"])
    rows = pd.DataFrame.from_records(records)
    if {"frames", "real_frames"} <= set(rows.columns):
        rows["frame_ratio"] = rows["frames"] / rows["real_frames"].where(rows["real_frames"] > 0)
    return rows


def load_run(path: Path | str) -> Run:
    """Load one run folder: config, per-epoch metrics, evaluation rows, the chosen cell and ablate's status."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such run folder")
    return Run(
        path=path,
        config=read_config(path),
        metrics=load_metrics(path / METRICS_FILE),
        rows=load_rows(path),
        best=read_best(path),
        status=read_status(path),
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
    return latest_version(root)


def run_finished(path: Path | str) -> bool:
    """True when ablate recorded a successful exit, or (a run started elsewhere, e.g. by a cluster scheduler) when
    the run has a chosen cell and the evaluation reached the config's last epoch (it re-chooses every epoch)."""
    path = Path(path)
    status = read_status(path)
    if status is not None:
        return status.get("status") == "done"
    if not best_path(path).is_file() or not (path / CONFIG_FILE).is_file():
        return False
    last = max_epochs(read_config(path))
    rows = load_rows(path)
    return last is None or (not rows.empty and int(rows["epoch"].max()) == last - 1)


def run_summary(run: Run) -> dict[str, Any]:
    """The chosen cell of a run as flat columns: epoch, lora_scale, its metrics (with ``<metric>_low`` / ``_high`` /
    ``_sentences``, its 95 % interval over held-out sentences, where the chosen cell records one), frame_ratio,
    status."""
    status = run.status or {}
    summary: dict[str, Any] = {
        "status": status.get("status", "done" if run_finished(run.path) else "incomplete"),
        "returncode": status.get("returncode"),
        "seconds": status.get("seconds"),
        "command": status.get("command"),
        "has_eval": not run.rows.empty,
        "best_source": BEST_FILE if run.best is not None else None,
    }
    best = run.best
    if best is None and not run.rows.empty:  # e.g. killed before the chosen cell was written: same rule, the rows
        best, summary["best_source"] = select_best(run.rows), "rows"
    summary |= {"epoch": math.nan, "lora_scale": math.nan, "passed_filters": None}
    summary |= {name: math.nan for name in (*BEST_METRICS, "frame_ratio")}
    if best is not None:
        summary |= {"epoch": best["epoch"], "lora_scale": best["lora_scale"], "passed_filters": best["passed_filters"]}
        summary |= {k: (math.nan if v is None else v) for k, v in best["metrics"].items() if k in BEST_METRICS}
        for name, interval in (best.get("intervals") or {}).items():  # an older chosen cell has none
            if name in BEST_METRICS:
                summary |= {
                    f"{name}_{end}": math.nan if interval[end] is None else interval[end] for end in ("low", "high")
                }
                summary[f"{name}_sentences"] = interval["n"]
        chosen = run.best_rows() if run.best is not None else run.rows[
            (run.rows["epoch"] == best["epoch"]) & (run.rows["lora_scale"] == best["lora_scale"])
        ]  # fmt: skip
        if "frame_ratio" in chosen:
            summary["frame_ratio"] = chosen["frame_ratio"].mean()
    return summary


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
    frames = [cells(load_rows(r.path)).assign(variant=r.variant, seed=r.seed) for r in runs.itertuples()]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["variant", "seed", "epoch"])


def chosen_sentences(run: Run, metrics: tuple[str, ...] = SENTENCE_METRICS) -> pd.DataFrame:
    """The chosen cell's figures per held-out sentence (``sentence``: "speaker/utt_id", or utt_id for one voice),
    one row per sentence (its rows under several codec prefixes averaged); empty without a chosen cell. The chosen
    cell is the run's recorded one, else the rule's over the rows (as :func:`run_summary`)."""
    best = run.best if run.best is not None or run.rows.empty else select_best(run.rows)
    if best is None:
        return pd.DataFrame(columns=["sentence"])
    chosen = (int(best["epoch"]), float(best["lora_scale"]))
    rows = [row for row in as_records(run.rows)
            if not row.get("baseline") and (int(row["epoch"]), float(row["lora_scale"])) == chosen]  # fmt: skip
    columns: dict[str, dict] = {name: per_sentence(rows, name) for name in metrics}
    keys = list(dict.fromkeys(key for values in columns.values() for key in values))
    table = pd.DataFrame({name: [values.get(key, math.nan) for key in keys] for name, values in columns.items()})
    table.insert(0, "sentence", ["/".join(part for part in key if part) for key in keys])
    return table


def load_sentences(runs: pd.DataFrame) -> pd.DataFrame:
    """Every run's chosen cell per held-out sentence (:func:`chosen_sentences`) with its variant and seed: what the
    ablation table's intervals and paired differences are computed from. Only finished runs (status "done")."""
    done = runs[runs["status"].eq("done")] if "status" in runs else runs
    frames = [chosen_sentences(load_run(r.path)).assign(variant=r.variant, seed=r.seed) for r in done.itertuples()]
    frames = [frame for frame in frames if not frame.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["variant", "seed", "sentence"])
