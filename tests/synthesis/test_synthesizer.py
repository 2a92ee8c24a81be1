"""The Synthesizer on the tiny checkpoint: presets, caps, warm-up, seeds, the x-vector, LoRA scale, side effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.synthesis.presets import GREEDY, MAX_NEW_TOKENS, SAMPLES_PER_FRAME, GenerationPreset, text_frame_cap
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice, silence_codes, trim_warmup, warmup_frames

TEXTS = ["The morning train was late.", "She left her umbrella on the bus."]
CAP = 6  # frames: the tiny model rarely emits EOS, so small caps keep these tests fast


@pytest.fixture(scope="module")
def tts(tiny_dir):
    """A private copy of the tiny model (tests below inject LoRA or edit weights on their own copies)."""
    from qwen_tts_lit.upstream.loading import load_qwen3_tts

    return load_qwen3_tts(str(tiny_dir))


@pytest.fixture(scope="module")
def xvector() -> torch.Tensor:
    return torch.randn(64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def synth(tts, xvector) -> Synthesizer:
    return Synthesizer(tts, Voice(xvector=xvector))


# ------------------------------------------------------------------ pure parts


def test_preset_is_the_seed_guides_and_caps_in_frames():
    preset = GenerationPreset()
    assert (preset.temperature, preset.top_p, preset.top_k, preset.repetition_penalty) == (0.8, 0.85, 30, 1.05)
    assert preset.max_new_tokens == MAX_NEW_TOKENS == 2048
    # Upstream returns tokens-1 frames; two extra tokens let us see one frame past the cap.
    assert preset.generate_kwargs(10)["max_new_tokens"] == 12
    config = preset.generation_config()
    assert config["max_new_tokens"] == 2048 and config["top_k"] == 30 and config["subtalker_dosample"] is True


def test_text_frame_cap_scales_with_text_and_script():
    assert text_frame_cap("Hi.") == 25 + 6  # floor 25 + 2 x 3 chars
    assert text_frame_cap("a" * 40) == 25 + 80
    assert text_frame_cap("今天天气很好") == 25 + 36  # CJK characters count 3 frames each
    assert text_frame_cap("1234") > text_frame_cap("abcd")  # digits are read as words
    assert text_frame_cap("a" * 5000) == MAX_NEW_TOKENS
    assert text_frame_cap("a" * 100, ceiling=50) == 50


def test_warmup_frames_and_trim():
    assert warmup_frames(0.25) == 4 and warmup_frames(0.0) == 0 and warmup_frames(0.08) == 1
    wav = np.arange(10 * SAMPLES_PER_FRAME, dtype=np.float32)
    assert np.array_equal(trim_warmup(wav, 4), wav[4 * SAMPLES_PER_FRAME :])


def test_voice_needs_exactly_one_source(xvector):
    with pytest.raises(ValueError):
        Voice()
    with pytest.raises(ValueError):
        Voice(xvector=xvector, speaker="x")
    prompt = Voice(xvector=xvector).generate_kwargs(2)["voice_clone_prompt"]
    assert prompt["x_vector_only_mode"] == [True, True] and prompt["ref_code"] == [None, None]
    assert Voice(speaker="amy").generate_kwargs(2) == {"speakers": ["amy", "amy"]}


# ------------------------------------------------------------------ warm-up


def test_silence_codes_are_the_codecs_encoding_of_silence(tts):
    codes = silence_codes(tts.model.speech_tokenizer, 4)
    assert codes.shape == (4, 16)
    direct = tts.model.speech_tokenizer.encode([np.zeros(48000, dtype=np.float32)], sr=24000).audio_codes[0]
    assert torch.equal(codes[-1], direct[-1].cpu())  # the steady-state silence frame


def test_warmup_is_decoded_then_trimmed_exactly(tts, synth):
    (utt,) = synth.synthesize(TEXTS[:1], seeds=3, max_new_tokens=CAP)
    assert len(utt.wav) == utt.frames * SAMPLES_PER_FRAME and utt.wav.dtype == np.float32
    full, _ = tts.model.speech_tokenizer.decode([{"audio_codes": torch.cat([synth.silence, utt.codes])}])
    assert np.array_equal(utt.wav, full[0][4 * SAMPLES_PER_FRAME :])
    cold = Synthesizer(tts, synth.voice, warmup_seconds=0).synthesize(TEXTS[:1], seeds=3, max_new_tokens=CAP)[0]
    assert torch.equal(cold.codes, utt.codes) and len(cold.wav) == len(utt.wav)
    assert not np.array_equal(cold.wav, utt.wav)  # the causal decoder did see the warm-up


# ------------------------------------------------------------------ seeds, caps, batching


def test_seed_belongs_to_the_utterance_not_the_call(synth):
    both = synth.synthesize(TEXTS, seeds=[1, 2], max_new_tokens=CAP)
    alone = synth.synthesize(TEXTS[1:], seeds=[2], max_new_tokens=CAP)[0]
    assert torch.equal(both[1].codes, alone.codes)
    np.testing.assert_allclose(both[1].wav, alone.wav, rtol=0, atol=1e-6 * max(np.abs(alone.wav).max(), 1e-30))
    other = synth.synthesize(TEXTS[1:], seeds=[7], max_new_tokens=CAP)[0]
    assert not torch.equal(other.codes, alone.codes)
    assert [u.seed for u in both] == [1, 2] and all(u.frames == len(u.codes) for u in both)


def test_a_rows_sampling_does_not_depend_on_its_batch(synth):
    """Each row draws from its own generator: batched or alone, in any position, a row gives the same codes."""
    texts, seeds = [TEXTS[0], TEXTS[1], TEXTS[0]], [4, 5, 6]
    batched = synth.synthesize(texts, seeds=seeds, max_new_tokens=CAP, batch_size=3)
    alone = [synth.synthesize([t], seeds=[s], max_new_tokens=CAP)[0] for t, s in zip(texts, seeds, strict=True)]
    reordered = synth.synthesize(texts[::-1], seeds=seeds[::-1], max_new_tokens=CAP, batch_size=2)[::-1]
    for a, b, c in zip(batched, alone, reordered, strict=True):
        assert torch.equal(a.codes, b.codes) and torch.equal(a.codes, c.codes)
    assert not torch.equal(batched[0].codes, batched[2].codes)  # same text, other seed: other sample


@pytest.fixture
def eos_after_two(tts):
    """The talker says EOS as soon as upstream allows it (min_new_tokens=2), so every sentence is 2 frames."""
    eos = tts.model.config.talker_config.codec_eos_token_id

    def push_eos(module, args, logits):
        logits = logits.clone()
        logits[..., eos] += 1e4
        return logits

    handle = tts.model.talker.codec_head.register_forward_hook(push_eos)
    yield tts
    handle.remove()


def test_hit_max_tokens_is_exact_at_the_cap(eos_after_two, xvector):
    synth = Synthesizer(eos_after_two, Voice(xvector=xvector), preset=GREEDY)
    probe = synth.synthesize(TEXTS[:1], max_new_tokens=10)[0]
    assert probe.frames == 2 and not probe.hit_max_tokens  # found EOS well before the cap
    exact = synth.synthesize(TEXTS[:1], max_new_tokens=2)[0]
    assert exact.frames == 2 and not exact.hit_max_tokens  # ends exactly at the cap: not a runaway
    cut = synth.synthesize(TEXTS[:1], max_new_tokens=1)[0]
    assert cut.frames == 1 and cut.hit_max_tokens and len(cut.wav) == SAMPLES_PER_FRAME


def test_runaway_is_flagged_and_cut_at_the_cap(synth):
    results = synth.synthesize(TEXTS * 2, seeds=[0, 1, 2, 3], max_new_tokens=3)
    assert all(u.frames <= 3 and u.hit_max_tokens == (u.frames == 3) for u in results)
    assert any(u.hit_max_tokens for u in results)  # random tiny weights rarely say EOS within 3 frames


def test_default_cap_comes_from_the_text(synth, monkeypatch):
    seen = []
    original = synth._generate

    def spy(texts, seeds, scales, caps, languages, instructs):
        seen.append(caps)
        return original(texts, seeds, scales, [2], languages, instructs)

    monkeypatch.setattr(synth, "_generate", spy)
    synth.synthesize(TEXTS, seeds=0)
    assert seen == [[text_frame_cap(TEXTS[0])], [text_frame_cap(TEXTS[1])]]


# ------------------------------------------------------------------ voice, LoRA, side effects


def test_xvector_is_reused_never_recomputed(tts, synth):
    calls = []
    handle = tts.model.speaker_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        synth.synthesize(TEXTS, seeds=0, max_new_tokens=2)
    finally:
        handle.remove()
    assert calls == []


def test_voice_reaches_the_talker(tts, xvector):
    a = Synthesizer(tts, Voice(xvector=xvector), preset=GREEDY).synthesize(TEXTS[:1], max_new_tokens=CAP)[0]
    b = Synthesizer(tts, Voice(xvector=-xvector), preset=GREEDY).synthesize(TEXTS[:1], max_new_tokens=CAP)[0]
    assert not torch.equal(a.codes, b.codes)


@pytest.fixture
def lora_tts(tiny_dir):
    """A tiny model with non-zero LoRA adapters, in training mode, as the training module holds it."""
    from qwen_tts_lit.model.lora import LoraSpec, inject_lora
    from qwen_tts_lit.upstream.loading import load_qwen3_tts

    tts = load_qwen3_tts(str(tiny_dir))
    peft_model = inject_lora(tts.model, LoraSpec(rank=4, alpha=8, dropout=0.1))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    peft_model.train()
    return tts


def test_lora_scale_is_applied_during_generation_and_restored(lora_tts, xvector):
    from peft.tuners.lora import LoraLayer

    layer = next(m for m in lora_tts.model.modules() if isinstance(m, LoraLayer))
    seen = []
    handle = layer.register_forward_pre_hook(
        lambda module, args: seen.append((len(module.lora_A["default"]._forward_hooks), module.training))
    )
    synth = Synthesizer(lora_tts, Voice(xvector=xvector), preset=GREEDY)
    try:
        half = synth.synthesize(TEXTS[:1], lora_scale=0.5, max_new_tokens=CAP)[0]
    finally:
        handle.remove()
    assert {hooks for hooks, _ in seen} == {1} and not any(training for _, training in seen)
    assert not layer.lora_A["default"]._forward_hooks and layer.training  # restored: no scaling hook, training mode
    assert layer.scaling["default"] == 8 / 4  # peft's own scaling is never touched
    full = synth.synthesize(TEXTS[:1], lora_scale=1.0, max_new_tokens=CAP)[0]
    assert not torch.equal(half.codes, full.codes)


def test_a_row_in_a_mixed_scale_batch_equals_that_row_alone_at_its_scale(lora_tts, tts, xvector):
    """Sentences x strengths in one generate call: every row is what it is alone at its strength (sampling, not
    greedy, so the per-row generators are proven too), and strength 0 is the base model without adapters."""
    synth = Synthesizer(lora_tts, Voice(xvector=xvector))
    texts, seeds, scales = [TEXTS[0], TEXTS[1], TEXTS[0], TEXTS[1]], [3, 4, 3, 4], [0.0, 0.5, 1.0, 2.0]
    mixed = synth.synthesize(texts, seeds=seeds, lora_scale=scales, max_new_tokens=CAP, batch_size=4)
    for row, text, seed, scale in zip(mixed, texts, seeds, scales, strict=True):
        (alone,) = synth.synthesize([text], seeds=[seed], lora_scale=scale, max_new_tokens=CAP)
        assert torch.equal(row.codes, alone.codes), scale
        np.testing.assert_allclose(row.wav, alone.wav, rtol=0, atol=1e-6 * max(np.abs(alone.wav).max(), 1e-30))
        assert row.lora_scale == scale
    base = Synthesizer(tts, Voice(xvector=xvector)).synthesize(TEXTS[:1], seeds=[3], max_new_tokens=CAP)[0]
    assert torch.equal(mixed[0].codes, base.codes)  # scale 0: exactly the base model
    assert len({tuple(u.codes.flatten().tolist()) for u in (mixed[0], mixed[2])}) == 2  # the scale reaches the talker


def test_the_x_vector_baseline_at_scale_0_is_the_official_base_model(lora_tts, tts, xvector):
    """The zero-shot "xvector" baseline (the trained model's adapters at scale 0, the training x-vector) is fed and
    outputs what the official ``generate_voice_clone`` of the base model with that x-vector is (embeddings and
    logits within 1e-6, helpers/teacher_forcing.py); the controls: scale 1 and an orthogonal x-vector differ."""
    from helpers.teacher_forcing import assert_different, assert_same, codes_of, compare, cosines, trace_generate

    from qwen_tts_lit.upstream.compat import import_qwen_tts

    prompt_item = import_qwen_tts().VoiceClonePromptItem

    def official(voice: torch.Tensor):
        prompt = [prompt_item(ref_code=None, ref_spk_embedding=voice, x_vector_only_mode=True, icl_mode=False)]

        def call():
            kwargs = GREEDY.generate_kwargs(CAP)
            return tts.generate_voice_clone(text=TEXTS[0], voice_clone_prompt=prompt, non_streaming_mode=True, **kwargs)

        return trace_generate(tts.model.talker, codes_of(tts, call))

    def baseline(voice: torch.Tensor, scale: float):
        synth = Synthesizer(lora_tts, Voice(xvector=voice), preset=GREEDY)

        def call():
            return synth.synthesize(TEXTS[:1], lora_scale=scale, max_new_tokens=CAP)

        return trace_generate(lora_tts.model.talker, codes_of(lora_tts, call))

    config = tts.model.config
    want = official(xvector)
    assert_same([compare(want, baseline(xvector, 0.0), config)], "the x-vector baseline at scale 0")
    assert_different([compare(want, baseline(xvector, 1.0), config)], "the adapters at scale 1")
    other = torch.linalg.qr(torch.stack([xvector, torch.randn_like(xvector)], 1))[0][:, 1] * xvector.norm()
    assert cosines(torch.stack([xvector, other])).abs().max() < 1e-5
    assert_different([compare(want, baseline(other, 0.0), config)], "another x-vector")


def test_scale_needs_adapters(synth):
    with pytest.raises(UserError, match="no LoRA adapters"):
        synth.synthesize(TEXTS[:1], lora_scale=0.5, max_new_tokens=2)
    with pytest.raises(UserError, match="no LoRA adapters"):
        synth.synthesize(TEXTS, lora_scale=[1.0, 0.5], max_new_tokens=2, batch_size=2)


def test_global_rng_is_untouched(synth):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    synth.synthesize(TEXTS[:1], seeds=9, max_new_tokens=2)
    assert torch.equal(torch.rand(3), expected)


def test_texts_are_spoken_as_prepare_cleans_transcripts(synth):
    """The Synthesizer, which every inference goes through, cleans each text as prepare cleaned the training
    transcripts: a raw text speaks exactly as its cleaned form, and its utterance keeps the text as spoken. Cleaning
    a cleaned text changes nothing, so a caller may plan on it first (synthesize's chunks) without a second effect."""
    raw = "\u201cThe morning\u201d <laugh>  train [breath] was late."
    cleaned = Synthesizer.spoken_text(raw)
    assert cleaned.text == '"The morning" train was late.' and cleaned.tags == ["<laugh>", "[breath]"]
    from_raw, from_clean = synth.synthesize([raw, cleaned.text], seeds=3, max_new_tokens=CAP)
    assert from_raw.text == from_clean.text == cleaned.text and torch.equal(from_raw.codes, from_clean.codes)
    with pytest.raises(UserError, match="text 0 is empty"):
        synth.synthesize(["<laugh> [breath]"])
    for text in (raw, "a [[inaudible]] b", "<a<b>c> d"):  # nested tags: stripped until none is left
        once = Synthesizer.spoken_text(text).text
        assert Synthesizer.spoken_text(once).text == once and "[" not in once and "<" not in once


def test_bad_inputs(tts, synth, xvector):
    with pytest.raises(UserError, match="text 1 is empty"):
        synth.synthesize(["Hello.", "  "])
    with pytest.raises(ValueError, match="2 seeds for 1 texts"):
        synth.synthesize(["Hello."], seeds=[1, 2])
    with pytest.raises(ValueError, match="2 LoRA scales for 1 texts"):
        synth.synthesize(["Hello."], lora_scale=[1.0, 1.0])
    with pytest.raises(UserError, match="language 'klingon'"):
        Synthesizer(tts, Voice(xvector=xvector), language="klingon")
    with pytest.raises(UserError, match="speaker 'amy'"):
        Synthesizer(tts, Voice(speaker="amy"))
