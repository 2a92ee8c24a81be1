"""Our training step vs a faithful re-creation of upstream's loop, same model, same data, one run.

    python benchmarks/train_step.py                          # a realistic length mix, real-width model (CPU: ~20 min)
    python benchmarks/train_step.py --mix wide               # clips spread over 1-20 s
    python benchmarks/train_step.py --mix demo --size tiny   # the shipped demo corpus (3-5 s clips), tiny checkpoint

Length mixes (--mix), each as many clips as make 20 minutes of audio (the middle of the seed guide's 10-30 min):
- ljspeech (default): LJSpeech's documented clip lengths (its README: 13,100 clips, 1.11 to 10.10 s, mean
  6.57 s), drawn from a Beta shape on that range with that mean, plus the 1 s of trailing silence prepare appends;
- wide: uniform over 1-20 s (+1 s), the span of real single-speaker sets cut from long recordings;
- demo: the shipped demo corpus as prepared (3-5 s: almost nothing to pad).
Synthetic clips carry random codes and 4 text tokens per second of speech: only lengths matter for speed.

Model (--size): real-1.7b (default) is the released 1.7B width with random weights, with the talker cut to 6 layers
and the code predictor to 1, the released 28 : 5 ratio, so the talker's share of the work (what padding inflates)
against the sub-talker's (per frame, never padded, in both loops) is the real one; tiny is the tiny checkpoint.

"upstream" re-creates finetuning/sft_12hz.py's loop through upstream's own modules (docs/upstream_bugs.md gives its
lines): accelerate's Accelerator with gradient accumulation, batches in random order padded to their longest member
(no length bucketing), the speaker encoder run on the reference mels at every step, one talker forward with the
labels (its Hugging Face loss shifts them again) and every hidden state, then forward_sub_talker_finetune on the
states at the frames. The text projection stays on in both: without it the tiny and 0.6B shapes crash, which is
not a speed. "ours" is QwenTTSModule's step: length-bucketed step plans, x-vector computed once, corrected losses
(qwen_tts_lit/model/step.py); "ours_same_batches" is our step on upstream's very batches (isolates the step from the
bucketing). All use LoRA r16 on the talker, AdamW, the same batch size, accumulation and number of optimizer steps.
All run on one model in one process, their optimizer steps interleaved (ours step 1, ours_same_batches step 1,
upstream step 1, ours step 2, ...), so every variant meets the same machine even when other work shares it; frames/s
is wall-clock, frames per CPU-second (process time) the steadier figure on a shared CPU. On CUDA each variant's peak
memory (max_memory_allocated over its steps) is printed too. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "data" / "demo" / "raw" / "train_raw.jsonl"
REF = REPO / "data" / "demo" / "raw" / "ref.wav"
MIX_MINUTES = 20.0
LJSPEECH = (1.11, 10.10, 6.57)  # min, max, mean clip seconds (LJSpeech 1.1 README)
TRAILING_SILENCE_S = 1.0  # prepare's default --trailing-silence-s
TEXT_TOKENS_PER_SECOND = 4


def clip_seconds(mix: str, seed: int = 0) -> list[float]:
    """Clip lengths (speech only) of a synthetic mix, MIX_MINUTES of audio in total."""
    rng, total, lengths = np.random.default_rng(seed), 0.0, []
    while total < MIX_MINUTES * 60:
        if mix == "ljspeech":
            low, high, mean = LJSPEECH
            share = (mean - low) / (high - low)
            seconds = low + (high - low) * rng.beta(5 * share, 5 * (1 - share))  # concentration 5: a broad hump
        else:
            seconds = rng.uniform(1.0, 20.0)
        lengths.append(float(seconds))
        total += seconds + TRAILING_SILENCE_S
    return lengths


class SyntheticSplit:
    """Laid-out clips of a length mix: random codes and text ids, real layout (what training reads)."""

    def __init__(self, seconds: list[float], special, config) -> None:
        from qwen_tts_lit.data.dataset import Item
        from qwen_tts_lit.model.layout import layout_utterance

        generator = torch.Generator().manual_seed(0)
        groups, text_vocab = config.talker_config.num_code_groups, config.talker_config.text_vocab_size
        self.items = []
        for index, speech in enumerate(seconds):
            frames = math.ceil((speech + TRAILING_SILENCE_S) * 12.5)
            content = torch.randint(10, min(text_vocab, 5000), (math.ceil(speech * TEXT_TOKENS_PER_SECOND),),
                                    generator=generator).tolist()  # fmt: skip
            prompt = [1, 2, 3, *content, 4, 5, 6, 7, 8]
            codes = torch.randint(0, 2048, (frames, groups), generator=generator)
            self.items.append(Item(f"clip{index:04d}", layout_utterance(prompt, codes, special)))

    @property
    def frame_counts(self) -> list[int]:
        return [int(item.sequence.frame_mask.sum()) for item in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]


def build_model(size: str, tiny_dir: Path, device: str, dtype: torch.dtype, layers: int | None = 6):
    """The tiny checkpoint, or the released 1.7B width with random weights, talker ``layers`` layers (None: the
    released 28) and code predictor 1 (None: the released 5)."""
    from qwen_tts_lit.upstream.loading import load_qwen3_tts

    if size == "tiny":
        return load_qwen3_tts(str(tiny_dir), "float32", "sdpa", device).model
    from qwen_tts_lit.upstream.architectures import released_config
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    config = released_config("1.7b", layers=layers, code_predictor_layers=1 if layers else None)
    with torch.device(device):
        return import_qwen_tts().core.models.Qwen3TTSForConditionalGeneration(config).to(dtype)


def reference_mel(model, audio: np.ndarray) -> torch.Tensor:
    """The (1, T, 128) mel upstream's dataset computes for the speaker encoder."""
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    mel_spectrogram = import_qwen_tts().core.models.modeling_qwen3_tts.mel_spectrogram
    mel = mel_spectrogram(torch.from_numpy(audio).unsqueeze(0), n_fft=1024, num_mels=128, sampling_rate=24000,
                          hop_size=256, win_size=1024, fmin=0, fmax=12000)  # fmt: skip
    return mel.transpose(1, 2)


