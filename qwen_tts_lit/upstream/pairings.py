"""Which checkpoint's speaker encoder gives the x-vectors of new voices when fine-tuning a checkpoint without one.

The released CustomVoice checkpoints carry no speaker encoder (``tts_model_type="custom_voice"`` builds none), so a
new voice's x-vector comes from the Base checkpoint of the same release: the CustomVoice and Base models of one size
are fine-tunes of one pre-trained model and share its speaker space (docs/instructions.md). This module owns that
table and the rule that applies it (:func:`speaker_encoder_source`); a pairing it does not know is named once by
the user (``data.speaker_encoder_model`` / ``prepare --speaker_encoder_model``).

Which checkpoints follow instructions at all is also decided here (:func:`instruct_problem`): upstream's
``Qwen3TTSModel.generate_custom_voice`` drops ``instruct`` for the 0.6B CustomVoice model
(qwen_tts/inference/qwen3_tts_model.py, ``if self.model.tts_model_size in "0b6": instruct = None``).
"""

from __future__ import annotations

from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.export_folder import read_metadata

# CustomVoice (or VoiceDesign) checkpoint -> the Base checkpoint of the same release (hub ids; the tiny sources).
PAIRED_BASES: dict[str, str] = {
    "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice": "Qwen/Qwen3-TTS-12Hz-1.7B-Base",
    "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice": "Qwen/Qwen3-TTS-12Hz-0.6B-Base",
    "tiny_custom_voice": "tiny",
}
# A local copy of a released checkpoint is known by its config's tts_model_size (as the releases spell it).
RELEASED_BASE_OF_SIZE: dict[str, str] = {
    "1b7": "Qwen/Qwen3-TTS-12Hz-1.7B-Base",
    "0b6": "Qwen/Qwen3-TTS-12Hz-0.6B-Base",
}
NO_INSTRUCT_SIZE = "0b6"  # upstream's generate_custom_voice ignores instruct for this size
OPTION = "data.speaker_encoder_model"


def has_speaker_encoder(config) -> bool:
    """Whether a checkpoint with this ``Qwen3TTSConfig`` has a speaker encoder (only ``base`` builds one)."""
    return config.tts_model_type == "base"


def _local_pair(model: str, config) -> str | None:
    """The Base paired with a local folder: a tiny build's, an export's recorded base, a released size's."""
    from qwen_tts_lit.upstream.tiny import tiny_kind_of

    folder = Path(model).expanduser()
    if folder.is_dir() and tiny_kind_of(folder) in ("custom_voice", "voice_design"):
        return "tiny"
    meta = read_metadata(folder) if folder.is_dir() else {}
    recorded = meta.get("speaker_encoder_model") or meta.get("base_model")  # an export of ours says its base
    if recorded:
        return str(recorded)
    return RELEASED_BASE_OF_SIZE.get(str(config.tts_model_size))


def speaker_encoder_source(model: str, config, override: str | None = None) -> str:
    """The checkpoint whose speaker encoder computes the x-vectors for fine-tuning ``model`` (config ``config``):
    ``override`` when given, else ``model`` itself when it has an encoder, else its paired Base."""
    if override:
        return override
    if has_speaker_encoder(config):
        return model
    if config.tts_model_type == "voice_design":
        raise UserError(f"{model}: a voice_design checkpoint has no speaker slot; fine-tune a Base or CustomVoice one")
    paired = PAIRED_BASES.get(model) or _local_pair(model, config)
    if not paired:
        raise UserError(
            f"{model}: a {config.tts_model_type} checkpoint has no speaker encoder and its Base is not known; name "
            f"the Base checkpoint of its release with {OPTION} (prepare: --speaker_encoder_model)"
        )
    return paired


def instruct_problem(config) -> str | None:
    """Why rows with an instruction cannot train or be spoken with this checkpoint; None when they can."""
    if config.tts_model_type == "custom_voice" and str(config.tts_model_size) == NO_INSTRUCT_SIZE:
        return ("the 0.6B CustomVoice model does not follow instructions: upstream's generate_custom_voice drops "
                "instruct for it (docs/instructions.md)")  # fmt: skip
    return None
