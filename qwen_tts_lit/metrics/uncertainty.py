"""How sure a figure is: intervals of means and paired comparisons over held-out sentences, as pure functions.

The unit that is resampled is the **held-out sentence**. An evaluation speaks the same few sentences (8 by default)
in every cell, with the same seeds; rows of one sentence (its seeds, its codec prefixes) share the text, its
difficulty for the ASR judge and its length, so they are not independent draws. Each sentence's rows are averaged
first (:func:`unit_means`) and the interval is over those per-sentence means, so n is the number of sentences.

Interval of a mean: the studentized bootstrap (bootstrap-t; Efron and Tibshirani 1993, ch. 12.5; Hall 1988). Each
resample's mean is standardised by that resample's own standard error, and the quantiles of those t values replace
Student's t. With as few as 8 units and skewed metrics (error rates: mostly 0, one hard sentence) it is the method that
keeps its promise: measured over 1,000 simulated evaluations of 8 sentences (docs/uncertainty.md), a 95 % interval
covered the true mean 93 % of the time for skewed data (Student's t: 85 %, BCa: 83 %, scipy.stats.bootstrap's
default) and 95 % for normal data. The price is width: an interval over 8 skewed values is wide, which is the truth
about 8 values.

Comparing two cells: the per-sentence paired differences (the same sentence spoken by both), their mean with the
same interval, and an exact two-sided sign-flip permutation test (Fisher's randomisation test of the paired mean:
under the null, each sentence's difference is as likely to have either sign). Exact by enumeration of all 2^n sign
patterns up to n = :data:`EXACT_MAX_UNITS`, a seeded Monte Carlo estimate above it. It makes no normality
assumption, which a paired t-test would, on 8 skewed values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95  # the confidence of every interval the project prints
RESAMPLES = 10_000  # bootstrap resamples: the interval's bounds move by well under 1 % of its width between seeds
EXACT_MAX_UNITS = 16  # 2^16 sign patterns (65,536): exact; beyond it a Monte Carlo test with RESAMPLES draws
SEED = 0  # every interval is reproducible: the same rows give the same bounds
NO_SPREAD = 1e-10  # a resample whose variance is below this share of the sample's has none (rounding, not spread)
CHUNK = 64  # samples resampled together by mean_intervals: small enough that its arrays stay in the CPU's cache


@dataclass(frozen=True)
class Interval:
    """A mean with its ``level`` interval over ``n`` units; ``low``/``high`` are None when n < 2 (no spread)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int
    level: float = LEVEL

    def as_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n, "level": self.level}


@dataclass(frozen=True)
class Difference:
    """``a - b`` paired by unit: the mean difference with its interval, and the sign-flip test's two-sided p."""

    interval: Interval
    p_value: float | None
    exact: bool  # True: all 2^n sign patterns enumerated; False: Monte Carlo

    def separates(self) -> bool:
        """Whether the data tell the two apart: the interval excludes 0 (None when it could not be computed)."""
        low, high = self.interval.low, self.interval.high
        return low is not None and high is not None and (low > 0 or high < 0)

    def as_dict(self) -> dict:
        return {**self.interval.as_dict(), "p_value": self.p_value, "exact_test": self.exact}


def unit_means(rows: Iterable[Mapping], metric: str, unit: str = "text") -> dict[Hashable, float]:
    """{unit: the mean of ``metric`` over that unit's rows}, rows whose value is None (unscored) left out, units
    with no value left out. ``unit``: the field that names the independent unit (the held-out sentence's text)."""
    groups: dict[Hashable, list[float]] = {}
    for row in rows:
        value = row.get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        groups.setdefault(row[unit], []).append(float(value))
    return {key: sum(values) / len(values) for key, values in groups.items()}


def mean_interval(
    values: Iterable[float], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED
) -> Interval:
    """The mean of ``values`` (one per independent unit) with its studentized bootstrap interval."""
    x = np.asarray(list(values), dtype=np.float64)
    n = len(x)
    if n == 0:
        return Interval(None, None, None, 0, level)
    if n < 2:
        return Interval(float(x[0]), None, None, n, level)
    if np.all(x == x[0]):  # no spread: every resample gives the same mean (x[0] exactly, not a rounded sum)
        return Interval(float(x[0]), float(x[0]), float(x[0]), n, level)
    mean, error = float(x.mean()), float(x.std(ddof=1)) / math.sqrt(n)
    t = studentized_replicates(x, resamples, seed)
    upper, lower = np.quantile(t, [(1 + level) / 2, (1 - level) / 2])  # the t quantiles swap ends, by definition
    return Interval(mean, mean - float(upper) * error, mean - float(lower) * error, n, level)


def mean_intervals(
    samples: Iterable[Iterable[float]], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED
) -> list[Interval]:
    """:func:`mean_interval` of each sample, computed together: samples of one length n share mean_interval's own
    seeded draws (the same resamples, so the same bounds up to float rounding), every sample's resampled means and
    variances come from matrix products with the resamples' counts, and equal samples are computed once. A run's
    chosen cell records hundreds of intervals (cells x metrics): one by one they take seconds, together a fraction."""
    arrays = [np.asarray(list(values), dtype=np.float64) for values in samples]
    found: dict[bytes, Interval] = {}
    by_length: dict[int, dict[bytes, np.ndarray]] = {}
    for x in arrays:
        if len(x) < 2 or np.all(x == x[0]):  # no spread: nothing to resample
            found[x.tobytes()] = mean_interval(x, level, resamples, seed)
        else:
            by_length.setdefault(len(x), {})[x.tobytes()] = x
    for n, unique in by_length.items():
        draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))  # mean_interval's draws exactly
        offsets = np.repeat(np.arange(resamples) * n, n)
        counts = np.bincount(offsets + draws.ravel(), minlength=resamples * n).reshape(resamples, n).T.astype(float)
        keys = list(unique)
        for start in range(0, len(keys), CHUNK):  # a chunk's (CHUNK, resamples) arrays stay in the CPU's cache
            chunk = keys[start : start + CHUNK]
            found |= dict(zip(chunk, _studentized_intervals([unique[k] for k in chunk], counts, level), strict=True))
    return [found[x.tobytes()] for x in arrays]


