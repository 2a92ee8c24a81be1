"""Does the speech-rate judge read known paces? The old VAD ratio and the new articulation ratio, from one run.

    python benchmarks/speech_rate.py                  # 8 held-out sentences, 4 two-sentence clips; ~45 CPU-s
    python benchmarks/speech_rate.py --pause 0.1 0.15 0.2 0.25   # the same readings at other pause thresholds

Two kinds of known pace, both against the same sentences as the reference:
- espeak-ng speaking each sentence at -s 100, 130, 190, 220 words/min, compared with -s 160, and -s 120 with
  -s 240 (the case issue 20 reported). espeak's voiced time (10 ms frames with a sample above -60 dBFS) times its
  speed is constant within 3 % over 100-220, while its sentence pauses grow faster than 1 / s (780 ms at -s 100,
  220 ms at -s 220), so total length is no truth for pace; the truth used is the voiced-seconds ratio (the speed
  ratio is printed beside it).
- sox ``tempo`` 0.8, 0.9, 1.1, 1.25 of each held-out recording (espeak-ng -s 175): tempo changes pace by exactly
  that factor without changing pitch, so the truth is 1 / tempo; and the recording with 1 s of silence before and
  after it (truth 1: silence is no pace).
Each set is read on the held-out sentences one by one and on pairs of them in one clip (a sentence pause inside).

Each ratio is seconds per unit of the changed clip over the reference's (> 1 slower), as rows' ``rate_ratio``:
``vad`` = silero-vad speech seconds over the reference's (the judge before issue 20, kept as ``rate_ratio_vad``);
``words`` = :func:`pace_ratio` of :func:`articulated_seconds` (the ASR judge's words, bundled tiny.en, one
batched transcription per clip, within the VAD's speech) and the text's units.
Prints each case's mean over the clips, its error against the truth, and the per-clip range. Needs
espeak-ng and sox (apt); asserts nothing (tests/metrics/test_speech_rate.py holds the known-answer test).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
HELDOUT = REPO / "data" / "demo" / "heldout.jsonl"
SPEEDS = (100, 130, 160, 190, 220)
REFERENCE_SPEED = 160
COMPARED = [(speed, REFERENCE_SPEED) for speed in SPEEDS if speed != REFERENCE_SPEED] + [(120, 240)]  # issue 20's
TEMPOS = (0.8, 0.9, 1.1, 1.25)


def espeak(text: str, speed: int, path: Path) -> Path:
    """``text`` spoken by espeak-ng en-us at ``speed`` words per minute (the demo corpus's voice otherwise)."""
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(speed), "-p", "50", "-w", str(path), text], check=True)
    return path


def tempo(source: Path, factor: float, path: Path) -> Path:
    """``source`` at ``factor`` times its pace, pitch kept (sox's WSOLA ``tempo``)."""
    subprocess.run(["sox", str(source), str(path), "tempo", str(factor)], check=True)
    return path


def silence_around(source: Path, path: Path) -> Path:
    """``source`` with 1 s of digital silence before and after (prepare appends silence; a model may lead with it)."""
    subprocess.run(["sox", str(source), str(path), "pad", "1", "1"], check=True)
    return path


