"""Every validation error: build the bad input, run the CLI, expect exit code 2, a message naming the file, line and
field, and nothing written. These stop before the model weights load, so they run in-process and fast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.prepare import DEMO_RAW, demo_rows, tone, write_jsonl, write_wav

from qwen_tts_lit import cli
from qwen_tts_lit.errors import UserError


def run_prepare(capsys, manifest: Path, output: Path, model: Path, *extra: str) -> tuple[int, str]:
    code = cli.main(["prepare", "--input", str(manifest), "--output", str(output), "--model", str(model), *extra])
    return code, capsys.readouterr().err


def good(index: int) -> dict:
    row = demo_rows()[index]
    del row["ref_audio"]
    return row


# Each case: (name, bad row written at line 2 of a 3-row manifest, field named, words of the reason, extra CLI args).
# A builder gets the tmp dir, so it can write the real (broken) audio file the row points to.
CASES = [
    ("missing_audio", lambda d: {"audio": "nope.wav", "text": "Hello there."}, "audio", "file not found", []),
    ("missing_audio_field", lambda d: {"text": "Hello there."}, "audio", "missing", []),
    (
        "unreadable_audio",
        lambda d: {"audio": str(_write(d / "garbage.wav", b"RIFF? not audio")), "text": "Hello there."},
        "audio",
        "cannot read",
        [],
    ),
    ("empty_text", lambda d: {**good(5), "text": "  \t "}, "text", "empty transcript", []),
    ("missing_text", lambda d: {"audio": good(5)["audio"]}, "text", "empty transcript", []),
    ("only_tags", lambda d: {**good(5), "text": "<laugh> [breath] (applause)"}, "text", "no words left", []),
    ("bad_type", lambda d: {**good(5), "text": 42}, "text", "must be a string", []),
    ("unknown_field", lambda d: {**good(5), "transcript": "typo"}, "transcript", "unknown field", []),
    ("bad_language", lambda d: {**good(5), "language": "Klingon"}, "language", "not supported", []),
    ("bad_id", lambda d: {**good(5), "id": "../escape"}, "id", "not usable as a file name", []),
    (
        "too_short",
        lambda d: {
            "audio": str(write_wav(d / "short.wav", np.concatenate([np.zeros(24000), tone(0.2)]))),
            "text": "Hi.",
        },
        "audio",
        "too short",
        [],
    ),
    (
        "silent",
        lambda d: {"audio": str(write_wav(d / "zeros.wav", np.zeros(48000))), "text": "Hi."},
        "audio",
        "silent",
        [],
    ),
    (
        "quiet_noise_only",
        lambda d: {"audio": str(write_wav(d / "hiss.wav", tone(2.0, db=-60.0))), "text": "Hi."},
        "audio",
        "silent",
        [],
    ),
    (
        "nan_samples",
        lambda d: {"audio": str(write_wav(d / "nan.wav", _with_nan(tone(1.0)), subtype="FLOAT")), "text": "Hi."},
        "audio",
        "NaN/inf",
        [],
    ),
    (
        "too_long",
        lambda d: {"audio": str(write_wav(d / "long.wav", tone(7.0))), "text": "A long one."},
        "audio",
        "too long",
        ["--max_seconds", "6", "--rate_outlier_factor", "0"],
    ),
    ("missing_ref_audio", lambda d: {**good(5), "ref_audio": "missing_ref.wav"}, "ref_audio", "file not found", []),
    (
        "truncated_wav",  # libsndfile reads it as a shorter clip without a word
        lambda d: {"audio": str(_cut(write_wav(d / "cut.wav", tone(2.0)))), "text": "A clip cut short."},
        "audio",
        "is truncated: its header announces 96000 bytes of audio, the file holds 3",
        [],
    ),
]


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _cut(path: Path) -> Path:
    """A wav whose last two thirds are gone (an interrupted copy): the header still announces the whole clip."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def _with_nan(audio: np.ndarray) -> np.ndarray:
    audio = audio.copy()
    audio[100] = np.nan
    return audio


