"""``export`` from the demo run: official custom_voice round trip, PEFT adapter round trip, merge numerics, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch
from helpers.runs import copy_run, main
from safetensors.torch import load_file

from qwen_tts_lit.synthesis.presets import GREEDY
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

EPOCH, SCALE = 1, 0.5
TEXTS = ["The morning train was late.", "She left her umbrella on the bus."]


pytestmark = pytest.mark.usefixtures("run_cache")  # the runs' base model "tiny" resolves to the fit's cache


@pytest.fixture(scope="module")
def run(demo_run_copy: Path) -> Path:
    return demo_run_copy


@pytest.fixture(scope="module")
def custom_voice(run: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "custom_voice"
    assert (
        main("export", "--run", run, "--epoch", EPOCH, "--lora_scale", SCALE, "--output", out, "--speaker_name", "demo")
        == 0
    )
    return out


@pytest.fixture(scope="module")
def adapter(run: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "adapter"
    args = ("--epoch", EPOCH, "--lora_scale", SCALE, "--output", out, "--speaker_name", "demo", "--format", "adapter")
    assert main("export", "--run", run, *args) == 0
    return out


@pytest.fixture(scope="module")
def loaded(run: Path):
    """The run's epoch as evaluation sees it: base + LoRA (unmerged) + x-vector."""
    from qwen_tts_lit.runs.weights import load_run

    return load_run(run, EPOCH)


def _official(path: Path):
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    return import_qwen_tts().Qwen3TTSModel.from_pretrained(str(path))


# ------------------------------------------------------------------ custom_voice


def test_custom_voice_has_the_official_layout(custom_voice: Path, loaded):
    config = json.loads((custom_voice / "config.json").read_text())
    assert config["tts_model_type"] == "custom_voice"
    assert config["talker_config"]["spk_id"] == {"demo": 3000}
    assert config["talker_config"]["spk_is_dialect"] == {"demo": False}
    assert "model_type" not in config["speaker_encoder_config"]  # upstream's reload bug
    weights = load_file(str(custom_voice / "model.safetensors"))
    assert not any(k.startswith("speaker_encoder.") for k in weights)  # as upstream's export: not resumable
    assert torch.equal(weights["talker.model.codec_embedding.weight"][3000], loaded.xvector)
    generation = json.loads((custom_voice / "generation_config.json").read_text())
    assert (generation["temperature"], generation["top_p"], generation["top_k"]) == (0.8, 0.85, 30)
    assert generation["repetition_penalty"] == 1.05 and generation["max_new_tokens"] == 2048
    for name in ("speech_tokenizer/config.json", "tokenizer_config.json", "README.md", "qwen_tts_lit.json"):
        assert (custom_voice / name).is_file(), name
    assert not (custom_voice / "qwen_tts_lit_tiny.json").exists()  # the export is not a tiny build
    assert not list(custom_voice.parent.glob(".custom_voice.*"))  # no staging folder left behind


def test_custom_voice_loads_and_speaks_with_the_official_api(custom_voice: Path):
    tts = _official(custom_voice)
    assert tts.model.tts_model_type == "custom_voice" and tts.model.speaker_encoder is None
    assert tts.get_supported_speakers() == ["demo"]
    torch.manual_seed(0)
    wavs, rate = tts.generate_custom_voice(text="Hello there.", speaker="Demo", max_new_tokens=5)
    assert rate == 24000 and len(wavs) == 1 and wavs[0].dtype.name == "float32" and 0 < len(wavs[0]) <= 4 * 1920


