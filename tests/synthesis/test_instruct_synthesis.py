"""The Synthesizer speaks with an instruction per row (``instructs``), for a preset speaker and for a new voice's
x-vector, exactly as upstream's ``generate_custom_voice(..., instruct=...)`` does (docs/instructions.md)."""

from __future__ import annotations

import pytest
import torch

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.synthesis.presets import GREEDY
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

TEXTS = ["Hello there.", "Call Stella, please.", "She sells sea shells."]
INSTRUCTS = ["Speak slowly and sadly.", None, "Whisper, very softly."]
CAP = 7


def _official_codes(tts, speaker: str) -> list[torch.Tensor]:
    """The codes upstream's own call hands its decoder for the same batch (greedy, the same frame budget)."""
    seen, real = [], tts.model.generate

    def spy(*args, **kwargs):
        codes, hidden = real(*args, **kwargs)
        seen.extend(c.cpu() for c in codes)
        return codes, hidden

    tts.model.generate = spy
    try:
        tts.generate_custom_voice(text=TEXTS, speaker=[speaker] * len(TEXTS), instruct=[i or "" for i in INSTRUCTS],
                                  **GREEDY.generate_kwargs(CAP))  # fmt: skip
    finally:
        del tts.model.generate
    return seen


@pytest.fixture(scope="module")
def official(tiny_custom_voice):
    return _official_codes(tiny_custom_voice, "ryan")


def test_a_preset_speaks_each_rows_instruction_as_generate_custom_voice(tiny_custom_voice, official):
    synth = Synthesizer(tiny_custom_voice, Voice(speaker="Ryan"), preset=GREEDY, warmup_seconds=0)
    spoken = synth.synthesize(TEXTS, max_new_tokens=CAP, batch_size=len(TEXTS), instructs=INSTRUCTS)
    assert [u.instruct for u in spoken] == INSTRUCTS
    for utterance, codes in zip(spoken, official, strict=True):
        assert torch.equal(utterance.codes, codes[:CAP])
    plain = synth.synthesize(TEXTS, max_new_tokens=CAP, batch_size=len(TEXTS))
    assert [u.instruct for u in plain] == [None] * len(TEXTS)
    first = [torch.equal(a.codes, b.codes) for a, b in zip(spoken, plain, strict=True)]
    assert first[1] and not all(first)  # the plain row unchanged; an instructed row is spoken otherwise


def test_a_new_voice_follows_the_instruction_through_its_x_vector(tiny_custom_voice, official):
    """A new voice is an x-vector in the speaker slot: with the preset's own codec row as the x-vector, the
    instructed rows come out exactly as the preset's (the path a fine-tuned voice is spoken by)."""
    row = tiny_custom_voice.model.config.talker_config.spk_id["ryan"]
    xvector = tiny_custom_voice.model.talker.get_input_embeddings().weight[row].detach().clone()
    synth = Synthesizer(tiny_custom_voice, Voice(xvector=xvector), preset=GREEDY, warmup_seconds=0)
    spoken = synth.synthesize(TEXTS, max_new_tokens=CAP, batch_size=len(TEXTS), instructs=INSTRUCTS)
    assert all(torch.equal(u.codes, c[:CAP]) for u, c in zip(spoken, official, strict=True))


def test_instructions_are_refused_where_upstream_ignores_them(tiny_custom_voice, monkeypatch):
    synth = Synthesizer(tiny_custom_voice, Voice(speaker="vivian"), preset=GREEDY, warmup_seconds=0)
    with pytest.raises(ValueError, match="got 1 instructs for 2 texts"):
        synth.synthesize(TEXTS[:2], max_new_tokens=CAP, instructs=["Sad."])
    monkeypatch.setattr(tiny_custom_voice.model.config, "tts_model_size", "0b6")
    with pytest.raises(UserError, match="instruct: the 0.6B CustomVoice model does not follow instructions"):
        synth.synthesize(TEXTS[:1], max_new_tokens=CAP, instructs=["Sad."])
    assert synth.synthesize(TEXTS[:1], max_new_tokens=CAP, instructs=[None])[0].frames > 0  # plain rows still speak
