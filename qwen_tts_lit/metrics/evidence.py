"""How sure the chosen cell is: each cell's figures per held-out sentence, their intervals, the paired comparison of
two cells and the conservative choice, as pure functions over evaluation rows (the statistics are
:mod:`~qwen_tts_lit.metrics.uncertainty`'s; docs/uncertainty.md).

The unit is the held-out sentence, named by the row's ``utt_id`` and, in a run of several speakers, its ``speaker``:
each speaker's own sentences are units (a speaker speaks only its own held-out rows, judged against its own real
recordings). A row's ``text`` does not name a sentence: two held-out rows may say the same words (two speakers, or
hand-made rows), and it is the text as spoken, which a re-score may clean differently. Rows of one sentence in a cell
(its codec prefixes) are averaged first, so n is the number of sentences.

Per sentence, ``rate_error`` is ``|rate_ratio - 1|`` of that sentence and ``eos_fail`` whether it hit the token cap
(0 or 1): their interval is of the mean over sentences, which for rate_error can exceed the cell's figure
``|mean rate_ratio - 1|`` (a fast and a slow sentence do not cancel here).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from qwen_tts_lit.metrics.uncertainty import (
    Difference,
    Interval,
    format_difference,
    mean_intervals,
    paired_difference,
    unit_means,
)


def row_value(row: Mapping[str, Any], name: str) -> Any:
    """A row's metric; ``error_rate`` of rows written before it existed is their wer, else their cer (scoring wrote
    only one of them)."""
    if name == "error_rate" and row.get("error_rate") is None:
        return row.get("wer") if row.get("wer") is not None else row.get("cer")
    return row.get(name)


def sentence_figure(row: Mapping[str, Any], name: str) -> float | None:
    """One row's value of ``name`` as a per-sentence figure (rate_error and eos_fail derived; None: not measured)."""
    if name == "eos_fail":
        return float(bool(row.get("hit_max_tokens")))
    if name == "rate_error":
        ratio = row.get("rate_ratio")
        return None if ratio is None else abs(float(ratio) - 1.0)
    return row_value(row, name)


def sentence_of(row: Mapping[str, Any]) -> tuple[str, str]:
    """The held-out sentence a row speaks: (speaker, utt_id); speaker "" in a run of one voice."""
    return str(row.get("speaker") or ""), str(row["utt_id"])


def per_sentence(rows: Iterable[Mapping[str, Any]], name: str) -> dict[Hashable, float]:
    """{sentence: the mean of ``name`` over that sentence's rows}, sentences without a value left out."""
    units = [{"unit": sentence_of(row), "value": sentence_figure(row, name)} for row in rows]
    return unit_means(units, "value", "unit")


def intervals(rows: Sequence[Mapping[str, Any]], names: Iterable[str]) -> dict[str, dict]:
    """{metric: {mean, low, high, n, level}} over the held-out sentences of one cell's rows, for each of ``names``
    some row measured (which figures get one: ``metrics/selection.py``'s ``INTERVAL_FIELDS``)."""
    return cell_intervals([rows], names)[0]["intervals"]


def cell_intervals(groups: Sequence[Sequence[Mapping[str, Any]]], names: Iterable[str]) -> list[dict[str, Any]]:
    """For each group of rows (one cell): ``intervals`` (:func:`intervals`) and, with several speakers,
    ``intervals_by_speaker`` (each speaker's own sentences). All in one batch (``mean_intervals``): a run's cells
    x metrics, hundreds of intervals, stay well under a second."""
    names = tuple(names)
    wanted: list[tuple[int, str | None, str]] = []  # (group, speaker or None for the whole cell, metric)
    samples = []
    for index, rows in enumerate(groups):
        speakers = sorted({str(row["speaker"]) for row in rows if row.get("speaker") is not None})
        parts = [(None, rows)] + [(name, [r for r in rows if str(r.get("speaker")) == name]) for name in speakers]
        for speaker, own in parts:
            for name in names:
                values = per_sentence(own, name)
                if values:
                    wanted.append((index, speaker, name))
                    samples.append(list(values.values()))
    found: list[dict[str, Any]] = [{"intervals": {}} for _ in groups]
    for (index, speaker, name), interval in zip(wanted, mean_intervals(samples), strict=True):
        place = found[index] if speaker is None else found[index].setdefault("intervals_by_speaker", {})
        target = place["intervals"] if speaker is None else place.setdefault(speaker, {})
        target[name] = interval.as_dict()
    return found


