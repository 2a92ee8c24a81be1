"""Every request subcommand is one jsonargparse parser: ``--print_config`` writes a file that ``--config`` reads back
into the same request, flags after ``--config`` override it, the older argparse spellings still give the same request
with one note each, and a bad option, value or config key is one line and exit 2. Parsing only: each subcommand's
handler is replaced by one that keeps the request, so nothing heavy runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_tts_lit.cli import main
from qwen_tts_lit.cli.commands import COMMANDS, Command
from qwen_tts_lit.cli.spellings import respell

# Per subcommand: (its options in today's spelling, the same options in the older spelling, the older flags noted).
SPELLINGS = {
    "make-tiny": (["tiny_out"], ["tiny_out"], []),
    "segment": (
        ["--input", "[a.wav, b.wav]", "--output", "clips", "--min_seconds", "3", "--progress", "false"],
        ["--input", "a.wav", "b.wav", "--output", "clips", "--min-seconds", "3", "--no-progress"],
        ["--input a.wav b.wav", "--min-seconds", "--no-progress"],
    ),
    "prepare": (
        [
            "--input",
            "r.jsonl",
            "--output",
            "o",
            "--model",
            "m",
            "--strict",
            "true",
            "--tag_patterns",
            "[]",
            "--val_fraction",
            "0.2",
            "--min_seconds",
            "-0.5",
        ],
        [
            "--input",
            "r.jsonl",
            "--output",
            "o",
            "--model",
            "m",
            "--strict",
            "--tag-patterns",
            "--val-fraction",
            "0.2",
            "--min-seconds",
            "-0.5",
        ],
        ["--strict", "--tag-patterns", "--val-fraction", "--min-seconds"],
    ),  # fmt: skip
    "export": (
        [
            "--run",
            "r",
            "--output",
            "o",
            "--speaker_name",
            "demo",
            "--lora_scale",
            "0.5",
            "--keep_speaker_encoder",
            "true",
        ],
        ["--run", "r", "--output", "o", "--speaker-name", "demo", "--lora-scale", "0.5", "--keep-speaker-encoder"],
        ["--speaker-name", "--lora-scale", "--keep-speaker-encoder"],
    ),  # fmt: skip
    "synthesize": (
        [
            "--model",
            "m",
            "--output",
            "o.wav",
            "--text_file",
            "t.txt",
            "--max_new_tokens",
            "20",
            "--keep_runaway",
            "true",
        ],
        ["--model", "m", "--output", "o.wav", "--text-file", "t.txt", "--max-new-tokens", "20", "--keep-runaway"],
        ["--text-file", "--max-new-tokens", "--keep-runaway"],
    ),  # fmt: skip
    "evaluate": (
        [
            "--run",
            "r",
            "--epochs",
            "[1, 2]",
            "--scales",
            "0.5",
            "--judges.asr_model",
            "large-v3",
            "--judges.asr",
            "false",
            "--rule.primary",
            "cer",
            "--rule.speaker_aggregate",
            "worst",
            "--num_utterances",
            "2",
        ],
        [
            "--run",
            "r",
            "--epochs",
            "1",
            "2",
            "--scales",
            "0.5",
            "--asr-model",
            "large-v3",
            "--no-asr",
            "--primary",
            "cer",
            "--speaker-aggregate",
            "worst",
            "--num-utterances",
            "2",
        ],
        ["--epochs 1 2", "--asr-model", "--no-asr", "--primary", "--speaker-aggregate", "--num-utterances"],
    ),  # fmt: skip
    "ablate": (
        ["--grid", "g.yaml", "--root", "r", "--dry_run", "true", "--seeds", "[1, 2]"],
        ["--grid", "g.yaml", "--root", "r", "--dry-run", "--seeds", "1", "2"],
        ["--dry-run", "--seeds 1 2"],
    ),
    "listen": (
        ["--runs", "[a, b]", "--output", "o", "--design", "cmos", "--webmushra", "true", "--sentences", "4"],
        ["--runs", "a", "b", "--output", "o", "--design", "cmos", "--webmushra", "--sentences", "4"],
        ["--runs a b", "--webmushra"],
    ),
    "estimate-memory": (
        ["--fit_config", "FIT", "--fit_config", "FIT2", "--clip_seconds", "3"],
        ["--config", "FIT", "FIT2", "--clip-seconds", "3"],
        ["--config FIT FIT2", "--clip-seconds"],
    ),
}


@pytest.fixture
def parsed(monkeypatch, tmp_path: Path):
    """``main`` with every handler keeping its request instead of running; estimate-memory's fit configs exist."""
    requests = []
    for name, command in list(COMMANDS.items()):
        monkeypatch.setitem(COMMANDS, name, Command(command.request, requests.append))
    fits = [tmp_path / "fit.yaml", tmp_path / "fit2.yaml"]
    for fit in fits:
        fit.write_text("model:\n  model: tiny\n")

    def parse(*args: str):
        args = [{"FIT": str(fits[0]), "FIT2": str(fits[1])}.get(arg, arg) for arg in args]
        assert main(list(args)) == 0
        return requests.pop()

    return parse


