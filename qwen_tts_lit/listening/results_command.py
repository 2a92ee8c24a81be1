"""``listen --results R1.csv R2.csv --key KEY --output DIR``: analyse the ratings, write the tables, say where they
are. The CLI wires it (its UserError is exit 2, cli/app.py's map); a notebook calls it the same way."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qwen_tts_lit.files import shown
from qwen_tts_lit.listening.results import analyse_listening
from qwen_tts_lit.listening.tables import write_listening_tables


def run_results(rating_paths: Sequence[Path | str], key_path: Path | str, output_dir: Path | str) -> int:
    """Analyse ``rating_paths`` against ``key_path``, write the tables into ``output_dir``, print where they are and
    who was excluded; 0 on success (bad input raises UserError)."""
    results = analyse_listening(rating_paths, key_path)
    written = write_listening_tables(results, output_dir)
    print(
        f"{results.design} test {results.test_id}: {results.raters} raters, {results.items} items, "
        f"{results.ratings} answers from {len(results.rating_paths)} file(s)"
    )
    for rater, why in results.excluded.items():
        print(f"excluded rater {rater!r}: {why}")
    print(f"tables ({len(written)} files) in {shown(output_dir)}:")
    for path in written:
        if path.suffix == ".md":
            print(f"  {shown(path)} (also .tex, .csv)")
    return 0
