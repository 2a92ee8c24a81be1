"""The prepared dataset (``prepare``'s output) as torch datasets of laid-out talker sequences."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from qwen_tts_lit.cache import cache_root
from qwen_tts_lit.data.sampler import ItemRef
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.model.layout import SpecialIds, TalkerSequence, assistant_prompt, collate_sequences, layout_utterance
from qwen_tts_lit.runs.speaker import read_speaker, read_voices

SPLITS = ("train", "val")


def read_manifest(path: Path) -> list[dict]:
    """Rows of a prepared ``train.jsonl`` / ``val.jsonl``."""
    if not path.is_file():
        raise UserError(f"{path}: prepared manifest not found; run `python -m qwen_tts_lit prepare` first")
    rows = []
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        for field in ("id", "text", "codes", "num_frames"):
            if field not in row:
                raise UserError(f"{path}:{line_number}: field {field!r} missing; re-run prepare")
        rows.append(row)
    return rows


def prepared_cache_dir(raw: str, model: str) -> Path:
    """Where ``raw`` is prepared for ``model`` on first use: the cache, keyed by both (``QwenTTSDataModule.root``)."""
    key = hashlib.sha256(f"{Path(raw).resolve()}|{model}".encode()).hexdigest()[:12]
    return cache_root() / "prepared" / f"{Path(raw).stem}-{key}"


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

    def __init__(self, prepared_dir: Path, split: str, tokenizer, special: SpecialIds, language_ids: dict | None):
        self.root = Path(prepared_dir)
        self.rows = read_manifest(self.root / f"{split}.jsonl")
        self.tokenizer, self.special = tokenizer, special
        self.language_ids = language_ids  # None: no language tag, as upstream trains

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
        codes = torch.from_numpy(np.load(self.root / row["codes"]).astype(np.int64))  # (N, G)
        prompt_ids = self.tokenizer(assistant_prompt(row["text"]))["input_ids"]
        language_id = None if self.language_ids is None else self.language_ids.get(row.get("language", "auto"))
        sequence = layout_utterance(prompt_ids, codes, self.special, language_id)
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
