"""The statistics of listening tests (listening/statistics.py) against hand and scipy computations on small cases,
and their known answers over many simulated tests with rater and item effects: the crossed interval covers the true
mean about 95 % of the time where the per-rating and per-rater intervals do not; no difference is called one about
5 % of the time where a per-rating paired t-test calls it far more often; a planted difference is found."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from qwen_tts_lit.listening.statistics import (
    cell_means,
    crossed_mean,
    crossed_variance,
    paired_crossed_difference,
    post_screening,
    preference,
    sign_test,
)

DATASETS = 400  # simulated tests per known-answer check: 4-sigma binomial bounds of +-0.044 around 0.95 or 0.05


def binomial_bounds(p: float, trials: int = DATASETS, sigmas: float = 4.0) -> tuple[float, float]:
    spread = sigmas * math.sqrt(p * (1 - p) / trials)
    return p - spread, p + spread


def grid(raters: int, items: int) -> tuple[np.ndarray, np.ndarray]:
    """Rater and item of each rating of a complete raters x items design."""
    return np.repeat(np.arange(raters), items), np.tile(np.arange(items), raters)


def simulated(rng, raters=12, items=10, rater_sd=0.5, item_sd=0.5, noise_sd=0.8, mean=3.0) -> np.ndarray:
    """Ratings with crossed random effects: a rater's leniency, an item's difficulty, and noise."""
    r, i = grid(raters, items)
    return (
        mean + rng.normal(0, rater_sd, raters)[r] + rng.normal(0, item_sd, items)[i] + rng.normal(0, noise_sd, r.size)
    )


def test_on_a_complete_design_the_variance_is_the_anova_variance_components_estimate():
    """(MS_rater + MS_item - MS_residual) / (R I), two-way ANOVA without replication worked out by hand, and
    Satterthwaite's degrees of freedom for that sum."""
    ratings = np.array([[4, 5, 3], [2, 3, 2], [5, 5, 4], [3, 4, 2]], dtype=float)  # 4 raters x 3 items
    R, I = ratings.shape  # noqa: E741 (the usual names of the ANOVA)
    grand = ratings.mean()
    ms_rater = I * ((ratings.mean(axis=1) - grand) ** 2).sum() / (R - 1)
    ms_item = R * ((ratings.mean(axis=0) - grand) ** 2).sum() / (I - 1)
    residual = ratings - ratings.mean(axis=1, keepdims=True) - ratings.mean(axis=0, keepdims=True) + grand
    ms_residual = (residual**2).sum() / ((R - 1) * (I - 1))
    expected = (ms_rater + ms_item - ms_residual) / (R * I)
    df = (ms_rater + ms_item - ms_residual) ** 2 / (
        ms_rater**2 / (R - 1) + ms_item**2 / (I - 1) + ms_residual**2 / ((R - 1) * (I - 1))
    )
    r, i = grid(R, I)
    variance, ours_df = crossed_variance(ratings.ravel(), r, i)
    assert variance == pytest.approx(expected, rel=1e-12) and ours_df == pytest.approx(df, rel=1e-12)
    interval = crossed_mean(ratings.ravel(), [f"r{k}" for k in r], [f"i{k}" for k in i])
    half = stats.t.ppf(0.975, df) * math.sqrt(expected)
    assert (interval.mean, interval.raters, interval.items, interval.ratings) == (pytest.approx(grand), 4, 3, 12)
    assert interval.low == pytest.approx(grand - half) and interval.high == pytest.approx(grand + half)


def test_one_rater_is_students_t_over_items():
    values = [3.0, 4.0, 2.0, 5.0, 4.0, 3.5]
    interval = crossed_mean(values, ["ann"] * 6, list("abcdef"))
    low, high = stats.t.interval(0.95, 5, loc=np.mean(values), scale=stats.sem(values))
    assert (interval.low, interval.high, interval.df) == (pytest.approx(low), pytest.approx(high), 5)


