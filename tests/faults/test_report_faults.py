"""A kill between writing best.json and report.html: the report records which best.json (and rows) it shows, the
disagreement is detected, and whoever points at the report (fit's closing lines, evaluate) rebuilds it first."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from helpers.runs import main

import qwen_tts_lit.evaluation.publish as publishing
from qwen_tts_lit.cli.run_folder import FitSession
from qwen_tts_lit.metrics.selection import SelectionRule
from qwen_tts_lit.runs.records import read_best, read_rows, stale_report

pytestmark = pytest.mark.usefixtures("run_cache")

CHOSEN = re.compile(r"<b>Chosen: epoch (\d+), lora_scale ([0-9.]+)</b>")


def _shown(run: Path) -> tuple[int, float]:
    """The cell report.html says was chosen."""
    epoch, scale = CHOSEN.search((run / "report.html").read_text()).groups()
    return int(epoch), float(scale)


def _chosen(run: Path) -> tuple[int, float]:
    best = read_best(run)
    return int(best["epoch"]), float(best["lora_scale"])


@pytest.fixture
def killed(demo_run: Path, tmp_path: Path, monkeypatch) -> Path:
    """A copy of the demo run whose publish was killed after best.json and before report.html, while publishing
    re-scored rows that make another cell the best (the tiny model's cells all score alike, so they are made up)."""
    run = tmp_path / "version_0"
    shutil.copytree(demo_run, run)
    publishing.publish(run, [], SelectionRule())
    assert stale_report(run) is None and _shown(run) == _chosen(run)
    other = next(row for row in read_rows(run) if row["epoch"] >= 0 and (row["epoch"], row["lora_scale"]) !=
                 _chosen(run))  # fmt: skip
    rescored = [{**row, "wer": 0.0, "error_rate": 0.0, "spk_sim": 0.9, "rate_ratio": 1.0, "hit_max_tokens": False}
                for row in read_rows(run) if (row["epoch"], row["lora_scale"]) == (other["epoch"], other["lora_scale"])
                and not row.get("baseline")]  # fmt: skip

    def kill(*args, **kwargs):
        raise KeyboardInterrupt  # what a SIGKILL at this point leaves: best.json new, report.html old

    with monkeypatch.context() as patch:
        patch.setattr(publishing, "write_report", kill)
        with pytest.raises(KeyboardInterrupt):
            publishing.publish(run, rescored, SelectionRule())
    assert _shown(run) != _chosen(run)  # the two disagree: the fault is real
    return run


def test_the_disagreement_is_detected_and_fits_closing_lines_rebuild_the_report(killed: Path, capsys):
    assert "report.html shows another eval/rows.jsonl and best.json than the run's" in stale_report(killed)
    FitSession(run_dir=killed).finished()
    err = capsys.readouterr().err
    assert "rebuilt report.html: report.html shows another eval/rows.jsonl and best.json" in err
    assert stale_report(killed) is None and _shown(killed) == _chosen(killed)
    assert f"report: {killed / 'report.html'}" in err


def test_evaluate_leaves_the_pair_in_agreement_and_says_where_the_report_is(killed: Path, capsys):
    assert main("evaluate", "--run", killed, "--epochs", "0", "--scales", "1.0", "--num_utterances", "1",
                "--judges.asr", "false", "--judges.dnsmos", "false") == 0  # fmt: skip
    captured = capsys.readouterr()
    assert stale_report(killed) is None and _shown(killed) == _chosen(killed)
    assert json.loads(captured.out[captured.out.index("{") :])["epoch"] == _chosen(killed)[0]
    assert f"  report: {killed / 'report.html'}" in captured.err.splitlines()


def test_a_report_of_an_earlier_version_is_stale(killed: Path):
    """A report without the record (written before this change) cannot vouch for best.json: it is rebuilt."""
    report = killed / "report.html"
    report.write_text(re.sub(r"<meta name='qwen_tts_lit:\w+' content='\w+'>", "", report.read_text()))
    assert "does not record which best.json it shows" in stale_report(killed)
    assert publishing.refresh(killed) is not None and stale_report(killed) is None
