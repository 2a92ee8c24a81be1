"""The best (epoch, lora_scale) rule (qwen_tts_lit.metrics.selection) on hand-built rows."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from qwen_tts_lit.metrics import SelectionRule, aggregate, filter_misses, rank, score, select_best


def cell_rows(
    epoch: int,
    scale: float,
    wer: float,
    spk_sim: float = 0.8,
    rate: float = 1.0,
    hits: int = 0,
    n: int = 4,
    spk_sim_model: float | None = None,
) -> list[dict]:
    """n rows of one cell whose means are exactly the given values; the first ``hits`` rows hit the token cap."""
    return [
        {
            "epoch": epoch,
            "lora_scale": scale,
            "utt_id": f"utt_{i}",
            "text": "the cat sat",
            "hypothesis": "the cat sat",
            "wer": wer,
            "cer": wer / 2,
            "spk_sim": spk_sim,
            "spk_sim_model": spk_sim_model,
            "rate_ratio": rate,
            "words_per_second": 3.0 / rate,
            "hit_max_tokens": i < hits,
            "wav": f"eval/epoch={epoch:03d}/scale={scale}/utt_{i}.wav",
        }
        for i in range(n)
    ]


@pytest.fixture
def grid() -> list[dict]:
    """Four cells: the lowest WER runs away, the next speaks too fast, two pass."""
    return [
        *cell_rows(1, 1.0, wer=0.02, hits=1),  # 25% runaway
        *cell_rows(2, 0.5, wer=0.05, rate=0.7),  # double-shift symptom: 30% faster than the real speaker
        *cell_rows(2, 0.3, wer=0.08, spk_sim=0.70, rate=1.1),
        *cell_rows(3, 0.3, wer=0.12, spk_sim=0.90, rate=0.95),
    ]


def test_aggregate_means_per_cell() -> None:
    rows = cell_rows(1, 0.3, wer=0.1, hits=1, n=4) + cell_rows(1, 0.5, wer=0.2)
    rows[1]["wer"], rows[2]["rate_ratio"] = 0.3, 1.4  # cell (1, 0.3): wer 0.1 0.3 0.1 0.1, rate 1 1 1.4 1
    first, second = aggregate(rows)
    assert (first["epoch"], first["lora_scale"], first["n"]) == (1, 0.3, 4)
    assert first["wer"] == pytest.approx(0.15)
    assert first["rate_ratio"] == pytest.approx(1.1)
    assert first["rate_error"] == pytest.approx(0.1)
    assert first["eos_fail"] == 0.25
    assert first["spk_sim_model"] is None  # not measured
    assert second["wer"] == pytest.approx(0.2) and second["eos_fail"] == 0.0


def test_default_rule_filters_runaways_and_wrong_rate_then_lowest_wer(grid: list[dict]) -> None:
    best = select_best(grid)
    assert (best["epoch"], best["lora_scale"]) == (2, 0.3)
    assert best["passed_filters"] is True and best["failed_filters"] == []
    assert (best["candidates"], best["passing"]) == (4, 2)
    assert best["metrics"]["wer"] == pytest.approx(0.08)
    assert best["rule"]["primary"] == "error_rate" and best["rule"]["rate_tolerance"] == 0.15
    assert "lowest error_rate among 2 of 4 cells" in best["reason"]  # rows without error_rate: their wer (English)


def test_filter_misses_report_each_failed_filter(grid: list[dict]) -> None:
    cells = {(c["epoch"], c["lora_scale"]): c for c in aggregate(grid)}
    rule = SelectionRule()
    assert filter_misses(cells[(1, 1.0)], rule) == {"eos_fail": pytest.approx(0.25)}
    assert filter_misses(cells[(2, 0.5)], rule) == {"rate_error": pytest.approx(0.15)}
    assert filter_misses(cells[(2, 0.3)], rule) == {}
    assert filter_misses(cells[(2, 0.3)], SelectionRule(min_spk_sim=0.75)) == {"spk_sim": pytest.approx(0.05)}


def test_rate_tolerance_boundary_is_inclusive() -> None:
    rows = cell_rows(1, 0.3, wer=0.1, rate=0.85) + cell_rows(1, 0.5, wer=0.05, rate=1.1501)
    best = select_best(rows)
    assert (best["lora_scale"], best["passed_filters"]) == (0.3, True)  # |0.85 - 1| = 0.15 passes, 0.1501 does not


def test_ties_go_to_higher_similarity_then_earlier_epoch_then_smaller_scale() -> None:
    rows = cell_rows(3, 0.3, wer=0.1, spk_sim=0.80) + cell_rows(2, 0.5, wer=0.1, spk_sim=0.85)
    assert (select_best(rows)["epoch"], select_best(rows)["lora_scale"]) == (2, 0.5)
    rows = cell_rows(3, 0.3, wer=0.1) + cell_rows(2, 0.5, wer=0.1) + cell_rows(2, 0.35, wer=0.1)
    assert (select_best(rows)["epoch"], select_best(rows)["lora_scale"]) == (2, 0.35)


def test_tie_tolerance_treats_near_equal_wers_as_tied() -> None:
    rows = cell_rows(1, 0.3, wer=0.100, spk_sim=0.70) + cell_rows(1, 0.5, wer=0.105, spk_sim=0.90)
    assert select_best(rows)["lora_scale"] == 0.3
    assert select_best(rows, SelectionRule(tie_tolerance=0.01))["lora_scale"] == 0.5


def test_fallback_when_nothing_passes_picks_lowest_wer_and_says_so() -> None:
    rows = cell_rows(1, 0.3, wer=0.3, hits=2) + cell_rows(2, 0.3, wer=0.2, rate=1.5)
    rows += cell_rows(3, 0.3, wer=0.4, hits=4)
    best = select_best(rows)
    assert (best["epoch"], best["passed_filters"], best["passing"]) == (2, False, 0)
    assert best["failed_filters"] == ["rate_error"]
    assert best["reason"].startswith("no cell passed")


def test_rule_is_configurable(grid: list[dict]) -> None:
    no_filters = SelectionRule(max_eos_fail=None, rate_tolerance=None)
    assert select_best(grid, no_filters)["epoch"] == 1  # the runaway cell has the lowest WER
    assert select_best(grid, SelectionRule(max_eos_fail=0.25))["epoch"] == 1
    assert select_best(grid, SelectionRule(rate_tolerance=0.3))["lora_scale"] == 0.5
    assert select_best(grid, SelectionRule(primary="spk_sim"))["epoch"] == 3  # higher is better for similarity
    assert select_best(grid, SelectionRule(min_spk_sim=0.75))["epoch"] == 3
    with pytest.raises(ValueError, match="unknown metric 'mos'"):
        SelectionRule(primary="mos")
    with pytest.raises(ValueError, match="unknown metric"):
        SelectionRule(tie_break=("wer", "speed"))


def test_missing_tie_break_metric_never_wins() -> None:
    rows = cell_rows(1, 0.3, wer=0.1, spk_sim_model=0.6) + cell_rows(1, 0.5, wer=0.1)
    best = select_best(rows, SelectionRule(tie_break=("spk_sim_model",)))
    assert best["lora_scale"] == 0.3


def test_dataframe_input_gives_the_same_json_serialisable_answer(grid: list[dict]) -> None:
    from_frame = select_best(pd.DataFrame(grid))
    assert from_frame == select_best(grid)
    text = json.dumps(from_frame, allow_nan=False)  # numpy scalars and NaN would both fail here
    assert json.loads(text)["metrics"]["spk_sim_model"] is None
    assert isinstance(from_frame["epoch"], int) and isinstance(from_frame["lora_scale"], float)


def test_score_orders_cells_like_the_rule(grid: list[dict]) -> None:
    rule = SelectionRule()
    cells = aggregate(grid)
    by_score = sorted(cells, key=lambda c: score(c, rule), reverse=True)
    passing_in_rule_order = rank([c for c in cells if not filter_misses(c, rule)], rule)
    assert by_score[:2] == passing_in_rule_order  # passing cells first, in the rule's order
    assert [(c["epoch"], c["lora_scale"]) for c in by_score] == [(2, 0.3), (3, 0.3), (2, 0.5), (1, 1.0)]
    best = select_best(grid, rule)
    assert (by_score[0]["epoch"], by_score[0]["lora_scale"]) == (best["epoch"], best["lora_scale"])
    assert best["score"] == pytest.approx(score(by_score[0], rule))
    passing = next(c for c in cells if (c["epoch"], c["lora_scale"]) == (2, 0.3))  # -wer + tie_weight * spk_sim
    assert score(passing, rule) == pytest.approx(-0.08 + 0.001 * 0.70)
    # A failing cell loses at least filter_penalty even with a perfect WER.
    assert max(score(c, rule) for c in cells if filter_misses(c, rule)) < -rule.filter_penalty + 0.01
    assert score({"epoch": 1, "lora_scale": 0.3, "wer": None}, rule) == -math.inf


def test_score_tie_break_reorders_only_equal_primaries() -> None:
    rule = SelectionRule()
    low_sim, high_sim = aggregate(cell_rows(1, 0.3, wer=0.1, spk_sim=0.7) + cell_rows(1, 0.5, wer=0.1, spk_sim=0.9))
    assert score(high_sim, rule) > score(low_sim, rule)
    better_wer = aggregate(cell_rows(1, 0.3, wer=0.09, spk_sim=0.1))[0]
    assert score(better_wer, rule) > score(high_sim, rule)


def test_no_rows_is_an_error() -> None:
    with pytest.raises(ValueError, match="no evaluation rows"):
        select_best([])


# ---------------------------------------------------------------- languages and metrics that could not be computed


def language_rows(epoch: int, scale: float, errors: dict[str, float | None], spk_sim: float) -> list[dict]:
    """One row per language of a mixed held-out set, as scoring writes them: the language's metric (CER for
    Chinese-script and Korean rows, WER otherwise) and error_rate, None when it could not be computed (no ASR)."""
    rows = []
    for language, value in errors.items():
        metric = "cer" if language in ("zh", "ja", "ko", "yue") else "wer"
        rows.append({"epoch": epoch, "lora_scale": scale, "utt_id": language, "language": language,
                     "error_metric": metric, "wer": value if metric == "wer" else None,
                     "cer": value if metric == "cer" else None, "error_rate": value, "spk_sim": spk_sim,
                     "rate_ratio": 1.0, "hit_max_tokens": False})  # fmt: skip
    return rows


def test_a_mixed_language_set_is_ranked_on_each_rows_own_error_metric():
    rows = [*language_rows(0, 0.5, {"en": 0.2, "zh": 0.1}, 0.7), *language_rows(1, 0.5, {"en": 0.1, "zh": 0.4}, 0.9)]
    first, second = aggregate(rows)
    assert first["error_rate"] == pytest.approx(0.15) and first["wer"] == 0.2 and first["cer"] == 0.1
    assert second["error_rate"] == pytest.approx(0.25)
    best = select_best(rows)
    assert best["epoch"] == 0 and best["ranked_by"] == "error_rate" and best["unscored_rows"] == {}


def test_without_asr_the_rule_ranks_on_the_next_metric_and_says_so():
    """ASR switched off (a language no available judge speaks): no row has an error rate; nothing crashes, the rule
    ranks on spk_sim, best.json says why and counts the unscored rows; the score is a number (val/score)."""
    rows = [*language_rows(0, 0.5, {"zh": None, "ko": None}, 0.7), *language_rows(1, 0.5, {"zh": None, "ko": None},
                                                                                  0.9)]  # fmt: skip
    best = select_best(rows)
    assert (best["epoch"], best["ranked_by"], best["rule"]["primary"]) == (1, "spk_sim", "error_rate")
    assert best["reason"].startswith("error_rate was not measured for any row (no ASR judge?), so ranked by spk_sim")
    assert best["unscored_rows"] == {"error_rate": 4} and best["metrics"]["error_rate"] is None
    assert best["score"] == pytest.approx(score(aggregate(rows)[1], SelectionRule(primary="spk_sim", tie_break=())))
    nothing = [dict(row, spk_sim=None) for row in rows]  # no speaker judge either: fewest runaways, earliest epoch
    assert select_best(nothing)["ranked_by"] == "rate_error" and select_best(nothing)["epoch"] == 0


def test_a_row_whose_metric_failed_is_counted_and_left_out_of_the_mean():
    rows = language_rows(0, 0.5, {"en": 0.2, "de": None, "fr": 0.4}, 0.8)
    best = select_best(rows)
    assert best["metrics"]["error_rate"] == pytest.approx(0.3) and best["unscored_rows"] == {"error_rate": 1}


# ---------------------------------------------------------------- zero-shot baselines


def test_baseline_rows_are_compared_not_chosen(grid: list[dict]):
    """Baseline rows (the base model zero-shot) never become candidates; best.json compares the chosen cell with
    the best of them: (2, 0.3) has wer 0.08 and spk_sim 0.70; the best zero-shot (by the same rule) is voice_clone."""
    xvector = [dict(r, baseline="xvector", epoch=-1, lora_scale=0.0) for r in cell_rows(9, 0, wer=0.30, spk_sim=0.6)]
    clone = [dict(r, baseline="voice_clone", epoch=-1, lora_scale=0.0) for r in cell_rows(9, 0, wer=0.05, spk_sim=0.75)]
    rows = grid + xvector + clone
    assert [(c["epoch"], c["lora_scale"]) for c in aggregate(rows)] == [(c["epoch"], c["lora_scale"])
                                                                         for c in aggregate(grid)]  # fmt: skip
    best = select_best(rows)
    assert (best["epoch"], best["lora_scale"], best["candidates"]) == (2, 0.3, 4)
    assert best["baselines"]["voice_clone"]["wer"] == pytest.approx(0.05) and best["baselines"]["xvector"]["n"] == 4
    assert best["vs_baseline"] == "chosen cell vs best zero-shot (voice_clone): error_rate +0.030, spk_sim -0.050"
    strict = select_best(rows, SelectionRule(beat_baseline=True))  # no passing cell beats voice_clone's 0.05
    assert not strict["passed_filters"] and "error_rate better than zero-shot" in strict["reason"]
    loose = select_best(rows, SelectionRule(beat_baseline=True, rate_tolerance=None, max_eos_fail=None))
    assert (loose["epoch"], loose["passing"]) == (1, 1)  # only wer 0.02 beats 0.05; the 0.05 tie does not


def speaker_rows(epoch: int, scale: float, by_speaker: dict[str, tuple[float, float, int]]) -> list[dict]:
    """Rows of one cell per speaker: (wer, rate, n); each speaker's rows carry its name."""
    rows = []
    for name, (wer, rate, n) in by_speaker.items():
        own = cell_rows(epoch, scale, wer, rate=rate, n=n)
        rows += [row | {"speaker": name, "utt_id": f"{name}_{row['utt_id']}"} for row in own]
    return rows


