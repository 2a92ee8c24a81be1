"""The PEFT adapter export: the adapter at its trained strength (scaled at load time, as the metadata recommends)
and the x-vector; one base model serves many voices."""

from __future__ import annotations

import json
from pathlib import Path

from qwen_tts_lit.export_folder import ADAPTER_CONFIG_FILE
from qwen_tts_lit.runs.weights import LoadedRun
from qwen_tts_lit.speaker_file import write_speaker, write_speakers


def write_adapter(loaded: LoadedRun, out: Path) -> None:
    """PEFT adapter at its trained strength + the x-vector (every speaker's, for a run of several); scale it at load
    time (the export metadata says how)."""
    loaded.peft_model.save_pretrained(out)
    config_path = out / ADAPTER_CONFIG_FILE
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = loaded.base_model  # the run's source ("tiny", a hub id), not a cache path
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if loaded.voices:
        write_speakers(out, loaded.voices)
    else:
        write_speaker(out, loaded.xvector)
