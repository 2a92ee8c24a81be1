"""Run ``python -m qwen_tts_lit fit`` in a subprocess, as a user would, in a scratch working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "configs" / "demo.yaml"
DEMO_RAW = REPO / "data" / "demo" / "raw" / "train_raw.jsonl"
# Under pytest, tests/conftest.py closes it at start and sets it before each test's setup: True in a test marked
# slow. Outside pytest (a benchmark, a shell) nothing sets it and runs are allowed.
SUBPROCESS_RUNS_ALLOWED = True


def run_cli(
    workdir: Path, *args: str, cache: Path, timeout: float = 900, check: bool = True
) -> subprocess.CompletedProcess:
    """``python -m qwen_tts_lit ARGS`` with cwd=workdir and the tiny/prepared cache at ``cache``."""
    # The fast lane's promise (no subprocess fits) is kept here, not by convention: a test that gets here without
    # the slow mark (tests/conftest.py's rule missed it) fails in every lane.
    assert SUBPROCESS_RUNS_ALLOWED, "a subprocess run in a test not marked slow (tests/conftest.py: SLOW_FIXTURES)"
    env = {**os.environ, "QWEN_TTS_LIT_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    # tests/ on the path so --trainer.callbacks+=helpers.callbacks.X resolves in the child process
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "tests"), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "qwen_tts_lit", *args], cwd=workdir, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {' '.join(args)}\n{result.stderr[-4000:]}")
    return result


def run_demo_fit(workdir: Path, *overrides: str, cache: Path, check: bool = True) -> subprocess.CompletedProcess:
    """``fit --config configs/demo.yaml`` on the shipped corpus, plus CLI overrides; run folders go to workdir/runs."""
    workdir.mkdir(parents=True, exist_ok=True)
    args = ("fit", "--config", str(DEMO_CONFIG), "--data.raw", str(DEMO_RAW), *overrides)
    return run_cli(workdir, *args, cache=cache, check=check)


def latest_run(workdir: Path, name: str = "demo") -> Path:
    """The newest ``runs/NAME/version_N`` folder under ``workdir``."""
    versions = sorted((workdir / "runs" / name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    assert versions, f"no run folder under {workdir / 'runs' / name}"
    return versions[-1]