def test_several_speakers_are_averaged_per_speaker_then_combined():
    # ann has 6 sentences at WER 0.1, bob 2 at WER 0.5: the mean over speakers is 0.3 (not the row mean 0.2)
    rows = speaker_rows(0, 1.0, {"ann": (0.1, 1.2, 6), "bob": (0.5, 0.9, 2)})
    (cell,) = aggregate(rows)
    assert cell["n"] == 8 and cell["wer"] == pytest.approx(0.3) and cell["by_speaker"]["bob"]["n"] == 2
    assert cell["rate_error"] == pytest.approx((0.2 + 0.1) / 2)  # a fast and a slow voice do not cancel
    (worst,) = aggregate(rows, "worst")
    assert worst["wer"] == pytest.approx(0.5) and worst["rate_error"] == pytest.approx(0.2)
    assert worst["rate_ratio"] == pytest.approx(1.2) and worst["spk_sim"] == pytest.approx(0.8)


def test_worst_speaker_rule_does_not_sacrifice_a_voice():
    # epoch 0: both voices fair (0.2, 0.3); epoch 1: ann excellent (0.0), bob bad (0.45): mean prefers epoch 1
    rows = speaker_rows(0, 1.0, {"ann": (0.2, 1.0, 3), "bob": (0.3, 1.0, 3)})
    rows += speaker_rows(1, 1.0, {"ann": (0.0, 1.0, 3), "bob": (0.45, 1.0, 3)})
    assert select_best(rows, SelectionRule())["epoch"] == 1
    chosen = select_best(rows, SelectionRule(speaker_aggregate="worst"))
    assert chosen["epoch"] == 0 and "worst over 2 speakers" in chosen["reason"]
    assert chosen["metrics"]["by_speaker"]["bob"]["wer"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="speaker_aggregate"):
        SelectionRule(speaker_aggregate="median")


