"""How upstream's batched ``generate`` keeps its key/value cache: the option ``decoding`` of the Synthesizer and of
evaluation (``EvalSettings.decoding``).

- ``"dynamic"`` (upstream's own): Hugging Face's ``DynamicCache``, grown by concatenation at every step, for the
  talker (one step per frame) and for the code predictor (a fresh ``generate`` of 15 steps inside every talker step,
  so a fresh cache per frame).
- ``"static"``: Hugging Face's ``StaticCache`` for both, allocated once at its final length and written in place.
  The code predictor's is allocated once per batch and reset for every frame (``generate`` keeps it on the module
  while batch size and length fit). Eager on every device: the same codes as ``"dynamic"`` (tests/upstream).
- ``"cuda_graphs"``: ``"static"`` plus the code predictor's forward compiled by Hugging Face's ``generate`` with
  ``torch.compile(mode="reduce-overhead")``, which captures it in CUDA graphs (its 15 decode shapes and the prefill
  are fixed per batch, so each is captured once and replayed for every frame). The talker stays eager: its forward
  runs the code predictor's whole ``generate`` loop inside, which no graph can hold. Without CUDA it runs as
  ``"static"`` (graphs do not exist there) and says so once; its speed and its codes on a GPU are the GPU check's
  (benchmarks/gpu_check.py).

Why a static cache needs one patch: with a compilable cache, ``generate`` turns the 2-D attention mask into a 4-D
one before the forward (``prepare_inputs_for_generation``, step 6), but the talker's forward computes its
multimodal RoPE positions from the 2-D mask at prefill (``get_rope_index``: ``1 - attention_mask``, which fails on
the boolean 4-D mask). :func:`_keep_2d_mask` hands the talker its 2-D mask back; the talker's inner model then
builds the causal mask over the static cache's full length itself (``create_causal_mask``), as a plain forward
with a static cache does. The code predictor takes no positions from its mask, so its 4-D mask stays.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from qwen_tts_lit.upstream.overrides import overridden

DECODINGS = ("dynamic", "static", "cuda_graphs")
RECOMPILE_LIMIT = 64  # the code predictor's forward is specialised per decode step (15) plus prefill, per batch


def decoding_problem(decoding: str, setting: str) -> str | None:
    """Why ``decoding`` cannot be a decoding mode (None when it is one); ``setting`` names it for the user."""
    if decoding in DECODINGS:
        return None
    return f"{setting} {decoding!r}: choose one of {', '.join(DECODINGS)}"


@contextmanager
def decoding_mode(model, decoding: str) -> Iterator[None]:
    """For the block, ``model.generate`` (a ``Qwen3TTSForConditionalGeneration``) decodes with ``decoding``."""
    problem = decoding_problem(decoding, "decoding")
    if problem:
        raise ValueError(problem)
    if decoding == "dynamic":
        yield
        return
    talker = model.talker
    graphs = decoding == "cuda_graphs" and talker.device.type == "cuda"
    if decoding == "cuda_graphs" and not graphs:
        warnings.warn(f"decoding cuda_graphs on {talker.device}: no CUDA graphs there, decoding with a static cache "
                      "(the same codes)", stacklevel=3)  # fmt: skip
    with ExitStack() as stack:
        stack.callback(_release_caches, talker)
        stack.enter_context(overridden(talker, "generate", _static(compiled=False)))
        stack.enter_context(overridden(talker, "prepare_inputs_for_generation", _keep_2d_mask))
        stack.enter_context(overridden(talker.code_predictor, "generate", _static(compiled=graphs)))
        if graphs:
            stack.enter_context(_recompile_limit(RECOMPILE_LIMIT))
        yield


def _release_caches(talker) -> None:
    """Drop the static caches ``generate`` keeps on the modules (``_cache``) for reuse: after an evaluation they
    would hold GPU memory through the next training epoch, and one left half-built by a failed call (its layers
    are allocated at the first forward) breaks the next call's reuse check."""
    for module in (talker, talker.code_predictor):
        vars(module).pop("_cache", None)


def _static(compiled: bool):
    """A ``generate`` wrapper asking for a static cache; compiled (CUDA graphs) or explicitly not (Hugging Face
    otherwise compiles any static-cache forward on CUDA by itself)."""

    def wrap(generate):
        def with_static_cache(*args, **kwargs):
            extra = {"cache_implementation": "static"}
            if compiled:
                from transformers import CompileConfig

                extra["compile_config"] = CompileConfig(fullgraph=False, dynamic=False, mode="reduce-overhead")
            else:
                extra["disable_compile"] = True
            return generate(*args, **(kwargs | extra))

        return with_static_cache

    return wrap


def _keep_2d_mask(prepare):
    def prepare_inputs(*args, attention_mask=None, **kwargs):
        inputs = prepare(*args, attention_mask=attention_mask, **kwargs)
        if attention_mask is None or attention_mask.ndim == 2:
            # (B, T so far): the talker's RoPE positions read it. None stays None: transformers 5.25 builds a 4-D
            # mask even when generate was given none (the streaming layout), which 4.57 did not.
            inputs["attention_mask"] = attention_mask
        return inputs

    return prepare_inputs


@contextmanager
def _recompile_limit(limit: int) -> Iterator[None]:
    """Raise torch.compile's per-function recompile limit for the block (default 8 < the predictor's 16 shapes)."""
    import torch._dynamo

    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    before = getattr(config, name)
    setattr(config, name, max(before, limit))
    try:
        yield
    finally:
        setattr(config, name, before)
