"""The proof extended to instructions (docs/instructions.md, docs/correctness.md): the training layout of an
instructed utterance is what upstream's ``generate_custom_voice(text, speaker, language, instruct)`` and
``generate_voice_design(text, instruct, language)`` feed the model.

Greedy official calls on the tiny custom_voice checkpoint (its presets; one with a dialect, whose codec prefix
upstream fills with the dialect's language id when the language is omitted) and on the tiny voice_design
checkpoint -> their frames become one padded training batch laid out by ``model.layout`` (the instruct turn
``<|im_start|>user\\n...<|im_end|>\\n`` first, text channel only) -> the corrected step must be fed the same
embeddings and output the same logits (``SAME`` = 1e-6) and reproduce every code, group 0 and groups 1..15. The
controls (the instruction left out, another instruction, the instruction on the codec channel too) must differ by
``DIFFERENT`` = 1e-2 or more.
"""

from __future__ import annotations

import pytest
import torch
from helpers.teacher_forcing import agreements, assert_different, assert_same, codes_of, trace_generate

from qwen_tts_lit.model.layout import (
    SpecialIds,
    assistant_prompt,
    collate_sequences,
    instruct_prompt,
    layout_utterance,
)

GREEDY = dict(do_sample=False, subtalker_dosample=False, repetition_penalty=1.0)
# (text, preset, language or None = omitted, instruction or None, max frames): with and without an instruction and a
# language, a dialect preset, distinct lengths so the batch is padded.
CALLS = (
    ("Hello there.", "ryan", None, "Speak slowly and sadly.", 9),
    ("A journey of a thousand miles begins.", "vivian", "English", None, 12),
    ("Call Stella, please.", "ryan", "English", "Whisper, very softly, like a secret.", 6),
    ("She sells sea shells.", "dylan", None, None, 8),
    ("The quick brown fox.", "vivian", None, "Shout it out!", 7),
)


def _ids(tts, prompt: str) -> list[int]:
    return tts.processor.tokenizer(prompt)["input_ids"]


def _language_id(config, language: str | None, speaker: str | None) -> int | None:
    """The codec language id generate puts in the prefix: the language's, or for a dialect preset spoken with the
    language omitted (or Chinese) its dialect's (upstream's generate)."""
    talker = config.talker_config
    dialect = (talker.spk_is_dialect or {}).get(speaker) if speaker else False
    if dialect and (language is None or language.lower() == "chinese"):
        return talker.codec_language_id[dialect]
    return None if language is None else talker.codec_language_id[language.lower()]


@pytest.fixture(scope="module")
def custom_voice_traces(tiny_custom_voice):
    talker = tiny_custom_voice.model.talker

    def call(text, speaker, language, instruct, frames):
        extra = ({} if language is None else {"language": language}) | (
            {} if instruct is None else {"instruct": instruct}
        )
        return lambda: tiny_custom_voice.generate_custom_voice(
            text=text, speaker=speaker, max_new_tokens=frames, **extra, **GREEDY
        )

    return [trace_generate(talker, codes_of(tiny_custom_voice, call(*c))) for c in CALLS]


def _custom_voice_batch(tts, traces, instructs=None, codec_instruct=False):
    """The calls laid out as training lays them out; ``instructs`` replaces each call's instruction (a control)."""
    config = tts.model.config
    special = SpecialIds.from_config(config)
    instructs = [c[3] for c in CALLS] if instructs is None else instructs
    sequences = []
    for (text, speaker, language, _, _), instruct, trace in zip(CALLS, instructs, traces, strict=True):
        instruct_ids = None if instruct is None else _ids(tts, instruct_prompt(instruct))
        sequence = layout_utterance(_ids(tts, assistant_prompt(text)), trace.codes, special,
                                    _language_id(config, language, speaker), instruct_ids)  # fmt: skip
        if codec_instruct and instruct_ids:  # control: the instruction's positions get a codec embedding too
            sequence.codec_mask[: len(instruct_ids)] = True
            sequence.codec_ids[: len(instruct_ids)] = special.codec_pad
        sequences.append(sequence)
    table = tts.model.talker.get_input_embeddings().weight.detach()
    presets = torch.stack([table[config.talker_config.spk_id[c[1]]] for c in CALLS])  # what generate looks up
    return collate_sequences(sequences, presets)


