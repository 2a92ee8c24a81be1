"""Where ``fit`` and ``validate`` write, decided once before anything is written, and what they say about it.

- A new fit claims ``SAVE_DIR/NAME/version_N`` by creating it (``runs.folder.claim_version``: two fits started
  together never share a folder) and points every folder logger (CSV, TensorBoard) at it.
- A fit from a checkpoint that lies in a run folder (``--resume RUN`` or Lightning's own ``--ckpt_path
  RUN/checkpoints/last.ckpt``) continues that folder: same metrics.csv (the steps logged past the checkpoint are
  dropped first), same checkpoints, evaluation rows, chosen cell and report. The folder may have been copied or
  moved since the checkpoint was written: the checkpoint's record of its folder is read as this folder's
  (``SessionCallback.on_load_checkpoint``), so Lightning keeps updating ``last.ckpt`` instead of starting
  ``last-v1.ckpt``. ``--resume RUN`` takes the checkpoint that trained furthest, whatever its name.
- ``validate --ckpt_path RUN/checkpoints/epoch=NNN.ckpt`` writes into ``RUN/validate/epoch=NNN/version_K``.
- A folder given explicitly (a logger's ``version``, as ``ablate`` does) is used as given; a new fit refuses one
  that already holds checkpoints (it would overwrite them).
- DDP processes that Lightning starts re-run the command line; they find the folder rank 0 claimed in
  ``$QWEN_TTS_LIT_RUN_DIR`` (other launchers: ranks > 0 claim nothing, Lightning broadcasts rank 0's log dir).

The saved ``config.yaml`` keeps the loggers as the user gave them: running it again starts a new version rather
than overwriting this one; resuming takes the folder from the checkpoint.
"""

from __future__ import annotations

import os
import shutil
import sys
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from qwen_tts_lit.errors import Interrupted, RunFailed, UserError
from qwen_tts_lit.evaluation.publish import result_lines
from qwen_tts_lit.files import StorageError, remove_temporaries, shown, storage_error
from qwen_tts_lit.runs.checkpoints import SavedAt, resume_checkpoint, saved_at, untrusted_class, untrusted_classes
from qwen_tts_lit.runs.config import read_config
from qwen_tts_lit.runs.folder import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    VALIDATE_DIR,
    claim_version,
    export_command,
    holds_checkpoints,
    relocated_state,
    resume_command,
    run_of_checkpoint,
)
from qwen_tts_lit.runs.metrics import keep_metrics_before

RUN_DIR_ENV = "QWEN_TTS_LIT_RUN_DIR"
LIGHTNING_CSV = "lightning.pytorch.loggers.CSVLogger"
CONTINUED_CSV = "qwen_tts_lit.train.loggers.CSVLogger"  # appends to metrics.csv instead of deleting it
DEFAULT_LOGGER = "lightning.pytorch.loggers.TensorBoardLogger"  # Lightning's `logger: true`
FOLDER_LOGGERS = (LIGHTNING_CSV, CONTINUED_CSV, DEFAULT_LOGGER)  # loggers whose folder is save_dir/name/version
CHECKPOINT_KEYWORDS = ("last", "best", "hpc", "registry")  # Lightning's named ckpt_path values


def expand_resume(args: list[str]) -> list[str]:
    """``--resume TARGET`` -> ``--config RUN/config.yaml --ckpt_path CHECKPOINT``, in place (options after it
    override the saved config, e.g. ``--trainer.max_epochs 6`` to train further). TARGET is a run folder (its
    checkpoint that trained furthest: :func:`~qwen_tts_lit.runs.checkpoints.resume_checkpoint`) or a checkpoint
    inside one."""
    for index, arg in enumerate(args):
        if arg == "--resume" or arg.startswith("--resume="):
            value = arg.split("=", 1)[1] if "=" in arg else (args[index + 1] if index + 1 < len(args) else "")
            rest = args[index + (1 if "=" in arg else 2) :]
            run, checkpoint = resume_target(value)
            refuse_untrusted_config(run)
            return [*args[:index], "--config", str(run / CONFIG_FILE), "--ckpt_path", str(checkpoint), *rest]
    return args


