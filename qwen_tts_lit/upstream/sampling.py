"""Sampling with one random generator per row of a batched ``generate``, so that a row's audio does not depend on
which other rows share the call.

Upstream's ``Qwen3TTSForConditionalGeneration.generate`` samples in two places, both through Hugging Face's
``generate``: the talker (group-0 codes, one token per frame) and, inside each talker step, the code predictor
(groups 1-15). HF draws with ``torch.multinomial`` from the global RNG, one draw for the whole batch, so a row's
samples depend on its companions. :func:`per_row_sampling` wraps both ``generate`` methods for the block: it turns
HF's sampling off (``do_sample=False``, so HF takes the argmax) and adds :class:`RowSampler` as the last logits
processor. That processor applies the same warpers HF would (temperature, top-k, top-p: HF's own classes, in HF's
order) and adds Gumbel noise drawn from each row's own ``torch.Generator``; the argmax of log-probabilities plus
Gumbel noise is an exact sample of the warped distribution (the Gumbel-max trick), so the distribution is the one
upstream samples from, and row r only ever consumes row r's generator: one draw per talker step and one per code
group, in the same order whatever the batch. Upstream's ``generate`` forwards none of its extra arguments to the
inner calls, which is why the inner methods are wrapped (``upstream.overrides``: instance attributes, restored on exit).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from qwen_tts_lit.upstream.overrides import overridden

SAMPLING_ARGS = ("temperature", "top_k", "top_p")  # what upstream passes to both inner generate calls


def warpers(temperature: float | None, top_k: int | None, top_p: float | None) -> LogitsProcessorList:
    """HF's sampling warpers for these settings, built under HF's own conditions and in its order."""
    chain = LogitsProcessorList()
    if temperature is not None and temperature != 1.0:
        chain.append(TemperatureLogitsWarper(temperature))
    if top_k is not None and top_k != 0:
        chain.append(TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=1))
    if top_p is not None and top_p < 1.0:
        chain.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1))
    return chain


class RowSampler(LogitsProcessor):
    """Warp the scores as HF's sampling does, then add Gumbel noise from row r's own generator: the argmax HF then
    takes is a sample of row r's warped distribution that depends on no other row."""

    def __init__(self, generators: Sequence[torch.Generator], chain: LogitsProcessorList) -> None:
        self.generators, self.chain = list(generators), chain

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.generators):
            raise RuntimeError(f"per-row sampling: {len(self.generators)} generators for {scores.shape[0]} rows")
        # (B, V) warped logits, -inf where filtered out; the argmax of logits + Gumbel noise is the same as that of
        # log-probabilities + noise (they differ by a constant per row), so no softmax is needed
        logits = self.chain(input_ids, scores).float()
        noise = torch.empty_like(logits)  # (B, V)
        for row, generator in enumerate(self.generators):
            noise[row].exponential_(generator=generator)  # E ~ Exp(1); -log E is Gumbel(0, 1)
        return logits - noise.log_()


def row_generators(seeds: Sequence[int], device: torch.device | str) -> list[torch.Generator]:
    """One generator per row on ``device``, seeded with the row's seed."""
    return [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]


def _with_row_sampler(kwargs: dict, generators: list[torch.Generator]) -> dict:
    """``generate`` kwargs with HF's sampling replaced by :class:`RowSampler` (unchanged when not sampling)."""
    if not kwargs.get("do_sample"):
        return kwargs
    settings = {name: kwargs.pop(name, None) for name in SAMPLING_ARGS}
    processors = LogitsProcessorList(kwargs.pop("logits_processor", None) or [])
    processors.append(RowSampler(generators, warpers(**settings)))
    return kwargs | {"do_sample": False, "logits_processor": processors}


@contextmanager
def per_row_sampling(model, seeds: Sequence[int]) -> Iterator[None]:
    """For the block, ``model.generate`` (a ``Qwen3TTSForConditionalGeneration``) samples row i from a generator
    seeded with ``seeds[i]``; the talker and the code predictor of a row share that generator."""
    talker = model.talker
    generators = row_generators(seeds, talker.device)

    def wrap(generate):
        return lambda *args, **kwargs: generate(*args, **_with_row_sampler(kwargs, generators))

    with ExitStack() as stack:
        for module in (talker, talker.code_predictor):
            stack.enter_context(overridden(module, "generate", wrap))
        yield
