"""The layer-0 helpers every stage shares: atomic writes, mono float32, the one resampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qwen_tts_lit import files
from qwen_tts_lit.audio import as_mono, resample, resample_stream


def tone(seconds: float, rate: int, db: float = -12.0, freq: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (10 ** (db / 20) * np.sqrt(2) * np.sin(2 * np.pi * freq * t)).astype(np.float32)  # RMS = db dBFS


def test_write_atomic_leaves_no_temporary_file(tmp_path: Path, monkeypatch):
    target = files.write_atomic(tmp_path / "t" / "ablation.md", "old")
    monkeypatch.setattr(files.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        files.write_atomic(target, "new")
    assert target.read_text() == "old" and [p.name for p in target.parent.iterdir()] == ["ablation.md"]


def test_as_mono_averages_channels_and_scales_integer_pcm():
    stereo = np.stack([np.full(4, 0.5), np.full(4, 0.3)], axis=1)
    np.testing.assert_allclose(as_mono(stereo), np.full(4, 0.4), rtol=1e-6)
    assert as_mono(np.zeros(3)).dtype == np.float32
    assert as_mono(np.array([-32768, 16384], dtype=np.int16)).tolist() == [-1.0, 0.5]


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_resample_keeps_duration_and_pitch(rate):
    audio = tone(1.0, rate, freq=440.0)
    out = resample(audio, rate, 24000)
    assert abs(len(out) - 24000) <= 1 and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out[2400:-2400] * np.hanning(len(out) - 4800)))
    peak_hz = np.argmax(spectrum) * 24000 / (len(out) - 4800)
    assert abs(peak_hz - 440) < 3
    assert resample(audio, rate, rate) is audio


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_resample_stream_equals_resampling_the_whole_signal(rate):
    audio = np.random.default_rng(rate).standard_normal((rate * 3 + 17, 2)).astype(np.float32) * 0.1
    blocks = [audio[i : i + 4099] for i in range(0, len(audio), 4099)]  # odd block size: state crosses blocks
    streamed = np.concatenate(list(resample_stream(blocks, rate, 24000)))
    np.testing.assert_array_equal(streamed, resample(audio, rate, 24000))
