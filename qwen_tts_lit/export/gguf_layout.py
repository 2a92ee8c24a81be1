"""What qwentts.cpp expects inside its two GGUF files, as pure functions of a checkpoint's names and configs: the
tensor name each Hugging Face tensor becomes, and the metadata (keys and exact value types) read at load time.

The names and keys are qwentts.cpp's file format (its reference converter, ``convert.py``, and the keys the loader
of ``realtimetts-qwen-native-cpu`` 0.4.2 reads: docs/serving.md). The loader reads scalars with
``gguf_get_val_u32`` / ``_f32`` / ``_bool``, which abort the process on a value of another type, so every scalar here
carries its GGUF type; a missing key reads as 0, so every key the loader knows is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable

TALKER_ARCH = "qwen3-tts"
CODEC_ARCH = "qwen3-tts-tokenizer"

# The Qwen3 decoder layer, shared by the talker and the code predictor (llama.cpp's suffixes).
LM_LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
# The codec decoder's pre-transformer layer (layer scales instead of q/k norms).
CODEC_DECODER_LAYER = {
    **{k: v for k, v in LM_LAYER.items() if k not in ("self_attn.q_norm.weight", "self_attn.k_norm.weight")},
    "self_attn_layer_scale.scale": "attn_scale",
    "mlp_layer_scale.scale": "ffn_scale",
}
# The codec encoder's (Mimi) transformer layer: layer norms with biases, a two-matrix MLP.
CODEC_ENCODER_LAYER = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.fc1": "ffn_up",
    "mlp.fc2": "ffn_down",
}

DROP = ""  # a rule's answer for a tensor the file leaves out on purpose
Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str | None]]  # None: the prefix matched, the rest is unknown


def _rules(*pairs: tuple[str, Callable[[re.Match[str]], str | None]]) -> list[Rule]:
    return [(re.compile(pattern + r"\Z"), build) for pattern, build in pairs]


def _table(table: dict[str, str], prefix: str, key: str, suffix: str = "") -> str | None:
    found = table.get(key)
    return None if found is None else f"{prefix}.{found}{suffix}"


TALKER_RULES = _rules(
    (r"talker\.model\.layers\.(\d+)\.(.+)", lambda m: _table(LM_LAYER, f"talker.blk.{m[1]}", m[2])),
    (r"talker\.code_predictor\.model\.layers\.(\d+)\.(.+)", lambda m: _table(LM_LAYER, f"code_pred.blk.{m[1]}", m[2])),
    (r"talker\.code_predictor\.model\.codec_embedding\.(\d+)\.weight", lambda m: f"code_pred.codec_embd.{m[1]}.weight"),
    (r"talker\.code_predictor\.lm_head\.(\d+)\.weight", lambda m: f"code_pred.lm_head.{m[1]}.weight"),
    (r"talker\.code_predictor\.model\.norm\.weight", lambda m: "code_pred.output_norm.weight"),
    (r"talker\.code_predictor\.small_to_mtp_projection\.(weight|bias)", lambda m: f"code_pred.mtp_proj.{m[1]}"),
    (r"talker\.model\.codec_embedding\.weight", lambda m: "talker.codec_embd.weight"),
    (r"talker\.model\.text_embedding\.weight", lambda m: "talker.text_embd.weight"),
    (r"talker\.model\.norm\.weight", lambda m: "talker.output_norm.weight"),
    (r"talker\.codec_head\.weight", lambda m: "talker.codec_head.weight"),
    (r"talker\.text_projection\.linear_fc([12])\.(weight|bias)", lambda m: f"talker.text_proj.fc{m[1]}.{m[2]}"),
)

# Codebooks are not renamed one by one: ``codebook_parts`` pairs their two buffers into one tensor.
CODEC_RULES = _rules(
    # decoder: pre-transformer, pre-conv, the upsampling ConvNeXt stages, the DAC-style chain, the RVQ projections
    (r"decoder\.pre_transformer\.layers\.(\d+)\.(.+)",
     lambda m: _table(CODEC_DECODER_LAYER, f"tok_dec.pre_tfm.blk.{m[1]}", m[2])),
    (r"decoder\.pre_transformer\.((?:input|output)_proj\.(?:weight|bias)|norm\.weight)",
     lambda m: f"tok_dec.pre_tfm.{m[1]}"),
    (r"decoder\.pre_conv\.conv\.(weight|bias)", lambda m: f"tok_dec.pre_conv.{m[1]}"),
    (r"decoder\.upsample\.(\d+)\.0\.conv\.(weight|bias)", lambda m: f"tok_dec.upsample.{m[1]}.conv.{m[2]}"),
    (r"decoder\.upsample\.(\d+)\.1\.dwconv\.conv\.(weight|bias)", lambda m: f"tok_dec.upsample.{m[1]}.dwconv.{m[2]}"),
    (r"decoder\.upsample\.(\d+)\.1\.(norm|pwconv1|pwconv2)\.(weight|bias)",
     lambda m: f"tok_dec.upsample.{m[1]}.{m[2]}.{m[3]}"),
    (r"decoder\.upsample\.(\d+)\.1\.gamma", lambda m: f"tok_dec.upsample.{m[1]}.gamma"),
    (r"decoder\.decoder\.(\d+)\.conv\.(weight|bias)", lambda m: f"tok_dec.dec.{m[1]}.conv.{m[2]}"),
    (r"decoder\.decoder\.(\d+)\.(alpha|beta)", lambda m: f"tok_dec.dec.{m[1]}.snake.{m[2]}"),
    (r"decoder\.decoder\.(\d+)\.block\.0\.(alpha|beta)", lambda m: f"tok_dec.dec.{m[1]}.snake.{m[2]}"),
    (r"decoder\.decoder\.(\d+)\.block\.1\.conv\.(weight|bias)", lambda m: f"tok_dec.dec.{m[1]}.conv_t.{m[2]}"),
    # residual units sit at block indices 2, 3, 4 of a stage: the file numbers them from 0
    (r"decoder\.decoder\.(\d+)\.block\.(\d+)\.(act[12])\.(alpha|beta)",
     lambda m: f"tok_dec.dec.{m[1]}.res.{int(m[2]) - 2}.{m[3]}.{m[4]}"),
    (r"decoder\.decoder\.(\d+)\.block\.(\d+)\.(conv[12])\.conv\.(weight|bias)",
     lambda m: f"tok_dec.dec.{m[1]}.res.{int(m[2]) - 2}.{m[3]}.{m[4]}"),
    (r"decoder\.quantizer\.r(vq_first|vq_rest)\.output_proj\.weight", lambda m: f"tok_dec.{m[1]}.output_proj.weight"),
    (r"decoder\.quantizer\.rvq_(first|rest)\.input_proj\.weight", lambda m: DROP),  # the encoder's twin; unused
    # encoder: SEANet convolutions, the Mimi transformer, the downsampling conv, the RVQ projections
    (r"encoder\.encoder\.layers\.(\d+)\.conv\.(weight|bias)", lambda m: f"tok_enc.conv.{m[1]}.{m[2]}"),
    (r"encoder\.encoder\.layers\.(\d+)\.block\.(\d+)\.conv\.(weight|bias)",
     lambda m: f"tok_enc.res.{m[1]}.blk.{m[2]}.{m[3]}"),
    (r"encoder\.encoder_transformer\.layers\.(\d+)\.(self_attn|mlp)_layer_scale\.scale",
     lambda m: f"tok_enc.blk.{m[1]}.{'attn' if m[2] == 'self_attn' else 'ffn'}_scale"),
    (r"encoder\.encoder_transformer\.layers\.(\d+)\.(.+)\.(weight|bias)",
     lambda m: _table(CODEC_ENCODER_LAYER, f"tok_enc.blk.{m[1]}", m[2], f".{m[3]}")),
    (r"encoder\.downsample\.conv\.(weight|bias)", lambda m: f"tok_enc.downsample.{m[1]}"),
    (r"encoder\.quantizer\.(semantic|acoustic)_residual_vector_quantizer\.(input_proj|output_proj)\.weight",
     lambda m: f"tok_enc.vq_{m[1]}.{m[2]}.weight"),
)  # fmt: skip

# RVQ codebooks: (origin side, layer, buffer) of each buffer that is half of a codebook.
CODEBOOK_PATTERNS = (
    (re.compile(r"decoder\.quantizer\.rvq_(first|rest)\.vq\.layers\.(\d+)\._codebook\.(embedding_sum|cluster_usage)\Z"),
     "tok_dec.vq_{}.{}.codebook"),
    (re.compile(r"encoder\.quantizer\.(semantic|acoustic)_residual_vector_quantizer\.layers\.(\d+)\.codebook\."
                r"(embed_sum|cluster_usage|initialized)\Z"), "tok_enc.vq_{}.{}.codebook"),
)  # fmt: skip


class UnknownTensor(KeyError):
    """A tensor that is not part of the Qwen3-TTS 12 Hz architecture qwentts.cpp reads."""


def _rename(rules: list[Rule], name: str) -> str | None:
    for pattern, build in rules:
        found = pattern.match(name)
        if found:
            renamed = build(found)
            if renamed is None:
                break
            return renamed or None
    raise UnknownTensor(name)


def talker_tensor_name(name: str) -> str | None:
    """The talker GGUF's name of a checkpoint tensor; None for one the file leaves out (the speaker encoder: a
    custom_voice model speaks by name, from its codec-embedding rows, and needs none)."""
    if name.startswith("speaker_encoder."):
        return None
    return _rename(TALKER_RULES, name)


def codebook_part(name: str) -> tuple[str, str] | None:
    """(fused GGUF name, which buffer) when ``name`` is half of an RVQ codebook, else None."""
    for pattern, template in CODEBOOK_PATTERNS:
        found = pattern.match(name)
        if found:
            part = "embedding_sum" if found[3] == "embed_sum" else found[3]
            return template.format(found[1], found[2]), part
    return None


def codec_tensor_name(name: str) -> str | None:
    """The codec GGUF's name of a speech-tokenizer tensor that is copied as it is; None for one left out."""
    return _rename(CODEC_RULES, name)


