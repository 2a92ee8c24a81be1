"""The README's commands are the ones CI runs, so a fresh clone that follows the README is what CI tests."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _bash_blocks(section: str) -> list[str]:
    text = (REPO / "README.md").read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    test_command = _bash_blocks("Tests")[0].strip()
    assert test_command == "make test"
    assert test_command in (REPO / ".ci" / "run").read_text().splitlines()


def test_make_installs_what_the_readme_installs_by_hand():
    by_hand = _bash_blocks("Install")[1].strip()
    assert by_hand.startswith("python3 -m venv .venv") and "pip install torch==2.13.0 -e \".[dev]\"" in by_hand
    assert "pip install --no-deps -r requirements-nodeps.txt" in by_hand
    makefile = (REPO / "Makefile").read_text()
    for piece in ("TORCH ?= torch==2.13.0", "-m venv $(VENV)", 'pip install --quiet -e ".[dev]"',
                  "pip install --quiet --no-deps -r requirements-nodeps.txt"):  # fmt: skip
        assert piece in makefile, piece


def test_the_two_make_commands_are_documented_and_the_demo_is_the_quick_start():
    commands = [line.split("#")[0].strip() for line in _bash_blocks("Install")[0].splitlines()]
    assert commands == ["make demo", "make test"]
    makefile = (REPO / "Makefile").read_text()
    quick_start = _bash_blocks("Quick start")[0].strip()
    assert re.search(r"^demo: .*\n\t\$\(BIN\)/python -m qwen_tts_lit fit --config configs/demo.yaml$", makefile, re.M)
    assert quick_start == "python -m qwen_tts_lit fit --config configs/demo.yaml"
