"""Lightning callbacks: per-epoch evaluation that picks the best (epoch, lora_scale)."""

from qwen_tts_lit.callbacks.eval_suite import EvalSuite

__all__ = ["EvalSuite"]
