"""Blind listening tests: build a test folder from run folders (:mod:`.bundle`; the designs in :mod:`.designs`, the
stimuli in :mod:`.stimuli`, the trials in :mod:`.plan`, the key in :mod:`.key`, the page in :mod:`.page`) and analyse
the ratings it collects (:mod:`.ratings`, :mod:`.statistics`, :mod:`.results`, :mod:`.tables`). The folder layout,
key.json and the ratings CSV: docs/listening.md; the statistics: docs/listening_analysis.md."""
