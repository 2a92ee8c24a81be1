"""A tiny Qwen3-TTS checkpoint in the official on-disk layout, with random weights from a fixed seed.

It loads through ``qwen_tts.Qwen3TTSModel.from_pretrained`` offline, so the demo and every test run the real
upstream classes. Shapes (docs/tiny_checkpoint.md): ``text_hidden_size`` (32) differs from the talker's
``hidden_size`` (64) so ``text_projection`` is a real projection, as on the 0.6B model, and the code predictor is
narrower than the talker so ``small_to_mtp_projection`` is real, as on the 1.7B model. Codec special ids are the
real model's. The tiny checkpoint proves the pipeline, never voice quality: its decoder outputs near-silence.

Three kinds, as the releases (docs/tiny_checkpoint.md): ``base`` (a speaker encoder, no speakers), ``custom_voice``
(named preset speakers, one with a dialect, no speaker encoder: as the released CustomVoice checkpoints) and
``voice_design`` (no speakers, no speaker encoder). The tiny custom_voice and voice_design talkers are drawn from
seeds of their own (a fine-tune of the same architecture, as the releases are), and every kind shares the base's
speech tokenizer and text tokenizer byte for byte (one release, one codec): the tiny base and the tiny custom_voice
are a known pairing (``upstream/pairings.py``), the base's speaker encoder gives the custom_voice's new voices.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

import torch

from qwen_tts_lit.cache import build_lock, cache_root
from qwen_tts_lit.files import staged_folder
from qwen_tts_lit.upstream.compat import clean_saved_config, import_qwen_tts

TINY_SEED = 1234
STAMP_FILE = "qwen_tts_lit_tiny.json"  # marks a finished build; its content identifies the recipe

# Real-model codec ids (the talker's codec vocabulary is 3072; codes 0..2047 are audio).
CODEC_IDS = dict(
    codec_pad_id=2148,
    codec_bos_id=2149,
    codec_eos_token_id=2150,
    codec_think_id=2154,
    codec_nothink_id=2155,
    codec_think_bos_id=2156,
    codec_think_eos_id=2157,
)

# Text special tokens, in id order 0..5, as the upstream prompt builder spells them.
TEXT_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|tts_pad|>",
    "<|tts_text_bos|>",
    "<|tts_text_eod|>",
)
TEXT_VOCAB_SIZE = 512

TALKER_CONFIG = dict(
    vocab_size=3072,
    text_vocab_size=TEXT_VOCAB_SIZE,
    text_hidden_size=32,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    rope_scaling={"rope_type": "default", "mrope_section": [4, 2, 2], "interleaved": True},
    num_code_groups=16,
    position_id_per_seconds=13,
    codec_language_id={"english": 2050, "chinese": 2055},
    spk_id={},
    spk_is_dialect={},
    code_predictor_config=dict(
        vocab_size=2048,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        num_code_groups=16,
    ),
    **CODEC_IDS,
)

SPEAKER_ENCODER_CONFIG = dict(
    mel_dim=128,  # fixed by upstream's mel front end
    enc_dim=64,  # must equal the talker hidden size: the x-vector sits in the codec channel
    enc_channels=[32, 32, 32, 32, 96],
    enc_attention_channels=16,
    enc_res2net_scale=4,
    enc_se_channels=16,
    sample_rate=24000,
)

# Mimi encoder (24 kHz -> 12.5 Hz frames) and the 12 Hz decoder, shrunk. prod(upsample_rates + upsampling_ratios)
# must be 1920 = 24000 / 12.5, and Mimi's upsample_groups must divide its hidden size.
SPEECH_TOKENIZER_CONFIG = dict(
    encoder_config=dict(
        hidden_size=32,
        num_filters=8,
        num_residual_layers=1,
        upsampling_ratios=[8, 6, 5, 4],
        kernel_size=7,
        last_kernel_size=3,
        residual_kernel_size=3,
        dilation_growth_rate=2,
        compress=2,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=16,
        codebook_size=2048,
        codebook_dim=32,
        vector_quantization_hidden_dimension=32,
        num_quantizers=16,
        num_semantic_quantizers=1,
        upsample_groups=32,
        frame_rate=12.5,
        sliding_window=250,
        sampling_rate=24000,
        audio_channels=1,
    ),
    decoder_config=dict(
        codebook_size=2048,
        codebook_dim=32,
        hidden_size=32,
        latent_dim=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=16,
        num_quantizers=16,
        upsample_rates=[8, 5, 4, 3],
        upsampling_ratios=[2, 2],
        decoder_dim=32,
        sliding_window=72,
    ),
    encoder_valid_num_quantizers=16,
    input_sample_rate=24000,
    output_sample_rate=24000,
    decode_upsample_rate=1920,
    encode_downsample_rate=1920,
)

# Upstream's own generation defaults (generate_config.json of the released checkpoints).
GENERATION_CONFIG = dict(
    do_sample=True,
    top_k=50,
    top_p=1.0,
    temperature=0.9,
    repetition_penalty=1.05,
    subtalker_dosample=True,
    subtalker_top_k=50,
    subtalker_top_p=1.0,
    subtalker_temperature=0.9,
    max_new_tokens=2048,
)

# The byte-level BPE is trained on these so common English pieces merge; any text still tokenizes byte by byte.
TOKENIZER_TRAINING_TEXT = (
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "A journey of a thousand miles begins with a single step.",
    "We measured the speech rate, the word error rate and the speaker similarity every epoch.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "It was a bright cold day in April, and the clocks were striking thirteen.",
)


TinyKind = Literal["base", "custom_voice", "voice_design"]
TINY_KINDS: tuple[str, ...] = ("base", "custom_voice", "voice_design")

# The released CustomVoice config's speaker tables, shrunk to three presets: spk_id maps a lower-case name to its
# codec-embedding row, spk_is_dialect maps every preset to False or the codec_language_id key of its dialect, which
# generate puts in the codec prefix for language "auto"/"chinese" (the released 1.7B: dylan 2878 "beijing_dialect",
# eric 2875 "sichuan_dialect", vivian 3065, ryan 3061, ...; the ids and names here are the released ones).
PRESET_SPEAKERS = {"vivian": 3065, "ryan": 3061, "dylan": 2878}
PRESET_DIALECTS = {"vivian": False, "ryan": False, "dylan": "beijing_dialect"}
DIALECT_LANGUAGE_IDS = {"beijing_dialect": 2074}  # the released codec_language_id's dialect entry

# Per kind: what differs from the base recipe. The talker seed differs so that a test can tell which model spoke.
KIND_RECIPES: dict[str, dict] = {
    "base": {},
    "custom_voice": dict(
        seed=TINY_SEED + 100,
        spk_id=PRESET_SPEAKERS,
        spk_is_dialect=PRESET_DIALECTS,
        codec_language_id=TALKER_CONFIG["codec_language_id"] | DIALECT_LANGUAGE_IDS,
    ),
    "voice_design": dict(seed=TINY_SEED + 200, spk_id={}, spk_is_dialect={}),
}


def check_kind(kind: str) -> str:
    """``kind`` if it is one of :data:`TINY_KINDS`, else a ``ValueError`` naming them."""
    if kind not in TINY_KINDS:
        raise ValueError(f"tiny kind {kind!r}: choose one of {', '.join(TINY_KINDS)}")
    return kind


class TinyDirError(ValueError):
    """The target directory exists but does not hold a finished tiny checkpoint."""


def recipe_fingerprint(kind: TinyKind = "base") -> str:
    """Hash of everything that determines the tiny checkpoint of ``kind``, so a stale build is never mistaken for
    current (the base's hash is the one it always was: its cached builds stay valid)."""
    recipe = dict(
        seed=TINY_SEED,
        talker=TALKER_CONFIG,
        speaker=SPEAKER_ENCODER_CONFIG,
        speech=SPEECH_TOKENIZER_CONFIG,
        generation=GENERATION_CONFIG,
        text=TOKENIZER_TRAINING_TEXT,
        specials=TEXT_SPECIAL_TOKENS,
        codec_init=("redrawn per module in name order", CODEC_INIT_STD),
    )
    if check_kind(kind) != "base":
        recipe |= dict(kind=kind, kind_recipe=KIND_RECIPES[kind])
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def read_stamp(directory: Path) -> dict:
    """The build stamp of a tiny checkpoint folder ({} when it has none): its recipe hash, seed and kind."""
    stamp = Path(directory) / STAMP_FILE
    try:
        return json.loads(stamp.read_text()) if stamp.is_file() else {}
    except (OSError, ValueError):
        return {}


def tiny_kind_of(directory: Path) -> str | None:
    """The kind of a finished tiny build in ``directory`` (of this version's recipe), else None."""
    stamp = read_stamp(directory)
    kind = stamp.get("kind", "base")
    return kind if kind in TINY_KINDS and stamp.get("recipe") == recipe_fingerprint(kind) else None


def is_finished_tiny(directory: Path, kind: TinyKind = "base") -> bool:
    return tiny_kind_of(directory) == kind


def build_text_tokenizer():
    """A byte-level BPE wrapped as ``Qwen2TokenizerFast`` with upstream's special tokens at ids 0..5."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TEXT_VOCAB_SIZE - 16,
        special_tokens=list(TEXT_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Upstream slices the prompt as 3 role tokens (<|im_start|> assistant \n) and a 5-token suffix, so "assistant"
    # must merge into one token as it does in the real Qwen vocabulary: repeat it until BPE learns it.
    bpe.train_from_iterator([*TOKENIZER_TRAINING_TEXT, *["assistant"] * 64], trainer=trainer)
    return Qwen2TokenizerFast(
        tokenizer_object=bpe,
        bos_token=None,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=list(TEXT_SPECIAL_TOKENS[1:]),
    )


CODEC_INIT_STD = 0.02  # the codec's initializer_range: what transformers' init draws its random tensors with


def _redraw_codec(speech_model: torch.nn.Module, generator: torch.Generator) -> None:
    """Redraw the codec's random weights ourselves, module by module in name order, from the distributions
    transformers 4.57 draws them from (Mimi's encoder convolutions: kaiming-normal weights, uniform biases; every
    other linear or convolution weight: normal(0, 0.02)). 4.57 and 5.x use those distributions but draw in a
    different order (5.x walks sub-models first), so one seed gave two codecs and prepare's codes depended on the
    transformers version. Constant tensors (norms, zeros, layer scales) are the same in both and stay."""
    convolutions = (torch.nn.Conv1d, torch.nn.ConvTranspose1d)
    with torch.no_grad():
        for name, module in sorted(speech_model.named_modules()):
            weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
            if not isinstance(module, (torch.nn.Linear, *convolutions)) or weight is None:
                continue
            if isinstance(module, convolutions) and name.startswith("encoder."):
                torch.nn.init.kaiming_normal_(weight, generator=generator)
                if bias is not None and not torch.all(bias == 0):
                    bound = (module.groups / (module.in_channels * module.kernel_size[0])) ** 0.5
                    bias.copy_(torch.rand(bias.shape, generator=generator) * 2 * bound - bound)
            else:
                weight.copy_(torch.randn(weight.shape, generator=generator) * CODEC_INIT_STD)


def _randomise_codebooks(speech_model: torch.nn.Module, generator: torch.Generator) -> None:
    """Codebooks are zero-initialised upstream, which would encode every frame to code 0; fill them with noise."""
    for name, tensor in speech_model.state_dict(keep_vars=True).items():
        if name.endswith(("embed_sum", "embedding_sum")):
            with torch.no_grad():
                tensor.copy_(torch.randn(tensor.shape, generator=generator))


def build_models(kind: TinyKind = "base"):
    """Return (Qwen3TTSForConditionalGeneration, Qwen3TTSTokenizerV2Model) with seeded random weights."""
    import_qwen_tts()
    from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model
    from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration

    recipe = dict(KIND_RECIPES[check_kind(kind)])
    seed = recipe.pop("seed", TINY_SEED)
    config = Qwen3TTSConfig(
        tts_model_type=kind,  # only "base" builds a speaker encoder
        tts_model_size="tiny",  # not "0b6": upstream drops instructions for that size only
        tokenizer_type="qwen3_tts_tokenizer_12hz",
        im_start_token_id=1,
        im_end_token_id=2,
        tts_pad_token_id=3,
        tts_bos_token_id=4,
        tts_eos_token_id=5,
        talker_config=TALKER_CONFIG | recipe,
        speaker_encoder_config=SPEAKER_ENCODER_CONFIG,  # the class reads its sample rate even without an encoder
    )
    torch.manual_seed(seed)
    model = Qwen3TTSForConditionalGeneration(config).eval()
    speech_model = Qwen3TTSTokenizerV2Model(Qwen3TTSTokenizerV2Config(**SPEECH_TOKENIZER_CONFIG)).eval()
    _redraw_codec(speech_model, torch.Generator().manual_seed(TINY_SEED + 1))
    _randomise_codebooks(speech_model, torch.Generator().manual_seed(TINY_SEED))
    return model, speech_model


def _write_checkpoint(target: Path, kind: TinyKind = "base") -> None:
    import_qwen_tts()
    from qwen_tts.core.models import Qwen3TTSProcessor
    from transformers import EncodecFeatureExtractor

    model, speech_model = build_models(kind)
    model.save_pretrained(target)
    clean_saved_config(target)
    tokenizer = build_text_tokenizer()
    Qwen3TTSProcessor(tokenizer=tokenizer).save_pretrained(target)
    if not (target / "vocab.json").is_file():  # transformers 5 saves tokenizer.json alone; released checkpoints
        tokenizer.backend_tokenizer.model.save(str(target))  # (and 4.57) also ship vocab.json + merges.txt
    (target / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG, indent=2) + "\n")
    speech_dir = target / "speech_tokenizer"
    speech_model.save_pretrained(speech_dir)
    EncodecFeatureExtractor(feature_size=1, sampling_rate=24000, padding_value=0.0).save_pretrained(speech_dir)
    stamp = {"recipe": recipe_fingerprint(kind), "seed": TINY_SEED} | ({"kind": kind} if kind != "base" else {})
    (target / STAMP_FILE).write_text(json.dumps(stamp) + "\n")


def make_tiny(directory: str | os.PathLike, kind: TinyKind = "base") -> Path:
    """Build the tiny checkpoint of ``kind`` into ``directory`` and return its path.

    A finished build of the same recipe is left untouched (no-op). The checkpoint is written into a temporary
    sibling folder and renamed into place, so an interrupted build never leaves a half-written ``directory``; a
    build lock makes a second process that starts at the same time wait and reuse the first one's build.
    """
    check_kind(kind)
    target = Path(directory).expanduser().resolve()
    if is_finished_tiny(target, kind):
        return target
    with build_lock(target):
        if is_finished_tiny(target, kind):  # another process built it while this one waited
            return target
        if target.exists() and any(target.iterdir()):
            raise TinyDirError(
                f"{target}: exists and is not a finished tiny {kind} checkpoint of this version; remove it first"
            )
        if target.exists():
            target.rmdir()  # empty, checked above
        with staged_folder(target) as staging:
            _write_checkpoint(staging, kind)
    return target


def default_tiny_dir(kind: TinyKind = "base") -> Path:
    """Where the tiny checkpoint of ``kind`` is cached (built on first use); the base's path is the one it was."""
    name = "tiny" if check_kind(kind) == "base" else f"tiny-{kind}"
    return cache_root() / f"{name}-{recipe_fingerprint(kind)}"
