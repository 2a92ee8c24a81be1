"""The intervals and the paired test of metrics/uncertainty.py against scipy on small cases, and their known answers
over many simulated data sets: a planted difference is found, no difference is called one about 5 % of the time, and
a 95 % interval covers the true mean about 95 % of the time (each within binomial bounds)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from qwen_tts_lit.metrics.uncertainty import (
    format_difference,
    mean_interval,
    mean_intervals,
    paired_difference,
    sign_flip_p_value,
    unit_means,
)

# Eight per-sentence error rates as an evaluation gives them: mostly small, one sentence the judge finds hard.
ERRORS = [0.0, 0.05, 0.0, 0.1, 0.02, 0.4, 0.0, 0.08]


def binomial_bounds(p: float, trials: int, sigmas: float = 4.0) -> tuple[float, float]:
    spread = sigmas * math.sqrt(p * (1 - p) / trials)
    return p - spread, p + spread


def exact_studentized_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """The same interval with the bootstrap distribution enumerated instead of sampled: every one of the n^n equally
    likely resamples (ordered draws with replacement), by hand with itertools."""
    x = np.array(values)
    n, mean = len(x), x.mean()
    error = x.std(ddof=1) / math.sqrt(n)
    t = []
    for draw in itertools.product(range(n), repeat=n):
        sample = x[list(draw)]
        if sample.std(ddof=1) > 0:
            t.append((sample.mean() - mean) / (sample.std(ddof=1) / math.sqrt(n)))
    upper, lower = np.quantile(t, [(1 + level) / 2, (1 - level) / 2])
    return mean - upper * error, mean - lower * error


@pytest.mark.parametrize("values", [[0.0, 0.05, 0.4, 0.1, 0.02], [3.1, 2.7, 3.4, 2.9, 3.6]],
                         ids=["skewed", "even"])  # fmt: skip
def test_the_interval_is_the_exact_bootstrap_distributions(values):
    ours = mean_interval(values, resamples=40_000, seed=1)
    low, high = exact_studentized_interval(values)  # 5^5 = 3,125 resamples
    assert ours.mean == pytest.approx(np.mean(values)) and ours.n == len(values)
    width = high - low
    assert ours.low == pytest.approx(low, abs=0.03 * width) and ours.high == pytest.approx(high, abs=0.03 * width)


def test_on_many_even_values_the_interval_is_students():
    values = np.random.default_rng(3).normal(1.0, 0.5, 400)  # large n: the bootstrap t tends to Student's t
    ours = mean_interval(values, resamples=20_000)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    width = high - low
    assert ours.low == pytest.approx(low, abs=0.03 * width) and ours.high == pytest.approx(high, abs=0.03 * width)
    # on 8 skewed values it is not: its upper end reaches further (the skew Student's t ignores)
    skewed = mean_interval(ERRORS)
    t_high = stats.t.interval(0.95, 7, loc=np.mean(ERRORS), scale=stats.sem(ERRORS))[1]
    assert skewed.high > t_high + 0.02


def test_degenerate_cases_say_what_they_can():
    assert mean_interval([]).mean is None
    one = mean_interval([0.3])
    assert (one.mean, one.low, one.high, one.n) == (0.3, None, None, 1)
    flat = mean_interval([0.2, 0.2, 0.2])
    assert (flat.low, flat.high) == (0.2, 0.2)
    assert mean_interval(ERRORS) == mean_interval(ERRORS)  # seeded: the same rows give the same bounds


@pytest.mark.parametrize("n", [5, 8, 11])
def test_the_exact_sign_flip_test_is_scipys_permutation_test(n):
    rng = np.random.default_rng(n)
    differences = rng.normal(0.3, 1.0, n)
    ours, exact = sign_flip_p_value(differences)
    theirs = stats.permutation_test((differences,), lambda d, axis: np.mean(d, axis=axis), permutation_type="samples",
                                    n_resamples=np.inf, alternative="two-sided")  # fmt: skip
    assert exact and ours == pytest.approx(theirs.pvalue, rel=1e-12)


def test_the_sign_flip_test_by_hand():
    # differences 1, 2, 3: the 8 sign patterns give |means| 2, 4/3, 2/3, 0, 0, 2/3, 4/3, 2; the observed is 2 -> 2/8
    assert sign_flip_p_value([1.0, 2.0, 3.0]) == (0.25, True)
    assert sign_flip_p_value([0.0, 0.0])[0] == 1.0  # no difference at all
    p, exact = sign_flip_p_value(np.full(20, 0.5))  # above the exact limit: Monte Carlo, never below 1/(R+1)
    assert not exact and p == pytest.approx(1 / 10_001)


def test_unit_means_average_each_sentences_rows_first():
    rows = [{"text": "a", "wer": 0.0}, {"text": "a", "wer": 0.2}, {"text": "b", "wer": 0.5},
            {"text": "b", "wer": None}, {"text": "c", "wer": float("nan")}]  # fmt: skip
    assert unit_means(rows, "wer") == {"a": pytest.approx(0.1), "b": 0.5}


def test_a_paired_difference_pairs_by_sentence():
    a = {"s1": 0.10, "s2": 0.30, "s3": 0.20, "s4": 0.40, "extra": 9.0}
    b = {"s4": 0.35, "s3": 0.18, "s2": 0.26, "s1": 0.05}  # another order: pairing is by key, not position
    difference = paired_difference(a, b)
    assert difference.interval.n == 4 and difference.interval.mean == pytest.approx(0.04)
    assert difference.p_value == pytest.approx(2 / 16)  # all four positive: only all-+ and all-- are as extreme
    assert format_difference(difference).startswith("+0.040 [")


def test_a_planted_difference_is_found_and_no_difference_is_called_one_about_five_percent_of_the_time():
    rng = np.random.default_rng(0)
    trials, n = 400, 10
    null_calls = planted_calls = 0
    for _ in range(trials):
        sentence = rng.gamma(1.0, 0.1, n)  # each sentence's own difficulty, shared by both cells
        a = sentence + rng.normal(0, 0.02, n)
        same = sentence + rng.normal(0, 0.02, n)
        better = sentence - 0.06 + rng.normal(0, 0.02, n)  # planted: 3 noise sd better on every sentence
        null = paired_difference(dict(enumerate(a)), dict(enumerate(same)), resamples=2_000)
        planted = paired_difference(dict(enumerate(a)), dict(enumerate(better)), resamples=2_000)
        null_calls += null.p_value <= 0.05
        planted_calls += planted.p_value <= 0.05 and planted.separates() and planted.interval.mean > 0
    # exact test at n = 10: the attainable level at or below 0.05 is 50/1024 (p = 2k/1024, k <= 25)
    low, high = binomial_bounds(50 / 1024, trials)
    assert low <= null_calls / trials <= high, null_calls
    assert planted_calls / trials >= 0.95, planted_calls


@pytest.mark.parametrize("sample", ["normal", "skewed"])
def test_a_95_percent_interval_over_8_sentences_covers_the_true_mean_about_95_percent_of_the_time(sample):
    rng = np.random.default_rng(1)
    trials, n = 400, 8
    true = 0.5 if sample == "normal" else 0.05
    covered = 0
    for trial in range(trials):
        values = rng.normal(true, 0.2, n) if sample == "normal" else rng.gamma(0.5, 0.1, n)  # mean 0.05, skewed
        interval = mean_interval(values, resamples=2_000, seed=trial)
        covered += interval.low <= true <= interval.high
    # measured over 1,000 trials: 0.948 (normal), 0.933 (skewed); Student's t gives 0.854 on the skewed data
    low, high = binomial_bounds(0.94, trials)
    assert low <= covered / trials <= high, covered


def test_equal_values_drawn_n_times_are_no_spread_despite_rounding():
    """At n = 3 (the demo's sentences) 1 resample in 9 draws one value three times; its standard deviation is
    rounding (3 v / 3 != v for most v), not 0, and its t of about 1e15 once dragged the lower bound to -1e15."""
    values = [5.9144672031287815, 4.979936545384519, 3.7512511096655845]
    ours = mean_interval(values)
    assert min(values) - 1 < ours.low < ours.mean < ours.high < max(values) + 1
    assert np.std([values[0]] * 3, ddof=1) > 0  # the rounding that caused it


def test_the_batched_intervals_are_mean_interval_one_by_one():
    """Mixed lengths, ties (error rates of 0), no spread, one value, none, repeats: the same answers."""
    rng = np.random.default_rng(2)
    samples = [ERRORS, [1.0, 2.0], [3.0], [], [2.0, 2.0, 2.0], [0.1, 0.2, 0.1], [0, 0, 0, 0, 0, 1, 0, 0], ERRORS]
    samples += [list(rng.gamma(0.5, 0.1, n)) for n in (3, 5, 8, 8, 40)] + [list(rng.normal(0, 1, 40))]
    samples += [list(rng.normal(5, 1, 3)) for _ in range(70)]  # more than one chunk of one length
    for together, alone in zip(mean_intervals(samples), map(mean_interval, samples), strict=True):
        assert (together.n, together.mean) == (alone.n, alone.mean)
        if alone.low is None:
            assert together.low is None and together.high is None
        else:
            width = max(alone.high - alone.low, 1e-12)
            assert together.low == pytest.approx(alone.low, abs=1e-9 * width)
            assert together.high == pytest.approx(alone.high, abs=1e-9 * width)


def test_a_difference_names_what_n_counts():
    difference = paired_difference({i: v + 0.1 for i, v in enumerate(ERRORS)}, dict(enumerate(ERRORS)))
    assert format_difference(difference, units="sentences").endswith("(n=8 sentences, p=0.0078)")
    assert format_difference(difference).endswith("(n=8, p=0.0078)")
