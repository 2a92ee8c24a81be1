"""The evaluation records of a run folder: per-utterance rows, the chosen cell, the listening report.

Every write is atomic (a temporary sibling, then a rename), so a reader sees the old file or the new one. The three
are written one after the other (rows, chosen cell, report), so a kill between two writes leaves them disagreeing:
the report, written last, records the SHA-256 of the rows and of the chosen cell it shows (:func:`sources_meta`),
and :func:`stale_report` compares them with the files, so whoever points at the report can rebuild it first.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import write_atomic
from qwen_tts_lit.runs.baselines import current_name
from qwen_tts_lit.runs.folder import BEST_FILE, REPORT_FILE, ROWS_FILE


def cell_key(row: dict) -> tuple[int, float, str]:
    """What identifies an evaluation cell: (epoch, lora_scale, baseline); baseline "" for a trained cell, the
    zero-shot baseline's name (``runs.baselines``) for a baseline row of the base model."""
    return int(row["epoch"]), float(row["lora_scale"]), str(row.get("baseline") or "")


def read_rows(run_dir: Path) -> list[dict]:
    """Every row of the run's evaluation (empty when there is none yet), as this version writes them
    (:func:`as_current_row`), so old and new rows read alike. The one reader of the rows: the evaluation, export
    and ``analysis`` (notebooks) all call it."""
    path = Path(run_dir) / ROWS_FILE
    if not path.is_file():
        return []
    return [as_current_row(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def as_current_row(row: dict) -> dict:
    """``row`` read as this version writes it: a baseline under its current name ("icl" ->
    "voice_clone_non_streaming"); a row written before ``heldout_text`` existed stored the held-out transcript as
    written in ``text``, so that is its ``heldout_text`` too. Its ``text`` stays as stored: the cleaning that gives
    the text as spoken belongs to the synthesis stage, above this layer, and an old row whose transcript had a
    non-speech tag is recognisable by the tag (re-score it with ``evaluate`` to get the spoken text)."""
    if row.get("baseline"):
        row["baseline"] = current_name(str(row["baseline"]))
    if "text" in row and "heldout_text" not in row:
        row["heldout_text"] = row["text"]
    return row


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """Old rows minus the cells that ``new`` re-scores, plus ``new``; sorted by epoch, scale, utterance."""
    replaced = {cell_key(row) for row in new}
    kept = [row for row in old if cell_key(row) not in replaced]
    return sorted(kept + new, key=lambda row: (*cell_key(row), row["utt_id"]))


def write_rows(run_dir: Path, rows: list[dict]) -> Path:
    return write_atomic(Path(run_dir) / ROWS_FILE, "".join(json.dumps(r, allow_nan=False) + "\n" for r in rows))


def best_path(run_dir: Path) -> Path:
    return Path(run_dir) / BEST_FILE


def read_best(run_dir: Path) -> dict | None:
    """The chosen cell (written by the evaluation), or None when the run has none; UserError when unreadable."""
    path = best_path(run_dir)
    if not path.is_file():
        return None
    try:
        best = json.loads(path.read_text())
        int(best["epoch"]), float(best["lora_scale"])
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path}: unreadable ({error}); expected {{'epoch': int, 'lora_scale': float, ...}}") from error
    return best


PRESETS_KEPT = "presets_kept"  # best.json's record: the base's preset speakers at the chosen cell vs at scale 0


def carry_presets(old: dict | None, new: dict) -> dict:
    """``new`` (a cell chosen again over the rows) with ``old``'s presets record (:data:`PRESETS_KEPT`) when it was
    measured at that very cell (epoch and scale): fit measures it once, for the cell chosen when it ends; a record
    of another cell would describe weights that are not the chosen ones, so it is dropped."""
    record = (old or {}).get(PRESETS_KEPT)
    if record and int(record["epoch"]) == int(new["epoch"]) and float(record["lora_scale"]) == float(new["lora_scale"]):
        return {**new, PRESETS_KEPT: record}
    return new


def write_best(run_dir: Path, best: dict) -> Path:
    return write_atomic(best_path(run_dir), json.dumps(best, indent=2, allow_nan=False) + "\n")


def write_report(run_dir: Path, html: str) -> Path:
    return write_atomic(Path(run_dir) / REPORT_FILE, html)


REPORT_SOURCES = ("rows", "best")  # what the report is rendered from: eval/rows.jsonl, best.json
_SOURCE_META = re.compile(r"<meta name='qwen_tts_lit:(rows|best)' content='([0-9a-f]{64}|none)'>")


def sources_fingerprint(run_dir: Path) -> dict[str, str]:
    """SHA-256 of the rows and of the chosen cell as they are on disk now ("none" for a file not written yet)."""
    paths = {"rows": Path(run_dir) / ROWS_FILE, "best": best_path(run_dir)}
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "none"
            for name, path in paths.items()}  # fmt: skip


def sources_meta(fingerprint: dict[str, str]) -> str:
    """The report's record of what it shows: one ``<meta>`` tag per source file, for the report's ``<head>``."""
    return "".join(f"<meta name='qwen_tts_lit:{name}' content='{fingerprint[name]}'>" for name in REPORT_SOURCES)


def stale_report(run_dir: Path) -> str | None:
    """Why the run's report does not show its rows and chosen cell as they are now, or None when it does (or when
    the run has no report and no rows)."""
    report, rows = Path(run_dir) / REPORT_FILE, Path(run_dir) / ROWS_FILE
    if not report.is_file():
        return f"{REPORT_FILE} is missing" if rows.is_file() else None
    recorded = dict(_SOURCE_META.findall(report.read_text(errors="replace")))
    if set(recorded) != set(REPORT_SOURCES):
        return f"{REPORT_FILE} does not record which {BEST_FILE} it shows (written by an earlier version)"
    changed = [name for name, digest in sources_fingerprint(run_dir).items() if recorded[name] != digest]
    if changed:
        files = " and ".join(BEST_FILE if name == "best" else ROWS_FILE for name in changed)
        return f"{REPORT_FILE} shows another {files} than the run's (a run stopped between writing them?)"
    return None
