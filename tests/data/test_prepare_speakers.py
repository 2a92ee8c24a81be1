"""prepare with several speakers: a ``speaker`` field or a folder per speaker gives one x-vector per speaker, a
per-speaker split and report; bad names, collisions and speakers without enough clips are refused (exit 2, naming
the speaker); and an input of one speaker is written exactly as before (its manifests hashed on main)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.prepare import tone, write_jsonl, write_wav
from safetensors import safe_open

from qwen_tts_lit import cli
from qwen_tts_lit.data.prepare import PrepareOptions, prepare
from qwen_tts_lit.data.prepare.plan import check_input
from qwen_tts_lit.speaker_file import read_speaker, read_voices

# sha256 of the demo corpus's manifests: the bytes of commit 82ece14 (before several speakers existed) plus, since
# issue 20, each row's speech_samples (the recording's length before prepare's appended silence, which the
# voice-clone baseline cuts at); one speaker must still give these exact bytes. (Audio, codes and the x-vector were
# compared byte for byte by hand.)
DEMO_MANIFEST_SHA256 = {
    "train.jsonl": "a6fe1ca677e43b32f73e58d0fc0dae7e8b50af366eb0392f3ea1845184d28214",
    "val.jsonl": "dcb0297fcc06cd834b40a0f21fdbd060d41837621ad20f51f6b20127bfccc199",
}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_one_speaker_is_written_as_before(prepared_demo: Path):
    for name, digest in DEMO_MANIFEST_SHA256.items():
        assert hashlib.sha256((prepared_demo / name).read_bytes()).hexdigest() == digest, name
    with safe_open(str(prepared_demo / "speaker.safetensors"), "np") as handle:
        assert list(handle.keys()) == ["xvector"] and handle.metadata()["format"] == "qwen_tts_lit.speaker/v1"
    report = json.loads((prepared_demo / "report.json").read_text())
    config = json.loads((prepared_demo / "prepare_config.json").read_text())
    assert "speakers" not in report and "speakers" not in config


def test_several_speakers_are_prepared_per_speaker(prepared_speakers: Path):
    train, val = read_jsonl(prepared_speakers / "train.jsonl"), read_jsonl(prepared_speakers / "val.jsonl")
    assert {row["speaker"] for row in train} == {row["speaker"] for row in val} == {"ann", "bob", "cleo"}
    assert all(row["id"].startswith(row["speaker"] + "_") for row in train + val)
    assert sorted(row["speaker"] for row in val) == ["ann", "bob", "cleo"]  # 4 clips each: one held out per speaker
    single, voices = read_voices(prepared_speakers)
    assert single is None and list(voices) == ["ann", "bob", "cleo"]
    assert all(vector.shape == (64,) for vector in voices.values())
    assert len({tuple(vector.tolist()) for vector in voices.values()}) == 3
    with pytest.raises(Exception, match="holds 3 voices"):
        read_speaker(prepared_speakers)
    report = json.loads((prepared_speakers / "report.json").read_text())
    assert set(report["speakers"]) == {"ann", "bob", "cleo"}
    for section in report["speakers"].values():
        assert section["clips"] == {"train": 3, "val": 1} and section["xvector"] == "mean_of_train"
        assert 0 < section["minutes"]["speech"] < section["minutes"]["train"] + section["minutes"]["val"]
    total = sum(section["minutes"]["speech"] for section in report["speakers"].values())
    assert total == pytest.approx(report["minutes"]["speech"], abs=0.002)
    assert {w["kind"] for w in report["warnings"]} >= {"little_speaker_data"}  # 4 short clips: under 3 min each
    summary = (prepared_speakers / "report.txt").read_text()
    assert "  ann: " in summary and "3 train + 1 val clips" in summary
    assert json.loads((prepared_speakers / "prepare_config.json").read_text())["speakers"] == ["ann", "bob", "cleo"]


def test_a_folder_per_speaker_is_the_same_corpus(speaker_corpus: Path, tiny_dir: Path, tmp_path: Path):
    """The check phase only (nothing loads the weights): the same clips, ids and speakers as the manifest."""
    by_manifest = check_input(PrepareOptions(speaker_corpus, tmp_path / "a", str(tiny_dir), progress=False))
    by_folder = check_input(PrepareOptions(speaker_corpus.parent / "by_folder", tmp_path / "b", str(tiny_dir),
                                           progress=False))  # fmt: skip
    assert by_folder.input_format == "speaker_folders"

    def clips(plan):
        return sorted((c.id, c.speaker, c.text) for c in plan.clips)

    assert clips(by_folder) == clips(by_manifest) and by_folder.val_ids == by_manifest.val_ids
    assert sorted(by_folder.speaker_references) == ["ann", "bob", "cleo"]


def _rows(tmp_path: Path, speakers: list[str | None], **extra) -> Path:
    rows = []
    for i, name in enumerate(speakers):
        audio = write_wav(tmp_path / f"c{i}.wav", tone(1.0, freq=150 + 20 * i))
        rows.append({"audio": str(audio), "text": "A tone.", **({"speaker": name} if name else {}), **extra})
    return write_jsonl(tmp_path / "m.jsonl", rows)


@pytest.mark.parametrize(
    "speakers, extra, words",
    [
        (["ann", "ann", "bob"], [], "speaker 'bob': 1 train + 0 held-out clip(s)"),
        (["ann", "ann", "bob", "bob"], ["--val_fraction", "0.0"], None),  # evaluation off: no held-out clip needed
        (["ann", "Ann", "bob", "bob"], [], "'Ann' and 'ann' are one speaker 'ann'"),
        (["ann", "ann", "b b", "b b"], [], "'b b' cannot be a speaker name"),
        (["ann", "ann", None, "bob", "bob"], [], ":3: speaker: missing"),
        (["ann", "ann", "bob", "bob"], ["--ref_audio", "REF"], "--ref_audio: one recording cannot be"),
        (["ann", "ann", "bob", "bob"], ["--speaker_source", "ref_audio"], "no row of speaker 'ann' has ref_audio"),
    ],
    ids=["too_few_clips", "no_val_needed", "collision", "bad_name", "missing_speaker", "one_ref", "no_ref"],
)
def test_speaker_mistakes_are_refused(tmp_path, capsys, tiny_dir, speakers, extra, words):
    manifest = _rows(tmp_path, speakers)
    extra = [str(write_wav(tmp_path / "ref.wav", tone(1.0))) if a == "REF" else a for a in extra]
    args = ["--input", str(manifest), "--output", str(tmp_path / "out"), "--model", str(tiny_dir), *extra]
    if words is None:
        plan = check_input(PrepareOptions(manifest, tmp_path / "out", str(tiny_dir), val_fraction=0.0))
        assert {c.speaker for c in plan.clips} == {"ann", "bob"} and not plan.val_ids
        return
    assert cli.main(["prepare", *args]) == 2
    assert words in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_upper_case_names_are_stored_lower_cased(tmp_path, tiny_dir):
    plan = check_input(PrepareOptions(_rows(tmp_path, ["Ann", "Ann", "Émile", "Émile"]), tmp_path / "o",
                                      str(tiny_dir), progress=False))  # fmt: skip
    assert {c.speaker for c in plan.clips} == {"ann", "émile"}
    assert sum(w.kind == "speaker_lowercased" for w in plan.warnings) == 4


def test_each_speaker_gets_its_own_reference_or_its_own_mean(tmp_path, tiny_dir, tiny_model):
    reference = write_wav(tmp_path / "ref.wav", tone(2.0, freq=200, db=-6.0))  # loud throughout: nothing trimmed
    rows = []
    for i, name in enumerate(["ann", "ann", "ann", "bob", "bob", "bob"]):
        audio = write_wav(tmp_path / f"c{i}.wav", tone(1.5, freq=150 + 40 * i, db=-6.0))
        rows.append({"audio": str(audio), "text": "A tone.", "speaker": name}
                    | ({"ref_audio": str(reference)} if name == "ann" else {}))  # fmt: skip
    output = prepare(PrepareOptions(write_jsonl(tmp_path / "m.jsonl", rows), tmp_path / "out", str(tiny_dir),
                                    val_fraction=0.34, progress=False))  # fmt: skip
    _, voices = read_voices(output)

    def embed(path):
        return tiny_model.model.extract_speaker_embedding(sf.read(str(path), dtype="float32")[0], 24000).numpy()

    np.testing.assert_allclose(voices["ann"].numpy(), embed(reference), rtol=1e-5, atol=1e-6)
    bob_train = [r for r in read_jsonl(output / "train.jsonl") if r["speaker"] == "bob"]
    assert len(bob_train) == 2
    expected = np.mean([embed(tmp_path / f"c{int(r['source_audio'][-5])}.wav") for r in bob_train], axis=0)
    np.testing.assert_allclose(voices["bob"].numpy(), expected, rtol=1e-5, atol=1e-6)
    sources = json.loads((output / "report.json").read_text())["speakers"]
    assert sources["ann"]["xvector"] == f"ref_audio:{reference}" and sources["bob"]["xvector"] == "mean_of_train"


def test_a_speaker_whose_rows_are_all_dropped_is_left_out_and_said(tmp_path, tiny_dir):
    manifest = _rows(tmp_path, ["ann", "ann", "bob", "bob", "cleo"])
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[4]["audio"] = str(tmp_path / "missing.wav")  # cleo's only row cannot be used
    write_jsonl(manifest, rows)
    plan = check_input(PrepareOptions(manifest, tmp_path / "o", str(tiny_dir), skip_bad=True, progress=False))
    assert sorted(plan.speaker_references) == ["ann", "bob"] and {c.speaker for c in plan.clips} == {"ann", "bob"}
    assert any(w.kind == "speaker_dropped" and "'cleo'" in w.message for w in plan.warnings)
