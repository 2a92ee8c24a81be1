"""A custom_voice export converted to qwentts.cpp's GGUF pair and spoken by the real CPU runtime
(``realtimetts-qwen-native-cpu``) in a child process: the speakers by name, greedy codes equal to the official
``generate_custom_voice``'s in all 16 groups, audio equal to the official decoder's on the same codes.

The export is the tiny base with two far-apart speakers written by the export's own writer; its speech tokenizer has
the released decoder widths (helpers/qwentts.py says why). ``export --format gguf`` itself runs on the demo run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers.qwentts import GREEDY, speak, write_wide_codec
from helpers.runs import main
from helpers.teacher_forcing import codes_of, far_apart_xvectors

from qwen_tts_lit.errors import UserError

SPEAKERS = ("ann", "bob")
TEXT = "The quick brown fox jumps over the lazy dog."  # no digits: the tiny BPE's pre-tokenizer equals Qwen2's here
FRAMES = 12
HOP = 1920  # 24 kHz samples per 12.5 Hz frame


def _custom_voice(tiny_dir: Path, out: Path) -> Path:
    from qwen_tts_lit.export.custom_voice import save_custom_voice
    from qwen_tts_lit.synthesis.presets import GenerationPreset
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    base = import_qwen_tts().Qwen3TTSModel.from_pretrained(str(tiny_dir))
    voices = dict(zip(SPEAKERS, far_apart_xvectors(len(SPEAKERS), 64, seed=5), strict=True))
    save_custom_voice(base.model, str(tiny_dir), voices, out, False, GenerationPreset())
    return out


@pytest.fixture(scope="module")
def export(tiny_dir: Path, tmp_path_factory) -> Path:
    """The tiny custom_voice export with the wide codec."""
    out = _custom_voice(tiny_dir, tmp_path_factory.mktemp("served") / "custom_voice")
    write_wide_codec(out / "speech_tokenizer")
    return out


@pytest.fixture(scope="module")
def served(export: Path, tmp_path_factory):
    from qwen_tts_lit.export.gguf import write_gguf_pair

    gguf_dir = tmp_path_factory.mktemp("gguf")
    talker, codec = write_gguf_pair(export, gguf_dir)
    requests = [dict(text=TEXT, speaker=name, max_new_tokens=FRAMES, **GREEDY) for name in SPEAKERS]
    return talker, codec, speak(talker, codec, requests, gguf_dir / "spoken")


@pytest.fixture(scope="module")
def official(export: Path):
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    return import_qwen_tts().Qwen3TTSModel.from_pretrained(str(export))


def test_the_runtime_loads_the_pair_and_speaks_each_speaker_by_name(served):
    talker, codec, result = served
    assert result["speakers"] == list(SPEAKERS)
    assert "speaker_encoder=absent" in result["stderr"] and "variant=custom_voice" in result["stderr"]
    for spoken in result["spoken"]:
        audio, frames = spoken["audio"], len(spoken["codes"])
        assert spoken["rate"] == 24000 and 1 <= frames <= FRAMES
        assert audio.shape == (frames * HOP,)  # the whole utterance, one hop per frame
        assert np.isfinite(audio).all() and np.sqrt(np.mean(audio**2)) > 1e-2  # not silent (peaks ~0.2)


def test_the_runtime_greedy_codes_equal_the_official_generate_custom_voice(served, official):
    """All 16 code groups of every frame. Upstream's generate hands the decoder one frame fewer than its
    max_new_tokens (the last step's codes); the runtime returns every step's."""
    _, _, result = served
    kwargs = dict(do_sample=False, subtalker_dosample=False, repetition_penalty=1.0, max_new_tokens=FRAMES)
    runtime = [torch.from_numpy(s["codes"]) for s in result["spoken"]]
    for name, theirs in zip(SPEAKERS, runtime, strict=True):
        ours = codes_of(official, lambda n=name: official.generate_custom_voice(text=TEXT, speaker=n, **kwargs))()
        assert len(ours) >= FRAMES - 1 and len(theirs) >= len(ours)
        assert torch.equal(theirs[: len(ours)], ours.cpu()), name
    assert not torch.equal(runtime[0], runtime[1])  # the control: the speaker row really steers the runtime


def test_the_runtime_audio_equals_the_official_decoder_on_the_same_codes(served, official):
    _, _, result = served
    for spoken in result["spoken"]:
        wavs, rate = official.model.speech_tokenizer.decode([{"audio_codes": torch.from_numpy(spoken["codes"])}])
        expected = np.asarray(wavs[0], dtype=np.float32)
        assert rate == spoken["rate"] and expected.shape == spoken["audio"].shape
        assert np.abs(spoken["audio"] - expected).max() < 1e-2 * np.abs(expected).max()
        assert np.corrcoef(spoken["audio"], expected)[0, 1] > 0.9999


def test_metadata_has_the_types_the_loader_reads(served, export: Path):
    """The loader aborts on a scalar of another type (gguf_get_val_u32 asserts UINT32); speakers keep their rows."""
    import gguf

    talker, codec, _ = served
    reader = gguf.GGUFReader(str(talker))
    fields = reader.fields
    types = {key: fields[key].types[0] for key in fields}
    assert types["qwen3-tts.talker.embedding_length"] == gguf.GGUFValueType.UINT32
    assert types["qwen3-tts.talker.rope.freq_base"] == gguf.GGUFValueType.FLOAT32
    assert types["qwen3-tts.talker.rope.mrope_interleaved"] == gguf.GGUFValueType.BOOL
    names = [bytes(fields["qwen3-tts.codec.speaker_names"].parts[i]).decode()
             for i in fields["qwen3-tts.codec.speaker_names"].data]  # fmt: skip
    ids = [int(fields["qwen3-tts.codec.speaker_ids"].parts[i][0]) for i in fields["qwen3-tts.codec.speaker_ids"].data]
    spk_id = json.loads((export / "config.json").read_text())["talker_config"]["spk_id"]
    assert dict(zip(names, ids, strict=True)) == spk_id == {"ann": 3000, "bob": 3001}
    assert {t.name for t in reader.tensors} >= {"talker.codec_embd.weight", "code_pred.lm_head.14.weight"}
    assert not any(t.name.startswith("spk_enc.") for t in reader.tensors)


def test_a_codec_the_runtime_would_abort_on_is_refused_before_writing(tiny_dir: Path, tmp_path: Path):
    """The tiny checkpoint's own codec (decoder_dim 32) loads in qwentts.cpp and then aborts the process at the
    first decode (measured): refused in one line, nothing written."""
    from qwen_tts_lit.export.gguf import write_gguf_pair

    source = _custom_voice(tiny_dir, tmp_path / "custom_voice")
    with pytest.raises(UserError, match=r"speech_tokenizer/config.json: decoder_config.decoder_dim 32: qwentts.cpp"):
        write_gguf_pair(source, tmp_path / "gguf")
    assert not (tmp_path / "gguf").exists()


def test_an_unknown_tensor_is_named(tmp_path: Path, export: Path):
    from safetensors.torch import load_file, save_file

    from qwen_tts_lit.export.gguf import write_talker

    folder = tmp_path / "odd"
    shutil.copytree(export, folder, ignore=shutil.ignore_patterns("speech_tokenizer"))
    state = load_file(str(folder / "model.safetensors"))
    state["talker.model.layers.0.mlp.extra_proj.weight"] = torch.zeros(2, 2)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(UserError, match=r"model.safetensors: tensor talker.model.layers.0.mlp.extra_proj.weight: not"):
        write_talker(folder, tmp_path / "talker.gguf")
    assert not list(tmp_path.glob("*.gguf")) and not list(tmp_path.glob(".*.tmp"))


@pytest.fixture(scope="module")
def wide_base(tiny_dir: Path, export: Path, tmp_path_factory) -> Path:
    """The tiny base with the wide codec: what ``--base_model`` points the demo run's export at."""
    base = tmp_path_factory.mktemp("wide_base") / "tiny"
    shutil.copytree(tiny_dir, base, ignore=shutil.ignore_patterns("speech_tokenizer"))
    shutil.copytree(export / "speech_tokenizer", base / "speech_tokenizer")
    return base


@pytest.mark.usefixtures("run_cache")
def test_export_format_gguf_writes_the_pair_the_runtime_speaks(
    demo_run_copy: Path, wide_base: Path, tmp_path: Path, capsys
):
    out = tmp_path / "served"
    args = ("--epoch", "1", "--lora_scale", "0.5", "--speaker_name", "demo", "--format", "gguf")
    assert main("export", "--run", demo_run_copy, "--output", out, "--base_model", wide_base, *args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "codec.gguf", "qwen_tts_lit.json", "talker.gguf"]
    meta = json.loads((out / "qwen_tts_lit.json").read_text())
    assert meta["format"] == "gguf" and meta["lora_scale_merged"] and meta["speaker_row"] == 3000
    card = (out / "README.md").read_text()
    assert 'speaker="demo"' in card and "qwen_tts_lit synthesize" not in card  # synthesize reads no GGUF
    # the card's snippet as written, but for a frame cap (the tiny talker never ends: 2048 frames by default)
    code = card.split("```python\n", 1)[1].split("```", 1)[0].replace("THIS_FOLDER", str(out))
    assert code.count("repetition_penalty=1.05)") == 1
    code = code.replace("repetition_penalty=1.05)", "repetition_penalty=1.05, max_new_tokens=3)")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True, timeout=300)
    assert sf.info(str(tmp_path / "out.wav")).frames == 3 * HOP
    request = dict(text=TEXT, speaker="demo", max_new_tokens=4, **GREEDY)
    result = speak(out / "talker.gguf", out / "codec.gguf", [request], tmp_path / "spoken")
    spoken = result["spoken"][0]
    assert result["speakers"] == ["demo"] and len(spoken["audio"]) == HOP * len(spoken["codes"]) > 0
    # synthesize speaks with the official classes: it names what a GGUF export is for instead
    assert main("synthesize", "--model", out, "--text", "Hello.", "--output", tmp_path / "x.wav") == 2
    assert "a GGUF export is spoken by qwentts.cpp" in capsys.readouterr().err


@pytest.mark.usefixtures("run_cache")
def test_export_format_gguf_refuses_the_tiny_codec_before_writing(demo_run_copy: Path, tmp_path: Path, capsys):
    out = tmp_path / "served"
    args = ("--epoch", "1", "--speaker_name", "demo", "--format", "gguf")
    assert main("export", "--run", demo_run_copy, "--output", out, *args) == 2
    assert "decoder_config.decoder_dim 32: qwentts.cpp" in capsys.readouterr().err
    assert not out.exists()
