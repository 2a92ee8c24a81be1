"""prepare end to end on the tiny checkpoint: the demo corpus through the CLI, a killed run resumed byte-identically,
the three input formats, re-runs, --skip_bad, and what the x-vector and the codes are."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.prepare import DEMO_RAW, demo_rows, tone, tree_bytes, write_jsonl, write_wav
from safetensors import safe_open

from qwen_tts_lit import cli
from qwen_tts_lit.data.prepare import PrepareOptions, codec, prepare
from qwen_tts_lit.data.prepare.audio import FRAME_SAMPLES, block_db, pcm16_to_float

CONTRACT_KEYS = ["id", "text", "language", "audio", "codes", "num_frames", "duration_s", "speech_samples",
                 "source_audio", "source_line"]  # fmt: skip
# data/demo/README.md: which raw lines carry which dirt.
DEMO_DIRT = {
    "resampled": set(range(1, 49)),
    "sample_format": {2, 11, 14},
    "downmixed": {20},
    "trimmed": {3, 7, 11, 15, 19, 23, 27, 31, 35, 39, 43, 47},
    "tags": {4, 13, 22, 31, 40},
    "unicode": {37},
    "whitespace": {37},
}


def opts(input_: Path, output: Path, model: Path, **kwargs) -> PrepareOptions:
    return PrepareOptions(input_, output, str(model), progress=False, **kwargs)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def xvector(directory: Path) -> tuple[np.ndarray, dict]:
    with safe_open(str(directory / "speaker.safetensors"), "np") as handle:
        return handle.get_tensor("xvector"), handle.metadata()


@pytest.fixture(scope="module")
def demo_prepared(tiny_dir, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The whole shipped demo corpus, prepared through the CLI in a subprocess (as a user runs it)."""
    output = tmp_path_factory.mktemp("demo") / "prepared"
    command = [sys.executable, "-m", "qwen_tts_lit", "prepare", "--input", str(DEMO_RAW / "train_raw.jsonl")]
    command += ["--output", str(output), "--model", str(tiny_dir)]
    return output, subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_demo_corpus_end_to_end_through_the_cli(demo_prepared):
    output, result = demo_prepared
    assert result.returncode == 0, result.stderr
    assert result.stdout == (output / "report.txt").read_text() + f"{output}\n"
    train, val = read_jsonl(output / "train.jsonl"), read_jsonl(output / "val.jsonl")
    assert (len(train), len(val)) == (43, 5)
    assert len({entry["id"] for entry in train + val}) == 48
    for entry in train + val:
        assert list(entry) == CONTRACT_KEYS
        info = sf.info(str(output / entry["audio"]))
        assert (info.samplerate, info.channels, info.subtype, info.format) == (24000, 1, "PCM_16", "WAV")
        audio, _ = sf.read(str(output / entry["audio"]), dtype="int16")
        assert len(audio) == entry["num_frames"] * FRAME_SAMPLES and entry["duration_s"] == len(audio) / 24000
        codes = np.load(output / entry["codes"])
        assert codes.dtype == np.int64 and codes.shape == (entry["num_frames"], 16)
        assert codes.min() >= 0 and codes.max() < 2048
        assert entry["language"] == "english" and entry["source_audio"].startswith("wavs/utt_")
        loud = np.flatnonzero(block_db(pcm16_to_float(audio), 24000) > -45.0)
        assert loud[0] * 0.01 <= 0.11  # leading silence (and -60 dBFS noise) trimmed to the 0.1 s margin
        assert np.all(audio[-24000:] == 0)  # at least 1 s of appended digital silence
        assert len(audio) - entry["speech_samples"] >= 24000 and not audio[entry["speech_samples"] :].any()
        assert audio[: entry["speech_samples"]].any()  # the recording, before the silence
        assert len(audio) / 24000 - (loud[-1] + 1) * 0.01 <= 0.1 + 1.0 + 0.08 + 0.01
    texts = {entry["source_line"]: entry["text"] for entry in train + val}
    assert texts[4] == "My brother planted tomatoes by the fence."
    assert texts[13] == "A small dog barked at the cyclist."
    assert texts[22] == "We need more paper for the printer."
    assert texts[31] == "Our team finished the project early."
    assert texts[40] == "The bus stop is across the street."
    assert texts[37] == "Let's meet outside the caf\u00e9 at seven."
    report = json.loads((output / "report.json").read_text())
    assert report["fixes"] == {kind: len(lines) for kind, lines in sorted(DEMO_DIRT.items())}
    for kind, lines in DEMO_DIRT.items():
        assert {w["line"] for w in report["warnings"] if w["kind"] == kind} == lines, kind
    assert report["clips"] == {"train": 43, "val": 5, "dropped": 0} and report["dropped"] == []
    vector, metadata = xvector(output)
    assert vector.dtype == np.float32 and vector.shape == (64,)  # the tiny talker's hidden size
    assert metadata["source"] == "ref_audio:ref.wav"
    config = json.loads((output / "prepare_config.json").read_text())
    assert config["options"]["trailing_silence_s"] == 1.0 and config["speaker_dim"] == 64