@pytest.mark.parametrize(("name", "build", "field", "reason", "extra"), CASES, ids=[c[0] for c in CASES])
def test_each_validation_error_exits_2_naming_the_row(tmp_path, capsys, tiny_dir, name, build, field, reason, extra):
    manifest = write_jsonl(tmp_path / "raw" / "manifest.jsonl", [good(0), build(tmp_path / "raw"), good(1)])
    output = tmp_path / "out"
    code, err = run_prepare(capsys, manifest, output, tiny_dir, *extra)
    assert code == 2, err
    assert f"{manifest}:2: {field}: " in err and reason in err, err
    assert ":1:" not in err and ":3:" not in err, err  # the good rows are not blamed
    assert "nothing was written" in err
    assert not output.exists()


def test_jsonl_syntax_error_names_the_line(tmp_path, capsys, tiny_dir):
    manifest = write_jsonl(tmp_path / "m.jsonl", [good(0), '{"audio": "a.wav", "text": }', "[1, 2]", good(1)])
    code, err = run_prepare(capsys, manifest, tmp_path / "out", tiny_dir)
    assert code == 2
    assert f"{manifest}:2: invalid JSON" in err and f"{manifest}:3: expected a JSON object" in err


def test_duplicate_ids_name_both_rows(tmp_path, capsys, tiny_dir):
    rows = [{**good(0), "id": "same"}, {**good(1), "id": "same"}]
    manifest = write_jsonl(tmp_path / "m.jsonl", rows)
    code, err = run_prepare(capsys, manifest, tmp_path / "out", tiny_dir)
    assert code == 2
    assert f"{manifest}:2: id: duplicate id 'same' (also at {manifest}:1)" in err


def test_derived_ids_collide_across_folders(tmp_path, capsys, tiny_dir):
    a = write_wav(tmp_path / "a" / "clip.wav", tone(1.0))
    b = write_wav(tmp_path / "b" / "clip.wav", tone(1.0))
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"audio": str(a), "text": "One."}, {"audio": str(b), "text": "Two."}])
    code, err = run_prepare(capsys, manifest, tmp_path / "out", tiny_dir)
    assert code == 2 and f"{manifest}:2: id: duplicate id 'clip'" in err and "give rows an 'id'" in err


def test_a_speaker_without_enough_clips_is_refused(tmp_path, capsys, tiny_dir):
    """Several speakers are one model's voices (tests/data/test_prepare_speakers.py), each with clips to train on
    and held-out clips to be evaluated on."""
    rows = [{**good(0), "speaker": "ann"}, {**good(1), "speaker": "bob"}, {**good(2), "speaker": "ann"}]
    manifest = write_jsonl(tmp_path / "m.jsonl", rows)
    code, err = run_prepare(capsys, manifest, tmp_path / "out", tiny_dir)
    assert code == 2 and "speaker 'bob': 1 train + 0 held-out clip(s): no held-out clip" in err


def test_all_problems_are_reported_at_once(tmp_path, capsys, tiny_dir):
    raw = tmp_path / "raw"
    rows = [good(0)] + [build(raw) for _, build, *_ in CASES[:-3]] + ['{"broken": ']
    manifest = write_jsonl(raw / "m.jsonl", rows)
    code, err = run_prepare(capsys, manifest, tmp_path / "out", tiny_dir)
    assert code == 2
    for line, (_, _, field, reason, _) in enumerate(CASES[:-3], start=2):
        assert f"{manifest}:{line}: {field}: " in err and reason in err
    assert f"{manifest}:{len(rows)}: invalid JSON" in err
    assert not (tmp_path / "out").exists()


def test_strict_turns_every_fix_into_an_error(tmp_path, capsys, tiny_dir):
    rows = demo_rows()
    manifest = write_jsonl(tmp_path / "m.jsonl", [rows[0], rows[3], rows[19], rows[36]])  # 16 kHz, tag, stereo, text
    code, err = run_prepare(capsys, manifest, tmp_path / "out", tiny_dir, "--strict", "true")
    assert code == 2 and "--strict" in err
    assert f"{manifest}:1: audio: 16000 Hz, resampled to 24000 Hz" in err
    assert f"{manifest}:2: text: removed non-speech tag(s) <laugh>" in err
    assert f"{manifest}:3: audio: 2 channels, downmixed to mono" in err
    assert f"{manifest}:4: text: normalised whitespace" in err and f"{manifest}:4: text: normalised Unicode" in err
    assert not (tmp_path / "out").exists()