def test_rows_without_speakers_aggregate_as_before():
    rows = cell_rows(0, 1.0, 0.2, n=3) + cell_rows(0, 1.0, 0.4, n=1)
    (cell,) = aggregate(rows)
    assert cell["wer"] == pytest.approx(0.25) and "by_speaker" not in cell
    assert list(cell) == ["epoch", "lora_scale", "n", "error_rate", "wer", "cer", "spk_sim", "spk_sim_model",
                          "rate_ratio", "rate_ratio_vad", "units_per_second", "words_per_second", "dnsmos_sig",
                          "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808", "real_dnsmos_sig", "real_dnsmos_bak",
                          "real_dnsmos_ovrl", "real_dnsmos_p808", "rate_error", "eos_fail"]  # fmt: skip


def test_the_report_has_a_speaker_dimension():
    from qwen_tts_lit.evaluation.report import render_report

    rows = speaker_rows(0, 1.0, {"ann": (0.1, 1.0, 2), "bob": (0.4, 1.0, 2)})
    page = render_report(rows, select_best(rows, SelectionRule(speaker_aggregate="worst")))
    assert "<h2>By speaker</h2>" in page and "<h3>ann</h3>" in page and "<h3>bob</h3>" in page
    assert "the worst over speakers" in page and "WER 0.400" in page and "<b>bob</b>: the cat sat" in page
    assert "By speaker" not in render_report(cell_rows(0, 1.0, 0.2), None)


