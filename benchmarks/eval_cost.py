"""What evaluation costs, before and after batching, measured in one run.

    python benchmarks/eval_cost.py                  # judges on the 8 held-out clips, then the demo fit, both paths
    python benchmarks/eval_cost.py --uncapped       # the same with each text's own frame cap instead of demo's 40
    python benchmarks/eval_cost.py --run runs/demo/version_0   # the epoch costs an existing run logged
    python benchmarks/eval_cost.py --asr-model large-v3 --device cuda --compute-type float16   # a real run's judge
    python benchmarks/eval_cost.py --naturalness    # what the DNSMOS judge adds to each epoch of the demo fit
    python benchmarks/eval_cost.py --instruct-probe # the instruction probe against an epoch's evaluation (defaults)

1. Judges, per clip, on the 8 real held-out recordings (data/demo/heldout): each library's own per-clip call (what
   evaluation did before: faster-whisper's sequential ``transcribe``, resemblyzer's ``embed_utterance``, silero's
   ``get_speech_timestamps``) against the batched calls evaluation makes now, all clips per call. Models are loaded
   and warmed up first, as the EvalSuite keeps its judges for the whole run.
2. Evaluation per epoch against training per epoch, in one ``fit --config configs/demo.yaml``: the EvalSuite (after:
   an epoch's sentences x scales in one generate call, judges over all clips per call, ``time/eval_seconds``) and,
   right after it on the same weights, :class:`SequentialEvaluation` (before, re-created: cell after cell, one
   generate call per sentence, every judge once per clip, ``time/eval_seconds_sequential``). Both run inside the
   same epoch of the same process, so machine load hits them alike; the ratio divides by the epoch's
   ``time/train_epoch_seconds``. The re-created path writes into a scratch folder, never the run's.
3. ``--naturalness``: the DNSMOS judge per clip (speechmos's per-clip ``dnsmos.run`` against our batched call) and,
   in one demo fit, what it adds to each epoch's evaluation: :class:`NaturalnessCost` times the EvalSuite's own
   naturalness judges again on the epoch's clips (read back from the run folder: the same call on the same audio),
   and on as many clips of real speech (the held-out recordings in turn: the demo's tiny model speaks silence, which
   DNSMOS scores without running), over ``time/eval_seconds``; and the real recordings' scoring, once per run.

4. ``--instruct-probe``: the instruction-retention probe (docs/instructions_probe.md) against one epoch's evaluation,
   both with the default settings (``EvalSettings()``: 8 held-out sentences x 5 scales, every judge; the probe's
   2 sentences x (1 plain + 7 instructions) at one scale, every probe), in one process on the tiny CustomVoice
   checkpoint (``tiny_custom_voice``) with LoRA adapters (so all 5 scales are spoken) and a new voice's x-vector.
   The probe speaks through the real path the EvalSuite uses (``synthesizer_speaker``: ``Synthesizer.synthesize``
   with ``instructs``, each instruction laid out as upstream's ``generate_custom_voice(..., instruct=...)``),
   measured by the real judges. The tiny model speaks near-silence, which the judges skip quickly: the probe's
   measures are then timed again on real speech, with the espeak-ng double (tests/helpers/espeak_voice.py),
   beside the evaluation judges on as many real clips.
   The share divides by ``every_n_epochs`` (the probe's default 3): what it adds to an average epoch.

Prints figures; asserts nothing (tests never time).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import soundfile as sf
import yaml

from qwen_tts_lit.audio import resample
from qwen_tts_lit.evaluation.heldout import RealRecordings, measure_real, read_heldout
from qwen_tts_lit.evaluation.judges import Judges
from qwen_tts_lit.evaluation.publish import publish
from qwen_tts_lit.evaluation.scoring import Cell, metric_fields, naturalness_fields, save_clip
from qwen_tts_lit.evaluation.settings import EvalSettings, JudgeSettings
from qwen_tts_lit.metrics import ASR, EmbeddingSimilarity, SpeakerSimilarity, SpeechDetector, cosine_similarity
from qwen_tts_lit.metrics.asr import ASR_RATE
from qwen_tts_lit.metrics.audio import is_silent
from qwen_tts_lit.metrics.speech_rate import VAD_RATE, _import_silero_vad, span_seconds
from qwen_tts_lit.model.lora import evaluable_scales
from qwen_tts_lit.runs.folder import METRICS_FILE
from qwen_tts_lit.runs.records import read_rows, write_rows
from qwen_tts_lit.synthesis.presets import SAMPLE_RATE
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

REPO = Path(__file__).resolve().parents[1]
NATURALNESS_METRICS = ("time/naturalness_seconds", "time/naturalness_speech_seconds", "time/naturalness_real_seconds")
HELDOUT = REPO / "data" / "demo"
SEQUENTIAL_METRIC = "time/eval_seconds_sequential"


# ------------------------------------------------------------------ the judges' per-clip calls (before)


def transcribe_one(asr: ASR, wav: np.ndarray, sr: int) -> str:
    """faster-whisper's sequential transcribe of one clip, as evaluation called it before batching."""
    audio = resample(wav, sr, ASR_RATE)
    if audio.size == 0:
        return ""
    segments, _ = asr.model.transcribe(audio, language=asr.language, beam_size=asr.beam_size,
                                       temperature=asr.temperature, condition_on_previous_text=False,
                                       without_timestamps=True)  # fmt: skip
    return " ".join(segment.text.strip() for segment in segments).strip()


