"""The proof that the training step is the step ``generate`` takes (docs/correctness.md, docs/upstream_layout.md).

Greedy ``generate`` on the tiny checkpoint -> its frames become a training batch -> the corrected teacher-forced
forward must be fed the same embeddings at every position and output the same logits (within ``SAME`` = 1e-6),
and so reproduce every generated code: group 0 from the talker logits, groups 1..15 from the sub-talker. Argmax
alone is a weak witness on the tiny random model (a wrong layout still reproduces most codes), so each proof has a
control that must differ by ``DIFFERENT`` = 1e-2 or more: each upstream bug switched back on, the other codec
prefix or another language in it, another speaker's x-vector (far apart: orthogonal x-vectors). The comparison is
``helpers.teacher_forcing``'s, the one every layout proof uses. The same proof covers the two calls users make on a
custom_voice checkpoint (the language omitted, and an explicit language), each laid out with its own codec prefix,
alone and mixed in one padded batch as ``language_tag: mixed`` trains them. With several speakers, each speaker of
a custom_voice export (its x-vector in codec row 3000 + i) is spoken by the official
``generate_custom_voice(speaker=NAME)``, and the step, fed each utterance's speaker x-vector by the training collate,
is fed and outputs what generate was.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers.teacher_forcing import (
    CORRECT,
    DIFFERENT,
    agreements,
    assert_different,
    assert_same,
    codes_of,
    combined,
    cosines,
    far_apart_xvectors,
    trace_generate,
)

from qwen_tts_lit.data.dataset import Collate, Item, load_voices
from qwen_tts_lit.model.layout import SpecialIds, assistant_prompt, collate_sequences, layout_utterance
from qwen_tts_lit.model.step import StepFixes, training_step_losses

TEXTS = ("Hello there.", "A journey of a thousand miles begins.", "Call Stella, please.")
MAX_FRAMES = (9, 14, 6)  # different lengths so the batch of 3 is padded
GREEDY = dict(do_sample=False, subtalker_dosample=False, repetition_penalty=1.0)


def _prompt_ids(model, text: str) -> list[int]:
    return model.processor.tokenizer(assistant_prompt(text))["input_ids"]


def _greedy_generate(model, text: str, xvector: torch.Tensor, max_frames: int):
    """Upstream's ``generate`` as the x-vector voice clone calls it (non-streaming), one utterance: (F, 16) codes."""
    prompt = dict(ref_code=[None], ref_spk_embedding=[xvector], x_vector_only_mode=[True], icl_mode=[False])

    def call() -> torch.Tensor:
        codes, _ = model.model.generate(
            input_ids=[torch.tensor([_prompt_ids(model, text)])], voice_clone_prompt=prompt, languages=["auto"],
            non_streaming_mode=True, max_new_tokens=max_frames, **GREEDY,
        )  # fmt: skip
        return codes[0]

    return call


@pytest.fixture(scope="module")
def generated(tiny_model):
    """Far-apart x-vectors (one per text) and the generate trace of each text spoken with its own."""
    xvectors = far_apart_xvectors(len(TEXTS), tiny_model.model.config.talker_config.hidden_size)
    talker = tiny_model.model.talker
    traces = [trace_generate(talker, _greedy_generate(tiny_model, t, x, n))
              for t, x, n in zip(TEXTS, xvectors, MAX_FRAMES, strict=True)]  # fmt: skip
    return xvectors, traces


def _batch(model, xvectors, traces, which, language_ids=None):
    """``language_ids``: one codec language id (or None: untagged) per utterance in ``which``."""
    special = SpecialIds.from_config(model.model.config)
    language_ids = language_ids or [None] * len(which)
    sequences = [layout_utterance(_prompt_ids(model, TEXTS[i]), traces[i].codes, special, language_id)
                 for i, language_id in zip(which, language_ids, strict=True)]  # fmt: skip
    return collate_sequences(sequences, xvectors[list(which)])


def _agreements(model, xvectors, traces, which, fixes=CORRECT, language_ids=None):
    batch = _batch(model, xvectors, traces, which, language_ids)
    return agreements(model.model.talker, [traces[i] for i in which], batch, model.model.config, fixes)


@pytest.mark.parametrize("which", [(0,), (1,), (0, 1, 2)], ids=["b1", "b1-long", "b3-padded"])
def test_corrected_step_is_fed_and_outputs_what_generate_was(tiny_model, generated, which):
    xvectors, traces = generated
    assert len({len(t.codes) for t in traces}) == len(traces)  # distinct lengths: the batch of 3 is really padded
    assert_same(_agreements(tiny_model, xvectors, traces, which), f"utterances {which}")


def test_a_wrong_speaker_is_a_different_input(tiny_model, generated):
    """The control: each utterance with another's x-vector (orthogonal to its own) is fed something else."""
    xvectors, traces = generated
    assert cosines(xvectors).abs().max() < 1e-5
    assert_different(_agreements(tiny_model, xvectors[[1, 2, 0]], traces, (0, 1, 2)), "another speaker's x-vector")


