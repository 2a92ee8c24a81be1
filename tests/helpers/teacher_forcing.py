"""The standard every consistency proof meets: what the model is fed and what it outputs, not only its argmax.

On the tiny random model argmax is a weak witness (a wrong layout still reproduces most greedy codes: the model
repeats itself), so a proof compares, between the official ``generate`` call and our teacher-forced step:

- the talker's input embeddings at every position ``generate`` feeds (the prefill and each frame's step input),
- the sub-talker's input embeddings of every frame (the talker state, then the frame's groups 0..14),
- the talker logits each group-0 target is scored with against the logits ``generate`` picked that code from,
- the sub-talker logits each group 1..15 target is scored with against those ``generate`` picked it from,
- the codes (the argmax of those logits) as before.

Both sides are read with the same forward hooks on the model's own modules (``talker.model``, ``talker.codec_head``,
``code_predictor.model``, ``code_predictor.lm_head[i]``), so nothing is recomputed by the test. A right layout agrees
to float rounding (``SAME`` = 1e-6; measured 1e-7 and below); every proof also runs a control (a wrong layout, tag,
speaker or upstream bug) that must differ by at least ``DIFFERENT`` = 1e-2. docs/correctness.md lists the proofs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from qwen_tts_lit.model.layout import TalkerBatch
from qwen_tts_lit.model.step import StepFixes, training_step_losses

SAME = 1e-6  # max abs difference a right layout stays within (float32 rounding of the same sums and matmuls)
DIFFERENT = 1e-2  # the least max abs difference a control (a wrong layout/speaker/tag/step) must show
CORRECT = StepFixes()  # every upstream bug fixed: the step the proofs hold to generate


@dataclass
class Trace:
    """What one utterance fed the model and got out of it, position by position."""

    talker_inputs: torch.Tensor  # (T, D) every embedding the talker was fed, in order
    talker_logits: torch.Tensor  # (T, V) the talker's logits at each of those positions
    target_logits: torch.Tensor  # (F, V) the talker logits that frame k's group 0 is drawn from / scored with
    sub_inputs: torch.Tensor  # (F, G, d) the sub-talker's inputs per frame, after small_to_mtp_projection
    sub_logits: torch.Tensor  # (F, G-1, V_sub) the logits group i+1 is drawn from / scored with
    codes: torch.Tensor  # (F, G) the frames


@dataclass
class Agreement:
    """How far a teacher-forced trace is from the ``generate`` trace of the same utterance (max abs differences)."""

    talker_embeddings: float
    talker_logits: float
    sub_talker_embeddings: float
    sub_talker_logits: float
    group0_matches: int  # frames whose group 0 the step's logits argmax (under generate's suppress mask) reproduces
    groups_matches: int  # of the frames' groups 1..15
    frames: int
    lengths: tuple[int, int] = field(default=(0, 0))  # (generate's fed positions, ours): a wrong prefix changes them

    @property
    def distance(self) -> float:
        """The largest difference of what the model sees or outputs (inf when the sequences differ in length)."""
        if self.lengths[0] != self.lengths[1]:
            return float("inf")
        return max(self.talker_embeddings, self.talker_logits, self.sub_talker_embeddings, self.sub_talker_logits)

    def summary(self) -> str:
        return (
            f"embeddings {self.talker_embeddings:.1e} (sub-talker {self.sub_talker_embeddings:.1e}), "
            f"logits {self.talker_logits:.1e} (sub-talker {self.sub_talker_logits:.1e}), "
            f"group 0 {self.group0_matches}/{self.frames}, groups 1-15 {self.groups_matches}/{self.frames * 15}, "
            f"lengths {self.lengths[0]} vs {self.lengths[1]}"
        )


def combined(agreements: list[Agreement]) -> Agreement:
    """Several utterances as one figure: the largest differences, the matches summed."""
    return Agreement(
        talker_embeddings=max(a.talker_embeddings for a in agreements),
        talker_logits=max(a.talker_logits for a in agreements),
        sub_talker_embeddings=max(a.sub_talker_embeddings for a in agreements),
        sub_talker_logits=max(a.sub_talker_logits for a in agreements),
        group0_matches=sum(a.group0_matches for a in agreements),
        groups_matches=sum(a.groups_matches for a in agreements),
        frames=sum(a.frames for a in agreements),
        lengths=(sum(a.lengths[0] for a in agreements), sum(a.lengths[1] for a in agreements)),
    )


def _show(kind: str, what: str, total: Agreement) -> None:
    if os.environ.get("PROOF_FIGURES"):  # `PROOF_FIGURES=1 pytest -s ...` prints every proof's figures
        print(f"\n[{kind}] {what}: {total.summary()}")


def assert_same(agreements: list[Agreement], what: str = "") -> Agreement:
    """The proof: every embedding and logit within SAME, every code reproduced."""
    total = combined(agreements)
    _show("proof", what, total)
    assert total.distance <= SAME, f"{what}: {total.summary()}"
    assert total.group0_matches == total.frames and total.groups_matches == total.frames * 15, total.summary()
    return total


def assert_different(agreements: list[Agreement], what: str = "") -> Agreement:
    """The control: what the model sees or outputs differs by DIFFERENT or more."""
    total = combined(agreements)
    _show("control", what, total)
    assert total.distance >= DIFFERENT, f"{what} passes for the right one: {total.summary()}"
    return total


# ---------------------------------------------------------------- recording


@dataclass
class _Calls:
    talker_inputs: list[torch.Tensor] = field(default_factory=list)
    talker_logits: list[torch.Tensor] = field(default_factory=list)
    sub_inputs: list[torch.Tensor] = field(default_factory=list)
    sub_logits: dict[int, list[torch.Tensor]] = field(default_factory=dict)


@contextmanager
def _recording(talker) -> Iterator[_Calls]:
    calls = _Calls()
    heads = talker.code_predictor.lm_head

    def inputs_into(store: list[torch.Tensor]):
        return lambda module, args, kwargs: store.append(kwargs["inputs_embeds"].detach().clone())

    def logits_into(store: list[torch.Tensor]):
        return lambda module, args, output: store.append(output.detach().clone())

    handles = [
        talker.model.register_forward_pre_hook(inputs_into(calls.talker_inputs), with_kwargs=True),
        talker.codec_head.register_forward_hook(logits_into(calls.talker_logits)),
        talker.code_predictor.model.register_forward_pre_hook(inputs_into(calls.sub_inputs), with_kwargs=True),
    ]
    for i, head in enumerate(heads):
        handles.append(head.register_forward_hook(logits_into(calls.sub_logits.setdefault(i, []))))
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def trace_generate(talker, call: Callable[[], torch.Tensor]) -> Trace:
    """Run ``call`` (one utterance through an official ``generate`` path, returning its (F, G) codes) and read what
    the talker and sub-talker were fed and output. Greedy, batch 1: the prefill, then one step per frame; step k feeds
    frame k's embedding sum and runs the sub-talker that completes frame k (a prefill of 2, then 14 steps)."""
    with _recording(talker) as calls, torch.no_grad():
        codes = call()
    frames, groups = codes.shape
    assert all(t.shape[0] == 1 for t in calls.talker_inputs), "trace_generate reads a batch of one"
    inputs = torch.cat([t[0] for t in calls.talker_inputs])  # (T, D)
    logits = torch.cat([t[0] for t in calls.talker_logits])  # (T, V)
    prefill = calls.talker_inputs[0].shape[1]
    per_frame = groups - 1  # sub-talker model calls per frame: the 2-position prefill, then groups - 2 steps
    assert len(calls.sub_inputs) == frames * per_frame, f"{len(calls.sub_inputs)} sub-talker calls for {frames} frames"
    sub_inputs = torch.cat([t[0] for t in calls.sub_inputs]).reshape(frames, groups, -1)  # (F, G, d)
    sub_logits = torch.stack([torch.cat([t[0, -1:] for t in calls.sub_logits[i]]) for i in range(groups - 1)], 1)
    return Trace(
        talker_inputs=inputs,
        talker_logits=logits,
        target_logits=logits[prefill - 1 : prefill - 1 + frames],  # the prefill's last state draws frame 0
        sub_inputs=sub_inputs,
        sub_logits=sub_logits,
        codes=codes,
    )


