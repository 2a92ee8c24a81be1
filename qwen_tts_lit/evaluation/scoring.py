"""Synthesize held-out sentences and score them against their real recordings (torch only, no Lightning).

One evaluation *cell* is (epoch, lora_scale): every held-out sentence is spoken once with its own fixed seed, and
every metric runs on that same audio. Each utterance becomes one evaluation row (``runs.records``).

An epoch's cells are spoken together: all (sentence, scale) rows in one ``generate`` call, or in calls of
``batch_size`` rows, each row at its own LoRA scale and sampled from its own seed's generator (``synthesis``). The
batches are fixed by the settings (rows sentence by sentence, each sentence's scales in order, then cut every
``batch_size``; with several speakers, each speaker's rows in turn, spoken with that speaker's x-vector and judged
against that speaker's real recordings), so the same settings give byte-identical audio, in training and when
``evaluate`` re-scores an epoch; a row's codes do not depend on its batch at all, only batched float rounding
could. The judges then score all of the epoch's clips per call: ASR (one transcription per clip, with word time
stamps: the text for WER/CER, the words for the speech rate), speaker, VAD, naturalness (DNSMOS).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.evaluation.heldout import HeldOut, RealRecordings
from qwen_tts_lit.evaluation.judges import Judges
from qwen_tts_lit.evaluation.progress import EvalProgress
from qwen_tts_lit.files import write_wav
from qwen_tts_lit.languages import AUTO, count_words, error_metric, is_auto
from qwen_tts_lit.metrics import (
    EmbeddingSimilarity,
    articulated_seconds,
    error_rate,
    pace_ratio,
    rate_ratio,
    span_seconds,
    units_per_second,
    words_per_second,
)
from qwen_tts_lit.metrics.asr import Transcript
from qwen_tts_lit.model.layout import TAGGED, UNTAGGED
from qwen_tts_lit.model.lora import evaluable_scales
from qwen_tts_lit.runs.baselines import DEFAULT_BASELINES, VOICE_CLONE, VOICE_CLONES, XVECTOR, requested_name
from qwen_tts_lit.runs.folder import baseline_dir, cell_dir
from qwen_tts_lit.synthesis.presets import FRAME_RATE, SAMPLE_RATE
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Utterance, Voice, icl_voice


@dataclass(frozen=True)
class Cell:
    """One row to speak: a held-out sentence (its index fixes the seed) at one LoRA scale, with one codec prefix
    (untagged: the language omitted; tagged: the sentence's language in the prefix)."""

    index: int
    item: HeldOut
    scale: float
    prefix: str = UNTAGGED

    @property
    def language(self) -> str:
        """The language ``generate`` gets: "auto" builds the untagged prefix, the sentence's language the tagged."""
        return AUTO if self.prefix == UNTAGGED else self.item.language


def epoch_rows(items: Sequence[HeldOut], scales: Sequence[float], prefixes: Sequence[str] = (UNTAGGED,)) -> list[Cell]:
    """The rows of one epoch in their fixed order: sentence by sentence, each with every codec prefix the model was
    trained on, each at every scale (rows of one sentence share a frame cap, so a batch cut from this order wastes
    few steps on shorter companions)."""
    return [Cell(index, item, float(scale), prefix) for index, item in enumerate(items) for prefix in prefixes
            for scale in scales]  # fmt: skip


def check_prefixes(items: Sequence[HeldOut], prefixes: Sequence[str], source: str) -> None:
    """A tagged prefix needs each held-out sentence's language."""
    unnamed = [item.utt_id for item in items if is_auto(item.language)]
    if TAGGED in prefixes and unnamed:
        raise UserError(f"{source}: held-out rows {', '.join(unnamed[:5])} name no language, but the model was "
                        "trained with the language in the codec prefix (data.language_tag on/mixed): give each "
                        "held-out row a language")  # fmt: skip


def batches(rows: Sequence, batch_size: int) -> list:
    """``rows`` cut into consecutive batches of ``batch_size`` (the last one shorter)."""
    return [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]


def score_utterances(
    items: Sequence[HeldOut],
    utterances: Sequence[Utterance],
    judges: Judges,
    real: RealRecordings,
    model_similarity: Callable[[np.ndarray, str | None], float] | None = None,
    progress: EvalProgress | None = None,
    batch_size: int = 40,
) -> list[dict]:
    """Every metric for each synthesized utterance (the metric fields of its row); each judge scores
    ``batch_size`` clips per call, step by step."""
    progress = progress or EvalProgress(0, 0, 0, enabled=False)
    wavs = [u.wav for u in utterances]
    groups = [list(group) for group in batches(range(len(wavs)), batch_size)]
    # Each row is transcribed in its own language: the one its sentence names, or the one measure_real resolved.
    spoken = [real.language_of(item).code for item in items]

    def each_group(step: str, judge: Callable[[list[int]], list]) -> list:
        progress.step(step)
        results = []
        for group in groups:
            results += judge(group)
            progress.advance(len(group))
        return results

    def transcripts(group: list[int]) -> list[Transcript | None]:
        if judges.asr is None:  # ASR switched off: no transcript, no WER/CER (null in the rows)
            return [None] * len(group)
        heard = {}
        for language in dict.fromkeys(spoken[i] for i in group):
            members = [i for i in group if spoken[i] == language]
            found = judges.asr.transcripts_batch([wavs[i] for i in members], SAMPLE_RATE, language)
            heard |= dict(zip(members, found, strict=True))
        return [heard[i] for i in group]

    def speakers(group: list[int]) -> list[tuple[float, float | None]]:
        resemblyzer = {}
        for speaker in dict.fromkeys(items[i].speaker for i in group):  # one call per real voice in the group
            own = [i for i in group if items[i].speaker == speaker]
            found = judges.speaker.similarities([wavs[i] for i in own], SAMPLE_RATE, real.voice_for(items[own[0]]))
            resemblyzer |= dict(zip(own, found, strict=True))
        model = [model_similarity(wavs[i], items[i].speaker) if model_similarity else None for i in group]
        return list(zip([resemblyzer[i] for i in group], model, strict=True))

    hypotheses = each_group("ASR", transcripts)
    similarities = each_group("speaker", speakers)
    speech = each_group("VAD", lambda group: judges.vad.segments_batch([wavs[i] for i in group], SAMPLE_RATE))
    natural = [dict.fromkeys(judges.naturalness_fields) for _ in wavs]  # null where a judge is off
    for judge in judges.naturalness:
        scores = each_group("naturalness", lambda group, judge=judge: judge.score_batch([wavs[i] for i in group],
                                                                                        SAMPLE_RATE))  # fmt: skip
        for own, score in zip(natural, scores, strict=True):
            own.update(score)
    fields = zip(items, utterances, hypotheses, similarities, speech, natural, strict=True)
    return [metric_fields(item, utt, real, heard, sim, own, segments) | naturalness_fields(item, scores, real)
            for item, utt, heard, (sim, own), segments, scores in fields]  # fmt: skip


def naturalness_fields(item: HeldOut, scores: dict, real: RealRecordings) -> dict:
    """A row's naturalness scores and, beside each, its real recording's (``real_`` + the name): the cell reads
    "naturalness vs the real recording" from one row."""
    measured = real.naturalness.get(item.utt_id, {})
    return scores | {f"real_{name}": measured.get(name) for name in scores}


def metric_fields(
    item: HeldOut,
    utterance: Utterance,
    real: RealRecordings,
    transcript: Transcript | None,
    spk_sim: float,
    spk_sim_model: float | None,
    speech: list[tuple[float, float]],
) -> dict:
    """A row's metric fields from what the judges measured on its clip (``speech``: its VAD speech segments); no
    transcript (ASR off): no error rates, and the rate is the VAD's. The reference is the text as spoken
    (``utterance.text``: the Synthesizer's cleaning of ``item.text``), so a held-out transcript's non-speech tags are
    not counted as words the model failed to say; its units are also the rate's, on both sides of the ratio. The
    language every rule here reads (normalisation, which error metric, word counting) is the one resolved once for
    the sentence (``real.language_of``)."""
    language = real.language_of(item).code
    real_speech_s = real.speech_seconds[item.utt_id]
    speech_s = span_seconds(speech)
    hypothesis = None if transcript is None else transcript.text
    metric = error_metric(language)  # CER where the language is scored by characters, else WER
    errors = None if hypothesis is None else error_rate(utterance.text, hypothesis, language)
    vad_ratio = rate_ratio(speech_s, real_speech_s)
    units = count_words(utterance.text, language)
    real_articulated = real.articulated.get(item.utt_id)  # None: the real recordings were measured without ASR
    timed = transcript is not None and real_articulated is not None
    articulated = articulated_seconds(transcript.words, speech) if timed else None
    return {
        "hypothesis": hypothesis,
        "error_metric": metric,
        "wer": errors if metric == "wer" else None,
        "cer": errors if metric == "cer" else None,
        "error_rate": errors,
        "spk_sim": spk_sim,
        "spk_sim_model": spk_sim_model,
        # The pace (docs/speech_rate.md): seconds per spoken unit of articulated speech over the real recording's;
        # with the ASR off, the VAD's ratio stands in and rate_judge says so.
        "rate_ratio": pace_ratio((units, articulated), (units, real_articulated)) if timed else vad_ratio,
        "rate_judge": "asr+vad" if timed else "vad",
        "rate_ratio_vad": vad_ratio,
        "units_per_second": units_per_second(units, articulated) if timed else None,
        "articulated_seconds": articulated,
        "real_articulated_seconds": real_articulated,
        "words_per_second": words_per_second(utterance.text, speech_s, language),
        "speech_seconds": speech_s,
        "real_speech_seconds": real_speech_s,
        "frames": utterance.frames,
        "real_frames": math.ceil(real.seconds[item.utt_id] * FRAME_RATE),
        "max_new_tokens": utterance.max_new_tokens,
        "hit_max_tokens": utterance.hit_max_tokens,
    }


def model_similarity_fn(synthesizer: Synthesizer, voices: dict) -> Callable[[np.ndarray, str | None], float]:
    """Cosine of a clip's x-vector (the model's own speaker encoder) with its speaker's training x-vector
    (``voices``: {None: x-vector} for one voice, {name: x-vector} for several)."""
    encoder = EmbeddingSimilarity(synthesizer.model.extract_speaker_embedding, SAMPLE_RATE)
    references = {k: np.asarray(v.detach().float().cpu() if hasattr(v, "detach") else v) for k, v in voices.items()}
    return lambda wav, speaker: encoder.similarity(wav, SAMPLE_RATE, references[speaker])


def save_clip(
    run_dir: Path, epoch: int, cell: Cell, utterance: Utterance, real: RealRecordings, baseline: str | None = None
) -> dict:
    """Write the clip under ``cell_dir(epoch, scale)`` (a baseline's under ``baseline_dir(mode)``); the row's
    fields that say what was spoken and where. ``text`` is the text as spoken (``utterance.text``, the Synthesizer's
    cleaning), the reference its error rate and speech rate are scored against, so a notebook recomputes them from
    the row alone; ``heldout_text`` is the held-out transcript as written (tags and all), what a re-score speaks."""
    item = cell.item
    folder = run_dir / (baseline_dir(baseline) if baseline else cell_dir(epoch, utterance.lora_scale))
    folder.mkdir(parents=True, exist_ok=True)
    wav_path = folder / (f"{item.utt_id}.wav" if cell.prefix == UNTAGGED else f"{item.utt_id}.{cell.prefix}.wav")
    write_wav(wav_path, utterance.wav, SAMPLE_RATE)
    speaker = {"speaker": item.speaker} if item.speaker is not None else {}  # one voice: rows as they always were
    spoken = real.language_of(item)  # a sentence without a language: the one it was scored in, and how it was found
    language = item.language if spoken.source == "given" else spoken.name
    return {"epoch": epoch, "lora_scale": utterance.lora_scale, "utt_id": item.utt_id, "text": utterance.text,
            "heldout_text": item.text, "language": language, "language_source": spoken.source, **speaker,
            "prefix": cell.prefix, "seed": utterance.seed,
            "wav": str(wav_path.relative_to(run_dir)),
            "real_wav": real.copies.get(item.utt_id), "seconds": utterance.wall_seconds,
            **({"baseline": baseline} if baseline else {})}  # fmt: skip


def speak(
    synthesizer: Synthesizer,
    rows: Sequence[Cell],
    seed: int,
    max_new_tokens: int | None,
    batch_size: int,
    progress: EvalProgress,
    voices: dict | None = None,
) -> list[Utterance]:
    """Speak ``rows`` (sentence i with seed ``seed + i``, each at its scale and with its codec prefix),
    ``batch_size`` rows per call; rows of a speaker (several speakers) are spoken together with that speaker's
    x-vector from ``voices``."""
    progress.step("synthesis")
    by_speaker: dict[str | None, list[int]] = {}
    for position, row in enumerate(rows):
        by_speaker.setdefault(row.item.speaker, []).append(position)
    utterances: list[Utterance | None] = [None] * len(rows)
    own_voice = synthesizer.voice
    try:
        for speaker, positions in by_speaker.items():
            synthesizer.voice = own_voice if speaker is None else Voice(xvector=voices[speaker])
            for batch in batches(positions, batch_size):
                spoken = synthesizer.synthesize(
                    [rows[p].item.text for p in batch], seeds=[seed + rows[p].index for p in batch],
                    lora_scale=[rows[p].scale for p in batch], max_new_tokens=max_new_tokens, batch_size=len(batch),
                    languages=[rows[p].language for p in batch],
                )  # fmt: skip
                for position, utterance in zip(batch, spoken, strict=True):
                    utterances[position] = utterance
                progress.advance(len(batch))
    finally:
        synthesizer.voice = own_voice
    return utterances


def check_speakers(items: Sequence[HeldOut], voices: dict) -> None:
    """Held-out rows and the run's voices must agree: every row of a run of several speakers names one of them."""
    named = [name for name in voices if name is not None]
    if not named:
        return
    for item in items:
        if item.speaker is None or item.speaker not in voices:
            given = "names no speaker" if item.speaker is None else f"names speaker {item.speaker!r}"
            raise UserError(f"held-out '{item.utt_id}' {given}; the run's speakers are {', '.join(named)} (give each "
                            "held-out row a 'speaker' field)")  # fmt: skip


def evaluate_epoch(
    synthesizer: Synthesizer,
    judges: Judges,
    real: RealRecordings,
    run_dir: Path,
    epoch: int,
    scales: Sequence[float],
    seed: int,
    max_new_tokens: int | None,
    voices: dict,
    batch_size: int = 40,
    show_progress: bool = False,
    prefixes: Sequence[str] = (UNTAGGED,),
    baseline: str | None = None,
) -> list[dict]:
    """Every cell of one epoch's weights (each scale the model can run at x every held-out sentence): speak them
    ``batch_size`` rows per ``generate`` call, write the wavs under ``cell_dir(epoch, scale)``, score every clip,
    return one row per clip. ``voices``: the training x-vectors, {None: x-vector} for one voice or {name: x-vector}
    for several (each held-out row is spoken with its speaker's); ``spk_sim_model`` compares against them.
    ``prefixes``: the codec prefixes the model was trained on (``trained_prefixes`` of its language_tag), each
    sentence spoken with every one of them: the calls users will make. ``baseline``: these are zero-shot rows of
    the base model in that mode (:func:`evaluate_baselines`)."""
    check_speakers(real.items, voices)
    scales = evaluable_scales(synthesizer.model, scales)
    rows = epoch_rows(real.items, scales, prefixes)
    similarity = model_similarity_fn(synthesizer, voices) if judges.settings.model_speaker_sim else None
    with EvalProgress(epoch, len(scales), len(real.items), enabled=show_progress) as progress:
        utterances = speak(synthesizer, rows, seed, max_new_tokens, batch_size, progress, voices)
        items = [row.item for row in rows]
        records = [save_clip(run_dir, epoch, row, utt, real, baseline)
                   for row, utt in zip(rows, utterances, strict=True)]  # fmt: skip
        metrics = score_utterances(items, utterances, judges, real, similarity, progress, batch_size)
    return [record | fields for record, fields in zip(records, metrics, strict=True)]


BASELINE_EPOCH = -1  # baseline rows: the base model before any training


def evaluate_baselines(
    tts,
    voices: dict,
    reference: tuple[np.ndarray, str] | None,
    judges: Judges,
    real: RealRecordings,
    run_dir: Path,
    seed: int,
    max_new_tokens: int | None,
    batch_size: int = 40,
    show_progress: bool = False,
    prefixes: Sequence[str] = (UNTAGGED,),
    modes: Sequence[str] = DEFAULT_BASELINES,
    decoding: str = "dynamic",
) -> list[dict]:
    """The base model, zero-shot, on the same held-out sentences, seeds and judges as the trained cells, one
    baseline per name in ``modes`` (``runs.baselines``): "xvector" (the training x-vectors, adapters at scale 0, the
    cells' own call) and, given the reference recording as recorded (24 kHz, no appended silence) and its
    transcript, "voice_clone" (upstream's ``generate_voice_clone(text, ref_audio, ref_text)`` as users call it:
    the default streaming layout, decoded after the reference codes as upstream decodes) and
    "voice_clone_non_streaming" (the same with ``non_streaming_mode=True``). The clones need one voice: with several
    speakers one reference clip cannot stand for all of them, so they are left out; a CustomVoice checkpoint has no
    speaker encoder and upstream refuses it the clone call, so they are left out there too. ``voices`` as in
    :func:`evaluate_epoch`. Rows have ``baseline`` = the name, epoch -1 and lora_scale 0 (the model's only scale
    when it has no adapters: call this before training changes its weights). ``decoding``: the Synthesizers'
    key/value cache (``upstream.decoding``)."""
    scale = evaluable_scales(tts.model, [0.0])
    rows = []
    for mode, synthesizer in baseline_synthesizers(tts, voices, reference, modes, decoding).items():
        rows += evaluate_epoch(synthesizer, judges, real, run_dir, BASELINE_EPOCH, scale, seed, max_new_tokens,
                               voices, batch_size, show_progress, prefixes, baseline=mode)  # fmt: skip
    return rows


def baseline_synthesizers(
    tts, voices: dict, reference: tuple[np.ndarray, str] | None, modes: Sequence[str], decoding: str = "dynamic"
) -> dict[str, Synthesizer]:
    """{baseline name: the Synthesizer that speaks it} for the names in ``modes`` that can be spoken here (see
    :func:`evaluate_baselines`); the clones share one voice prompt, built by upstream from ``reference`` as given."""
    modes = [requested_name(mode) for mode in modes]
    spoken_by = {}
    if XVECTOR in modes:
        spoken_by[XVECTOR] = Synthesizer(tts, Voice(xvector=next(iter(voices.values()))), decoding=decoding)
    clones = [mode for mode in modes if mode in VOICE_CLONES]
    can_clone = tts.model.speaker_encoder is not None  # a CustomVoice checkpoint has none
    if clones and reference is not None and None in voices and can_clone:  # one voice: the reference speaks for it
        voice = icl_voice(tts, *reference)
        for mode in clones:
            spoken_by[mode] = Synthesizer(tts, voice, streaming=mode == VOICE_CLONE, decoding=decoding)
    return spoken_by
