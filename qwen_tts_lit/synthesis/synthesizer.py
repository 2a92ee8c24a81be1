"""Speech generation shared by evaluation, ``synthesize`` and notebooks (torch only, no Lightning).

One :class:`Synthesizer` wraps the official ``qwen_tts.Qwen3TTSModel`` (a live training model or one loaded from a
run or an export) and a :class:`Voice` (a precomputed x-vector, or a named speaker of a custom_voice checkpoint).

Choices the upstream API leaves open:
- Sampling is per utterance: each one draws from its own random generator seeded with its own seed
  (``upstream.sampling``), so its codes depend on (weights, text, seed, LoRA scale, preset), not on which other
  utterances share a ``generate`` call. ``batch_size`` utterances are generated together, each at its own LoRA
  scale (``model.lora.adapters_at_scale`` with one scale per row): several sentences and strengths in one call.
  Batched arithmetic (padding, other matrix shapes) may round differently from a call alone, so bit-for-bit
  equality is promised for the same batches: same texts, seeds, scales and ``batch_size`` give the same bytes.
  Decoding is batched too; the decoder is causal, so right padding does not change any utterance.
- Every text is cleaned as prepare cleans transcripts (:meth:`Synthesizer.spoken_text`: non-speech tags,
  Unicode, quotes, whitespace), so the model reads what it was trained to read, whoever calls it (evaluation,
  ``synthesize``, notebooks). An :class:`Utterance` keeps the text as spoken.
- An instruction per utterance (``instructs``; None: plain) is laid out as upstream's ``generate_custom_voice(...,
  instruct=...)`` lays it out (the ``<|im_start|>user`` turn first, ``model.layout.instruct_prompt``), with any voice:
  a preset speaker of a CustomVoice checkpoint, or a new voice's x-vector. Refused where upstream ignores it (the
  0.6B CustomVoice: ``upstream.pairings.instruct_problem``).
- ``max_new_tokens`` counts audio frames. Upstream's ``generate`` returns one frame less than the tokens it sampled
  (the last group-0 token never gets its sub-codes), so we ask for two more tokens than the cap: a result longer than
  the cap is a runaway (cut back to the cap), one that ends at or before it found its EOS. ``hit_max_tokens`` is
  therefore exact, also for a sentence that ends exactly at the cap.
- Warm-up (upstream #219): ``WARMUP_SECONDS`` of silence codes are decoded before the utterance and their samples
  cut off. The silence codes are the codec's own encoding of digital silence, computed once per Synthesizer.
- Decoding goes through the official ``speech_tokenizer.decode``, so a frame sequence gives the same samples here as
  in ``generate_voice_clone`` / ``generate_custom_voice`` apart from the warm-up.
- Sampled generations carry what the talker's sampler drew (``upstream.sampling.SampledTokens``): the
  log-probability of each kept frame's group-0 code, and of the EOS when the utterance ended, under the policy
  (``Utterance.policy_logprobs``: processed, tempered, not truncated) and under the truncated distribution it was
  drawn from (``sampler_logprobs``). Reinforcement learning reads them (docs/reinforcement_learning.md).
- The model runs in eval mode under ``torch.no_grad`` and a forked global RNG (nothing should draw from it; it is
  fixed so that results stay deterministic if a library ever did); training mode and the global RNG state are
  restored afterwards, so calling this from a training callback perturbs nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from qwen_tts_lit.data.prepare.text import CleanText, clean_spoken_text
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.model.layout import assistant_prompt, instruct_prompt, spoken_instruct
from qwen_tts_lit.model.lora import UNSCALED, adapters_at_scale
from qwen_tts_lit.synthesis.presets import (
    FRAME_RATE,
    SAMPLE_RATE,
    SAMPLES_PER_FRAME,
    SEED_GUIDE,
    WARMUP_SECONDS,
    GenerationPreset,
    text_frame_cap,
)
from qwen_tts_lit.upstream.decoding import decoding_mode, decoding_problem
from qwen_tts_lit.upstream.pairings import instruct_problem
from qwen_tts_lit.upstream.sampling import SampledTokens, per_row_sampling


def warmup_frames(seconds: float = WARMUP_SECONDS, frame_rate: float = FRAME_RATE) -> int:
    """Whole codec frames covering ``seconds`` (0.25 s -> 4 frames at 12.5 Hz)."""
    return math.ceil(seconds * frame_rate - 1e-9)


def trim_warmup(wav: np.ndarray, frames: int, samples_per_frame: int = SAMPLES_PER_FRAME) -> np.ndarray:
    """Cut the samples that the ``frames`` warm-up frames decoded to."""
    return wav[frames * samples_per_frame :]


def silence_codes(speech_tokenizer, frames: int) -> torch.Tensor:
    """(frames, Q) codes of digital silence, taken after the encoder's start-up transient."""
    rate = speech_tokenizer.get_input_sample_rate()
    silence = np.zeros(rate + frames * speech_tokenizer.get_encode_downsample_rate(), dtype=np.float32)
    codes = speech_tokenizer.encode([silence], sr=rate).audio_codes[0]  # (T, Q)
    return codes[-frames:].detach().cpu() if frames else codes[:0].detach().cpu()


