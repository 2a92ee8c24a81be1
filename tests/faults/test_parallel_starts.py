"""Processes started together: run folders are claimed atomically (never shared), and a cache build (the tiny
checkpoint, a prepared dataset) happens once while the second process waits and reuses it. Real processes racing on
the real code, with the expensive part of a build replaced by a slow stand-in."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qwen_tts_lit.cache import build_lock

REPO = Path(__file__).resolve().parents[2]

CLAIM = """
import os, sys, time
from pathlib import Path
from qwen_tts_lit.runs.folder import claim_version
root, go = Path(sys.argv[1]), Path(sys.argv[2])
Path(f"{go}.{os.getpid()}").touch()  # at the start line
while not go.exists():
    time.sleep(0.001)
print(" ".join(claim_version(root).name for _ in range(40)))
"""

BUILD_TINY = """
import json, os, sys, time
from pathlib import Path
from qwen_tts_lit.upstream import tiny
go, log = Path(sys.argv[1]), Path(sys.argv[2])
def slow_build(target, kind="base"):  # the real build takes ~7 s: a stand-in that takes 1 s, the same stamp
    with log.open("a") as handle:
        handle.write(f"{os.getpid()}\\n")
    time.sleep(1)
    (target / tiny.STAMP_FILE).write_text(json.dumps({"recipe": tiny.recipe_fingerprint(kind)}))
tiny._write_checkpoint = slow_build
Path(f"{go}.{os.getpid()}").touch()  # at the start line
while not go.exists():
    time.sleep(0.001)
print(tiny.make_tiny(tiny.default_tiny_dir()))
"""


def _start(script: str, *args: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip


def _go(go: Path, *processes: subprocess.Popen) -> list[tuple[int, str, str]]:
    """Let the processes go at the same moment, once all of them wait at the start line (imports done)."""
    while len(list(go.parent.glob(f"{go.name}.*"))) < len(processes):
        assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
        time.sleep(0.01)
    go.touch()
    return [(p.wait(60), *p.communicate()) for p in processes]


def test_two_processes_never_claim_the_same_run_folder(tmp_path: Path):
    root, go = tmp_path / "runs" / "demo", tmp_path / "go"
    results = _go(go, _start(CLAIM, root, go), _start(CLAIM, root, go))
    assert [code for code, _, _ in results] == [0, 0], results
    claimed = [name for _, out, _ in results for name in out.split()]
    assert sorted(claimed, key=lambda n: int(n.split("_")[1])) == [f"version_{i}" for i in range(80)]


def test_two_processes_on_an_empty_cache_build_the_tiny_checkpoint_once(tmp_path: Path):
    go, log = tmp_path / "go", tmp_path / "builds.log"
    env = {**os.environ, "QWEN_TTS_LIT_CACHE": str(tmp_path / "cache")}
    results = _go(go, _start(BUILD_TINY, go, log, env=env), _start(BUILD_TINY, go, log, env=env))
    assert [code for code, _, _ in results] == [0, 0], results
    assert len(log.read_text().split()) == 1  # one build; the other process waited for it
    assert {out.strip() for _, out, _ in results} == {str(next((tmp_path / "cache").glob("tiny-*")))}
    assert any("waiting for another process that is building" in err for _, _, err in results)
    assert not list((tmp_path / "cache").glob(".tiny-*.partial-*"))


HOLD_LOCK = """
import sys, time
from pathlib import Path
from qwen_tts_lit.cache import build_lock
root, held = Path(sys.argv[1]), Path(sys.argv[2])
with build_lock(root):
    held.touch()
    time.sleep(2)  # preparing...
    root.mkdir(parents=True)
    (root / "train.jsonl").write_text("finished by the other process\\n")
"""


def test_a_fit_waits_for_the_dataset_another_process_is_preparing(tmp_path: Path, monkeypatch, run_cache):
    from qwen_tts_lit.data import datamodule as module

    raw = REPO / "data" / "demo" / "raw" / "train_raw.jsonl"
    data = module.QwenTTSDataModule(raw=str(raw), prepared_dir=str(tmp_path / "prepared"))
    monkeypatch.setattr("qwen_tts_lit.data.prepare.prepare", lambda options: pytest.fail("prepared a second time"))
    held = tmp_path / "held"
    other = _start(HOLD_LOCK, data.root, held)
    while not held.exists():
        assert other.poll() is None, other.communicate()
        time.sleep(0.01)
    data.prepare_data()  # blocks until the other process finished, then finds its dataset
    assert other.wait(30) == 0 and (data.root / "train.jsonl").read_text() == "finished by the other process\n"
    with build_lock(data.root):  # and the lock is free again
        pass
