"""Data: ``prepare`` (raw clips and transcripts -> a checked, cleaned, codec-coded dataset) and what training reads
from a prepared dataset (:mod:`~qwen_tts_lit.data.dataset`, :mod:`~qwen_tts_lit.data.sampler`,
:mod:`~qwen_tts_lit.data.datamodule`).

From a notebook, without Lightning::

    from qwen_tts_lit.data.prepare import PrepareOptions, prepare
    prepare(PrepareOptions(input="data/demo/raw/train_raw.jsonl", output="prepared/demo", model="tiny"))
"""
