"""The local launcher: the runs on this machine, one after another (``--jobs 1``, the default) or N at once as
subprocesses (``--jobs N``), each pinned to its own GPU through CUDA_VISIBLE_DEVICES when the machine has GPUs
(more runs than GPUs share them round robin). ablate waits for them all.
"""

from __future__ import annotations

import os
import queue
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from qwen_tts_lit.analysis.launchers.task import RunTask


def visible_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES as given, else every GPU nvidia-smi lists, else none."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [gpu.strip() for gpu in given.split(",") if gpu.strip() and gpu.strip() != "-1"]
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                                text=True, timeout=20, check=True).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listed.splitlines() if line.strip()]


def gpu_slots(jobs: int, gpus: Sequence[str]) -> list[str | None]:
    """One CUDA_VISIBLE_DEVICES value per concurrent slot (None: leave the variable alone, e.g. a CPU machine)."""
    return [gpus[slot % len(gpus)] if gpus else None for slot in range(jobs)]


def run_all(
    tasks: Sequence[RunTask], jobs: int, on_start: Callable[[int, RunTask], None],
    on_end: Callable[[int, RunTask, dict[str, Any]], None],
) -> None:  # fmt: skip
    """Run every task, ``jobs`` at a time, each in a free slot (its GPU); the callbacks report progress."""
    slots: queue.Queue[str | None] = queue.Queue()
    for gpu in gpu_slots(jobs, visible_gpus() if jobs > 1 else []):
        slots.put(gpu)

    def one(index: int, task: RunTask) -> None:
        gpu = slots.get()
        try:
            task.gpu = gpu
            on_start(index, task)
            on_end(index, task, task())
        finally:
            slots.put(gpu)

    if jobs <= 1:
        for index, task in enumerate(tasks, 1):
            one(index, task)
        return
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(one, index, task) for index, task in enumerate(tasks, 1)]:
            future.result()
