"""LightningDataModule over a prepared dataset; prepares raw input on first use (cached)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import lightning as L
import torch

from qwen_tts_lit.cache import build_lock
from qwen_tts_lit.data.dataset import Collate, PreparedSplit, load_voices, prepared_cache_dir
from qwen_tts_lit.data.loader import PlanLoader
from qwen_tts_lit.data.prepare.outputs import TRAIN_MANIFEST, is_prepared, row_instruct
from qwen_tts_lit.data.sampler import StepPlanBatchSampler
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.languages import model_languages
from qwen_tts_lit.model.layout import (
    InstructPlan,
    LanguageTagMode,
    LanguageTagPlan,
    SpecialIds,
    language_tag_mode,
)
from qwen_tts_lit.upstream.loading import load_config, load_text_tokenizer, resolve_model_source
from qwen_tts_lit.upstream.pairings import instruct_problem


class QwenTTSDataModule(L.LightningDataModule):
    def __init__(
        self,
        prepared_dir: str | None = None,
        raw: str | None = None,
        model: str = "tiny",
        batch_size: int = 2,
        num_workers: int = 0,
        language_tag: LanguageTagMode | bool = "off",
        language_tag_probability: float = 0.5,
        seed: int = 0,
        speaker_sampling: Literal["balanced", "natural"] = "balanced",
        instruct_dropout: float = 0.0,
        speaker_encoder_model: str | None = None,
    ) -> None:
        """
        Args:
            prepared_dir: Output of ``prepare`` (train.jsonl, val.jsonl, the speaker x-vector). With ``raw``, the
                folder ``raw`` is prepared into on first use; when None, a cache folder keyed by raw and model.
            raw: Raw input to prepare on first use (JSONL manifest, wav+txt folder or LJSpeech metadata.csv).
            model: Checkpoint the data is prepared for (its speech tokenizer, speaker encoder and text tokenizer);
                linked from ``model.model`` by the CLI.
            batch_size: Utterances per micro-batch (per device).
            num_workers: DataLoader worker processes.
            language_tag: Which codec prefix training uses. off: upstream's (nothink, think_bos, think_eos), what
                ``generate_custom_voice(text, speaker)`` builds with the language omitted; on: the row's language in
                it (think, think_bos, LANG, think_eos), what ``language="English"`` builds; mixed: each utterance
                gets one or the other at random (``language_tag_probability``), so both calls are trained. on and
                mixed need every row's language (prepare's ``language`` field). Quote 'off'/'on' in YAML.
            language_tag_probability: mixed only: the share of utterances tagged, drawn anew each epoch from the seed.
            seed: Seed of the length-bucketed shuffle (each epoch adds its number).
            speaker_sampling: Several speakers: "balanced" gives every speaker an equal share of each epoch (a
                small speaker's clips repeat, a large one's are sub-sampled anew each epoch); "natural" takes every
                clip once, in the data's proportions. No effect with one speaker.
            instruct_dropout: Probability that a training row's instruction (prepare's ``instruct`` field) is left
                out of its layout, drawn anew each epoch from the seed: the rows then also train the plain call
                (``generate_custom_voice`` without ``instruct``). 0: every instruction kept. No effect on plain rows.
            speaker_encoder_model: Checkpoint whose speaker encoder gives the x-vectors when ``raw`` is prepared;
                None: the model's own, or for a CustomVoice checkpoint (which has none) the Base of its release
                (docs/instructions.md). Prepared datasets already hold their x-vectors.
        """
        super().__init__()
        if prepared_dir is None and raw is None:
            raise UserError("data: give prepared_dir (a prepared dataset) or raw (input to prepare on first use)")
        if raw is None and not is_prepared(Path(prepared_dir).expanduser()):
            raise UserError(
                f"data.prepared_dir: {prepared_dir} holds no {TRAIN_MANIFEST}; run `python -m qwen_tts_lit prepare "
                f"--input RAW --output {prepared_dir} --model MODEL` first, or give data.raw to prepare on first use"
            )
        if raw is not None and not Path(raw).expanduser().exists():
            raise UserError(f"data.raw: {raw} not found (relative paths resolve against the working directory)")
        self.prepared_dir, self.raw, self.model = prepared_dir, raw, model
        self.batch_size, self.num_workers = batch_size, num_workers
        try:
            self.tags = LanguageTagPlan(language_tag_mode(language_tag), language_tag_probability, seed)
        except ValueError as error:
            raise UserError(f"data.{error}") from error
        self.seed = seed
        try:
            self.instructs = InstructPlan(instruct_dropout, seed)
        except ValueError as error:
            raise UserError(f"data.{error}") from error
        self.speaker_encoder_model = speaker_encoder_model
        if speaker_sampling not in ("balanced", "natural"):
            raise UserError(f"data.speaker_sampling {speaker_sampling!r}: choose balanced or natural")
        self.speaker_sampling = speaker_sampling
        self.splits: dict[str, PreparedSplit] = {}
        self.xvector: torch.Tensor | None = None  # one speaker
        self.voices: dict[str, torch.Tensor] = {}  # several speakers: name -> x-vector
        self.train_loader: PlanLoader | None = None  # the last one made: its position goes into checkpoints
        self.resume_at: dict[str, int] | None = None  # the position a restored checkpoint holds, until a loader has it

    @property
    def root(self) -> Path:
        if self.prepared_dir is not None:
            return Path(self.prepared_dir).expanduser()
        return prepared_cache_dir(self.raw, self.model, self.speaker_encoder_model)

    def prepare_data(self) -> None:
        """Rank 0 only: build the tiny checkpoint and prepare the raw input if not done yet (both cached). Two fits
        started together on an empty cache: the second waits for the first one's build and reuses it."""
        model = resolve_model_source(self.model)  # builds the tiny checkpoint here, on rank 0, before setup
        if self.raw is None or is_prepared(self.root):
            return
        with build_lock(self.root):
            if not is_prepared(self.root):  # another process may have finished while this one waited
                from qwen_tts_lit.data.prepare import PrepareOptions, prepare

                prepare(PrepareOptions(input=self.raw, output=str(self.root), model=model,
                                       speaker_encoder_model=self.speaker_encoder_model))  # fmt: skip

    def setup(self, stage: str) -> None:
        if self.splits:
            return
        config, tokenizer = load_config(self.model), load_text_tokenizer(self.model)
        language_ids = model_languages(config.talker_config.codec_language_id)
        special = SpecialIds.from_config(config)
        for split in ("train", "val"):
            per_epoch = split == "train"  # validation draws once: its loss stays comparable across epochs
            self.splits[split] = PreparedSplit(
                self.root, split, tokenizer, special, language_ids, self.tags, per_epoch, self.instructs
            )
            self._check_instructs(self.splits[split], config)
        self.xvector, self.voices = load_voices(self.root)
        for split in self.splits.values():
            unknown = sorted({s for s in split.speakers if s is not None} - set(self.voices))
            if unknown or (self.voices and None in split.speakers):
                raise UserError(
                    f"{split.root}: rows name speakers {unknown or 'none'} that its x-vector file does not hold; "
                    "re-run prepare"
                )

    @staticmethod
    def _check_instructs(split: PreparedSplit, config) -> None:
        """Rows with an instruction and a checkpoint that does not follow instructions: refused before training."""
        reason = instruct_problem(config)
        instructed = [i for i, row in enumerate(split.rows) if row_instruct(row)]
        if reason and instructed:
            raise UserError(f"{split.manifest}:{instructed[0] + 1}: field 'instruct': {reason} ({len(instructed)} "
                            "such row(s)); remove the instructions or fine-tune the 1.7B CustomVoice")  # fmt: skip

    def _loader(self, split: str, shuffle: bool, accumulate: int) -> torch.utils.data.DataLoader:
        dataset = self.splits[split]
        trainer = self.trainer
        sampler = StepPlanBatchSampler(
            dataset.frame_counts,
            self.batch_size,
            accumulate=accumulate,
            world_size=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
            shuffle=shuffle,
            seed=self.seed,
            speakers=dataset.speakers,
            balanced=shuffle and self.speaker_sampling == "balanced",  # validation: every held-out clip once
        )
        collate = Collate(self.xvector, self.voices)
        return PlanLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=self.num_workers)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        accumulate = self.trainer.accumulate_grad_batches if self.trainer else 1
        self.train_loader = self._loader("train", shuffle=True, accumulate=accumulate)
        if self.resume_at is not None:
            self.train_loader.load_state_dict(self.resume_at)
            self.resume_at = None
        return self.train_loader

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader("val", shuffle=False, accumulate=1)

    def state_dict(self) -> dict:
        """Where the training plan stands (``PlanLoader.state_dict``), saved by Lightning in every checkpoint."""
        return {"plan": self.train_loader.state_dict()} if self.train_loader is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        """Lightning restores this from the checkpoint a fit resumes from, usually before the training loader is
        made (its own restore of the loader's state comes too late then: docs/sampling.md)."""
        if "plan" not in state_dict:
            return
        if self.train_loader is not None:
            self.train_loader.load_state_dict(state_dict["plan"])
        else:
            self.resume_at = dict(state_dict["plan"])
