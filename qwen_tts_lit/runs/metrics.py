"""The run's ``metrics.csv`` (Lightning's CSVLogger, one row per logged step) across a resume.

A killed run may have logged steps past its last checkpoint; the resumed run trains and logs those steps again.
:func:`keep_metrics_before` drops them first, so every step appears once and the file reads as one run.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from qwen_tts_lit.files import write_atomic
from qwen_tts_lit.runs.folder import METRICS_FILE


def keep_metrics_before(run_dir: Path | str, global_step: int) -> int:
    """Remove the rows logged at step ``global_step`` or later (atomically); returns how many were removed."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return 0
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames or [], list(reader)
    kept = [row for row in rows if not (row.get("step") or "").isdigit() or int(row["step"]) < global_step]
    if len(kept) == len(rows):
        return 0
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)  # the csv default "\r\n", as Lightning writes it
    writer.writeheader()
    writer.writerows(kept)
    write_atomic(path, buffer.getvalue())
    return len(rows) - len(kept)
