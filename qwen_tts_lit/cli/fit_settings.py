"""The settings of ``fit`` and ``validate``, checked on the resolved config before any folder is created and any
weight loads: every setting that cannot work, or that would run and produce nothing, is one line, all reported at
once (exit 2). Pure functions over the config as a dict (``LightningCLI``'s namespace, ``.as_dict()``)."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.evaluation.settings import EvalSettings
from qwen_tts_lit.model.lora import LoraSpec
from qwen_tts_lit.runs.config import callback_args, data_args, model_args
from qwen_tts_lit.runs.folder import CHECKPOINT_DIR, EPOCH_CHECKPOINT, EPOCH_CHECKPOINT_NAME

NO_LIMIT = -1  # Lightning's "no limit" for max_epochs and max_steps


def is_positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def trainer_problems(trainer: dict, subcommand: str) -> list[str]:
    bad = []
    if subcommand == "fit":
        for name in ("max_epochs", "max_steps"):
            value = trainer.get(name)
            if value == 0:
                bad.append(f"trainer.{name} 0: nothing would be trained; give at least 1 ({NO_LIMIT}: no limit)")
            elif value is not None and value < NO_LIMIT:
                bad.append(f"trainer.{name} {value}: must be >= 1 ({NO_LIMIT}: no limit)")
        limit = trainer.get("limit_train_batches")
        if limit is not None and not is_positive(limit):
            bad.append(f"trainer.limit_train_batches {limit}: nothing would be trained; must be > 0")
    accumulate = trainer.get("accumulate_grad_batches")
    if accumulate is not None and not (isinstance(accumulate, int) and accumulate >= 1):
        bad.append(f"trainer.accumulate_grad_batches {accumulate}: must be an integer >= 1")
    return bad


def model_problems(model: dict) -> list[str]:
    bad = []
    if model.get("finetune", "lora") == "lora" and isinstance(model.get("lora"), dict):
        bad += [f"model.{problem}" for problem in LoraSpec(**model["lora"]).problems()]
    optimizer = model.get("optimizer")
    arguments = (optimizer.get("init_args") or {}) if isinstance(optimizer, dict) else {}
    if "lr" in arguments and not is_positive(arguments["lr"]):
        bad.append(f"model.optimizer.init_args.lr {arguments['lr']}: the learning rate must be a positive number")
    decay = arguments.get("weight_decay")
    if decay is not None and not (isinstance(decay, (int, float)) and math.isfinite(decay) and decay >= 0):
        bad.append(f"model.optimizer.init_args.weight_decay {decay}: must be >= 0")
    weight = model.get("sub_talker_weight")
    if weight is not None and not (math.isfinite(weight) and weight >= 0):
        bad.append(f"model.sub_talker_weight {weight}: must be >= 0")
    warmup = model.get("warmup_ratio")
    if warmup is not None and not 0 <= warmup < 1:
        bad.append(f"model.warmup_ratio {warmup}: must be in [0, 1)")
    return bad


def data_problems(data: dict) -> list[str]:
    bad = []
    size = data.get("batch_size")
    if size is not None and size < 1:
        bad.append(f"data.batch_size {size}: must be >= 1")
    workers = data.get("num_workers")
    if workers is not None and workers < 0:
        bad.append(f"data.num_workers {workers}: must be >= 0")
    return bad


def evaluation_problems(config: dict) -> list[str]:
    """The EvalSuite callback's settings (scales, sentences, caps) and its held-out file."""
    arguments = callback_args(config, "EvalSuite")
    if arguments is None:
        return []
    bad = []
    try:
        settings = EvalSettings.from_args(arguments)
    except UserError as error:
        return str(error).splitlines()
    if settings.heldout is not None and not Path(settings.heldout).expanduser().is_file():
        bad.append(f"EvalSuite.heldout {settings.heldout}: file not found")
    samples = arguments.get("audio_samples_to_log")
    if samples is not None and samples < 0:
        bad.append(f"EvalSuite.audio_samples_to_log {samples}: must be >= 0")
    return bad