def natural_rows(epoch: int, wer: float, ovrl: float | None, real: float = 3.0, n: int = 4) -> list[dict]:
    """A cell's rows with DNSMOS OVRL ``ovrl`` (None: the judge was off) beside their real recordings' ``real``."""
    return [row | {"dnsmos_ovrl": ovrl, "real_dnsmos_ovrl": None if ovrl is None else real}
            for row in cell_rows(epoch, 1.0, wer, n=n)]  # fmt: skip


def test_naturalness_is_a_gate_a_primary_and_a_tie_break():
    """Epoch 0 is the most intelligible but unnatural (OVRL 1.5), epoch 1 a little worse on WER and natural (3.1)."""
    rows = natural_rows(0, 0.10, 1.5) + natural_rows(1, 0.12, 3.1)
    assert select_best(rows)["epoch"] == 0  # off by default: WER decides
    gated = select_best(rows, SelectionRule(min_dnsmos_ovrl=2.5))
    assert gated["epoch"] == 1 and "dnsmos_ovrl >= 2.5" in gated["reason"] and gated["passing"] == 1
    assert select_best(rows, SelectionRule(primary="dnsmos_ovrl"))["epoch"] == 1  # higher is better
    tied = SelectionRule(tie_tolerance=0.05, tie_break=("dnsmos_ovrl", "spk_sim"))
    assert select_best(rows, tied)["epoch"] == 1
    assert filter_misses(aggregate(rows)[0], SelectionRule(min_dnsmos_ovrl=2.5)) == {"dnsmos_ovrl": pytest.approx(1.0)}
    metrics = gated["metrics"]
    assert metrics["dnsmos_ovrl"] == pytest.approx(3.1) and metrics["real_dnsmos_ovrl"] == pytest.approx(3.0)


