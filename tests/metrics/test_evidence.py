"""How sure the chosen cell is (qwen_tts_lit.metrics.evidence through select_best and publish): intervals per cell
and baseline over held-out sentences, the paired comparison with the runner-up and the best zero-shot baseline, the
conservative rule; known answers on hand-built rows, one through publish into a run folder and its report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qwen_tts_lit.evaluation.publish import publish
from qwen_tts_lit.evaluation.report import render_report
from qwen_tts_lit.metrics.selection import DNSMOS_FIELDS, SelectionRule, select_best
from qwen_tts_lit.metrics.uncertainty import mean_interval, paired_difference
from qwen_tts_lit.runs.records import read_best, write_best

SENTENCES = 10


def rows_of(epoch: int, scale: float, errors, baseline: str | None = None, **fields) -> list[dict]:
    """One cell: sentence i has error rate errors[i]; everything else passes the rule's filters."""
    rows = []
    for i, error in enumerate(errors):
        row = {"epoch": epoch, "lora_scale": scale, "utt_id": f"utt_{i}", "text": "the same words",
               "error_metric": "wer", "wer": float(error), "error_rate": float(error), "spk_sim": 0.8,
               "rate_ratio": 1.0, "hit_max_tokens": False, "wav": f"eval/{epoch}/{scale}/utt_{i}.wav"}  # fmt: skip
        rows.append(row | ({"baseline": baseline, "epoch": -1, "lora_scale": 0.0} if baseline else {}) | fields)
    return rows


@pytest.fixture
def difficulty() -> np.ndarray:
    """Each sentence's own difficulty for the judge, shared by every cell (what pairing removes)."""
    return np.random.default_rng(7).gamma(1.0, 0.1, SENTENCES)


def planted(difficulty: np.ndarray, effect: float) -> list[dict]:
    """Epoch 2 x 0.5 is better than epoch 1 x 0.5 and than the zero-shot baseline by ``effect`` on every sentence
    (plus small noise); the other cells are far worse."""
    noise = np.random.default_rng(3).normal(0, 0.005, (3, SENTENCES))
    return [
        *rows_of(2, 0.5, difficulty + noise[0]),
        *rows_of(1, 0.5, difficulty + effect + noise[1]),
        *rows_of(0, 0.5, difficulty + 0.5),
        *rows_of(0, 0, difficulty + effect + noise[2], baseline="voice_clone"),
    ]


def test_a_planted_difference_is_called_a_clear_winner_through_publish(tmp_path: Path, difficulty):
    """The real path: publish writes best.json and the report; the chosen cell separates from both rivals."""
    publish(tmp_path, planted(difficulty, effect=0.05), SelectionRule())
    best = read_best(tmp_path)
    sure = best["confidence"]
    assert (best["epoch"], best["lora_scale"]) == (2, 0.5) and sure["metric"] == "error_rate"
    runner_up, baseline = sure["runner_up"], sure["baseline"]
    assert (runner_up["epoch"], runner_up["lora_scale"], baseline["baseline"]) == (1, 0.5, "voice_clone")
    for compared in (runner_up, baseline):
        assert compared["separates"] and compared["high"] < 0 and compared["n"] == SENTENCES
        assert compared["p_value"] == pytest.approx(2 / 2**SENTENCES)  # every sentence better: the exact test's floor
        assert compared["mean"] == pytest.approx(-0.05, abs=0.006)
    assert runner_up["summary"].startswith("epoch 2 x 0.5 beats epoch 1 x 0.5 by error_rate -0.05")
    assert runner_up["summary"].endswith(": a clear winner") and "(n=10 sentences, p=0.002)" in runner_up["summary"]
    page = (tmp_path / "report.html").read_text()
    first_screen = page[: page.index("<h2>Epochs &times; scales</h2>")]
    assert "How sure:</b> epoch 2 x 0.5 beats epoch 1 x 0.5 by error_rate" in first_screen
    assert "beats zero-shot voice_clone" in first_screen