def test_instructed_layouts_are_fed_and_output_what_generate_custom_voice_was(tiny_custom_voice, custom_voice_traces):
    """Five calls (with/without an instruction, with/without a language, a dialect preset) padded in one batch."""
    assert len({len(t.codes) for t in custom_voice_traces}) == len(CALLS)
    batch = _custom_voice_batch(tiny_custom_voice, custom_voice_traces)
    found = agreements(tiny_custom_voice.model.talker, custom_voice_traces, batch, tiny_custom_voice.model.config)
    total = assert_same(found, "generate_custom_voice with and without instruct")
    assert total.frames == sum(len(t.codes) for t in custom_voice_traces)


@pytest.mark.parametrize("control", ["dropped", "another", "codec_channel"])
def test_a_wrong_instruction_layout_is_a_different_input(tiny_custom_voice, custom_voice_traces, control):
    """The controls: instructed frames laid out without their instruction, with another one, or with the codec
    channel switched on over the instruction, are fed something else (the plain rows still agree)."""
    instructed = [i for i, c in enumerate(CALLS) if c[3] is not None]
    if control == "dropped":
        batch = _custom_voice_batch(tiny_custom_voice, custom_voice_traces, [None] * len(CALLS))
    elif control == "another":
        others = [None if c[3] is None else "Speak quickly and happily." for c in CALLS]
        batch = _custom_voice_batch(tiny_custom_voice, custom_voice_traces, others)
    else:
        batch = _custom_voice_batch(tiny_custom_voice, custom_voice_traces, codec_instruct=True)
    found = agreements(tiny_custom_voice.model.talker, custom_voice_traces, batch, tiny_custom_voice.model.config)
    assert_different([found[i] for i in instructed], control)
    assert_same([a for i, a in enumerate(found) if i not in instructed], f"{control}: the plain rows")


@pytest.fixture(scope="module")
def tiny_voice_design(fit_cache):
    from qwen_tts_lit.upstream.compat import import_qwen_tts
    from qwen_tts_lit.upstream.tiny import default_tiny_dir, make_tiny

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QWEN_TTS_LIT_CACHE", str(fit_cache))
        folder = make_tiny(default_tiny_dir("voice_design"), "voice_design")
    return import_qwen_tts().Qwen3TTSModel.from_pretrained(str(folder))


DESIGN_CALLS = (
    ("Hello there.", None, "A deep, calm male voice.", 8),
    ("Call Stella, please.", "English", "A bright young woman, cheerful.", 11),
    ("She sells sea shells.", "English", None, 6),  # upstream allows an empty instruction
)


def test_voice_design_layout_is_fed_and_outputs_what_generate_voice_design_was(tiny_voice_design):
    """No speaker slot (voice_design has none), the instruction first; a padded batch of three; the control is the
    speaker slot kept (every later position one off)."""
    tts, config = tiny_voice_design, tiny_voice_design.model.config
    special = SpecialIds.from_config(config)

    def call(text, language, instruct, frames):
        extra = {} if language is None else {"language": language}
        return lambda: tts.generate_voice_design(text=text, instruct=instruct or "", max_new_tokens=frames, **extra,
                                                 **GREEDY)  # fmt: skip

    traces = [trace_generate(tts.model.talker, codes_of(tts, call(*c))) for c in DESIGN_CALLS]

    def batch(speaker: bool):
        sequences = []
        for (text, language, instruct, _), trace in zip(DESIGN_CALLS, traces, strict=True):
            instruct_ids = None if instruct is None else _ids(tts, instruct_prompt(instruct))
            prompt_ids, language_id = _ids(tts, assistant_prompt(text)), _language_id(config, language, None)
            sequences.append(layout_utterance(prompt_ids, trace.codes, special, language_id, instruct_ids, speaker))
        return collate_sequences(sequences, torch.zeros(len(sequences), config.talker_config.hidden_size))

    assert_same(agreements(tts.model.talker, traces, batch(False), config), "generate_voice_design")
    assert_different(agreements(tts.model.talker, traces, batch(True), config), "voice_design with a speaker slot")
