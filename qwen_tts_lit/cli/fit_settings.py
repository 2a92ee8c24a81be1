"""The settings of ``fit`` and ``validate``, checked on the resolved config before any folder is created and any
weight loads: every setting that cannot work, or that would run and produce nothing, is one line, all reported at
once (exit 2). Pure functions over the config as a dict (``LightningCLI``'s namespace, ``.as_dict()``)."""

from __future__ import annotations

import math
from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.evaluation.settings import EvalSettings
from qwen_tts_lit.model.lora import LoraSpec
from qwen_tts_lit.runs.config import callback_args, data_args, model_args

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


def settings_problems(config: dict, subcommand: str) -> list[str]:
    """Every problem of a resolved fit/validate config, one message each (empty when it can run)."""
    bad = trainer_problems(config.get("trainer") or {}, subcommand)
    bad += model_problems(model_args(config)) + data_problems(data_args(config)) + evaluation_problems(config)
    if subcommand == "validate" and not config.get("ckpt_path"):
        bad.append(
            "validate: give --ckpt_path RUN/checkpoints/epoch=NNN.ckpt (it measures a saved checkpoint; "
            "`evaluate --run RUN` re-scores every saved epoch of a run)"
        )
    return bad