def compare(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], name: str) -> Difference:
    """``a - b`` on ``name``, paired by held-out sentence (the sentences both cells measured)."""
    return paired_difference(per_sentence(a, name), per_sentence(b, name))


def conservative_pick(
    ranked: Sequence[Mapping[str, Any]], rows_of: Callable[[Mapping[str, Any]], Sequence[Mapping]], name: str
) -> tuple[Mapping[str, Any], int]:
    """Among the cells of ``ranked`` (best first) whose paired difference from the best on ``name`` has a 95 %
    interval that includes 0 (the sentences cannot tell them apart), the one with the fewest epochs, then the lowest
    scale; and how many such cells there were (the best included). A cell that shares no sentence measured on
    ``name`` with the best is not one of them: nothing says it is as good."""
    top = ranked[0]
    best = per_sentence(rows_of(top), name)
    differences = []
    for cell in ranked[1:]:
        own = per_sentence(rows_of(cell), name)
        differences.append([own[key] - best[key] for key in own if key in best])
    alike = [top] + [cell for cell, interval in zip(ranked[1:], mean_intervals(differences), strict=True)
                     if interval.n > 0 and not _excludes_zero(interval)]  # fmt: skip
    return min(alike, key=lambda cell: (cell["epoch"], cell["lora_scale"])), len(alike)


def _excludes_zero(interval: Interval) -> bool:
    """:meth:`Difference.separates` for an interval alone (the p-value is not needed to choose)."""
    return Difference(interval, None, True).separates()


# The trained cells of an RL run's starting point (its SFT cell, or the base model), evaluated before the first RL
# step on the same sentences and seeds as its checkpoints: "before epoch 0". A zero-shot baseline row also has
# epoch -1; its ``baseline`` name tells them apart.
START_EPOCH = -1


def cell_label(cell: Mapping[str, Any]) -> str:
    """``epoch 4 x 0.35``, ``RL start x 1`` for an RL run's starting point, or ``zero-shot voice_clone``."""
    if cell.get("baseline"):
        return f"zero-shot {cell['baseline']}"
    if int(cell["epoch"]) == START_EPOCH:
        return f"RL start x {float(cell['lora_scale']):g}"
    return f"epoch {cell['epoch']} x {float(cell['lora_scale']):g}"


def verdict(chosen: str, other: str, name: str, difference: Difference, direction: int) -> str:
    """One sentence on how sure the choice of ``chosen`` over ``other`` is, from their paired difference on ``name``
    (chosen - other; ``direction`` +1 when higher is better)."""
    interval = difference.interval
    if interval.mean is None:
        return f"{chosen} vs {other}: no sentence both measured {name}; cannot compare"
    shown = format_difference(difference, units="sentences" if interval.n != 1 else "sentence")
    better = direction * interval.mean > 0
    head = f"{chosen} beats {other} by" if better else f"{chosen} is chosen over {other} with"
    if interval.low is None:
        return f"{head} {name} {shown}: too few sentences to tell them apart; listen to both"
    if not difference.separates():
        return f"{head} {name} {shown}: not a clear winner; listen to both"
    if better:
        return f"{head} {name} {shown}: a clear winner"
    return f"{head} {name} {shown}: {other} is better on {name} (the rule's filters or tie-breaks chose {chosen})"


def confidence(
    chosen: Mapping[str, Any],
    runner_up: Mapping[str, Any] | None,
    baseline: Mapping[str, Any] | None,
    rows_of: Callable[[Mapping[str, Any]], Sequence[Mapping]],
    name: str,
    direction: int,
    start: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The chosen cell's ``confidence``: the chosen cell against the runner-up, the best zero-shot baseline and (an RL
    run whose chosen cell is an RL step) the RL start at the same scale, each the paired difference (chosen - other)
    on ``name`` with its interval, p-value, whether it separates and one sentence; ``summary`` joins the sentences
    (the report's first screen)."""
    found: dict[str, Any] = {"metric": name}
    sentences = []
    for key, other in (("runner_up", runner_up), ("baseline", baseline), ("start", start)):
        if other is None:
            continue
        difference = compare(rows_of(chosen), rows_of(other), name)
        said = verdict(cell_label(chosen), cell_label(other), name, difference, direction)
        place = {"baseline": other["baseline"]} if other.get("baseline") else {
            "epoch": other["epoch"], "lora_scale": other["lora_scale"]}  # fmt: skip
        found[key] = place | difference.as_dict() | {"separates": difference.separates(), "summary": said}
        sentences.append(said)
    found["summary"] = ". ".join(sentences) + "." if sentences else f"{cell_label(chosen)} is the only cell."
    return found
