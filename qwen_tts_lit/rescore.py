"""``python -m qwen_tts_lit evaluate``: re-score a finished run's saved checkpoints (torch only, no Lightning).

Typical use: training evaluated with the small offline ASR; afterwards, score every epoch again with Whisper
large-v3 on a GPU (or at other scales), and let the rule choose again. Rows of the re-scored (epoch, scale) cells
are replaced, other rows kept; ``best.json`` and ``report.html`` are rebuilt from all rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.evaluation import (
    Judges,
    JudgeSettings,
    evaluate_epoch,
    heldout_from_rows,
    measure_real,
    publish,
    read_heldout,
    read_rows,
    scales_for,
)
from qwen_tts_lit.metrics.selection import SelectionRule
from qwen_tts_lit.model.run_checkpoint import (
    check_lora_scale,
    check_run_dir,
    checkpoint_path,
    load_epoch,
    load_run,
    read_config,
    saved_epochs,
)
from qwen_tts_lit.synthesis import Synthesizer, Voice

DEFAULT_SCALES = (0.2, 0.3, 0.35, 0.5, 1.0)


def eval_suite_args(config: dict) -> dict:
    """The EvalSuite's init_args in a run's saved config ({} when it did not run one)."""
    callbacks = (config.get("trainer") or {}).get("callbacks") or []
    for callback in callbacks if isinstance(callbacks, list) else []:
        if isinstance(callback, dict) and str(callback.get("class_path", "")).endswith("EvalSuite"):
            return dict(callback.get("init_args") or {})
    return {}


def rule_from(args: dict, overrides: dict) -> SelectionRule:
    """The run's rule (from its config), with non-None ``overrides`` applied."""
    known = {f.name for f in fields(SelectionRule)}
    rule = SelectionRule(**{k: v for k, v in (args.get("rule") or {}).items() if k in known})
    return replace(rule, **{k: v for k, v in overrides.items() if v is not None})


def rescore_run(
    run_dir: str | Path,
    epochs: Sequence[int] | None = None,
    scales: Sequence[float] | None = None,
    judges: JudgeSettings | None = None,
    rule_overrides: dict | None = None,
    heldout: str | None = None,
    num_utterances: int | None = None,
    seed: int | None = None,
    device: str = "cpu",
) -> dict:
    """Synthesize and score ``epochs`` x ``scales`` of a run; returns the new best.json. Defaults: every saved epoch,
    and the scales, sentences, seed and rule the run's EvalSuite used."""
    run = check_run_dir(run_dir)
    suite = eval_suite_args(read_config(run))
    old_rows = read_rows(run)
    if heldout is not None:
        items = read_heldout(heldout, num_utterances)
    elif old_rows:
        items = heldout_from_rows(old_rows, run)[: num_utterances or None]
    else:
        raise UserError(f"{run}: no eval/rows.jsonl to take the held-out sentences from; give --heldout FILE.jsonl")
    epochs = list(epochs) if epochs else list(saved_epochs(run))
    for epoch in epochs:
        checkpoint_path(run, epoch)  # every epoch checked before any work
    scales = [check_lora_scale(s, "--scales") for s in (scales or suite.get("scales") or DEFAULT_SCALES)]
    seed = seed if seed is not None else int(suite.get("seed", 1234))
    rule = rule_from(suite, rule_overrides or {})

    judge = Judges(judges or JudgeSettings())
    real = measure_real(items, judge, run)
    new_rows: list[dict] = []
    loaded = load_run(run, epochs[0], device=device)
    if scales_for(loaded.tts.model, scales) != scales:
        print(f"{run}: fully fine-tuned (no adapters): scoring scale 1.0 only")
    for epoch in epochs:
        if epoch != loaded.epoch:
            load_epoch(loaded, epoch)
        synthesizer = Synthesizer(loaded.tts, Voice(xvector=loaded.xvector))

        def progress(scale: float, epoch: int = epoch) -> None:
            print(f"epoch {epoch}, lora_scale {scale:g}: {len(items)} sentences", flush=True)

        new_rows += evaluate_epoch(synthesizer, judge, real, run, epoch, scales, seed, suite.get("max_new_tokens"),
                                   loaded.xvector, progress)  # fmt: skip
    return publish(run, new_rows, rule)