def _batches(split, batch_size: int, accumulate: int, steps: int, bucketed: bool) -> list[list[int]]:
    """One warm-up optimizer step, then ``steps`` timed ones over the SAME clips for every variant (a seeded sample
    of the mix): the variants differ only in how they cut those clips into micro-batches."""
    from qwen_tts_lit.data.sampler import plan_micro_batches

    order = list(range(len(split)))
    random.Random(0).shuffle(order)
    per_step = accumulate * batch_size
    warmup, timed = order[:per_step], order[per_step : per_step * (steps + 1)]
    if len(timed) < steps * per_step:
        raise SystemExit(f"the mix has {len(split)} clips: too few for {steps} steps of {accumulate} x {batch_size}")
    warmup_plan = [warmup[i : i + batch_size] for i in range(0, len(warmup), batch_size)]
    if bucketed:  # ours: sort by length, cut, shuffle the micro-batches (data/sampler.py)
        lengths = split.frame_counts
        plan = plan_micro_batches([lengths[i] for i in timed], batch_size, shuffle=True, seed=0)
        return warmup_plan + [[timed[i] for i in batch] for batch in plan]
    # upstream: DataLoader(shuffle=True) over the rows, each batch padded to its longest member
    return warmup_plan + [timed[i : i + batch_size] for i in range(0, len(timed), batch_size)]