def embed_one(speaker: SpeakerSimilarity, wav: np.ndarray, sr: int) -> np.ndarray:
    """resemblyzer's embed_utterance of one clip (zeros for silence), as before batching."""
    from resemblyzer import preprocess_wav

    audio = resample(wav, sr, 16000)
    if is_silent(audio):
        return np.zeros(256, dtype=np.float32)
    audio = preprocess_wav(audio)
    return speaker.encoder.embed_utterance(audio) if audio.size else np.zeros(256, dtype=np.float32)


def speech_segments_one(vad: SpeechDetector, wav: np.ndarray, sr: int) -> list[tuple[float, float]]:
    """silero-vad's get_speech_timestamps on one clip, as before batching: (start_s, end_s) of each segment."""
    import torch

    audio = resample(wav, sr, VAD_RATE)
    if audio.size == 0:
        return []
    stamps = _import_silero_vad().get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(audio)), vad.model,
                                                         sampling_rate=VAD_RATE)  # fmt: skip
    return [(s["start"] / VAD_RATE, s["end"] / VAD_RATE) for s in stamps]


def speech_seconds_one(vad: SpeechDetector, wav: np.ndarray, sr: int) -> float:
    """Speech seconds of one clip from :func:`speech_segments_one`."""
    return span_seconds(speech_segments_one(vad, wav, sr))


# ------------------------------------------------------------------ 1. judges per clip


def heldout_clips() -> list[tuple[str, np.ndarray, int]]:
    """(text, float32 audio, rate) of each shipped held-out recording."""
    rows = [json.loads(line) for line in (HELDOUT / "heldout.jsonl").read_text().splitlines() if line.strip()]
    return [(row["text"], *sf.read(str(HELDOUT / row["audio"]), dtype="float32")) for row in rows]


