"""LightningCLI for ``fit`` and ``validate``: links model and data, shares one run folder between loggers."""

from __future__ import annotations

import warnings

import torch
from lightning.pytorch.cli import LightningCLI

from qwen_tts_lit.data.datamodule import QwenTTSDataModule
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.train.module import QwenTTSModule


def precision_problem(precision: str, accelerator: str, cuda_available: bool, cuda_bf16: bool) -> str | None:
    """Why ``trainer.precision`` cannot run on the chosen device, or None. bf16 on CPU is supported by torch."""
    on_cuda = accelerator in ("gpu", "cuda") or (accelerator == "auto" and cuda_available)
    if accelerator in ("gpu", "cuda") and not cuda_available:
        return f"trainer.accelerator={accelerator}: no CUDA device is visible (use accelerator: cpu)"
    if str(precision).startswith("bf16") and on_cuda and not cuda_bf16:
        return (
            f"trainer.precision={precision}: this GPU has no bfloat16 support (pre-Ampere); "
            "compose configs/gpu/t4.yaml (float16 weights, precision 16-mixed) or use precision: 32-true"
        )
    return None


class QwenTTSCLI(LightningCLI):
    def __init__(self, args: list[str] | None, run: bool = True) -> None:
        super().__init__(
            QwenTTSModule,
            QwenTTSDataModule,
            args=args,
            run=run,
            save_config_kwargs={"overwrite": True},
        )

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("model.model", "data.model")  # data is prepared for and tokenized by the same model
        # The batch sampler shards across ranks itself, so Lightning must not wrap it in a DistributedSampler.
        parser.set_defaults({"trainer.use_distributed_sampler": False})

    def before_instantiate_classes(self) -> None:
        """Refuse a trainer setup the device cannot run, before any weights load."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.trainer
        cuda = torch.cuda.is_available()
        problem = precision_problem(
            str(trainer.precision), str(trainer.accelerator), cuda, cuda and torch.cuda.is_bf16_supported()
        )
        if problem:
            raise UserError(problem)

    def _share_run_folder(self) -> None:
        """Make every logger write into the first one's version folder, so the run is one folder."""
        loggers = self.trainer.loggers
        if len(loggers) > 1:
            version = loggers[0].version
            for logger in loggers[1:]:
                logger._version = version

    def before_fit(self) -> None:
        self._share_run_folder()

    def before_validate(self) -> None:
        self._share_run_folder()


class _ConfigOnly(QwenTTSCLI):
    """Parses exactly as ``fit`` does (config composition, links, defaults) and builds nothing."""

    def before_instantiate_classes(self) -> None:
        pass

    def instantiate_classes(self) -> None:
        pass

    def after_instantiate_classes(self) -> None:
        pass

    def _set_seed(self) -> None:
        pass  # nothing runs: no global seeding, no "Seed set" line


def resolved_fit_config(configs: list[str]) -> dict:
    """The config ``fit --config A --config B ...`` would run with (what ``--print_config`` prints), as plain values,
    without loading anything: a bad config exits with jsonargparse's message, as ``fit`` does."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")  # another subcommand's argv
        cli = _ConfigOnly([arg for path in configs for arg in ("--config", str(path))], run=False)
    return cli.config.as_dict()