@pytest.mark.parametrize(
    "bug, breaks",
    [
        (StepFixes(talker_shift=False), "group0"),
        (StepFixes(sub_talker_alignment=False), "groups"),
        (StepFixes(sub_talker_shift=False), "groups"),
    ],
    ids=["talker_shift", "sub_talker_alignment", "sub_talker_shift"],
)
def test_each_upstream_bug_breaks_consistency(tiny_model, generated, bug, breaks):
    """Each bug scores its targets with logits (or feeds the sub-talker states) that generate did not use."""
    xvectors, traces = generated
    total = assert_different(_agreements(tiny_model, xvectors, traces, (0, 1, 2), bug), str(bug))
    rate = total.group0_matches / total.frames if breaks == "group0" else total.groups_matches / (total.frames * 15)
    assert rate < 0.7, f"{bug} still reproduces {rate:.0%} of the generated codes"


def test_upstream_text_embedding_crashes_when_widths_differ(tiny_model, generated):
    """On 0.6B (and the tiny model) text_hidden != hidden: upstream's unprojected text embedding cannot be added."""
    xvectors, traces = generated
    batch = _batch(tiny_model, xvectors, traces, (0,))
    with pytest.raises(RuntimeError, match="must match"):
        training_step_losses(tiny_model.model.talker, batch, StepFixes(text_projection=False))


SPEAKER = "target"
SPEAKER_ROW = 3000  # where upstream's fine-tuning (and our export) puts the voice in the codec table


