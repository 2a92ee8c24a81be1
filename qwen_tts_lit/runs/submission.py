"""How an ablation run was launched: ``submission.json`` in its run folder, and the two names that tie a launcher's
task to the ``fit`` it starts.

``submission.json`` holds the launcher (``local`` or ``slurm``), the exact submission (the submitit parameters and
the sbatch script, or the local command and GPU), and one entry per attempt (a requeued SLURM task starts a new
one): job id, node, GPU, start time. ``ablate`` writes the submission; the task appends its attempt where it runs.
Nothing else in the folder depends on it: a requeued task continues from the folder's checkpoints (``fit --resume``),
never from this record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qwen_tts_lit.files import write_atomic
from qwen_tts_lit.runs.folder import SUBMISSION_FILE

# Set by a launcher's task for the fit it starts: the signal (a name such as "USR1") on which fit saves a checkpoint
# at the next optimizer step and stops, so that the scheduler's requeue continues it with `fit --resume`.
REQUEUE_SIGNAL_ENV = "QWEN_TTS_LIT_REQUEUE_SIGNAL"


def submission_path(folder: Path | str) -> Path:
    return Path(folder) / SUBMISSION_FILE


def read_submission(folder: Path | str) -> dict[str, Any] | None:
    """The record, or None when ablate never launched this folder (or the file is damaged: it is only a record)."""
    path = submission_path(folder)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_submission(folder: Path | str, launcher: str, submission: dict[str, Any]) -> Path:
    """Record a new submission of the run (earlier attempts stay listed: a resubmitted run continues them)."""
    earlier = (read_submission(folder) or {}).get("attempts", [])
    record = {"launcher": launcher, "submission": submission, "attempts": earlier}
    return write_atomic(submission_path(folder), json.dumps(record, indent=2) + "\n")


def record_attempt(folder: Path | str, attempt: dict[str, Any]) -> Path:
    """Append one attempt (where and as which job the run now starts) to the record."""
    record = read_submission(folder) or {"launcher": attempt.get("launcher"), "submission": None, "attempts": []}
    record["attempts"] = [*record.get("attempts", []), attempt]
    return write_atomic(submission_path(folder), json.dumps(record, indent=2) + "\n")