def upstream_loss(model, batch, mel: torch.Tensor) -> torch.Tensor:
    """sft_12hz.py's loss through upstream's own code: talker(inputs[:, :-1], labels=labels[:, 1:]) and
    forward_sub_talker_finetune(codes at the frames, states at codec_mask[:, :-1]), weighted 0.3."""
    from qwen_tts_lit.model.step import SUB_TALKER_WEIGHT, talker_input_embeddings

    talker = model.talker
    with torch.no_grad():  # upstream runs the speaker encoder on the batch's reference mels at every step
        batch.xvectors = model.speaker_encoder(mel.expand(len(batch.utterance_ids), -1, -1)).to(batch.xvectors)
    embeddings = talker_input_embeddings(talker, batch)
    out = talker(inputs_embeds=embeddings[:, :-1], attention_mask=batch.attention_mask[:, :-1],
                 labels=batch.labels[:, 1:], output_hidden_states=True)  # fmt: skip
    hidden = out.hidden_states[0][-1]
    _, sub_loss = talker.forward_sub_talker_finetune(batch.codes[batch.frame_mask], hidden[batch.frame_mask[:, :-1]])
    return out.loss + SUB_TALKER_WEIGHT * sub_loss


VARIANTS = ("ours", "ours_same_batches", "upstream")


