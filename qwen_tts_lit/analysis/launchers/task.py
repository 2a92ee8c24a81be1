"""One run of a grid as a task, the same for every launcher: run its ``fit`` command in a subprocess (output appended
to ``ablate.log`` in its folder, exit status in ``ablate.json``), or, when the folder already holds a checkpoint (an
attempt that was requeued, pre-empted or killed), ``fit --resume FOLDER`` instead: the run continues in place from
the checkpoint that trained furthest, exactly as a user's resume does. The task keeps no state of its own.

Under SLURM the task is submitit's job function, and submitit's handler of the requeue signal calls
:meth:`RunTask.checkpoint`: the signal is passed on to the fit (which saves at its next optimizer step and stops,
``train/requeue.py``), and the same task is requeued.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qwen_tts_lit.files import write_atomic
from qwen_tts_lit.runs.checkpoints import TRUST_FLAG, resume_checkpoint, untrusted_classes
from qwen_tts_lit.runs.folder import ABLATE_STATUS_FILE
from qwen_tts_lit.runs.submission import REQUEUE_SIGNAL_ENV, record_attempt

LOG_FILE = "ablate.log"
# What a task records of where it runs (its job's variables; the GPUs SLURM or the local launcher gave it).
SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT",
                   "SLURM_JOB_PARTITION", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "CUDA_VISIBLE_DEVICES")  # fmt: skip


@dataclass
class RunTask:
    """One run: its folder, its fit arguments and where to run them."""

    folder: str
    """The run folder, as the fit arguments spell it (relative to ``cwd`` or absolute)."""
    fit_args: tuple[str, ...]
    """Arguments after ``python -m qwen_tts_lit`` of a fresh start."""
    cwd: str
    """The directory ablate ran in: the fit arguments' relative paths start there."""
    launcher: str = "local"
    requeue_signal: str | None = None
    """Under a scheduler: the signal on which the fit saves and stops for a requeue (``REQUEUE_SIGNAL_ENV``)."""
    gpu: str | None = None
    """CUDA_VISIBLE_DEVICES of the fit (the local launcher's GPU for it), or None to leave it as it is."""
    child: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:  # submitit pickles the task; a running child is no part of it
        return {**self.__dict__, "child": None}

    @property
    def path(self) -> Path:
        return Path(self.cwd) / self.folder

    def arguments(self) -> tuple[str, ...]:
        """A fresh start's arguments, or ``fit --resume FOLDER`` when the folder holds a checkpoint to continue."""
        if resume_checkpoint(self.path) is None:
            return self.fit_args
        # The folder's config is the one this grid's own fit wrote: a class of the user's that it names (a callback
        # of theirs) is trusted as the grid that named it was, so the resume is not refused for it (docs/sharing.md).
        from qwen_tts_lit.runs.config import read_config  # here: it imports torch, and `ablate --help` must not

        trust = (TRUST_FLAG,) if untrusted_classes(read_config(self.path)) else ()
        return ("fit", "--resume", self.folder, *trust)

    def __call__(self) -> dict[str, Any]:
        status_file = self.path / ABLATE_STATUS_FILE
        if status_file.is_file() and json.loads(status_file.read_text()).get("status") == "done":
            return json.loads(status_file.read_text())  # a requeue that came after the run had finished
        record_attempt(self.path, where(self.launcher))
        args = self.arguments()
        env = dict(os.environ)
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu
        if self.requeue_signal:
            env[REQUEUE_SIGNAL_ENV] = self.requeue_signal
        started = time.monotonic()
        command = shlex.join(["python", "-m", "qwen_tts_lit", *args])
        with open(self.path / LOG_FILE, "a", encoding="utf-8") as log:
            log.write(f"$ {command}\n")
            log.flush()
            self.child = subprocess.Popen(
                [sys.executable, "-m", "qwen_tts_lit", *args], cwd=self.cwd, env=env, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            while (returncode := self.reaped()) is None:
                time.sleep(0.2)
            self.child = None
        status = {
            "status": "done" if returncode == 0 else "failed",
            "returncode": returncode,
            "seconds": round(time.monotonic() - started, 1),
            "command": command,
        }
        write_atomic(status_file, json.dumps(status, indent=2) + "\n")
        return status

    def checkpoint(self) -> Any:
        """submitit's hook on the requeue signal: pass the signal on to the fit, wait until it has saved and stopped,
        and give submitit the same task to requeue (it then continues from the folder's checkpoint)."""
        from submitit.helpers import DelayedSubmission

        if self.child is not None and self.reaped() is None:
            try:  # SLURM signals the fit too; a second signal changes nothing
                self.child.send_signal(getattr(signal, f"SIG{self.requeue_signal or 'USR1'}"))
            except ProcessLookupError:
                pass
            while self.reaped() is None:
                time.sleep(0.2)
        return DelayedSubmission(replace(self, child=None))

    def reaped(self) -> int | None:
        """The fit's exit code once it has ended, else None. Not ``Popen.wait``/``poll``: this also runs inside the
        signal handler that interrupted the task's own wait, and Popen's lock, held by the interrupted call, would
        never be released (the handler would wait forever)."""
        child = self.child
        if child is None or child.returncode is not None:
            return None if child is None else child.returncode
        try:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by the call this handler interrupted: it has ended
            child.returncode = -1 if child.returncode is None else child.returncode
            return child.returncode
        if pid:
            child.returncode = os.waitstatus_to_exitcode(status)
        return child.returncode


def where(launcher: str) -> dict[str, Any]:
    """This attempt's host, time, job and GPUs."""
    attempt: dict[str, Any] = {"launcher": launcher, "host": socket.gethostname(), "pid": os.getpid(),
                               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
    attempt |= {name.lower(): os.environ[name] for name in SLURM_VARIABLES if name in os.environ}
    try:  # the GPUs' names and ids, when there are any (no torch import for it)
        query = ["nvidia-smi", "--query-gpu=index,name,uuid", "--format=csv,noheader"]
        gpus = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True).stdout.splitlines()
        attempt["gpus"] = [line.strip() for line in gpus if line.strip()]
    except (OSError, subprocess.SubprocessError):
        pass
    return attempt


def last_line(folder: Path) -> str:
    """The last non-empty line of a run's log, for --status."""
    path = folder / LOG_FILE
    if not path.is_file():
        return ""
    lines = [line.strip() for line in path.read_text(errors="replace").replace("\r", "\n").splitlines()]
    return next((line for line in reversed(lines) if line), "")