def trace_step(talker, batch: TalkerBatch, fixes: StepFixes = CORRECT) -> list[Trace]:
    """Run our teacher-forced step on ``batch`` and read, per utterance, what the same modules were fed and output.
    ``target_logits`` and ``sub_logits`` are the rows the losses score each target with (so a wrong shift shows)."""
    with _recording(talker) as calls, torch.no_grad():
        out = training_step_losses(talker, batch, fixes)
    (inputs,), (logits,), (sub_inputs,) = calls.talker_inputs, calls.talker_logits, calls.sub_inputs
    talker_shift = 1 if fixes.talker_shift else 2
    frame_counts = batch.frame_mask.sum(1).tolist()
    sub_rows = torch.split(torch.arange(sub_inputs.shape[0]), frame_counts)
    traces = []
    for b, rows in enumerate(sub_rows):
        positions = batch.frame_mask[b].nonzero().flatten()  # p_k
        fed = int(positions[-1]) + 1  # generate never feeds the codec_eos position
        sub = out.sub_talker_logits[rows]  # (F, G-1, V): logits[:, i] scored against group i+1
        if not fixes.sub_talker_shift:  # upstream scores logits[:, i] against group i+2: line them up with that
            sub = torch.cat([torch.full_like(sub[:, :1], float("nan")), sub[:, :-1]], 1)
        traces.append(
            Trace(
                talker_inputs=inputs[b, :fed],
                talker_logits=logits[b, :fed],
                target_logits=logits[b, positions - talker_shift],
                sub_inputs=sub_inputs[rows],
                sub_logits=sub,
                codes=batch.codes[b, positions],
            )
        )
    return traces


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    n = min(a.shape[0], b.shape[0])  # positions both sides have (a wrong prefix shortens or lengthens one)
    diff = (a[:n] - b[:n]).abs()
    diff = diff[~diff.isnan()]  # positions a wrong shift leaves without a prediction
    return float(diff.max()) if diff.numel() else 0.0