def refuse_untrusted_config(run: Path) -> None:
    """LightningCLI imports and instantiates every ``class_path`` of the config it is given: a resumed run folder's
    may come from anyone, so only this project's, Lightning's and torch's classes pass without --trust-run."""
    import yaml

    try:
        config = read_config(run)
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"{run / CONFIG_FILE}: cannot be read as YAML ({str(error).splitlines()[0]})") from None
    for found in untrusted_classes(config)[:1]:
        raise untrusted_class(run / CONFIG_FILE, found)


def resume_target(value: str) -> tuple[Path, Path]:
    """(run folder, checkpoint) of ``--resume VALUE``; UserError saying what is missing."""
    if not value:
        raise UserError("--resume: give the run folder (runs/NAME/version_N) or one of its checkpoints")
    path = Path(value).expanduser()
    if path.is_file():
        run = run_of_checkpoint(path)
        if run is None:
            raise UserError(f"--resume {value}: this checkpoint is not in a run folder (RUN/{CHECKPOINT_DIR}/)")
        return run, path
    if not path.is_dir():
        raise UserError(f"--resume {value}: no such run folder or checkpoint")
    if not (path / CONFIG_FILE).is_file():
        raise UserError(f"--resume {value}: {CONFIG_FILE} not found; is this a run folder (runs/NAME/version_N)?")
    checkpoint = resume_checkpoint(path)
    if checkpoint is None and holds_checkpoints(path):
        raise UserError(
            f"--resume {value}: no checkpoint in {shown(path / CHECKPOINT_DIR)} is intact (cut short by a kill or a "
            f"full disk?); start again with python -m qwen_tts_lit fit --config {shown(path / CONFIG_FILE)}"
        )
    if checkpoint is None:
        raise UserError(
            f"--resume {value}: no checkpoint was saved yet, so there is nothing to resume; start again with "
            f"python -m qwen_tts_lit fit --config {shown(path / CONFIG_FILE)}"
        )
    return path, checkpoint


def is_rank_zero() -> bool:
    return rank_zero_only.rank == 0


def say(line: str) -> None:
    """What fit tells the user (rank 0 only), on stderr beside Lightning's own messages and progress bars."""
    if is_rank_zero():
        print(line, file=sys.stderr, flush=True)


def folder_loggers(trainer: Namespace) -> list[Namespace]:
    """The configured loggers that write into ``save_dir/name/version`` (``logger: true`` made explicit first)."""
    if trainer.get("logger") in (None, True):
        trainer.logger = [Namespace(class_path=DEFAULT_LOGGER, init_args=Namespace(
            save_dir=trainer.get("default_root_dir") or os.getcwd(), name="lightning_logs", version=None))]  # fmt: skip
    loggers = trainer.logger if isinstance(trainer.logger, list) else [trainer.logger]
    return [entry for entry in loggers if isinstance(entry, Namespace) and entry.get("class_path") in FOLDER_LOGGERS]


def given_folder(logger: Namespace) -> tuple[Path, str | None]:
    """(save_dir/name, version folder name or None) as a logger entry gives them."""
    arguments = logger.init_args
    root = Path(str(arguments.get("save_dir") or ".")) / str(arguments.get("name") or "")
    version = arguments.get("version")
    return root, (None if version is None else version if isinstance(version, str) else f"version_{version}")


