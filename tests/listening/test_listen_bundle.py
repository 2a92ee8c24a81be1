"""``listen`` on the session's demo run: what a rater gets reveals nothing (random names, bare WAVs with one file
time, a page without systems, epochs, scales or sentences, the key outside the folder), levels are matched, each
design's trials have the layout docs/listening.md promises, and bad requests are one line with nothing written."""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from helpers.runs import main

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.listening import loudness
from qwen_tts_lit.listening.bundle import build_test
from qwen_tts_lit.listening.designs import DESIGNS
from qwen_tts_lit.listening.request import ListenRequest
from qwen_tts_lit.runs.folder import BEST_FILE, EVAL_DIR
from qwen_tts_lit.runs.records import read_rows


def listening_copy(run: Path, target: Path) -> Path:
    """What listen reads of a run (its evaluation and chosen cell), copied, so a test may change the audio."""
    target.mkdir(parents=True)
    shutil.copytree(run / EVAL_DIR, target / EVAL_DIR)
    shutil.copy(run / BEST_FILE, target / BEST_FILE)
    return target


def chunks(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    found, at = [], 12
    while at < len(data):
        name, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        found.append(name)
        at += 8 + size + (size & 1)
    return found


@pytest.fixture(scope="module")
def built(demo_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    for name in DESIGNS:
        build_test(ListenRequest(output=root / name, design=name, run=demo_run, progress=False,
                                 webmushra=name in ("mushra", "mos", "ab")))  # fmt: skip
    return {name: root / name for name in DESIGNS}


def key_of(folder: Path) -> dict:
    return json.loads((folder / "key.json").read_text())


@pytest.mark.parametrize("name", list(DESIGNS))
def test_the_test_folder_reveals_no_system(name, built, demo_run):
    folder, key = built[name], key_of(built[name])
    test = folder / "test"
    assert sorted(p.name for p in test.iterdir()) == ["audio", "index.html"]  # the key is not in it
    audio = sorted((test / "audio").iterdir())
    assert {p.name for p in audio} == set(key["stimuli"])
    assert all(re.fullmatch(r"[0-9a-f]{8}\.wav", p.name) for p in audio)
    assert all(chunks(p) == [b"fmt ", b"data"] for p in audio)  # no LIST/INFO, no other chunk
    assert len({p.stat().st_mtime for p in audio}) == 1
    page = (test / "index.html").read_text()
    secrets = {str(demo_run), "epoch", "/scale=", "lora", "baseline", "xvector", "voice_clone", "tuned", "anchor"}
    secrets |= {item["item"] for item in key["stimuli"].values()} | {item["text"] for item in key["stimuli"].values()}
    secrets |= {system["label"] for sid, system in key["systems"].items() if sid != "real"}
    assert [s for s in secrets if s.lower() in page.lower()] == []
    assert all(f in page for f in key["stimuli"])  # the page does play them


def test_metadata_in_a_source_wav_does_not_reach_the_stimuli(demo_run, tmp_path):
    run = listening_copy(demo_run, tmp_path / "run")
    for row in read_rows(run):
        wav, rate = sf.read(str(run / row["wav"]))
        with sf.SoundFile(str(run / row["wav"]), "w", rate, 1, "PCM_16", format="WAV") as out:
            out.title, out.comment = "SECRET-epoch", "SECRET-system"
            out.write(wav)
    assert b"SECRET" in (run / read_rows(run)[0]["wav"]).read_bytes()  # the sources do carry it
    build_test(ListenRequest(output=tmp_path / "out", run=run, progress=False))
    assert not [p for p in (tmp_path / "out" / "test").rglob("*") if p.is_file() and b"SECRET" in p.read_bytes()]


def test_two_gains_of_one_recording_come_out_at_one_level(demo_run, tmp_path):
    """The tuned cell and a baseline speak the REAL recording at -26 dB and at -1 dB: after listen, both are at the
    target loudness and sample for sample the same sound."""
    run = listening_copy(demo_run, tmp_path / "run")
    rows = read_rows(run)
    for row in rows:
        if row.get("baseline") in ("", None, "xvector"):
            real, rate = sf.read(str(run / row["real_wav"]))
            gain = 0.05 if not row.get("baseline") else 0.9
            sf.write(str(run / row["wav"]), gain * real / np.max(np.abs(real)), rate, subtype="PCM_16")
    built = build_test(ListenRequest(output=tmp_path / "out", run=run, progress=False))
    key = key_of(tmp_path / "out")
    by = {(s["system"], s["item"]): f for f, s in key["stimuli"].items()}
    target = key["sources"]["loudness"]["target_lufs"]
    assert target == built.levels.target_lufs <= loudness.TARGET_LUFS
    for item in {s["item"] for s in key["stimuli"].values()}:
        quiet, loud = (sf.read(str(tmp_path / "out" / "test" / "audio" / by[(system, item)]))[0]
                       for system in ("tuned", "xvector"))  # fmt: skip
        levels = [loudness.integrated_loudness(x, 24_000) for x in (quiet, loud)]
        assert levels == pytest.approx([target, target], abs=0.05)
        assert len(quiet) == len(loud)
        np.testing.assert_allclose(quiet, loud, atol=3e-3)  # the quiet source's 16 bits, turned up by 26 dB
    real = [f for f, s in key["stimuli"].items() if s["system"] == "real"]
    assert all(key["sources"]["loudness"]["measured_lufs"][f] is not None for f in real)


def test_each_design_has_the_promised_trials(built):
    roles = {name: {sid: s["role"] for sid, s in key_of(built[name])["systems"].items()} for name in DESIGNS}
    for name in DESIGNS:
        key = key_of(built[name])
        assert key["format"] == 1 and key["design"] == name and key["scale"] == DESIGNS[name].scale
        assert set(key) == {"format", "test_id", "design", "scale", "systems", "stimuli", "trials", "created",
                            "sources"}  # fmt: skip
        system = {f: s["system"] for f, s in key["stimuli"].items()}
        kinds = [t["kind"] for t in key["trials"]]
        assert kinds.count("practice") == 2
        items = {s["item"] for s in key["stimuli"].values()}
        tests = [t for t in key["trials"] if t["kind"] == "test"]
        assert all(system[f] is not None and key["stimuli"][f]["item"] == t["item"] for t in key["trials"]
                   for f in t["stimuli"])  # fmt: skip
        if name == "mos":
            assert sorted((system[t["stimuli"][0]], t["item"]) for t in tests) == sorted(
                (s, i) for s in roles["mos"] for i in items
            )
        elif name == "smos":
            assert all(system[t["reference"]] == "real" and system[t["stimuli"][0]] != "real" for t in tests)
            attention = [t for t in key["trials"] if t["kind"] == "attention"]
            assert len(attention) == 2
            assert all(system[t["stimuli"][0]] == "real" and t["stimuli"][0] != t["reference"] for t in attention)
        elif name in ("cmos", "ab"):
            assert all(system[t["stimuli"][0]] == "tuned" != system[t["stimuli"][1]] for t in tests)
            assert len(tests) == len(items) * (len(roles[name]) - 1)
            attention = [t for t in key["trials"] if t["kind"] == "attention"]
            assert len(attention) == 2 and all(t["stimuli"][0] == t["stimuli"][1] for t in attention)
        else:
            assert len(tests) == len(items) and kinds.count("attention") == 0
            for t in tests:
                played = [system[f] for f in t["stimuli"]]
                assert sorted(played) == sorted(["tuned", "voice_clone", "xvector", "real", "anchor"])
                assert system[t["reference"]] == "real" and t["reference"] not in t["stimuli"]  # hidden != open
            assert roles["mushra"]["anchor"] == "anchor"


def test_the_anchor_is_the_reference_low_passed(built):
    key = key_of(built["mushra"])
    audio = built["mushra"] / "test" / "audio"
    for trial in (t for t in key["trials"] if t["kind"] == "test"):
        anchor = next(f for f in trial["stimuli"] if key["stimuli"][f]["system"] == "anchor")
        reference, _ = sf.read(str(audio / trial["reference"]))
        low, _ = sf.read(str(audio / anchor))

        def band(x, lo, hi):
            spectrum = np.abs(np.fft.rfft(x)) ** 2
            freqs = np.fft.rfftfreq(len(x), 1 / 24_000)
            return spectrum[(freqs >= lo) & (freqs < hi)].sum()

        assert len(low) == len(reference)
        assert band(low, 5000, 12000) / band(reference, 5000, 12000) < 1e-4  # > 40 dB down above the cut-off
        assert band(low, 100, 3000) / band(reference, 100, 3000) == pytest.approx(1, rel=0.3)  # the same below


def test_the_webmushra_config_plays_every_stimulus_from_its_own_copy(built):
    for name in ("mushra", "mos", "ab"):
        key = key_of(built[name])
        config = yaml.safe_load((built[name] / "webmushra" / f"{key['test_id']}.yaml").read_text())
        pages = [p for p in config["pages"] if isinstance(p, dict)] + next(
            p for p in config["pages"] if isinstance(p, list)
        )[1:]
        files = set()
        for page in pages:
            files |= {Path(v).name for v in page.get("stimuli", {}).values()}
            files |= {Path(page["reference"]).name} if page.get("reference") else set()
        assert files == set(key["stimuli"])
        assert {p.name for p in (built[name] / "webmushra" / "audio").iterdir()} == files
        text = (built[name] / "webmushra" / f"{key['test_id']}.yaml").read_text()
        assert not [s for s in ("tuned", "xvector", "voice_clone", "anchor", "epoch") if s in text]


def test_bad_requests_are_one_line_and_write_nothing(built, demo_run, tmp_path, capsys):
    with pytest.raises(UserError, match="holds a test already"):
        build_test(ListenRequest(output=built["mos"], run=demo_run, progress=False))
    with pytest.raises(UserError, match="give one of --run"):
        build_test(ListenRequest(output=tmp_path / "a", progress=False))
    with pytest.raises(UserError, match="webMUSHRA has no page type for cmos"):
        build_test(ListenRequest(output=tmp_path / "b", design="cmos", run=demo_run, webmushra=True, progress=False))
    no_best = tmp_path / "run"
    shutil.copytree(demo_run / EVAL_DIR, no_best / EVAL_DIR)
    assert main("listen", "--run", no_best, "--output", tmp_path / "c") == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert main("listen", "--run", demo_run, "--output", tmp_path / "d", "--design", "mosh") == 2
    assert "unknown design" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if p.name != "run"]


def test_the_command_says_where_the_test_and_the_key_are_and_what_comes_next(demo_run, tmp_path, capsys):
    assert main("listen", "--run", demo_run, "--output", tmp_path / "out", "--design", "ab", "--sentences", "1",
                "--progress", "false") == 0  # fmt: skip
    out = capsys.readouterr().out
    key = key_of(tmp_path / "out")
    assert f"{tmp_path / 'out' / 'test' / 'index.html'}" in out and "keep it private" in out
    assert f"--key {tmp_path / 'out' / 'key.json'}" in out and "listen --results" in out
    assert len({s["item"] for s in key["stimuli"].values()}) == 1


def test_several_runs_and_an_ablation_root_are_compared_system_by_system(demo_run, tmp_path):
    first, second = (listening_copy(demo_run, tmp_path / name) for name in ("a", "b"))
    best = json.loads((second / BEST_FILE).read_text())
    other = (1, 1.0) if (best["epoch"], best["lora_scale"]) != (1, 1.0) else (0, 0.5)
    (second / BEST_FILE).write_text(json.dumps({**best, "epoch": other[0], "lora_scale": other[1]}))
    for row in read_rows(second):  # the tiny model left it silent: give it real speech, to tell the cells apart
        if not row.get("baseline") and (row["epoch"], row["lora_scale"]) == other:
            shutil.copy(second / row["real_wav"], second / row["wav"])
    build_test(ListenRequest(output=tmp_path / "runs", runs=(first, second), design="ab", progress=False))
    key = key_of(tmp_path / "runs")
    assert {s: v["role"] for s, v in key["systems"].items()} == {"run1": "run", "run2": "run", "real": "real"}
    for file, stimulus in key["stimuli"].items():
        heard = sf.read(str(tmp_path / "runs" / "test" / "audio" / file))[0]
        assert (np.max(np.abs(heard)) > 0.01) == (stimulus["system"] != "run1")  # run1's chosen cell is silent
    assert key["sources"]["runs"]["run2"] == {"run": str(second), "epoch": other[0], "lora_scale": other[1]}

    root = tmp_path / "ablation"
    for variant, seeds in (("lr_high", (2, 1)), ("lr_low", (1,))):
        for seed in seeds:
            listening_copy(demo_run, root / variant / f"seed_{seed}")
    build_test(ListenRequest(output=tmp_path / "abl", ablation=root, design="cmos", progress=False))
    key = key_of(tmp_path / "abl")
    assert list(key["systems"]) == ["lr_high", "lr_low", "real"]
    assert key["sources"]["variants"]["lr_high"]["seed"] == 1  # the lowest seed of the variant
    tests = [t for t in key["trials"] if t["kind"] == "test"]
    assert all(key["stimuli"][t["stimuli"][0]]["system"] == "lr_high" for t in tests)
    with pytest.raises(UserError, match="need two"):
        build_test(ListenRequest(output=tmp_path / "one", ablation=root / "lr_low", progress=False))