@dataclass(frozen=True)
class Voice:
    """Who speaks: a precomputed x-vector (Base checkpoints) or a speaker name of a custom_voice checkpoint; with
    ``ref_code`` and ``ref_ids`` as well, upstream's in-context cloning (ICL) from a reference recording and its
    transcript (:func:`icl_voice`)."""

    xvector: torch.Tensor | None = None
    speaker: str | None = None
    ref_code: torch.Tensor | None = None  # (T, Q) codes of the reference recording
    ref_ids: torch.Tensor | None = None  # (1, L) its transcript as "<|im_start|>assistant\n{text}<|im_end|>\n"

    def __post_init__(self) -> None:
        if (self.xvector is None) == (self.speaker is None):
            raise ValueError("Voice needs exactly one of xvector or speaker")
        if (self.ref_code is None) != (self.ref_ids is None) or (self.ref_code is not None and self.xvector is None):
            raise ValueError("in-context cloning needs an x-vector, the reference codes and its transcript ids")

    def generate_kwargs(self, n: int, device: torch.device | str = "cpu") -> dict:
        """``generate`` arguments for ``n`` utterances: an x-vector-only or ICL clone prompt, or the speaker name."""
        if self.speaker is not None:
            return {"speakers": [self.speaker] * n}
        icl = self.ref_code is not None
        prompt = dict(
            ref_code=[self.ref_code if icl else None] * n,
            ref_spk_embedding=[self.xvector] * n,
            x_vector_only_mode=[not icl] * n,
            icl_mode=[icl] * n,
        )
        return {"voice_clone_prompt": prompt} | ({"ref_ids": [self.ref_ids.to(device)] * n} if icl else {})


def icl_voice(tts, audio: np.ndarray, text: str) -> Voice:
    """Upstream's in-context cloning voice (``generate_voice_clone`` with ``ref_audio`` and ``ref_text``): the
    24 kHz reference recording's codes and x-vector, and its transcript, built by upstream's own
    ``create_voice_clone_prompt`` from ``audio`` exactly as given (pass the recording as recorded)."""
    (item,) = tts.create_voice_clone_prompt(ref_audio=(np.asarray(audio, dtype=np.float32), SAMPLE_RATE),
                                            ref_text=text, x_vector_only_mode=False)  # fmt: skip
    ids = tts.processor(text=f"<|im_start|>assistant\n{text}<|im_end|>\n", return_tensors="pt")["input_ids"]
    ids = ids if ids.dim() == 2 else ids.unsqueeze(0)
    return Voice(xvector=item.ref_spk_embedding.detach().float().cpu(), ref_code=item.ref_code.cpu(), ref_ids=ids)