# ---------------------------------------------------------------------------------------------------------- metadata
class U32(int):
    """A metadata value stored as uint32 (the loader's ``gguf_get_val_u32`` accepts nothing else)."""


class F32(float):
    """A metadata value stored as float32."""


def _generation(generation: dict) -> dict[str, object]:
    """generation_config.json's sampling defaults, under the keys the loader reads (every one: a missing one reads
    as 0, e.g. top_k 0)."""
    spelled = {"subtalker_do_sample": "subtalker_dosample"}  # upstream's file spells it without the underscore
    kinds = {"do_sample": bool, "top_k": U32, "top_p": F32, "temperature": F32, "repetition_penalty": F32,
             "subtalker_do_sample": bool, "subtalker_top_k": U32, "subtalker_top_p": F32,
             "subtalker_temperature": F32, "max_new_tokens": U32}  # fmt: skip
    out: dict[str, object] = {}
    for key, kind in kinds.items():
        value = generation.get(spelled.get(key, key), generation.get(key))
        if value is not None:
            out[f"generation.{key}"] = kind(value)
    return out


def talker_metadata(config: dict, generation: dict) -> dict[str, object]:
    """The talker GGUF's metadata from a checkpoint's config.json and generation_config.json."""
    talker = config["talker_config"]
    predictor = talker["code_predictor_config"]
    rope = talker.get("rope_scaling") or {}
    speakers = dict(talker.get("spk_id") or {})
    dialects = talker.get("spk_is_dialect") or {}
    languages = dict(talker.get("codec_language_id") or {})
    meta: dict[str, object] = {
        "general.name": f"Qwen3-TTS-12Hz-{config.get('tts_model_size', '')}-{config['tts_model_type']}",
        "qwen3-tts.tokenizer_type": config["tokenizer_type"],
        "qwen3-tts.model_size": str(config.get("tts_model_size", "")),
        "qwen3-tts.model_type": config["tts_model_type"],
        "qwen3-tts.num_code_groups": U32(talker["num_code_groups"]),
        **_lm("qwen3-tts.talker", talker),
        "qwen3-tts.talker.text_vocab_size": U32(talker["text_vocab_size"]),
        "qwen3-tts.talker.text_hidden_size": U32(talker["text_hidden_size"]),
        "qwen3-tts.talker.position_id_per_seconds": U32(talker["position_id_per_seconds"]),
        **_lm("qwen3-tts.code_pred", predictor),
        **{f"qwen3-tts.codec.{key}_id": U32(talker[f"codec_{key}_id"])
           for key in ("pad", "bos", "think", "nothink", "think_bos", "think_eos")},
        "qwen3-tts.codec.eos_id": U32(talker["codec_eos_token_id"]),
        "qwen3-tts.codec.language_names": list(languages),
        "qwen3-tts.codec.language_ids": [int(v) for v in languages.values()],
        **{f"qwen3-tts.text.{key}_id": U32(config[f"{key}_token_id"])
           for key in ("im_start", "im_end", "tts_pad", "tts_bos", "tts_eos")},
        **_generation(generation),
    }  # fmt: skip
    if "mrope_section" in rope:
        meta["qwen3-tts.talker.rope.mrope_section"] = [int(v) for v in rope["mrope_section"]]
        # the loader of the pinned runtime reads the first spelling, the reference converter writes the second
        meta["qwen3-tts.talker.rope.mrope_interleaved"] = bool(rope.get("interleaved", False))
        meta["qwen3-tts.talker.mrope_interleaved"] = bool(rope.get("interleaved", False))
    if speakers:  # a custom_voice checkpoint: its speakers by name (qwentts.cpp's --speaker), in spk_id's order
        meta["qwen3-tts.codec.speaker_names"] = list(speakers)
        meta["qwen3-tts.codec.speaker_ids"] = [int(v) for v in speakers.values()]
        # a dialect speaker names its dialect (a key of codec_language_id); ours are all False: keep the language
        meta["qwen3-tts.codec.speaker_dialects"] = [dialects.get(n) if isinstance(dialects.get(n), str) else ""
                                                    for n in speakers]  # fmt: skip
    return meta


