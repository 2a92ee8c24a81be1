"""The instruction-retention probe run on any speaker: speak, measure, and put the effects into the evaluation rows.

The probe (``metrics.instructions``: which instructions, which measure each moves, effects and retention) needs
only an :class:`InstructedSpeaker`: texts, one instruction or None per text, and seeds in; waveforms and their
sample rate out. :func:`synthesizer_speaker` makes one of a ``Synthesizer`` at one LoRA scale, when the Synthesizer
can speak instructions (:func:`speaks_instructions`: ours takes ``instructs``; a foreign one may not); a test double
(tests/helpers/espeak_voice.py: espeak-ng changing its speed, amplitude and pitch) is another.

Per probe sentence (the first held-out sentences, each with the seed evaluation gives it) the speaker says it plainly
and once per instruction; the plain and instructed clips are measured by :class:`ProbeMeasures`: speech rate as
``metrics.speech_rate`` measures it (units of the text per second of articulated speech: the ASR judge's words
within the VAD's speech; the VAD's bridged speech alone when the ASR is off), the active-speech level
(``metrics.level``) and the median F0 (``metrics.pitch``). Only the clips a measure is needed for are given to its
judge (pace clips to the ASR). :func:`attach` writes each sentence's effects into its evaluation row of the same
cell, with the base model's effect on the same sentence beside it (``base_effects``: read back from the zero-shot
baseline rows, so a resumed run keeps its reference).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qwen_tts_lit.languages import count_words
from qwen_tts_lit.metrics.instructions import (
    LEVEL,
    RATE,
    Probe,
    base_field,
    effect_field,
    preset_field,
    row_fields,
)
from qwen_tts_lit.metrics.level import active_level_db
from qwen_tts_lit.metrics.pitch import median_f0
from qwen_tts_lit.metrics.speech_rate import articulated_seconds, bridged, span_seconds, units_per_second


class InstructedSpeaker(Protocol):
    """Speaks ``texts[i]`` with instruction ``instructs[i]`` (None: plainly) and seed ``seeds[i]``."""

    def __call__(
        self, texts: Sequence[str], instructs: Sequence[str | None], seeds: Sequence[int]
    ) -> tuple[list[np.ndarray], int]: ...


def speaks_instructions(synthesizer) -> bool:
    """Whether ``synthesizer.synthesize`` takes per-row instructions (an ``instructs`` argument)."""
    return "instructs" in inspect.signature(synthesizer.synthesize).parameters


def synthesizer_speaker(synthesizer, lora_scale: float, batch_size: int = 40, language: str | None = None):
    """An :class:`InstructedSpeaker` of ``synthesizer`` at one LoRA scale (each call's texts ``batch_size`` per
    generate call), or None when it cannot speak instructions: the probe is then skipped, never faked."""
    if not speaks_instructions(synthesizer):
        return None
    from qwen_tts_lit.synthesis.presets import SAMPLE_RATE

    def speak(texts: Sequence[str], instructs: Sequence[str | None], seeds: Sequence[int]):
        languages = None if language is None else [language] * len(texts)
        # The one call into the Synthesizer's instructions (``instructs``: one str or None per row).
        spoken = synthesizer.synthesize(list(texts), seeds=list(seeds), lora_scale=lora_scale, batch_size=batch_size,
                                        languages=languages, instructs=list(instructs))  # fmt: skip
        return [u.wav for u in spoken], SAMPLE_RATE

    return speak


@dataclass(frozen=True)
class ProbeSentence:
    """A held-out sentence the probe speaks: its id (the row it writes into), text, seed and language code."""

    utt_id: str
    text: str
    seed: int
    language: str = "en"


class ProbeMeasures:
    """The three measures; ``asr`` and ``vad``: the run's judges (``Judges.asr``, ``Judges.vad``; ASR may be None)."""

    def __init__(self, asr=None, vad=None) -> None:
        self.asr, self.vad = asr, vad

    def rates(self, wavs: Sequence[np.ndarray], sr: int, texts: Sequence[str], language: str) -> list[float]:
        """Articulation rate of each clip (units of its text per articulated second); 0.0 where none is heard."""
        if not wavs:
            return []
        if self.vad is None:
            raise ValueError("the pace probe needs the VAD judge")
        speech = self.vad.segments_batch(list(wavs), sr)
        if self.asr is not None:
            heard = self.asr.transcripts_batch(list(wavs), sr, language)
            seconds = [articulated_seconds(t.words, s) for t, s in zip(heard, speech, strict=True)]
        else:  # no ASR: the VAD's speech with its pauses cut out (under-reads pace: docs/speech_rate.md)
            seconds = [span_seconds(bridged(s)) for s in speech]
        return [units_per_second(count_words(text, language), s) for text, s in zip(texts, seconds, strict=True)]

    @staticmethod
    def value(measure: str, wav: np.ndarray, sr: int) -> float:
        """The level (dBFS) or median F0 (Hz) of one clip."""
        return active_level_db(wav, sr) if measure == LEVEL else median_f0(wav, sr)


