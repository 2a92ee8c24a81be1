"""A run folder opened once: what ``export``, ``evaluate`` and ``synthesize --model RUN`` read of a finished run.

``Run.open(path)`` checks the folder and lists its saved epochs (the one listing the verbs make); everything else
is read on first use and kept (``cached_property``): the saved config, the chosen cell, the evaluation rows, the
x-vector file, which checkpoints are intact (a CRC pass over every epoch, so only when asked). A verb then reads as
open -> choose -> build -> write, and passes the opened run on instead of its path, so no step reads a file again.

The run-folder errors a verb can meet before any work (no such folder, no epoch saved, an epoch not saved) are
raised here, each one line naming the folder. No torch here: an epoch's weights are loaded by
``runs.weights.load_run``, which takes the opened run.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.runs.checkpoints import is_intact
from qwen_tts_lit.runs.choice import Choice, choose
from qwen_tts_lit.runs.config import callback_args, data_args, model_args, read_config, trained_language_tag
from qwen_tts_lit.runs.folder import CHECKPOINT_DIR, saved_epochs
from qwen_tts_lit.runs.records import read_best, read_rows
from qwen_tts_lit.speaker_file import read_voices, speaker_path


class Run:
    """A finished run folder (``runs/NAME/version_N``) with at least one saved epoch; open it with :meth:`open`."""

    def __init__(self, path: Path, epochs: dict[int, Path]):
        self.path = path
        self.saved_epochs = epochs  # epoch -> checkpoint file, sorted by epoch

    @classmethod
    def open(cls, path: str | Path, absolute: bool = False) -> Run:
        """The run folder at ``path``; UserError when it is missing or holds no epoch checkpoint. ``absolute``: the
        path resolved once checked (what an export records as its source), else as given (messages name it so)."""
        path = Path(path).expanduser()
        if not path.is_dir():
            raise UserError(f"{path}: run folder not found (expected runs/NAME/version_N from `fit`)")
        path = path.resolve() if absolute else path
        epochs = saved_epochs(path)
        if not epochs:
            raise UserError(f"{path / CHECKPOINT_DIR}: no epoch=NNN.ckpt checkpoints; is this a finished run folder?")
        return cls(path, epochs)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, epochs={list(self.saved_epochs)})"

    def checkpoint(self, epoch: int) -> Path:
        """``checkpoints/epoch=NNN.ckpt``; UserError listing the saved epochs when that one is not there."""
        if epoch not in self.saved_epochs:
            listed = ", ".join(str(e) for e in self.saved_epochs)
            raise UserError(f"{self.path}: epoch {epoch} was not saved (saved epochs: {listed})")
        return self.saved_epochs[epoch]

    @cached_property
    def config(self) -> dict:
        """The saved ``config.yaml`` ({} when absent)."""
        return read_config(self.path)

    @cached_property
    def best(self) -> dict | None:
        """The chosen cell (``best.json``), or None when the evaluation wrote none."""
        return read_best(self.path)

    @cached_property
    def rows(self) -> list[dict]:
        """Every evaluation row (``eval/rows.jsonl``; empty before the first evaluation). Do not modify them."""
        return read_rows(self.path)

    @cached_property
    def voices(self) -> tuple[object | None, dict]:
        """The run folder's x-vector file: (x-vector (D,) of one voice, or None; {name: (D,)} of several, or {})."""
        return read_voices(self.path, "run folder (and the checkpoint holds no x-vector)")

    @cached_property
    def speakers(self) -> list[str]:
        """The speakers the x-vector file names ([] for one voice, or when the folder has no such file)."""
        return list(self.voices[1]) if speaker_path(self.path).is_file() else []

    @cached_property
    def intact_epochs(self) -> dict[int, Path]:
        """The saved epochs whose checkpoint is complete (every zip member's CRC checked), sorted by epoch."""
        return {epoch: path for epoch, path in self.saved_epochs.items() if is_intact(path)}

    @property
    def language_tag(self) -> str:
        """The run's ``data.language_tag``: which codec prefixes (inference calls) it was trained on."""
        return trained_language_tag(self.config)

    @property
    def data(self) -> dict:
        """The saved ``data`` settings (where the prepared dataset is: ``prepared_dir`` or ``raw``)."""
        return data_args(self.config)

    @property
    def model_source(self) -> str | None:
        """The base model the run's config names (``model.model``)."""
        return model_args(self.config).get("model")

    def eval_suite_args(self) -> dict | None:
        """The init args of the run's EvalSuite callback, or None when it had none."""
        return callback_args(self.config, "EvalSuite")

    def choose(self, epoch: int | None = None, lora_scale: float | None = None) -> Choice:
        """The epoch and scale to use: the explicit ones, else the run's chosen cell (:func:`runs.choice.choose`)."""
        return choose(self.best, epoch, lora_scale, self.path, list(self.saved_epochs))
