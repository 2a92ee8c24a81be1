"""benchmarks/eval_cost.py's default path (python benchmarks/eval_cost.py): the evaluation re-created as it was
before batching gives the rows the batched evaluation gives, field for field, on real speech through every judge;
and in a real fit its callback times that path beside the EvalSuite and the epoch table reports it. The benchmark
asserts nothing itself, so without these its default path can break unseen (it once called ``metric_fields`` with
an old signature for a whole round)."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import soundfile as sf
import torch

from qwen_tts_lit.evaluation.heldout import measure_real, read_heldout
from qwen_tts_lit.evaluation.judges import Judges
from qwen_tts_lit.evaluation.scoring import evaluate_epoch
from qwen_tts_lit.evaluation.settings import EvalSettings, JudgeSettings
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
HELDOUT = REPO / "data" / "demo" / "heldout.jsonl"
# Fields measured from word time stamps: faster-whisper's batched pipeline and its sequential transcribe align words
# separately, so their stamps may differ by a few ms (the text itself may not).
WORD_TIMED = {"rate_ratio", "units_per_second", "articulated_seconds"}


class RealSpeech(Synthesizer):
    """The real synthesizer (same arguments, same generate call) whose clips are then swapped for the held-out
    sentences' real recordings: the tiny model speaks near-silence, which most judges score without running, so
    real speech is what makes the two paths' ASR, speaker, VAD and DNSMOS figures worth comparing."""

    recordings: dict[str, object] = {}

    def synthesize(self, texts, **options):
        spoken = super().synthesize(texts, **options)
        return [replace(utterance, wav=self.recordings[text]) for text, utterance in zip(texts, spoken, strict=True)]


def test_the_sequential_path_gives_the_batched_rows(tiny_model, tmp_path: Path):
    import eval_cost

    judges = Judges(JudgeSettings())  # DNSMOS on: the re-created rows carry naturalness too
    items = read_heldout(HELDOUT, limit=2)
    real = measure_real(items, judges)
    xvector = torch.randn(64, generator=torch.Generator().manual_seed(0))
    RealSpeech.recordings = {item.text: sf.read(str(item.audio), dtype="float32")[0] for item in items}
    settings = EvalSettings(scales=(1.0,), num_utterances=2, seed=7, max_new_tokens=3)
    batched = evaluate_epoch(RealSpeech(tiny_model, Voice(xvector=xvector)), judges, real, tmp_path / "batched", 0,
                             settings.scales, settings.seed, settings.max_new_tokens, {None: xvector})  # fmt: skip
    sequential = eval_cost.sequential_epoch(RealSpeech(tiny_model, Voice(xvector=xvector)), judges, real,
                                            tmp_path / "sequential", 0, settings, xvector)  # fmt: skip
    assert [list(row) for row in sequential] == [list(row) for row in batched]
    assert [row["hypothesis"] for row in batched] == [row["hypothesis"] for row in sequential]
    heard = [(row["wer"], row["dnsmos_ovrl"], row["rate_judge"]) for row in batched]
    # real speech: heard, timed by its words and scored by DNSMOS (silence scores 1.0 without a model run)
    assert all(wer <= 0.2 and ovrl > 1.5 and judge == "asr+vad" for wer, ovrl, judge in heard), heard
    for before, after in zip(sequential, batched, strict=True):
        for name, value in after.items():
            if name == "seconds":  # wall time
                continue
            if isinstance(value, float) and not isinstance(before[name], bool):
                tolerance = 0.05 if name in WORD_TIMED else 1e-4
                assert math.isclose(before[name], value, rel_tol=tolerance, abs_tol=1e-6), (name, before[name], value)
            else:
                assert before[name] == value, (name, before[name], value)
