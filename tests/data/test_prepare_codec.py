"""Why prepare pads every clip to whole codec frames, and what the codes cache is keyed on (tiny checkpoint)."""

from __future__ import annotations

import copy

import numpy as np
import soundfile as sf
import torch
from helpers.prepare import demo_rows

from qwen_tts_lit.data.prepare import codec
from qwen_tts_lit.data.prepare.audio import FRAME_SAMPLES, clean_audio


def cleaned_demo_clips(count: int) -> list[np.ndarray]:
    clips = []
    for row in demo_rows()[:count]:
        audio, rate = sf.read(row["audio"], dtype="float32", always_2d=True)
        clips.append(clean_audio(audio, rate).pcm)
    return clips


def test_frame_aligned_clips_get_the_same_codes_alone_or_in_any_batch(tiny_model):
    """The 12 Hz tokenizer's last partial frame sees whatever padding follows it in a batch; whole frames do not.
    So cached codes never depend on which clips shared a batch, and a resumed run equals an uninterrupted one."""
    tokenizer = tiny_model.model.speech_tokenizer
    clips = cleaned_demo_clips(6)
    assert len({len(c) for c in clips}) > 1 and all(len(c) % FRAME_SAMPLES == 0 for c in clips)
    alone = [codec.encode(tokenizer, [clip], 24000)[0] for clip in clips]
    batched = codec.encode(tokenizer, clips, 24000) + codec.encode(tokenizer, clips[::-1], 24000)[::-1]
    for clip, single in zip(clips, alone, strict=True):
        assert single.shape == (len(clip) // FRAME_SAMPLES, 16)
    for single, together in zip(alone * 2, batched, strict=True):
        np.testing.assert_array_equal(single, together)


def test_tokenizer_fingerprint_changes_with_any_weight(tiny_model):
    tokenizer = tiny_model.model.speech_tokenizer
    reference = codec.tokenizer_fingerprint(tokenizer)
    assert codec.tokenizer_fingerprint(tokenizer) == reference
    changed = copy.deepcopy(tokenizer)
    with torch.no_grad():
        next(changed.model.parameters()).view(-1)[0] += 1e-3
    assert codec.tokenizer_fingerprint(changed) != reference


def test_code_cache_round_trip_and_damaged_entries(tmp_path):
    cache = codec.CodeCache(tmp_path / "cache", "fingerprint")
    pcm = np.arange(FRAME_SAMPLES, dtype=np.int16)
    key = cache.key(pcm)
    assert key != codec.CodeCache(tmp_path / "cache", "other tokenizer").key(pcm)
    assert cache.get(key) is None
    codes = np.arange(32, dtype=np.int64).reshape(2, 16)
    cache.put(key, codes)
    np.testing.assert_array_equal(cache.get(key), codes)
    assert list((tmp_path / "cache").iterdir()) == [cache.path(key)]  # no temporary file left behind
    cache.path(key).write_bytes(cache.path(key).read_bytes()[:40])  # a truncated entry is re-encoded, not trusted
    assert cache.get(key) is None
