"""What evaluation costs: per-utterance milliseconds of each metric on the 8 held-out clips (data/demo/heldout), and
seconds of EvalSuite per epoch against seconds of training per epoch in a run.

    python benchmarks/eval_cost.py                        # bundled tiny.en on CPU (offline); trains the demo first
    python benchmarks/eval_cost.py --run runs/demo/version_0   # epoch costs of an existing run (no training)
    python benchmarks/eval_cost.py --asr-model large-v3 --device cuda --compute-type float16   # a real run's judge

Each judge model is loaded once (load time printed apart) and warmed up on one clip before timing, as the EvalSuite
callback keeps its judges for the whole run. Prints figures; asserts nothing (tests never time).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from qwen_tts_lit.metrics import ASR, SpeakerSimilarity, SpeechDetector, mean_embedding, word_error_rate
from qwen_tts_lit.runs.records import read_rows

REPO = Path(__file__).resolve().parents[1]
HELDOUT = REPO / "data" / "demo"


def heldout_clips() -> list[tuple[str, np.ndarray, int]]:
    """(text, float32 audio, rate) of each shipped held-out recording."""
    rows = [json.loads(line) for line in (HELDOUT / "heldout.jsonl").read_text().splitlines() if line.strip()]
    clips = []
    for row in rows:
        wav, sr = sf.read(str(HELDOUT / row["audio"]), dtype="float32")
        clips.append((row["text"], wav, sr))
    return clips


def per_clip_ms(fn: Callable[[str, np.ndarray, int], object], clips: list, repeats: int) -> float:
    """Mean milliseconds of ``fn(text, wav, sr)`` per clip, after one untimed warm-up call."""
    fn(*clips[0])
    start = time.perf_counter()
    for _ in range(repeats):
        for clip in clips:
            fn(*clip)
    return 1000 * (time.perf_counter() - start) / (repeats * len(clips))


def metric_costs(
    clips: list[tuple[str, np.ndarray, int]] | None = None,
    asr: ASR | None = None,
    speaker: SpeakerSimilarity | None = None,
    vad: SpeechDetector | None = None,
    repeats: int = 3,
) -> dict[str, float]:
    """Per-utterance ms of each metric and each judge's one-off load ms; prints a table and returns the figures."""
    clips = clips or heldout_clips()
    asr, speaker, vad = asr or ASR(), speaker or SpeakerSimilarity(), vad or SpeechDetector()
    costs: dict[str, float] = {}
    for name, judge, attr in (("asr", asr, "model"), ("spk_sim", speaker, "encoder"), ("vad", vad, "model")):
        start = time.perf_counter()
        getattr(judge, attr)
        costs[f"{name}_load_ms"] = 1000 * (time.perf_counter() - start)

    reference = mean_embedding([speaker.embed(wav, sr) for _, wav, sr in clips[:4]])
    costs["asr_ms"] = per_clip_ms(lambda text, wav, sr: asr.transcribe(wav, sr), clips, repeats)
    hyps = {text: asr.transcribe(wav, sr) for text, wav, sr in clips}
    costs["wer_scoring_ms"] = per_clip_ms(lambda text, wav, sr: word_error_rate(text, hyps[text]), clips, repeats)
    costs["spk_sim_ms"] = per_clip_ms(lambda text, wav, sr: speaker.similarity(wav, sr, reference), clips, repeats)
    costs["vad_ms"] = per_clip_ms(lambda text, wav, sr: vad.speech_seconds(wav, sr), clips, repeats)
    costs["total_ms"] = costs["asr_ms"] + costs["wer_scoring_ms"] + costs["spk_sim_ms"] + costs["vad_ms"]
    costs["clip_ms"] = 1000 * float(np.mean([len(wav) / sr for _, wav, sr in clips]))

    print(f"{len(clips)} held-out clips, mean {costs['clip_ms']:.0f} ms of audio, {repeats} repeats")
    print(f"ASR: {asr.model_path} ({asr.device}, {asr.compute_type}, beam {asr.beam_size})")
    print(f"{'metric':<12} {'ms/utt':>8} {'x real time':>12} {'load ms':>9}")
    for name, load in (("asr", "asr"), ("wer_scoring", None), ("spk_sim", "spk_sim"), ("vad", "vad"), ("total", None)):
        ms = costs[f"{name}_ms"]
        load_ms = f"{costs[f'{load}_load_ms']:9.0f}" if load else f"{'':9}"
        print(f"{name:<12} {ms:8.2f} {ms / costs['clip_ms']:12.3f} {load_ms}")
    return costs


def train_demo(workdir: Path) -> Path:
    """Run ``fit --config configs/demo.yaml`` in ``workdir``; its run folder."""
    config, raw = REPO / "configs" / "demo.yaml", HELDOUT / "raw" / "train_raw.jsonl"
    command = [sys.executable, "-m", "qwen_tts_lit", "fit", "--config", str(config), "--data.raw", str(raw),
               "--trainer.enable_progress_bar", "false"]  # fmt: skip
    subprocess.run(command, cwd=workdir, check=True, capture_output=True, env=os.environ)
    return max((workdir / "runs" / "demo").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))


def epoch_costs(run_dir: Path) -> list[dict[str, float]]:
    """Per evaluated epoch: training seconds, EvalSuite seconds, their ratio, and synthesis seconds per utterance."""
    metrics = list(csv.DictReader((run_dir / "metrics.csv").open()))
    rows = read_rows(run_dir)
    epochs = []
    for record in metrics:
        if not record.get("time/eval_seconds"):
            continue
        epoch = int(record["epoch"])
        synth = [r["seconds"] for r in rows if r["epoch"] == epoch]
        train_s, eval_s = float(record["time/train_epoch_seconds"]), float(record["time/eval_seconds"])
        synth_s = float(np.mean(synth)) if synth else 0.0
        epochs.append({"epoch": epoch, "train_s": train_s, "eval_s": eval_s, "share": eval_s / (train_s + eval_s),
                       "utterances": len(synth), "synth_s_per_utt": synth_s})  # fmt: skip
    print(f"\nEvalSuite vs training per epoch in {run_dir}")
    print(f"{'epoch':>5} {'train s':>8} {'eval s':>7} {'eval share':>10} {'utts':>5} {'synth s/utt':>11}")
    for e in epochs:
        print(f"{e['epoch']:>5} {e['train_s']:8.1f} {e['eval_s']:7.1f} {e['share']:10.0%} {e['utterances']:>5} "
              f"{e['synth_s_per_utt']:11.2f}")  # fmt: skip
    return epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asr-model", default=None, help="faster-whisper model name or dir (default: bundled tiny.en)")
    parser.add_argument("--device", default="cpu", help="device for all judges: cpu or cuda")
    parser.add_argument("--compute-type", default="int8", help="CTranslate2 precision for the ASR")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the clips")
    parser.add_argument("--run", type=Path, help="run folder to read epoch costs from (default: train the demo)")
    args = parser.parse_args()
    asr = ASR(args.asr_model, device=args.device, compute_type=args.compute_type, beam_size=args.beam_size)
    metric_costs(asr=asr, speaker=SpeakerSimilarity(args.device), repeats=args.repeats)
    if args.run is not None:
        epoch_costs(args.run)
        return
    with tempfile.TemporaryDirectory() as workdir:
        epoch_costs(train_demo(Path(workdir)))


if __name__ == "__main__":
    main()