def xvector_from_audio(tts, audio: np.ndarray, rate: int = SAMPLE_RATE) -> torch.Tensor:
    """The speaker x-vector of a 24 kHz recording, computed once with the model's own speaker encoder, (D,)."""
    if rate != SAMPLE_RATE:
        raise UserError(f"reference audio is {rate} Hz; resample it to {SAMPLE_RATE} Hz first")
    return tts.model.extract_speaker_embedding(np.asarray(audio, dtype=np.float32), rate).detach().float().cpu()


@dataclass
class Utterance:
    """One synthesized sentence."""

    text: str  # as spoken: cleaned (Synthesizer.spoken_text)
    seed: int
    wav: np.ndarray  # (samples,) float32 at SAMPLE_RATE
    codes: torch.Tensor = field(repr=False)  # (frames, Q) int64 on CPU
    frames: int
    max_new_tokens: int
    hit_max_tokens: bool  # the model wanted more than max_new_tokens frames (no EOS): a runaway, cut at the cap
    wall_seconds: float  # generation (amortised over its batch) plus its share of decoding
    lora_scale: float = UNSCALED  # the adapters' strength it was spoken at
    instruct: str | None = None  # the instruction it was spoken with (None: plain)
    # log-probability of each group-0 token drawn: the kept frames' (frames,) then the EOS's when it ended; None
    # for greedy decoding. policy: the tempered distribution (the RL ratio's); sampler: after top-k/top-p as well
    policy_logprobs: torch.Tensor | None = field(default=None, repr=False)
    sampler_logprobs: torch.Tensor | None = field(default=None, repr=False)

    @property
    def audio_seconds(self) -> float:
        return len(self.wav) / SAMPLE_RATE


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode (no LoRA dropout) for the block; every submodule's own training flag is restored after."""
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in flags.items():
            module.training = training


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's RNGs for the block, then restore their previous state (a training run's RNG stays put)."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' per-call generate notices ("Setting pad_token_id ...") for the block."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def _per_text(values, n: int, name: str, kind: type) -> list:
    """One value per text: a single ``kind`` repeated, or a sequence of exactly ``n``."""
    if isinstance(values, kind):
        return [values] * n
    if len(values) != n:
        raise ValueError(f"got {len(values)} {name} for {n} texts")
    return [kind(v) for v in values]