def voiced_seconds(wav: np.ndarray, sr: int) -> float:
    """Seconds of 10 ms frames with a sample above -60 dBFS: espeak-ng writes digital silence between sounds."""
    frame = sr // 100
    frames = np.abs(wav[: len(wav) // frame * frame]).reshape(-1, frame).max(axis=1)
    return float((frames > 1e-3).sum()) / 100


def read(path: Path) -> tuple[np.ndarray, int]:
    wav, sr = sf.read(str(path), dtype="float32")
    return wav, sr


def measure(clips: list[tuple[np.ndarray, int]], texts: list[str], judges) -> list[dict]:
    """What the judges read on each clip (clips of one sample rate, saying ``texts``): VAD speech seconds, the
    text's units and the ASR's words (one batched transcription per clip, as scoring does)."""
    from qwen_tts_lit.languages import count_words

    sr = clips[0][1]
    wavs = [wav for wav, _ in clips]
    segments = judges.vad.segments_batch(wavs, sr)
    transcripts = judges.asr.transcripts_batch(wavs, sr, "en")
    return [{"vad": sum(end - start for start, end in own), "segments": own, "units": count_words(text, "en"),
             "words": t.words} for own, t, text in zip(segments, transcripts, texts, strict=True)]  # fmt: skip


def ratios(changed: list[dict], reference: list[dict], pause_s: float) -> dict[str, list[float]]:
    """Each clip's VAD ratio and pace ratio against its reference clip."""
    from qwen_tts_lit.metrics import articulated_seconds, pace_ratio, rate_ratio

    def pace(clip: dict) -> tuple[int, float]:
        return clip["units"], articulated_seconds(clip["words"], clip["segments"], pause_s)

    pairs = list(zip(changed, reference, strict=True))
    return {"vad": [rate_ratio(c["vad"], r["vad"]) for c, r in pairs],
            "words": [pace_ratio(pace(c), pace(r)) for c, r in pairs]}  # fmt: skip


def line(case: str, truth: float, found: dict[str, list[float]]) -> str:
    cells = []
    for name in ("vad", "words"):
        values = found[name]
        mean = float(np.mean(values))
        cells.append(f"{mean:.3f} ({mean / truth - 1:+.1%}) [{min(values):.3f}-{max(values):.3f}]")
    return f"| {case} | {truth:.3f} | " + " | ".join(cells) + " |"


def cases(name: str, texts: list[str], recordings: list[Path] | None, judges, folder: Path) -> list[tuple]:
    """(case, truth, changed clips' readings, reference clips' readings) of one set of texts, espeak speeds then
    sox tempos (``recordings``: the texts' real recordings; None: espeak-ng -s 175 of each, the demo corpus's
    speed). An espeak case's truth is its voiced seconds over the reference speed's (its speed ratio is printed)."""
    speeds = sorted({speed for pair in COMPARED for speed in pair})
    spoken = {speed: [read(espeak(text, speed, folder / f"{name}{i}_{speed}.wav")) for i, text in enumerate(texts)]
              for speed in speeds}  # fmt: skip
    voiced = {speed: sum(voiced_seconds(*clip) for clip in clips) for speed, clips in spoken.items()}
    read_at = {speed: measure(clips, texts, judges) for speed, clips in spoken.items()}
    found = [(f"{name}: espeak -s {speed} vs {base} (speeds {base / speed:.3f})", voiced[speed] / voiced[base],
              read_at[speed], read_at[base]) for speed, base in COMPARED]  # fmt: skip
    recordings = recordings or [espeak(text, 175, folder / f"{name}{i}_175.wav") for i, text in enumerate(texts)]
    reference = measure([read(path) for path in recordings], texts, judges)
    for factor in TEMPOS:
        changed = [read(tempo(path, factor, folder / f"{name}{i}_t{factor}.wav")) for i, path in enumerate(recordings)]
        found.append((f"{name}: sox tempo {factor}", 1 / factor, measure(changed, texts, judges), reference))
    padded = [read(silence_around(path, folder / f"{name}{i}_padded.wav")) for i, path in enumerate(recordings)]
    found.append((f"{name}: 1 s of silence before and after", 1.0, measure(padded, texts, judges), reference))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=8, help="held-out sentences used (the first N)")
    parser.add_argument("--pause", type=float, nargs="*", help="pause thresholds in seconds (default: PAUSE_S)")
    args = parser.parse_args()

    from qwen_tts_lit.evaluation.judges import Judges
    from qwen_tts_lit.metrics import PAUSE_S

    rows = [json.loads(line) for line in HELDOUT.read_text().splitlines() if line.strip()][: args.sentences]
    texts = [row["text"] for row in rows]
    pairs = [f"{first} {second}" for first, second in zip(texts[::2], texts[1::2], strict=False)]
    judges = Judges()
    with tempfile.TemporaryDirectory() as tmp:
        found = cases("sentence", texts, [REPO / "data" / "demo" / row["audio"] for row in rows], judges, Path(tmp))
        found += cases("two sentences", pairs, None, judges, Path(tmp))
    for pause_s in args.pause or [PAUSE_S]:
        print(f"\n{len(texts)} sentences, {len(pairs)} two-sentence clips; pause threshold {pause_s} s; mean ratio")
        print("(seconds per unit over the reference's, > 1 slower), its error against the truth, [per-clip range]\n")
        print("| case | truth | VAD ratio (old) | words ratio (new) |")
        print("|---|---|---|---|")
        for case, truth, changed, reference in found:
            print(line(case, truth, ratios(changed, reference, pause_s)))


if __name__ == "__main__":
    main()
