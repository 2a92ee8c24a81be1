"""The talker's training sequence, as a pure function of (prompt token ids, codec frames).

One utterance becomes one sequence with two channels, exactly as ``Qwen3TTSForConditionalGeneration.generate``
builds it in non-streaming mode (docs/upstream_layout.md). With P = length of the codec prefix (3 without a
language tag: nothink, think_bos, think_eos; 4 with one: think, think_bos, LANG, think_eos), C = content tokens
(the prompt minus its 3 role tokens and its 5 suffix tokens) and N = frames:

    position              text channel            codec channel
    0 .. 2                role tokens             (none: codec embedding masked off)
    3 .. 2+P              tts_pad                 codec prefix
    3+P                   tts_pad                 speaker slot (the x-vector, not a token; 6 without a tag)
    4+P                   tts_bos                 codec_pad
    5+P .. 4+P+C          content tokens          codec_pad
    5+P+C                 tts_eos                 codec_pad
    6+P+C                 tts_pad                 codec_bos
    7+P+C .. 6+P+C+N      tts_pad                 frame k group 0 (+ groups 1..15 embeddings added)
    7+P+C+N               tts_pad                 codec_eos

``labels`` hold group-0 codes at the frame positions and codec_eos at the last position, -100 elsewhere: the
target of the state at position p is ``labels[p + 1]`` (one shift, taken by the loss).

An instruction (``generate_custom_voice(..., instruct=...)``, ``generate_voice_design(text, instruct)``) comes first:
its I tokens of ``<|im_start|>user\\n{instruct}<|im_end|>\\n`` (:func:`instruct_prompt`) on the text channel only
(through ``text_projection``, as every text token; the codec channel off), then the table above shifted by I
(upstream's ``Qwen3TTSForConditionalGeneration.generate``: the instruct embeddings are the first item of each
utterance's input list). A voice_design model has no speaker: the speaker slot is left out (``speaker=False``) and
everything after it moves one position up.

The two codec prefixes are the two calls users make: ``generate_custom_voice(text, speaker)`` with the language
omitted ("auto") builds the untagged one, ``generate_custom_voice(text, speaker, language="English")`` the tagged
one. The ``language_tag`` setting says which of them training uses (:class:`LanguageTagPlan`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

import torch

from qwen_tts_lit.languages import is_auto

IGNORE_INDEX = -100
ROLE_TOKENS = 3  # "<|im_start|>assistant\n"
SUFFIX_TOKENS = 5  # "<|im_end|>\n<|im_start|>assistant\n"


LanguageTagMode = Literal["off", "on", "mixed"]
LANGUAGE_TAG_MODES: tuple[str, ...] = ("off", "on", "mixed")
UNTAGGED, TAGGED = "untagged", "tagged"  # language omitted ("auto") / an explicit language such as "english"


def language_tag_mode(value: str | bool | None) -> str:
    """The mode ("off", "on" or "mixed") of a setting. YAML reads a bare ``off``/``on`` as a boolean, and old runs saved
    ``use_language_tag: true``: False/None mean off, True means on."""
    if value is None or value is False:
        return "off"
    if value is True:
        return "on"
    mode = str(value).strip().lower()
    if mode not in LANGUAGE_TAG_MODES:
        raise ValueError(f"language_tag {value!r}: one of {', '.join(LANGUAGE_TAG_MODES)}")
    return mode


def trained_prefixes(mode: str | bool | None) -> tuple[str, ...]:
    """The codec prefixes a model trained with ``mode`` has seen: off -> untagged, on -> tagged, mixed -> both."""
    return {"off": (UNTAGGED,), "on": (TAGGED,), "mixed": (UNTAGGED, TAGGED)}[language_tag_mode(mode)]


def call_prefix(language: str | None) -> str:
    """The codec prefix ``generate`` builds for ``language``: untagged when omitted or "auto", else tagged."""
    return UNTAGGED if is_auto(language) else TAGGED


@dataclass(frozen=True)
class LanguageTagPlan:
    """Which codec prefix each training utterance gets. ``mixed``: tagged with ``probability``, drawn from a hash of
    (seed, epoch, utterance id), so a resumed run and every DDP rank (and every DataLoader worker) draw the same."""

    mode: str = "off"
    probability: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", language_tag_mode(self.mode))
        if self.mode == "mixed" and not 0.0 < self.probability < 1.0:
            raise ValueError(f"language_tag_probability {self.probability}: must be in (0, 1) for mixed tags")

    def tagged(self, utterance_id: str, epoch: int) -> bool:
        """Whether this utterance is laid out with its language in the codec prefix in this epoch."""
        if self.mode != "mixed":
            return self.mode == "on"
        digest = hashlib.sha256(f"{self.seed}:{epoch}:{utterance_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.probability


def instruct_prompt(instruct: str) -> str:
    """The prompt ``Qwen3TTSModel`` tokenizes for an instruction (its ``_build_instruct_text``)."""
    return f"<|im_start|>user\n{instruct}<|im_end|>\n"


def spoken_instruct(instruct: str | None) -> str | None:
    """The instruction as upstream's calls read it: None and "" (after stripping) mean none."""
    instruct = None if instruct is None else str(instruct).strip()
    return instruct or None


