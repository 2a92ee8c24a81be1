"""EvalSuite: after each validation epoch, speak the held-out sentences at several LoRA strengths and measure.

Per (epoch, lora_scale) cell: one synthesis per sentence (fixed seeds), then ASR WER, speaker similarity, VAD speech
rate against the real recording, and runaway generations on that same audio. All cells of an epoch are spoken
together (``batch_size`` sentences x scales per generate call) and judged together; a progress bar (cells x
sentences, per step) shows on stderr when the trainer shows its own. Rank 0 does the work (the judges load once per
run and stay loaded); the numbers are broadcast so every rank logs the same values. Outputs in the run folder:
the evaluation rows, the synthesized audio, the chosen cell and the listening report (``runs``); metrics ``val/wer``,
``val/spk_sim``, ``val/rate_ratio``, ``val/eos_fail``, ``val/dnsmos_ovrl``, ``val/instruct_retention`` (a probed
cell's) and ``val/score`` (this epoch's best scale; monitor ``val/score`` with mode max), ``val/best_scale`` and the
same per scale under ``val_scale/NAME@S``.
"""

from __future__ import annotations

import math
import time
import warnings
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn

from qwen_tts_lit.data.dataset import NO_EVALUATION, reference_clip
from qwen_tts_lit.data.prepare.outputs import manifest_path
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.evaluation.heldout import measure_real, read_heldout
from qwen_tts_lit.evaluation.instruct_probe import (
    ProbeMeasures,
    ProbeSentence,
    attach,
    base_effects,
    measure_presets,
    preset_effects,
    preset_speakers,
    presets_record,
    probe_effects,
    probe_only,
    synthesizer_speaker,
)
from qwen_tts_lit.evaluation.judges import Judges
from qwen_tts_lit.evaluation.publish import publish, record_presets
from qwen_tts_lit.evaluation.scoring import check_prefixes, evaluate_baselines, evaluate_epoch
from qwen_tts_lit.evaluation.settings import EvalSettings, InstructProbeSettings, JudgeSettings, asr_problem
from qwen_tts_lit.metrics.evidence import START_EPOCH
from qwen_tts_lit.metrics.instructions import probes_named
from qwen_tts_lit.metrics.selection import SelectionRule, aggregate, select_best
from qwen_tts_lit.model.layout import trained_prefixes
from qwen_tts_lit.model.lora import evaluable_scales, has_lora, trainable_state_dict
from qwen_tts_lit.runs.baselines import VOICE_CLONES, XVECTOR
from qwen_tts_lit.runs.folder import saved_epochs
from qwen_tts_lit.runs.records import read_best, read_rows
from qwen_tts_lit.runs.weights import load_trained
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice
from qwen_tts_lit.upstream.loading import load_config
from qwen_tts_lit.upstream.pairings import instruct_problem

LOGGED = ("error_rate", "wer", "cer", "spk_sim", "rate_ratio", "eos_fail", "dnsmos_ovrl", "instruct_retention")
DEFAULTS = EvalSettings()


def is_start(row: dict) -> bool:
    """An evaluation row of an RL run's starting point (not a zero-shot baseline, which also has epoch -1)."""
    return int(row["epoch"]) == START_EPOCH and not row.get("baseline")


def evaluated_epoch(trainer: L.Trainer, pl_module: L.LightningModule) -> int:
    """The epoch whose weights are evaluated: the current one in fit; in validate the loaded checkpoint's own epoch
    (Lightning's counter starts at 0 there, which would label a checkpoint of epoch 2 as epoch 0)."""
    loaded = getattr(pl_module, "checkpoint_epoch", None)
    if trainer.state.fn != TrainerFn.FITTING and loaded is not None:
        return int(loaded)
    return trainer.current_epoch


