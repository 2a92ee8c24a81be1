"""The talker's sequence layout (a pure function of prompt ids and codec frames), the training step (pure losses with
a switch per upstream bug) and LoRA (the spec, the strength knob, merging). No Lightning: torch alone."""
