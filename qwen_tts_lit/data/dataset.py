"""The prepared dataset (``prepare``'s output) as torch datasets of laid-out talker sequences."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from qwen_tts_lit.cache import cache_root
from qwen_tts_lit.data.prepare.outputs import (
    audio_path,
    codes_path,
    manifest_path,
    read_config,
    read_manifest,
    row_instruct,
)
from qwen_tts_lit.data.sampler import ItemRef
from qwen_tts_lit.model.layout import (
    InstructPlan,
    LanguageTagPlan,
    SpecialIds,
    TalkerSequence,
    assistant_prompt,
    collate_sequences,
    instruct_prompt,
    layout_utterance,
)
from qwen_tts_lit.runs.folder import BEST_FILE
from qwen_tts_lit.speaker_file import read_speaker, read_voices

# What fit needs held-out clips for, said by EvalSuite when it refuses a run without them (train/eval_suite.py) and by
# prepare when it holds none out (data/prepare/report.py): one text, so the warning names the same ways out.
# (A heldout file does not replace them: the evaluation runs in the validation loop, which goes over val.jsonl.)
NO_EVALUATION = (
    f"without held-out sentences fit never evaluates and writes no {BEST_FILE}. Hold out clips when preparing "
    "(--val_fraction or --val_list; it needs at least 2 clips; fit validates on them even when EvalSuite has a "
    "heldout file), or train without evaluation: --trainer.limit_val_batches 0 (then export with --epoch N)"
)


def prepared_cache_dir(raw: str, model: str, speaker_encoder_model: str | None = None) -> Path:
    """Where ``raw`` is prepared for ``model`` on first use: the cache, keyed by both (and by the speaker encoder's
    checkpoint when one is named: ``QwenTTSDataModule.root``)."""
    encoder = f"|{speaker_encoder_model}" if speaker_encoder_model else ""  # unnamed: the keys of earlier versions
    key = hashlib.sha256(f"{Path(raw).resolve()}|{model}{encoder}".encode()).hexdigest()[:12]
    return cache_root() / "prepared" / f"{Path(raw).stem}-{key}"


def prepared_dir_of(data: Mapping, model: str | None) -> Path | None:
    """The prepared dataset a run's ``data`` settings name: ``prepared_dir``, or the cache folder ``raw`` was
    prepared into for ``model``; None when neither exists here."""
    candidates = [Path(data["prepared_dir"]).expanduser()] if data.get("prepared_dir") else []
    encoder = data.get("speaker_encoder_model")
    candidates += [prepared_cache_dir(data["raw"], model, encoder)] if data.get("raw") and model else []
    return next((folder for folder in candidates if folder.is_dir()), None)


def reference_clip(prepared_dir: Path) -> tuple[np.ndarray, str]:
    """The first training clip of a prepared dataset as recorded, (24 kHz audio, its transcript): the reference
    recording of the voice-clone baselines. Prepare appended about 1 s of silence to every clip (training's end of
    speech); a user clones from the recording itself, so that silence is cut: exactly, by the manifest's
    ``speech_samples``, or for a dataset prepared before that field by :func:`unpadded_length`'s rule."""
    import soundfile as sf

    from qwen_tts_lit.data.prepare.audio import FRAME_SAMPLES, unpadded_length

    prepared_dir = Path(prepared_dir)
    row = read_manifest(manifest_path(prepared_dir, "train"))[0]
    audio, rate = sf.read(str(audio_path(prepared_dir, row)), dtype="float32")  # prepare writes 24 kHz mono
    if "speech_samples" in row:
        return audio[: int(row["speech_samples"])], row["text"]
    config = read_config(prepared_dir)
    trailing_s = float(config.get("options", {}).get("trailing_silence_s", 1.0))  # prepare's default then and now
    frame = int(config.get("frame_samples", FRAME_SAMPLES))
    return audio[: unpadded_length(audio, round(trailing_s * rate), frame)], row["text"]


def load_xvector(prepared_dir: Path) -> torch.Tensor:
    """The speaker x-vector ``prepare`` computed once, (D,), of a one-speaker dataset."""
    return read_speaker(prepared_dir, "prepared dataset (re-run prepare)")


