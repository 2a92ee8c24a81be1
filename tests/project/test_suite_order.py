"""The suite's schedule (tests/conftest.py): every file named as heavy exists once, so a rename cannot silently send
a heavy file to the end of the queue."""

from pathlib import Path

from conftest import HEAVY_FILES

TESTS = Path(__file__).resolve().parents[1]


def test_every_heavy_file_exists_once():
    found = {name: [p for p in TESTS.rglob(name) if "e2e" not in p.parts] for name in HEAVY_FILES}
    assert {name: len(paths) for name, paths in found.items()} == dict.fromkeys(HEAVY_FILES, 1)
