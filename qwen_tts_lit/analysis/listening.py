"""A listening test's results for notebooks: ``listening_results(["r1.csv", "r2.csv"], "key.json")`` gives each of
its tables (listening/tables.py: ``systems``, ``differences``, ``pairs``, ``screening``, ``attention``) as a
DataFrame of raw numbers, the same columns as the CSV tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from qwen_tts_lit.listening.results import analyse_listening
from qwen_tts_lit.listening.tables import listening_tables


def listening_results(rating_paths: Sequence[Path | str], key_path: Path | str) -> dict[str, pd.DataFrame]:
    """{table name: DataFrame} of the test whose key is ``key_path``, from the raters' CSVs ``rating_paths``; the
    frames' ``attrs`` hold the design, the test id, and the raters, items and answers that count."""
    results = analyse_listening(rating_paths, key_path)
    frames = {}
    for table in listening_tables(results):
        frame = pd.DataFrame(table.raw)
        frame.attrs.update(design=results.design, test_id=results.test_id, raters=results.raters,
                           items=results.items, answers=results.ratings, excluded=dict(results.excluded))  # fmt: skip
        frames[table.name] = frame
    return frames