def _studentized_intervals(samples: list[np.ndarray], counts: np.ndarray, level: float) -> list[Interval]:
    """mean_interval of samples of one length n, given the resamples' counts (n, resamples)."""
    n = counts.shape[0]
    centred = np.stack([x - x.mean() for x in samples])  # (k, n)
    shift = centred @ counts / n  # (k, R): mean* - mean
    variance = ((centred * centred) @ counts - n * shift * shift) / (n - 1)  # (k, R): each resample's s^2
    spread = variance > NO_SPREAD * centred.var(axis=1, ddof=1)[:, None]
    t = shift / np.sqrt(np.where(spread, variance, 1.0) / n)
    intervals = []
    for row, x in enumerate(samples):
        mean, error = float(x.mean()), float(x.std(ddof=1)) / math.sqrt(n)
        upper, lower = np.quantile(t[row, spread[row]], [(1 + level) / 2, (1 - level) / 2])
        intervals.append(Interval(mean, mean - float(upper) * error, mean - float(lower) * error, n, level))
    return intervals


def studentized_replicates(x: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(mean* - mean) / se* over ``resamples`` seeded resamples of ``x``. A resample that drew one value n times has
    no spread (se* = 0) and no t: it is left out, as is usual (at n = 8 about 1 in 2 million resamples; at n = 3,
    the demo's sentences, 1 in 9)."""
    n = len(x)
    drawn = x[np.random.default_rng(seed).integers(0, n, size=(resamples, n))]
    errors = drawn.std(axis=1, ddof=1) / math.sqrt(n)
    # Equal values drawn n times can leave rounding (3 v / 3 != v) instead of 0: a t of 1e15 that is not data.
    spread = errors**2 > NO_SPREAD * x.var(ddof=1) / n
    return (drawn.mean(axis=1)[spread] - x.mean()) / errors[spread]


def sign_flip_p_value(differences: Iterable[float], resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, bool]:
    """The two-sided p-value of the paired mean difference under random signs, and whether it is exact.

    p = P(|mean of sign-flipped differences| >= |observed mean|); the observed pattern is one of those counted, so
    p >= 2^-n (exact) or >= 1/(resamples + 1) (Monte Carlo, the observed counted once, as a valid test needs)."""
    d = np.asarray(list(differences), dtype=np.float64)
    n = len(d)
    if n == 0:
        return 1.0, True
    observed = abs(d.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(d).max()))  # equal means must count as equal despite rounding
    if n <= EXACT_MAX_UNITS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        means = np.abs(signs @ d) / n
        return float(np.count_nonzero(means >= observed - tolerance) / len(signs)), True
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(resamples, n))
    means = np.abs(signs @ d) / n
    return float((np.count_nonzero(means >= observed - tolerance) + 1) / (resamples + 1)), False


def paired_difference(
    a: Mapping[Hashable, float],
    b: Mapping[Hashable, float],
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Difference:
    """``a - b`` over the units both have (each a {unit: value} from :func:`unit_means`)."""
    shared = [key for key in a if key in b]
    differences = [a[key] - b[key] for key in shared]
    p_value, exact = sign_flip_p_value(differences, resamples, seed) if differences else (None, True)
    return Difference(mean_interval(differences, level, resamples, seed), p_value, exact)


def format_interval(
    interval: Interval, digits: int = 3, missing: str = "n/a", number: Callable[[float], str] | None = None
) -> str:
    """``0.123 [0.101, 0.150]`` (``0.123`` with no interval, ``missing`` with no value): how every mean with its
    interval is printed, in the report's cells, the ablation tables and the confidence sentence. ``number`` writes
    each of the three numbers (default: ``digits`` decimals; the report passes its own, e.g. a percentage)."""
    show = number or (lambda value: f"{value:.{digits}f}")
    if interval.mean is None:
        return missing
    if interval.low is None or interval.high is None:
        return show(interval.mean)
    return f"{show(interval.mean)} [{show(interval.low)}, {show(interval.high)}]"


def format_paired(
    interval: Interval, p_value: float | None, digits: int = 3, units: str = "", missing: str = "n/a (no shared units)"
) -> str:
    """``-0.012 [-0.031, +0.004] (n=8, p=0.31)``: a paired difference, signed so the direction reads at a glance
    (``0.123`` with no interval: ``+0.123 (n=1)``, no p); ``units`` names what n counts (``units="sentences"``:
    ``(n=8 sentences, p=0.31)``); ``missing`` with no value."""
    if interval.mean is None:
        return missing
    n = f"n={interval.n} {units}" if units else f"n={interval.n}"
    shown = format_interval(interval, number=lambda value: f"{value:+.{digits}f}")
    if interval.low is None or interval.high is None:
        return f"{shown} ({n})"
    p = f", p={p_value:.2g}" if p_value is not None else ""
    return f"{shown} ({n}{p})"


def format_difference(difference: Difference, digits: int = 3, units: str = "") -> str:
    """:func:`format_paired` of a :class:`Difference` (``n/a (no shared units)`` when the two share none)."""
    return format_paired(difference.interval, difference.p_value, digits, units)