def probe_effects(
    speaker: InstructedSpeaker, sentences: Sequence[ProbeSentence], probes: Sequence[Probe], measures: ProbeMeasures
) -> dict[str, dict[str, float]]:
    """{utt_id: its effect fields} (``metrics.instructions.row_fields``): every sentence spoken plainly and with each
    instruction of ``probes``, all in one call of the speaker."""
    asked = [(s, None) for s in sentences] + [(s, i) for s in sentences for p in probes for i in p.instructions]
    wavs, sr = speaker(
        [s.text for s, _ in asked], [i.text if i else None for _, i in asked], [s.seed for s, _ in asked]
    )
    if len(wavs) != len(asked):
        raise ValueError(f"the speaker returned {len(wavs)} clips for {len(asked)} texts")
    clip = {(s.utt_id, i.key if i else None): wav for (s, i), wav in zip(asked, wavs, strict=True)}
    measure_of = {i.key: p.measure for p in probes for i in p.instructions}
    values: dict[tuple[str, str | None], dict[str, float]] = {key: {} for key in clip}
    for measure in dict.fromkeys(p.measure for p in probes):
        keys = [k for k in clip if k[1] is None or measure_of[k[1]] == measure]
        if measure == RATE:
            for language in dict.fromkeys(s.language for s in sentences):
                own = [k for k in keys if _sentence(sentences, k[0]).language == language]
                texts = [_sentence(sentences, k[0]).text for k in own]
                for key, rate in zip(own, measures.rates([clip[k] for k in own], sr, texts, language), strict=True):
                    values[key][RATE] = rate
        else:
            for key in keys:
                values[key][measure] = ProbeMeasures.value(measure, clip[key], sr)
    out = {}
    for sentence in sentences:
        plain = values[(sentence.utt_id, None)]
        instructed = {i.key: values[(sentence.utt_id, i.key)].get(p.measure) for p in probes for i in p.instructions}
        out[sentence.utt_id] = row_fields(probes, instructed, plain)
    return out


def _sentence(sentences: Sequence[ProbeSentence], utt_id: str) -> ProbeSentence:
    return next(s for s in sentences if s.utt_id == utt_id)


def base_effects(baseline_rows: Sequence[Mapping], probes: Sequence[Probe]) -> dict[str, dict[str, float]]:
    """{utt_id: {probe name: the base model's effect}} from zero-shot rows the probe wrote into."""
    return _effects_by_sentence(baseline_rows, probes, effect_field)


def preset_effects(rows: Sequence[Mapping], probes: Sequence[Probe]) -> dict[str, dict[str, float]]:
    """{utt_id: {probe name: the preset speaker's effect}} from rows that carry them (the x-vector baseline's)."""
    return _effects_by_sentence(rows, probes, preset_field)


def _effects_by_sentence(rows: Sequence[Mapping], probes: Sequence[Probe], field) -> dict[str, dict[str, float]]:
    """{utt_id: {probe name: the row's ``field(probe)`` value}}, sentences with none of them left out."""
    found: dict[str, dict[str, float]] = {}
    for row in rows:
        own = {p.name: row[field(p.name)] for p in probes if row.get(field(p.name)) is not None}
        if own:
            found[str(row["utt_id"])] = own
    return found


def probe_only(effects: Mapping[str, Mapping[str, float]], probes: Sequence[Probe]) -> dict[str, dict[str, float]]:
    """{utt_id: {probe name: effect}} of :func:`probe_effects`' fields (what ``attach`` takes as a reference)."""
    return {utt: {p.name: fields[effect_field(p.name)] for p in probes} for utt, fields in effects.items()}


def attach(
    rows: list[dict],
    effects: Mapping[str, Mapping[str, float]],
    lora_scale: float,
    probes: Sequence[Probe],
    reference: Mapping[str, Mapping[str, float]] | None = None,
    presets: Mapping[str, Mapping[str, float]] | None = None,
) -> list[dict]:
    """``rows`` (one cell's or several) with the probe's fields on each row of ``lora_scale`` whose utt_id it
    measured: its effects, the base model's effect on that sentence (``reference``: {utt_id: {probe: effect}}; for
    the zero-shot rows themselves, their own effect) and the preset speaker's (``presets``, same shape). Rows are
    updated in place and returned. A row of several codec prefixes per sentence: each gets the same effects (the
    probe speaks the untagged prefix). A value that could not be measured is None (a JSON null), as every metric
    of a row."""
    for row in rows:
        own = effects.get(str(row["utt_id"]))
        if own is None or not math.isclose(float(row["lora_scale"]), float(lora_scale)):
            continue
        fields = dict(own)
        base = (reference or {}).get(str(row["utt_id"]), {})
        preset = (presets or {}).get(str(row["utt_id"]), {})
        for probe in probes:
            own_effect = own.get(effect_field(probe.name)) if row.get("baseline") else None
            fields[base_field(probe.name)] = base.get(probe.name, own_effect)
            if preset:
                fields[preset_field(probe.name)] = preset.get(probe.name)
        row.update({name: _measured(value) for name, value in fields.items()})
    return rows


