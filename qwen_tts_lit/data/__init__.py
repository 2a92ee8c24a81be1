"""Data: ``prepare`` (raw clips -> prepared dataset) and what reads prepared datasets.

From a notebook, without Lightning::

    from qwen_tts_lit.data.prepare import PrepareOptions, prepare
    prepare(PrepareOptions(input="data/demo/raw/train_raw.jsonl", output="prepared/demo", model="/path/to/ckpt"))

(Nothing is re-exported here: a ``prepare`` function on the package would shadow the ``prepare`` module.)
"""
