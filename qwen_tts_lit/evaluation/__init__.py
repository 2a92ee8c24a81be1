"""Evaluation: speak held-out sentences per (epoch, lora_scale) cell, score them with real judges against real
recordings, publish rows + the chosen cell + a listening report, and re-score finished runs. Torch only.

:mod:`~.settings` (what an evaluation does, defaults in one place), :mod:`~.judges`, :mod:`~.heldout`,
:mod:`~.scoring` (one cell, one epoch), :mod:`~.publish`, :mod:`~.report` (the HTML page), :mod:`~.rescore` and
:mod:`~.request` (the ``evaluate`` command).
"""
