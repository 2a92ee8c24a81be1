"""The command line: every subcommand's options come from its documented request dataclass, ``--help`` imports
nothing heavy, and failures map to exit codes in one place."""

import dataclasses
import subprocess
import sys

import docstring_parser
import pytest

from qwen_tts_lit.cli import main
from qwen_tts_lit.cli.app import exit_code
from qwen_tts_lit.cli.commands import COMMANDS, LIGHTNING_COMMANDS
from qwen_tts_lit.cli.parser import class_help
from qwen_tts_lit.errors import RunFailed, UserError


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qwen_tts_lit", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_subcommands_and_imports_nothing_heavy():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in [*COMMANDS, *LIGHTNING_COMMANDS]:
        assert name in result.stdout
    probe = (
        "import sys; from qwen_tts_lit.cli.app import build_parser; from qwen_tts_lit.cli.commands import COMMANDS;"
        " from qwen_tts_lit.cli.parser import request_parser; build_parser();"
        " [request_parser(n, c.request) for n, c in COMMANDS.items()]; print(sorted(sys.modules))"
    )
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
    positional = {f.name for f in dataclasses.fields(request) if f.metadata.get("positional")}  # make-tiny DIR
    for key, doc in documented_options(request).items():
        assert doc, f"{key}: every option needs a docstring"
        assert (f" {key} " if key in positional else f"--{key} ") in shown and " ".join(doc.split()) in shown, key
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = " ".join(capsys.readouterr().out.split())
    assert class_help(request)[0] in listing  # the one-line help is the class docstring's first line


def documented_options(cls: type, prefix: str = "") -> dict[str, str]:
    """Every option of a request (nested settings by their dotted keys) with the docstring its help must show."""
    docs = {p.arg_name: p.description or "" for p in docstring_parser.parse_from_object(cls).params}
    found = {}
    for item in dataclasses.fields(cls):
        if dataclasses.is_dataclass(item.type) or dataclasses.is_dataclass(item.default_factory):
            found |= documented_options(item.default_factory, f"{prefix}{item.name}.")
        else:
            found[prefix + item.name] = docs.get(item.name, "")
    return found


def test_evaluate_spells_judges_and_rule_as_a_fit_configs_eval_suite():
    """The nested options are the EvalSuite's judges and rule fields, every one, by the same names."""
    from qwen_tts_lit.evaluation.settings import JudgeSettings
    from qwen_tts_lit.metrics.selection import SelectionRule

    keys = set(documented_options(COMMANDS["evaluate"].request))
    assert {f"judges.{f.name}" for f in dataclasses.fields(JudgeSettings)} <= keys
    assert {f"rule.{f.name}" for f in dataclasses.fields(SelectionRule)} <= keys


def test_one_exit_code_map():
    assert exit_code(UserError("bad field")) == 2
    assert exit_code(RunFailed("NaN")) == 1
    assert exit_code(KeyboardInterrupt()) == 1
    assert exit_code(RuntimeError("a bug")) is None  # a bug keeps its traceback


def test_a_user_error_is_one_line_and_exit_2(capsys):
    assert main(["export", "--run", "/nonexistent/run", "--output", "/tmp/x", "--speaker_name", "Bad Name"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --speaker_name")