def model_checkpoints(trainer: dict) -> list[tuple[int, dict]]:
    """(position in ``trainer.callbacks``, init_args) of every ModelCheckpoint there, subclasses included."""
    callbacks = trainer.get("callbacks") or []
    found = []
    for position, entry in enumerate(callbacks if isinstance(callbacks, list) else [callbacks]):
        if not isinstance(entry, dict) or "class_path" not in entry:
            continue
        module, _, name = str(entry["class_path"]).rpartition(".")
        cls = getattr(importlib.import_module(module), name, None) if module else None  # imported by the parser
        if isinstance(cls, type) and issubclass(cls, ModelCheckpoint):
            found.append((position, entry.get("init_args") or {}))
    return found


def saves_at_epoch_ends(init_args: dict) -> bool:
    """Whether a ModelCheckpoint writes epoch checkpoints: it does unless it saves every n steps or by time (as
    Lightning decides its triggers), which writes mid-epoch checkpoints (for a mid-epoch resume) instead."""
    return not init_args.get("every_n_train_steps") and init_args.get("train_time_interval") is None


def checkpoint_problems(trainer: dict) -> list[str]:
    """ModelCheckpoint settings that would hide the epochs from ``saved_epochs`` (evaluate, export and the run's
    closing lines find an epoch by its file ``checkpoints/epoch=NNN.ckpt``): a folder other than the run's, another
    name for epoch checkpoints (fit names them itself), two callbacks writing the same names, or mid-epoch
    checkpoints named like epoch checkpoints (a mid-epoch state would be taken for the epoch's end)."""
    bad = []
    epoch_wise = []
    for position, init_args in model_checkpoints(trainer):
        key = f"trainer.callbacks[{position}].init_args"
        if init_args.get("dirpath") is not None:
            bad.append(f"{key}.dirpath {init_args['dirpath']}: checkpoints are written into the run folder's "
                       f"{CHECKPOINT_DIR}/, where evaluate, export and fit --resume find them; leave dirpath unset "
                       "(the logger's save_dir and name choose where the run folder is)")  # fmt: skip
        filename = init_args.get("filename")
        if saves_at_epoch_ends(init_args):
            epoch_wise.append(position)
            if filename not in (None, EPOCH_CHECKPOINT_NAME):
                bad.append(f"{key}.filename {filename}: fit names epoch checkpoints {EPOCH_CHECKPOINT_NAME}.ckpt "
                           "itself (evaluate, export and fit --resume find an epoch by that name); leave filename "
                           "unset")  # fmt: skip
            continue
        auto_insert = init_args.get("auto_insert_metric_name", True)
        try:  # Lightning's own formatting, on a sample epoch and step
            sample = ModelCheckpoint(filename=filename, auto_insert_metric_name=auto_insert)
            name = sample.format_checkpoint_name({"epoch": 3, "step": 7})
        except (KeyError, ValueError, IndexError) as error:
            bad.append(f"{key}.filename {filename}: cannot be formatted ({error})")
            continue
        if EPOCH_CHECKPOINT.match(name):
            bad.append(f"{key}.filename {filename}: this ModelCheckpoint saves mid-epoch (every_n_train_steps or "
                       f"train_time_interval) but names its files as epoch checkpoints are named ({name}), so "
                       "evaluate and export would take a mid-epoch state for the epoch's end; name them by the "
                       "step, e.g. step={step}")  # fmt: skip
    if len(epoch_wise) > 1:
        listed = ", ".join(f"trainer.callbacks[{position}]" for position in epoch_wise)
        bad.append(f"{listed}: {len(epoch_wise)} ModelCheckpoint callbacks save at epoch ends and would write the same "
                   f"{EPOCH_CHECKPOINT_NAME}.ckpt files; keep one (its monitor and save_top_k choose the epochs it "
                   "keeps)")  # fmt: skip
    return bad


def settings_problems(config: dict, subcommand: str) -> list[str]:
    """Every problem of a resolved fit/validate config, one message each (empty when it can run)."""
    bad = trainer_problems(config.get("trainer") or {}, subcommand)
    bad += model_problems(model_args(config)) + data_problems(data_args(config)) + evaluation_problems(config)
    if subcommand == "fit":  # validate saves no checkpoint
        bad += checkpoint_problems(config.get("trainer") or {})
    if subcommand == "validate" and not config.get("ckpt_path"):
        bad.append(
            "validate: give --ckpt_path RUN/checkpoints/epoch=NNN.ckpt (it measures a saved checkpoint; "
            "`evaluate --run RUN` re-scores every saved epoch of a run)"
        )
    return bad
