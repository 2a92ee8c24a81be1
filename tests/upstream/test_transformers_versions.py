"""Whatever transformers is installed (4.57.3 or a 5.x of the tested range), the project computes what it computed
under 4.57.3: the same tiny checkpoint, the same greedy codes, prepare's files byte for byte and the same first fit
steps. The reference was recorded under 4.57.3 by tests/helpers/transformers_reference.py; CI runs this file in a
second environment with the newest 5.x (.ci/run, docs/transformers.md)."""

from __future__ import annotations

import json

import pytest
from helpers.transformers_reference import (
    REFERENCE,
    REFERENCE_VERSION,
    checkpoint_hashes,
    fit_steps,
    greedy_codes,
    prepared_hashes,
)

LOSS_TOLERANCE = 1e-6  # relative: float32 sums in another order; a real drift (10.28188 vs 10.28278) is 1e-4


@pytest.fixture(scope="module")
def reference() -> dict:
    recorded = json.loads(REFERENCE.read_text())
    assert recorded["transformers"] == REFERENCE_VERSION
    return recorded


def test_the_tiny_checkpoint_is_the_same_file(tiny_dir, reference):
    assert checkpoint_hashes(tiny_dir) == reference["checkpoint"]


def test_greedy_codes_are_the_reference_ones(tiny_dir, reference):
    assert greedy_codes(tiny_dir) == reference["greedy_codes"]


def test_prepare_writes_the_same_bytes(prepared_demo, reference):
    assert prepared_hashes(prepared_demo) == reference["prepared"]


def test_the_first_fit_steps_are_the_reference_ones(tiny_dir, prepared_demo, reference, tmp_path):
    measured = fit_steps(tiny_dir, prepared_demo, tmp_path)
    for key in ("losses", "grad_norms"):
        assert measured[key] == pytest.approx(reference["fit"][key], rel=LOSS_TOLERANCE), key
