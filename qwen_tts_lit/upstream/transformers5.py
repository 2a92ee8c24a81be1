"""Make ``qwen_tts`` 0.1.1 (written against transformers 4.57.3) run unchanged under Transformers 5.

Every patch is a small named function that says what 5.x breaks and from which version, applied only when the
installed transformers needs it (detected from the installed code, not from a list of versions) and idempotent.
:func:`before_import` runs before ``import qwen_tts`` (its modules read the broken names at import time),
:func:`after_import` right after it. Nothing in site-packages is edited. docs/transformers.md lists them all.
"""

from __future__ import annotations

import functools
import inspect
import sys

# The transformers versions this project is tested on (CI runs both ends: .ci/run, docs/transformers.md). The same
# range is pyproject.toml's dependency; a version outside it gets one warning line when qwen_tts is first imported.
TESTED_RANGE = (">=4.57.3", "<5.26")
TESTED_VERSIONS = ("4.57.3", "5.25.0")
APPLIED: list[str] = []  # names of the patches this process applied, in order (for tests and docs/transformers.md)
_warned: list[str] = []


def in_tested_range(version: str) -> bool:
    """Whether ``version`` (of transformers) is inside :data:`TESTED_RANGE`."""
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(",".join(TESTED_RANGE)).contains(version, prereleases=True)


def warn_if_untested(version: str | None = None) -> bool:
    """One line on stderr, once per process, when the installed transformers is outside the tested range."""
    if version is None:
        import transformers

        version = transformers.__version__
    if in_tested_range(version) or _warned:
        return False
    _warned.append(version)
    print(
        f"warning: transformers {version} is outside the range qwen_tts_lit is tested with "
        f"(transformers{','.join(TESTED_RANGE)}); see docs/transformers.md",
        file=sys.stderr,
    )
    return True


def _once(patch):
    @functools.wraps(patch)
    def apply(*args, **kwargs):
        if patch.__name__ in APPLIED:
            return False
        if patch(*args, **kwargs) is False:
            return False
        APPLIED.append(patch.__name__)
        return True

    return apply


@_once
def decorator_check_model_inputs() -> bool:
    """5.0+: ``check_model_inputs`` takes the function itself (``@check_model_inputs``) and only merges config
    defaults; upstream writes ``@check_model_inputs()``, so ``import qwen_tts`` fails with "missing 1 required
    positional argument: 'func'". 4.57's decorator also recorded ``output_hidden_states``/``output_attentions`` by
    hooks, which 5.x moved to ``capture_outputs``: the replacement applies both, with or without parentheses."""
    from transformers.utils import generic

    original = generic.check_model_inputs
    if "func" not in inspect.signature(original).parameters:
        return False
    from transformers.utils.generic import merge_with_config_defaults
    from transformers.utils.output_capturing import capture_outputs

    def check_model_inputs(func=None, **_ignored):
        if func is None:
            return lambda f: merge_with_config_defaults(capture_outputs(f))
        return merge_with_config_defaults(capture_outputs(func))

    generic.check_model_inputs = check_model_inputs
    return True


@_once
def config_pad_token_id(config_classes) -> bool:
    """5.0+: ``PreTrainedConfig`` no longer gives every config ``pad_token_id = None``; upstream's talker and code
    predictor read ``config.pad_token_id`` (as the embeddings' padding index), so loading fails with an
    AttributeError. Give the classes that lack it 4.57's default, ``None``, as a class attribute (a value in
    config.json still wins)."""
    from transformers import PretrainedConfig

    probe = PretrainedConfig()
    if hasattr(probe, "pad_token_id"):
        return False
    for cls in config_classes:
        if "pad_token_id" not in vars(cls):
            cls.pad_token_id = None
    return True


def default_rope_parameters(config, device=None, seq_len=None):
    """4.57.3's ``_compute_default_rope_parameters``, verbatim in its arithmetic (int64 arange cast to float, so the
    frequencies are the bit-identical tensor): plain RoPE, attention factor 1."""
    import torch

    base = getattr(config, "rope_theta", None) or config.rope_parameters["rope_theta"]
    partial_rotary_factor = getattr(config, "partial_rotary_factor", None) or 1.0
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    dim = int(head_dim * partial_rotary_factor)
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float) / dim))
    return inv_freq, 1.0