def test_no_difference_is_not_a_clear_winner(tmp_path: Path, difficulty):
    noise = np.random.default_rng(5).normal(0, 0.02, (2, SENTENCES))
    rows = [*rows_of(2, 0.5, difficulty + noise[0]), *rows_of(1, 0.5, difficulty + noise[1])]
    publish(tmp_path, rows, SelectionRule())
    best = read_best(tmp_path)
    runner_up = best["confidence"]["runner_up"]
    assert not runner_up["separates"] and runner_up["low"] < 0 < runner_up["high"]
    assert runner_up["summary"].endswith(": not a clear winner; listen to both")
    assert "baseline" not in best["confidence"]  # the run has no zero-shot rows
    assert "not a clear winner; listen to both" in (tmp_path / "report.html").read_text()


def test_the_difference_is_the_paired_one_per_sentence(difficulty):
    """Oracle: the recorded difference is uncertainty.paired_difference of the two cells' per-sentence means (here
    each sentence spoken twice, under two codec prefixes: n counts sentences, not rows)."""
    rows = planted(difficulty, effect=0.05)
    doubled = rows + [row | {"prefix": "tagged", "wer": row["wer"] + 0.01, "error_rate": row["wer"] + 0.01}
                      for row in rows if row["epoch"] == 1]  # fmt: skip
    sure = select_best(doubled)["confidence"]["runner_up"]
    chosen = {f"utt_{i}": r["wer"] for i, r in enumerate(rows[:SENTENCES])}
    other = {f"utt_{i}": r["wer"] + 0.005 for i, r in enumerate(rows[SENTENCES : 2 * SENTENCES])}
    expected = paired_difference(chosen, other)
    assert sure["n"] == SENTENCES
    assert (sure["mean"], sure["low"], sure["high"]) == pytest.approx(
        (expected.interval.mean, expected.interval.low, expected.interval.high)
    )
    assert sure["p_value"] == pytest.approx(expected.p_value)


def test_every_cell_and_baseline_carries_each_metrics_interval_over_sentences(difficulty):
    rows = planted(difficulty, effect=0.05)
    best = select_best(rows)
    assert [(c["epoch"], c["lora_scale"]) for c in best["cells"]] == [(0, 0.5), (1, 0.5), (2, 0.5)]
    for cell in best["cells"]:
        own = [r["wer"] for r in rows if (r["epoch"], r["lora_scale"]) == (cell["epoch"], cell["lora_scale"])]
        expected = mean_interval(own)  # one row per sentence here: the interval over the rows' values
        got = cell["intervals"]["error_rate"]
        assert (got["mean"], got["low"], got["high"], got["n"]) == pytest.approx(
            (expected.mean, expected.low, expected.high, SENTENCES)
        )
        assert got["low"] < got["mean"] < got["high"] and cell["intervals"]["eos_fail"]["mean"] == 0.0
    assert best["intervals"] == best["cells"][2]["intervals"]  # the chosen cell's, at the top level too
    assert best["baselines"]["voice_clone"]["intervals"]["wer"]["n"] == SENTENCES
    assert best["metrics"]["error_rate"] == pytest.approx(best["intervals"]["error_rate"]["mean"])
    assert json.loads(json.dumps(best, allow_nan=False)) == best


def test_the_unit_is_each_speakers_own_sentence_not_the_text():
    """Two speakers with the same utt_id and the same words: four sentences, two per speaker, not one."""
    rows = []
    for speaker, errors in (("ann", [0.1, 0.3]), ("bob", [0.2, 0.6])):
        rows += [row | {"speaker": speaker} for row in rows_of(0, 1.0, errors)]
    best = select_best(rows)
    assert best["intervals"]["error_rate"]["n"] == 4
    assert best["intervals"]["error_rate"]["mean"] == pytest.approx(0.3)
    by_speaker = best["intervals_by_speaker"]
    assert by_speaker["bob"]["error_rate"]["n"] == 2 and by_speaker["bob"]["error_rate"]["mean"] == pytest.approx(0.4)


