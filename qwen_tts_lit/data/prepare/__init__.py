"""``prepare``: raw clips + transcripts -> a prepared dataset, checked in full before anything is written.

Modules, in the order the data passes through them: :mod:`~.options` (every knob, documented once),
:mod:`~.sources` (JSONL / folder / LJSpeech readers), :mod:`~.ids` (the id rule: ids become file names),
:mod:`~.checks` (every problem of every row, located),
:mod:`~.problems`, :mod:`~.text` and :mod:`~.audio` (pure cleaning), :mod:`~.codec` (12 Hz codes, cached; the
x-vector), :mod:`~.report`, :mod:`~.outputs` (the output folder's file names and readers: the contract training,
evaluation and export read), :mod:`~.plan` (the check phase), :mod:`~.write` (each clip cleaned, encoded and
written), :mod:`~.speakers` (the x-vectors) and :mod:`~.pipeline` (the order of the two phases).

``PrepareOptions`` and ``prepare`` are importable from here; they load on first use, so that reading the options
(``--help``) does not import torch.
"""

from __future__ import annotations

__all__ = ["PrepareOptions", "prepare"]


def __getattr__(name: str):
    if name == "PrepareOptions":
        from qwen_tts_lit.data.prepare.options import PrepareOptions

        return PrepareOptions
    if name == "prepare":
        from qwen_tts_lit.data.prepare.pipeline import prepare

        return prepare
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
