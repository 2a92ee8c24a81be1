"""LightningCLI for ``fit`` and ``validate``: links model and data, checks every setting before anything is created,
decides and claims the run folder (:mod:`~qwen_tts_lit.cli.run_folder`), writes checkpoints atomically, and says
where the run is, at the start, at the end, and with the resume command when it stops early."""

from __future__ import annotations

import os
import signal
import sys
import warnings
from argparse import ArgumentError
from pathlib import Path

import torch
from lightning.fabric.plugins.environments import ClusterEnvironment, SLURMEnvironment
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.plugins.io import CheckpointIO

from qwen_tts_lit.cli.config_keys import KeyParser, parse_error_line, rename_flags
from qwen_tts_lit.cli.fit_settings import model_checkpoints, saves_at_epoch_ends, settings_problems
from qwen_tts_lit.cli.import_policy import run_folder_policy
from qwen_tts_lit.cli.parse_errors import valid_keys
from qwen_tts_lit.cli.run_folder import RUN_DIR_ENV, FitSession, SessionCallback, expand_resume
from qwen_tts_lit.data.datamodule import QwenTTSDataModule
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import write_atomic
from qwen_tts_lit.runs.checkpoints import read_checkpoint, runs_trusted
from qwen_tts_lit.runs.folder import EPOCH_CHECKPOINT_NAME
from qwen_tts_lit.runs.submission import REQUEUE_SIGNAL_ENV
from qwen_tts_lit.train.checkpoint_io import AtomicCheckpointIO
from qwen_tts_lit.train.module import QwenTTSModule
from qwen_tts_lit.train.progress import quiet_lightning, use_our_progress_bar
from qwen_tts_lit.train.requeue import RequeueOnSignal
from qwen_tts_lit.train.rl import GRPOModule

RL_KEY = "group_size"  # a fit whose model section sets it runs the RL stage (GRPOModule): configs/rl*.yaml


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


def name_epoch_checkpoints(trainer) -> None:
    """Every ModelCheckpoint of the config (``trainer``: its namespace) that saves at epoch ends writes
    ``checkpoints/epoch=NNN.ckpt``, the one name ``saved_epochs`` reads: fit sets it (runs.folder owns the name; the
    configs leave it unset, checkpoint_problems refuses another), with Lightning's metric-name insertion off, which
    would make it ``epoch=epoch=000``. The saved config.yaml then says which name the run used."""
    callbacks = trainer.callbacks if isinstance(trainer.callbacks, list) else [trainer.callbacks]
    for position, init_args in model_checkpoints(trainer.as_dict()):
        if saves_at_epoch_ends(init_args):
            callbacks[position].init_args.filename = EPOCH_CHECKPOINT_NAME
            callbacks[position].init_args.auto_insert_metric_name = False


RESUME_HELP = (
    "--resume RUN continues the run folder RUN (runs/NAME/version_N) from its newest checkpoint (the one that "
    "records the most training, normally last.ckpt), in the same folder, wherever the folder was copied or moved: "
    "it stands for --config RUN/config.yaml --ckpt_path RUN/checkpoints/last.ckpt, and options after it override "
    "the saved config (--trainer.max_epochs N to train further). RUN may also be one of its checkpoints."
)