def load_voices(prepared_dir: Path) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """(the x-vector of a one-speaker dataset or None, {speaker: x-vector} of a several-speaker one or {})."""
    return read_voices(prepared_dir, "prepared dataset (re-run prepare)")


@dataclass
class Item:
    utterance_id: str
    sequence: TalkerSequence
    step_frames: int | None = None
    step_utterances: int | None = None
    speaker: str | None = None  # several speakers: whose x-vector goes in the speaker slot


class PreparedSplit(torch.utils.data.Dataset):
    """One split of a prepared dataset. Items are laid out here, so DataLoader workers share the work."""

    def __init__(
        self,
        prepared_dir: Path,
        split: str,
        tokenizer,
        special: SpecialIds,
        language_ids: Mapping[str, int] | None,
        tags: LanguageTagPlan | None = None,
        tags_per_epoch: bool = True,
        instructs: InstructPlan | None = None,
    ):
        """``language_ids``: the model's codec language ids (``talker_config.codec_language_id``); ``tags``: which
        utterances get their language in the codec prefix; ``tags_per_epoch`` False: the same draw every epoch (a
        validation loss comparable across epochs; the instruction dropout draws likewise); ``instructs``: which
        rows with an instruction keep it (default: all)."""
        tags = tags or LanguageTagPlan()
        self.root = Path(prepared_dir)
        checked = None if tags.mode == "off" else dict(language_ids or {})
        self.manifest = manifest_path(self.root, split)
        self.rows = read_manifest(self.manifest, checked, tags.mode)
        self.tokenizer, self.special = tokenizer, special
        self.language_ids, self.tags, self.tags_per_epoch = dict(language_ids or {}), tags, tags_per_epoch
        self.instructs = instructs or InstructPlan()

    @property
    def frame_counts(self) -> list[int]:
        return [int(row["num_frames"]) for row in self.rows]

    @property
    def speakers(self) -> list[str | None]:
        """Each row's speaker (None in a one-speaker dataset)."""
        return [row.get("speaker") for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, ref: int | ItemRef) -> Item:
        index = ref.index if isinstance(ref, ItemRef) else ref
        row = self.rows[index]
        codes = torch.from_numpy(np.load(codes_path(self.root, row)).astype(np.int64))  # (N, G)
        prompt_ids = self.tokenizer(assistant_prompt(row["text"]))["input_ids"]
        epoch = ref.epoch if isinstance(ref, ItemRef) and self.tags_per_epoch else 0
        tagged = self.tags.tagged(str(row["id"]), epoch)
        language_id = self.language_ids[str(row["language"]).lower()] if tagged else None
        instruct = row_instruct(row) if self.instructs.keeps(str(row["id"]), epoch) else None
        instruct_ids = self.tokenizer(instruct_prompt(instruct))["input_ids"] if instruct else None
        sequence = layout_utterance(prompt_ids, codes, self.special, language_id, instruct_ids)
        speaker = row.get("speaker")
        if isinstance(ref, ItemRef):
            return Item(row["id"], sequence, ref.step_frames, ref.step_utterances, speaker)
        return Item(row["id"], sequence, speaker=speaker)


class Collate:
    """Right-pads a list of items into a ``TalkerBatch``; each utterance gets its voice's x-vector in the speaker
    slot: the one target voice's, or with several speakers the x-vector of the utterance's own speaker."""

    def __init__(self, xvector: torch.Tensor | None, voices: dict[str, torch.Tensor] | None = None) -> None:
        if (xvector is None) == (not voices):
            raise ValueError("Collate needs exactly one of xvector or voices")
        self.xvector, self.voices = xvector, voices

    def xvectors(self, items: list[Item]) -> torch.Tensor:
        """(B, D): one row per utterance."""
        if self.voices:
            return torch.stack([self.voices[item.speaker] for item in items])
        return self.xvector.expand(len(items), -1).clone()

    def __call__(self, items: list[Item]):
        return collate_sequences(
            [item.sequence for item in items],
            self.xvectors(items),
            utterance_ids=[item.utterance_id for item in items],
            step_frames=items[0].step_frames,
            step_utterances=items[0].step_utterances,
        )