def test_folder_pairs_missing_their_partner(tmp_path, capsys, tiny_dir):
    raw = tmp_path / "pairs"
    write_wav(raw / "a.wav", tone(1.0))
    (raw / "a.txt").write_text("Fine.\n")
    write_wav(raw / "b.wav", tone(1.0))
    (raw / "c.txt").write_text("No audio.\n")
    (raw / "d.txt").write_text("   \n")
    write_wav(raw / "d.wav", tone(1.0))
    code, err = run_prepare(capsys, raw, tmp_path / "out", tiny_dir)
    assert code == 2
    assert f"{raw / 'b.wav'}: text: no transcript b.txt" in err
    assert f"{raw / 'c.txt'}:1: audio: no audio file c" in err
    assert f"{raw / 'd.txt'}:1: text: empty transcript" in err


def test_ljspeech_bad_rows(tmp_path, capsys, tiny_dir):
    raw = tmp_path / "lj"
    write_wav(raw / "wavs" / "LJ001.wav", tone(1.0))
    (raw / "metadata.csv").write_text("LJ001|Fine.|Fine.\nLJ002 has no columns\nLJ003|Missing audio.|Missing audio.\n")
    code, err = run_prepare(capsys, raw, tmp_path / "out", tiny_dir)
    assert code == 2
    assert f"{raw / 'metadata.csv'}:2: expected id|text|normalized_text, got 1 column(s)" in err
    assert f"{raw / 'metadata.csv'}:3: audio: file not found" in err


def test_val_list_with_unknown_id(tmp_path, capsys, tiny_dir):
    manifest = write_jsonl(tmp_path / "m.jsonl", [good(0), good(1)])
    val_list = tmp_path / "val.txt"
    val_list.write_text("# held out\nutt_001\nutt_999\n")
    code, err = run_prepare(capsys, manifest, tmp_path / "out", tiny_dir, "--val_list", str(val_list))
    assert code == 2 and f"{val_list}:3: id: 'utt_999' is not an id" in err


def test_output_that_is_not_a_prepare_output_is_refused(tmp_path, capsys, tiny_dir):
    manifest = write_jsonl(tmp_path / "m.jsonl", [good(0), good(1)])
    output = tmp_path / "precious"
    output.mkdir()
    (output / "thesis.tex").write_text("do not delete")
    code, err = run_prepare(capsys, manifest, output, tiny_dir)
    assert code == 2 and f"{output}: --output: is not empty" in err
    assert [p.name for p in output.iterdir()] == ["thesis.tex"]


def test_a_checkpoint_without_speaker_encoder_is_refused(tmp_path, capsys, tiny_dir):
    """A custom_voice checkpoint whose release's Base is not known (not a released size, not the tiny build): the
    x-vectors have no encoder unless --speaker_encoder_model names one (docs/instructions.md)."""
    config = json.loads((tiny_dir / "config.json").read_text())
    config["tts_model_type"] = "custom_voice"
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "config.json").write_text(json.dumps(config))
    manifest = write_jsonl(tmp_path / "m.jsonl", [good(0)])
    code, err = run_prepare(capsys, manifest, tmp_path / "out", custom)
    assert code == 2 and "--model: a custom_voice checkpoint has no speaker encoder and its Base is not known" in err
    assert "--speaker_encoder_model" in err


def test_bad_options_and_missing_input(tmp_path, capsys, tiny_dir):
    code, err = run_prepare(capsys, tmp_path / "none.jsonl", tmp_path / "out", tiny_dir, "--val_fraction", "1.5")
    assert code == 2 and "--val_fraction: must be in [0, 1)" in err
    code, err = run_prepare(capsys, tmp_path / "none.jsonl", tmp_path / "out", tiny_dir, "--max_seconds", "1200")
    assert code == 2 and "--max_seconds: at most 300 (a clip is encoded in one piece, in memory that grows" in err
    code, err = run_prepare(capsys, tmp_path / "none.jsonl", tmp_path / "out", tiny_dir)
    assert code == 2 and f"{tmp_path / 'none.jsonl'}: input not found" in err
    assert not (tmp_path / "out").exists()


def test_demo_manifest_has_no_errors_only_fixes(tmp_path, tiny_dir):
    """The shipped corpus is dirty on purpose, but only with dirt that has a safe fix."""
    from qwen_tts_lit.data.prepare.plan import PrepareOptions, check_input

    plan = check_input(PrepareOptions(DEMO_RAW / "train_raw.jsonl", tmp_path / "out", str(tiny_dir), progress=False))
    assert len(plan.clips) == 48 and plan.dropped == []
    assert not (tmp_path / "out").exists()


