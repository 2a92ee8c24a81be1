"""Which (epoch, lora_scale) is best: pure functions over the per-utterance evaluation rows of a run.

The rule (:class:`SelectionRule`, defaults in brackets): average each cell's rows; keep the cells that do not run
away (``eos_fail <= max_eos_fail`` [0.0]), speak at the real speaker's rate (``|rate_ratio - 1| <= rate_tolerance``
[0.15]) and, optionally, sound like them (``spk_sim >= min_spk_sim`` [off]), natural (``dnsmos_ovrl >=
min_dnsmos_ovrl`` [off], DNSMOS's overall MOS, 1-5) and still follow instructions (``instruct_retention >=
min_instruct_retention`` [off]: the instruction probe's worst share of the base model's effect,
``metrics.instructions``); among those take the lowest
``primary`` [error_rate: each row's language decides, CER for Chinese, Japanese, Korean and Cantonese, WER
otherwise]; cells within ``tie_tolerance`` [0.0] of it are tied and ordered by ``tie_break`` [spk_sim, higher is
better], then by the earlier epoch and the smaller scale (less training, gentler adapter). When no cell passes the
filters the same order is applied to all cells and the result says ``passed_filters: false``. With ``conservative``
[off], the choice is then the cell with the fewest epochs (then the lowest scale) among those that the paired test
over the held-out sentences cannot tell apart from that best one (``metrics.evidence``).

The chosen cell also says how sure it is (``metrics.evidence``, docs/uncertainty.md): every cell and baseline carries
each metric's mean, 95 % interval and n (held-out sentences), and ``confidence`` holds the paired difference of the
primary between the chosen cell and the runner-up, and the best zero-shot baseline. An RL run's starting point (its
SFT cell or the base model, epoch ``START_EPOCH``, evaluated before the first step on the same sentences) is a
candidate like any cell, the earliest, so it wins ties; when an RL step is chosen, ``confidence.start`` is its paired
difference from the start at the same scale.

A metric that could not be computed for a row is None there (a JSON null) and is left out of its cell's mean; the
chosen cell counts such rows (``unscored_rows``). When no row has the primary at all (ASR switched off), the rule
ranks on the first tie-break metric that was measured and says so (``ranked_by``, ``reason``): it never fails on a
missing metric.

Rows of several speakers (a ``speaker`` field) are averaged per speaker first; the cell's metrics are then the
mean over speakers (``speaker_aggregate="mean"``: every voice weighs the same, however many sentences it has) or the
worst speaker's value of each metric (``"worst"``: one voice cannot be sacrificed for another). Each speaker's own
figures stay in the cell under ``by_speaker``. Rows without a speaker are aggregated exactly as before.

:func:`score` folds the rule into one number per cell for ``ModelCheckpoint(monitor="val/score", mode="max")``;
the chosen cell from :func:`select_best` (what the run folder records) is the authority.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from qwen_tts_lit.metrics.evidence import START_EPOCH, cell_intervals, confidence, conservative_pick, row_value
from qwen_tts_lit.metrics.instructions import MEAN_FIELDS as PROBE_FIELDS
from qwen_tts_lit.metrics.instructions import RETENTION, cell_retention

# +1: higher is better, -1: lower is better. Names a rule may rank or break ties on.
DIRECTIONS = {"error_rate": -1, "wer": -1, "cer": -1, "rate_error": -1, "eos_fail": -1, "spk_sim": 1,
              "spk_sim_model": 1, "dnsmos_ovrl": 1, "dnsmos_sig": 1, "dnsmos_bak": 1, "dnsmos_p808": 1,
              RETENTION: 1}  # fmt: skip
# The DNSMOS judge's row fields (metrics/dnsmos.py writes them; named here, where the rule and the parsers read them
# without loading numpy).
DNSMOS_FIELDS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")
# A cell's naturalness beside its sentences' real recordings' (real_*): "naturalness vs the real recording".
MEAN_FIELDS = ("error_rate", "wer", "cer", "spk_sim", "spk_sim_model", "rate_ratio", "rate_ratio_vad",
               "units_per_second", "words_per_second", *DNSMOS_FIELDS,
               *(f"real_{name}" for name in DNSMOS_FIELDS))  # fmt: skip
# Every figure each cell and baseline of the chosen cell's record carries a 95 % interval and n for (each only where
# some row measured it): each of the cell's means but the real recordings' (the same for every cell: a reference
# level, not a figure of the cell), then the per-sentence rate_error and eos_fail. A naturalness judge added to
# MEAN_FIELDS gets one too.
INTERVAL_FIELDS = (*(name for name in MEAN_FIELDS if not name.startswith("real_")), "rate_error", "eos_fail")
FALLBACKS = ("spk_sim", "spk_sim_model", "rate_error", "eos_fail")  # ranked on, in turn, when the primary is absent
EPS = 1e-9  # so that a rate of exactly 0.85 passes a 0.15 tolerance despite 1 - 0.85 = 0.15000000000000002


@dataclass(frozen=True)
class SelectionRule:
    """How the best (epoch, lora_scale) cell is chosen; recorded with the chosen cell."""

    primary: str = "error_rate"
    """Metric to optimise: error_rate (each row's CER or WER, by its language), wer, cer, spk_sim, spk_sim_model,
    rate_error, eos_fail, a naturalness score: dnsmos_ovrl, dnsmos_sig, dnsmos_bak, dnsmos_p808, or
    instruct_retention (the instruction probe's worst retention; direction is built in)."""
    tie_break: tuple[str, ...] = ("spk_sim",)
    """Metrics that order cells tied on the primary, in turn (any the primary may be, e.g. [spk_sim, dnsmos_ovrl]; a
    secondary on instruction following: [instruct_retention, spk_sim])."""
    max_eos_fail: float | None = 0.0
    """Largest share of generations allowed to hit the token cap; None disables the filter."""
    rate_tolerance: float | None = 0.15
    """Largest allowed |rate_ratio - 1| (the pace ratio to the real recordings: seconds per spoken unit of
    articulated speech, > 1 slower; docs/speech_rate.md); None disables the filter."""
    min_spk_sim: float | None = None
    """Smallest allowed mean spk_sim; None (default) disables the filter."""
    min_dnsmos_ovrl: float | None = None
    """Smallest allowed mean dnsmos_ovrl (DNSMOS P.835 overall MOS, 1-5; needs judges.dnsmos); None (default)
    disables the filter."""
    min_instruct_retention: float | None = None
    """Smallest allowed instruct_retention: the worst probe's share of the base model's instruction effect (1.0 = all
    kept; docs/instructions_probe.md; needs EvalSuite.instruct_probe). A cell the probe did not measure, or whose
    every probe is NaN (the base model does not follow them measurably), fails it. None (default) disables it."""
    tie_tolerance: float = 0.0
    """Cells whose primary is within this of the best count as tied (e.g. 0.01 = one point of WER)."""
    filter_penalty: float = 2.0
    """score(): each failed filter subtracts filter_penalty * (1 + by how much it is missed, capped at 1)."""
    tie_weight: float = 1e-3
    """score(): weight of the tie-break metrics, small so that they only reorder near-equal primaries."""
    beat_baseline: bool = False
    """Keep only cells better on the primary than the best zero-shot baseline (when the run has baseline rows)."""
    speaker_aggregate: Literal["mean", "worst"] = "mean"
    """Several speakers: a cell's metric is the mean over speakers, or the worst speaker's value."""
    conservative: bool = False
    """Among the cells the held-out sentences cannot tell apart from the best on the primary (their paired 95 %
    interval includes 0), choose the one with the fewest epochs, then the lowest scale."""

    def __post_init__(self) -> None:
        if self.speaker_aggregate not in ("mean", "worst"):
            raise ValueError(f"SelectionRule: speaker_aggregate {self.speaker_aggregate!r}; choose mean or worst")
        for name in (self.primary, *self.tie_break):
            if name not in DIRECTIONS:
                raise ValueError(f"SelectionRule: unknown metric {name!r}; choose from {sorted(DIRECTIONS)}")
        object.__setattr__(self, "tie_break", tuple(self.tie_break))  # a YAML list arrives as a list


def as_records(rows: Any) -> list[Mapping[str, Any]]:
    """Rows as a list of mappings, from a list of dicts or a pandas DataFrame."""
    if not hasattr(rows, "to_dict"):
        return list(rows)
    # A DataFrame fills a field some rows lack (baseline, speaker, a metric) with NaN: that is "absent" here.
    return [{k: None if _is_nan(v) else v for k, v in record.items()} for record in rows.to_dict("records")]


def mean(values: Iterable[Any]) -> float | None:
    """Mean of the values that are present (None and NaN are skipped); None when none are."""
    present = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return sum(present) / len(present) if present else None


def aggregate(rows: Any, speaker_aggregate: str = "mean") -> list[dict[str, Any]]:
    """One dict per trained (epoch, lora_scale), sorted by both: n, mean metrics, rate_error = |rate_ratio - 1|,
    eos_fail; with several speakers, combined over speakers by ``speaker_aggregate`` and each one's under
    ``by_speaker``. Zero-shot baseline rows are left out (:func:`baseline_cells`)."""
    return _cells([row for row in as_records(rows) if not row.get("baseline")], speaker_aggregate)


def baseline_cells(rows: Any, speaker_aggregate: str = "mean") -> dict[str, dict[str, Any]]:
    """The zero-shot baseline rows aggregated per baseline (``runs.baselines``), like :func:`aggregate`'s cells."""
    modes: dict[str, list[Mapping[str, Any]]] = {}
    for row in as_records(rows):
        if row.get("baseline"):
            modes.setdefault(str(row["baseline"]), []).append(row)
    return {mode: _cells(group, speaker_aggregate)[0] | {"baseline": mode} for mode, group in sorted(modes.items())}


def _cells(rows: list[Mapping[str, Any]], speaker_aggregate: str) -> list[dict[str, Any]]:
    groups: dict[tuple[int, float], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((int(row["epoch"]), float(row["lora_scale"])), []).append(row)
    cells = []
    for (epoch, scale), group in sorted(groups.items()):
        speakers: dict[str, list[Mapping[str, Any]]] = {}
        for row in group:
            if row.get("speaker") is not None:
                speakers.setdefault(row["speaker"], []).append(row)
        if not speakers:
            cells.append({"epoch": epoch, "lora_scale": scale, **_metrics(group)})
            continue
        per_speaker = {name: _metrics(own) for name, own in sorted(speakers.items())}
        cell = {"epoch": epoch, "lora_scale": scale, **across_speakers(per_speaker, speaker_aggregate)}
        cells.append(cell | {"by_speaker": per_speaker})
    return cells


def _metrics(group: list[Mapping[str, Any]]) -> dict[str, Any]:
    cell: dict[str, Any] = {"n": len(group)}
    cell |= {name: mean(row_value(row, name) for row in group) for name in MEAN_FIELDS}
    # The instruction probe's effects only in cells it measured (most runs never run it: their cells stay as they were).
    cell |= {name: mean(row.get(name) for row in group) for name in PROBE_FIELDS if any(name in row for row in group)}
    cell["rate_error"] = None if cell["rate_ratio"] is None else abs(cell["rate_ratio"] - 1.0)
    cell["eos_fail"] = sum(bool(row["hit_max_tokens"]) for row in group) / len(group)
    return cell | cell_retention(cell)


def across_speakers(per_speaker: dict[str, dict[str, Any]], how: str) -> dict[str, Any]:
    """One cell's metrics from each speaker's: the mean over speakers, or each metric's worst speaker (in the
    direction of DIRECTIONS; rate_ratio is then the worst rate_error speaker's; the others are averaged)."""
    cells = list(per_speaker.values())
    combined: dict[str, Any] = {"n": sum(cell["n"] for cell in cells)}
    probed = [name for name in PROBE_FIELDS if any(name in cell for cell in cells)]
    for name in (*MEAN_FIELDS, "rate_error", "eos_fail", *probed):
        values = [cell[name] for cell in cells if cell.get(name) is not None]
        if how == "worst" and name in DIRECTIONS and values:
            combined[name] = min(values) if DIRECTIONS[name] > 0 else max(values)
        else:
            combined[name] = mean(values)
    if how == "worst" and combined["rate_error"] is not None:
        worst = max((c for c in cells if c["rate_error"] is not None), key=lambda c: c["rate_error"])
        combined["rate_ratio"] = worst["rate_ratio"]
    combined |= cell_retention(combined)  # from the combined effects; under "worst", the worst speaker's retention
    retained = [c[RETENTION] for c in cells if c.get(RETENTION) is not None and not math.isnan(c[RETENTION])]
    if how == "worst" and RETENTION in combined:
        combined[RETENTION] = min(retained) if retained else math.nan
    return combined  # under "mean", rate_error is the mean of each speaker's: a fast and a slow voice do not cancel


def filter_misses(
    cell: Mapping[str, Any], rule: SelectionRule, baseline: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """Each failed filter -> by how much it is missed (inf when its metric is missing); empty when the cell passes.
    ``baseline``: the best zero-shot cell, which a cell must beat on the primary under ``rule.beat_baseline``."""
    beat = None
    if rule.beat_baseline and baseline is not None and not math.isinf(badness(baseline, rule.primary)):
        beat = badness(baseline, rule.primary) - 2 * EPS  # "lower is better" units: strictly below; a tie fails
    checks = (  # (name, value, limit, +1 if the value must stay below the limit else -1)
        ("eos_fail", cell.get("eos_fail"), rule.max_eos_fail, 1),
        ("rate_error", cell.get("rate_error"), rule.rate_tolerance, 1),
        ("spk_sim", cell.get("spk_sim"), rule.min_spk_sim, -1),
        ("dnsmos_ovrl", cell.get("dnsmos_ovrl"), rule.min_dnsmos_ovrl, -1),
        (RETENTION, cell.get(RETENTION), rule.min_instruct_retention, -1),
        ("baseline", badness(cell, rule.primary), beat, 1),
    )
    misses = {}
    for name, value, limit, sign in checks:
        if limit is None:
            continue
        if value is None or math.isnan(value):
            misses[name] = math.inf
        elif sign * (value - limit) > EPS:
            misses[name] = sign * (value - limit)
    return misses


def badness(cell: Mapping[str, Any], name: str) -> float:
    """The metric turned into "lower is better"; inf when missing, so a cell without it never wins on it."""
    value = cell.get(name)
    if value is None or math.isnan(value):
        return math.inf
    return -DIRECTIONS[name] * float(value)


def rank(cells: list[Mapping[str, Any]], rule: SelectionRule) -> list[Mapping[str, Any]]:
    """Cells best first: primary (ties within tie_tolerance), then tie_break metrics, earlier epoch, smaller scale."""

    def order(cell: Mapping[str, Any]) -> tuple:
        return (*(badness(cell, name) for name in rule.tie_break), cell["epoch"], cell["lora_scale"])

    remaining = sorted(cells, key=lambda cell: (badness(cell, rule.primary), *order(cell)))
    ranked = []
    while remaining:  # peel off the best primary and everything tied with it, ordered by the tie-breaks
        best = badness(remaining[0], rule.primary)
        tied = [cell for cell in remaining if badness(cell, rule.primary) <= best + rule.tie_tolerance + EPS]
        ranked += sorted(tied, key=order)
        remaining = [cell for cell in remaining if all(cell is not t for t in tied)]
    return ranked


def score(cell: Mapping[str, Any], rule: SelectionRule = SelectionRule()) -> float:
    """One number per cell, higher is better, for ``val/score``: primary (signed), minus filter penalties, plus a
    small tie-break term.

    For cells passing the filters it is ``-wer + tie_weight * spk_sim`` under the default rule, so it orders them
    as :func:`select_best` does whenever their WERs differ by more than ``2 * tie_weight`` (and tie_tolerance is 0).
    Each failed filter costs at least ``filter_penalty`` (2.0), so every passing cell with WER <= 1 outscores every
    failing cell, as in the rule. -inf when the primary is missing.
    """
    primary = badness(cell, rule.primary)
    if math.isinf(primary):
        return -math.inf
    penalty = sum(rule.filter_penalty * (1.0 + min(miss, 1.0)) for miss in filter_misses(cell, rule).values())
    ties = sum(-badness(cell, name) for name in rule.tie_break if not math.isinf(badness(cell, name)))
    return -primary - penalty + rule.tie_weight * ties


def plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN/inf to None, tuples to lists (recursively)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item"):  # numpy / torch scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def measured(cells: list[Mapping[str, Any]], name: str) -> bool:
    """Whether any cell has a value for ``name``."""
    return any(not math.isinf(badness(cell, name)) for cell in cells)


def effective_rule(cells: list[Mapping[str, Any]], rule: SelectionRule) -> SelectionRule:
    """``rule``, or, when no cell has its primary (no ASR), the same rule ranking on the first measured tie-break
    (then spk_sim, spk_sim_model, rate_error, eos_fail)."""
    if measured(cells, rule.primary):
        return rule
    for name in (*rule.tie_break, *FALLBACKS):
        if name != rule.primary and measured(cells, name):
            return replace(rule, primary=name, tie_break=tuple(t for t in rule.tie_break if t != name))
    return replace(rule, primary="eos_fail", tie_break=())  # eos_fail is computed for every cell


def unscored_rows(rows: Any, names: Iterable[str]) -> dict[str, int]:
    """For each metric of ``names`` that rows carry, how many rows have no value for it (could not be computed)."""
    records = as_records(rows)
    counts = {}
    for name in dict.fromkeys(names):
        if name in ("rate_error", "eos_fail"):  # derived per cell from rate_ratio / hit_max_tokens
            name = "rate_ratio" if name == "rate_error" else None
        if name is None:
            continue
        missing = sum(1 for row in records if row_value(row, name) is None or _is_nan(row_value(row, name)))
        if missing:
            counts[name] = missing
    return counts


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def versus_baseline(cell: Mapping[str, Any], zero_shot: Mapping[str, Any], rule: SelectionRule) -> str:
    """ "chosen cell vs best zero-shot (voice_clone): error_rate -0.050, spk_sim +0.020" (chosen minus zero-shot)."""
    names = dict.fromkeys((rule.primary, "error_rate", "spk_sim", "dnsmos_ovrl"))
    parts = [f"{name} {cell[name] - zero_shot[name]:+.3f}" for name in names
             if cell.get(name) is not None and zero_shot.get(name) is not None]  # fmt: skip
    return f"chosen cell vs best zero-shot ({zero_shot['baseline']}): {', '.join(parts) or 'no common metric'}"


def select_best(rows: Any, rule: SelectionRule = SelectionRule()) -> dict[str, Any]:
    """The chosen cell as a JSON-serialisable dict (the run folder records it): epoch, lora_scale, metrics, rule,
    ranked_by (the primary, or what replaced a primary no row has), unscored_rows, candidates, passed_filters
    (False: no cell passed, chosen by the primary among all), failed_filters, reason, score; and how sure it is:
    intervals (each metric's mean, low, high, n over held-out sentences; per speaker in intervals_by_speaker), the
    same for each baseline and under cells for every cell, confidence (the primary's paired difference from the
    runner-up and the best zero-shot baseline)."""
    cells = aggregate(rows, rule.speaker_aggregate)
    if not cells:
        raise ValueError("select_best: no evaluation rows")
    asked, rule = rule, effective_rule(cells, rule)
    baselines = baseline_cells(rows, rule.speaker_aggregate)
    zero_shot = rank(list(baselines.values()), rule)[0] if baselines else None
    passing = [cell for cell in cells if not filter_misses(cell, rule, zero_shot)]
    ranked = rank(passing or cells, rule)
    members = cell_rows(rows)
    best, alike = conservative_pick(ranked, members, rule.primary) if asked.conservative else (ranked[0], 1)
    filters = [f"eos_fail <= {rule.max_eos_fail}"] if rule.max_eos_fail is not None else []
    filters += [f"|rate_ratio - 1| <= {rule.rate_tolerance}"] if rule.rate_tolerance is not None else []
    filters += [f"spk_sim >= {rule.min_spk_sim}"] if rule.min_spk_sim is not None else []
    filters += [f"dnsmos_ovrl >= {rule.min_dnsmos_ovrl}"] if rule.min_dnsmos_ovrl is not None else []
    filters += [f"{RETENTION} >= {rule.min_instruct_retention}"] if rule.min_instruct_retention is not None else []
    filters += [f"{rule.primary} better than zero-shot"] if rule.beat_baseline and zero_shot is not None else []
    direction = "lowest" if DIRECTIONS[rule.primary] < 0 else "highest"
    pool = f"{len(passing)} of {len(cells)} cells with {' and '.join(filters) or 'no filters'}"
    over = f" ({rule.speaker_aggregate} over {len(best['by_speaker'])} speakers)" if "by_speaker" in best else ""
    reason = f"{direction} {rule.primary}{over} among {pool}"
    if not passing:
        reason = f"no cell passed ({pool}): {direction} {rule.primary} among all"
    if rule.primary != asked.primary:
        reason = f"{asked.primary} was not measured for any row (no ASR judge?), so ranked by {rule.primary}: {reason}"
    if asked.conservative:
        reason += (f"; conservative: the fewest epochs, then the lowest scale, of {alike} cell(s) the sentences "
                   f"cannot tell apart on {rule.primary} from the best, epoch {ranked[0]['epoch']} x "
                   f"{ranked[0]['lora_scale']:g}")  # fmt: skip
    metrics = {k: v for k, v in best.items() if k not in ("epoch", "lora_scale")}
    runner_up = next((cell for cell in ranked if cell is not best), None)
    start = rl_start(cells, best)
    sure = confidence(best, runner_up, zero_shot, members, rule.primary, DIRECTIONS[rule.primary], start)
    shown = [*cells, *baselines.values()]  # every cell and baseline, with each metric's interval
    found = cell_intervals([members(cell) for cell in shown], INTERVAL_FIELDS)
    evidence = dict(zip(map(id, shown), found, strict=True))
    return plain(
        {
            "epoch": best["epoch"],
            "lora_scale": best["lora_scale"],
            "metrics": metrics,
            "score": score(best, rule),
            "rule": asdict(asked),
            "ranked_by": rule.primary,
            "unscored_rows": unscored_rows(rows, (asked.primary, *asked.tie_break)),
            "candidates": len(cells),
            "passing": len(passing),
            "passed_filters": bool(passing),
            "failed_filters": sorted(filter_misses(best, rule, zero_shot)),
            "reason": reason,
            "baselines": {
                mode: {k: v for k, v in cell.items() if k not in ("epoch", "lora_scale", "baseline")}
                | evidence[id(cell)]
                for mode, cell in baselines.items()
            },
            "vs_baseline": versus_baseline(best, zero_shot, rule) if zero_shot is not None else None,
            **evidence[id(best)],
            "confidence": sure,
            "cells": [
                {"epoch": cell["epoch"], "lora_scale": cell["lora_scale"], **evidence[id(cell)]} for cell in cells
            ],
        }
    )


def rl_start(cells: list[Mapping[str, Any]], chosen: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """An RL run's starting point at the chosen cell's scale (what the chosen RL step must beat, sentence by
    sentence); None when the run has no start rows, or the start itself was chosen."""
    if int(chosen["epoch"]) == START_EPOCH:
        return None
    return next((cell for cell in cells if cell["epoch"] == START_EPOCH and cell["lora_scale"] == chosen["lora_scale"]),
                None)  # fmt: skip


def cell_rows(rows: Any) -> Callable[[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """cell -> its rows (a trained cell's by epoch and scale, a baseline's by name), from one pass over ``rows``."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in as_records(rows):
        baseline = row.get("baseline")
        key = ("baseline", str(baseline)) if baseline else (int(row["epoch"]), float(row["lora_scale"]))
        groups.setdefault(key, []).append(row)

    def members(cell: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        baseline = cell.get("baseline")
        return groups.get(("baseline", baseline) if baseline else (cell["epoch"], float(cell["lora_scale"])), [])

    return members