@dataclass
class FitSession:
    """One fit or validate: its run folder and how it came to be, for the messages and the clean-up of a refusal."""

    subcommand: str = "fit"
    run_dir: Path | None = None
    claimed: Path | None = None
    """The outermost folder this process created for ``run_dir``: a start refused for bad input removes it again."""
    checkpoint: Path | None = None
    saved: SavedAt | None = None
    """What the checkpoint records: its epoch, step and checkpoint folder."""
    resumed: bool = False
    """A fit that continues the run folder its checkpoint lies in."""
    interrupted: bool = False
    given_loggers: object = None
    """``trainer.logger`` as given: restored after instantiation, so config.yaml shows what was asked."""

    # ---------------------------------------------------------------------------------------------- the decision

    def read_checkpoint(self, ckpt_path: str | None) -> None:
        """Record what the checkpoint to start from says; UserError naming a missing or damaged file."""
        if ckpt_path and str(ckpt_path) not in CHECKPOINT_KEYWORDS:
            self.checkpoint = Path(ckpt_path).expanduser()
            self.saved = saved_at(self.checkpoint)

    def decide(self, subcommand: str, config: Namespace) -> None:
        """Decide and claim the run folder and point every folder logger at it (called before instantiation)."""
        self.subcommand = subcommand
        run = run_of_checkpoint(self.checkpoint) if self.checkpoint is not None else None
        trainer = config.trainer
        self.given_loggers = deepcopy(trainer.get("logger"))
        loggers = folder_loggers(trainer)
        if not loggers:
            self.run_dir = Path(trainer.get("default_root_dir") or os.getcwd())
            return
        self.run_dir = self._folder(run, *given_folder(loggers[0]))
        if self.run_dir is None:
            return
        for logger in loggers:
            logger.init_args.save_dir, logger.init_args.name = str(self.run_dir.parent), ""
            logger.init_args.version = self.run_dir.name
            if self.resumed and logger.class_path == LIGHTNING_CSV:
                logger.class_path = CONTINUED_CSV
        os.environ[RUN_DIR_ENV] = str(self.run_dir)

    def _folder(self, run: Path | None, root: Path, version: str | None) -> Path | None:
        if os.environ.get(RUN_DIR_ENV):  # a DDP process Lightning started: rank 0 decided already
            return Path(os.environ[RUN_DIR_ENV])
        if self.subcommand == "fit" and run is not None:
            self.resumed = True
            if is_rank_zero():
                keep_metrics_before(run, self.saved.global_step)  # the resumed run logs those steps again
                for folder in (run, run / CHECKPOINT_DIR):
                    remove_temporaries(folder)  # e.g. a checkpoint the kill interrupted mid-write
            return run.absolute()  # recorded in the checkpoints it writes; SessionCallback relocates what it reads
        if version is not None:
            folder = root / version
            if self.subcommand == "fit" and holds_checkpoints(folder):
                raise UserError(
                    f"{folder}: holds the checkpoints of an earlier run, which a new fit would overwrite; continue "
                    f"it with `{resume_command(folder)}`, or give the loggers another version"
                )
            return folder
        if not is_rank_zero():
            return None  # ranks > 0 write nothing; Lightning broadcasts rank 0's folder
        if self.subcommand == "validate" and run is not None:
            root = run / VALIDATE_DIR / f"epoch={self.saved.epoch:03d}"
        root = root.absolute()  # recorded in checkpoints: a resume from any directory matches it
        created = next((p for p in (*reversed(root.parents), root) if not p.exists()), None)
        folder = claim_version(root)
        self.claimed = created or folder
        return folder

    def restore_given(self, config: Namespace) -> None:
        """Put the loggers back as given (called after instantiation: config.yaml then shows what was asked)."""
        config.trainer.logger = self.given_loggers

    # ---------------------------------------------------------------------------------------------- messages

    def started(self) -> None:
        run = shown(self.run_dir) if self.run_dir else "(chosen by Lightning)"
        if self.subcommand == "validate":
            epoch = f"epoch {self.saved.epoch} of {shown(self.checkpoint)}" if self.saved else "the model"
            say(f"validate: {epoch}; results in {run}")
        elif self.resumed:
            saved = self.saved
            say(f"fit: resuming {run} from {shown(self.checkpoint)} (epoch {saved.epoch}, step {saved.global_step})")
        else:
            say(f"fit: run folder {run}")

    def finished(self) -> None:
        if self.run_dir is None:
            return
        lines = [f"{self.subcommand}: done; run folder {shown(self.run_dir)}", *result_lines(self.run_dir)]
        if self.subcommand == "fit":
            lines.append(f"  train further: {resume_command(self.run_dir)} --trainer.max_epochs N")
            lines.append(f"  export: {export_command(self.run_dir)}")
        for line in lines:
            say(line)

    def resume_hint(self) -> str:
        """How to continue this run after it stopped."""
        if self.run_dir is None or self.subcommand != "fit":
            return ""
        if not holds_checkpoints(self.run_dir):
            return f"run folder {shown(self.run_dir)}: no checkpoint was saved yet; start again with the same command"
        return f"run folder {shown(self.run_dir)}; resume with: {resume_command(self.run_dir)}"

    # ---------------------------------------------------------------------------------------------- failures

    def failure(self, error: BaseException) -> BaseException | None:
        """What to raise instead of ``error`` (None: re-raise it): one line that says how to resume; a refused
        start removes the folder it claimed."""
        if isinstance(error, SystemExit):  # Lightning exits 1 after Ctrl-C; jsonargparse exits 2 on bad options
            return self.interruption() if self.interrupted else None
        if isinstance(error, UserError):
            self.remove_if_empty()
            return None
        if isinstance(error, KeyboardInterrupt):
            return self.interruption()
        hint = self.resume_hint()
        failure = storage_error(error) or (error if isinstance(error, RunFailed) else None)
        if failure is None:  # a bug: its traceback follows
            if hint:
                say(f"{self.subcommand}: stopped by an error; {hint}")
            return None
        kind = StorageError if isinstance(failure, StorageError) else type(failure)
        return kind(f"{failure}" + (f" ({hint})" if hint else ""))

    def interruption(self) -> Interrupted:
        hint = self.resume_hint()
        return Interrupted("interrupted" + (f"; {hint}" if hint else ""))

    def remove_if_empty(self) -> None:
        """Remove the folders this process created for its run when nothing of value was written into them yet."""
        if self.claimed is not None and self.run_dir is not None and not holds_checkpoints(self.run_dir):
            shutil.rmtree(self.run_dir, ignore_errors=True)
            for parent in self.run_dir.absolute().parents:  # the parents the claim created, while empty
                created = parent == self.claimed or self.claimed in parent.parents
                if not created or any(parent.iterdir()):
                    break
                parent.rmdir()


class SessionCallback(L.Callback):
    """Tells the session that the run was interrupted (Lightning then exits 1 itself, before we see the Ctrl-C), and
    makes a resumed run folder recognise its own checkpoints wherever the folder now lies."""

    def __init__(self, session: FitSession) -> None:
        self.session = session

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        """Relocate the saved state of every ModelCheckpoint that writes into the resumed run's checkpoints folder.
        Lightning calls this hook of every callback before any callback's ``load_state_dict`` reads the same dict.
        The checkpoint lies in that folder, so its record is this run's, whatever path the folder had when it was
        written (copied with ``cp -a``, moved to another disk, reached through another mount or symlink)."""
        run = self.session.run_dir
        states = checkpoint.get("callbacks")
        if not self.session.resumed or run is None or not isinstance(states, dict):
            return
        folder = (run / CHECKPOINT_DIR).absolute()
        for callback in trainer.checkpoint_callbacks:
            state = states.get(callback.state_key)
            if isinstance(callback, ModelCheckpoint) and isinstance(state, dict) and callback.dirpath is not None:
                if Path(callback.dirpath).absolute() == folder:
                    states[callback.state_key] = relocated_state(state, str(callback.dirpath))

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.session.interrupted = isinstance(exception, KeyboardInterrupt)
