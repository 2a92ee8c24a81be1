"""The statistics of a blind listening test, as pure functions of arrays (docs/listening_analysis.md).

**Raters and items are both random.** A MOS is a mean over raters x items: a harsh rater lowers every score they
give, a hard sentence every score it gets. Treating the ratings as independent (s / sqrt(N)) leaves both out and
gives an interval several times too narrow; resampling raters only leaves the items out. :func:`crossed_mean` uses
the variance of a mean under crossed random effects (rater, item, residual):

    Var(mean) = s2_rater / R + s2_item / I + s2_residual / (R I)

estimated without a model fit by the two-way cluster-robust ("multiway") variance of Cameron, Gelbach and Miller
(2011), ``A + B - C`` (A: the squared sums of residuals per rater, B: per item, C: per rater x item cell, each over
N^2), scaled by ``R I / ((R - 1)(I - 1))``. On a complete rater x item design with one rating per cell that is exactly
the ANOVA variance-components estimate ``(MS_rater + MS_item - MS_residual) / (R I)`` (unbiased; the identity is in
the docs and in the tests); on an incomplete one it is the same estimator, approximately unbiased. The interval is
Student's t with Satterthwaite's degrees of freedom for that sum of mean squares, so with 8 raters it is wide, as 8
raters are. It is never narrower than the per-rating interval (a negative or tiny variance-component estimate is
noise, not precision). Checked by simulation: 95 % coverage on data with rater and item effects, where the
per-rating interval covers about 60 % of the time (tests/listening/test_statistics.py).

Two systems are compared on the (rater, item) pairs both were rated on: the differences get the same interval, and
the test is the t-test with that standard error and those degrees of freedom (so p < 0.05 exactly when the 95 %
interval excludes 0). CMOS adds the sign test the field reports (wins vs losses, ties left out and counted); A/B
preference the binomial test of the decided answers with a Wilson interval; MUSHRA the post-screening of
ITU-R BS.1534-3 (:func:`post_screening`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from qwen_tts_lit.metrics.uncertainty import LEVEL, Interval

# ITU-R BS.1534-3, 4.1.2 (post-screening): an assessor is excluded who rates the hidden reference below 90 for more
# than 15 % of the test items, or (the same rule for the anchor) rates the mid-range anchor above 90 that often.
REFERENCE_MIN = 90.0
ANCHOR_MAX = 90.0
SCREENING_SHARE = 0.15


@dataclass(frozen=True)
class CrossedMean:
    """A mean over raters x items with its ``level`` interval (Student's t, ``df`` degrees of freedom, standard error
    ``se``); ``low``/``high`` are None when there is no spread to measure (a single rating)."""

    mean: float | None
    low: float | None
    high: float | None
    se: float | None
    df: float | None
    raters: int
    items: int
    ratings: int
    level: float = LEVEL

    def interval(self) -> Interval:
        """As :class:`~qwen_tts_lit.metrics.uncertainty.Interval` (n = ratings), for its formatters."""
        return Interval(self.mean, self.low, self.high, self.ratings, self.level)

    def p_value(self) -> float | None:
        """Two-sided p of "the mean is 0" with this standard error and these degrees of freedom (for differences)."""
        if self.mean is None or self.se is None:
            return None
        if self.se == 0:  # every pair differs by the same amount: no noise to weigh it against
            return 1.0 if self.mean == 0 else 0.0
        return float(2 * stats.t.sf(abs(self.mean) / self.se, self.df))


def _codes(labels: Sequence[Hashable]) -> tuple[np.ndarray, int]:
    """Integer codes 0..k-1 of ``labels`` and k."""
    index: dict[Hashable, int] = {}
    codes = np.array([index.setdefault(label, len(index)) for label in labels], dtype=np.int64)
    return codes, len(index)


def _squared_sums(codes: np.ndarray, residuals: np.ndarray) -> float:
    """Sum over groups of (the group's residual sum)^2."""
    return float(np.sum(np.bincount(codes, weights=residuals) ** 2))


def crossed_variance(
    values: Sequence[float], raters: Sequence[Hashable], items: Sequence[Hashable]
) -> tuple[float, float]:
    """(variance of the mean, its Satterthwaite degrees of freedom) under crossed rater and item effects (module
    docstring); never below the per-rating variance s^2 / N (then with N - 1 degrees of freedom)."""
    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    rater_codes, r = _codes(raters)
    item_codes, i = _codes(items)
    e = y - y.mean()
    naive = float(e @ e) / (n - 1) / n
    a = _squared_sums(rater_codes, e) / n**2
    b = _squared_sums(item_codes, e) / n**2
    if r >= 2 and i >= 2:
        c = _squared_sums(rater_codes * i + item_codes, e) / n**2
        variance = r * i / ((r - 1) * (i - 1)) * (a + b - c)
        # The three mean squares the variance is made of (over R I): rater, item and residual, with their df.
        m_rater, m_item = r / (r - 1) * a, i / (i - 1) * b
        m_residual = m_rater + m_item - variance
        spread = m_rater**2 / (r - 1) + m_item**2 / (i - 1) + m_residual**2 / ((r - 1) * (i - 1))
        df = variance**2 / spread if spread > 0 else n - 1.0
    elif r >= 2:  # one item: only the raters vary
        variance, df = r / (r - 1) * a, r - 1.0
    elif i >= 2:  # one rater: only the items vary
        variance, df = i / (i - 1) * b, i - 1.0
    else:
        variance, df = naive, n - 1.0
    if not variance > naive:
        return naive, n - 1.0
    return variance, float(min(max(df, 1.0), n - 1.0))


def crossed_mean(
    values: Sequence[float], raters: Sequence[Hashable], items: Sequence[Hashable], level: float = LEVEL
) -> CrossedMean:
    """The mean of ``values`` (one per rating; ``raters[k]`` and ``items[k]`` say whose and of what) with its
    interval under crossed rater and item effects (module docstring)."""
    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    r, i = len(set(raters)), len(set(items))
    if n == 0:
        return CrossedMean(None, None, None, None, None, 0, 0, 0, level)
    mean = float(y.mean())
    if n < 2:
        return CrossedMean(mean, None, None, None, None, r, i, n, level)
    variance, df = crossed_variance(y, raters, items)
    se = math.sqrt(variance)
    half = float(stats.t.ppf((1 + level) / 2, df)) * se
    return CrossedMean(mean, mean - half, mean + half, se, df, r, i, n, level)


def cell_means(
    values: Sequence[float], raters: Sequence[Hashable], items: Sequence[Hashable]
) -> dict[tuple[Hashable, Hashable], float]:
    """{(rater, item): the mean of that rater's ratings of that item} (a rater who heard one item twice: averaged)."""
    sums: dict[tuple[Hashable, Hashable], list[float]] = {}
    for value, rater, item in zip(values, raters, items, strict=True):
        sums.setdefault((rater, item), []).append(float(value))
    return {key: sum(v) / len(v) for key, v in sums.items()}


def paired_crossed_difference(
    first: Mapping[tuple[Hashable, Hashable], float],
    second: Mapping[tuple[Hashable, Hashable], float],
    level: float = LEVEL,
) -> CrossedMean:
    """``first - second`` over the (rater, item) cells both have (each from :func:`cell_means`), with the crossed
    interval; :meth:`CrossedMean.p_value` is its paired test."""
    shared = [key for key in first if key in second]
    differences = [first[key] - second[key] for key in shared]
    return crossed_mean(differences, [k[0] for k in shared], [k[1] for k in shared], level)


@dataclass(frozen=True)
class SignTest:
    """Answers for (wins), against (losses) and ties (0), and the two-sided exact sign test of wins vs losses."""

    wins: int
    losses: int
    ties: int
    p_value: float | None  # None: no decided answer


def sign_test(scores: Iterable[float]) -> SignTest:
    """The sign test of ``scores`` (positive: a win): ``binomtest(wins, wins + losses, 0.5)``, ties left out of the
    test (a tie says nothing about the direction) and reported."""
    x = np.asarray(list(scores), dtype=np.float64)
    wins, losses = int(np.sum(x > 0)), int(np.sum(x < 0))
    ties = len(x) - wins - losses
    p = float(stats.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else None
    return SignTest(wins, losses, ties, p)


@dataclass(frozen=True)
class Preference:
    """A/B answers for the first system, for the second and "no preference"; the first system's share of the decided
    answers with its Wilson interval, and the two-sided binomial test of the decided answers against 1/2."""

    first: int
    second: int
    none: int
    decided_share: Interval  # n = decided answers
    p_value: float | None

    @property
    def total(self) -> int:
        return self.first + self.second + self.none

    def share(self, count: int) -> float | None:
        """``count`` as a share of all answers, "no preference" included."""
        return count / self.total if self.total else None


def preference(choices: Iterable[int], level: float = LEVEL) -> Preference:
    """``choices``: +1 the first system preferred, -1 the second, 0 no preference. "No preference" is counted in the
    shares and left out of the test (as ties in a sign test): the test asks, of those who heard a difference, whether
    more preferred one side than chance would give."""
    x = np.asarray(list(choices), dtype=np.int64)
    first, second = int(np.sum(x > 0)), int(np.sum(x < 0))
    none = len(x) - first - second
    decided = first + second
    if not decided:
        return Preference(first, second, none, Interval(None, None, None, 0, level), None)
    test = stats.binomtest(first, decided, 0.5)
    ci = test.proportion_ci(confidence_level=level, method="wilson")
    share = Interval(first / decided, float(ci.low), float(ci.high), decided, level)
    return Preference(first, second, none, share, float(test.pvalue))


def post_screening(
    reference: Mapping[Hashable, Sequence[float]],
    anchor: Mapping[Hashable, Sequence[float]] | None = None,
    share: float = SCREENING_SHARE,
) -> dict[Hashable, str]:
    """{rater: why excluded} by ITU-R BS.1534-3's post-screening: ``reference`` holds each rater's hidden-reference
    ratings (one per test trial), ``anchor`` (optional; None skips the rule) their mid/low-anchor ratings. A rater
    is excluded who rates the reference below 90 in more than ``share`` of their trials, or the anchor above 90
    that often."""
    excluded: dict[Hashable, str] = {}
    for rater, values in reference.items():
        low = sum(v < REFERENCE_MIN for v in values)
        if values and low / len(values) > share:
            excluded[rater] = (
                f"hidden reference rated below {REFERENCE_MIN:g} in {low} of {len(values)} trials "
                f"({low / len(values):.0%} > {share:.0%})"
            )
    for rater, values in (anchor or {}).items():
        high = sum(v > ANCHOR_MAX for v in values)
        if values and high / len(values) > share and rater not in excluded:
            excluded[rater] = (
                f"anchor rated above {ANCHOR_MAX:g} in {high} of {len(values)} trials "
                f"({high / len(values):.0%} > {share:.0%})"
            )
    return excluded