def test_never_narrower_than_the_per_rating_interval_and_degenerate_cases():
    r, i = grid(6, 5)
    for seed in range(20):  # no rater or item effect: the estimate alone falls below s^2/N about half the time
        noise = 3 + np.random.default_rng(seed).normal(0, 1, r.size)
        variance, _ = crossed_variance(noise, r, i)
        assert variance >= noise.var(ddof=1) / noise.size * (1 - 1e-12)
    assert crossed_mean([], [], []).mean is None
    one = crossed_mean([4.0], ["a"], ["x"])
    assert (one.mean, one.low, one.high, one.ratings) == (4.0, None, None, 1)


@pytest.mark.parametrize(
    ("n_raters", "n_items", "rater_sd", "item_sd", "per_rater_below"),
    [(12, 10, 0.5, 0.5, 0.9), (20, 6, 0.3, 0.6, 0.75)],  # measured: crossed 0.93 / 0.95, per rater 0.83 / 0.57
    ids=["12x10", "20x6-items-dominate"],
)
def test_the_crossed_interval_covers_95_percent_where_per_rating_and_per_rater_intervals_do_not(
    n_raters, n_items, rater_sd, item_sd, per_rater_below
):
    """The oracle a wrong method cannot pass: raters x items with rater and item effects."""
    rng = np.random.default_rng(0)
    raters, items = grid(n_raters, n_items)
    covered = {"crossed": 0, "per rating": 0, "per rater": 0}
    t_ratings, t_raters = stats.t.ppf(0.975, raters.size - 1), stats.t.ppf(0.975, n_raters - 1)
    for _ in range(DATASETS):
        y = simulated(rng, n_raters, n_items, rater_sd, item_sd)
        c = crossed_mean(y, raters, items)
        covered["crossed"] += c.low <= 3.0 <= c.high
        covered["per rating"] += abs(y.mean() - 3.0) <= t_ratings * stats.sem(y)
        means = y.reshape(n_raters, n_items).mean(axis=1)  # t over the raters' means: the items' effect left out
        covered["per rater"] += abs(means.mean() - 3.0) <= t_raters * stats.sem(means)
    share = {k: v / DATASETS for k, v in covered.items()}
    low, high = binomial_bounds(0.95)
    assert low <= share["crossed"] <= high, share
    assert share["per rating"] < 0.8 and share["per rater"] < per_rater_below, share  # per rating: 0.56 / 0.49


def test_an_incomplete_design_still_covers():
    """A third of the (rater, item) cells missing at random (raters who skipped trials, screened rows)."""
    rng = np.random.default_rng(1)
    raters, items = grid(12, 10)
    covered = 0
    for _ in range(DATASETS):
        keep = rng.random(raters.size) > 1 / 3
        c = crossed_mean(simulated(rng)[keep], raters[keep], items[keep])
        covered += c.low <= 3.0 <= c.high
    assert binomial_bounds(0.95)[0] <= covered / DATASETS <= binomial_bounds(0.95)[1]


def _paired(rng, effect: float) -> tuple[dict, dict]:
    """Two systems rated by the same 12 raters on the same 10 items; besides the shared rater and item effects, each
    system has its own rater x system and item x system effects (a rater who dislikes one system's artefacts)."""
    raters, items = grid(12, 10)
    shared = simulated(rng, noise_sd=0.0)
    a = shared + rng.normal(0, 0.3, 12)[raters] + rng.normal(0, 0.3, 10)[items] + rng.normal(0, 0.6, raters.size)
    b = shared + rng.normal(0, 0.3, 12)[raters] + rng.normal(0, 0.3, 10)[items] + rng.normal(0, 0.6, raters.size)
    return cell_means(a + effect, raters, items), cell_means(b, raters, items)


