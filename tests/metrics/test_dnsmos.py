"""The DNSMOS naturalness judge on real speech, with the real models (speechmos's ONNX files), no mocks: its batched
scores are speechmos's own per clip, and degraded espeak-ng speech scores below the clean speech it came from."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from qwen_tts_lit.metrics.dnsmos import DNSMOS, DNSMOS_RATE, SCALE_FLOOR, WINDOW_SAMPLES, NaturalnessJudge, windows
from qwen_tts_lit.metrics.selection import DNSMOS_FIELDS

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt)")

# At 200 words per minute each is 4.6-4.9 s long: doubled once, one 9.01 s window (the cheapest clip to score).
SENTENCES = (
    "The morning train was late again because of the heavy snow, so we waited in the cold station for an hour.",
    "She left her blue umbrella on the bus near the old station, and nobody found it until the next morning.",
    "We planted three apple trees behind the barn last spring, and this year they gave us their very first fruit.",
)
VOICE = ("-v", "en-us", "-s", "200")


@pytest.fixture(scope="module")
def judge() -> DNSMOS:
    return DNSMOS()


@pytest.fixture(scope="module")
def clean() -> list[np.ndarray]:
    from helpers.long_recordings import espeak

    return [espeak(text, VOICE, DNSMOS_RATE) for text in SENTENCES]


def with_noise(speech: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """White noise added at ``snr_db`` (speech power over noise power, over the whole clip)."""
    noise = np.random.default_rng(seed).normal(size=speech.shape)
    noise *= np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (speech + noise).astype(np.float32)


def clipped(speech: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Hard clipping: the waveform cut at ``fraction`` of its peak (26 dB of overdrive), back to the same peak."""
    limit = float(np.abs(speech).max()) * fraction
    return (np.clip(speech, -limit, limit) / fraction).astype(np.float32)


def test_batched_scores_are_speechmos_scores_of_each_clip(judge: DNSMOS, clean: list[np.ndarray]):
    """The oracle is speechmos.dnsmos.run (Microsoft's per-clip loop) on each clip: one clip of one window and one
    of three (3 s, doubled twice), scored together."""
    from speechmos import dnsmos

    clips = [clean[0], clean[1][: 3 * DNSMOS_RATE]]
    assert [len(windows(clip)) for clip in clips] == [1, 3]
    together = judge.score_batch(clips, DNSMOS_RATE)
    for clip, mine in zip(clips, together, strict=True):
        reference = dnsmos.run(clip, DNSMOS_RATE)
        expected = [reference[key] for key in ("sig_mos", "bak_mos", "ovrl_mos", "p808_mos")]
        assert [mine[name] for name in DNSMOS_FIELDS] == pytest.approx(expected, abs=1e-4)
        assert 1.0 < mine["dnsmos_ovrl"] < 5.0


def test_windows_are_cut_as_the_reference_cuts_them():
    """Doubled to one window; one window per second after it; and the reference's float ends leave the windows
    starting at 7..23 s one sample short, which it (and so this) skips: a 30 s clip is scored on its first 16 s."""
    seconds = lambda s: np.arange(int(s * DNSMOS_RATE), dtype=np.float32)  # noqa: E731
    assert [len(windows(seconds(s))) for s in (2.0, 4.6, 10.0, 11.0, 16.5, 30.0)] == [7, 1, 1, 2, 7, 7]
    cut = windows(seconds(11.0))
    assert all(len(w) == WINDOW_SAMPLES for w in cut) and [w[0] for w in cut] == [0, DNSMOS_RATE]
    assert [int(w[0]) // DNSMOS_RATE for w in windows(seconds(30.0))] == list(range(7))


def test_noise_and_clipping_score_below_the_clean_speech(judge: DNSMOS, clean: list[np.ndarray]):
    """Known answers on real speech: white noise at 10 dB SNR lowers OVRL and BAK (the background), hard clipping
    lowers OVRL and P.808, sentence by sentence. (SIG is not asserted: DNSMOS's SIG rises with white noise.)"""
    scores = judge.score_batch(clean + [with_noise(s, 10.0, i) for i, s in enumerate(clean)]
                               + [clipped(s) for s in clean], DNSMOS_RATE)  # fmt: skip
    n = len(clean)
    original, noisy, distorted = scores[:n], scores[n : 2 * n], scores[2 * n :]
    for good, noise, clip in zip(original, noisy, distorted, strict=True):
        assert good["dnsmos_ovrl"] > noise["dnsmos_ovrl"] + 0.2, (good, noise)
        assert good["dnsmos_bak"] > noise["dnsmos_bak"] + 0.5, (good, noise)
        assert good["dnsmos_ovrl"] > clip["dnsmos_ovrl"] + 0.2, (good, clip)
        assert good["dnsmos_p808"] > clip["dnsmos_p808"] + 0.3, (good, clip)


def test_a_silent_clip_scores_the_floor_without_running_the_models(tmp_path):
    """Silence (digital zeros, an empty clip, -90 dBFS) is the worst a TTS can say: 1.0 on every field. The judge's
    model folder here is empty, so a model run would fail: none happens."""
    judge = DNSMOS(folder=tmp_path)
    quiet = np.full(24000, 10 ** (-90 / 20), dtype=np.float32)
    scores = judge.score_batch([np.zeros(48000, dtype=np.float32), np.zeros(0, dtype=np.float32), quiet], 24000)
    assert scores == [dict.fromkeys(DNSMOS_FIELDS, SCALE_FLOOR)] * 3
    assert isinstance(judge, NaturalnessJudge) and judge.fields == DNSMOS_FIELDS
