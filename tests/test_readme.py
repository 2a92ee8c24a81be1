"""The README's commands are the ones CI runs, so a fresh clone that follows the README is what CI tests."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", markdown, flags=re.S)


def test_ci_runs_the_readme_install_command_verbatim():
    install = _bash_blocks((REPO / "README.md").read_text().split("## Install", 1)[1])[0].strip()
    assert install in (REPO / ".ci" / "run").read_text()


def test_ci_runs_the_readme_test_command():
    test_command = _bash_blocks((REPO / "README.md").read_text().split("## Tests", 1)[1])[0].strip()
    assert test_command in (REPO / ".ci" / "run").read_text().splitlines()