def _plan(tmp_path: Path, rows: list[dict], tiny_dir: Path, **options):
    from qwen_tts_lit.data.prepare.plan import PrepareOptions, check_input

    manifest = write_jsonl(tmp_path / "m.jsonl", rows)
    return check_input(PrepareOptions(manifest, tmp_path / "out", str(tiny_dir), progress=False, **options))


def test_a_telephone_band_reference_warns(tmp_path, tiny_dir):
    """An 8 kHz recording has nothing above 4 kHz: the x-vector computed from it describes a muffled voice."""
    reference = write_wav(tmp_path / "phone.wav", tone(3.0, rate=8000), rate=8000)
    plan = _plan(tmp_path, [{**good(0), "ref_audio": str(reference)}, {**good(1), "ref_audio": str(reference)}],
                 tiny_dir)  # fmt: skip
    warnings = [w for w in plan.warnings if w.kind == "narrowband"]
    assert [(w.line, w.field) for w in warnings] == [(1, "ref_audio")]
    assert warnings[0].message.startswith("8000 Hz is telephone band: nothing above 4 kHz, so the voice (and an x-vec")


def test_a_very_long_file_is_refused_from_its_header_without_reading_it(tmp_path, tiny_dir):
    """--max_seconds has a ceiling and a longer file is refused before a sample is read: memory stays bounded
    (a 20-minute clip once took 6.6 GB to encode)."""
    import tracemalloc

    from qwen_tts_lit.data.prepare.checks import probe_audio
    from qwen_tts_lit.data.prepare.options import PrepareOptions

    rate, seconds = 16000, 1200
    long_file = write_wav(tmp_path / "lecture.wav", np.zeros(rate * seconds, dtype=np.int16), rate=rate)
    tracemalloc.start()
    facts, notes = probe_audio(long_file, PrepareOptions(tmp_path, tmp_path / "o", "tiny", progress=False))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert facts is None and notes == [("too_long", f"{long_file} is 20.0 min long: prepare reads and encodes a clip "
           "in one piece (memory grows with its length), so files over 300 s are refused; split it into clips",
           False)]  # fmt: skip
    assert peak < 4_000_000 < rate * seconds * 4  # reading it would take 77 MB as float32


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("你好", None), ("Grüße_1", None), ("안녕하세요-2", None), ("привет.v2", None), ("utt_001", None),
        ("a/b", "letters and digits of any script"), ("a\\b", "letters and digits"), ("x\x07", "letters and digits"),
        (".hidden", "letters and digits"), ("", "letters and digits"), ("trailing.", "no '.' at the end"),
        ("CON", "a reserved device name on Windows"), ("lpt1.take2", "a reserved device name"),
        ("长" * 80, "at most 128 characters and 200 UTF-8 bytes"),
    ],
)  # fmt: skip
def test_ids_are_unicode_letters_safe_on_every_file_system(given: str, problem: str | None):
    from qwen_tts_lit.data.prepare.ids import id_problem

    found = id_problem(given)
    assert found == problem if problem is None else found.startswith(problem)


def test_file_names_in_any_script_give_their_ids(tmp_path, tiny_dir):
    """The folder format: a Chinese or an NFD-accented file name is an id (NFC), a name that is not usable is made
    usable with a warning, and ids differing only in case collide (one file on macOS and Windows)."""
    import unicodedata

    from qwen_tts_lit.data.prepare.ids import safe_id

    raw = tmp_path / "pairs"
    for stem in ("你好", unicodedata.normalize("NFD", "café"), "take 1: best?"):
        write_wav(raw / f"{stem}.wav", tone(1.0))
        (raw / f"{stem}.txt").write_text("Hello there.\n")
    from qwen_tts_lit.data.prepare.plan import PrepareOptions, check_input

    plan = check_input(PrepareOptions(raw, tmp_path / "out", str(tiny_dir), progress=False, rate_outlier_factor=0))
    assert sorted(clip.id for clip in plan.clips) == sorted(["你好", "café", "take_1_best_"])
    assert safe_id("con") == "con_" and safe_id("..x") == "x" and safe_id("?") == "clip"
    rows = [{**good(0), "id": "Take_1"}, {**good(1), "id": "take_1"}]
    with pytest.raises(UserError, match=r"duplicate id 'take_1' \(the same file name as 'Take_1'\)"):
        _plan(tmp_path, rows, tiny_dir)