def test_no_difference_is_called_one_5_percent_of_the_time_and_a_planted_one_is_found():
    rng = np.random.default_rng(2)
    called, naive_called = 0, 0
    for _ in range(DATASETS):
        a, b = _paired(rng, 0.0)
        d = paired_crossed_difference(a, b)
        called += d.p_value() < 0.05
        assert (d.p_value() < 0.05) == (d.low > 0 or d.high < 0)  # the test and the interval agree
        naive_called += stats.ttest_rel(list(a.values()), list(b.values())).pvalue < 0.05
    low, high = binomial_bounds(0.05)
    assert low <= called / DATASETS <= high, called
    assert naive_called / DATASETS > 0.2, naive_called  # a per-rating paired t-test: measured 0.35 (ours 0.06)
    found = sum(paired_crossed_difference(*_paired(rng, 0.8)).p_value() < 0.05 for _ in range(100))
    assert found >= 85  # power at 0.8 of a point with these effects: measured 0.97 (at 0.6: 0.75)
    d = paired_crossed_difference(*_paired(np.random.default_rng(9), 0.8))
    assert d.mean > 0 and (d.raters, d.items, d.ratings) == (12, 10, 120)


def test_the_sign_test_is_scipys_binomial_test_with_ties_counted_apart():
    scores = [1, 2, -1, 0, 3, 1, 0, 2, -2, 1]
    result = sign_test(scores)
    assert (result.wins, result.losses, result.ties) == (6, 2, 2)
    assert result.p_value == pytest.approx(stats.binomtest(6, 8, 0.5).pvalue)
    assert sign_test([0, 0]).p_value is None


def test_sign_and_binomial_tests_hold_their_level_and_find_a_planted_preference():
    rng = np.random.default_rng(3)
    null_sign = sum(sign_test(rng.integers(-3, 4, 60)).p_value < 0.05 for _ in range(DATASETS))
    null_ab = sum(preference(rng.choice([1, -1, 0], 60)).p_value < 0.05 for _ in range(DATASETS))
    for count in (null_sign, null_ab):  # exact tests of discrete counts: at most 5 %, a little under
        assert 0.01 <= count / DATASETS <= binomial_bounds(0.05)[1], count
    planted = rng.choice([1, 2, 3, 0, -1], size=(100, 60), p=[0.3, 0.2, 0.1, 0.25, 0.15])
    assert sum(sign_test(s).p_value < 0.05 for s in planted) >= 80
    planted_ab = rng.choice([1, -1, 0], size=(100, 60), p=[0.6, 0.15, 0.25])
    assert sum(preference(c).p_value < 0.05 for c in planted_ab) >= 80


def test_preference_shares_count_no_preference_and_the_interval_is_wilsons():
    result = preference([1] * 14 + [-1] * 6 + [0] * 5)
    assert (result.first, result.second, result.none, result.total) == (14, 6, 5, 25)
    assert result.share(result.none) == pytest.approx(0.2)
    n, p = 20, 14 / 20
    z = stats.norm.ppf(0.975)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    share = result.decided_share
    assert (share.mean, share.n) == (pytest.approx(0.7), 20)
    assert share.low == pytest.approx(centre - half) and share.high == pytest.approx(centre + half)
    assert result.p_value == pytest.approx(stats.binomtest(14, 20).pvalue)
    assert preference([0, 0]).p_value is None


def test_post_screening_follows_bs1534():
    """More than 15 % of trials with the hidden reference below 90 excludes; exactly 15 % does not."""
    ok = [100] * 17 + [85] * 3  # 3 of 20 = 15 %
    bad = [100] * 16 + [85] * 4  # 4 of 20 = 20 %
    excluded = post_screening({"ok": ok, "bad": bad, "fine": [95] * 20})
    assert list(excluded) == ["bad"] and "4 of 20 trials" in excluded["bad"] and "below 90" in excluded["bad"]
    anchors = {"ok": [20] * 20, "fine": [95] * 4 + [30] * 16, "bad": [10] * 20}
    with_anchor = post_screening({"ok": ok, "bad": bad, "fine": [95] * 20}, anchors)
    assert set(with_anchor) == {"bad", "fine"} and "anchor rated above 90 in 4 of 20" in with_anchor["fine"]
    assert "hidden reference" in with_anchor["bad"]  # the first rule's reason is the one kept
