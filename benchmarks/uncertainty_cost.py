"""What the uncertainty costs a run: choosing the cell (select_best, with every cell's and baseline's intervals and the
paired tests) and publishing (rows, best.json, the report) on synthetic rows of two sizes.

    python benchmarks/uncertainty_cost.py                 # demo-sized (2 x 3 x 8) and 10 epochs x 5 scales x 40
    python benchmarks/uncertainty_cost.py --repeats 5

Each size: two zero-shot baselines beside the cells, every judge's fields filled (11 metrics with an interval per
cell). Figures: the median wall and CPU seconds over the repeats of select_best, of the same choice without the
intervals (``metrics.evidence.cell_intervals`` and ``confidence`` replaced by no-ops: what the rule alone costs),
with the conservative rule, and of a whole publish into a temporary folder (the report's plots included). The issue's
budget: the intervals and tests of a run at most a second. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from qwen_tts_lit.evaluation.publish import publish
from qwen_tts_lit.metrics import selection
from qwen_tts_lit.metrics.selection import SelectionRule, select_best

SIZES = {"demo (2 epochs x 3 scales x 8 sentences)": (2, (0.5, 1.0, 1.5), 8),
         "big (10 epochs x 5 scales x 40 sentences)": (10, (0.25, 0.5, 0.75, 1.0, 1.25), 40)}  # fmt: skip


def synthetic_rows(epochs: int, scales: tuple[float, ...], sentences: int, seed: int = 0) -> list[dict]:
    """Rows as an evaluation writes them: each sentence's difficulty shared by every cell, small noise per cell."""
    rng = np.random.default_rng(seed)
    difficulty = rng.gamma(1.0, 0.08, sentences)
    cells = [(e, s, None) for e in range(epochs) for s in scales] + [(-1, 0.0, "xvector"), (-1, 0.0, "voice_clone")]
    rows = []
    for epoch, scale, baseline in cells:
        for i in range(sentences):
            wer = max(0.0, float(difficulty[i] + rng.normal(0, 0.03)))
            row = {"epoch": epoch, "lora_scale": scale, "utt_id": f"utt_{i:03d}", "text": f"sentence {i}",
                   "error_metric": "wer", "wer": wer, "cer": None, "error_rate": wer,
                   "spk_sim": float(rng.uniform(0.6, 0.9)), "spk_sim_model": float(rng.uniform(0.8, 0.99)),
                   "rate_ratio": float(rng.normal(1.0, 0.08)), "rate_ratio_vad": float(rng.normal(1.0, 0.1)),
                   "units_per_second": float(rng.normal(3, 0.3)), "words_per_second": float(rng.normal(3, 0.3)),
                   "hit_max_tokens": bool(rng.random() < 0.02), "frames": 30, "real_frames": 30,
                   "wav": f"eval/epoch={epoch:03d}/scale={scale:g}/utt_{i:03d}.wav", "seed": 1234 + i,
                   "prefix": "untagged"}  # fmt: skip
            rows.append(row | ({"baseline": baseline} if baseline else {}))
    return rows


@contextmanager
def without_intervals():
    """select_best with the uncertainty switched off (what the rule alone costs)."""
    saved = selection.cell_intervals, selection.confidence
    selection.cell_intervals = lambda groups: [{} for _ in groups]
    selection.confidence = lambda *args: {}
    try:
        yield
    finally:
        selection.cell_intervals, selection.confidence = saved


def timed(call, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``call()``."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def measure(rows: list[dict], repeats: int) -> dict[str, tuple[float, float]]:
    """Each figure of one size: name -> median (wall, CPU) seconds."""
    select_best(rows)  # warm: imports, numpy's first calls
    figures = {"select_best": timed(lambda: select_best(rows), repeats)}
    with without_intervals():
        figures["select_best without intervals"] = timed(lambda: select_best(rows), repeats)
    conservative = SelectionRule(conservative=True)
    figures["select_best, conservative"] = timed(lambda: select_best(rows, conservative), repeats)
    with tempfile.TemporaryDirectory() as scratch:
        figures["publish (rows, best.json, report)"] = timed(
            lambda: publish(Path(scratch), rows, SelectionRule()), repeats
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each figure (the median is printed)")
    repeats = parser.parse_args().repeats
    for label, shape in SIZES.items():
        rows = synthetic_rows(*shape)
        figures = measure(rows, repeats)
        print(f"{label}: {len(rows)} rows")
        for name, (wall, cpu) in figures.items():
            print(f"  {name:36s} wall {wall:.3f} s   CPU {cpu:.3f} s")
        extra = figures["select_best"][1] - figures["select_best without intervals"][1]
        print(f"  intervals and tests (CPU, select_best minus the rule alone): {extra:.3f} s")


if __name__ == "__main__":
    main()