def test_merged_at_scale_equals_unmerged_with_scale(custom_voice: Path, loaded):
    from qwen_tts_lit.model.lora import adapters_at_scale

    merged = _official(custom_voice).model
    x = torch.randn(1, 12, merged.talker.config.hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want_hidden = merged.talker.model(inputs_embeds=x).last_hidden_state
        with adapters_at_scale(loaded.peft_model, SCALE):
            got_hidden = loaded.tts.model.talker.model(inputs_embeds=x).last_hidden_state
        at_one = loaded.tts.model.talker.model(inputs_embeds=x).last_hidden_state
    torch.testing.assert_close(got_hidden, want_hidden, rtol=1e-5, atol=1e-5)
    assert (at_one - want_hidden).abs().max() > 1e-3  # the scale matters: merged at 1.0 would fail above
    torch.testing.assert_close(
        merged.talker.codec_head(want_hidden), loaded.tts.model.talker.codec_head(got_hidden), rtol=1e-5, atol=1e-5
    )


def test_custom_voice_speaks_like_the_run(custom_voice: Path, loaded):
    """Speaker row 3000 + merged weights == x-vector prompt + adapters at the scale (greedy, same frames)."""
    exported = Synthesizer(_official(custom_voice), Voice(speaker="demo"), preset=GREEDY)
    run = Synthesizer(loaded.tts, Voice(xvector=loaded.xvector), preset=GREEDY)
    a = exported.synthesize(TEXTS, max_new_tokens=6)
    b = run.synthesize(TEXTS, lora_scale=SCALE, max_new_tokens=6)
    assert [u.codes.tolist() for u in a] == [u.codes.tolist() for u in b]


def test_model_card_names_base_epoch_scale_data_and_command(custom_voice: Path, run: Path):
    card = (custom_voice / "README.md").read_text()
    for needle in ("`tiny`", "| epoch | 1 |", "0.5 (merged into the weights)", "min train", 'speaker="demo"'):
        assert needle in card, needle
    assert f"--run {run} --epoch 1 --lora_scale 0.5" in card
    meta = json.loads((custom_voice / "qwen_tts_lit.json").read_text())
    assert meta["format"] == "custom_voice" and meta["epoch"] == 1 and meta["lora_scale"] == 0.5
    assert meta["data_minutes"]["train"] > 0  # found the demo's prepared report.json
    assert meta["language_tag"] == "off" and meta["trained_prefixes"] == ["untagged"]  # the demo trains untagged
    assert "| language tag in training | off (trained calls: language omitted) |" in card
    assert 'speaker="demo")  # language omitted (auto)' in card and "language=" not in card.split("## Use")[1]


def _card_code(card: str) -> str:
    return card.split("```python\n", 1)[1].split("```", 1)[0]


def test_model_card_snippets_run_as_written(custom_voice: Path, adapter: Path, tiny_dir: Path, tmp_path: Path):
    """Each card's official-API snippet, rendered for language_tag mixed (both calls users make), runs in a fresh
    interpreter of this environment (where ``from qwen_tts import ...`` alone fails: no loadable torchaudio).
    Substituted only: the folders, the demo's base "tiny" by its folder, a 3-frame cap, the output path."""
    from qwen_tts_lit.export.card import model_card

    scripts = []
    for folder in (custom_voice, adapter):
        meta = json.loads((folder / "qwen_tts_lit.json").read_text())
        meta.update(language_tag="mixed", trained_prefixes=["untagged", "tagged"])
        code = _card_code(model_card(meta))
        assert code.count("generate_") == 2 and 'language="English"' in code
        assert folder is custom_voice or code.count("non_streaming_mode=True") == 2
        code = code.replace("THIS_FOLDER", str(folder)).replace('"tiny"', repr(str(tiny_dir)))
        code = code.replace('text="Hello there."', 'text="Hello there.", max_new_tokens=3')
        scripts.append(code.replace('"out.wav"', repr(str(tmp_path / f"{folder.name}.wav"))))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", "\n".join(scripts)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sf.info(str(tmp_path / "custom_voice.wav")).samplerate == 24000
    assert sf.info(str(tmp_path / "adapter.wav")).samplerate == 24000


def test_adapter_card_says_runtimes_need_it_merged_and_its_merge_command_runs(adapter: Path, custom_voice: Path):
    """The card's merge command, run as written, writes the custom_voice checkpoint of the same epoch and scale."""
    import shlex

    card = (adapter / "README.md").read_text()
    assert "No serving runtime" in card and "loads a PEFT adapter" in card
    command = card.split("loads a PEFT adapter", 1)[1].split("```\n", 1)[1].split("\n```", 1)[0]
    args = shlex.split(command)
    assert args[:4] == ["python", "-m", "qwen_tts_lit", "export"] and "--format custom_voice" in command
    assert main(*args[3:]) == 0
    merged = Path(args[args.index("--output") + 1])
    assert merged == Path(f"{adapter}_merged")
    ours, theirs = load_file(str(merged / "model.safetensors")), load_file(str(custom_voice / "model.safetensors"))
    # the same merge as the custom_voice export's
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_keep_speaker_encoder_keeps_it_and_it_reloads_as_base(run: Path, tmp_path: Path, loaded):
    out = tmp_path / "cv_keep"
    args = ("--epoch", 0, "--output", out, "--speaker_name", "demo", "--keep_speaker_encoder", "true")
    assert main("export", "--run", run, *args) == 0
    weights = load_file(str(out / "model.safetensors"))
    base = loaded.tts.model.speaker_encoder.state_dict()
    assert base and all(torch.equal(weights[f"speaker_encoder.{k}"], v) for k, v in base.items())
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    again = import_qwen_tts().Qwen3TTSModel.from_pretrained(str(out), tts_model_type="base")
    assert again.model.speaker_encoder is not None  # fine-tunable again (upstream #222)


# ------------------------------------------------------------------ adapter


def test_adapter_reloads_with_peft_and_reproduces_the_run_exactly(adapter: Path, loaded):
    from peft import PeftModel

    from qwen_tts_lit.upstream.loading import load_qwen3_tts

    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "tiny" and (adapter / "adapter_model.safetensors").is_file()
    meta = json.loads((adapter / "qwen_tts_lit.json").read_text())
    assert meta["format"] == "adapter" and meta["lora_scale"] == 0.5 and meta["base_model"] == "tiny"

    tts = load_qwen3_tts("tiny")
    PeftModel.from_pretrained(tts.model, str(adapter))
    xvector = load_file(str(adapter / "speaker.safetensors"))["xvector"]
    assert torch.equal(xvector, loaded.xvector)
    got = Synthesizer(tts, Voice(xvector=xvector)).synthesize(TEXTS, seeds=[5, 6], lora_scale=SCALE, max_new_tokens=6)
    want = Synthesizer(loaded.tts, Voice(xvector=loaded.xvector)).synthesize(
        TEXTS, seeds=[5, 6], lora_scale=SCALE, max_new_tokens=6
    )
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a.codes, b.codes) and (a.wav == b.wav).all()


