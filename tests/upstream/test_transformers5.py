"""The Transformers-5 patches (qwen_tts_lit/upstream/transformers5.py): under 5.x each is needed (removing it alone
breaks loading, the weights, the codes or a saved checkpoint; run in a subprocess each, as the patches act at
import); under 4.57.3 none applies; a version outside the tested range gets one warning line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import transformers

from qwen_tts_lit.upstream import transformers5
from qwen_tts_lit.upstream.compat import import_qwen_tts

FIVE = int(transformers.__version__.split(".")[0]) >= 5
HELPER = os.path.join(os.path.dirname(__file__), "..", "helpers", "without_patch.py")


def without(name: str, tiny_dir) -> str:
    done = subprocess.run([sys.executable, HELPER, name, str(tiny_dir)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else f"no output (exit {done.returncode}): {done.stderr[-300:]}"


def test_patches_apply_exactly_where_needed():
    import_qwen_tts()
    assert transformers5.APPLIED == (list(transformers5.PATCHES) if FIVE else [])


@pytest.mark.skipif(not FIVE, reason="the patches apply to transformers 5 only")
def test_all_patches_together_keep_4_57s_behaviour(tiny_dir):
    assert without("none", tiny_dir) == "SAME"


@pytest.mark.skipif(not FIVE, reason="the patches apply to transformers 5 only")
@pytest.mark.parametrize("name", transformers5.PATCHES)
def test_each_patch_is_needed(tiny_dir, name):
    assert without(name, tiny_dir) != "SAME"


def test_patches_are_idempotent():
    import_qwen_tts()
    before = list(transformers5.APPLIED)
    transformers5.after_import()
    transformers5.before_import()
    assert transformers5.APPLIED == before


def test_one_line_names_the_tested_range_outside_it(capsys, monkeypatch):
    monkeypatch.setattr(transformers5, "_warned", [])
    assert transformers5.warn_if_untested("4.57.3") is False and transformers5.warn_if_untested("5.25.0") is False
    assert capsys.readouterr().err == ""
    assert transformers5.warn_if_untested("5.26.0") is True
    assert transformers5.warn_if_untested("4.56.2") is False  # once per process
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "transformers 5.26.0" in err and ">=4.57.3,<5.26" in err
