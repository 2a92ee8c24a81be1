"""Speech generation, shared by evaluation, ``synthesize`` and notebooks (torch only, no Lightning).

:mod:`~.presets` (sampling settings, codec constants, frame caps), :mod:`~.synthesizer` (the Synthesizer: seeds,
warm-up, LoRA scale, exact runaway flag), :mod:`~.voices` (open a run, an adapter or a custom_voice export),
:mod:`~.chunking` and :mod:`~.long_form` (any length of text into one wav), :mod:`~.request` (the command's options).
"""
