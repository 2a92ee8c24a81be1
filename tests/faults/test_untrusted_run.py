"""A run folder from someone else must not run code here: a checkpoint whose pickle would create a marker file (its
``__reduce__`` calls ``os.system``), and a ``config.yaml`` naming a foreign class, are refused in one line naming the
file and what it wanted, on every path that reads a run (export, evaluate, synthesize, fit --resume); the marker never
appears. With --trust-run the user vouches for the run and the same file loads (the marker appears: the test can
fail)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from helpers.runs import main

from qwen_tts_lit.runs.checkpoints import TRUST_ENV
from qwen_tts_lit.runs.folder import CHECKPOINT_DIR, CONFIG_FILE

pytestmark = pytest.mark.usefixtures("run_cache")


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def crafted(demo_run: Path, tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """(a copy of the demo run whose epoch-1 and last checkpoints carry the payload, the marker it would create)."""
    monkeypatch.setenv(TRUST_ENV, "0")  # whatever --trust-run sets in this process is undone after the test
    run = tmp_path / "version_0"
    shutil.copytree(demo_run, run)  # with its evaluation rows: evaluate re-scores from them
    marker = tmp_path / "MARKER"
    checkpoint = torch.load(run / CHECKPOINT_DIR / "epoch=001.ckpt", weights_only=True, map_location="cpu")
    for name in ("epoch=001.ckpt", "last.ckpt"):
        path = run / CHECKPOINT_DIR / name
        if name == "epoch=001.ckpt" or path.exists():
            torch.save({**checkpoint, "note": Payload(marker)}, path)
    return run, marker


def _refused(capsys, path_part: str, wanted: str) -> None:
    err = capsys.readouterr().err.strip()
    line = err.splitlines()[-1]
    assert "Traceback" not in err and path_part in line and wanted in line and "--trust-run" in line, err


def test_export_refuses_a_crafted_checkpoint_and_trust_loads_it(crafted, tmp_path, capsys):
    run, marker = crafted
    args = ("export", "--run", run, "--epoch", 1, "--speaker_name", "demo", "--format", "adapter")
    assert main(*args, "--output", tmp_path / "out") == 2
    _refused(capsys, "epoch=001.ckpt", "system")
    assert not marker.exists() and not (tmp_path / "out").exists()
    assert main(*args, "--output", tmp_path / "trusted", "--trust-run") == 0
    assert marker.exists()  # the payload is real: without the safe loader it runs


def test_synthesize_and_evaluate_from_a_run_refuse_it(crafted, tmp_path, capsys):
    run, marker = crafted
    out = tmp_path / "a.wav"
    assert main("synthesize", "--model", run, "--epoch", 1, "--text", "Hi.", "--max_new_tokens", 2,
                "--output", out) == 2  # fmt: skip
    _refused(capsys, "epoch=001.ckpt", "system")
    assert main("evaluate", "--run", run, "--epochs", "1", "--scales", "1.0", "--num_utterances", "1") == 2
    _refused(capsys, "epoch=001.ckpt", "system")
    assert not marker.exists() and not out.exists()


def test_fit_resume_refuses_a_crafted_checkpoint_and_a_foreign_config_class(crafted, demo_run, tmp_path, capsys):
    run, marker = crafted
    assert main("fit", "--resume", run, "--trainer.max_epochs", "3") == 2
    _refused(capsys, ".ckpt", "system")
    assert not marker.exists()
    shutil.copytree(demo_run / CHECKPOINT_DIR, run / CHECKPOINT_DIR, dirs_exist_ok=True)  # clean checkpoints again
    config = run / CONFIG_FILE
    (tmp_path / "evil_plugin.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Hook: pass\n")
    text = config.read_text().replace("callbacks:", "callbacks:\n  - class_path: evil_plugin.Hook", 1)
    assert "evil_plugin" in text
    config.write_text(text)
    assert main("fit", "--resume", run, "--trainer.max_epochs", "3") == 2
    _refused(capsys, CONFIG_FILE, "evil_plugin.Hook")
    assert not marker.exists()
