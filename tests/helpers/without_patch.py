"""Run with one Transformers-5 patch removed (``python tests/helpers/without_patch.py NAME TINY_DIR``; NAME "none"
removes none) and print ``SAME`` when everything the patch set guards is still as under 4.57.3: the tiny checkpoint
loads, its weights are the file's, a padded batch's greedy codes are the reference's, and a saved checkpoint
reloads with its mRoPE settings. Anything else prints what broke (a crash prints its exception)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def check(tiny_dir: Path) -> str:
    import torch
    from safetensors.torch import load_file

    from helpers.transformers_reference import REFERENCE, greedy_codes
    from qwen_tts_lit.upstream.compat import clean_saved_config
    from qwen_tts_lit.upstream.loading import load_config, load_qwen3_tts

    tts = load_qwen3_tts(str(tiny_dir))
    codec = tts.model.speech_tokenizer.model
    on_file = load_file(str(tiny_dir / "speech_tokenizer" / "model.safetensors"))
    loaded = {**{k: v for k, v in codec.state_dict().items()}}
    seanet = {k.replace("encoder.encoder.encoder_seanet.", "encoder.encoder.")
              .replace("encoder.encoder.encoder_transformer.", "encoder.encoder_transformer.")
              .replace("encoder.encoder.downsample.", "encoder.downsample."): v for k, v in loaded.items()}  # fmt: skip
    if any(not torch.equal(seanet[k], v) for k, v in on_file.items() if k in seanet):
        return "codec weights differ from the file"
    if greedy_codes(tiny_dir) != json.loads(REFERENCE.read_text())["greedy_codes"]:
        return "greedy codes differ from the reference"
    with tempfile.TemporaryDirectory() as scratch:
        tts.model.save_pretrained(scratch)
        clean_saved_config(scratch)
        if "mrope_section" not in (load_config(scratch).talker_config.rope_scaling or {}):
            return "a saved checkpoint reloads without its mRoPE settings"
    return "SAME"


def main(name: str, tiny_dir: str) -> None:
    from qwen_tts_lit.upstream import transformers5

    if name != "none":
        assert name in transformers5.PATCHES, name
        setattr(transformers5, name, lambda *args, **kwargs: False)
    try:
        outcome = check(Path(tiny_dir))
    except Exception as error:  # the symptom: print it, as the test reads stdout
        outcome = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    print(outcome)


if __name__ == "__main__":
    main(*sys.argv[1:])