class EvalSuite(L.Callback):
    def __init__(
        self,
        scales: list[float] = list(DEFAULTS.scales),  # noqa: B006, B008 - jsonargparse shows list defaults
        num_utterances: int = DEFAULTS.num_utterances,
        heldout: str | None = DEFAULTS.heldout,
        seed: int = DEFAULTS.seed,
        every_n_epochs: int = DEFAULTS.every_n_epochs,
        max_new_tokens: int | None = DEFAULTS.max_new_tokens,
        batch_size: int = DEFAULTS.batch_size,
        decoding: str = DEFAULTS.decoding,
        judges: JudgeSettings = DEFAULTS.judges,
        rule: SelectionRule = DEFAULTS.rule,
        baselines: list[str] = list(DEFAULTS.baselines),  # noqa: B006, B008 - jsonargparse shows list defaults
        instruct_probe: InstructProbeSettings = DEFAULTS.instruct_probe,
        presets_kept: int = DEFAULTS.presets_kept,
        audio_samples_to_log: int = 2,
    ) -> None:
        """
        Args:
            scales: LoRA strengths to synthesize at (the seed guide's sweep; 1.0 = as trained, 0 = the base model).
                A fully fine-tuned model has no adapters to scale and is evaluated at 1.0 only.
            num_utterances: Held-out sentences per cell (the first N of the manifest).
            heldout: JSONL of held-out sentences with real recordings (text, audio[, id, language]); None: the
                prepared dataset's val.jsonl.
            seed: Sentence i is sampled with seed + i in every cell, so cells differ only by the weights.
            every_n_epochs: Evaluate every N epochs (and always after the last one).
            max_new_tokens: Frame cap of every generation; None: a generous cap from each text's length.
            batch_size: Generations per generate call: an epoch's sentences x scales are spoken together, this many
                at a time (the default 8 x 5 grid in one call); lower it if evaluation runs out of GPU memory.
            decoding: Key/value cache of those generate calls: dynamic (upstream's), static (preallocated; the same
                codes) or cuda_graphs (static, the code predictor replayed from CUDA graphs; static without CUDA).
                docs/gpu_check.md.
            judges: ASR / speaker-similarity backends.
            rule: How the best (epoch, scale) cell is picked.
            baselines: Zero-shot baselines of the base model scored before the first epoch on the same sentences, seeds
                and judges, as baseline rows: xvector (the training x-vector, adapters at scale 0), voice_clone
                (upstream's generate_voice_clone from the first training clip as recorded and its transcript, in its
                default streaming layout), voice_clone_non_streaming (the same call with non_streaming_mode=True, the
                layout training uses); empty = none.
            instruct_probe: The instruction-retention probe (enabled, every_n_epochs, scales, sentences, probes); off
                by default.
            presets_kept: Held-out sentences each preset speaker of the base model (a CustomVoice checkpoint's; a
                Base has none) speaks at scale 0 and at the chosen cell when fit ends, to measure whether the
                fine-tune kept its voice (the chosen cell's presets_kept); presets x N x 2 generations once per run;
                0: off.
            audio_samples_to_log: Synthesized clips of the epoch's best scale sent to TensorBoard.
        """
        # By keyword: a reordered EvalSettings must not swap values (tests/train/test_eval_suite_args.py proves these
        # flat arguments are EvalSettings' fields, with the same defaults and docs).
        self.settings = EvalSettings(scales=tuple(scales), num_utterances=num_utterances, heldout=heldout, seed=seed,
                                     every_n_epochs=every_n_epochs, max_new_tokens=max_new_tokens,
                                     batch_size=batch_size, decoding=decoding, judges=judges, rule=rule,
                                     baselines=tuple(baselines), instruct_probe=instruct_probe,
                                     presets_kept=presets_kept)  # fmt: skip
        self.audio_samples_to_log = audio_samples_to_log
        self._judges: Judges | None = None
        self._heldout = None  # the sentences evaluation speaks: read and checked once, in setup
        self._real = None
        self._train_started = 0.0
        self._probe_warned = False
        self._live_epoch: int | None = None  # the epoch whose weights were last evaluated (in memory)

    # ------------------------------------------------------------------ hooks

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Before the first step: a run whose evaluation could never happen is refused (Lightning would silently
        skip a validation split with no rows). ``trainer.limit_val_batches 0`` is the documented opt-out."""
        if not trainer.limit_val_batches:
            return
        manifests = [self._heldout_manifest(trainer)]
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "root"):
            manifests.append(manifest_path(datamodule.root, "val"))  # the validation loop runs over this split
        heldout = {}
        for manifest in dict.fromkeys(manifests):
            try:
                heldout[manifest] = read_heldout(manifest, self.settings.num_utterances)
            except UserError as error:
                raise UserError(f"{error}; {NO_EVALUATION}") from error
        items, source = heldout[manifests[0]], str(manifests[0])  # the sentences evaluation speaks
        # A non-English held-out set judged by an English-only ASR would score every epoch as noise: refuse now.
        problem = asr_problem(self.settings.judges, {item.language for item in items}, source)
        if problem:
            raise UserError(problem)
        check_prefixes(items, self._prefixes(trainer), source)
        self._check_probe_model(pl_module)
        self._heldout = items

    def _check_probe_model(self, pl_module: L.LightningModule) -> None:
        """The probe on a checkpoint that refuses instructions (the 0.6B CustomVoice) would stop the run at its
        first probe, after the baselines: refused here, before anything starts (its config alone says so)."""
        model = getattr(getattr(pl_module, "hparams", None), "model", None)
        if not self.settings.instruct_probe.enabled or not isinstance(model, str):
            return
        problem = instruct_problem(load_config(model))
        if problem:
            raise UserError(f"EvalSuite.instruct_probe: {model}: {problem}; set instruct_probe.enabled: false")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Before the first step (not on resume: the rows are there), on rank 0: the zero-shot baselines, and an RL
        run's starting point (``evaluates_start``: the module's weights before any step, its SFT cell or the base
        model) as the cells of epoch ``START_EPOCH``: the chosen cell is then picked among the start and the RL steps,
        on the same rows."""
        starts = bool(getattr(pl_module, "evaluates_start", False))
        if not trainer.limit_val_batches or not (self.settings.baselines or starts):
            return
        run_dir = Path(trainer.log_dir or trainer.default_root_dir)  # log_dir is a collective under DDP: every rank
        if trainer.is_global_zero:
            rows = read_rows(run_dir)
            if self.settings.baselines and not any(row.get("baseline") for row in rows):
                self._evaluate_baselines(trainer, pl_module, run_dir)
            if starts and not any(is_start(row) for row in rows):
                self._evaluate_start(trainer, pl_module, run_dir)
        trainer.strategy.barrier()

    def _evaluate_start(self, trainer: L.Trainer, pl_module: L.LightningModule, run_dir: Path) -> None:
        self._load_judges(trainer, run_dir)
        voices = pl_module.voices or {None: pl_module.xvector}
        synthesizer = Synthesizer(
            pl_module.wrapper, Voice(xvector=next(iter(voices.values()))), decoding=self.settings.decoding
        )
        settings = self.settings
        rows = evaluate_epoch(synthesizer, self._judges, self._real, run_dir, START_EPOCH, settings.scales,
                              settings.seed, settings.max_new_tokens, voices, settings.batch_size,
                              show_progress=trainer.progress_bar_callback is not None,
                              prefixes=self._prefixes(trainer))  # fmt: skip
        publish(run_dir, rows, settings.rule)

    def _evaluate_baselines(self, trainer: L.Trainer, pl_module: L.LightningModule, run_dir: Path) -> None:
        self._load_judges(trainer, run_dir)
        datamodule = getattr(trainer, "datamodule", None)
        root = getattr(datamodule, "root", None)
        wants_clone = bool(VOICE_CLONES & set(self.settings.baselines))
        reference = reference_clip(root) if wants_clone and root is not None else None
        settings = self.settings
        voices = pl_module.voices or {None: pl_module.xvector}
        rows = evaluate_baselines(pl_module.wrapper, voices, reference, self._judges, self._real, run_dir,
                                  settings.seed, settings.max_new_tokens, settings.batch_size,
                                  trainer.progress_bar_callback is not None, self._prefixes(trainer),
                                  settings.baselines, settings.decoding)  # fmt: skip
        if settings.instruct_probe.enabled:
            self._probe_base(pl_module, rows, voices)
        publish(run_dir, rows, settings.rule)

    def _probe_base(self, pl_module: L.LightningModule, rows: list[dict], voices: dict) -> None:
        """The probe's reference: the base model's effects with the new voice, written into the x-vector baseline's
        rows (and, for a base with preset speakers, its first preset's effects beside them)."""
        voice_rows = [row for row in rows if row.get("baseline") == XVECTOR]
        (scale,) = evaluable_scales(pl_module.wrapper.model, [0.0])
        presets = [str(name) for name in pl_module.wrapper.model.get_supported_speakers() or ()]
        speaker, decoding = next(iter(voices)), self.settings.decoding
        preset = None  # the base model with a voice it was built with (CustomVoice's first preset)
        if presets:
            preset_speaker = Synthesizer(pl_module.wrapper, Voice(speaker=presets[0]), decoding=decoding)
            preset = self._probe(preset_speaker, [], [scale], [], speaker=speaker)
        new_voice = Synthesizer(pl_module.wrapper, Voice(xvector=next(iter(voices.values()))), decoding=decoding)
        self._probe(new_voice, voice_rows, [scale], voice_rows, presets=preset, speaker=speaker)

    def _load_judges(self, trainer: L.Trainer, run_dir: Path) -> None:
        if self._judges is None:  # once per run: judge models and the real recordings' measurements
            self._judges = Judges(self.settings.judges)
            self._real = measure_real(self._heldout, self._judges, run_dir)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """When fit ends (the chosen cell is known): whether the base model's preset speakers kept their voices, on
        rank 0, for a base that has presets (a CustomVoice checkpoint's; nothing to do on a Base)."""
        if not trainer.limit_val_batches or not self.settings.presets_kept or self._heldout is None:
            return
        run_dir = Path(trainer.log_dir or trainer.default_root_dir)  # log_dir: a collective under DDP
        if trainer.is_global_zero:
            self._presets_kept(trainer, pl_module, run_dir)
        trainer.strategy.barrier()

    def _presets_kept(self, trainer: L.Trainer, pl_module: L.LightningModule, run_dir: Path) -> None:
        """Each preset speaks the first ``presets_kept`` held-out sentences at scale 0 and at the chosen cell
        (``evaluation.instruct_probe.measure_presets``); the record goes into the chosen cell (its
        ``presets_kept``) and the report. The chosen epoch's weights are the live ones or, for an earlier epoch,
        its checkpoint's, swapped in and back out."""
        presets = preset_speakers(pl_module.wrapper)
        best = read_best(run_dir)
        if not presets or best is None:
            return
        settings = self.settings
        epoch, scale = int(best["epoch"]), float(best["lora_scale"])
        items = list(self._heldout[: settings.presets_kept])
        record = presets_record(epoch, scale, presets, [item.utt_id for item in items])
        if not has_lora(pl_module.wrapper.model):
            record["reason"] = "a fully fine-tuned model has no scale 0: the base model's presets are gone from memory"
        elif epoch != self._live_epoch and epoch not in saved_epochs(run_dir):
            record["reason"] = f"epoch {epoch}'s weights were not saved (checkpoints/), so its cell cannot speak"
        else:
            self._load_judges(trainer, run_dir)
            with self._weights_of(pl_module, epoch, run_dir):
                record = measure_presets(pl_module.wrapper, self._judges.speaker, items, epoch=epoch, lora_scale=scale,
                                         seed=settings.seed, max_new_tokens=settings.max_new_tokens,
                                         batch_size=settings.batch_size, decoding=settings.decoding)  # fmt: skip
        record_presets(run_dir, record)

    @contextmanager
    def _weights_of(self, pl_module: L.LightningModule, epoch: int, run_dir: Path):
        """The live model with ``epoch``'s trained tensors in place (its checkpoint's when it is not the epoch the
        live weights are), the live ones restored afterwards."""
        if epoch == self._live_epoch:
            yield
            return
        live = {name: tensor.detach().clone() for name, tensor in trainable_state_dict(pl_module.tts).items()}
        training = pl_module.tts.training
        load_trained(pl_module.tts, saved_epochs(run_dir)[epoch])
        try:
            yield
        finally:
            pl_module.tts.load_state_dict(live, strict=False)
            pl_module.tts.train(training)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._train_started = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.due(trainer):
            return
        train_seconds = time.perf_counter() - self._train_started if self._train_started else 0.0
        run_dir = Path(trainer.log_dir or trainer.default_root_dir)  # log_dir: a collective under DDP
        started = time.perf_counter()
        summary = self._evaluate(trainer, pl_module, run_dir) if trainer.is_global_zero else None
        summary = trainer.strategy.broadcast(summary, src=0)
        summary["eval_seconds"] = time.perf_counter() - started
        self._log(pl_module, summary, train_seconds)

    # ------------------------------------------------------------------ work (rank 0)

    def due(self, trainer: L.Trainer) -> bool:
        """Whether this epoch is evaluated: every `every_n_epochs`, and always the last one (validate: always)."""
        if trainer.state.fn != TrainerFn.FITTING:
            return True  # validate: the checkpoint it was asked about
        epoch = trainer.current_epoch
        last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        return (epoch + 1) % self.settings.every_n_epochs == 0 or last

    @staticmethod
    def _prefixes(trainer: L.Trainer) -> tuple[str, ...]:
        """The codec prefixes training uses (the datamodule's language_tag): evaluation speaks with each."""
        tags = getattr(getattr(trainer, "datamodule", None), "tags", None)
        return trained_prefixes(tags.mode if tags is not None else "off")

    def _heldout_manifest(self, trainer: L.Trainer) -> Path:
        if self.settings.heldout is not None:
            return Path(self.settings.heldout).expanduser()
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "root"):
            raise UserError("EvalSuite: give `heldout` (a JSONL of sentences with real recordings)")
        return manifest_path(datamodule.root, "val")

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, run_dir: Path) -> dict:
        self._load_judges(trainer, run_dir)
        voices = pl_module.voices or {None: pl_module.xvector}  # several speakers: each row speaks with its own
        synthesizer = Synthesizer(
            pl_module.wrapper, Voice(xvector=next(iter(voices.values()))), decoding=self.settings.decoding
        )
        settings, epoch = self.settings, evaluated_epoch(trainer, pl_module)
        self._live_epoch = epoch  # the weights in memory when fit ends are the last evaluated epoch's
        new_rows = evaluate_epoch(synthesizer, self._judges, self._real, run_dir, epoch, settings.scales,
                                  settings.seed, settings.max_new_tokens, voices, settings.batch_size,
                                  show_progress=trainer.progress_bar_callback is not None,
                                  prefixes=self._prefixes(trainer))  # fmt: skip
        if settings.instruct_probe.enabled and (epoch + 1) % settings.instruct_probe.every_n_epochs == 0:
            ungated = replace(settings.rule, min_instruct_retention=None)  # which scale is best, before the probe
            scales = settings.instruct_probe.scales or [select_best(new_rows, ungated)["lora_scale"]]
            reference = [row for row in read_rows(run_dir) if row.get("baseline") == XVECTOR]
            self._probe(synthesizer, new_rows, scales, reference, speaker=next(iter(voices)))
        publish(run_dir, new_rows, settings.rule)
        epoch_best = select_best(new_rows, settings.rule)  # this epoch's best scale, by the run's own rule
        self._log_audio(trainer, run_dir, new_rows, epoch_best["lora_scale"], epoch)
        return {"cells": aggregate(new_rows, settings.rule.speaker_aggregate), "best": epoch_best}

    def _probe(
        self,
        synthesizer: Synthesizer,
        rows: list[dict],
        scales,
        reference_rows: list[dict],
        presets=None,
        speaker: str | None = None,
    ) -> dict | None:
        """The instruction-retention probe (evaluation/instruct_probe.py) at each of ``scales``: its effects into
        ``rows`` beside the base model's (``reference_rows``: the x-vector baseline's rows, which the base probe
        wrote into, so a resumed run keeps its reference). Skipped, with one warning, when the model cannot speak
        instructions. Returns the last scale's {utt_id: {probe: effect}} (None when skipped)."""
        settings = self.settings.instruct_probe
        probes = probes_named(settings.probes)
        # The synthesizer speaks with one voice (several speakers: the first's), so only that voice's sentences are
        # probed, each with the seed evaluation gives it (its position among all held-out rows).
        own = [(i, item) for i, item in enumerate(self._heldout) if speaker is None or item.speaker == speaker]
        sentences = [ProbeSentence(item.utt_id, item.text, self.settings.seed + index,
                                   self._real.language_of(item).code)
                     for index, item in own[: settings.sentences]]  # fmt: skip
        reference = base_effects(reference_rows, probes)
        presets = presets if presets is not None else preset_effects(reference_rows, probes)
        measures = ProbeMeasures(self._judges.asr, self._judges.vad)
        measured = None
        for scale in scales:
            speaker = synthesizer_speaker(synthesizer, scale, self.settings.batch_size)
            if speaker is None:
                if not self._probe_warned:
                    warnings.warn("EvalSuite.instruct_probe: this model cannot speak instructions (its Synthesizer "
                                  "takes no instructs: a CustomVoice or VoiceDesign base is needed), so the "
                                  "instruction probe is skipped", stacklevel=2)  # fmt: skip
                self._probe_warned = True
                return None
            effects = probe_effects(speaker, sentences, probes, measures)
            attach(rows, effects, scale, probes, reference, presets)
            measured = probe_only(effects, probes)
        return measured

    def _log_audio(self, trainer: L.Trainer, run_dir: Path, rows: list[dict], scale: float, epoch: int) -> None:
        import soundfile as sf
        from lightning.pytorch.loggers import TensorBoardLogger

        chosen = [r for r in rows if r["lora_scale"] == scale][: self.audio_samples_to_log]
        for logger in trainer.loggers:
            if not isinstance(logger, TensorBoardLogger):
                continue
            for row in chosen:
                wav, rate = sf.read(str(run_dir / row["wav"]), dtype="float32")
                logger.experiment.add_audio(f"eval/{row['utt_id']}", torch.from_numpy(wav), epoch, sample_rate=rate)

    # ------------------------------------------------------------------ logging (every rank)

    def _log(self, pl_module: L.LightningModule, summary: dict, train_seconds: float) -> None:
        best = summary["best"]
        metrics = best["metrics"]
        values = {f"val/{name}": metrics[name] for name in LOGGED if metrics.get(name) is not None}
        values |= {"val/best_scale": best["lora_scale"]}
        if best["score"] is not None:  # None: no metric the rule can rank on was measured
            values["val/score"] = best["score"]
        for cell in summary["cells"]:
            values |= {f"val_scale/{n}@{cell['lora_scale']:g}": cell[n] for n in LOGGED
                       if cell.get(n) is not None and not math.isnan(cell[n])}  # fmt: skip
        values |= {"time/eval_seconds": summary["eval_seconds"], "time/train_epoch_seconds": train_seconds}
        for name, value in values.items():
            pl_module.log(name, float(value), on_epoch=True, sync_dist=False, rank_zero_only=False)
