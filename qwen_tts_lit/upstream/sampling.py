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

For reinforcement learning the talker's sampler can also record what it drew (:class:`SampledTokens`): every
group-0 token of every row and two log-probabilities of it, taken from the very scores it was drawn from. The
scores :class:`RowSampler` receives have been through Hugging Face's processors that upstream's ``generate`` always
asks for (repetition penalty, EOS banned for the first ``min_new_tokens`` steps, the suppress mask of the top 1024
ids but EOS). ``policy`` is the log-softmax of those scores divided by the temperature: the policy the RL ratio
uses (docs/reinforcement_learning.md says why top-k/top-p stay out of it); ``sampler`` is the log-probability under
the distribution actually drawn from, after top-k and top-p as well (>= ``policy``; their gap is the mass the
truncation removed). ``model/policy.py`` recomputes both in a training forward; tests/rl proves them equal.
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


class SampledTokens:
    """What a talker's :class:`RowSampler` drew, step by step: per step the (B,) tokens, their policy
    log-probabilities (tempered, untruncated) and their sampler log-probabilities (after top-k/top-p too).
    Steps after a row's EOS are Hugging Face's padding steps: :meth:`row` cuts them off."""

    def __init__(self) -> None:
        self.tokens: list[torch.Tensor] = []
        self.policy: list[torch.Tensor] = []
        self.sampler: list[torch.Tensor] = []

    def add(self, tokens: torch.Tensor, policy: torch.Tensor, sampler: torch.Tensor) -> None:
        self.tokens.append(tokens.detach().cpu())
        self.policy.append(policy.detach().float().cpu())
        self.sampler.append(sampler.detach().float().cpu())

    @property
    def steps(self) -> int:
        return len(self.tokens)

    def row(self, index: int, steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Row ``index``'s first ``steps`` draws: (tokens, policy log-probs, sampler log-probs), each (steps,)."""
        if steps > self.steps:
            raise RuntimeError(f"sampler recorded {self.steps} steps, {steps} asked for row {index}")
        if steps == 0:
            empty = torch.zeros(0)
            return empty.long(), empty, empty
        pick = slice(0, steps)
        return tuple(torch.stack(values[pick])[:, index] for values in (self.tokens, self.policy, self.sampler))


class RowSampler(LogitsProcessor):
    """Warp the scores as HF's sampling does, then add Gumbel noise from row r's own generator: the argmax HF then
    takes is a sample of row r's warped distribution that depends on no other row. With ``record``, the token HF
    will take and its log-probabilities (see :class:`SampledTokens`) are recorded at every call."""

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        chain: LogitsProcessorList,
        temperature: float | None = None,
        record: SampledTokens | None = None,
    ) -> None:
        self.generators, self.chain = list(generators), chain
        self.temperature, self.record = temperature, record

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.generators):
            raise RuntimeError(f"per-row sampling: {len(self.generators)} generators for {scores.shape[0]} rows")
        # (B, V) warped logits, -inf where filtered out; the argmax of logits + Gumbel noise is the same as that of
        # log-probabilities + noise (they differ by a constant per row), so no softmax is needed
        logits = self.chain(input_ids, scores).float()
        noise = torch.empty_like(logits)  # (B, V)
        for row, generator in enumerate(self.generators):
            noise[row].exponential_(generator=generator)  # E ~ Exp(1); -log E is Gumbel(0, 1)
        drawn = logits - noise.log_()
        if self.record is not None:
            self._record(scores, logits, drawn.argmax(-1))  # the very argmax HF takes of what we return
        return drawn

    def _record(self, scores: torch.Tensor, warped: torch.Tensor, tokens: torch.Tensor) -> None:
        tempered = scores.float() / (self.temperature or 1.0)  # (B, V) the policy: processed, tempered, untruncated
        policy = tempered.log_softmax(-1).gather(-1, tokens[:, None])[:, 0]
        sampler = warped.log_softmax(-1).gather(-1, tokens[:, None])[:, 0]
        self.record.add(tokens, policy, sampler)


def row_generators(seeds: Sequence[int], device: torch.device | str) -> list[torch.Generator]:
    """One generator per row on ``device``, seeded with the row's seed."""
    return [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]


def _with_row_sampler(kwargs: dict, generators: list[torch.Generator], record: SampledTokens | None = None) -> dict:
    """``generate`` kwargs with HF's sampling replaced by :class:`RowSampler` (unchanged when not sampling)."""
    if not kwargs.get("do_sample"):
        return kwargs
    settings = {name: kwargs.pop(name, None) for name in SAMPLING_ARGS}
    processors = LogitsProcessorList(kwargs.pop("logits_processor", None) or [])
    processors.append(RowSampler(generators, warpers(**settings), settings["temperature"], record))
    return kwargs | {"do_sample": False, "logits_processor": processors}


@contextmanager
def per_row_sampling(model, seeds: Sequence[int], record: SampledTokens | None = None) -> Iterator[None]:
    """For the block, ``model.generate`` (a ``Qwen3TTSForConditionalGeneration``) samples row i from a generator
    seeded with ``seeds[i]``; the talker and the code predictor of a row share that generator. With ``record``, the
    talker's draws (group 0, one per frame) are recorded there; the code predictor's are not (the RL policy is the
    group-0 stream)."""
    talker = model.talker
    generators = row_generators(seeds, talker.device)

    def wrap(record_into: SampledTokens | None):
        def wrapper(generate):
            return lambda *args, **kwargs: generate(*args, **_with_row_sampler(kwargs, generators, record_into))

        return wrapper

    with ExitStack() as stack:
        stack.enter_context(overridden(talker, "generate", wrap(record)))
        stack.enter_context(overridden(talker.code_predictor, "generate", wrap(None)))
        yield
