"""``qwen_tts_lit.callbacks.EvalSuite``: the name configs and users' YAML give the evaluation callback (it lives in
:mod:`qwen_tts_lit.train.eval_suite`)."""

from qwen_tts_lit.train.eval_suite import EvalSuite

__all__ = ["EvalSuite"]