class RunConfig(SaveConfigCallback):
    """``config.yaml`` of the run, written atomically (a resumed run rewrites it with what it was resumed with)."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.already_saved:
            return
        log_dir = trainer.log_dir  # a collective under DDP: every rank asks
        if trainer.is_global_zero and log_dir:
            write_atomic(os.path.join(log_dir, self.config_filename), self.parser.dump(self.config, skip_none=False))
        self.already_saved = trainer.strategy.broadcast(True)


class QwenTTSCLI(LightningCLI):
    module_class = QwenTTSModule

    def __init__(self, args: list[str] | None, session: FitSession | None = None, run: bool = True) -> None:
        self.session = session or FitSession()
        super().__init__(
            self.module_class,
            QwenTTSDataModule,
            args=args,
            run=run,
            save_config_callback=RunConfig,
            save_config_kwargs={"overwrite": True},
            parser_class=KeyParser,
            parser_kwargs={"fit": {"epilog": RESUME_HELP}},
        )

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("model.model", "data.model")  # data is prepared for and tokenized by the same model
        # The batch sampler shards across ranks itself, so Lightning must not wrap it in a DistributedSampler.
        parser.set_defaults({"trainer.use_distributed_sampler": False})

    def parse_arguments(self, parser, args) -> None:
        """Parse, then read the checkpoint's record (LightningCLI loads its hyper-parameters right after this, and
        a damaged file must be named in one line before torch raises). A bad option or key is one line."""
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as error:
            parsers = getattr(self, "_subcommand_parsers", {})  # none when parsing without a subcommand (run=False)
            subcommand = next((a for a in (args or sys.argv[1:]) if a in parsers), "fit")
            keys = valid_keys(parsers.get(subcommand, parser))
            raise UserError(parse_error_line(str(error), subcommand, keys)) from None
        subcommand = self.config.get("subcommand")
        if subcommand:
            self.session.read_checkpoint(self.config[subcommand].get("ckpt_path"))

    def _parse_ckpt_path(self) -> None:
        """LightningCLI's reading of the checkpoint's hyper-parameters into the config; a failure is one line naming
        the checkpoint (the hyper-parameters of a checkpoint cannot be fixed by hand)."""
        try:
            if runs_trusted():
                self._merge_trusted_hyper_parameters()
            else:
                super()._parse_ckpt_path()
        except ArgumentError as error:
            checkpoint = self.config[self.config.subcommand].get("ckpt_path")
            line = parse_error_line(str(error), self.config.subcommand, valid_keys(self.parser))
            raise UserError(f"{checkpoint}: its hyper-parameters do not fit this version: {line}") from None

    def _merge_trusted_hyper_parameters(self) -> None:
        """Lightning 2.6.6's ``_parse_ckpt_path`` (pyproject pins it), reading the checkpoint as trusted: Lightning
        hard-codes ``weights_only=True``, so with --trust-run a checkpoint holding other objects (which the session
        has just unpickled) would fail there with torch's traceback."""
        ckpt_path = self.config[self.config.subcommand].get("ckpt_path") if self.config.get("subcommand") else None
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        hparams = dict(read_checkpoint(ckpt_path, mmap=True).get("hyper_parameters") or {})
        hparams.pop("_instantiator", None)
        if not hparams:
            return
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        try:
            self.config = self.parser.parse_object({self.config.subcommand: {"model": hparams}}, self.config)
        except SystemExit:
            sys.stderr.write("Parsing of ckpt_path hyperparameters failed!\n")
            raise

    def before_instantiate_classes(self) -> None:
        """Refuse settings that cannot work, all at once, before any folder exists or any weight loads; then decide
        and claim the run folder."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.trainer
        cuda = torch.cuda.is_available()
        problem = precision_problem(
            str(trainer.precision), str(trainer.accelerator), cuda, cuda and torch.cuda.is_bf16_supported()
        )
        problems = ([problem] if problem else []) + settings_problems(config.as_dict(), self.subcommand or "fit")
        if problems:
            raise UserError("\n".join(problems))
        name_epoch_checkpoints(trainer)
        self.session.decide(self.subcommand or "fit", config)

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        self.session.restore_given(self.config[self.subcommand] if self.subcommand else self.config)

    def instantiate_trainer(self, **kwargs):
        """Our checkpoint writer (unless the config brings a CheckpointIO) and the session's callback."""
        plugins = (self._get(self.config_init, "trainer", default={}) or {}).get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            plugins = [*plugins, AtomicCheckpointIO()]
        requeue_signal = os.environ.get(REQUEUE_SIGNAL_ENV)
        if requeue_signal and SLURMEnvironment.detect() and not any(isinstance(p, ClusterEnvironment) for p in plugins):
            # ablate's SLURM task: Lightning's own requeue (an hpc_ckpt saved inside its signal handler) is off;
            # RequeueOnSignal saves into the run folder at a step boundary and the task requeues (train/requeue.py).
            plugins = [*plugins, SLURMEnvironment(auto_requeue=False)]
        kwargs["plugins"] = plugins
        trainer = super().instantiate_trainer(**kwargs)
        config = self.config[self.subcommand] if self.subcommand else self.config
        if trainer.checkpoint_callback is not None and not model_checkpoints(config.trainer.as_dict()):
            # The config lists none, so this is Lightning's default one: its epochs are named as the config's are.
            trainer.checkpoint_callback.filename = EPOCH_CHECKPOINT_NAME
            trainer.checkpoint_callback.auto_insert_metric_name = False
        trainer.callbacks.append(SessionCallback(self.session))
        if requeue_signal:
            trainer.callbacks.append(RequeueOnSignal(requeue_signal))
        use_our_progress_bar(trainer)
        return trainer

    def before_fit(self) -> None:
        self.session.started()

    def after_fit(self) -> None:
        self.session.finished()

    def before_validate(self) -> None:
        self.session.started()

    def after_validate(self) -> None:
        self.session.finished()


