"""What ``segment`` costs and how well it cuts, on CPU: real-time factors of each phase, peak memory against the
length of the input, and boundary accuracy and WER against the known truth.

    python benchmarks/segment.py                         # quality + phases on the synthetic recordings; memory at
                                                         # 1, 10 and 60 min (flac); ~5 min on 2 cores
    python benchmarks/segment.py --minutes 1 60 --format mp3   # the memory sweep on mp3 instead
    python benchmarks/segment.py --full-minutes 10       # the whole pipeline (transcription included) on 10 min too
    python benchmarks/segment.py --asr large-v3 --asr-device cuda --asr-compute-type float16   # a real ASR

1. Quality: the synthetic long recordings the tests assert on (tests/helpers/long_recordings.py: two espeak-ng voices,
   pauses, music and noise, a 30 s passage without a pause; 1.4 min), segmented in a child process with the
   defaults: clips per status, sentences inside exactly one clip, corpus WER of the transcripts, the seconds spent
   scanning (decode + 16 kHz + VAD), cutting (decode + 24 kHz + writing clips) and transcribing (ASR + speaker
   embedding) as real-time factors (compute s / audio s), and the process's peak RSS.
2. Memory: for each length, those recordings are tiled into one file of that length (44.1 kHz stereo), and a fresh
   process scans it, plans the cuts and cuts every clip (everything whose memory could grow with the input; the
   judges then work one clip at a time, at most --max-seconds long). The resident set is sampled every 20 ms: its
   peak while working is printed beside the RSS after imports and model loads; the growth is the difference.

Prints figures; asserts nothing (tests never time).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the synthetic recordings and their scoring are the tests' own


def peak_rss_mb() -> float:
    """The process's high-water mark so far (ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """The largest resident set seen every 20 ms while it runs: unlike ru_maxrss, not hidden by the import peak."""

    def __init__(self) -> None:
        import psutil

        self.process, self.peak, self.running = psutil.Process(), 0.0, True
        self.baseline = self.process.memory_info().rss / 2**20
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss / 2**20)
            time.sleep(0.02)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        return max(self.peak, self.process.memory_info().rss / 2**20)


