"""File names of a run folder and the saved epochs in it (pure paths; no torch)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from qwen_tts_lit.files import shown
from qwen_tts_lit.speaker_file import SPEAKER_FILE, run_speakers, speaker_key, speaker_name_problem

CONFIG_FILE = "config.yaml"
HPARAMS_FILE = "hparams.yaml"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
# ModelCheckpoint's filename for the checkpoint of each epoch: fit sets it (cli/lightning.py), configs leave it unset,
# and fit refuses another (cli/fit_settings.py), since saved_epochs finds an epoch's weights by this name only.
EPOCH_CHECKPOINT_NAME = "epoch={epoch:03d}"
EPOCH_CHECKPOINT = re.compile(r"^epoch=(\d+)\.ckpt$")  # the files EPOCH_CHECKPOINT_NAME gives
EVAL_DIR = "eval"
ROWS_FILE = f"{EVAL_DIR}/rows.jsonl"
REAL_DIR = f"{EVAL_DIR}/real"
BEST_FILE = "best.json"
REPORT_FILE = "report.html"
VALIDATE_DIR = "validate"  # validate --ckpt_path: RUN/validate/epoch=NNN/version_K, beside the run's own results
ABLATE_OVERLAY_FILE = "ablate.yaml"
ABLATE_STATUS_FILE = "ablate.json"
SUBMISSION_FILE = "submission.json"  # how ablate launched the run: runs/submission.py
# Files whose presence makes a folder a run folder (analysis finds runs by them).
RUN_MARKERS = (CONFIG_FILE, METRICS_FILE, BEST_FILE, ABLATE_STATUS_FILE, ABLATE_OVERLAY_FILE)

__all__ = ["SPEAKER_FILE"]  # re-exported: the x-vector file of a run folder


def cell_dir(epoch: int, scale: float) -> str:
    """``eval/epoch=NNN/scale=S``, relative to the run folder: the synthesized audio of one evaluation cell."""
    return f"{EVAL_DIR}/epoch={epoch:03d}/scale={scale:g}"


def baseline_dir(mode: str) -> str:
    """``eval/baseline=MODE``, relative to the run folder: the base model's zero-shot audio in one mode."""
    return f"{EVAL_DIR}/baseline={mode}"


def saved_epochs(run_dir: Path) -> dict[int, Path]:
    """Epoch number -> checkpoint file, from ``checkpoints/epoch=NNN.ckpt`` names, sorted by epoch."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return {}
    found = {int(m.group(1)): p for p in folder.iterdir() if (m := EPOCH_CHECKPOINT.match(p.name))}
    return dict(sorted(found.items()))


def is_run_dir(path: Path) -> bool:
    """A folder ``fit`` wrote (it has a checkpoints folder), as opposed to an export."""
    return (Path(path) / CHECKPOINT_DIR).is_dir()


def latest_version(root: Path | str) -> Path | None:
    """The newest ``version_N`` folder under ``root`` (e.g. runs/demo), or None when there is none."""
    versions = [p for p in Path(root).glob("version_*") if p.name.split("_")[-1].isdigit()]
    return max(versions, key=lambda p: int(p.name.split("_")[-1])) if versions else None


def claim_version(root: Path | str) -> Path:
    """Create and return ``root/version_N``, N one above the newest existing version (Lightning's numbering).

    Creating the folder is the claim: ``mkdir`` without ``exist_ok`` succeeds for exactly one process, so of two
    fits started together one gets version_N and the other, whose mkdir fails, version_N+1.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    newest = latest_version(root)
    number = int(newest.name.split("_")[-1]) + 1 if newest is not None else 0
    while True:
        candidate = root / f"version_{number}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number += 1


def run_of_checkpoint(checkpoint: Path | str) -> Path | None:
    """The run folder a checkpoint lies in (``RUN/checkpoints/X.ckpt`` -> RUN), or None when it is elsewhere."""
    checkpoint = Path(checkpoint).expanduser().absolute()
    run = checkpoint.parent.parent
    if checkpoint.parent.name == CHECKPOINT_DIR and any((run / name).exists() for name in RUN_MARKERS):
        return run
    return None


def holds_checkpoints(run_dir: Path | str) -> bool:
    """True when ``run_dir/checkpoints`` holds any checkpoint file (the run has something to resume)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    return folder.is_dir() and any(p.suffix == ".ckpt" for p in folder.iterdir())


def checkpoint_files(run_dir: Path | str) -> list[Path]:
    """Every checkpoint file in ``run_dir/checkpoints`` (any name: ``last.ckpt``, ``last-v1.ckpt``, epochs, ...),
    sorted by name; not the hidden temporaries of a write in progress."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".ckpt" and not p.name.startswith(".") and p.is_file())


# The entries of a ModelCheckpoint's saved state that name files in its folder (Lightning 2.6's state_dict).
CHECKPOINT_STATE_PATHS = ("best_model_path", "kth_best_model_path", "last_model_path")


def relocated_state(state: dict, dirpath: str) -> dict:
    """A ModelCheckpoint's saved state (``checkpoint["callbacks"][key]``) as if it had been written in ``dirpath``.

    Lightning restores which file is ``last.ckpt`` and which epochs it saved only when the recorded ``dirpath``
    equals the resumed callback's, string for string; otherwise it forgets them and writes ``last-v1.ckpt`` and
    ``epoch=NNN-v1.ckpt`` beside the files it no longer recognises. A run folder that was copied or moved (another
    disk, another node) is the same run: its files are the recorded ones, now under ``dirpath``. Paths outside the
    recorded folder are left as they are.
    """
    recorded = state.get("dirpath")
    if not recorded or str(recorded) == str(dirpath):
        return state

    def moved(path: object) -> object:
        if not path or not Path(str(path)).is_relative_to(Path(str(recorded))):
            return path
        return os.path.join(dirpath, Path(str(path)).relative_to(Path(str(recorded))))  # as Lightning joins names

    relocated = {**state, "dirpath": dirpath}
    relocated.update({key: moved(state[key]) for key in CHECKPOINT_STATE_PATHS if key in state})
    if isinstance(state.get("best_k_models"), dict):
        relocated["best_k_models"] = {moved(path): score for path, score in state["best_k_models"].items()}
    return relocated


def resume_command(target: Path | str) -> str:
    """The command that continues a run (``target``: its folder, or one of its checkpoints)."""
    return f"python -m qwen_tts_lit fit --resume {shlex.quote(shown(target))}"


FALLBACK_SPEAKER_NAME = "voice"


def export_command(run_dir: Path | str) -> str:
    """An ``export`` command that runs as printed on this run folder. A run of several speakers exports every voice
    under the name it was prepared with, and export refuses ``--speaker_name`` for it; a one-voice run needs one, so
    the command proposes the run's name (``runs/NAME/version_N``) as the speaker id, made lower-case, or
    :data:`FALLBACK_SPEAKER_NAME` when that name is not a valid id."""
    run_dir = Path(run_dir)
    name = run_dir.absolute().parent.name
    output = f"exports/{name}-{run_dir.name}"  # one folder per run: a second run's export never meets the first's
    command = f"python -m qwen_tts_lit export --run {shlex.quote(shown(run_dir))} --output {shlex.quote(output)}"
    if run_speakers(run_dir):
        return command
    speaker = speaker_key(name) if speaker_name_problem(speaker_key(name)) is None else FALLBACK_SPEAKER_NAME
    return f"{command} --speaker_name {shlex.quote(speaker)}"
