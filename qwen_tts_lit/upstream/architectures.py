"""The released Qwen3-TTS 12 Hz architectures (0.6B and 1.7B base models and their speech tokenizer), as configs.

No weights ship with them: they build the real shapes with random weights, offline, for what depends only on
shapes (peak memory, speed). The values are the released checkpoints' ``config.json`` and
``speech_tokenizer/config.json``; the speaker encoder uses upstream's class defaults with ``enc_dim`` equal to the
talker width (its x-vector sits in the talker's codec channel). Codec special ids are the released ones (the tiny
checkpoint copies them, upstream/tiny.py); text special ids are ``Qwen3TTSConfig``'s defaults, the released ones.
"""

from __future__ import annotations

from typing import Literal

from qwen_tts_lit.upstream.compat import import_qwen_tts
from qwen_tts_lit.upstream.loading import checkpoint_file, load_config

Size = Literal["0.6b", "1.7b"]

_MROPE = {"rope_type": "default", "mrope_section": [24, 20, 20], "interleaved": True}  # sums to head_dim / 2
_CODE_PREDICTOR = dict(
    vocab_size=2048, hidden_size=1024, intermediate_size=3072, num_hidden_layers=5, num_attention_heads=16,
    num_key_value_heads=8, head_dim=128, num_code_groups=16, rope_theta=1000000, max_position_embeddings=65536,
)  # fmt: skip
_TALKER = dict(
    num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128, text_hidden_size=2048,
    text_vocab_size=151936, vocab_size=3072, num_code_groups=16, rope_theta=1000000, rope_scaling=_MROPE,
    max_position_embeddings=32768, position_id_per_seconds=13, spk_id={}, spk_is_dialect={},
    codec_language_id={"english": 2050, "chinese": 2055},
    codec_pad_id=2148, codec_bos_id=2149, codec_eos_token_id=2150, codec_think_id=2154, codec_nothink_id=2155,
    codec_think_bos_id=2156, codec_think_eos_id=2157,
)  # fmt: skip
TALKERS: dict[str, dict] = {
    "0.6b": _TALKER | dict(hidden_size=1024, intermediate_size=3072),  # text_hidden 2048 != 1024: bug 1 crashes here
    "1.7b": _TALKER | dict(hidden_size=2048, intermediate_size=6144),
}

# The hub ids of the released base checkpoints (the ones with a speaker encoder, so the ones fine-tuning starts from).
RELEASED: dict[str, Size] = {
    "Qwen/Qwen3-TTS-12Hz-0.6B-Base": "0.6b",
    "Qwen/Qwen3-TTS-12Hz-1.7B-Base": "1.7b",
}
# The released CustomVoice checkpoints: the same talker, no speaker encoder, nine presets (their speaker tables
# matter for what speaks, not for shapes: memory and speed need only the architecture).
RELEASED_CUSTOM_VOICE: dict[str, Size] = {
    "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice": "0.6b",
    "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice": "1.7b",
}

# The released 12 Hz speech tokenizer (speech_tokenizer/config.json of both base checkpoints).
SPEECH_ENCODER = dict(
    audio_channels=1, num_filters=64, kernel_size=7, residual_kernel_size=3, last_kernel_size=3, num_residual_layers=1,
    compress=2, upsampling_ratios=[8, 6, 5, 4], hidden_size=512, num_hidden_layers=8, num_attention_heads=8,
    num_key_value_heads=8, head_dim=64, intermediate_size=2048, hidden_act="gelu", norm_eps=1e-5,
    layer_scale_initial_scale=0.01, rope_theta=10000, max_position_embeddings=8000, sliding_window=250,
    num_quantizers=32, num_semantic_quantizers=1, codebook_size=2048, codebook_dim=256,
    vector_quantization_hidden_dimension=256, pad_mode="constant", use_causal_conv=True, frame_rate=12.5,
    sampling_rate=24000,
)  # fmt: skip
SPEECH_DECODER = dict(
    latent_dim=1024, codebook_dim=512, codebook_size=2048, decoder_dim=1536, hidden_size=512, intermediate_size=1024,
    head_dim=64, num_attention_heads=16, num_hidden_layers=8, num_key_value_heads=16, num_quantizers=16,
    num_semantic_quantizers=1, semantic_codebook_size=4096, sliding_window=72, upsample_rates=[8, 5, 4, 3],
    upsampling_ratios=[2, 2], vector_quantization_hidden_dimension=512, max_position_embeddings=8000,
)  # fmt: skip


def released_size(model: str) -> Size | None:
    """``"0.6b"``/``"1.7b"`` for a released checkpoint's hub id (base or CustomVoice; or the size itself), else
    None."""
    return model if model in TALKERS else RELEASED.get(model) or RELEASED_CUSTOM_VOICE.get(model)


def released_config(
    size: Size, layers: int | None = None, code_predictor_layers: int | None = None, tts_model_type: str = "base"
):
    """``Qwen3TTSConfig`` of a released model (talker, code predictor, and for ``base`` the speaker encoder).

    ``layers`` shrinks the talker to that depth at full width (a CPU-sized model of the real width), and the code
    predictor too unless ``code_predictor_layers`` is given (28 : 5 is the released ratio).
    """
    if size not in TALKERS:
        raise ValueError(f"unknown Qwen3-TTS size {size!r}: choose one of {sorted(TALKERS)}")
    talker = TALKERS[size] | {"code_predictor_config": dict(_CODE_PREDICTOR)}
    if layers:
        talker["num_hidden_layers"] = talker["code_predictor_config"]["num_hidden_layers"] = layers
    if code_predictor_layers:
        talker["code_predictor_config"]["num_hidden_layers"] = code_predictor_layers
    models = import_qwen_tts().core.models
    config = models.Qwen3TTSConfig(
        talker_config=talker,
        speaker_encoder_config={"enc_dim": talker["hidden_size"]},
        tokenizer_type="qwen3_tts_tokenizer_12hz",
        tts_model_type=tts_model_type,  # only "base" builds a speaker encoder
        tts_model_size={"0.6b": "0b6", "1.7b": "1b7"}[size],  # as the released configs spell it
    )
    config._attn_implementation = "sdpa"
    return config


def speech_tokenizer_config(layers: int | None = None):
    """``Qwen3TTSTokenizerV2Config`` of the released 12 Hz speech tokenizer; ``layers`` shrinks its transformers."""
    import_qwen_tts()
    from qwen_tts.core import Qwen3TTSTokenizerV2Config

    encoder, decoder = dict(SPEECH_ENCODER), dict(SPEECH_DECODER)
    if layers:
        encoder["num_hidden_layers"] = decoder["num_hidden_layers"] = layers
    return Qwen3TTSTokenizerV2Config(encoder_config=encoder, decoder_config=decoder, encoder_valid_num_quantizers=16)


def model_config(model: str):
    """The ``Qwen3TTSConfig`` of any model source, offline for the released models (their built-in configs)."""
    size = released_size(model)
    kind = "custom_voice" if model in RELEASED_CUSTOM_VOICE else "base"
    return released_config(size, tts_model_type=kind) if size else load_config(model)


def model_speech_tokenizer_config(model: str):
    """The speech tokenizer config of any model source (built in for the released base models)."""
    if released_size(model):
        return speech_tokenizer_config()
    import_qwen_tts()
    from qwen_tts.core import Qwen3TTSTokenizerV2Config

    return Qwen3TTSTokenizerV2Config.from_pretrained(str(checkpoint_file(model, "speech_tokenizer/config.json").parent))