def test_the_conservative_rule_takes_the_earliest_cell_the_data_cannot_tell_from_the_best(difficulty):
    """Epoch 3 is best by a hair, epoch 2 is indistinguishable from it, epoch 1 (and 0 x 1.0) clearly worse: the
    conservative rule takes epoch 2 x 0.5 (fewest epochs, then the lower scale of 2 x 0.5 and 2 x 1.0)."""
    noise = np.random.default_rng(11).normal(0, 0.02, (4, SENTENCES))
    noise -= noise.mean(axis=1, keepdims=True)  # so that the cells' means are exactly as planted
    rows = [
        *rows_of(3, 0.5, difficulty + noise[0] - 0.004),
        *rows_of(2, 1.0, difficulty + noise[1]),
        *rows_of(2, 0.5, difficulty + noise[2]),
        *rows_of(1, 0.5, difficulty + 0.1 + noise[3]),
        *rows_of(0, 1.0, difficulty + 0.3),
    ]
    default = select_best(rows)
    assert (default["epoch"], default["lora_scale"]) == (3, 0.5)
    chosen = select_best(rows, SelectionRule(conservative=True))
    assert (chosen["epoch"], chosen["lora_scale"]) == (2, 0.5)
    assert "conservative" in chosen["reason"] and "of 3 cell(s)" in chosen["reason"]
    runner_up = chosen["confidence"]["runner_up"]  # compared with the rule's best, which it could not be told from
    assert (runner_up["epoch"], runner_up["lora_scale"]) == (3, 0.5) and not runner_up["separates"]
    assert chosen["rule"]["conservative"] is True and default["rule"]["conservative"] is False


def test_an_older_best_json_without_intervals_still_reads_and_renders(tmp_path: Path, difficulty):
    rows = planted(difficulty, effect=0.05)
    old = {k: v for k, v in select_best(rows).items() if k not in ("intervals", "confidence", "cells")}
    old["rule"].pop("conservative")
    for baseline in old["baselines"].values():
        baseline.pop("intervals")
    write_best(tmp_path, old)
    assert read_best(tmp_path) == old
    page = render_report(rows, old)
    assert "Chosen: epoch 2, lora_scale 0.5" in page and "How sure" not in page and "WER 0.1" in page
    assert "[" not in page[page.index("<h2>Epochs") : page.index("<h2>Zero-shot")]  # no interval shown


def test_the_report_shows_each_cells_interval_and_n(difficulty):
    rows = planted(difficulty, effect=0.05)
    best = select_best(rows)
    wer = best["intervals"]["wer"]
    page = render_report(rows, best)
    assert f"WER {best['metrics']['wer']:.3f} [{wer['low']:.3f}, {wer['high']:.3f}]" in page
    assert "n=10 sentences" in page


