"""The real Qwen3-TTS-12Hz-1.7B architecture with random weights, for benchmarks (no download: only speed matters).

Shapes follow the released checkpoints' configs (talker, code predictor, speaker encoder).
The tiny checkpoint supplies the config skeleton (codec special ids) and the text tokenizer: ids are all that count.
"""

from __future__ import annotations

import inspect

REAL_1_7B_TALKER = dict(
    hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
    head_dim=128, text_hidden_size=2048, text_vocab_size=151936, vocab_size=3072,
    rope_scaling={"rope_type": "default", "mrope_section": [24, 20, 20], "interleaved": True},  # sums to head_dim/2
    code_predictor_config=dict(vocab_size=2048, hidden_size=1024, intermediate_size=3072, num_hidden_layers=5,
                               num_attention_heads=16, num_key_value_heads=8, head_dim=128, num_code_groups=16),
)  # fmt: skip


def real_1_7b_config(tiny_dir: str, layers: int | None = None):
    """``Qwen3TTSConfig`` of the real 1.7B talker + speaker encoder; ``layers`` shrinks both stacks (CPU smoke run)."""
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    models = import_qwen_tts().core.models
    config = models.Qwen3TTSConfig.from_pretrained(str(tiny_dir))
    talker = config.talker_config.to_dict() | REAL_1_7B_TALKER
    talker["code_predictor_config"] = talker["code_predictor_config"] | REAL_1_7B_TALKER["code_predictor_config"]
    if layers:
        talker["num_hidden_layers"] = talker["code_predictor_config"]["num_hidden_layers"] = layers
    config.talker_config = type(config.talker_config)(**talker)
    speaker_class = type(config.speaker_encoder_config)
    accepted = inspect.signature(speaker_class.__init__).parameters  # to_dict() adds keys its __init__ refuses
    speaker = config.speaker_encoder_config.to_dict() | {"enc_dim": talker["hidden_size"]}
    config.speaker_encoder_config = speaker_class(**{k: v for k, v in speaker.items() if k in accepted})
    return config
