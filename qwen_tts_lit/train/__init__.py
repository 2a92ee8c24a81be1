"""Training with Lightning: :class:`~qwen_tts_lit.train.module.QwenTTSModule` (the corrected step, LoRA or full
fine-tuning) and the :class:`~qwen_tts_lit.train.eval_suite.EvalSuite` callback (per-epoch evaluation that picks
the best epoch x lora_scale). The only stage package besides ``cli`` and the data module that imports Lightning."""