@_once
def rope_default_entry(modules) -> bool:
    """5.0+: ``ROPE_INIT_FUNCTIONS`` has no ``"default"`` entry (each model class computes plain RoPE itself), and
    upstream's three rotary embeddings look it up: loading fails with KeyError 'default'. The entry goes into a copy
    of the registry that only upstream's modules see: registering it globally would make transformers' own Mimi (the
    codec's encoder) take it instead of its own ``compute_default_rope_parameters``."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    if "default" in ROPE_INIT_FUNCTIONS:
        return False
    for module in modules:
        module.ROPE_INIT_FUNCTIONS = {**module.ROPE_INIT_FUNCTIONS, "default": default_rope_parameters}
    return True


@_once
def speech_tokenizer_from_auto(tokenizer_class) -> bool:
    """5.25: ``AutoModel.from_pretrained`` passes ``_from_auto`` in its hub keywords as well as in the model's
    keywords; upstream's ``Qwen3TTSForConditionalGeneration.from_pretrained`` forwards its keywords (which hold
    ``_from_auto`` when loaded through ``AutoModel``) to ``Qwen3TTSTokenizer.from_pretrained``, whose own
    ``AutoModel`` call then fails with "got multiple values for keyword argument '_from_auto'". Drop the key there:
    the inner ``AutoModel`` sets it again."""
    from transformers.models.auto import auto_factory

    if '"_from_auto": True' not in inspect.getsource(auto_factory._BaseAutoModelClass.from_pretrained):
        return False
    original = tokenizer_class.from_pretrained.__func__

    @functools.wraps(original)
    def from_pretrained(cls, *args, **kwargs):
        kwargs.pop("_from_auto", None)
        return original(cls, *args, **kwargs)

    tokenizer_class.from_pretrained = classmethod(from_pretrained)
    return True


@_once
def codec_encoder_halves(encoder_class) -> bool:
    """5.25: ``MimiModel`` holds its halves as ``encoder``/``decoder`` sub-models and exposes the old attributes
    (``upsample``, ``decoder_transformer``, ...) as read-only properties. Upstream's codec encoder subclasses
    ``MimiModel`` and drops the decoder half by assigning ``self.upsample = None`` (and ``decoder_transformer``),
    which fails ("property 'upsample' ... has no setter"). On 5.25 those live under ``decoder``, so dropping the
    decoder half is the same thing."""
    from transformers import MimiModel

    if not isinstance(inspect.getattr_static(MimiModel, "upsample", None), property):
        return False

    def __init__(self, config):
        MimiModel.__init__(self, config)
        self.config = config
        self.decoder = None  # upsample and decoder_transformer are the decoder half's on 5.25
        self.post_init()

    encoder_class.__init__ = __init__
    return True


@_once
def codec_encoder_key_renaming(encoder_class) -> bool:
    """5.25: checkpoints keep Mimi's flat key layout (``encoder.layers``, ``encoder_transformer.``, ...) and a
    renaming rule, registered under the class name ``MimiModel``, maps them onto the new halves. Rules are looked up
    by class name and skipped for custom code, so upstream's ``Qwen3TTSTokenizerV2Encoder`` gets none: its weights
    are reported missing and left RANDOM (silently: prepare's codes change). Register MimiModel's rule under the
    subclass's name too."""
    try:
        from transformers.conversion_mapping import (
            get_checkpoint_conversion_mapping,
            register_checkpoint_conversion_mapping,
        )
    except ImportError:
        return False
    rule = get_checkpoint_conversion_mapping("MimiModel")
    if rule is None:
        return False
    register_checkpoint_conversion_mapping(encoder_class.__name__, rule, overwrite=True)
    return True


def _refill_rope(module) -> None:
    """Recompute a RoPE module's frequencies (they depend on the config only) into its ``inv_freq`` buffer."""
    import torch

    inv_freq = module._buffers["inv_freq"]
    with torch.no_grad():
        value, _ = module.rope_init_fn(module.config, inv_freq.device)
        inv_freq.copy_(value.to(inv_freq.dtype))
    module.original_inv_freq = inv_freq  # upstream's alias, which pointed at the placeholder the loader replaced


@_once
def rope_buffers_initialised(modules) -> bool:
    """5.0+: ``from_pretrained`` builds the model on the meta device, gives every buffer missing from the checkpoint
    an EMPTY placeholder and relies on ``_init_weights`` to fill it. ``inv_freq`` is non-persistent (never saved)
    and upstream's ``_init_weights`` knows nothing of rotary embeddings, so the talker's, the code predictor's and
    the codec decoder's RoPE frequencies are left as whatever memory held (silently: attention sees garbage
    positions). Make upstream's ``_init_weights`` recompute them first."""
    from transformers import PreTrainedModel

    if not hasattr(PreTrainedModel, "_move_missing_keys_from_meta_to_device"):
        return False
    bases = {
        cls
        for module in modules
        for cls in vars(module).values()
        if isinstance(cls, type) and PreTrainedModel in cls.__bases__ and cls.__module__ == module.__name__
    }
    for cls in bases:
        original = cls._init_weights

        @functools.wraps(original)
        def _init_weights(self, module, _original=original):
            if hasattr(module, "rope_init_fn") and "inv_freq" in getattr(module, "_buffers", {}):
                _refill_rope(module)
                return
            _original(self, module)

        cls._init_weights = _init_weights
    return True


@_once
def tied_weights_mapping(modules) -> bool:
    """5.0+: ``_tied_weights_keys`` is a ``{target: source}`` dict; upstream's talker and code predictor keep
    4.57's list (``["lm_head.weight"]``), so ``save_pretrained`` (building the tiny checkpoint, exporting) fails with
    "'list' object has no attribute 'keys'". Nothing is tied in either version (``tie_word_embeddings`` is False
    in every Qwen3-TTS config, and neither class has an ``lm_head.weight``), so the list becomes an empty dict."""
    from transformers import PreTrainedModel

    if "dict" not in str(PreTrainedModel.__annotations__.get("_tied_weights_keys", "")):
        return False
    for module in modules:
        for cls in vars(module).values():
            if isinstance(cls, type) and isinstance(vars(cls).get("_tied_weights_keys"), list):
                cls._tied_weights_keys = {}
    return True


@_once
def mask_keywords(modules) -> bool:
    """5.25: ``create_causal_mask`` / ``create_sliding_window_causal_mask`` take ``inputs_embeds`` (upstream passes
    4.57's ``input_embeds``) and ``cache`` (``past_key_values`` is a deprecated alias), and no longer take
    ``cache_position``: the query and key offsets come from the cache itself. The forward passes then fail with
    "unexpected keyword argument 'input_embeds'". Upstream's modules get wrappers that translate the keywords;
    ``cache_position`` is dropped (in upstream's calls it always equals the cache's own count of seen tokens)."""
    from transformers import masking_utils

    if "input_embeds" in inspect.signature(masking_utils.create_causal_mask).parameters:
        return False

    def translated(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if "input_embeds" in kwargs:
                kwargs["inputs_embeds"] = kwargs.pop("input_embeds")
            if "past_key_values" in kwargs:
                kwargs["cache"] = kwargs.pop("past_key_values")
            kwargs.pop("cache_position", None)
            return function(*args, **kwargs)

        return wrapper

    for module in modules:
        for name in ("create_causal_mask", "create_sliding_window_causal_mask"):
            setattr(module, name, translated(getattr(masking_utils, name)))
    return True


@_once
def config_rope_scaling_saved(config_classes) -> bool:
    """5.0+: configs keep RoPE settings as ``rope_parameters`` and save only that key; upstream's talker and code
    predictor configs read ``rope_scaling`` (default None) and assign it in ``__init__``, which through 5.x's
    ``rope_scaling`` setter wipes ``rope_parameters``. A checkpoint saved under 5.x (the tiny one, an export) then
    reloads without its mRoPE sections ("'NoneType' object is not subscriptable"), and 4.57 or another runtime
    cannot read it either. Save the 4.57 key (``rope_scaling``, without ``rope_theta``, which has its own key) and
    read ``rope_parameters`` when a file has only that."""
    from transformers import PretrainedConfig

    if not isinstance(inspect.getattr_static(PretrainedConfig, "rope_scaling", None), property):
        return False
    for cls in config_classes:
        original_init, original_to_dict = cls.__init__, cls.to_dict

        @functools.wraps(original_init)
        def __init__(self, *args, _original=original_init, **kwargs):
            if kwargs.get("rope_scaling") is None and kwargs.get("rope_parameters") is not None:
                kwargs["rope_scaling"] = {k: v for k, v in kwargs.pop("rope_parameters").items() if k != "rope_theta"}
            _original(self, *args, **kwargs)

        @functools.wraps(original_to_dict)
        def to_dict(self, _original=original_to_dict):
            output = _original(self)
            rope = output.pop("rope_parameters", None)
            if rope is not None and output.get("rope_scaling") is None:
                output["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
            return output

        cls.__init__, cls.to_dict = __init__, to_dict
    return True


def _cache_position(kwargs):
    """What 4.57's ``generate`` passed as ``cache_position``: the positions of this step's tokens in the cache."""
    import torch

    inputs = kwargs.get("inputs_embeds")
    inputs = kwargs["input_ids"] if inputs is None else inputs
    seen = kwargs["past_key_values"].get_seq_length()
    return torch.arange(seen, seen + inputs.shape[1], device=inputs.device)


@_once
def generate_cache_keyword(model_classes) -> bool:
    """5.25: ``generate`` hands the KV cache to ``forward`` as ``cache=`` and takes the next step's from
    ``outputs["cache"]``; upstream's talker and code predictor take and return ``past_key_values``. The cache then
    lands in ``**kwargs``, ignored, and every step attends only to itself (silently: the codes differ from frame 0).
    Translate at both ends: ``cache`` becomes ``past_key_values`` on the way in, and the returned
    ``past_key_values`` is what generate carries to the next step. 5.25's ``generate`` also stopped passing
    ``cache_position``; the talker reads it to tell prefill from decoding, and without it a padded batch (an
    evaluation's generate) recomputes its mRoPE positions over the whole mask at every step and crashes ("size of
    tensor a (65) must match ... (33)"). It is restored as 4.57 computed it."""
    from transformers import GenerationMixin

    if "cache" not in inspect.signature(GenerationMixin.prepare_inputs_for_generation).parameters:
        return False
    for cls in model_classes:
        forward, update = cls.forward, cls._update_model_kwargs_for_generation

        @functools.wraps(forward)
        def forward_(self, *args, _original=forward, **kwargs):
            if "cache" in kwargs:
                kwargs["past_key_values"] = kwargs.pop("cache")
            if kwargs.get("cache_position") is None and kwargs.get("past_key_values") is not None:
                kwargs["cache_position"] = _cache_position(kwargs)
            return _original(self, *args, **kwargs)

        @functools.wraps(update)
        def update_(self, outputs, model_kwargs, *args, _original=update, **kwargs):
            model_kwargs = _original(self, outputs, model_kwargs, *args, **kwargs)
            if getattr(outputs, "past_key_values", None) is not None:
                model_kwargs["cache"] = outputs.past_key_values
            return model_kwargs

        cls.forward, cls._update_model_kwargs_for_generation = forward_, update_
    return True


# Every patch, in the order applied (docs/transformers.md has a row for each; tests/upstream/test_transformers5.py
# removes each in turn and shows what breaks).
PATCHES = (
    "decorator_check_model_inputs",
    "config_pad_token_id",
    "config_rope_scaling_saved",
    "rope_default_entry",
    "rope_buffers_initialised",
    "tied_weights_mapping",
    "mask_keywords",
    "generate_cache_keyword",
    "speech_tokenizer_from_auto",
    "codec_encoder_halves",
    "codec_encoder_key_renaming",
)


def before_import() -> None:
    """The tested-range warning, and the patches that must be in place before ``import qwen_tts``."""
    warn_if_untested()
    decorator_check_model_inputs()


def after_import() -> None:
    """The patches applied to ``qwen_tts``'s own modules once they are imported."""
    from qwen_tts.core.models import configuration_qwen3_tts as tts_config
    from qwen_tts.core.models import modeling_qwen3_tts as tts_model
    from qwen_tts.core.tokenizer_12hz import modeling_qwen3_tts_tokenizer_v2 as codec_model

    config_pad_token_id([tts_config.Qwen3TTSTalkerConfig, tts_config.Qwen3TTSTalkerCodePredictorConfig])
    config_rope_scaling_saved([tts_config.Qwen3TTSTalkerConfig, tts_config.Qwen3TTSTalkerCodePredictorConfig])
    rope_default_entry([tts_model, codec_model])
    rope_buffers_initialised([tts_model, codec_model])
    tied_weights_mapping([tts_model, codec_model])
    mask_keywords([tts_model, codec_model])
    talker, predictor = (
        tts_model.Qwen3TTSTalkerForConditionalGeneration,
        tts_model.Qwen3TTSTalkerCodePredictorModelForConditionalGeneration,
    )
    generate_cache_keyword([talker, predictor])
    from qwen_tts.inference.qwen3_tts_tokenizer import Qwen3TTSTokenizer

    speech_tokenizer_from_auto(Qwen3TTSTokenizer)
    codec_encoder_halves(codec_model.Qwen3TTSTokenizerV2Encoder)
    codec_encoder_key_renaming(codec_model.Qwen3TTSTokenizerV2Encoder)
