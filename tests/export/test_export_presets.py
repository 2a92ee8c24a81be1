"""Export of a run fine-tuned from a CustomVoice checkpoint (docs/instructions.md): the custom_voice export keeps the
base's preset speakers (their codec rows byte for byte, their dialect flags) and adds the new voice in the first
free row, loads in the official ``Qwen3TTSModel`` and speaks a preset and the new voice with ``instruct=``; the card
shows ``instruct=``; the adapter export says which base it needs; ``synthesize --instruct`` / ``--speaker PRESET``.

The run is the demo run re-based on the tiny custom_voice checkpoint with ``--base_model tiny_custom_voice`` (the
same architecture: its adapters load there), so no second fit is needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
import torch
from helpers.runs import main
from safetensors.torch import load_file

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.export.custom_voice import speaker_rows
from qwen_tts_lit.export_folder import EXPORT_CARD_FILE, EXPORT_METADATA_FILE
from qwen_tts_lit.speaker_file import read_speaker

EPOCH = 1
GREEDY = dict(do_sample=False, subtalker_dosample=False, repetition_penalty=1.0, max_new_tokens=6)
PRESETS = {"vivian": 3065, "ryan": 3061, "dylan": 2878}

pytestmark = pytest.mark.usefixtures("run_cache")


@pytest.fixture(scope="module")
def exported(demo_run_copy: Path, tiny_custom_voice_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "cv"
    args = ("export", "--run", demo_run_copy, "--epoch", EPOCH, "--output", out, "--speaker_name", "demo")
    assert main(*args, "--base_model", "tiny_custom_voice") == 0
    return out


def test_presets_are_kept_beside_the_new_voice(exported: Path, demo_run_copy: Path, tiny_custom_voice):
    config = json.loads((exported / "config.json").read_text())
    talker = config["talker_config"]
    assert talker["spk_id"] == PRESETS | {"demo": 3000}
    assert talker["spk_is_dialect"] == {"vivian": False, "ryan": False, "dylan": "beijing_dialect", "demo": False}
    assert config["tts_model_type"] == "custom_voice" and "speaker_encoder.x" not in config
    table = load_file(str(exported / "model.safetensors"))["talker.model.codec_embedding.weight"]
    base = tiny_custom_voice.model.talker.get_input_embeddings().weight.detach()
    for row in PRESETS.values():
        assert torch.equal(table[row], base[row])  # LoRA never touches the codec table: presets byte for byte
    assert torch.equal(table[3000], read_speaker(demo_run_copy, "run").to(table.dtype))
    meta = json.loads((exported / EXPORT_METADATA_FILE).read_text())
    assert meta["presets"] == ["dylan", "ryan", "vivian"] and meta["speaker_row"] == 3000
    assert meta["base_model"] == "tiny_custom_voice" and meta["follows_instructions"] is True


def test_the_export_speaks_presets_and_the_new_voice_with_instructions(exported: Path):
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    tts = import_qwen_tts().Qwen3TTSModel.from_pretrained(str(exported))
    assert tts.get_supported_speakers() == ["demo", "dylan", "ryan", "vivian"]
    wavs, _ = tts.generate_custom_voice(text=["Hello there.", "Hi."], speaker=["demo", "Dylan"],
                                        instruct=["Speak slowly and sadly.", "Shout!"], **GREEDY)  # fmt: skip
    assert all(w.size for w in wavs)
    card = (exported / EXPORT_CARD_FILE).read_text()
    assert 'speaker="demo", instruct="Speak slowly and sadly.")' in card
    assert 'speaker="dylan", instruct="Speak slowly and sadly.")' in card
    assert "| preset speakers | dylan, ryan, vivian (kept in this checkpoint) |" in card


def test_synthesize_speaks_the_new_voice_by_default_and_a_preset_by_name(exported: Path, tmp_path: Path):
    from qwen_tts_lit.synthesis.long_form import synthesize_to_wav
    from qwen_tts_lit.synthesis.request import SynthesizeRequest

    for speaker in (None, "Vivian"):
        wav = tmp_path / f"{speaker}.wav"
        request = SynthesizeRequest(model=str(exported), output=wav, text="Hello there.", speaker=speaker,
                                    instruct="Speak slowly.", max_new_tokens=5, keep_runaway=True)  # fmt: skip
        _, results = synthesize_to_wav(request)
        assert results[0].kept.instruct == "Speak slowly." and sf.info(str(request.output)).samplerate == 24000


def test_a_new_voice_named_like_a_preset_is_refused(demo_run_copy: Path, tmp_path: Path, capsys):
    out = tmp_path / "clash"
    code = main("export", "--run", demo_run_copy, "--epoch", EPOCH, "--output", out, "--speaker_name", "vivian",
                "--base_model", "tiny_custom_voice")  # fmt: skip
    assert code == 2 and "speaker name(s) vivian: the base checkpoint has preset speakers" in capsys.readouterr().err
    assert not out.exists()


def test_new_voices_take_the_free_rows_around_the_presets():
    assert speaker_rows(["a", "b", "c"], 3072, {"p": 3001}) == {"a": 3000, "b": 3002, "c": 3003}
    assert speaker_rows(["a"], 3072) == {"a": 3000}
    with pytest.raises(UserError, match="2 speakers: the codec vocabulary \\(3002\\) has 1 free rows"):
        speaker_rows(["a", "b"], 3002, {"p": 3001})


def test_the_adapter_export_says_which_base_it_needs(demo_run_copy: Path, tmp_path: Path):
    out = tmp_path / "adapter"
    args = ("--format", "adapter", "--speaker_name", "demo", "--base_model", "tiny_custom_voice")
    assert main("export", "--run", demo_run_copy, "--epoch", EPOCH, "--output", out, *args) == 0
    meta = json.loads((out / EXPORT_METADATA_FILE).read_text())
    assert meta["base_model"] == "tiny_custom_voice" and meta["base_model_type"] == "custom_voice"
    card = (out / EXPORT_CARD_FILE).read_text()
    assert "This adapter needs its base checkpoint `tiny_custom_voice` (a CustomVoice checkpoint" in card
    assert '--instruct "Speak slowly and sadly."' in card and "--format custom_voice" in card


def test_a_run_speaks_a_preset_of_its_custom_voice_base_by_name(demo_run_copy: Path):
    """synthesize --model RUN --speaker PRESET: the run's adapters with the base's preset in the speaker slot; the
    run's own voice without --speaker; a name that is neither is refused."""
    from qwen_tts_lit.synthesis.voices import open_voice

    opened = open_voice(str(demo_run_copy), EPOCH, base_model="tiny_custom_voice", speaker="Vivian")
    assert opened.voice.speaker == "vivian" and opened.voice.xvector is None and opened.scalable
    own = open_voice(str(demo_run_copy), EPOCH, base_model="tiny_custom_voice")
    assert own.voice.speaker is None and torch.equal(own.voice.xvector, read_speaker(demo_run_copy, "run"))
    with pytest.raises(UserError, match="holds one voice"):
        open_voice(str(demo_run_copy), EPOCH, base_model="tiny_custom_voice", speaker="nobody")