def _lm(prefix: str, lm: dict) -> dict[str, object]:
    """A Qwen3 decoder's sizes under llama.cpp's key names."""
    return {
        f"{prefix}.embedding_length": U32(lm["hidden_size"]),
        f"{prefix}.feed_forward_length": U32(lm["intermediate_size"]),
        f"{prefix}.block_count": U32(lm["num_hidden_layers"]),
        f"{prefix}.attention.head_count": U32(lm["num_attention_heads"]),
        f"{prefix}.attention.head_count_kv": U32(lm["num_key_value_heads"]),
        f"{prefix}.attention.key_length": U32(lm["head_dim"]),
        f"{prefix}.vocab_size": U32(lm["vocab_size"]),
        f"{prefix}.context_length": U32(lm.get("max_position_embeddings", 32768)),
        f"{prefix}.rope.freq_base": F32(lm.get("rope_theta", 10000.0)),
        f"{prefix}.attention.layer_norm_rms_epsilon": F32(lm.get("rms_norm_eps", 1e-6)),
    }


def codec_metadata(config: dict, shapes: dict[str, tuple[int, ...]]) -> dict[str, object]:
    """The codec GGUF's metadata from speech_tokenizer/config.json and the shapes of its tensors (by Hugging Face
    name): the quantizer widths are read off the tensors, where a config may not spell them."""
    decoder, encoder = config["decoder_config"], config["encoder_config"]
    first = "decoder.quantizer.rvq_first"
    semantic = sum(1 for name in shapes if name.startswith(f"{first}.vq.layers.") and name.endswith(".cluster_usage"))
    d = "qwen3-tts-tokenizer.decoder"
    e = "qwen3-tts-tokenizer.encoder"
    meta: dict[str, object] = {
        "general.name": "Qwen3-TTS-Tokenizer-12Hz",
        **{f"qwen3-tts-tokenizer.{key}": U32(config[key]) for key in (
            "input_sample_rate", "output_sample_rate", "decode_upsample_rate", "encode_downsample_rate",
            "encoder_valid_num_quantizers")},
        **{f"{d}.{key}": U32(decoder[key]) for key in (
            "latent_dim", "codebook_dim", "codebook_size", "decoder_dim", "hidden_size", "intermediate_size",
            "head_dim", "num_attention_heads", "num_key_value_heads", "num_hidden_layers", "num_quantizers",
            "sliding_window")},
        f"{d}.num_semantic_quantizers": U32(decoder.get("num_semantic_quantizers", semantic)),
        f"{d}.rms_norm_eps": F32(decoder.get("rms_norm_eps", 1e-5)),
        f"{d}.rope_theta": F32(decoder.get("rope_theta", 10000.0)),
        f"{d}.layer_scale_initial_scale": F32(decoder.get("layer_scale_initial_scale", 0.01)),
        f"{d}.upsample_rates": [int(v) for v in decoder["upsample_rates"]],
        f"{d}.upsampling_ratios": [int(v) for v in decoder["upsampling_ratios"]],
        # (out, in, 1) projection from the codebook space into the quantizer's hidden width
        f"{d}.vector_quantization_hidden_dim": U32(shapes[f"{first}.output_proj.weight"][0]),
        f"{d}.codebook_dim_internal": U32(shapes[f"{first}.vq.layers.0._codebook.embedding_sum"][1]),
        **{f"{e}.{key}": U32(encoder[key]) for key in (
            "num_filters", "kernel_size", "last_kernel_size", "residual_kernel_size", "num_residual_layers",
            "dilation_growth_rate", "compress", "hidden_size", "intermediate_size", "head_dim", "num_attention_heads",
            "num_key_value_heads", "num_hidden_layers", "codebook_dim", "codebook_size", "num_quantizers",
            "num_semantic_quantizers")},
        f"{e}.upsampling_ratios": [int(v) for v in encoder["upsampling_ratios"]],
        f"{e}.norm_eps": F32(encoder.get("norm_eps", 1e-5)),
        f"{e}.rope_theta": F32(encoder.get("rope_theta", 10000.0)),
        f"{e}.layer_scale_initial_scale": F32(encoder.get("layer_scale_initial_scale", 0.01)),
        f"{e}.vector_quantization_hidden_dim": U32(
            encoder.get("vector_quantization_hidden_dimension", encoder["codebook_dim"])),
    }  # fmt: skip
    return meta


# qwentts.cpp's codec decoder (its dac-decoder-v2.h) fixes the strides and channel widths of its four upsampling
# blocks to the released 12 Hz tokenizer's instead of reading them from the file: a codec of other widths loads, then
# aborts the whole process (GGML_ASSERT in the transposed convolution) at its first decode. Measured with
# realtimetts-qwen-native-cpu 0.4.2 on the tiny checkpoint's codec (decoder_dim 32).
RUNTIME_DECODER = {"decoder_dim": 1536, "upsample_rates": [8, 5, 4, 3]}


def codec_problem(config: dict) -> str | None:
    """Why qwentts.cpp cannot decode with a speech tokenizer of this config.json, or None."""
    decoder = config.get("decoder_config") or {}
    for key, fixed in RUNTIME_DECODER.items():
        if decoder.get(key) != fixed:
            return (f"decoder_config.{key} {decoder.get(key)}: qwentts.cpp fixes the codec decoder to the released "
                    f"12 Hz tokenizer's ({', '.join(f'{k} {v}' for k, v in RUNTIME_DECODER.items())}) and aborts "
                    "on another (docs/serving.md)")  # fmt: skip
    return None