@pytest.fixture(scope="module")
def custom_voice(tiny_dir, tmp_path_factory):
    """The tiny checkpoint as an official custom_voice checkpoint (the config edits upstream's fine-tuning makes),
    its voice a random x-vector in codec row 3000, loaded through ``Qwen3TTSModel``."""
    from qwen_tts_lit.upstream.compat import clean_saved_config, import_qwen_tts

    folder = tmp_path_factory.mktemp("custom_voice") / "ckpt"
    shutil.copytree(tiny_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["tts_model_type"] = "custom_voice"
    config["talker_config"].update(spk_id={SPEAKER: SPEAKER_ROW}, spk_is_dialect={SPEAKER: False})
    (folder / "config.json").write_text(json.dumps(config))
    clean_saved_config(folder)
    tts = import_qwen_tts().Qwen3TTSModel.from_pretrained(str(folder))
    torch.manual_seed(1)
    with torch.no_grad():
        table = tts.model.talker.get_input_embeddings().weight
        table[SPEAKER_ROW] = torch.randn(table.shape[1])
    return tts


@pytest.fixture(scope="module")
def custom_voice_traces(custom_voice):
    """Greedy ``generate_custom_voice`` traces per text exactly as users call it: language omitted, and
    language="English"."""

    def call(text: str, language: str | None, max_frames: int):
        language_arg = {} if language is None else {"language": language}
        return lambda: custom_voice.generate_custom_voice(
            text=text, speaker=SPEAKER, max_new_tokens=max_frames, **language_arg, **GREEDY
        )

    talker = custom_voice.model.talker
    return {
        language: [trace_generate(talker, codes_of(custom_voice, call(text, language, frames)))
                   for text, frames in zip(TEXTS, MAX_FRAMES, strict=True)]
        for language in (None, "English")
    }  # fmt: skip


def _voice(custom_voice) -> torch.Tensor:
    voice = custom_voice.model.talker.get_input_embeddings().weight[SPEAKER_ROW].detach()
    return voice.expand(len(TEXTS), -1)


@pytest.mark.parametrize(
    "calls",
    [(None, None, None), ("English", "English", "English"), (None, "English", None), ("English", None, "English")],
    ids=["omitted", "explicit", "mixed-batch-a", "mixed-batch-b"],
)
def test_layouts_are_fed_and_output_what_generate_custom_voice_was(custom_voice, custom_voice_traces, calls):
    """Each utterance laid out with the prefix of the call that generated it (untagged for the language omitted,
    think/think_bos/LANG/think_eos for language="English", as language_tag on/mixed lays it out): the same
    embeddings, logits and codes; a mixed batch (both prefixes, padded together) as well."""
    english = custom_voice.model.config.talker_config.codec_language_id["english"]
    traces = [custom_voice_traces[language][i] for i, language in enumerate(calls)]
    language_ids = [None if language is None else english for language in calls]
    assert_same(_agreements(custom_voice, _voice(custom_voice), traces, (0, 1, 2), language_ids=language_ids), calls)


@pytest.mark.parametrize(
    "spoken, laid_out",
    [("English", None), (None, "english"), ("English", "chinese")],
    ids=["explicit-as-untagged", "omitted-as-tagged", "english-as-chinese"],
)
def test_a_wrong_prefix_is_a_different_input(custom_voice, custom_voice_traces, spoken, laid_out):
    """The control that makes the proof able to fail: frames of one call laid out with another call's prefix (the
    other prefix, or another language in it) are fed and scored with something else by 1e-2 or more (their
    argmax still reproduces most codes: docs/correctness.md has the figures)."""
    languages = custom_voice.model.config.talker_config.codec_language_id
    language_ids = [None if laid_out is None else languages[laid_out]] * len(TEXTS)
    traces = custom_voice_traces[spoken]
    found = _agreements(custom_voice, _voice(custom_voice), traces, (0, 1, 2), language_ids=language_ids)
    assert_different(found, f"{spoken} laid out as {laid_out}")


SPEAKERS = ("ann", "bob", "cleo")


def _export_and_speak(tiny_dir, voices, out):
    """``voices`` installed as a custom_voice export of the tiny base (the export's own writer), then one greedy
    ``generate_custom_voice`` trace per speaker: speaker i says TEXTS[i]."""
    from qwen_tts_lit.export.custom_voice import save_custom_voice
    from qwen_tts_lit.synthesis.presets import GenerationPreset
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    qwen_tts = import_qwen_tts()
    base = qwen_tts.Qwen3TTSModel.from_pretrained(str(tiny_dir))
    save_custom_voice(base.model, str(tiny_dir), voices, out, False, GenerationPreset())
    exported = qwen_tts.Qwen3TTSModel.from_pretrained(str(out))

    def call(name: str, text: str, max_frames: int):
        return lambda: exported.generate_custom_voice(text=text, speaker=name, max_new_tokens=max_frames, **GREEDY)

    talker = exported.model.talker
    return [trace_generate(talker, codes_of(exported, call(name, text, frames)))
            for name, text, frames in zip(voices, TEXTS, MAX_FRAMES, strict=True)]  # fmt: skip


@pytest.fixture(scope="module")
def speakers_generated(tiny_model, tiny_dir, tmp_path_factory):
    """Three speakers with orthogonal x-vectors, exported and spoken. (The espeak-ng voices of the prepared
    three-speaker corpus have x-vectors of cosine 0.98 on the tiny encoder: a swapped speaker would nearly pass.)"""
    dim = tiny_model.model.config.talker_config.hidden_size
    voices = dict(zip(SPEAKERS, far_apart_xvectors(len(SPEAKERS), dim, seed=3), strict=True))
    return voices, _export_and_speak(tiny_dir, voices, tmp_path_factory.mktemp("custom_voice"))


def _speaker_batch_xvectors(voices) -> torch.Tensor:
    items = [Item(TEXTS[i], None, speaker=name) for i, name in enumerate(voices)]
    return Collate(None, voices).xvectors(items)  # (3, D): what training puts in each utterance's speaker slot


@pytest.mark.parametrize("which", [(0,), (1,), (2,), (0, 1, 2)], ids=["ann", "bob", "cleo", "b3-mixed"])
def test_the_step_is_fed_what_generate_custom_voice_was_for_every_speaker(tiny_model, speakers_generated, which):
    voices, traces = speakers_generated
    assert len({len(t.codes) for t in traces}) == len(traces)  # distinct lengths: the mixed batch is really padded
    xvectors = _speaker_batch_xvectors(voices)
    assert cosines(xvectors).abs().max() < 1e-5  # far apart: a wrong speaker cannot pass for the right one
    assert_same(_agreements(tiny_model, xvectors, traces, which), f"speakers {which}")


def test_another_speakers_x_vector_is_a_different_input(tiny_model, speakers_generated):
    """The control: each utterance with another speaker's x-vector differs by 1e-2 or more."""
    voices, traces = speakers_generated
    xvectors = _speaker_batch_xvectors(voices)[[1, 2, 0]]
    assert_different(_agreements(tiny_model, xvectors, traces, (0, 1, 2)), "another speaker's x-vector")


def test_argmax_alone_is_a_weak_witness(tiny_model, custom_voice, custom_voice_traces, prepared_speakers, tiny_dir,
                                        tmp_path, capsys):  # fmt: skip
    """The audit's figures (printed with -rP, copied into docs/correctness.md): the controls above reproduce most
    generated codes, so a proof by argmax alone lets them pass; their embeddings and logits differ by 1e-2 or more.
    With the espeak-ng voices of the prepared corpus (x-vectors of cosine 0.98) a swapped speaker is close to the
    right one, which is why the speaker proofs use orthogonal x-vectors."""
    wrong_tag = combined(_agreements(custom_voice, _voice(custom_voice), custom_voice_traces["English"], (0, 1, 2)))
    _, voices = load_voices(prepared_speakers)
    espeak_cosine = float(cosines(torch.stack(list(voices.values()))).min())
    traces = _export_and_speak(tiny_dir, voices, tmp_path)
    swapped = combined(_agreements(tiny_model, _speaker_batch_xvectors(voices)[[1, 2, 0]], traces, (0, 1, 2)))
    with capsys.disabled():
        print(f"\nexplicit language laid out untagged: {wrong_tag.summary()}")
        print(f"espeak-ng voices (x-vector cosine >= {espeak_cosine:.3f}), speakers swapped: {swapped.summary()}")
    assert wrong_tag.group0_matches >= 0.8 * wrong_tag.frames  # argmax would let most of it through
    assert wrong_tag.talker_logits >= DIFFERENT and wrong_tag.lengths[0] != wrong_tag.lengths[1]
    assert espeak_cosine > 0.9 and swapped.group0_matches >= 0.8 * swapped.frames
