"""Export one (epoch, lora_scale) of a run in a format people already load: the official custom_voice checkpoint
(:mod:`~.custom_voice`) or a PEFT adapter (:mod:`~.adapter`), each with its metadata and model card (:mod:`~.card`),
staged and renamed into place (:mod:`~.staging`). :func:`qwen_tts_lit.export.pipeline.export` does it all;
:mod:`~.request` holds the command's options."""
