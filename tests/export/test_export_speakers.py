"""Export and synthesis of several speakers: a custom_voice with every speaker (rows 3000 + i) loads in the official
``Qwen3TTSModel`` and speaks each name with ``generate_custom_voice``; an adapter export carries every x-vector;
``synthesize --speaker`` picks one from a run, an adapter or a custom_voice; a missing or wrong name is exit 2.

The run is the demo run with its x-vector replaced by the three prepared espeak-ng speakers' (what a fit on them
stores: ``voices`` in each checkpoint and a speaker file of several voices): the adapters are real trained ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
import torch
from helpers.runs import copy_run, main
from safetensors.torch import load_file

from qwen_tts_lit.data.dataset import load_voices
from qwen_tts_lit.export_folder import EXPORT_CARD_FILE, EXPORT_METADATA_FILE
from qwen_tts_lit.runs.run import Run
from qwen_tts_lit.speaker_file import read_voices, write_speakers

EPOCH = 1
NAMES = ["ann", "bob", "cleo"]

pytestmark = pytest.mark.usefixtures("run_cache")


@pytest.fixture(scope="module")
def voices(prepared_speakers: Path) -> dict[str, torch.Tensor]:
    return load_voices(prepared_speakers)[1]


@pytest.fixture(scope="module")
def run(demo_run: Path, voices, tmp_path_factory) -> Path:
    target = copy_run(demo_run, tmp_path_factory.mktemp("speakers_run") / "version_0")
    for epoch in (0, 1):
        path = Run.open(target).checkpoint(epoch)
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        del checkpoint["xvector"]
        checkpoint["voices"] = voices
        torch.save(checkpoint, path)
    write_speakers(target, voices)
    return target


@pytest.fixture(scope="module")
def custom_voice(run: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "custom_voice"
    assert main("export", "--run", run, "--epoch", EPOCH, "--output", out) == 0
    return out


def test_every_speaker_is_in_the_custom_voice_and_spoken_by_the_official_api(custom_voice: Path, voices):
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    config = json.loads((custom_voice / "config.json").read_text())
    assert config["talker_config"]["spk_id"] == {"ann": 3000, "bob": 3001, "cleo": 3002}
    assert config["talker_config"]["spk_is_dialect"] == dict.fromkeys(NAMES, False)
    table = load_file(str(custom_voice / "model.safetensors"))["talker.model.codec_embedding.weight"]
    for i, name in enumerate(NAMES):
        assert torch.equal(table[3000 + i], voices[name])
    meta = json.loads((custom_voice / EXPORT_METADATA_FILE).read_text())
    tts = import_qwen_tts().Qwen3TTSModel.from_pretrained(str(custom_voice))
    assert sorted(tts.get_supported_speakers()) == NAMES
    for name in NAMES:  # the demo run's adapters speak alike for every x-vector: tests/model/test_step_consistency.py
        # proves, on the base model, that each speaker's row steers generate_custom_voice as the step expects
        wavs, rate = tts.generate_custom_voice(text="Hello there.", speaker=name.upper(), max_new_tokens=8,
                                              do_sample=False, subtalker_dosample=False)  # fmt: skip
        assert rate == 24000 and len(wavs[0]) > 0
    assert meta["speakers"] == {"ann": 3000, "bob": 3001, "cleo": 3002} and meta["speaker_name"] is None
    card = (custom_voice / EXPORT_CARD_FILE).read_text()
    assert "# ann, bob, cleo:" in card and 'speaker="ann")' in card and "(or any of ann, bob, cleo)" in card


def test_the_adapter_export_carries_every_x_vector_and_synthesize_picks_one(run: Path, voices, tmp_path: Path,
                                                                            capsys, custom_voice: Path):  # fmt: skip
    out = tmp_path / "adapter"
    assert main("export", "--run", run, "--epoch", EPOCH, "--output", out, "--format", "adapter") == 0
    single, found = read_voices(out)
    assert single is None and list(found) == NAMES and all(torch.equal(found[n], voices[n]) for n in NAMES)
    for model in (run, out, custom_voice):
        wav = tmp_path / f"{model.name}.wav"
        args = ("synthesize", "--model", model, "--text", "Hello there.", "--max_new_tokens", 8, "--retries", 0)
        args += ("--epoch", EPOCH) if model == run else ()
        assert main(*args, "--speaker", "bob", "--keep_runaway", "true", "--output", wav) == 0, capsys.readouterr().err
        assert sf.info(str(wav)).samplerate == 24000
        capsys.readouterr()
        assert main(*args, "--output", tmp_path / "none.wav") == 2  # several speakers: --speaker is needed
        assert "pick one with --speaker" in capsys.readouterr().err
        assert main(*args, "--speaker", "dan", "--output", tmp_path / "none.wav") == 2
        assert "dan" in capsys.readouterr().err


def test_speaker_name_is_refused_for_a_run_of_several(run: Path, tmp_path: Path, capsys):
    assert main("export", "--run", run, "--epoch", EPOCH, "--output", tmp_path / "o", "--speaker_name", "x") == 2
    assert "has speakers ann, bob, cleo" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_evaluate_rescores_each_speaker_and_chooses_by_the_worst(run: Path, prepared_speakers: Path):
    args = ("--epochs", EPOCH, "--scales", 1.0, "--heldout", prepared_speakers / "val.jsonl", "--num_utterances", 1)
    # DNSMOS off: the speakers' choice is what is tested; on, it would score the 3 real recordings again
    assert main("evaluate", "--run", run, *args, "--rule.speaker_aggregate", "worst", "--judges.dnsmos", "false") == 0
    rows = [json.loads(line) for line in (run / "eval" / "rows.jsonl").read_text().splitlines()]
    assert sorted(row["speaker"] for row in rows) == NAMES
    best = json.loads((run / "best.json").read_text())
    assert best["rule"]["speaker_aggregate"] == "worst" and sorted(best["metrics"]["by_speaker"]) == NAMES
