"""The two test lanes (docs/testing.md): `make test` runs everything, `make test-fast` every test not marked slow,
and the rule in tests/conftest.py decides what is slow, as pytest itself applies it (a real pytest on generated
test files, with the suite's conftest loaded as a plugin)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import helpers.fit
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

# Generated test files: which lane each test lands in says whether the rule holds. The chain fixture needs the
# demo run only through another fixture (as tests/export's `run` does through `demo_run_copy`).
SAMPLE = """
import pytest

@pytest.fixture
def demo_run():  # the rule goes by the fixture's name; this stand-in is set up where the real one runs its fit
    import helpers.fit
    assert helpers.fit.SUBPROCESS_RUNS_ALLOWED, "the demo run set up in a test not marked slow"

@pytest.fixture
def chain(demo_run):
    return demo_run

def test_plain():
    pass

def test_needs_the_demo_run_through_a_fixture(chain):
    pass

@pytest.mark.slow
def test_marked_by_hand():
    pass

@pytest.mark.gpu
def test_on_the_gpu():
    import torch
    assert torch.cuda.is_available()
"""
END_TO_END = "def test_in_e2e():\n    pass\n"


def _pytest(folder: Path, *args: str, target: str = ".") -> subprocess.CompletedProcess:
    """pytest on ``folder`` in a fresh process, with tests/conftest.py loaded as a plugin (its hooks, not its place)
    and the project's pytest settings (the marker registrations; addopts' workers left out)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # not this run's xdist worker
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "tests"), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir", str(folder)]
    command += ["-o", "addopts=", "-p", "conftest", "-p", "no:cacheprovider", "--strict-markers", "-v", "-rs"]
    return subprocess.run([*command, *args, str(folder / target)], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lanes")
    (folder / "test_sample.py").write_text(SAMPLE)
    (folder / "e2e").mkdir()
    (folder / "e2e" / "test_end_to_end.py").write_text(END_TO_END)
    return folder


@pytest.fixture(scope="module")
def fast_lane(generated: Path) -> str:
    """The output of ``pytest -m "not slow"`` on the generated files (one process for the tests below)."""
    result = _pytest(generated, "-m", "not slow")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_fast_lane_leaves_out_what_needs_the_demo_run_e2e_and_hand_marks(fast_lane: str):
    outcomes = dict(re.findall(r"^test_sample\.py::(\w+) (PASSED|SKIPPED|FAILED|ERROR)", fast_lane, re.M))
    assert set(outcomes) == {"test_plain", "test_on_the_gpu"}, fast_lane
    # the other three (the demo run through a fixture, the hand mark, the e2e file) were collected and deselected
    assert re.search(r"\b5 items / 3 deselected / 2 selected\b", fast_lane), fast_lane


def test_a_gpu_test_is_skipped_without_cuda_and_runs_with_it(fast_lane: str):
    outcome = "PASSED" if torch.cuda.is_available() else "SKIPPED"
    assert f"test_sample.py::test_on_the_gpu {outcome}" in fast_lane, fast_lane
    if outcome == "SKIPPED":
        assert re.search(r"^SKIPPED \[1\] test_sample\.py:\d+: needs CUDA \(a gpu test\)$", fast_lane, re.M), fast_lane
    assert "test_sample.py::test_plain PASSED" in fast_lane


def test_the_slow_lane_may_run_subprocesses_from_the_setup_of_its_fixtures_on(generated: Path):
    """The switch in helpers/fit.py is open before a slow test's fixtures are set up (the demo run is built there).
    One file, so the test needing the demo run is the first to run: no earlier test left the switch open."""
    result = _pytest(generated, "-m", "slow", target="test_sample.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b4 items / 2 deselected / 2 selected\b", result.stdout), result.stdout
    assert "test_sample.py::test_needs_the_demo_run_through_a_fixture PASSED" in result.stdout


@pytest.mark.gpu
def test_this_gpu_test_runs_only_where_cuda_is():
    """The suite's own gpu test: skipped on a CPU machine by the rule; if the rule ever let it run there, it fails."""
    assert torch.cuda.is_available()


def test_a_subprocess_run_in_a_test_not_marked_slow_fails(tmp_path: Path):
    """helpers/fit.py keeps the fast lane's promise: a subprocess run the marking rule missed fails in every lane."""
    with pytest.raises(AssertionError, match="not marked slow"):
        helpers.fit.run_cli(tmp_path, "--help", cache=tmp_path)


@pytest.mark.slow
def test_a_test_marked_slow_may_run_subprocesses():
    assert helpers.fit.SUBPROCESS_RUNS_ALLOWED


def test_make_test_is_the_whole_suite_and_test_fast_the_fast_lane():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^test: .*\n\t\$\(BIN\)/python -m pytest$", makefile, re.M)
    assert re.search(r'^test-fast: .*\n\t\$\(BIN\)/python -m pytest -m "not slow"$', makefile, re.M)
    for page in ("README.md", "docs/testing.md"):
        assert "make test-fast" in (REPO / page).read_text(), page