# ------------------------------------------------------------------ defaults from best.json


def test_best_json_picks_epoch_scale_and_metrics(demo_run: Path, tmp_path: Path, capsys):
    best = {"epoch": 0, "lora_scale": 0.35, "metrics": {"wer": 0.25, "spk_sim": 0.8}, "rule": {}}
    run = copy_run(demo_run, tmp_path / "run", best=best)
    out = tmp_path / "out"
    assert main("export", "--run", run, "--output", out, "--speaker_name", "amy", "--format", "adapter") == 0
    meta = json.loads((out / "qwen_tts_lit.json").read_text())
    assert (meta["epoch"], meta["lora_scale"], meta["metrics"]) == (0, 0.35, best["metrics"])
    assert meta["metrics_source"] == "best.json" and "| wer | 0.25 |" in (out / "README.md").read_text()
    assert "epoch 0 from best.json" in capsys.readouterr().err


def test_demo_run_exports_by_best_json_then_speaks(demo_run: Path, tmp_path: Path, capsys):
    """The README path: a finished demo run (its EvalSuite wrote best.json) -> export -> synthesize -> wav."""
    best = json.loads((demo_run / "best.json").read_text())
    out = tmp_path / "voice"
    assert main("export", "--run", demo_run, "--output", out, "--speaker_name", "demo") == 0
    meta = json.loads((out / "qwen_tts_lit.json").read_text())
    assert (meta["epoch"], meta["lora_scale"]) == (best["epoch"], best["lora_scale"])
    assert meta["metrics"]["wer"] == best["metrics"]["wer"] and "Selection:" in (out / "README.md").read_text()
    wav = tmp_path / "hello.wav"
    args = ("--text", "Hello there. Bye.", "--max_new_tokens", 3, "--keep_runaway", "true", "--output", wav)
    assert main("synthesize", "--model", out, *args) == 0
    assert wav.is_file() and "from best.json" in capsys.readouterr().err