def per_clip_ms(fn: Callable[[], object], clips: int, repeats: int) -> float:
    """Mean milliseconds per clip of ``fn()`` (which handles ``clips`` clips), after one untimed warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1000 * (time.perf_counter() - start) / (repeats * clips)


def judge_costs(judges: Judges, repeats: int) -> dict[str, float]:
    """Per-clip ms of each judge on the real held-out recordings, per clip (before) and batched (now)."""
    clips = heldout_clips()
    wavs, sr = [wav for _, wav, _ in clips], clips[0][2]
    reference = judges.speaker.embed_batch(wavs[:4], sr)[0]
    n = len(wavs)
    costs = {
        "asr_before": per_clip_ms(lambda: [transcribe_one(judges.asr, w, sr) for w in wavs], n, repeats),
        "asr_after": per_clip_ms(lambda: judges.asr.transcribe_batch(wavs, sr), n, repeats),
        "speaker_before": per_clip_ms(
            lambda: [cosine_similarity(embed_one(judges.speaker, w, sr), reference) for w in wavs], n, repeats
        ),  # fmt: skip
        "speaker_after": per_clip_ms(lambda: judges.speaker.similarities(wavs, sr, reference), n, repeats),
        "vad_before": per_clip_ms(lambda: [speech_seconds_one(judges.vad, w, sr) for w in wavs], n, repeats),
        "vad_after": per_clip_ms(lambda: judges.vad.speech_seconds_batch(wavs, sr), n, repeats),
    }
    audio_ms = 1000 * float(np.mean([len(w) / sr for w in wavs]))
    print(
        f"Judges on {n} real held-out clips (mean {audio_ms:.0f} ms of audio), {repeats} repeats; ASR "
        f"{judges.asr.model_path} ({judges.asr.device}, {judges.asr.compute_type}, beam {judges.asr.beam_size})"
    )
    print(f"{'judge':<8} {'per clip ms':>12} {'batched ms/clip':>16} {'speed-up':>9}")
    for name in ("asr", "speaker", "vad"):
        before, after = costs[f"{name}_before"], costs[f"{name}_after"]
        print(f"{name:<8} {before:12.1f} {after:16.1f} {before / after:8.2f}x")
    return costs


# ------------------------------------------------------------------ 2. the evaluation before batching, in the fit


def sequential_epoch(synthesizer: Synthesizer, judges: Judges, real: RealRecordings, run_dir: Path, epoch: int,
                     settings: EvalSettings, xvector) -> list[dict]:  # fmt: skip
    """Evaluation as it was before batching: cell after cell, one generate call per sentence, each judge once per
    clip (the library's per-clip call: faster-whisper's sequential transcribe with word time stamps, resemblyzer's
    embed_utterance, silero's get_speech_timestamps, each naturalness judge on a batch of one); the same rows as the
    batched path (``evaluation.scoring.evaluate_epoch``), built by the same ``metric_fields`` and
    ``naturalness_fields`` (tests/benchmarks/test_eval_cost.py compares the two)."""
    own = EmbeddingSimilarity(synthesizer.model.extract_speaker_embedding, SAMPLE_RATE)
    own_reference = xvector.detach().float().cpu().numpy()
    rows = []
    for scale in evaluable_scales(synthesizer.model, settings.scales):
        utterances = synthesizer.synthesize([item.text for item in real.items],
                                            seeds=[settings.seed + i for i in range(len(real.items))],
                                            lora_scale=scale, max_new_tokens=settings.max_new_tokens)  # fmt: skip
        for index, (item, utterance) in enumerate(zip(real.items, utterances, strict=True)):
            wav = utterance.wav
            record = save_clip(run_dir, epoch, Cell(index, item, scale), utterance, real)
            transcript = None if judges.asr is None else judges.asr.transcribe_words(wav, SAMPLE_RATE)
            spk_sim = cosine_similarity(embed_one(judges.speaker, wav, SAMPLE_RATE), real.voice_for(item))
            spk_sim_model = (cosine_similarity(own.embed(wav, SAMPLE_RATE), own_reference)
                             if judges.settings.model_speaker_sim else None)  # fmt: skip
            segments = speech_segments_one(judges.vad, wav, SAMPLE_RATE)
            scores = dict.fromkeys(judges.naturalness_fields)  # null where a judge is off, as the batched rows
            for judge in judges.naturalness:
                scores.update(judge.score_batch([wav], SAMPLE_RATE)[0])
            fields = metric_fields(item, utterance, real, transcript, spk_sim, spk_sim_model, segments)
            rows.append(record | fields | naturalness_fields(item, scores, real))
    return rows


class SequentialEvaluation(L.Callback):
    """After the EvalSuite (list it after it), the same epoch evaluated the way it was before batching, timed and
    logged as ``time/eval_seconds_sequential``. Its own judges (loaded in its first epoch, as the EvalSuite's are);
    rows and audio go to a scratch copy of the run's rows, the run folder is never touched."""

    def __init__(self) -> None:
        self._judges: Judges | None = None
        self._real: RealRecordings | None = None

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from qwen_tts_lit.train.eval_suite import EvalSuite

        suite = next(c for c in trainer.callbacks if isinstance(c, EvalSuite))
        if trainer.sanity_checking or not suite.due(trainer):
            return
        settings, run_dir = suite.settings, Path(trainer.log_dir)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            if self._judges is None:
                self._judges = Judges(settings.judges)
                manifest = settings.heldout or Path(trainer.datamodule.root) / "val.jsonl"
                self._real = measure_real(read_heldout(manifest, settings.num_utterances), self._judges)
            write_rows(Path(scratch), read_rows(run_dir))  # publishing merges into as many rows as the run's
            synthesizer = Synthesizer(pl_module.wrapper, Voice(xvector=pl_module.xvector))
            rows = sequential_epoch(synthesizer, self._judges, self._real, Path(scratch), trainer.current_epoch,
                                    settings, pl_module.xvector)  # fmt: skip
            publish(Path(scratch), rows, settings.rule)
        pl_module.log(SEQUENTIAL_METRIC, time.perf_counter() - started, on_epoch=True, rank_zero_only=True)


def naturalness_seconds(judges: Judges, wavs: list[np.ndarray], sr: int, batch_size: int) -> float:
    """Seconds the naturalness judges take on ``wavs``, ``batch_size`` clips per call as the evaluation calls them."""
    started = time.perf_counter()
    for judge in judges.naturalness:
        for start in range(0, len(wavs), batch_size):
            judge.score_batch(wavs[start : start + batch_size], sr)
    return time.perf_counter() - started


class NaturalnessCost(L.Callback):
    """After the EvalSuite (list it after it): its naturalness judges timed again on this epoch's clips, as
    ``time/naturalness_seconds``, and on as many clips of real speech (``time/naturalness_speech_seconds``); at
    the first evaluation also on the real recordings (``time/naturalness_real_seconds``, once per run)."""

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from qwen_tts_lit.train.eval_suite import EvalSuite

        suite = next(c for c in trainer.callbacks if isinstance(c, EvalSuite))
        if trainer.sanity_checking or not suite.due(trainer):
            return
        run_dir, judges, batch = Path(trainer.log_dir), suite._judges, suite.settings.batch_size
        rows = [r for r in read_rows(run_dir) if r["epoch"] == trainer.current_epoch and not r.get("baseline")]
        clips = [sf.read(str(run_dir / r["wav"]), dtype="float32")[0] for r in rows]
        real = {r["real_wav"]: sf.read(str(run_dir / r["real_wav"]), dtype="float32") for r in rows}
        speech = [resample(wav, rate, SAMPLE_RATE) for wav, rate in real.values()]
        speech = [speech[i % len(speech)] for i in range(len(clips))]
        values = {NATURALNESS_METRICS[0]: naturalness_seconds(judges, clips, SAMPLE_RATE, batch),
                  NATURALNESS_METRICS[1]: naturalness_seconds(judges, speech, SAMPLE_RATE, batch)}  # fmt: skip
        if trainer.current_epoch == 0:
            values[NATURALNESS_METRICS[2]] = sum(naturalness_seconds(judges, [wav], rate, batch)
                                                 for wav, rate in real.values())  # fmt: skip
        for name, value in values.items():
            pl_module.log(name, value, on_epoch=True, rank_zero_only=True)


def naturalness_costs(run_dir: Path) -> None:
    """Per evaluated epoch: evaluation seconds, what the naturalness judges added, and on speech."""
    records = [r for r in csv.DictReader((run_dir / METRICS_FILE).open()) if r.get(NATURALNESS_METRICS[0])]
    evals = {r["epoch"]: float(r["time/eval_seconds"]) for r in csv.DictReader((run_dir / METRICS_FILE).open())
             if r.get("time/eval_seconds")}  # fmt: skip
    rows = [r for r in read_rows(run_dir) if not r.get("baseline")]
    per_epoch = len([r for r in rows if r["epoch"] == 0])
    print(f"\nNaturalness (DNSMOS) per epoch in {run_dir}: {per_epoch} clips per epoch, frame cap "
          f"{rows[0].get('max_new_tokens')}")  # fmt: skip
    print(f"{'epoch':>5} {'eval s':>7} {'DNSMOS s':>9} {'share':>6} {'on speech s':>12} {'share if speech':>16}")
    for r in records:
        eval_s, added, speech = evals[r["epoch"]], float(r[NATURALNESS_METRICS[0]]), float(r[NATURALNESS_METRICS[1]])
        print(f"{r['epoch']:>5} {eval_s:7.2f} {added:9.3f} {added / eval_s:6.1%} {speech:12.2f} "
              f"{speech / (eval_s - added + speech):16.1%}")  # fmt: skip
    once = [float(r[NATURALNESS_METRICS[2]]) for r in records if r.get(NATURALNESS_METRICS[2])]
    if once:
        print(f"once per run, the {len({r['utt_id'] for r in rows})} real recordings: {once[0]:.2f} s")


def dnsmos_clip_costs(judges: Judges, repeats: int) -> None:
    """Per-clip ms of DNSMOS on the real held-out recordings: speechmos's per-clip ``dnsmos.run`` and our batch."""
    from speechmos import dnsmos

    from qwen_tts_lit.metrics.dnsmos import DNSMOS_RATE, windows

    wavs = [resample(wav, rate, DNSMOS_RATE) for _, wav, rate in heldout_clips()]
    judge = judges.naturalness[0]
    before = per_clip_ms(lambda: [dnsmos.run(np.clip(w, -1, 1), DNSMOS_RATE) for w in wavs], len(wavs), repeats)
    after = per_clip_ms(lambda: judge.score_batch(wavs, DNSMOS_RATE), len(wavs), repeats)
    cut = sum(len(windows(w)) for w in wavs)
    window_ms = after * len(wavs) / cut
    print(f"DNSMOS on {len(wavs)} real held-out clips ({cut} windows of 9.01 s), {repeats} repeats: per clip "
          f"{before:.0f} ms (speechmos), batched {after:.0f} ms/clip, {window_ms:.0f} ms per window")  # fmt: skip


# ------------------------------------------------------------------ 4. the instruction probe


def instruct_probe_costs(repeats: int) -> None:
    """Section 4 of the module docstring."""
    import torch

    from qwen_tts_lit.evaluation.instruct_probe import ProbeMeasures, ProbeSentence, probe_effects, synthesizer_speaker
    from qwen_tts_lit.evaluation.scoring import evaluate_epoch, score_utterances
    from qwen_tts_lit.metrics.instructions import probes_named
    from qwen_tts_lit.model.lora import LoraSpec, inject_lora
    from qwen_tts_lit.upstream.compat import import_qwen_tts
    from qwen_tts_lit.upstream.tiny import default_tiny_dir, make_tiny

    sys.path.insert(0, str(REPO / "tests"))
    from helpers.espeak_voice import EspeakSpeaker
    from helpers.recordings import recordings_as_utterances

    settings = EvalSettings()
    probe = settings.instruct_probe
    tiny = make_tiny(default_tiny_dir("custom_voice"), "custom_voice")  # built once, then reused from the cache
    tts = import_qwen_tts().Qwen3TTSModel.from_pretrained(str(tiny))
    inject_lora(tts.model, LoraSpec(rank=8, alpha=16, dropout=0.0))
    items = read_heldout(HELDOUT / "heldout.jsonl", settings.num_utterances)
    judges = Judges(settings.judges)
    xvector = torch.randn(tts.model.talker.config.hidden_size, generator=torch.Generator().manual_seed(0))
    synthesizer = Synthesizer(tts, Voice(xvector=xvector), decoding=settings.decoding)
    probes = probes_named(probe.probes)
    sentences = [
        ProbeSentence(item.utt_id, item.text, settings.seed + i) for i, item in enumerate(items[: probe.sentences])
    ]
    measures = ProbeMeasures(judges.asr, judges.vad)

    instructed = synthesizer_speaker(synthesizer, 1.0, settings.batch_size)  # the EvalSuite's own speaker

    with tempfile.TemporaryDirectory() as scratch:
        real = measure_real(items, judges, Path(scratch))
        epoch_s, probe_s = [], []
        for _ in range(repeats + 1):  # the first pass warms the judges up; not counted
            started = time.perf_counter()
            evaluate_epoch(synthesizer, judges, real, Path(scratch), 0, settings.scales, settings.seed,
                           settings.max_new_tokens, {None: xvector}, settings.batch_size)  # fmt: skip
            epoch_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            probe_effects(instructed, sentences, probes, measures)
            probe_s.append(time.perf_counter() - started)
        epoch, probed = statistics.median(epoch_s[1:]), statistics.median(probe_s[1:])
        clips = probe.sentences * (1 + sum(len(p.instructions) for p in probes))
        rows = len(items) * len(settings.scales)
        print(
            f"\nInstruction probe, default settings, tiny CustomVoice + LoRA, instructions spoken (CPU, "
            f"{torch.get_num_threads()} "
            f"threads), median of {repeats}: an epoch's evaluation ({rows} clips) {epoch:.2f} s; the probe "
            f"({clips} clips at one scale) {probed:.2f} s = {probed / epoch:.1%} of it per probed epoch, "
            f"{probed / epoch / probe.every_n_epochs:.1%} per epoch (one epoch in {probe.every_n_epochs} probed)"
        )
        # The same measures on real speech (the tiny model's silence is skipped by the judges).
        speaker = EspeakSpeaker({i.text: i.key for p in probes for i in p.instructions})
        timed = []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            probe_effects(speaker, sentences, probes, measures)
            timed.append(time.perf_counter() - started)
        speaking = []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            speaker([s.text for s in sentences] * (clips // len(sentences)), [None] * clips, [0] * clips)
            speaking.append(time.perf_counter() - started)
        measured = statistics.median(timed[1:]) - statistics.median(speaking[1:])
        recordings = recordings_as_utterances(items)
        utterances = [recordings[i % len(recordings)] for i in range(rows)]
        started = time.perf_counter()
        score_utterances([items[i % len(items)] for i in range(rows)], utterances, judges, real,
                         batch_size=settings.batch_size)  # fmt: skip
        judged = time.perf_counter() - started
        print(f"on real speech (espeak-ng double, espeak's own time taken out): the probe's measures on its {clips} "
              f"clips {measured:.2f} s; the evaluation judges on {rows} real held-out clips {judged:.2f} s "
              f"({measured / judged:.1%})")  # fmt: skip


def demo_overlay(workdir: Path, uncapped: bool, naturalness: bool = False) -> Path:
    """An overlay of demo.yaml's callbacks with SequentialEvaluation (or, ``naturalness``, NaturalnessCost) after
    the EvalSuite (and, uncapped, the EvalSuite's frame cap from each text instead of 40)."""
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    callbacks = demo["trainer"]["callbacks"]
    for callback in callbacks:
        if callback["class_path"].endswith("EvalSuite") and uncapped:
            callback["init_args"]["max_new_tokens"] = None
    callbacks.append({"class_path": f"eval_cost.{'NaturalnessCost' if naturalness else 'SequentialEvaluation'}"})
    overlay = workdir / "eval_cost.yaml"
    overlay.write_text(yaml.safe_dump({"trainer": {"callbacks": callbacks}}))
    return overlay


def train_demo(workdir: Path, epochs: int, uncapped: bool, naturalness: bool = False) -> Path:
    """``fit --config configs/demo.yaml`` plus the overlay, in ``workdir``; its run folder."""
    command = [sys.executable, "-m", "qwen_tts_lit", "fit", "--config", str(REPO / "configs" / "demo.yaml"),
               "--config", str(demo_overlay(workdir, uncapped, naturalness)), "--data.raw",
               str(HELDOUT / "raw" / "train_raw.jsonl"), "--trainer.max_epochs", str(epochs),
               "--trainer.enable_progress_bar", "false"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                      os.environ.get("PYTHONPATH")]))}  # fmt: skip
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)
    if result.returncode:
        sys.exit(f"fit failed:\n{result.stderr[-3000:]}")
    return max((workdir / "runs" / "demo").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))