def test_codes_are_what_the_speech_tokenizer_gives_for_the_written_audio(demo_prepared, tiny_model):
    output, _ = demo_prepared
    for entry in read_jsonl(output / "train.jsonl")[:3]:
        audio, rate = sf.read(str(output / entry["audio"]), dtype="float32")
        expected = tiny_model.model.speech_tokenizer.encode(audio, sr=rate).audio_codes[0].numpy()
        np.testing.assert_array_equal(np.load(output / entry["codes"]), expected)


def test_rerun_reuses_everything_and_changes_nothing(demo_prepared, tiny_dir):
    output, _ = demo_prepared
    before = tree_bytes(output)
    stamps = {p: p.stat().st_mtime_ns for p in output.rglob("*.*") if p.parent.name in ("audio", "codes")}
    prepare(opts(DEMO_RAW / "train_raw.jsonl", output, tiny_dir))
    assert tree_bytes(output) == before
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # not even rewritten


# The killed run: a real subprocess, SIGKILLed right after its Nth codes entry reached the cache.
KILLED_RUN = """
import os, signal, sys
from qwen_tts_lit.data.prepare import codec
put, calls = codec.CodeCache.put, [0]
def put_then_die(self, key, codes):
    put(self, key, codes)
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AFTER_PUTS"]):
        os.kill(os.getpid(), signal.SIGKILL)
codec.CodeCache.put = put_then_die
from qwen_tts_lit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_killed_run_resumes_to_byte_identical_output(tmp_path, tiny_dir):
    manifest = write_jsonl(tmp_path / "m.jsonl", demo_rows()[:10])
    killed, clean = tmp_path / "killed", tmp_path / "uninterrupted"
    args = ["prepare", "--input", str(manifest), "--output", str(killed), "--model", str(tiny_dir), "--batch_size", "2"]
    env = {**os.environ, "KILL_AFTER_PUTS": "3"}
    result = subprocess.run([sys.executable, "-c", KILLED_RUN, *args], env=env, capture_output=True, timeout=300)
    assert result.returncode == -9, result.stderr.decode()
    assert not (killed / "train.jsonl").exists()  # no manifest: DIR does not look finished
    cached = {p: p.stat().st_mtime_ns for p in (killed / ".cache" / "codes").glob("*.npy")}
    assert len(cached) == 3
    prepare(opts(manifest, killed, tiny_dir, batch_size=2))
    prepare(opts(manifest, clean, tiny_dir, batch_size=2))
    assert tree_bytes(killed) == tree_bytes(clean)
    assert {p: p.stat().st_mtime_ns for p in cached} == cached  # resumed: finished clips were not encoded again


def test_ctrl_c_then_rerun_gives_the_same_output(tmp_path, tiny_dir, monkeypatch, capsys):
    manifest = write_jsonl(tmp_path / "m.jsonl", demo_rows()[10:16])
    put, calls = codec.CodeCache.put, []

    def put_then_interrupt(self, key, codes):
        put(self, key, codes)
        calls.append(key)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(codec.CodeCache, "put", put_then_interrupt)
    args = ["prepare", "--input", str(manifest), "--model", str(tiny_dir), "--batch_size", "2", "--progress", "false"]
    assert cli.main([*args, "--output", str(tmp_path / "a")]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "prepare: interrupted; run the same command again to resume (finished clips are reused, the output is the same)"
    )
    monkeypatch.setattr(codec.CodeCache, "put", put)
    assert cli.main([*args, "--output", str(tmp_path / "a")]) == 0
    assert cli.main([*args, "--output", str(tmp_path / "b")]) == 0
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


def test_three_input_formats_give_the_same_dataset(tmp_path, tiny_dir):
    rows = [demo_rows()[i] for i in (0, 2, 3, 10, 19, 36)]  # 16 kHz, flac, tag, PCM_U8, stereo, unicode
    jsonl, folder, lj = tmp_path / "jsonl", tmp_path / "folder", tmp_path / "lj"
    copies = (jsonl / "clips", folder, lj / "wavs")
    for directory in copies:
        directory.mkdir(parents=True)
    for row in rows:
        source = Path(row["audio"])
        for directory in copies:
            shutil.copy(source, directory / source.name)
        (folder / f"{source.stem}.txt").write_text(row["text"] + "\n")
    manifest = [{"audio": f"clips/{Path(row['audio']).name}", "text": row["text"]} for row in rows]
    write_jsonl(jsonl / "manifest.jsonl", manifest)
    lines = [f"{Path(row['audio']).stem}|{row['text']}|normalised text is ignored" for row in rows]
    (lj / "metadata.csv").write_text("\n".join(lines) + "\n")

    outputs = {}
    for name, source in (("jsonl", jsonl / "manifest.jsonl"), ("folder", folder), ("ljspeech", lj)):
        outputs[name] = prepare(opts(source, tmp_path / f"out_{name}", tiny_dir, val_fraction=0.2))

    def comparable(directory: Path) -> dict:
        files = {k: v for k, v in tree_bytes(directory).items() if k.startswith(("audio/", "codes/", "speaker."))}
        for split in ("train", "val"):
            entries = read_jsonl(directory / f"{split}.jsonl")
            files[split] = [{k: v for k, v in e.items() if not k.startswith("source_")} for e in entries]
        files["fixes"] = json.loads((directory / "report.json").read_text())["fixes"]
        return files

    reference = comparable(outputs["jsonl"])
    assert len(reference["train"]) == 5 and len(reference["val"]) == 1
    assert reference["train"][0]["language"] == "auto"
    assert comparable(outputs["folder"]) == reference
    assert comparable(outputs["ljspeech"]) == reference
    assert xvector(outputs["ljspeech"])[1]["source"] == "mean_of_train"


def test_skip_bad_drops_and_lists_bad_rows(tmp_path, tiny_dir):
    good = demo_rows()[:3]
    bad = [{"audio": "missing.wav", "text": "Gone."}, '{"audio": ', {**demo_rows()[3], "text": "<laugh>"}]
    manifest = write_jsonl(tmp_path / "m.jsonl", [good[0], bad[0], good[1], bad[1], bad[2], good[2]])
    output = prepare(opts(manifest, tmp_path / "out", tiny_dir, skip_bad=True))
    entries = read_jsonl(output / "train.jsonl") + read_jsonl(output / "val.jsonl")
    assert sorted(e["source_line"] for e in entries) == [1, 3, 6]
    report = json.loads((output / "report.json").read_text())
    assert [(d["line"], d["field"]) for d in report["dropped"]] == [(2, "audio"), (4, None), (5, "text")]
    assert report["clips"]["dropped"] == 3
    assert "Dropped: 3 row(s)" in (output / "report.txt").read_text()


def test_rerun_with_other_clips_leaves_exactly_the_new_ones(tmp_path, tiny_dir):
    output = tmp_path / "out"
    prepare(opts(write_jsonl(tmp_path / "a.jsonl", demo_rows()[:4]), output, tiny_dir))
    prepare(opts(write_jsonl(tmp_path / "b.jsonl", demo_rows()[4:7]), output, tiny_dir))
    assert sorted(p.name for p in (output / "audio").iterdir()) == ["utt_005.wav", "utt_006.wav", "utt_007.wav"]
    assert sorted(p.name for p in (output / "codes").iterdir()) == ["utt_005.npy", "utt_006.npy", "utt_007.npy"]
    assert len(list((output / ".cache" / "codes").iterdir())) == 7  # the cache keeps the first run's codes


def test_xvector_is_the_speaker_encoder_output(tmp_path, tiny_dir, tiny_model):
    rows = [{"audio": str(write_wav(tmp_path / f"t{f}.wav", tone(1.5, freq=f))), "text": "A tone."} for f in (150, 300)]
    manifest = write_jsonl(tmp_path / "m.jsonl", rows)
    reference = write_wav(tmp_path / "ref.wav", tone(2.0, freq=200, db=-6.0))  # loud throughout: nothing trimmed
    output = prepare(opts(manifest, tmp_path / "ref_out", tiny_dir, ref_audio=reference))
    vector, metadata = xvector(output)
    ref_audio, _ = sf.read(str(reference), dtype="float32")
    expected = tiny_model.model.extract_speaker_embedding(ref_audio, 24000).numpy()
    np.testing.assert_allclose(vector, expected, rtol=1e-5, atol=1e-6)
    assert metadata["source"] == f"ref_audio:{reference}"

    output = prepare(opts(manifest, tmp_path / "mean_out", tiny_dir, val_fraction=0.0))
    vector, metadata = xvector(output)
    clips = [sf.read(row["audio"], dtype="float32")[0] for row in rows]
    expected = np.mean([tiny_model.model.extract_speaker_embedding(c, 24000).numpy() for c in clips], axis=0)
    np.testing.assert_allclose(vector, expected, rtol=1e-5, atol=1e-6)
    assert metadata["source"] == "mean_of_train"


def test_model_tiny_means_the_cached_tiny_checkpoint(tmp_path, monkeypatch, capsys):
    """`--model tiny` builds (or reuses) the tiny checkpoint in the cache instead of asking a hub for "tiny"."""
    monkeypatch.setenv("QWEN_TTS_LIT_CACHE", str(tmp_path / "cache"))
    manifest = write_jsonl(tmp_path / "raw.jsonl", demo_rows()[:4])
    assert cli.main(["prepare", "--input", str(manifest), "--output", str(tmp_path / "out"), "--model", "tiny",
                     "--progress", "false", "--val_fraction", "0.25"]) == 0  # fmt: skip
    assert list((tmp_path / "cache").glob("tiny-*/speech_tokenizer/config.json"))
    assert len(read_jsonl(tmp_path / "out" / "train.jsonl")) + len(read_jsonl(tmp_path / "out" / "val.jsonl")) == 4