def _measured(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def preset_field_name(name: str) -> str:
    """The field of a preset speaker's similarity to its own zero-shot voice."""
    return f"preset_{name}_sim"


def presets_kept(
    speaker_judge, before: Mapping[str, Sequence[np.ndarray]], after: Mapping[str, Sequence[np.ndarray]], sr: int
) -> dict[str, float]:
    """Whether a fine-tune left the checkpoint's preset speakers (CustomVoice's nine) as they were: for each preset,
    the mean speaker similarity of its clips at the chosen cell (``after``: {preset: clips}) to its own zero-shot
    voice (``before``: its clips at scale 0, the held-out sentences; their mean embedding is the reference, as the
    real recordings' is for the new voice). ``speaker_judge``: the run's ``SpeakerSimilarity`` (or any judge with
    ``embed_batch``). {``preset_<name>_sim``: value}; a preset missing from ``after`` is left out. NaN where its
    zero-shot clips are all silent (the tiny random model): there is no voice to compare with, and the judge's 0.0
    for silence would read as "destroyed"."""
    from qwen_tts_lit.metrics.speaker_sim import cosine_similarity, mean_embedding

    kept = {}
    for name, clips in before.items():
        if name not in after or not clips or not after[name]:
            continue
        reference = mean_embedding(speaker_judge.embed_batch(list(clips), sr))
        if not np.any(reference):
            kept[preset_field_name(name)] = math.nan
            continue
        values = [cosine_similarity(e, reference) for e in speaker_judge.embed_batch(list(after[name]), sr)]
        kept[preset_field_name(name)] = float(np.mean(values))
    return kept


def preset_speakers(tts) -> list[str]:
    """The preset speakers of the checkpoint behind ``tts`` (a CustomVoice's; none on a Base)."""
    return [str(name) for name in tts.model.get_supported_speakers() or ()]


def presets_record(epoch: int, lora_scale: float, presets: Sequence[str], sentences: Sequence[str]) -> dict:
    """The chosen cell's record of presets kept (``runs.records.PRESETS_KEPT``), every similarity still null."""
    return {"epoch": int(epoch), "lora_scale": float(lora_scale), "sentences": list(sentences),
            "similarity": dict.fromkeys(presets)}  # fmt: skip


def measure_presets(
    tts,
    speaker_judge,
    items,
    *,
    epoch: int,
    lora_scale: float,
    seed: int,
    max_new_tokens: int | None,
    batch_size: int,
    decoding: str = "dynamic",
) -> dict:
    """The presets-kept record of the cell (``epoch``, ``lora_scale``) whose trained weights ``tts`` holds now:
    each preset speaks ``items`` (held-out sentences; sentence i with ``seed + i``, as evaluation seeds it) at
    scale 0, the base model exactly, and at ``lora_scale``, in one call per preset; :func:`presets_kept` compares
    them. A preset that cannot be measured is null, with the record's ``reason``."""
    from qwen_tts_lit.synthesis.presets import SAMPLE_RATE
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

    presets = preset_speakers(tts)
    record = presets_record(epoch, lora_scale, presets, [item.utt_id for item in items])
    texts, seeds = [item.text for item in items] * 2, [seed + index for index in range(len(items))] * 2
    scales = [0.0] * len(items) + [float(lora_scale)] * len(items)
    before, after = {}, {}
    for name in presets:
        spoken = Synthesizer(tts, Voice(speaker=name), decoding=decoding).synthesize(
            texts, seeds=seeds, lora_scale=scales, max_new_tokens=max_new_tokens, batch_size=batch_size
        )
        before[name], after[name] = [u.wav for u in spoken[: len(items)]], [u.wav for u in spoken[len(items) :]]
    kept = presets_kept(speaker_judge, before, after, SAMPLE_RATE)
    values = {name: kept.get(preset_field_name(name), math.nan) for name in presets}
    record["similarity"] = {name: None if math.isnan(v) else v for name, v in values.items()}  # JSON null
    if None in record["similarity"].values():
        record["reason"] = "a preset's zero-shot clips are silent (no voice to compare with)"
    return record