def epoch_costs(run_dir: Path) -> list[dict[str, float]]:
    """Per evaluated epoch: training seconds, evaluation seconds (and the sequential re-creation's, if logged)."""
    epochs = []
    for record in csv.DictReader((run_dir / METRICS_FILE).open()):
        if record.get("time/eval_seconds"):
            sequential = record.get(SEQUENTIAL_METRIC)
            epochs.append({"epoch": int(record["epoch"]), "train_s": float(record["time/train_epoch_seconds"]),
                           "eval_s": float(record["time/eval_seconds"]),
                           "before_s": float(sequential) if sequential else None})  # fmt: skip
    rows = [r for r in read_rows(run_dir) if not r.get("baseline")]  # the cells: a baseline's scale 0 is none of them
    first = next(iter(rows), {})
    print(
        f"\nEvaluation vs training per epoch in {run_dir}: {len({r['lora_scale'] for r in rows})} scales x "
        f"{len({r['utt_id'] for r in rows})} sentences, frame cap {first.get('max_new_tokens')}"
    )
    print(f"{'epoch':>5} {'train s':>8} {'before s':>9} {'after s':>8} {'before/train':>13} {'after/train':>12} "
          f"{'speed-up':>9}")  # fmt: skip
    for e in epochs:
        before = e["before_s"]
        print(f"{e['epoch']:>5} {e['train_s']:8.2f} {before or float('nan'):9.2f} {e['eval_s']:8.2f} "
              f"{(before or float('nan')) / e['train_s']:13.1f} {e['eval_s'] / e['train_s']:12.2f} "
              f"{(before or float('nan')) / e['eval_s']:8.2f}x")  # fmt: skip
    later = [e for e in epochs if e["epoch"] > 0] or epochs  # the first epoch also loads the judges
    after = statistics.median(e["eval_s"] / e["train_s"] for e in later)
    line = f"median over epochs after the first: eval/train after {after:.2f}"
    if all(e["before_s"] for e in later):
        before = statistics.median(e["before_s"] / e["train_s"] for e in later)
        speedup = statistics.median(e["before_s"] / e["eval_s"] for e in later)
        line += f", before {before:.2f}; evaluation {speedup:.2f}x faster"
    print(line)
    return epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asr-model", default=None, help="faster-whisper model name or dir (default: bundled tiny.en)")
    parser.add_argument("--device", default="cpu", help="device for the ASR and speaker judges: cpu or cuda")
    parser.add_argument("--compute-type", default="int8", help="CTranslate2 precision for the ASR")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the held-out clips")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the demo fit")
    parser.add_argument("--uncapped", action="store_true", help="frame cap from each text, not demo.yaml's 40")
    parser.add_argument("--run", type=Path, help="run folder to read epoch costs from (default: train the demo)")
    parser.add_argument("--skip-judges", action="store_true", help="only the fit")
    parser.add_argument("--naturalness", action="store_true", help="what the DNSMOS judge adds (section 3)")
    parser.add_argument("--instruct-probe", action="store_true", help="the instruction probe's cost (section 4)")
    args = parser.parse_args()
    if args.instruct_probe:
        instruct_probe_costs(args.repeats)
        return
    if args.naturalness:
        if not args.skip_judges:
            dnsmos_clip_costs(Judges(JudgeSettings(asr=False)), args.repeats)
        with tempfile.TemporaryDirectory() as workdir:
            naturalness_costs(args.run or train_demo(Path(workdir), args.epochs, args.uncapped, naturalness=True))
        return
    if not args.skip_judges:
        settings = JudgeSettings(
            asr_model=args.asr_model,
            asr_device=args.device,
            asr_compute_type=args.compute_type,
            asr_beam_size=args.beam_size,
        )
        judge_costs(Judges(settings), args.repeats)
    if args.run is not None:
        epoch_costs(args.run)
        return
    with tempfile.TemporaryDirectory() as workdir:
        epoch_costs(train_demo(Path(workdir), args.epochs, args.uncapped))


if __name__ == "__main__":
    main()