class Synthesizer:
    def __init__(
        self,
        tts,
        voice: Voice,
        preset: GenerationPreset = SEED_GUIDE,
        language: str = "auto",
        warmup_seconds: float = WARMUP_SECONDS,
        decode_batch_size: int = 8,
        streaming: bool = False,
        decoding: str = "dynamic",
    ) -> None:
        """
        Args:
            tts: The official ``qwen_tts.Qwen3TTSModel`` (``.model``, ``.processor``); LoRA may be injected in place.
            voice: The x-vector (or custom_voice speaker) used for every utterance.
            preset: Sampling settings and the frame ceiling.
            language: Language tag for the codec prefix; "auto" (no tag) matches training without a language tag.
            warmup_seconds: Silence decoded before each utterance and trimmed after (0 disables the warm-up). An
                in-context cloning voice is decoded after its reference codes instead, as upstream decodes it.
            decode_batch_size: Utterances decoded together.
            streaming: The text layout. False: the whole text before the first frame (``non_streaming_mode=True``,
                the layout training uses and fine-tuned voices are spoken in). True: upstream
                ``generate_voice_clone``'s default (``non_streaming_mode=False``: the text fed alongside the
                frames), for scoring that call as users make it.
            decoding: The key/value cache of ``generate`` (``upstream.decoding``): "dynamic" (upstream's), "static"
                (preallocated, the same codes) or "cuda_graphs" (static, code predictor in CUDA graphs; on CUDA).
        """
        problem = decoding_problem(decoding, "decoding")
        if problem:
            raise UserError(problem)
        supported = {str(x).lower() for x in tts.model.get_supported_languages()}
        if language.lower() not in supported:
            raise UserError(f"language {language!r}: this checkpoint supports {sorted(supported)}")
        if voice.speaker is not None:
            speakers = {str(x).lower() for x in tts.model.get_supported_speakers()}
            if voice.speaker.lower() not in speakers:
                raise UserError(f"speaker {voice.speaker!r}: this checkpoint has {sorted(speakers) or 'none'}")
        self.tts, self.voice, self.preset, self.language = tts, voice, preset, language.lower()
        self.warmup = warmup_frames(warmup_seconds)
        self.decode_batch_size = decode_batch_size
        self.streaming = streaming
        self.decoding = decoding
        self._silence: torch.Tensor | None = None

    @staticmethod
    def spoken_text(text: str) -> CleanText:
        """What the model reads for ``text``: prepare's transcript cleaning with its default tags. :meth:`synthesize`
        applies it to every text; a caller that plans on the text before any model loads (``synthesize``'s chunks)
        asks here too. Cleaning is idempotent: a cleaned text comes back unchanged."""
        return clean_spoken_text(text)

    @property
    def model(self):
        """The ``Qwen3TTSForConditionalGeneration``."""
        return self.tts.model

    @property
    def device(self) -> torch.device:
        return self.model.talker.device

    @property
    def silence(self) -> torch.Tensor:
        """Warm-up codes (warmup frames, Q), encoded once."""
        if self._silence is None:
            with torch.no_grad():
                self._silence = silence_codes(self.model.speech_tokenizer, self.warmup)
        return self._silence

    def synthesize(
        self,
        texts: Sequence[str],
        seeds: int | Sequence[int] = 0,
        lora_scale: float | Sequence[float] = UNSCALED,
        max_new_tokens: int | Sequence[int] | None = None,
        batch_size: int = 1,
        languages: Sequence[str] | None = None,
        instructs: Sequence[str | None] | None = None,
        decode: bool = True,
    ) -> list[Utterance]:
        """Speak ``texts``; utterance i uses seed i and LoRA scale i (one value: the same for all), ``batch_size``
        of them per ``generate`` call, in the given order. ``max_new_tokens`` None: :func:`text_frame_cap` per text.
        ``languages``: the codec-prefix language of each text ("auto": untagged); None: this synthesizer's.
        ``instructs``: one instruction per text (None or "": plain, as upstream reads it); None: all plain.
        ``decode`` False: codes only, every ``wav`` empty (RL rewards that read no audio skip the decoder).
        Each text is spoken as :meth:`spoken_text` cleans it."""
        texts = [self.spoken_text(text or "").text for text in texts]
        for i, text in enumerate(texts):
            if not text:
                raise UserError(f"text {i} is empty (after removing non-speech tags and whitespace)")
        if batch_size < 1:
            raise ValueError(f"batch_size {batch_size}: must be >= 1")
        seed_list = _per_text(seeds, len(texts), "seeds", int)
        scales = _per_text(lora_scale, len(texts), "LoRA scales", float)
        caps = self._caps(texts, max_new_tokens)
        spoken = [self.language] * len(texts) if languages is None else [str(x).lower() for x in languages]
        if len(spoken) != len(texts):
            raise ValueError(f"got {len(spoken)} languages for {len(texts)} texts")
        told = self._instructs(instructs, len(texts))
        with eval_mode(self.model), torch.no_grad():
            generated = []  # (codes up to one frame past the cap, seconds, log-probs or None)
            for start in range(0, len(texts), batch_size):
                batch = slice(start, start + batch_size)
                generated += self._generate(
                    texts[batch], seed_list[batch], scales[batch], caps[batch], spoken[batch], told[batch]
                )
            kept = [codes[:cap] for (codes, _, _), cap in zip(generated, caps, strict=True)]
            if decode:
                wavs, decode_seconds = self._decode(kept)
            else:
                wavs, decode_seconds = [np.zeros(0, dtype=np.float32) for _ in kept], [0.0] * len(kept)
        rows = zip(texts, seed_list, scales, caps, generated, kept, wavs, decode_seconds, told, strict=True)
        utterances = []
        for text, seed, scale, cap, (full, gen_s, (policy, sampler)), codes, wav, dec_s, instruct in rows:
            utterance = Utterance(text, seed, wav, codes, len(codes), cap, len(full) > cap, gen_s + dec_s, scale,
                                  instruct)  # fmt: skip
            utterance.policy_logprobs, utterance.sampler_logprobs = policy, sampler
            utterances.append(utterance)
        return utterances

    def _instructs(self, instructs: Sequence[str | None] | None, n: int) -> list[str | None]:
        """One instruction (or None) per text, refused where the checkpoint ignores instructions."""
        if instructs is None:
            return [None] * n
        if isinstance(instructs, str):
            raise ValueError("instructs: give one instruction (or None) per text, not a single string")
        told = [spoken_instruct(instruct) for instruct in instructs]
        if len(told) != n:
            raise ValueError(f"got {len(told)} instructs for {n} texts")
        problem = instruct_problem(self.model.config) if any(told) else None
        if problem:
            raise UserError(f"instruct: {problem}")
        return told

    def _caps(self, texts: list[str], max_new_tokens: int | Sequence[int] | None) -> list[int]:
        ceiling = self.preset.max_new_tokens
        if max_new_tokens is None:
            return [text_frame_cap(t, ceiling) for t in texts]
        caps = [max_new_tokens] * len(texts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
        if len(caps) != len(texts) or any(c < 1 for c in caps):
            raise UserError(f"max_new_tokens must be >= 1, one per text (got {max_new_tokens!r})")
        return [int(c) for c in caps]  # explicit caps are the caller's; the ceiling bounds only derived ones

    def _prompt_ids(self, text: str) -> torch.Tensor:
        return self._tokens(assistant_prompt(text))

    def _instruct_ids(self, instruct: str) -> torch.Tensor:
        return self._tokens(instruct_prompt(instruct))

    def _tokens(self, prompt: str) -> torch.Tensor:
        ids = self.tts.processor(text=prompt, return_tensors="pt", padding=True)["input_ids"]
        return (ids if ids.dim() == 2 else ids.unsqueeze(0)).to(self.device)  # (1, T)

    def _generate(
        self,
        texts: list[str],
        seeds: list[int],
        scales: list[float],
        caps: list[int],
        languages: list[str],
        instructs: list[str | None],
    ) -> list[tuple[torch.Tensor, float, tuple]]:
        """Sample codes for one batch, row i with its own seed, LoRA scale and instruction; each kept up to one frame
        past its own cap, with the log-probabilities of what was kept (when sampling)."""
        start = time.perf_counter()
        record = SampledTokens() if self.preset.do_sample else None
        sampling = per_row_sampling(self.model, seeds, record)
        with adapters_at_scale(self.model, scales), sampling, seeded(0, self.device):
            with quiet_transformers(), decoding_mode(self.model, self.decoding):
                codes_list, _ = self.model.generate(
                    input_ids=[self._prompt_ids(t) for t in texts],
                    instruct_ids=[None if i is None else self._instruct_ids(i) for i in instructs],
                    languages=languages,
                    non_streaming_mode=not self.streaming,  # True: training's layout, the whole text first
                    **self.voice.generate_kwargs(len(texts), self.device),
                    **self.preset.generate_kwargs(max(caps)),
                )
        seconds = (time.perf_counter() - start) / len(texts)
        eos = self.model.config.talker_config.codec_eos_token_id
        return [
            (codes[: cap + 1].detach().cpu(), seconds, _kept_logprobs(record, row, codes, cap, eos))
            for row, (codes, cap) in enumerate(zip(codes_list, caps, strict=True))
        ]

    def _decode(self, codes_list: list[torch.Tensor]) -> tuple[list[np.ndarray], list[float]]:
        """Waveforms after warm-up trimming, and each one's share of the decode time (by frames)."""
        tokenizer = self.model.speech_tokenizer
        wavs, shares = [], []
        for start in range(0, len(codes_list), self.decode_batch_size):
            group = codes_list[start : start + self.decode_batch_size]
            began = time.perf_counter()
            if self.voice.ref_code is not None:  # in-context cloning: its audio continues the reference's
                decoded = decode_after_reference(tokenizer, group, self.voice.ref_code)
            else:
                decoded = decode_with_warmup(tokenizer, group, self.silence)
            seconds = time.perf_counter() - began
            total = max(sum(len(c) for c in group), 1)
            wavs += decoded
            shares += [seconds * len(c) / total for c in group]
        return wavs, shares


def _kept_logprobs(record: SampledTokens | None, row: int, codes: torch.Tensor, cap: int, eos: int) -> tuple:
    """(policy, sampler) log-probabilities of row ``row``'s kept draws: its frames up to the cap, then its EOS when
    it ended before the cap ((None, None) without a record). ``codes`` is the row's (L, Q) output of ``generate``
    (frames before its first EOS, or every frame of a runaway)."""
    if record is None:
        return None, None
    frames = min(len(codes), cap)
    ended = len(codes) <= cap  # generate cut the row at its EOS, drawn at step len(codes)
    tokens, policy, sampler = record.row(row, frames + int(ended))
    expected = torch.cat([codes[:frames, 0].cpu(), torch.tensor([eos] * int(ended))])
    if not torch.equal(tokens, expected.to(tokens.dtype)):  # the record and generate's codes must tell one story
        raise RuntimeError(f"row {row}: the sampler's recorded tokens differ from the generated codes")
    return policy, sampler


def decode_with_warmup(speech_tokenizer, codes_list: Sequence[torch.Tensor], warmup: torch.Tensor) -> list[np.ndarray]:
    """Decode each (frames, Q) sequence after the ``warmup`` codes, then cut the warm-up's samples."""
    out: list[np.ndarray | None] = [None] * len(codes_list)
    todo = [i for i, codes in enumerate(codes_list) if len(codes)]
    for i in set(range(len(codes_list))) - set(todo):
        out[i] = np.zeros(0, dtype=np.float32)
    if todo:
        batch = [{"audio_codes": torch.cat([warmup, codes_list[i].cpu()]).long()} for i in todo]
        wavs, _ = speech_tokenizer.decode(batch)
        upsample = speech_tokenizer.get_decode_upsample_rate()
        for i, wav in zip(todo, wavs, strict=True):
            out[i] = np.ascontiguousarray(trim_warmup(wav, len(warmup), upsample), dtype=np.float32)
    return out


def decode_after_reference(speech_tokenizer, codes_list: Sequence[torch.Tensor], ref_code: torch.Tensor) -> list:
    """Decode each (frames, Q) sequence after the reference recording's codes and cut the reference's share, exactly
    as upstream's ``generate_voice_clone`` does in ICL mode (the cut is its proportional formula, not a whole
    number of frames, so the audio is the very samples a user of that call gets)."""
    out = []
    for codes in codes_list:
        if not len(codes):
            out.append(np.zeros(0, dtype=np.float32))
            continue
        full = torch.cat([ref_code.to(codes.device), codes.cpu()]).long()  # (R + T, Q)
        (wav,), _ = speech_tokenizer.decode([{"audio_codes": full}])
        cut = int(len(ref_code) / max(len(full), 1) * wav.shape[0])  # upstream's formula, kept exact
        out.append(np.ascontiguousarray(wav[cut:], dtype=np.float32))
    return out
