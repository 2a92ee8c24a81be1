"""The SLURM launcher: the runs as one submitit job array (one run per task), and what the scheduler says of them.

Each task is a :class:`~.task.RunTask`: the run's ``fit`` command into its folder (``fit --resume FOLDER`` when the
folder holds a checkpoint). sbatch gets ``--signal=USR1@90`` (the delay is ``signal_delay_s``) and ``--requeue``:
before the time limit, or when an admin or a test sends the signal, submitit's handler calls the task's
``checkpoint``, the fit saves at its next optimizer step and stops, and submitit requeues the task, which continues
the run folder. Pre-emption without a signal (a kill, a node failure) loses at most the work since the last epoch's
checkpoint: the next ``ablate`` on the root resubmits the run and it resumes.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qwen_tts_lit.analysis.launchers.options import REQUEUE_SIGNAL, SlurmOptions, sbatch_flags
from qwen_tts_lit.analysis.launchers.task import RunTask
from qwen_tts_lit.errors import RunFailed, UserError
from qwen_tts_lit.files import shown
from qwen_tts_lit.runs.submission import write_submission

SUBMITIT_DIR = ".slurm"  # under the root: submitit's pickles, sbatch scripts and its own logs
DEFAULT_TIME_MIN = 1440  # submitit's own default is 5 minutes; a partition with a lower MaxTime needs --slurm.time
JOB_NAME = "qwen_tts_lit-ablate"
QUEUED = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "SUSPENDED", "RESIZING")
RUNNING = ("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING")


def parameters(options: SlurmOptions) -> dict[str, Any]:
    """submitit's SlurmExecutor parameters of every task (its names), from the knobs given."""
    given = {k: v for k, v in dataclasses.asdict(options).items() if v is not None}
    delay = given.pop("signal_delay_s", 90)
    given.pop("max_timeouts", None)
    extra = {"requeue": True, **sbatch_flags(given.pop("sbatch", []))}
    # Explicit, not submitit's import-time default (USR2): the fit and the task both act on this signal.
    extra["signal"] = f"{REQUEUE_SIGNAL}@{delay}"
    setup = [f"export SUBMITIT_PREEMPT_SIGNAL={REQUEUE_SIGNAL}", *given.pop("setup", [])]
    return {"job_name": JOB_NAME, "time": DEFAULT_TIME_MIN, "stderr_to_stdout": True, "signal_delay_s": delay,
            **given, "setup": setup, "additional_parameters": extra}  # fmt: skip


def submit(root: Path, tasks: Sequence[RunTask], commands: Sequence[str], options: SlurmOptions) -> list[str]:
    """Submit ``tasks`` as one job array; record each run's submission; return the job ids (``ARRAY_TASK``)."""
    os.environ.setdefault("SUBMITIT_PREEMPT_SIGNAL", REQUEUE_SIGNAL)  # read by submitit when it is imported
    import submitit

    folder = root / SUBMITIT_DIR
    try:
        executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=options.max_timeouts or 3)
    except RuntimeError as error:  # no srun on this machine
        raise UserError(f"--launcher slurm: {error}") from None
    params = parameters(options)
    try:
        executor.update_parameters(**params)
    except ValueError as error:
        raise UserError(f"--slurm: {str(error).splitlines()[0]}") from None
    try:
        jobs = executor.submit_array(tasks) if len(tasks) > 1 else [executor.submit(tasks[0])]
    except subprocess.CalledProcessError as error:  # sbatch refused (a partition, account or QOS that is not there)
        output = (error.output or b"").decode(errors="replace").strip() if isinstance(error.output, bytes) else ""
        raise RunFailed(f"sbatch refused the grid's job array: {output or error}") from None
    script = sbatch_script(folder, jobs[0].job_id)
    for task, job, command in zip(tasks, jobs, commands, strict=True):
        write_submission(task.path, "slurm", {"job_id": job.job_id, "command": command, "parameters": params,
                                              "sbatch": script, "submitit_folder": shown(folder)})  # fmt: skip
    return [job.job_id for job in jobs]


def sbatch_script(folder: Path, job_id: str) -> str | None:
    """The sbatch script submitit wrote for the array (the exact submission), or None if it cannot be found."""
    array = job_id.split("_")[0]
    found = sorted(folder.glob(f"{array}*/*submission.sh")) or sorted(folder.glob(f"**/{array}*submission.sh"))
    return found[0].read_text() if found else None


def scheduler_states(job_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """job id -> (queued | running, SLURM's state and reason) for the jobs the scheduler still holds (squeue);
    a job it no longer lists has ended. Empty when squeue cannot be asked."""
    if not job_ids:
        return {}
    try:
        listed = subprocess.run(["squeue", "--me", "--array", "--noheader", "--format=%i|%T|%r"],
                                capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {}
    states = {}
    for line in listed.splitlines():
        job, _, rest = line.strip().partition("|")
        state, _, reason = rest.partition("|")
        if job in job_ids and (state in QUEUED or state in RUNNING):
            kind = "queued" if state in QUEUED else "running"
            states[job] = (kind, state + (f" ({reason})" if reason and reason not in ("None", "(null)") else ""))
    return states


def ended_states(job_ids: Sequence[str]) -> dict[str, str]:
    """job id -> SLURM's final state (FAILED, TIMEOUT, CANCELLED, ...) where accounting (sacct) is on; else empty."""
    if not job_ids:
        return {}
    jobs = ",".join(job_ids)
    command = ["sacct", "--noheader", "--parsable2", "--allocations", "--format=JobID,State", f"--jobs={jobs}"]
    try:
        listed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {job: state.split()[0] for job, _, state in (line.partition("|") for line in listed.splitlines()) if state}


def cancel_command(job_ids: Sequence[str]) -> str:
    return shlex.join(["scancel", *job_ids])