class RLCLI(QwenTTSCLI):
    """``fit`` of the RL stage: the same data, run folder, checks and checkpoints, with GRPOModule as the model."""

    module_class = GRPOModule


def is_rl(args: list[str]) -> bool:
    """Whether ``args`` (after ``--resume`` expansion) ask for the RL stage: a ``--config`` file whose ``model``
    section sets ``group_size``, or ``--model.group_size`` on the command line."""
    import yaml

    for position, arg in enumerate(args):
        if arg == f"--model.{RL_KEY}" or arg.startswith(f"--model.{RL_KEY}="):
            return True
        path = args[position + 1] if arg == "--config" and position + 1 < len(args) else None
        path = arg.split("=", 1)[1] if arg.startswith("--config=") else path
        if path and Path(path).is_file():
            try:
                config = yaml.safe_load(Path(path).read_text()) or {}
            except yaml.YAMLError:
                continue  # LightningCLI names the file and line
            model = config.get("model") if isinstance(config, dict) else None
            if isinstance(model, dict) and RL_KEY in model:
                return True
    return False


def run_lightning(argv: list[str]) -> None:
    """Run LightningCLI on ``argv`` (which starts with fit or validate; ``--resume`` expanded first)."""
    quiet_lightning()  # before the Trainer is built: it prints the litlogger tip then
    args = rename_flags(expand_resume(argv))
    from_command_line = argv == sys.argv[1:]
    saved_argv, saved_run_dir = list(sys.argv), os.environ.get(RUN_DIR_ENV)
    session = FitSession()
    cli = RLCLI if is_rl(args) else QwenTTSCLI
    try:
        with run_folder_policy(args):  # a run folder's config imports no foreign class, wherever it names one
            if from_command_line:
                # LightningCLI warns when given args that are also sys.argv, so it reads them itself; DDP processes
                # that Lightning starts re-run sys.argv, so they get the expanded form too.
                sys.argv = [sys.argv[0], *args]
                cli(args=None, session=session)
            else:
                cli(args=args, session=session)
    except BaseException as error:
        replacement = session.failure(error)
        if replacement is None:
            raise
        raise replacement from error
    finally:
        sys.argv = saved_argv
        if saved_run_dir is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = saved_run_dir
        if session.interrupted:  # Lightning ignores SIGINT while it shuts down; give Ctrl-C back
            signal.signal(signal.SIGINT, signal.default_int_handler)


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


class _RLConfigOnly(_ConfigOnly):
    """The same for the RL stage's configs (GRPOModule's arguments)."""

    module_class = GRPOModule


def resolved_fit_config(configs: list[str]) -> dict:
    """The config ``fit --config A --config B ...`` would run with (what ``--print_config`` prints), as plain values,
    without loading anything: a bad config exits with jsonargparse's message, as ``fit`` does."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")  # another subcommand's argv
        args = [arg for path in configs for arg in ("--config", str(path))]
        cli = (_RLConfigOnly if is_rl(args) else _ConfigOnly)(args, run=False)
    return cli.config.as_dict()