@dataclass
class Tally:
    """What one variant did in its timed optimizer steps."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    frames: int = 0
    tokens: int = 0
    slots: int = 0
    peak_gib: float = 0.0
    warmup_seconds: float = 0.0

    @property
    def padding(self) -> float:
        return 1 - self.tokens / max(self.slots, 1)


def run(args: argparse.Namespace, tiny_dir: str, prepared: str, ref_audio: np.ndarray | None = None,
        layers: int | None = 6) -> dict[str, Tally]:  # fmt: skip
    """Every variant on one model in one process, their optimizer steps interleaved (ours step 1, ..., upstream step
    1, ours step 2, ...): each variant meets the same machine, however busy it is meanwhile. ``ref_audio``: the
    24 kHz reference upstream's loop embeds at every step (None: the demo's ref.wav)."""
    from accelerate import Accelerator
    from transformers import AutoTokenizer

    from qwen_tts_lit.data.dataset import Collate, PreparedSplit
    from qwen_tts_lit.model.layout import SpecialIds
    from qwen_tts_lit.model.lora import LoraSpec, cast_adapter_inputs, inject_lora
    from qwen_tts_lit.model.step import combine_losses, training_step_losses

    torch.manual_seed(0)
    device = getattr(args, "device", None) or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = build_model(args.size, Path(tiny_dir), device, dtype, layers)
    peft_model = inject_lora(model, LoraSpec(rank=16, alpha=32, dropout=0.0))
    peft_model.train()
    talker = model.talker
    special = SpecialIds.from_config(model.config)
    if args.mix == "demo":
        split = PreparedSplit(Path(prepared), "train", AutoTokenizer.from_pretrained(tiny_dir), special, None)
    else:
        split = SyntheticSplit(clip_seconds(args.mix), special, model.config)
    if ref_audio is None:
        import soundfile as sf

        ref_audio, _ = sf.read(str(REF), dtype="float32")
    mel = reference_mel(model, ref_audio).to(device, dtype)
    with torch.no_grad():
        xvector = model.speaker_encoder(mel)[0].float().cpu()  # ours: once
    parameters = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-5)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.accumulate, mixed_precision="bf16" if device == "cuda" else "no"
    )
    upstream_model, upstream_optimizer = accelerator.prepare(peft_model, torch.optim.AdamW(parameters, lr=1e-5))
    plans = {name: _batches(split, args.batch_size, args.accumulate, args.steps, name == "ours")
             for name in VARIANTS}  # fmt: skip

    def micro_batch(name: str, ids: list[int], tally: Tally) -> None:
        batch = Collate(xvector)([split[i] for i in ids]).to(device)
        tally.frames += int((batch.labels != -100).sum())
        tally.tokens += int(batch.attention_mask.sum())
        tally.slots += batch.attention_mask.numel()
        if name == "upstream":
            cast_adapter_inputs(peft_model, True)
            with accelerator.accumulate(upstream_model):
                accelerator.backward(upstream_loss(model, batch, mel))
                upstream_optimizer.step()
                upstream_optimizer.zero_grad()
            return
        cast_adapter_inputs(peft_model, device != "cuda")  # as QwenTTSModule under bf16 autocast
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            out = training_step_losses(talker, batch)
        (combine_losses(out.talker, out.sub_talker) / args.accumulate).backward()

    def optimizer_step(name: str, micro_batches: list[list[int]], tally: Tally) -> None:
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        wall, cpu = time.perf_counter(), time.process_time()
        for ids in micro_batches:
            micro_batch(name, ids, tally)
        if name != "upstream":
            optimizer.step()
            optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
            tally.peak_gib = max(tally.peak_gib, torch.cuda.max_memory_allocated() / 2**30)
        tally.seconds += time.perf_counter() - wall
        tally.cpu_seconds += time.process_time() - cpu

    tallies = {name: Tally() for name in VARIANTS}
    for step in range(args.steps + 1):  # step 0: warm-up, reported apart
        for name in VARIANTS:
            micro_batches = plans[name][step * args.accumulate : (step + 1) * args.accumulate]
            if step == 0:
                warmup = Tally()
                optimizer_step(name, micro_batches, warmup)
                tallies[name].warmup_seconds = warmup.seconds
            else:
                optimizer_step(name, micro_batches, tallies[name])
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mix", choices=["ljspeech", "wide", "demo"], default="ljspeech")
    parser.add_argument("--size", choices=["tiny", "real-1.7b"], default="real-1.7b")
    parser.add_argument("--steps", type=int, default=4, help="timed optimizer steps (after one warm-up step)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--accumulate", type=int, default=4)
    args = parser.parse_args()

    from qwen_tts_lit.cache import cache_root
    from qwen_tts_lit.data.prepare import PrepareOptions, prepare
    from qwen_tts_lit.upstream.tiny import default_tiny_dir, make_tiny

    tiny_dir = make_tiny(default_tiny_dir())
    prepared = cache_root() / "prepared" / "benchmark-demo"
    if args.mix == "demo" and not (prepared / "train.jsonl").is_file():
        prepare(PrepareOptions(input=RAW, output=prepared, model=str(tiny_dir)))
    results = run(args, str(tiny_dir), str(prepared))

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    if args.mix != "demo":
        lengths = np.array(clip_seconds(args.mix)) + TRAILING_SILENCE_S
        print(f"mix {args.mix}: {len(lengths)} clips, {lengths.sum() / 60:.1f} min, {lengths.min():.1f}-"
              f"{lengths.max():.1f} s (median {np.median(lengths):.1f} s), trailing silence included")  # fmt: skip
    print(f"{args.size} on {device}: {args.steps} optimizer steps of batch {args.batch_size} x accumulate "
          f"{args.accumulate} per variant, interleaved, LoRA r16")  # fmt: skip
    peak_column = f" {'peak GPU GiB':>13}" if cuda else ""
    print(f"  {'variant':<18} {'frames/s':>9} {'frames/CPU-s':>13} {'seconds':>8} {'padding':>8} {'warm-up s':>10}"
          f"{peak_column}")  # fmt: skip
    for name, tally in results.items():
        peak = f" {tally.peak_gib:13.2f}" if cuda else ""
        print(f"  {name:<18} {tally.frames / tally.seconds:9.1f} {tally.frames / tally.cpu_seconds:13.1f} "
              f"{tally.seconds:8.1f} {tally.padding:8.1%} {tally.warmup_seconds:10.1f}{peak}")  # fmt: skip
    upstream = results["upstream"]
    for name in ("ours_same_batches", "ours"):
        ours = results[name]
        memory = f", {ours.peak_gib / upstream.peak_gib:.2f}x peak memory" if cuda else ""
        print(f"  {name} / upstream: {ours.frames / ours.seconds / (upstream.frames / upstream.seconds):.2f}x "
              f"frames/s, {ours.frames / ours.cpu_seconds / (upstream.frames / upstream.cpu_seconds):.2f}x frames "
              f"per CPU-second{memory}")  # fmt: skip


if __name__ == "__main__":
    main()
