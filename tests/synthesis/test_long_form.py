"""``synthesize``: chunking and joining (pure), the runaway retry policy, and the command on a run and on exports."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers.runs import copy_run, main

from qwen_tts_lit.synthesis.chunking import join_with_pauses, paragraphs, split_text
from qwen_tts_lit.synthesis.long_form import RunawayError, join_chunks, speak_chunks, synthesize_to_wav
from qwen_tts_lit.synthesis.presets import SAMPLE_RATE
from qwen_tts_lit.synthesis.request import SynthesizeRequest
from qwen_tts_lit.synthesis.synthesizer import Utterance, Voice

LONG = (
    "The morning train was twelve minutes late. She left her umbrella on the bus! "
    "Please close the window before it rains? We measured everything, twice."
)

# ------------------------------------------------------------------ chunking (pure)


@pytest.mark.parametrize("max_chars", [1, 7, 20, 45, 80, 1000])
@pytest.mark.parametrize(
    "text",
    [
        LONG,
        "今天天气很好。我们去公园吧！好的，走吧。",
        "No punctuation at all just a long run of words that keeps going and going",
        "x" * 53,
        "  Spaces\tand\nnew lines.\n\nA second paragraph.  ",
    ],
)
def test_chunks_fit_and_lose_nothing(text: str, max_chars: int):
    chunks = split_text(text, max_chars)
    assert chunks and all(0 < len(c) <= max_chars and c == c.strip() for c in chunks)
    assert "".join(chunks).replace(" ", "") == re.sub(r"\s+", "", text)  # only whitespace changes


def test_chunks_end_at_sentences_when_they_can():
    assert split_text(LONG, 80) == [
        "The morning train was twelve minutes late. She left her umbrella on the bus!",
        "Please close the window before it rains? We measured everything, twice.",
    ]
    assert split_text(LONG, 1000) == [LONG]
    assert split_text("今天天气很好。我们去公园吧！好的，走吧。", 8) == [
        "今天天气很好。",
        "我们去公园吧！",
        "好的，走吧。",
    ]
    assert split_text('He said "stop." Then left.', 16) == ['He said "stop."', "Then left."]  # quote stays
    assert split_text("Pi is 3.14 today. Yes.", 18) == ["Pi is 3.14 today.", "Yes."]  # no cut inside a number


def test_long_sentences_cut_at_clauses_then_spaces():
    assert split_text("First part, second part, third part.", 25) == ["First part, second part,", "third part."]
    assert split_text("aaaa bbbb cccc", 9) == ["aaaa bbbb", "cccc"]


def test_paragraphs_always_end_a_chunk():
    assert paragraphs("One.\n\n  \nTwo\nlines.") == ["One.", "Two lines."]
    assert split_text("One.\n\nTwo.", 100) == ["One.", "Two."]
    assert split_text(" \n\t ") == []
    with pytest.raises(ValueError):
        split_text("x", 0)


def test_join_with_pauses():
    a, b, c = (np.full(n, v, dtype=np.float32) for n, v in ((3, 1.0), (2, 2.0), (1, 3.0)))
    joined = join_with_pauses([a, b, c], 4)
    assert joined.tolist() == [1, 1, 1, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 3] and joined.dtype == np.float32
    assert len(join_with_pauses([a], 4)) == 3 and len(join_with_pauses([], 4)) == 0


# ------------------------------------------------------------------ retry policy (a scripted synthesizer)


class Scripted:
    """Stands in for Synthesizer: runs away (hits the cap) for the given (text, seed) pairs."""

    def __init__(self, runaway: set[tuple[str, int]]) -> None:
        self.runaway, self.calls = runaway, []

    def synthesize(self, texts, seeds, lora_scale=1.0, max_new_tokens=None, instructs=None):
        (text,), (seed,) = texts, seeds
        self.calls.append((text, seed, lora_scale))
        hit = (text, seed) in self.runaway
        frames = 4 if hit else 2
        wav = np.full(frames * 1920, seed, dtype=np.float32)
        return [Utterance(text, seed, wav, torch.zeros(frames, 16), frames, 4, hit, 0.1)]


def test_every_chunk_starts_with_the_same_seed_and_a_runaway_is_retried():
    synth = Scripted({("b", 42)})
    results = speak_chunks(synth, ["a", "b", "c"], seed=42, lora_scale=0.3)
    assert synth.calls == [("a", 42, 0.3), ("b", 42, 0.3), ("b", 43, 0.3), ("c", 42, 0.3)]
    assert [r.kept.seed for r in results] == [42, 43, 42] and not any(r.kept.hit_max_tokens for r in results)
    assert results[1].attempts == [(42, 4, True), (43, 2, False)] and results[1].retried


def test_all_retries_running_away_fails_unless_kept():
    synth = Scripted({("b", 42), ("b", 43), ("b", 44)})
    with pytest.raises(RunawayError, match=r"chunk 2 \('b'\): seeds \[42, 43, 44\] all reached 4 frames"):
        speak_chunks(synth, ["a", "b"], seed=42, retries=2)
    kept = speak_chunks(Scripted({("b", 42), ("b", 43)}), ["a", "b"], seed=42, retries=1, keep_runaway=True)
    assert kept[1].kept.hit_max_tokens and kept[1].kept.seed == 43


def test_joined_length_is_chunks_plus_pauses():
    results = speak_chunks(Scripted(set()), ["a", "b", "c"], seed=1)
    wav = join_chunks(results, pause_seconds=0.5)
    assert len(wav) == sum(len(r.kept.wav) for r in results) + 2 * SAMPLE_RATE // 2


# ------------------------------------------------------------------ the command on the tiny demo run


pytestmark = pytest.mark.usefixtures("run_cache")  # the runs' base model "tiny" resolves to the fit's cache


@pytest.fixture(scope="module")
def run(demo_run_copy: Path) -> Path:
    return demo_run_copy


@pytest.fixture(scope="module")
def exports(run: Path, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exports")
    for fmt in ("custom_voice", "adapter"):
        args = ("--epoch", 1, "--lora_scale", 0.5, "--output", root / fmt, "--speaker_name", "demo", "--format", fmt)
        assert main("export", "--run", run, *args) == 0
    return {"custom_voice": root / "custom_voice", "adapter": root / "adapter"}


def _request(model: Path, output: Path, **changes) -> SynthesizeRequest:
    # The tiny model's random weights rarely say EOS: small caps keep it fast, keep_runaway keeps its audio.
    base = SynthesizeRequest(str(model), output, text=LONG, max_new_tokens=4, chunk_chars=45, keep_runaway=True,
                             retries=0)  # fmt: skip
    return replace(base, **changes)


@pytest.mark.parametrize("kind", ["custom_voice", "adapter", "run"])
def test_long_text_becomes_one_wav_of_chunks_plus_pauses(kind: str, exports, run: Path, tmp_path: Path):
    model = run if kind == "run" else exports[kind]
    extra = {"epoch": 1, "lora_scale": 0.5} if kind == "run" else {}
    output, results = synthesize_to_wav(_request(model, tmp_path / "out.wav", **extra))
    audio, rate = sf.read(output, dtype="float32")
    assert rate == 24000 and audio.ndim == 1
    assert [r.text for r in results] == split_text(LONG, 45) and len(results) == 4
    assert len(audio) == sum(len(r.kept.wav) for r in results) + 3 * round(0.3 * 24000)
    assert {r.kept.seed for r in results if not r.retried} <= {42}
    assert list(tmp_path.iterdir()) == [output]  # no temporary file left


def test_the_three_sources_speak_alike(exports, run: Path, tmp_path: Path):
    """Run at 0.5, adapter at its recommended 0.5, custom_voice merged at 0.5: same first chunk frames."""
    codes = []
    for model, extra in (
        (run, {"epoch": 1, "lora_scale": 0.5}),
        (exports["adapter"], {}),
        (exports["custom_voice"], {}),
    ):
        _, results = synthesize_to_wav(_request(model, tmp_path / "x.wav", text="Hello there.", **extra))
        codes.append(results[0].kept.codes.tolist())
    assert codes[0] == codes[1] == codes[2]


def test_cli_writes_the_wav_and_reports_runaways(exports, tmp_path: Path, capsys):
    out = tmp_path / "cli.wav"
    args = ("--text", "Hello there. Bye now.", "--max_new_tokens", 3, "--retries", 1, "--keep_runaway", "true")
    assert main("synthesize", "--model", exports["custom_voice"], *args, "--output", out) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out) and sf.info(str(out)).samplerate == 24000
    assert "lora_scale 0.5 is merged" in captured.err and "real-time factor" in captured.err


def test_cli_runaway_after_retries_exits_1_and_writes_nothing(exports, tmp_path: Path, capsys):
    out = tmp_path / "never.wav"
    args = ("--text", "Hello there.", "--max_new_tokens", 1, "--retries", 1, "--seed", 3)
    assert main("synthesize", "--model", exports["adapter"], *args, "--output", out) == 1
    assert not out.exists()
    assert "seeds [3, 4] all reached 1 frames" in capsys.readouterr().err


def test_text_file_input(exports, tmp_path: Path):
    text = tmp_path / "in.txt"
    text.write_text("First paragraph.\n\nSecond one.", encoding="utf-8")
    out = tmp_path / "f.wav"
    args = ("--text_file", text, "--max_new_tokens", 2, "--keep_runaway", "true", "--output", out, "--pause_seconds", 0)
    assert main("synthesize", "--model", exports["adapter"], *args) == 0
    assert sf.info(str(out)).frames == 2 * 2 * 1920  # two paragraphs = two chunks of 2 frames, no pause


def test_run_with_best_json_needs_no_epoch(demo_run: Path, tmp_path: Path, capsys):
    run = copy_run(demo_run, tmp_path / "run", best={"epoch": 0, "lora_scale": 0.5, "metrics": {}})
    out = tmp_path / "b.wav"
    capped = ("--max_new_tokens", 2, "--keep_runaway", "true")
    assert main("synthesize", "--model", run, "--text", "Hi.", *capped, "--output", out) == 0
    assert "epoch 0 from best.json" in capsys.readouterr().err and out.is_file()


# ------------------------------------------------------------------ bad input: exit 2, nothing written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--text", "   "), "the text is empty"),
        (("--text", "?!..."), "'?!...' has no words (no letter or digit): nothing to say"),
        (("--text", "Hi.", "--lora_scale", "-0.5"), "--lora_scale -0.5: must be in [0, 2]"),
        (("--text", "Hi.", "--lora_scale", "3"), "--lora_scale 3.0: must be in [0, 2]"),
        (("--text", "Hi.", "--max_new_tokens", "0"), "--max_new_tokens 0: must be >= 1"),
        (("--text", "Hi.", "--chunk_chars", "0"), "--chunk_chars 0: must be >= 1"),
    ],
)
def test_bad_text_and_numbers(exports, tmp_path: Path, capsys, args, message):
    out = tmp_path / "o.wav"
    assert main("synthesize", "--model", exports["adapter"], *args, "--output", out) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_chunks_without_words_are_skipped_with_a_warning():
    from qwen_tts_lit.synthesis.long_form import speakable_chunks

    kept, warnings = speakable_chunks(["Hello there.", "?!...", "二〇二四年。", "—"])
    assert kept == ["Hello there.", "二〇二四年。"]  # 〇 is a number: words in any script count
    assert warnings == ["chunk 2 ('?!...') has no words: skipped", "chunk 4 ('—') has no words: skipped"]


def test_bad_sources(exports, run: Path, tmp_path: Path, capsys):
    out = tmp_path / "o.wav"
    cases = [
        (("--model", tmp_path / "nope", "--text", "Hi."), "folder not found"),
        (("--model", run, "--text", "Hi."), "best.json: not found"),
        (("--model", run, "--epoch", 9, "--text", "Hi."), "epoch 9 was not saved (saved epochs: 0, 1)"),
        (("--model", exports["custom_voice"], "--text", "Hi.", "--lora_scale", 0.3), "has its scale merged in"),
        (("--model", exports["adapter"], "--epoch", 1, "--text", "Hi."), "--epoch: only for a run folder"),
        (("--model", exports["adapter"], "--text_file", tmp_path / "missing.txt"), "cannot read it"),
        (("--model", tmp_path, "--text", "Hi."), "neither a run folder"),
    ]
    for args, message in cases:
        assert main("synthesize", *args, "--output", out) == 2, args
        assert message in capsys.readouterr().err, args
    assert main("synthesize", "--model", run, "--epoch", 1, "--text", "Hi.", "--output", tmp_path / "o.mp3") == 2
    assert "give a .wav path" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------ the codec prefix a model was trained on


@pytest.mark.parametrize(
    ("mode", "language", "warned"),
    [("off", None, None), ("off", "english", "omit --language"), ("on", "english", None),
     ("on", None, "pass --language"), ("mixed", None, None), ("mixed", "english", None)],
)  # fmt: skip
def test_untrained_layout_is_named(mode, language, warned):
    from qwen_tts_lit.synthesis.voices import OpenedVoice

    problem = OpenedVoice(None, Voice(speaker="demo"), 1.0, language_tag=mode).untrained_layout(language)
    assert (problem is None) if warned is None else (warned in problem)


def test_whether_a_voice_can_be_scaled_is_read_off_its_model(tiny_dir: Path):
    """One derivation (model.lora.has_lora), not a flag each opener sets: a model without adapters (a full
    fine-tune, a merged custom_voice export) cannot take another scale, and the same voice can once adapters are in."""
    from qwen_tts_lit.model.lora import inject_lora
    from qwen_tts_lit.synthesis.voices import OpenedVoice
    from qwen_tts_lit.upstream.loading import load_qwen3_tts

    tts = load_qwen3_tts(str(tiny_dir), "float32", "sdpa", "cpu")
    opened = OpenedVoice(tts, Voice(speaker="demo"), 1.0)
    assert opened.scalable is False
    inject_lora(tts.model)
    assert opened.scalable is True


def test_untrained_language_warns_and_strict_refuses(exports, tmp_path: Path, capsys):
    """The demo trains with the language omitted: --language english warns (exit 0), --strict refuses (exit 2)."""
    out = tmp_path / "l.wav"
    args = ("--model", exports["custom_voice"], "--text", "Hi.", "--language", "english", "--max_new_tokens", 2)
    assert main("synthesize", *args, "--keep_runaway", "true", "--output", out) == 0
    assert "warning: --language english: trained with data.language_tag off" in capsys.readouterr().err
    out.unlink()
    assert main("synthesize", *args, "--strict", "true", "--output", out) == 2
    assert "(--strict refuses it)" in capsys.readouterr().err and not out.exists()


def test_text_is_cleaned_as_prepare_cleans_transcripts(exports, tmp_path: Path, capsys):
    from qwen_tts_lit.data.prepare.text import clean_spoken_text

    assert clean_spoken_text("\u201cHello\u201d <laugh>  there [breath].").text == '"Hello" there.'
    out = tmp_path / "c.wav"
    args = ("--text", "Hello <laugh> there.", "--max_new_tokens", 2, "--keep_runaway", "true", "--output", out)
    assert main("synthesize", "--model", exports["adapter"], *args) == 0
    assert "removed non-speech tags ['<laugh>'] (as prepare does)" in capsys.readouterr().err


def test_a_read_only_output_folder_is_refused_before_anything_is_synthesized(run: Path, tmp_path: Path, capsys):
    """synthesize found out only when it wrote the wav, after speaking every chunk; prepare's check comes first."""
    from helpers.faults import mounted_tmpfs

    with mounted_tmpfs(tmp_path / "disk", "1m", read_only=True) as disk:
        capped = ("--max_new_tokens", 4, "--keep_runaway", "true")
        args = ("--epoch", 1, "--text", LONG, *capped, "--output", disk / "o.wav")
        assert main("synthesize", "--model", run, *args) == 2
    err = capsys.readouterr().err
    assert f"error: --output {disk / 'o.wav'}: {disk} is not writable (a read-only file system" in err
    assert "chunks," not in err and "Traceback" not in err  # nothing was spoken (no report line)