def test_a_gate_on_a_naturalness_nobody_measured_fails_every_cell_and_is_refused_in_the_settings():
    from qwen_tts_lit.errors import UserError
    from qwen_tts_lit.evaluation.settings import EvalSettings, JudgeSettings

    rows = natural_rows(0, 0.10, None) + natural_rows(1, 0.12, None)
    assert not select_best(rows, SelectionRule(min_dnsmos_ovrl=2.5))["passed_filters"]  # missing is a miss
    off = JudgeSettings(dnsmos=False)
    with pytest.raises(UserError, match=r"EvalSuite.rule.min_dnsmos_ovrl 2.5: needs the DNSMOS judge"):
        EvalSettings(judges=off, rule=SelectionRule(min_dnsmos_ovrl=2.5))
    with pytest.raises(UserError, match=r"EvalSuite.rule.tie_break dnsmos_ovrl: needs the DNSMOS judge"):
        EvalSettings(judges=off, rule=SelectionRule(tie_break=("spk_sim", "dnsmos_ovrl")))
    assert EvalSettings(rule=SelectionRule(primary="dnsmos_p808")).rule.primary == "dnsmos_p808"  # judge on


def test_the_report_shows_naturalness_beside_the_real_recordings_only_where_measured():
    from qwen_tts_lit.evaluation.report import render_report

    rows = natural_rows(0, 0.10, 2.25, real=3.0) + natural_rows(1, 0.12, 2.75, real=3.0)
    page = render_report(rows, select_best(rows))
    assert "OVRL 2.25 (real 3.00)" in page and "OVRL 2.75 (real 3.00)" in page
    assert "<!-- naturalness: DNSMOS OVRL (1-5) -->" in page and "<!-- real recordings -->" in page  # the plot's
    plain = render_report(cell_rows(0, 1.0, 0.2), None)
    assert "OVRL" not in plain.split("<p class='note'>")[0] and "naturalness: DNSMOS" not in plain
