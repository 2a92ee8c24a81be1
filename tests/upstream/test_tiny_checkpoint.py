"""The tiny checkpoint: official layout, loads through the official API, deterministic, atomic, idempotent."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from qwen_tts_lit.upstream import tiny

OFFICIAL_FILES = (
    "config.json",
    "model.safetensors",
    "generation_config.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "speech_tokenizer/config.json",
    "speech_tokenizer/model.safetensors",
    "speech_tokenizer/preprocessor_config.json",
)


def test_official_layout(tiny_dir: Path):
    for name in OFFICIAL_FILES:
        assert (tiny_dir / name).is_file(), name
    config = json.loads((tiny_dir / "config.json").read_text())
    assert config["tokenizer_type"] == "qwen3_tts_tokenizer_12hz"
    assert "model_type" not in config["speaker_encoder_config"]  # the reload bug, cleaned


def test_loads_through_official_api_and_speaks(tiny_model):
    assert tiny_model.model.tts_model_type == "base"
    talker = tiny_model.model.talker.config
    assert talker.text_hidden_size != talker.hidden_size  # text_projection is a real projection, as on 0.6B
    reference = (np.random.default_rng(0).standard_normal(24000).astype(np.float32) * 0.1, 24000)
    torch.manual_seed(0)
    wavs, sample_rate = tiny_model.generate_voice_clone(
        text="Hello there.", language="english", ref_audio=reference, x_vector_only_mode=True, max_new_tokens=8
    )
    assert sample_rate == 24000
    assert len(wavs) == 1 and wavs[0].ndim == 1 and wavs[0].size > 0
    assert np.isfinite(wavs[0]).all()


def test_prompt_tokenizes_like_upstream_slices_it(tiny_model):
    tokenizer = tiny_model.processor.tokenizer
    ids = tokenizer("<|im_start|>assistant\nHello there.<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
    assert [tokenizer.decode([i]) for i in ids[:3]] == ["<|im_start|>", "assistant", "\n"]
    assert [tokenizer.decode([i]) for i in ids[-5:]] == ["<|im_end|>", "\n", "<|im_start|>", "assistant", "\n"]
    assert ids[:3] == [1, ids[1], ids[2]] and max(ids) < tiny.TEXT_VOCAB_SIZE


def test_speech_tokenizer_codes_vary(tiny_model):
    rng = np.random.default_rng(1)
    codes = tiny_model.model.speech_tokenizer.encode(rng.standard_normal(24000).astype(np.float32) * 0.1, sr=24000)
    frames = codes.audio_codes[0]
    assert tuple(frames.shape) == (13, 16)  # 1 s at 12.5 Hz, 16 code groups
    assert len(torch.unique(frames)) > 16  # randomised codebooks: not all zero
    assert int(frames.max()) < 2048


def test_two_builds_are_byte_identical(tiny_dir: Path, tmp_path: Path):
    second = tmp_path / "again"
    result = subprocess.run(
        [sys.executable, "-m", "qwen_tts_lit", "make-tiny", str(second)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    for name in ("model.safetensors", "speech_tokenizer/model.safetensors", "tokenizer.json", "config.json"):
        assert (second / name).read_bytes() == (tiny_dir / name).read_bytes(), name


def test_building_twice_is_a_no_op(tiny_dir: Path):
    before = {p: p.stat().st_mtime_ns for p in tiny_dir.rglob("*")}
    assert tiny.make_tiny(tiny_dir) == tiny_dir
    assert {p: p.stat().st_mtime_ns for p in tiny_dir.rglob("*")} == before


def test_interrupted_build_leaves_nothing(tmp_path: Path, monkeypatch):
    def crash_midway(target: Path, kind: str) -> None:
        (target / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(tiny, "_write_checkpoint", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        tiny.make_tiny(tmp_path / "ckpt")
    assert [p.name for p in tmp_path.iterdir()] == [".ckpt.lock"]  # the build lock's (empty) file; no partial build


def test_refuses_a_foreign_non_empty_dir(tmp_path: Path):
    (tmp_path / "precious.txt").write_text("user data")
    result = subprocess.run(
        [sys.executable, "-m", "qwen_tts_lit", "make-tiny", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert str(tmp_path) in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "user data"


# ---------------------------------------------------------------- the custom_voice and voice_design kinds

GREEDY = dict(do_sample=False, subtalker_dosample=False, repetition_penalty=1.0)


def test_custom_voice_kind_is_the_released_layout(tiny_custom_voice_dir: Path, tiny_custom_voice, tiny_model):
    """As the released CustomVoice config: tts_model_type custom_voice, named presets in talker_config.spk_id, every
    preset in spk_is_dialect (False or its dialect's codec_language_id key), no speaker encoder (config or weights);
    the speech tokenizer is the base's byte for byte (one release), the talker a model of its own."""
    config = json.loads((tiny_custom_voice_dir / "config.json").read_text())
    talker = config["talker_config"]
    assert config["tts_model_type"] == "custom_voice"
    assert talker["spk_id"] == {"vivian": 3065, "ryan": 3061, "dylan": 2878}
    assert talker["spk_is_dialect"] == {"vivian": False, "ryan": False, "dylan": "beijing_dialect"}
    assert talker["codec_language_id"]["beijing_dialect"] == 2074
    assert tiny_custom_voice.model.speaker_encoder is None
    assert tiny_custom_voice.get_supported_speakers() == ["dylan", "ryan", "vivian"]
    assert "beijing_dialect" not in tiny_custom_voice.get_supported_languages()  # upstream hides dialects
    base_tokenizer = tiny_model.model.speech_tokenizer.model.state_dict()
    own = tiny_custom_voice.model.speech_tokenizer.model.state_dict()
    assert base_tokenizer.keys() == own.keys() and all(torch.equal(own[k], base_tokenizer[k]) for k in own)
    layer = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(
        tiny_custom_voice.model.talker.state_dict()[layer], tiny_model.model.talker.state_dict()[layer]
    )
    assert (
        tiny.is_finished_tiny(tiny_custom_voice_dir, "custom_voice")
        and tiny.tiny_kind_of(tiny_custom_voice_dir) == "custom_voice"
    )


def test_custom_voice_kind_speaks_presets_with_instructions(tiny_custom_voice):
    """The official call, batched: a dialect preset and a plain one, with and without an instruction and a language."""
    wavs, rate = tiny_custom_voice.generate_custom_voice(
        text=["Hello there.", "Call Stella."], speaker=["Dylan", "ryan"], language=["auto", "English"],
        instruct=["Speak slowly and sadly.", ""], max_new_tokens=6, **GREEDY,
    )  # fmt: skip
    assert rate == 24000 and len(wavs) == 2 and all(w.size > 0 and np.isfinite(w).all() for w in wavs)
    with pytest.raises(ValueError, match="does not support generate_voice_clone"):
        tiny_custom_voice.generate_voice_clone(text="Hi.", ref_audio=(np.zeros(24000, np.float32), 24000),
                                               x_vector_only_mode=True)  # fmt: skip


def test_voice_design_kind_is_built_loaded_and_spoken(tmp_path: Path):
    """make-tiny --kind voice_design: no speakers, no speaker encoder; generate_voice_design speaks; a second build
    into the same folder is a no-op and a folder of another kind is refused."""
    from qwen_tts_lit import cli

    folder = tmp_path / "vd"
    assert cli.main(["make-tiny", str(folder), "--kind", "voice_design"]) == 0  # in process: no interpreter start
    config = json.loads((folder / "config.json").read_text())
    assert config["tts_model_type"] == "voice_design" and config["talker_config"]["spk_id"] == {}
    assert tiny.make_tiny(folder, "voice_design") == folder
    with pytest.raises(tiny.TinyDirError, match="custom_voice"):
        tiny.make_tiny(folder, "custom_voice")
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    model = import_qwen_tts().Qwen3TTSModel.from_pretrained(str(folder))
    assert model.model.speaker_encoder is None
    wavs, _ = model.generate_voice_design(
        text="Hello there.", instruct="A deep, calm voice.", max_new_tokens=5, **GREEDY
    )
    assert wavs[0].size > 0


def test_each_kind_has_its_own_recipe_and_cache_folder():
    """The base's fingerprint is the one of earlier versions (its caches stay valid); the other kinds differ."""
    prints = {kind: tiny.recipe_fingerprint(kind) for kind in tiny.TINY_KINDS}
    assert len(set(prints.values())) == 3
    assert tiny.default_tiny_dir("base").name == f"tiny-{prints['base']}"
    assert tiny.default_tiny_dir("custom_voice").name == f"tiny-custom_voice-{prints['custom_voice']}"
    with pytest.raises(ValueError, match="choose one of"):
        tiny.recipe_fingerprint("design")
