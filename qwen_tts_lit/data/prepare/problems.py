"""One record type for everything ``prepare`` finds wrong with its input, so all problems are reported at once.

A problem is either an error (the row cannot be used as is) or a warning (a safe fix was applied). ``--strict``
turns warnings into errors; ``--skip_bad`` drops the rows that have errors instead of failing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

UNPARSED = -1  # Problem.row of a line that could not be parsed into a row


@dataclass(frozen=True)
class Problem:
    """Something wrong in the input, located as precisely as we can: ``file:line: field: message``."""

    file: str
    """The file the user has to edit: the manifest, metadata.csv, a transcript .txt, or an option name."""
    line: int | None
    """1-based line (row) in ``file``; None when the problem is not about one line."""
    field: str | None
    """The field (``audio``, ``text``, ``ref_audio``, ``id``, ``language``, ...) or None."""
    message: str
    """What is wrong, and for a warning what was done about it."""
    kind: str
    """A stable short name (``missing_audio``, ``resampled``, ...), used to count problems in the report."""
    fixable: bool = False
    """True when a safe fix was applied (a warning); False for an error."""
    row: int | None = None
    """Index of the row it belongs to (``--skip_bad`` drops that row); :data:`UNPARSED` for a line that never became
    a row (dropping it means skipping the line); None for problems that dropping rows cannot solve."""

    def location(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}" if self.field else where

    def __str__(self) -> str:
        return f"{self.location()}: {self.message}"

    def to_json(self) -> dict:
        record = asdict(self)
        del record["fixable"], record["row"]  # the report lists warnings and drops in separate sections
        return record


def sort_key(problem: Problem) -> tuple:
    return (problem.file, problem.line or 0, problem.field or "", problem.message)


def format_problems(problems: list[Problem], header: str) -> str:
    lines = [header, *(f"  {p}" for p in sorted(problems, key=sort_key))]
    return "\n".join(lines)
