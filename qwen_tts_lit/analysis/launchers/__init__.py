"""The launchers ``ablate`` runs a grid through: one seam, so that another engine can be added beside these.

A launcher is given the grid's missing runs as :class:`~.task.RunTask` objects (each: the run's ``fit`` command and
its folder; ``fit --resume FOLDER`` when the folder holds a checkpoint) and starts them: ``local`` on this machine
(sequentially, or ``--jobs N`` at once, one GPU each: :mod:`.local`), ``slurm`` as a submitit job array
(:mod:`.slurm`). Where each run stands is read back from its folder and the scheduler (:mod:`.states`). A launcher
adds no state of its own: the run folder and ``fit --resume`` are what make a requeued or resubmitted run continue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from qwen_tts_lit.analysis.launchers.options import REQUEUE_SIGNAL, SlurmOptions
from qwen_tts_lit.analysis.launchers.task import RunTask

LAUNCHERS = ("local", "slurm")


class Launcher(Protocol):
    """Starts the runs it is given; ``waits``: whether :meth:`submit` returns only when they have ended."""

    name: str
    waits: bool

    def task(self, folder: str, fit_args: tuple[str, ...], cwd: str) -> RunTask: ...

    def submit(
        self, root: Path, tasks: Sequence[RunTask], commands: Sequence[str], say: Callable[[str], None]
    ) -> None: ...


@dataclass
class LocalLauncher:
    """This machine: ``jobs`` runs at once (1: one after another), each on its own GPU when there are GPUs."""

    jobs: int = 1
    name: str = "local"
    waits: bool = True

    def task(self, folder: str, fit_args: tuple[str, ...], cwd: str) -> RunTask:
        return RunTask(folder, fit_args, cwd, launcher=self.name)

    def submit(self, root: Path, tasks: Sequence[RunTask], commands: Sequence[str], say: Callable[[str], None]) -> None:
        from qwen_tts_lit.analysis.launchers.local import run_all
        from qwen_tts_lit.runs.submission import write_submission

        label = {id(task): command for task, command in zip(tasks, commands, strict=True)}

        def started(index: int, task: RunTask) -> None:
            gpu = {"gpu": task.gpu} if task.gpu is not None else {}
            write_submission(task.path, self.name, {"command": label[id(task)], "jobs": self.jobs, **gpu})
            say(f"[{index}/{len(tasks)}] {task.folder}{f' (GPU {task.gpu})' if task.gpu is not None else ''}: "
                f"{shell_line(task)}")  # fmt: skip

        def ended(index: int, task: RunTask, status: dict[str, Any]) -> None:
            say(f"[{index}/{len(tasks)}] {task.folder}: " + (
                f"done in {status['seconds']:.0f} s" if status["status"] == "done"
                else f"FAILED (exit {status['returncode']}), log {task.folder}/ablate.log"))  # fmt: skip

        run_all(tasks, self.jobs, started, ended)


@dataclass
class SlurmLauncher:
    """A SLURM cluster through submitit: one job array, one run per task; ``wait``: poll until the tasks end."""

    options: SlurmOptions
    wait: bool = False
    poll_s: float = 10.0
    name: str = "slurm"

    @property
    def waits(self) -> bool:
        return self.wait

    def task(self, folder: str, fit_args: tuple[str, ...], cwd: str) -> RunTask:
        return RunTask(folder, fit_args, cwd, launcher=self.name, requeue_signal=REQUEUE_SIGNAL)

    def submit(self, root: Path, tasks: Sequence[RunTask], commands: Sequence[str], say: Callable[[str], None]) -> None:
        import time

        from qwen_tts_lit.analysis.launchers import slurm

        jobs = slurm.submit(root, tasks, commands, self.options)
        say(f"submitted {len(jobs)} task(s) as job array {jobs[0].split('_')[0]} ({', '.join(jobs)}); "
            f"cancel with: {slurm.cancel_command([jobs[0].split('_')[0]])}")  # fmt: skip
        while self.wait and slurm.scheduler_states(jobs):
            time.sleep(self.poll_s)


def shell_line(task: RunTask) -> str:
    import shlex

    return shlex.join(["python", "-m", "qwen_tts_lit", *task.arguments()])


__all__ = ["LAUNCHERS", "Launcher", "LocalLauncher", "RunTask", "SlurmLauncher", "SlurmOptions"]
