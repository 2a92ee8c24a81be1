"""The command line: every subcommand's options come from its documented request dataclass, ``--help`` imports
nothing heavy, and failures map to exit codes in one place."""

import argparse
import dataclasses
import subprocess
import sys

import pytest

from qwen_tts_lit.cli import main
from qwen_tts_lit.cli.app import exit_code
from qwen_tts_lit.cli.commands import COMMANDS, LIGHTNING_COMMANDS
from qwen_tts_lit.cli.options import add_dataclass_arguments, class_help, field_docs, from_namespace
from qwen_tts_lit.data.prepare.options import PrepareOptions
from qwen_tts_lit.errors import RunFailed, UserError


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qwen_tts_lit", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_subcommands_and_imports_nothing_heavy():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in [*COMMANDS, *LIGHTNING_COMMANDS]:
        assert name in result.stdout
    probe = "import sys; from qwen_tts_lit.cli.app import build_parser; build_parser(); print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    for heavy in ("'torch'", "'lightning'", "'qwen_tts'", "'pandas'", "'matplotlib'", "'transformers'"):
        assert heavy not in loaded, heavy


def test_unknown_subcommand_lists_choices_and_exits_2():
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr and "make-tiny" in result.stderr


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_help_from_its_request_docstrings(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    request = COMMANDS[name].request
    docs = field_docs(request)
    assert set(docs) == {f.name for f in dataclasses.fields(request)}, "every option needs a docstring"
    for doc in docs.values():
        assert doc.rstrip(".") in shown
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = " ".join(capsys.readouterr().out.split())
    assert class_help(request)[0] in listing  # the one-line help is the class docstring's first line


def test_prepare_options_round_trip_through_the_parser():
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, PrepareOptions)
    args = parser.parse_args(["--input", "r.jsonl", "--output", "o", "--model", "m", "--strict", "--tag-patterns"])
    options = from_namespace(args, PrepareOptions)
    assert options.strict and options.tag_patterns == () and options.batch_size == 8
    assert options == PrepareOptions("r.jsonl", "o", "m", strict=True, tag_patterns=[])
    assert not from_namespace(parser.parse_args(["--input", "r", "--output", "o", "--model", "m", "--no-progress"]),
                              PrepareOptions).progress  # fmt: skip


def test_one_exit_code_map():
    assert exit_code(UserError("bad field")) == 2
    assert exit_code(RunFailed("NaN")) == 1
    assert exit_code(KeyboardInterrupt()) == 1
    assert exit_code(RuntimeError("a bug")) is None  # a bug keeps its traceback


def test_a_user_error_is_one_line_and_exit_2(capsys):
    assert main(["export", "--run", "/nonexistent/run", "--output", "/tmp/x", "--speaker-name", "Bad Name"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --speaker-name")
