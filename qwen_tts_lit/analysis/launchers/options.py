"""The SLURM knobs of ``ablate --launcher slurm`` (one owner: the grid file's ``slurm:`` section and the
``--slurm.*`` options are both these fields, and the command line wins field by field). Importing it loads nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# The time-limit warning: SLURM sends it this many seconds before the limit (sbatch --signal=USR1@90), and the run
# saves a checkpoint at its next optimizer step and is requeued. USR1 as Lightning's default requeue signal.
REQUEUE_SIGNAL = "USR1"


@dataclass(frozen=True)
class SlurmOptions:
    """SLURM settings of every task of the grid (None: the grid file's value, else SLURM's default)."""

    partition: str | None = None
    """sbatch --partition."""
    account: str | None = None
    """sbatch --account."""
    qos: str | None = None
    """sbatch --qos."""
    gpus_per_task: int | None = None
    """GPUs of each run (sbatch --gpus-per-task)."""
    cpus_per_task: int | None = None
    """CPUs of each run (sbatch --cpus-per-task)."""
    mem: str | None = None
    """Memory of each run, e.g. 64G (sbatch --mem)."""
    time: int | None = None
    """Time limit of each task in minutes (sbatch --time); a run that needs longer is requeued and continues."""
    constraint: str | None = None
    """sbatch --constraint, e.g. a100."""
    signal_delay_s: int | None = None
    """Seconds before the time limit at which SLURM sends the requeue signal (default 90)."""
    max_timeouts: int | None = None
    """How many times a task may hit its time limit and be requeued (default 3; pre-emptions do not count)."""
    array_parallelism: int | None = None
    """At most this many tasks of the array run at once (default: all)."""
    sbatch: list[str] | None = None
    """Extra sbatch options, one per item (#SBATCH lines), for example --exclusive or --mail-type=END."""
    setup: list[str] | None = None
    """Shell lines run in the job before the task, e.g. ['module load cuda', 'source .venv/bin/activate']."""


SLURM_KEYS = tuple(item.name for item in dataclasses.fields(SlurmOptions))
INT_KEYS = ("gpus_per_task", "cpus_per_task", "time", "signal_delay_s", "max_timeouts", "array_parallelism")
LIST_KEYS = ("sbatch", "setup")


def option_problem(key: str, value: Any) -> str | None:
    """Why ``value`` is no value of the knob ``key``, or None."""
    if key not in SLURM_KEYS:
        return f"unknown key (expected one of {', '.join(SLURM_KEYS)})"
    if value is None:
        return None
    if key in INT_KEYS:
        return None if type(value) is int and value >= 0 else f"expected a whole number >= 0, got {value!r}"
    if key in LIST_KEYS:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            return f"expected a list of strings, got {value!r}"
        if key == "sbatch" and not all(v.removeprefix("#SBATCH").strip().startswith("--") for v in value):
            return f"expected sbatch options such as --exclusive or --mail-type=END, got {value!r}"
        return None
    text = isinstance(value, (str, int)) and not isinstance(value, bool)  # mem: 64G, or 64000 (megabytes)
    return None if text else f"expected a string, got {value!r}"


def merged(grid: dict[str, Any], command_line: SlurmOptions) -> SlurmOptions:
    """The grid's section overridden by every knob given on the command line."""
    given = {k: v for k, v in dataclasses.asdict(command_line).items() if v is not None}
    return SlurmOptions(**{**{k: (str(v) if k in ("mem",) else v) for k, v in grid.items()}, **given})


def sbatch_flags(lines: list[str]) -> dict[str, Any]:
    """['--exclusive', '#SBATCH --mail-type=END'] -> {'exclusive': True, 'mail-type': 'END'} (submitit's form)."""
    flags: dict[str, Any] = {}
    for line in lines:
        name, _, value = line.removeprefix("#SBATCH").strip().removeprefix("--").partition("=")
        flags[name] = value if value else True
    return flags