def test_naturalness_gets_each_cells_and_baselines_interval_and_n_in_best_json_and_the_report(difficulty):
    """DNSMOS's fields (and, beside them, the real recordings', which are no figure of the cell) are intervals like
    the other metrics: each cell's and baseline's over its sentences (oracle: mean_interval of the rows' own values,
    one row per sentence), at the top level for the chosen cell, and in the report's cells and baselines."""
    ovrl = 2.0 + np.random.default_rng(11).normal(0, 0.3, SENTENCES)
    real = dict(zip(DNSMOS_FIELDS, (3.5, 3.9, 3.2, 3.6), strict=True))
    rows = [row | {name: float(ovrl[int(row["utt_id"][4:])]) + 0.1 * k + row["epoch"] * 0.05
                   for k, name in enumerate(DNSMOS_FIELDS)}
            | {f"real_{name}": value for name, value in real.items()}
            for row in planted(difficulty, effect=0.05)]  # fmt: skip
    best = select_best(rows)
    groups = [*best["cells"], *best["baselines"].values()]
    assert len(groups) == 4
    for cell, name in ((cell, name) for cell in groups for name in DNSMOS_FIELDS):
        own = [r[name] for r in rows if (r["epoch"], r["lora_scale"]) == (cell.get("epoch", -1),
                                                                          cell.get("lora_scale", 0))]  # fmt: skip
        expected = mean_interval(own)
        got = cell["intervals"][name]
        assert (got["mean"], got["low"], got["high"], got["n"]) == pytest.approx(
            (expected.mean, expected.low, expected.high, SENTENCES)
        ), name
        assert got["low"] < got["mean"] < got["high"]
    assert not any(name.startswith("real_") for cell in groups for name in cell["intervals"])
    assert best["intervals"]["dnsmos_ovrl"] == best["cells"][2]["intervals"]["dnsmos_ovrl"]
    page = render_report(rows, best)
    chosen = best["intervals"]["dnsmos_ovrl"]
    assert (f"OVRL {best['metrics']['dnsmos_ovrl']:.2f} [{chosen['low']:.2f}, {chosen['high']:.2f}] (real 3.20)"
            in page)  # fmt: skip
    clone, shown = best["baselines"]["voice_clone"], best["baselines"]["voice_clone"]["intervals"]["dnsmos_ovrl"]
    assert f"OVRL {clone['dnsmos_ovrl']:.2f} [{shown['low']:.2f}, {shown['high']:.2f}] (real 3.20)" in page


def rl_rows(difficulty: np.ndarray, effect: float) -> list[dict]:
    """An RL run: its start (epoch -1, the SFT cell) and two RL checkpoints at scale 1, plus the zero-shot baseline
    (also epoch -1, told apart by its name); RL epoch 1 is better than the start by ``effect`` on every sentence."""
    noise = np.random.default_rng(11).normal(0, 0.005, (3, SENTENCES))
    return [
        *rows_of(-1, 1.0, difficulty + effect + noise[0]),
        *rows_of(0, 1.0, difficulty + effect / 2 + noise[1]),
        *rows_of(1, 1.0, difficulty + noise[2]),
        *rows_of(0, 0, difficulty + 0.3, baseline="xvector"),
    ]


def test_an_rl_step_is_chosen_over_its_start_with_the_paired_test_on_the_same_sentences(tmp_path: Path, difficulty):
    rows = rl_rows(difficulty, effect=0.05)
    publish(tmp_path, rows, SelectionRule())
    best = read_best(tmp_path)
    assert (best["epoch"], best["lora_scale"], best["candidates"]) == (1, 1.0, 3)  # the start is a candidate
    start = best["confidence"]["start"]
    chosen = {f"utt_{i}": r["error_rate"] for i, r in enumerate(rows[2 * SENTENCES : 3 * SENTENCES])}
    began = {f"utt_{i}": r["error_rate"] for i, r in enumerate(rows[:SENTENCES])}
    expected = paired_difference(chosen, began)  # oracle: paired per sentence, chosen RL step - start
    assert (start["epoch"], start["lora_scale"], start["n"]) == (-1, 1.0, SENTENCES)
    assert (start["mean"], start["low"], start["high"]) == pytest.approx(
        (expected.interval.mean, expected.interval.low, expected.interval.high)
    )
    assert start["separates"] and start["summary"].startswith("epoch 1 x 1 beats RL start x 1 by error_rate")
    assert best["confidence"]["baseline"]["baseline"] == "xvector"  # the zero-shot row is not the start
    assert "beats RL start x 1" in (tmp_path / "report.html").read_text()


def test_rl_that_does_not_beat_its_start_chooses_the_start(difficulty):
    """A tie: the start is the earliest cell, so it wins (RL must show it is better); and no start comparison."""
    rows = [*rows_of(-1, 1.0, difficulty), *rows_of(0, 1.0, difficulty)]
    best = select_best(rows)
    assert (best["epoch"], best["lora_scale"]) == (-1, 1.0) and "start" not in best["confidence"]
    assert best["confidence"]["runner_up"]["summary"].startswith("RL start x 1 is chosen over epoch 0 x 1")