def test_a_dataset_with_nothing_held_out_is_warned_about_at_prepare(tmp_path, tiny_dir, capsys):
    """prepare said nothing, and fit refused the dataset later (EvalSuite.setup): the same text, now at prepare."""
    manifest = write_jsonl(tmp_path / "raw.jsonl", [good(0), good(1)])
    code = cli.main(["prepare", "--input", str(manifest), "--output", str(tmp_path / "none"), "--model", str(tiny_dir),
                     "--progress", "false", "--val_fraction", "0"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "warning: no clip is held out for validation (val.jsonl is empty); " in out
    from qwen_tts_lit.data.dataset import NO_EVALUATION  # fit's refusal names the same ways out

    assert f"(val.jsonl is empty); {NO_EVALUATION}" in out
    assert "warning: no clip is held out" in (tmp_path / "none" / "report.txt").read_text()
    code = cli.main(["prepare", "--input", str(manifest), "--output", str(tmp_path / "one"), "--model", str(tiny_dir),
                     "--progress", "false", "--val_fraction", "0.5"])  # fmt: skip
    assert code == 0 and "held out" not in capsys.readouterr().out  # one clip held out: nothing to say


# Hand-counted spoken words: "twenty one dollars thirty five cents, forty seven dollars ninety nine cents and thirty
# three dollars forty five cents" (prepare's old regex counted 7: 21, 35, 47, 99, and, 33, 45).
MONEY, MONEY_WORDS = "$21.35, $47.99 and $33.45.", 19


def _rate_rows(tmp_path: Path, texts: list[tuple[str, str]]) -> list[dict]:
    """One row per (language, text), each the same 1 s tone: a clip's rate is its word count."""
    audio = write_wav(tmp_path / "second.wav", tone(1.0))
    return [{"id": f"clip_{i}", "audio": str(audio), "text": text, "language": language}
            for i, (language, text) in enumerate(texts)]  # fmt: skip


def test_prepare_counts_words_as_evaluation_does_and_warns_on_rates_with_that_count(tmp_path, tiny_dir):
    """Issue 21: prepare's own regex counted "$21.35" as 2 words, evaluation (numbers spelled) as 6, so the
    words-per-second outlier warning read a money sentence as a transcript too short for its audio. One count now:
    prepare's equals evaluation's and the hand count, the money clip is at the median, and a clip of 3 words in 1 s
    (a real mismatch) is still warned about, at its rate against the median of 19."""
    from qwen_tts_lit.metrics import words_per_second

    filler = " ".join(["word"] * MONEY_WORDS)
    rows = _rate_rows(tmp_path, [("english", filler)] * 5 + [("english", MONEY), ("english", "Only three words.")])
    plan = _plan(tmp_path, rows, tiny_dir)
    speech_s = {clip.id: clip.speech_s for clip in plan.clips}
    money = next(clip for clip in plan.clips if clip.text == MONEY)
    assert money.words == MONEY_WORDS == words_per_second(MONEY, 1.0, "english")
    warned = {w.line: w.message for w in plan.warnings if w.kind == "speech_rate"}
    assert list(warned) == [7], warned  # the three-word clip only; the money clip (line 6) is not warned about
    assert warned[7].startswith(f"{3 / speech_s['clip_6']:.2f} words/s is "), warned


def test_the_rate_warning_compares_each_clip_with_its_own_language(tmp_path, tiny_dir):
    """A character of Chinese and a word of English are not one unit: 13 characters and 3 words in a second are each
    ordinary, but against one median of both (7.5, measured before the fix) the English clips sat at the factor's
    edge (0.4x) and the English clip of 12 words, 4x its language's rate, went unwarned. Each language has its own
    median, so the real outlier of each is warned about, and the message says which median."""
    chinese, english = "我们明天去北京看朋友吃饭了。", "Trains run late."  # 13 characters, 3 words
    rows = _rate_rows(tmp_path, [("chinese", chinese)] * 5 + [("english", english)] * 5
                      + [("chinese", "你好。"), ("english", " ".join(["word"] * 12))])  # fmt: skip
    plan = _plan(tmp_path, rows, tiny_dir)
    warned = {w.line: w.message for w in plan.warnings if w.kind == "speech_rate"}
    assert list(warned) == [11, 12], warned
    assert "the median 13.00 of the chinese clips" in warned[11] and "median 3.00 of the english clips" in warned[12]