def test_export_opens_the_run_once(demo_run: Path, tmp_path: Path):
    """export reads each file of the run folder once and lists its checkpoints once: the run is opened once
    (runs/run.py) and passed on. The cell asked for is not the chosen one, so the rows are read for its metrics."""
    from helpers.reads import counting_reads

    run = Path(shutil.copytree(demo_run, tmp_path / "run"))
    epoch = 1 - json.loads((run / "best.json").read_text())["epoch"]
    args = ("--epoch", epoch, "--output", tmp_path / "out", "--speaker-name", "demo", "--format", "adapter")
    with counting_reads(run) as reads:
        assert main("export", "--run", run, *args) == 0
    assert dict(reads) == {
        ("list", "checkpoints"): 1,
        ("open", f"checkpoints/epoch={epoch:03d}.ckpt"): 1,
        ("open", "config.yaml"): 1,
        ("open", "best.json"): 1,
        ("open", "eval/rows.jsonl"): 1,
        ("open", "speaker.safetensors"): 1,
    }


def test_metrics_of_another_cell_come_from_the_rows(tmp_path: Path):
    from qwen_tts_lit.export.card import metrics_for
    from qwen_tts_lit.runs.choice import Choice
    from qwen_tts_lit.runs.run import Run

    rows = [
        {"epoch": 1, "lora_scale": 0.5, "wer": w, "spk_sim": 0.5, "rate_ratio": 1.0, "hit_max_tokens": h}
        for w, h in ((0.2, False), (0.4, True))
    ]
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    best = {"epoch": 0, "lora_scale": 0.5, "metrics": {"wer": 0.1}}
    (tmp_path / "best.json").write_text(json.dumps(best))
    run = Run(tmp_path, {})  # the records alone: no checkpoint is read
    metrics, source = metrics_for(run, Choice(1, 0.5))
    assert metrics["wer"] == pytest.approx(0.3) and metrics["eos_fail"] == 0.5 and metrics["n"] == 2
    assert source == "eval/rows.jsonl (2 utterances)"
    assert metrics_for(run, Choice(0, 0.5)) == ({"wer": 0.1}, "best.json")
    assert metrics_for(run, Choice(2, 0.5)) == ({}, None)


def test_full_finetune_run_exports_its_weights_and_has_no_adapter(run: Path, tmp_path: Path, capsys):
    """A full-SFT checkpoint holds talker tensors (keys tts.talker...): they land in the export; no adapter format."""
    full = copy_run(run, tmp_path / "full")
    path = full / "checkpoints" / "epoch=000.ckpt"
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    head = torch.randn(3072, 64, generator=torch.Generator().manual_seed(1))
    checkpoint["state_dict"] = {"tts.talker.codec_head.weight": head}
    checkpoint["qwen_tts_lit"]["finetune"] = checkpoint["hyper_parameters"]["finetune"] = "full"
    torch.save(checkpoint, path)
    out = tmp_path / "out"
    assert main("export", "--run", full, "--epoch", 0, "--output", out, "--speaker_name", "a") == 0
    assert torch.equal(load_file(str(out / "model.safetensors"))["talker.codec_head.weight"], head)
    args = ("--epoch", 0, "--output", tmp_path / "o2", "--speaker_name", "a")
    assert "has no adapter" in _fails(capsys, "--run", full, *args, "--format", "adapter")
    assert "no adapter strength" in _fails(capsys, "--run", full, *args, "--lora_scale", "0.5")


def test_data_minutes_look_where_the_datamodule_prepares():
    from qwen_tts_lit.data.datamodule import QwenTTSDataModule
    from qwen_tts_lit.data.dataset import prepared_cache_dir

    raw = str(Path(__file__).resolve().parents[2] / "data/demo/raw/train_raw.jsonl")
    assert prepared_cache_dir(raw, "tiny") == QwenTTSDataModule(raw=raw, model="tiny").root


# ------------------------------------------------------------------ bad input: exit 2, nothing written


