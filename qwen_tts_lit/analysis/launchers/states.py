"""Where each run of a grid stands (``ablate --status``, and which runs ``ablate`` submits again), read from its
run folder (``ablate.json``, ``submission.json``, the log) and from the scheduler that holds it (squeue; sacct for
a job that ended without a result, where accounting is on)."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qwen_tts_lit.analysis.launchers import slurm
from qwen_tts_lit.analysis.launchers.task import LOG_FILE, last_line
from qwen_tts_lit.runs.folder import ABLATE_STATUS_FILE
from qwen_tts_lit.runs.submission import read_submission

STATES = ("not submitted", "queued", "running", "done", "failed")


@dataclass(frozen=True)
class RunState:
    """One run's state, what the scheduler or the exit status adds, and its log."""

    state: str
    """One of STATES."""
    detail: str = ""
    """The job id and SLURM's state, or the exit code."""
    log: Path | None = None
    """The run's log (ROOT/VARIANT/seed_S/ablate.log), when there is one."""
    last_line: str = ""
    """The log's last line."""

    @property
    def active(self) -> bool:
        """Queued or running: submitting it again would start a second copy in the same folder."""
        return self.state in ("queued", "running")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_states(folders: Sequence[Path], finished: Sequence[bool]) -> list[RunState]:
    """The state of each run folder (``finished``: whether analysis counts the run as done)."""
    records = [read_submission(folder) for folder in folders]
    job_ids = [r["submission"]["job_id"] for r in records if r and r.get("launcher") == "slurm" and r.get("submission")]
    held = slurm.scheduler_states(job_ids)
    ended = slurm.ended_states([job for job in job_ids if job not in held]) if len(held) < len(job_ids) else {}
    states = []
    for folder, record, done in zip(folders, records, finished, strict=True):
        log = folder / LOG_FILE if (folder / LOG_FILE).is_file() else None
        line = last_line(folder)
        status_file = folder / ABLATE_STATUS_FILE
        status = _read_json(status_file)
        submission = (record or {}).get("submission") or {}
        job = submission.get("job_id")
        if record and record.get("launcher") == "slurm" and job in held:
            kind, state = held[job]
            states.append(RunState(kind, f"job {job}: {state}", log, line))
        elif done:
            states.append(RunState("done", f"job {job}" if job else "", log, line))
        elif status is not None:
            code = status.get("returncode")
            states.append(RunState("failed", (f"job {job}: " if job else "") + f"exit {code}", log, line))
        elif record and record.get("launcher") == "local" and _local_running(record):
            states.append(RunState("running", f"pid {record['attempts'][-1]['pid']}", log, line))
        elif record is not None:
            why = ended.get(job, "ended without an exit status (killed?)") if job else "stopped without an exit status"
            states.append(RunState("failed", (f"job {job}: " if job else "") + why, log, line))
        else:
            states.append(RunState("not submitted"))
    return states


def _local_running(record: dict) -> bool:
    attempts = record.get("attempts") or []
    last = attempts[-1] if attempts else {}
    pid = last.get("pid")
    # This process's own pid: an ablate that has just run it here and is past it (a stale record, not a run).
    return last.get("host") == socket.gethostname() and isinstance(pid, int) and pid != os.getpid() and alive(pid)


def _read_json(path: Path) -> dict | None:
    import json

    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
