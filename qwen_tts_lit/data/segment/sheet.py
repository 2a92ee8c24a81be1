"""The proofreading sheet, ``review.csv``: one row per clip that a person edits, read back on the next run.

Two columns are for editing: ``status`` (keep / review / drop) and ``text``. Beside them the sheet keeps what the
machine said, ``auto_status`` and ``asr_text``: a cell that differs from its machine column is an edit, and an edit
wins over whatever a later run computes (so edits survive re-runs with other thresholds). Rows are matched to clips
by ``id``, ``start`` and ``end``: an edit whose clip is gone (other cutting options) is an error, never silently lost.
A row deleted from the sheet means drop (:func:`deleted_rows`): the clip is not trained on, and the next sheet lists
it again with status drop, an edit like any other (set it back to keep to use the clip).
Spreadsheet programs are expected: a byte-order mark, ``;`` or tab separators and Windows line ends are read.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from qwen_tts_lit.data.segment.filters import KEEP, STATUSES
from qwen_tts_lit.errors import UserError

SHEET_COLUMNS = ("id", "status", "text", "reasons", "audio", "seconds", "source", "start", "end", "auto_status",
                 "asr_text", "speaker_similarity", "avg_logprob", "words_per_second")  # fmt: skip
REQUIRED = ("id", "status", "text", "start", "end", "auto_status", "asr_text")


@dataclass(frozen=True)
class SheetRow:
    """One row of an edited sheet."""

    line: int
    id: str
    status: str
    text: str
    start: float
    end: float
    auto_status: str
    asr_text: str

    @property
    def status_edited(self) -> bool:
        return self.status != self.auto_status

    @property
    def text_edited(self) -> bool:
        return " ".join(self.text.split()) != " ".join(self.asr_text.split())

    @property
    def edited(self) -> bool:
        return self.status_edited or self.text_edited


def _delimiter(header: str) -> str:
    for delimiter in (",", ";", "\t"):
        if {"id", "status"} <= {cell.strip() for cell in header.split(delimiter)}:
            return delimiter
    return ","


def read_sheet(path: Path) -> dict[str, SheetRow]:
    """The rows of an edited sheet by id; UserError listing every bad cell (file, line, field)."""
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text ({error.reason}); save it as UTF-8 CSV") from error
    lines = content.splitlines()
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter=_delimiter(lines[0] if lines else ""))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise UserError(
            f"{path}, line 1: missing column(s) {', '.join(missing)} (the sheet needs {', '.join(REQUIRED)})"
        )
    rows: dict[str, SheetRow] = {}
    problems = []
    for record in reader:
        line = reader.line_num
        values = {key: (record.get(key) or "").strip() for key in REQUIRED}
        status, auto = values["status"].lower(), values["auto_status"].lower()
        if status not in STATUSES:
            problems.append(
                f"{path}, line {line}, field status: {values['status']!r} is not one of {', '.join(STATUSES)}"
            )
        if status == KEEP and not values["text"]:
            problems.append(f"{path}, line {line}, field text: empty; a kept clip needs its transcript")
        try:
            start, end = round(float(values["start"]), 3), round(float(values["end"]), 3)
        except ValueError:
            problems.append(f"{path}, line {line}, field start/end: not a number (do not edit these columns)")
            continue
        if values["id"] in rows:
            problems.append(
                f"{path}, line {line}, field id: {values['id']!r} twice (also line {rows[values['id']].line})"
            )
            continue
        rows[values["id"]] = SheetRow(line, values["id"], status, values["text"], start, end, auto, values["asr_text"])
    if problems:
        raise UserError("\n".join([f"{len(problems)} problem(s) in the review sheet; nothing was written:", *problems]))
    return rows


def deleted_rows(sheet: dict[str, SheetRow], listed: dict[str, tuple], clips: dict[str, tuple]) -> list[str]:
    """Ids of the clips the user deleted from the sheet: ``listed`` (id -> start, end) are the clips the sheet on disk
    was written with (the previous run's clips.jsonl, written after it), ``clips`` the clips now. A clip that is new
    (an added recording, other cutting options) was never in the sheet and keeps the machine's status."""
    return sorted(i for i, bounds in clips.items() if i not in sheet and listed.get(i) == tuple(bounds))


def sheet_bytes(records: list[dict]) -> bytes:
    """The sheet of ``records`` (clips.jsonl rows), in clip order, as UTF-8 CSV."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=SHEET_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = {key: record.get(key) for key in SHEET_COLUMNS}
        row["reasons"] = " ".join(record["reasons"])
        row["start"], row["end"], row["seconds"] = (f"{record[k]:.3f}" for k in ("start", "end", "seconds"))
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue().encode("utf-8")