def _fails(capsys, *args) -> str:
    assert main("export", *args) == 2
    return capsys.readouterr().err


def test_missing_run(tmp_path: Path, capsys):
    err = _fails(capsys, "--run", tmp_path / "nope", "--output", tmp_path / "o", "--speaker_name", "a", "--epoch", 0)
    assert "run folder not found" in err and not (tmp_path / "o").exists()


def test_epoch_not_saved_lists_the_saved_ones(run: Path, tmp_path: Path, capsys):
    err = _fails(capsys, "--run", run, "--epoch", 7, "--output", tmp_path / "o", "--speaker_name", "a")
    assert "epoch 7 was not saved (saved epochs: 0, 1)" in err and not (tmp_path / "o").exists()


def test_no_best_json_needs_an_epoch(run: Path, tmp_path: Path, capsys):
    err = _fails(capsys, "--run", run, "--output", tmp_path / "o", "--speaker_name", "a")
    assert "best.json: not found" in err and "--epoch N (saved epochs: 0, 1)" in err


@pytest.mark.parametrize("scale", ["-1", "2.5"])
def test_scale_out_of_range(run: Path, tmp_path: Path, capsys, scale: str):
    err = _fails(
        capsys, "--run", run, "--epoch", 0, "--lora_scale", scale, "--output", tmp_path / "o", "--speaker_name", "a"
    )
    assert f"--lora_scale {float(scale)}: must be in [0, 2]" in err


def test_force_replaces_only_an_earlier_export(run: Path, tmp_path: Path, capsys):
    """A user's own folder is never replaced, not even with --force (the message lists what is there); an earlier
    export is, with --force; the staging folders a killed export left are removed on the way."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    args = ("--run", run, "--epoch", 0, "--speaker_name", "a", "--format", "adapter")
    err = _fails(capsys, *args, "--output", mine, "--force", "true")
    assert f"--output {mine}: is not empty and is not an export (keep.txt); --force true replaces only" in err
    assert (mine / "keep.txt").read_text() == "mine"

    out = tmp_path / "o"
    out.mkdir()
    (out / "qwen_tts_lit.json").write_text("{}")  # an earlier export (its metadata file)
    (out / "adapter_model.safetensors").write_bytes(b"old")
    assert "holds an earlier export; pass --force true to replace it" in _fails(capsys, *args, "--output", out)
    killed = tmp_path / ".o.partial-999999999-abc"  # a killed export's staging folder (no such process)
    killed.mkdir()
    (killed / "model.safetensors").write_bytes(b"gigabytes at real size")
    assert main("export", *args, "--output", out, "--force", "true") == 0
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").read_bytes() != b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "o"]  # no staging, old copy or killed leftover


def test_force_never_replaces_the_run_itself(run: Path, capsys):
    err = _fails(capsys, "--run", run, "--epoch", 0, "--output", run.parent, "--speaker_name", "a", "--force", "true")
    assert "contains" in err and (run / "checkpoints").is_dir()


@pytest.mark.parametrize("name", ["", "Amy", "a b", "-x"])
def test_bad_speaker_name(run: Path, tmp_path: Path, capsys, name: str):
    assert "--speaker_name" in _fails(
        capsys, "--run", run, "--epoch", 0, "--output", tmp_path / "o", f"--speaker_name={name}"
    )


def test_keep_speaker_encoder_is_for_custom_voice_only(run: Path, tmp_path: Path, capsys):
    args = ("--epoch", 0, "--output", tmp_path / "o", "--speaker_name", "a", "--format", "adapter")
    assert "only for --format custom_voice" in _fails(capsys, "--run", run, *args, "--keep_speaker_encoder", "true")


def test_interrupted_export_leaves_nothing(run: Path, tmp_path: Path, monkeypatch):
    import qwen_tts_lit.export.pipeline as export_module

    def crash(loaded, out):
        (out / "adapter_config.json").write_text("{")  # half written
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "write_adapter", crash)
    out = tmp_path / "o"
    assert (
        main("export", "--run", run, "--epoch", 0, "--output", out, "--speaker_name", "a", "--format", "adapter") == 1
    )
    assert list(tmp_path.iterdir()) == []