class Phases:
    """Seconds spent inside the pipeline's phase functions (wrapped in place, in the child process only)."""

    def __init__(self) -> None:
        self.seconds = {"scan": 0.0, "cut": 0.0, "transcribe": 0.0}
        self.cpu = dict(self.seconds)  # CPU seconds of every thread: what a busy shared machine does not inflate

    def add(self, phase: str, wall: float, cpu: float) -> None:
        self.seconds[phase] += time.perf_counter() - wall
        self.cpu[phase] += time.process_time() - cpu

    def timed(self, phase: str, function):
        def wrapper(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(phase, wall, cpu)

        return wrapper

    def timed_generator(self, phase: str, function):
        def wrapper(*args, **kwargs):
            iterator = function(*args, **kwargs)
            while True:
                wall, cpu = time.perf_counter(), time.process_time()
                try:
                    item = next(iterator)
                except StopIteration:
                    self.add(phase, wall, cpu)
                    return
                self.add(phase, wall, cpu)
                yield item

        return wrapper


def child_full(input_path: str, output: str, extra: list[str]) -> dict:
    """The whole pipeline, phases timed."""
    from qwen_tts_lit.data.segment import pipeline
    from qwen_tts_lit.data.segment.request import SegmentRequest

    phases = Phases()
    pipeline.scan = phases.timed("scan", pipeline.scan)
    pipeline.cut_clips = phases.timed_generator("cut", pipeline.cut_clips)
    pipeline.measure_clip = phases.timed("transcribe", pipeline.measure_clip)
    pipeline.measure_cut = phases.timed("transcribe", pipeline.measure_cut)
    options = dict(zip(extra[::2], extra[1::2], strict=True))
    request = SegmentRequest(input=(Path(input_path),), output=Path(output), progress=False, **options)
    start = time.perf_counter()
    summary = pipeline.segment(request)
    return {"wall": time.perf_counter() - start, "phases": phases.seconds, "cpu": phases.cpu,
            "peak_rss_mb": peak_rss_mb(), "seconds_in": summary["minutes_in"] * 60}  # fmt: skip


def child_stream(input_path: str) -> dict:
    """Scan, plan and cut one file (clips encoded to WAV bytes and dropped): what grows with the input, if anything."""
    from qwen_tts_lit.data.segment.clips import clip_wav, cut_clips
    from qwen_tts_lit.data.segment.cuts import CutSettings, plan_cuts
    from qwen_tts_lit.data.segment.decode import probe
    from qwen_tts_lit.data.segment.request import SegmentRequest
    from qwen_tts_lit.data.segment.scan import scan
    from qwen_tts_lit.metrics import SpeechDetector

    r = SegmentRequest(input=(Path(input_path),), output=Path("unused"))
    info, stream = probe(Path(input_path)), SpeechDetector(threshold=r.vad_threshold).stream()
    sampler = RssSampler()
    start = time.perf_counter()
    tracks = scan(info, stream)
    scanned = time.perf_counter()
    settings = CutSettings(r.min_seconds, r.max_seconds, r.margin_seconds, r.min_pause_seconds,
                           r.max_inner_pause_seconds, r.vad_threshold)  # fmt: skip
    cuts = plan_cuts(tracks.speech_prob, tracks.level_db, tracks.seconds, settings)
    planned = time.perf_counter()
    written = sum(len(clip_wav(audio)) for _, audio in cut_clips(info, cuts))
    done = time.perf_counter()
    peak = sampler.stop()
    return {"seconds_in": tracks.seconds, "clips": len(cuts), "clip_bytes": written, "scan": scanned - start,
            "plan": planned - scanned, "cut": done - planned, "baseline_rss_mb": sampler.baseline,
            "peak_rss_mb": peak}  # fmt: skip


def run_child(*args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def tile(folder: Path, minutes: float, fmt: str) -> Path:
    """The synthetic recordings repeated (at 44.1 kHz stereo) into one file of ``minutes``, written in blocks."""
    import numpy as np
    import soundfile as sf
    from helpers.long_recordings import interview, memo

    rate = 44100
    unit = np.concatenate([interview(rate).audio(), memo(rate).audio()])
    unit = np.stack([unit, unit * 0.8], axis=1)
    path = folder / f"tiled_{minutes:g}min.{fmt}"
    total = int(minutes * 60 * rate)
    with sf.SoundFile(str(path), "w", rate, 2, format=fmt.upper()) as out:
        written = 0
        while written < total:
            piece = unit[: total - written]
            out.write(piece)
            written += len(piece)
    return path


def quality(folder: Path, asr_args: list[str]) -> None:
    from helpers.long_recordings import build_long_recordings, evaluate

    truth = build_long_recordings(folder / "recordings")
    output = folder / "segmented"
    facts = run_child("full", str(folder / "recordings"), str(output), *asr_args)
    records = [json.loads(line) for line in (output / "clips.jsonl").read_text().splitlines()]
    found = evaluate(truth, records)
    summary = json.loads((output / "summary.json").read_text())
    seconds = facts["seconds_in"]
    print(f"synthetic recordings: {seconds / 60:.2f} min in, {len(records)} clips")
    for status, s in summary["statuses"].items():
        print(f"  {status:<6} {s['clips']:>3} clips  {s['reasons']}")
    print(f"boundaries: {found['whole_sentences']}/{found['total_sentences']} sentences inside exactly one clip; "
          f"passage cut into {len(found['passage']['overlapping'])} clips, words spanning a cut: "
          f"{sum(bool(r['word_across_end']) for r in records)}")  # fmt: skip
    print(f"WER (corpus): clean main-voice sentences {found['wer_clean']:.3f}, all sentences "
          f"{found['wer_all_sentences']:.3f}, the 30 s passage {found['wer_passage']:.3f}")  # fmt: skip
    phases, cpu = facts["phases"], facts["cpu"]
    print(f"CPU seconds per audio second: scan {cpu['scan'] / seconds:.4f}, cut {cpu['cut'] / seconds:.4f}, "
          f"transcribe {cpu['transcribe'] / seconds:.3f}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"RTF (wall): scan {phases['scan'] / seconds:.4f}, cut {phases['cut'] / seconds:.4f}, transcribe "
          f"{phases['transcribe'] / seconds:.3f}; whole run {facts['wall']:.1f} s for {seconds:.0f} s "
          f"(RTF {facts['wall'] / seconds:.3f}, model loads included); "
          f"peak RSS {facts['peak_rss_mb']:.0f} MB")  # fmt: skip


def overlap() -> None:
    """How far a second voice talking over the main one lowers the speaker similarity (what other_speaker sees)."""
    from helpers.long_recordings import MAIN_VOICE, OTHER_VOICE, SENTENCES, espeak

    from qwen_tts_lit.metrics import SpeakerSimilarity, cosine_similarity, mean_embedding

    judge, rate = SpeakerSimilarity(), 24000
    reference = mean_embedding([judge.embed(espeak(SENTENCES[k], MAIN_VOICE, rate), rate) for k in ("a1", "a2", "a3")])
    alone = [cosine_similarity(judge.embed(espeak(SENTENCES[k], OTHER_VOICE, rate), rate), reference)
             for k in ("b1", "b2")]  # fmt: skip
    print(
        f"speaker similarity to the main voice: the second voice alone {min(alone):.2f}-{max(alone):.2f}; "
        "main voice with the second one talking over it at"
    )
    for gain_db in (0, -6, -12):
        values = []
        for main_key, other_key in (("a4", "b1"), ("a5", "b2"), ("a6", "b1")):
            main, other = espeak(SENTENCES[main_key], MAIN_VOICE, rate), espeak(SENTENCES[other_key], OTHER_VOICE, rate)
            n = min(len(main), len(other))
            values.append(cosine_similarity(judge.embed(main[:n] + 10 ** (gain_db / 20) * other[:n], rate), reference))
        print(f"  {gain_db:+d} dB: {min(values):.2f}-{max(values):.2f}")


def memory(folder: Path, minutes: list[float], fmt: str, full_minutes: list[float], asr_args: list[str]) -> None:
    print(f"memory against length ({fmt}, 44.1 kHz stereo; scan + plan + cut in a fresh process):")
    print("  minutes   clips  scan RTF  cut RTF  RSS after load  peak RSS  growth")
    for length in minutes:
        path = tile(folder, length, fmt)
        facts = run_child("stream", str(path))
        seconds = facts["seconds_in"]
        print(f"  {length:>7g} {facts['clips']:>7} {facts['scan'] / seconds:>9.4f} {facts['cut'] / seconds:>8.4f} "
              f"{facts['baseline_rss_mb']:>11.0f} MB {facts['peak_rss_mb']:>6.0f} MB "
              f"{facts['peak_rss_mb'] - facts['baseline_rss_mb']:>+5.0f} MB")  # fmt: skip
        path.unlink()
    for length in full_minutes:
        path = tile(folder, length, fmt)
        facts = run_child("full", str(path), str(folder / f"full_{length:g}"), *asr_args)
        seconds, phases = facts["seconds_in"], facts["phases"]
        cpu = facts["cpu"]
        print(f"  whole pipeline on {length:g} min: CPU s per audio s: transcribe {cpu['transcribe'] / seconds:.3f}; "
              f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        print(f"  whole pipeline on {length:g} min: RTF scan {phases['scan'] / seconds:.4f}, cut "
              f"{phases['cut'] / seconds:.4f}, transcribe {phases['transcribe'] / seconds:.3f}; peak RSS "
              f"{facts['peak_rss_mb']:.0f} MB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="*", default=[1, 10, 60], help="lengths of the memory sweep")
    parser.add_argument("--format", choices=["flac", "mp3", "wav"], default="flac")
    parser.add_argument(
        "--full-minutes", type=float, nargs="*", default=[], help="whole-pipeline runs of these lengths"
    )
    parser.add_argument("--asr", default=None, help="faster-whisper model (default: bundled tiny.en)")
    parser.add_argument("--asr-device", default="cpu")
    parser.add_argument("--asr-compute-type", default="int8")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *rest = args.child
        with contextlib.redirect_stdout(sys.stderr):  # only the JSON line on stdout
            facts = child_full(rest[0], rest[1], rest[2:]) if mode == "full" else child_stream(rest[0])
        print(json.dumps(facts))
        return
    asr_args = ["asr_device", args.asr_device, "asr_compute_type", args.asr_compute_type]
    asr_args += ["asr", args.asr] if args.asr else []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        quality(folder, asr_args)
        overlap()
        if args.minutes or args.full_minutes:
            memory(folder, args.minutes, args.format, args.full_minutes, asr_args)


if __name__ == "__main__":
    main()