def test_every_request_subcommand_is_covered():
    assert set(SPELLINGS) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(SPELLINGS))
def test_print_config_writes_what_config_reads_back(name, parsed, tmp_path, capsys):
    today = SPELLINGS[name][0]
    request = parsed(name, *today)
    with pytest.raises(SystemExit) as printed:
        main([name, *[{"FIT": str(tmp_path / "fit.yaml"), "FIT2": str(tmp_path / "fit2.yaml")}.get(a, a)
                      for a in today], "--print_config"])  # fmt: skip
    assert printed.value.code == 0
    config = tmp_path / "request.yaml"
    config.write_text(capsys.readouterr().out)
    assert parsed(name, "--config", str(config)) == request
    assert capsys.readouterr().err == ""  # today's spelling: no note


@pytest.mark.parametrize("name", sorted(SPELLINGS))
def test_the_older_spelling_gives_the_same_request_with_one_note_each(name, parsed, capsys):
    today, older, noted = SPELLINGS[name]
    request = parsed(name, *today)
    assert capsys.readouterr().err == ""
    assert parsed(name, *older) == request
    notes = capsys.readouterr().err.strip().splitlines() if noted else []
    assert len(notes) == len(noted), notes
    for note, old in zip(notes, noted, strict=True):
        assert note.startswith(f"note: {old.replace('FIT2', '').replace('FIT', '').strip()}")
        assert "is an older spelling, read as --" in note


def test_flags_after_config_override_it_and_a_config_may_hold_nested_settings(parsed, tmp_path):
    config = tmp_path / "evaluate.yaml"
    config.write_text("run: r\njudges:\n  asr_model: large-v3\nrule:\n  primary: cer\nseed: 3\n")
    request = parsed("evaluate", "--config", str(config), "--seed", "5", "--rule.primary", "wer")
    assert request.seed == 5 and request.judge_overrides() == {"asr_model": "large-v3"}
    assert request.rule_overrides() == {"primary": "wer"}  # only what was given replaces the run's settings


def test_the_older_option_names_in_notes_are_the_new_ones():
    args, notes = respell("evaluate", COMMANDS["evaluate"].request, ["--run", "r", "--asr-device", "cuda"])
    assert args == ["--run", "r", "--judges.asr_device", "cuda"]
    assert notes == ["note: --asr-device is an older spelling, read as --judges.asr_device (the older one goes in "
                     "the next release)"]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["segment", "--input", "a", "--output", "o", "--min_seconds", "x"],
         "error: min_seconds: expected float, given x (see python -m qwen_tts_lit segment --help)"),
        (["export", "--run", "r", "--output", "o", "--speaker_nme", "x"],
         "error: speaker_nme: not an option of export; did you mean speaker_name? (see python -m qwen_tts_lit export "
         "--help)"),
        (["segment", "--output", "o"], "error: --input: required (see python -m qwen_tts_lit segment --help)"),
        (["make-tiny"], "error: dir: required (see python -m qwen_tts_lit make-tiny --help)"),
        (["ablate", "--config", "/nonexistent/a.yaml"], "error: --config /nonexistent/a.yaml: file not found"),
        (["evaluate", "--run", "r", "--rule.speaker_aggregate", "best"],
         "error: rule.speaker_aggregate: expected one of 'mean', 'worst' or null, given best (see python -m "
         "qwen_tts_lit evaluate --help)"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(args, line, parsed, capsys):
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines() == [line]


def test_a_config_files_unknown_key_names_the_file(parsed, tmp_path, capsys):
    config = tmp_path / "segment.yaml"
    config.write_text("input: [a.wav]\noutput: o\nmin_second: 3\n")
    assert main(["segment", "--config", str(config)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: --config {config}: min_second: not an option of segment; did you mean min_seconds or "
        "margin_seconds or max_seconds? (see python -m qwen_tts_lit segment --help)"
    ]
