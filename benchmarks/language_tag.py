"""Does ``language_tag: mixed`` cost anything on the untagged path (the call with the language omitted)?

    python benchmarks/language_tag.py                 # tiny checkpoint, demo corpus, CPU, about 2 minutes
    python benchmarks/language_tag.py --epochs 12 --seeds 0 1 2 3

Trains the same LoRA (r8, AdamW, batch 4: the demo recipe; --lr 1e-3 by default) from the same start with
language_tag off, mixed (probability 0.5) and on, for each seed, with QwenTTSModule's step (training_step_losses,
per-epoch tag draws through PreparedSplit exactly as the DataModule does), then measures the teacher-forced
validation loss of the held-out split laid out both ways: untagged (what ``generate_custom_voice(text, speaker)``
feeds) and tagged (``language="English"``). Prints figures; asserts nothing. The spread between seeds of one mode
is the noise band against which a difference between modes is judged.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "data" / "demo" / "raw" / "train_raw.jsonl"
MODES = ("off", "mixed", "on")


def _val_loss(talker, split, collate) -> float:
    from qwen_tts_lit.model.step import combine_losses, training_step_losses

    talker.eval()
    with torch.no_grad():
        out = training_step_losses(talker, collate([split[i] for i in range(len(split))]))
    talker.train()
    return float(combine_losses(out.talker, out.sub_talker))


def train_and_measure(mode: str, seed: int, epochs: int, lr: float, tiny_dir: Path, prepared: Path) -> dict[str, float]:
    from qwen_tts_lit.data.dataset import Collate, PreparedSplit, load_xvector
    from qwen_tts_lit.data.sampler import StepPlanBatchSampler
    from qwen_tts_lit.model.layout import LanguageTagPlan, SpecialIds
    from qwen_tts_lit.model.lora import LoraSpec, inject_lora
    from qwen_tts_lit.model.step import combine_losses, training_step_losses
    from qwen_tts_lit.upstream.loading import load_qwen3_tts

    tts = load_qwen3_tts(str(tiny_dir), "float32", "sdpa", "cpu")
    config = tts.model.config
    torch.manual_seed(seed)
    peft_model = inject_lora(tts.model, LoraSpec(rank=8, alpha=16, dropout=0.0))
    peft_model.train()
    talker = tts.model.talker
    special, tokenizer = SpecialIds.from_config(config), tts.processor.tokenizer
    languages = dict(config.talker_config.codec_language_id)

    def split(name: str, plan: LanguageTagPlan, per_epoch: bool) -> PreparedSplit:
        return PreparedSplit(prepared, name, tokenizer, special, languages, plan, per_epoch)

    train = split("train", LanguageTagPlan(mode, 0.5, seed), True)
    collate = Collate(load_xvector(prepared))
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    sampler = StepPlanBatchSampler(train.frame_counts, batch_size=4, seed=seed)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for refs in sampler:
            batch = collate([train[ref] for ref in refs])
            out = training_step_losses(talker, batch)
            combine_losses(out.talker, out.sub_talker).backward()
            optimizer.step()
            optimizer.zero_grad()
    return {
        prefix: _val_loss(talker, split("val", LanguageTagPlan(tag), False), collate)
        for prefix, tag in (("untagged", "off"), ("tagged", "on"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (the demo's: 1e-3)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args()
    from qwen_tts_lit.cache import cache_root
    from qwen_tts_lit.data.prepare import PrepareOptions, prepare
    from qwen_tts_lit.upstream.tiny import default_tiny_dir, make_tiny

    tiny_dir = make_tiny(default_tiny_dir())
    prepared = cache_root() / "prepared" / "benchmark-demo"
    if not (prepared / "train.jsonl").is_file():
        prepare(PrepareOptions(input=RAW, output=prepared, model=str(tiny_dir)))
    torch.set_num_threads(1)
    results = {
        mode: [train_and_measure(mode, seed, args.epochs, args.lr, tiny_dir, prepared) for seed in args.seeds]
        for mode in args.modes
    }
    print(f"tiny checkpoint, demo corpus, LoRA r8, lr {args.lr:g}, {args.epochs} epochs, seeds {args.seeds}: val loss "
          "(talker CE + 0.3 sub-talker CE), mean [min, max] over seeds")  # fmt: skip
    print(f"  {'language_tag':<13} {'untagged layout':>28} {'tagged layout':>28}")
    for mode, runs in results.items():
        cells = []
        for prefix in ("untagged", "tagged"):
            values = [r[prefix] for r in runs]
            cells.append(f"{statistics.mean(values):.4f} [{min(values):.4f}, {max(values):.4f}]")
        print(f"  {mode:<13} {cells[0]:>28} {cells[1]:>28}")
    for prefix in ("untagged", "tagged") if {"mixed", "off"} <= set(results) else ():
        diffs = [m[prefix] - o[prefix] for m, o in zip(results["mixed"], results["off"], strict=True)]
        print(f"  mixed - off on the {prefix} layout, per seed: {', '.join(f'{d:+.4f}' for d in diffs)}")


if __name__ == "__main__":
    main()