def _suppressed(logits: torch.Tensor, config) -> torch.Tensor:
    """Logits under generate's suppress mask: the top 1024 codec ids are banned, except codec_eos."""
    talker = config.talker_config
    banned = torch.zeros(logits.shape[-1], dtype=torch.bool)
    banned[talker.vocab_size - 1024 :] = True
    banned[talker.codec_eos_token_id] = False
    return logits.masked_fill(banned, float("-inf"))


def compare(generated: Trace, ours: Trace, config) -> Agreement:
    """Distances of our trace from generate's, and how many of generate's codes our logits' argmax reproduces."""
    frames = min(generated.codes.shape[0], ours.codes.shape[0])
    group0 = _suppressed(ours.target_logits[:frames], config).argmax(-1) == generated.codes[:frames, 0]
    sub = ours.sub_logits[:frames].nan_to_num(float("-inf")).argmax(-1) == generated.codes[:frames, 1:]
    return Agreement(
        talker_embeddings=_max_diff(generated.talker_inputs, ours.talker_inputs),
        talker_logits=max(
            _max_diff(generated.talker_logits, ours.talker_logits),
            _max_diff(generated.target_logits, ours.target_logits),
        ),
        sub_talker_embeddings=_max_diff(generated.sub_inputs, ours.sub_inputs),
        sub_talker_logits=_max_diff(generated.sub_logits, ours.sub_logits),
        group0_matches=int(group0.sum()),
        groups_matches=int(sub.sum()),
        frames=frames,
        lengths=(generated.talker_inputs.shape[0], ours.talker_inputs.shape[0]),
    )


def agreements(talker, generated: list[Trace], batch: TalkerBatch, config, fixes: StepFixes = CORRECT):
    """One :class:`Agreement` per utterance of ``batch`` (in order) against its ``generate`` trace."""
    return [compare(g, o, config) for g, o in zip(generated, trace_step(talker, batch, fixes), strict=True)]


def far_apart_xvectors(count: int, dim: int, seed: int = 0) -> torch.Tensor:
    """``count`` orthogonal x-vectors (cosine 0) with the norm of a standard normal vector of ``dim``: a wrong
    speaker in the slot then changes what the model sees by the whole vector. (The espeak-ng voices give x-vectors
    of cosine 0.98 on the tiny encoder: a swapped speaker there is nearly the right one.)"""
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(dim, count, generator=generator))  # (dim, count), orthonormal columns
    return basis.T.contiguous() * dim**0.5  # (count, dim)


def cosines(xvectors: torch.Tensor) -> torch.Tensor:
    """Pairwise cosine similarities of the rows, the diagonal left out: (n * (n - 1),)."""
    unit = torch.nn.functional.normalize(xvectors.float(), dim=-1)
    similarity = unit @ unit.T
    return similarity[~torch.eye(len(unit), dtype=torch.bool)]


def codes_of(tts, call: Callable[[], object]) -> Callable[[], torch.Tensor]:
    """``call`` (an official ``Qwen3TTSModel.generate_*`` of one utterance, exactly as users make it) as a function
    returning the codes that its ``generate`` handed to the decoder: what :func:`trace_generate` needs."""

    def run() -> torch.Tensor:
        seen, real, own = [], tts.model.generate, vars(tts.model).get("generate")

        def spy(*args, **kwargs):
            codes, hidden = real(*args, **kwargs)
            seen.append(codes[0])
            return codes, hidden

        tts.model.generate = spy
        try:
            call()
        finally:
            if own is None:
                del tts.model.generate  # the class's method shows again
            else:
                tts.model.generate = own
        assert len(seen) == 1, f"{len(seen)} generate calls for one utterance"
        return seen[0]

    return run
