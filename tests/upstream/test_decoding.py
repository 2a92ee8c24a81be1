"""Static-cache decoding (upstream/decoding.py) gives the codes of upstream's dynamic cache, on a batch of padded rows
of different lengths, greedy and sampled from per-row seeds, with LoRA at a different scale per row (what an
evaluation epoch's generate call is); and it really decodes with a static cache (a no-op would match too)."""

from __future__ import annotations

import pytest
import torch
from transformers import GenerationMixin
from transformers.cache_utils import DynamicCache, StaticCache

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.model.lora import LoraSpec, inject_lora
from qwen_tts_lit.synthesis.presets import GREEDY, SEED_GUIDE
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

# Prompts of different lengths: left padding in the batch; caps of different lengths: rows end at different steps.
TEXTS = ["Hi.", "The morning train was twelve minutes late today.", "She left her umbrella on the bus."]
CAPS = [5, 9, 7]
SCALES = [0.0, 0.5, 1.0]


@pytest.fixture(scope="module")
def tts(tiny_dir):
    """A private tiny model with LoRA adapters whose B is non-zero (so each row's scale changes its codes)."""
    from qwen_tts_lit.upstream.loading import load_qwen3_tts

    wrapper = load_qwen3_tts(str(tiny_dir))
    torch.manual_seed(0)
    inject_lora(wrapper.model, LoraSpec(rank=4, alpha=8, dropout=0.0))
    with torch.no_grad():
        for name, parameter in wrapper.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    return wrapper


@pytest.fixture(scope="module")
def xvector() -> torch.Tensor:
    return torch.randn(64, generator=torch.Generator().manual_seed(0))


class CacheSpy:
    """The cache objects the talker's and the code predictor's transformer stacks were handed, per call."""

    def __init__(self, model) -> None:
        self.seen: dict[str, list] = {"talker": [], "predictor": []}
        stacks = {"talker": model.talker.model, "predictor": model.talker.code_predictor.model}
        self.handles = [stack.register_forward_pre_hook(self._hook(name), with_kwargs=True)
                        for name, stack in stacks.items()]  # fmt: skip

    def _hook(self, name: str):
        def record(module, args, kwargs):
            self.seen[name].append(kwargs.get("past_key_values"))

        return record

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def speak(tts, xvector, preset, decoding: str, streaming: bool = False):
    synth = Synthesizer(tts, Voice(xvector=xvector), preset=preset, decoding=decoding, streaming=streaming)
    spy = CacheSpy(tts.model)
    try:
        spoken = synth.synthesize(TEXTS, seeds=[11, 12, 13], lora_scale=SCALES, max_new_tokens=CAPS, batch_size=3)
    finally:
        spy.close()
    return [u.codes for u in spoken], spy.seen


@pytest.mark.parametrize("preset", [GREEDY, SEED_GUIDE], ids=["greedy", "seeded-sampling"])
def test_static_cache_gives_the_dynamic_caches_codes(tts, xvector, preset):
    dynamic, dynamic_caches = speak(tts, xvector, preset, "dynamic")
    static, static_caches = speak(tts, xvector, preset, "static")
    assert [len(c) for c in dynamic] == CAPS  # the tiny model runs to each row's own cap
    for row, (want, got) in enumerate(zip(dynamic, static, strict=True)):
        assert torch.equal(want, got), f"row {row}: {(want != got).sum().item()} of {want.numel()} codes differ"
    assert {type(c) for caches in dynamic_caches.values() for c in caches} == {DynamicCache}
    # Static: both stacks write into StaticCaches; the talker's one for the call, the predictor's one for the
    # whole batch (allocated once, reset for every frame), not one per frame as the dynamic path allocates.
    assert {type(c) for caches in static_caches.values() for c in caches} == {StaticCache}
    assert len({id(c) for c in static_caches["talker"]}) == 1
    # transformers 4.57's generate keeps a static cache on the module and resets it (``_get_cache``); 5.x allocates
    # a fresh one per call by design, so there the predictor's is one per frame, as the dynamic path's
    # (docs/transformers.md: the same codes, the allocation saving is 4.57's).
    keeps_cache = hasattr(GenerationMixin, "_get_cache")
    assert len({id(c) for c in static_caches["predictor"]}) == (1 if keeps_cache else max(CAPS) + 1)
    assert len({id(c) for c in dynamic_caches["predictor"]}) == max(CAPS) + 1  # one per talker decode step


def test_static_cache_gives_the_dynamic_caches_codes_in_the_streaming_layout(tts, xvector):
    """The voice_clone baseline speaks upstream's streaming layout (text fed beside the frames, one text embedding
    added per decode step): the static cache must not change its codes either."""
    dynamic, _ = speak(tts, xvector, GREEDY, "dynamic", streaming=True)
    static, caches = speak(tts, xvector, GREEDY, "static", streaming=True)
    non_streaming, _ = speak(tts, xvector, GREEDY, "dynamic")
    assert any(not torch.equal(a, b) for a, b in zip(dynamic, non_streaming, strict=True))  # the layout is in play
    assert all(torch.equal(a, b) for a, b in zip(dynamic, static, strict=True))
    assert {type(c) for c in caches["talker"]} == {StaticCache}


def test_cuda_graphs_without_cuda_decodes_static_and_says_so(tts, xvector):
    if torch.cuda.is_available():
        pytest.skip("on CUDA the graphs are captured: tests/benchmarks/test_gpu_check.py")
    static, _ = speak(tts, xvector, GREEDY, "static")
    with pytest.warns(UserWarning, match="no CUDA graphs there"):
        graphs, caches = speak(tts, xvector, GREEDY, "cuda_graphs")
    assert all(torch.equal(a, b) for a, b in zip(static, graphs, strict=True))
    assert {type(c) for c in caches["predictor"]} == {StaticCache}


def test_overrides_unwind_and_a_wrong_mode_is_refused(tts, xvector):
    talker = tts.model.talker
    speak(tts, xvector, GREEDY, "static")
    for module in (talker, talker.code_predictor):  # no instance attribute left behind: the class methods again
        assert "generate" not in vars(module) and "prepare_inputs_for_generation" not in vars(module)
        assert "_cache" not in vars(module)  # the static caches are released: no GPU memory held into training
    with pytest.raises(UserError, match="decoding 'fast': choose one of dynamic, static, cuda_graphs"):
        Synthesizer(tts, Voice(xvector=xvector), decoding="fast")
