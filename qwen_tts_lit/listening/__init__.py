"""Blind listening tests: build a test folder from run folders (:mod:`.bundle`; the designs in :mod:`.designs`, the
stimuli in :mod:`.stimuli`, the trials in :mod:`.plan`, the key in :mod:`.key`, the page in :mod:`.page`) and read
the ratings it collects. The folder layout, key.json and the ratings CSV are documented in docs/listening.md."""