@dataclass(frozen=True)
class InstructPlan:
    """Which training rows keep their instruction: each row with one drops it with ``dropout``, drawn from a hash
    of (seed, epoch, utterance id) as :class:`LanguageTagPlan` draws tags (resumes and DDP ranks draw the same), so
    a dataset of instructed rows also trains the plain call."""

    dropout: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout <= 1.0:
            raise ValueError(f"instruct_dropout {self.dropout}: must be in [0, 1]")

    def keeps(self, utterance_id: str, epoch: int) -> bool:
        """Whether this row is laid out with its instruction in this epoch."""
        if self.dropout <= 0.0:
            return True
        digest = hashlib.sha256(f"instruct:{self.seed}:{epoch}:{utterance_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 >= self.dropout


def assistant_prompt(text: str) -> str:
    """The prompt ``Qwen3TTSModel`` tokenizes for a sentence (its ``_build_assistant_text``)."""
    return f"<|im_start|>assistant\n{text}<|im_end|>\n<|im_start|>assistant\n"


@dataclass(frozen=True)
class SpecialIds:
    """Special token ids of one checkpoint (text vocabulary and codec vocabulary)."""

    tts_pad: int
    tts_bos: int
    tts_eos: int
    codec_pad: int
    codec_bos: int
    codec_eos: int
    codec_think: int
    codec_nothink: int
    codec_think_bos: int
    codec_think_eos: int

    @classmethod
    def from_config(cls, config) -> SpecialIds:
        """Read them from a ``Qwen3TTSConfig``."""
        talker = config.talker_config
        return cls(
            tts_pad=config.tts_pad_token_id,
            tts_bos=config.tts_bos_token_id,
            tts_eos=config.tts_eos_token_id,
            codec_pad=talker.codec_pad_id,
            codec_bos=talker.codec_bos_id,
            codec_eos=talker.codec_eos_token_id,
            codec_think=talker.codec_think_id,
            codec_nothink=talker.codec_nothink_id,
            codec_think_bos=talker.codec_think_bos_id,
            codec_think_eos=talker.codec_think_eos_id,
        )

    def codec_prefix(self, language_id: int | None) -> list[int]:
        """The codec tokens before the speaker slot, as ``generate`` writes them."""
        if language_id is None:
            return [self.codec_nothink, self.codec_think_bos, self.codec_think_eos]
        return [self.codec_think, self.codec_think_bos, language_id, self.codec_think_eos]


@dataclass
class TalkerSequence:
    """One utterance laid out for the talker; every tensor has length T on its first dimension."""

    text_ids: torch.Tensor  # (T,) long
    codec_ids: torch.Tensor  # (T,) long, 0 where the codec channel is off
    codec_mask: torch.Tensor  # (T,) bool, codec token embedding present
    speaker_mask: torch.Tensor  # (T,) bool, the one position that receives the x-vector
    frame_mask: torch.Tensor  # (T,) bool, positions holding a frame's group-0 code
    codes: torch.Tensor  # (T, G) long, all code groups at frame positions, 0 elsewhere
    labels: torch.Tensor  # (T,) long, group-0 targets (and codec_eos), IGNORE_INDEX elsewhere

    @property
    def length(self) -> int:
        return int(self.text_ids.shape[0])


def layout_utterance(
    prompt_ids: Sequence[int],
    codes: torch.Tensor,
    special: SpecialIds,
    language_id: int | None = None,
    instruct_ids: Sequence[int] | None = None,
    speaker: bool = True,
) -> TalkerSequence:
    """Lay out one utterance.

    ``prompt_ids`` tokenize ``<|im_start|>assistant\\n{text}<|im_end|>\\n<|im_start|>assistant\\n`` (see
    :func:`assistant_prompt`); ``codes`` is the (N, G) codec frames of the recording; ``instruct_ids`` (None: no
    instruction) tokenize :func:`instruct_prompt`; ``speaker`` False leaves the speaker slot out (voice_design).
    """
    if len(prompt_ids) < ROLE_TOKENS + SUFFIX_TOKENS + 1:
        raise ValueError(f"prompt of {len(prompt_ids)} tokens has no content between its role prefix and suffix")
    if codes.ndim != 2 or codes.shape[0] == 0:
        raise ValueError(f"codes must be a non-empty (frames, groups) array, got shape {tuple(codes.shape)}")
    role = list(prompt_ids[:ROLE_TOKENS])
    content = list(prompt_ids[ROLE_TOKENS:-SUFFIX_TOKENS])
    prefix = special.codec_prefix(language_id)
    frames, groups = codes.shape

    # (text, codec) pairs for everything before the first frame; None = codec channel off.
    head = [(t, None) for t in instruct_ids or ()]  # the instruct turn: text channel only
    head += [(t, None) for t in role]
    head += [(special.tts_pad, c) for c in prefix]
    head += [(special.tts_pad, None)] if speaker else []  # speaker slot
    head += [(special.tts_bos, special.codec_pad)]
    head += [(t, special.codec_pad) for t in content]
    head += [(special.tts_eos, special.codec_pad), (special.tts_pad, special.codec_bos)]
    speaker_position = len(instruct_ids or ()) + ROLE_TOKENS + len(prefix)
    first_frame = len(head)
    length = first_frame + frames + 1  # + codec_eos

    text_ids = torch.full((length,), special.tts_pad, dtype=torch.long)
    text_ids[:first_frame] = torch.tensor([t for t, _ in head])
    codec_ids = torch.zeros(length, dtype=torch.long)
    codec_ids[:first_frame] = torch.tensor([0 if c is None else c for _, c in head])
    codec_ids[first_frame : first_frame + frames] = codes[:, 0]
    codec_ids[-1] = special.codec_eos
    codec_mask = torch.ones(length, dtype=torch.bool)
    codec_mask[:first_frame] = torch.tensor([c is not None for _, c in head])
    speaker_mask = torch.zeros(length, dtype=torch.bool)
    speaker_mask[speaker_position] = speaker
    frame_mask = torch.zeros(length, dtype=torch.bool)
    frame_mask[first_frame : first_frame + frames] = True
    all_codes = torch.zeros(length, groups, dtype=torch.long)
    all_codes[frame_mask] = codes.long()
    labels = torch.full((length,), IGNORE_INDEX, dtype=torch.long)
    labels[frame_mask] = codes[:, 0].long()
    labels[-1] = special.codec_eos
    return TalkerSequence(text_ids, codec_ids, codec_mask, speaker_mask, frame_mask, all_codes, labels)


@dataclass
class TalkerBatch:
    """Right-padded batch of ``TalkerSequence`` plus what the step needs beside them."""

    text_ids: torch.Tensor  # (B, T)
    codec_ids: torch.Tensor  # (B, T)
    codec_mask: torch.Tensor  # (B, T) bool
    speaker_mask: torch.Tensor  # (B, T) bool
    frame_mask: torch.Tensor  # (B, T) bool
    codes: torch.Tensor  # (B, T, G)
    labels: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T) long, 0 on padding
    xvectors: torch.Tensor  # (B, D) speaker embeddings
    # Frames and utterances of the whole optimizer step (all micro-batches, all ranks) this micro-batch belongs
    # to, so losses are normalised per token of the step: accumulation then equals one big batch. None: alone.
    step_frames: int | None = None
    step_utterances: int | None = None
    utterance_ids: tuple[str, ...] = ()

    @property
    def padding_ratio(self) -> float:
        return 1.0 - float(self.attention_mask.float().mean())

    def to(self, device: torch.device | str) -> TalkerBatch:
        """A copy with every tensor on ``device`` (Lightning moves batches itself; scripts call this)."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return TalkerBatch(**{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in moved.items()})


_PADDED = {f.name: IGNORE_INDEX if f.name == "labels" else 0 for f in fields(TalkerSequence)}


def collate_sequences(
    sequences: Sequence[TalkerSequence],
    xvectors: torch.Tensor,
    utterance_ids: Sequence[str] = (),
    step_frames: int | None = None,
    step_utterances: int | None = None,
) -> TalkerBatch:
    """Right-pad to the longest sequence. Padding is masked out of attention, labels and every embedding."""
    width = max(s.length for s in sequences)

    def pad(name: str) -> torch.Tensor:
        rows = []
        for seq in sequences:
            value = getattr(seq, name)
            filler = torch.full((width - seq.length, *value.shape[1:]), _PADDED[name], dtype=value.dtype)
            rows.append(torch.cat([value, filler]))
        return torch.stack(rows)

    attention_mask = torch.stack([(torch.arange(width) < s.length).long() for s in sequences])
    return TalkerBatch(
        **{name: pad(name) for name in _PADDED},
        attention_mask=attention_mask,
        xvectors=xvectors,
        step_frames=step_frames,
        step_utterances=step_utterances,
        utterance_ids=tuple(utterance_ids),
    )
