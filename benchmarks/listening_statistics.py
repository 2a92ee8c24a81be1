"""How the listening-test intervals and tests of ``qwen_tts_lit/listening/statistics.py`` keep their promise, on
simulated tests with rater and item effects (docs/listening_analysis.md quotes these figures).

    python benchmarks/listening_statistics.py                 # 2,000 simulated tests per figure, about 20 s
    python benchmarks/listening_statistics.py --datasets 500

A rating is ``3 + rater effect + item effect + noise`` (sd 0.5, 0.5, 0.8 unless said: 1-5-scale-like spreads).
Coverage: how often a 95 % interval contains 3. False calls: how often two systems with no difference (each with its
own rater x system and item x system effects, sd 0.3, and noise 0.6) are called different at p < 0.05. Prints
figures; asserts nothing (tests/listening/test_listening_statistics.py pins the ones that matter on 400 tests).
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from qwen_tts_lit.listening.statistics import cell_means, crossed_mean, paired_crossed_difference

DESIGNS = [  # raters, items, rater sd, item sd, noise sd, share of (rater, item) cells missing
    (12, 10, 0.5, 0.5, 0.8, 0.0),
    (8, 20, 0.3, 0.6, 1.0, 0.0),
    (30, 8, 0.5, 0.2, 1.0, 0.0),
    (6, 6, 0.5, 0.5, 0.5, 0.0),
    (20, 20, 0.0, 0.0, 1.0, 0.0),
    (12, 10, 0.5, 0.5, 0.8, 0.4),
]


def grid(raters: int, items: int) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(np.arange(raters), items), np.tile(np.arange(items), raters)


def coverage(rng, datasets: int, raters, items, rater_sd, item_sd, noise_sd, missing) -> dict[str, float]:
    r, i = grid(raters, items)
    hits = {"crossed": 0, "per rating": 0, "per rater": 0}
    for _ in range(datasets):
        y = 3 + rng.normal(0, rater_sd, raters)[r] + rng.normal(0, item_sd, items)[i] + rng.normal(0, noise_sd, r.size)
        keep = rng.random(r.size) >= missing
        c = crossed_mean(y[keep], r[keep], i[keep])
        hits["crossed"] += c.low <= 3 <= c.high
        yk = y[keep]
        low, high = stats.t.interval(0.95, yk.size - 1, loc=yk.mean(), scale=stats.sem(yk))
        hits["per rating"] += low <= 3 <= high
        means = np.array([yk[r[keep] == k].mean() for k in range(raters) if np.any(r[keep] == k)])
        low, high = stats.t.interval(0.95, means.size - 1, loc=means.mean(), scale=stats.sem(means))
        hits["per rater"] += low <= 3 <= high
    return {k: v / datasets for k, v in hits.items()}


def false_calls(rng, datasets: int, effect: float = 0.0) -> dict[str, float]:
    raters, items = 12, 10
    r, i = grid(raters, items)
    calls = {"crossed t": 0, "per-rating paired t": 0}
    for _ in range(datasets):
        shared = rng.normal(0, 0.5, raters)[r] + rng.normal(0, 0.5, items)[i]
        a, b = (shared + rng.normal(0, 0.3, raters)[r] + rng.normal(0, 0.3, items)[i] + rng.normal(0, 0.6, r.size)
                for _ in range(2))  # fmt: skip
        ca, cb = cell_means(a + effect, r, i), cell_means(b, r, i)
        calls["crossed t"] += paired_crossed_difference(ca, cb).p_value() < 0.05
        calls["per-rating paired t"] += stats.ttest_rel(list(ca.values()), list(cb.values())).pvalue < 0.05
    return {k: v / datasets for k, v in calls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=2000, help="simulated tests per figure")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"coverage of a 95 % interval of the mean ({args.datasets} simulated tests each)")
    print("raters items  sd_rater sd_item sd_noise missing | crossed  per-rating  per-rater")
    for design in DESIGNS:
        share = coverage(rng, args.datasets, *design)
        print(f"{design[0]:6d} {design[1]:5d}  {design[2]:8.1f} {design[3]:7.1f} {design[4]:8.1f} {design[5]:7.0%} | "
              f"{share['crossed']:7.3f}  {share['per rating']:10.3f}  {share['per rater']:9.3f}")  # fmt: skip
    for effect in (0.0, 0.4, 0.8):
        calls = false_calls(rng, args.datasets, effect)
        what = "false calls (no difference)" if effect == 0 else f"power at a difference of {effect}"
        print(f"{what}, 12 raters x 10 items: " + ", ".join(f"{k} {v:.3f}" for k, v in calls.items()))


if __name__ == "__main__":
    main()
