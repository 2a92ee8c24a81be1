"""``python -m qwen_tts_lit evaluate``: re-score a finished run's saved checkpoints (torch only, no Lightning).

Typical use: training evaluated with the small offline ASR; afterwards, score every epoch again with Whisper
large-v3 on a GPU (or at other scales), and let the rule choose again. The settings are the run's own (its saved
config's ``EvalSuite``), changed only where the request says so. Rows of the re-scored (epoch, scale) cells are
replaced, other rows kept; the chosen cell and the report are rebuilt from all rows.
"""

from __future__ import annotations

from dataclasses import replace

from qwen_tts_lit.data.dataset import prepared_dir_of, reference_clip
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.evaluation.heldout import heldout_from_rows, measure_real, read_heldout
from qwen_tts_lit.evaluation.instruct_probe import measure_presets, preset_speakers
from qwen_tts_lit.evaluation.judges import Judges
from qwen_tts_lit.evaluation.publish import publish, record_presets
from qwen_tts_lit.evaluation.request import EvaluateRequest
from qwen_tts_lit.evaluation.scoring import check_prefixes, evaluate_baselines, evaluate_epoch
from qwen_tts_lit.evaluation.settings import EvalSettings, asr_problem
from qwen_tts_lit.model.layout import trained_prefixes
from qwen_tts_lit.model.lora import evaluable_scales, has_lora
from qwen_tts_lit.runs.baselines import DEFAULT_BASELINES, VOICE_CLONES
from qwen_tts_lit.runs.records import PRESETS_KEPT
from qwen_tts_lit.runs.run import Run
from qwen_tts_lit.runs.weights import load_epoch, load_run
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice
from qwen_tts_lit.upstream.loading import resolve_device


def run_settings(request: EvaluateRequest, run: Run) -> EvalSettings:
    """The run's EvalSuite settings (defaults where the run had none) with the request's changes applied."""
    saved = EvalSettings.from_args(run.eval_suite_args())
    return replace(
        saved.with_overrides(
            scales=request.scales, seed=request.seed, batch_size=request.batch_size, decoding=request.decoding
        ),
        judges=replace(saved.judges, **request.judge_overrides()),
        rule=replace(saved.rule, **request.rule_overrides()),
    )


def rescore_run(request: EvaluateRequest) -> dict:
    """Synthesize and score the requested epochs x scales of a run; returns the new chosen cell."""
    run = Run.open(request.run)
    settings = run_settings(request, run)
    if request.heldout is not None:
        items = read_heldout(request.heldout, request.num_utterances)
    elif run.rows:
        items = heldout_from_rows(run.rows, run.path)[: request.num_utterances or None]
    else:
        raise UserError(
            f"{run.path}: has no evaluation rows to take the held-out sentences from; give --heldout FILE.jsonl"
        )
    epochs = request.epochs_to_score(list(run.saved_epochs))
    for epoch in epochs:
        run.checkpoint(epoch)  # every epoch checked before any work
    languages = {item.language for item in items}
    problem = asr_problem(
        settings.judges, languages, str(request.heldout or run.path), ("--judges.asr_model", "--judges.asr false")
    )
    if problem:
        raise UserError(problem)
    prefixes = trained_prefixes(run.language_tag)
    check_prefixes(items, prefixes, str(request.heldout or run.path))

    judges = Judges(replace(settings.judges, asr_device=resolve_device(settings.judges.asr_device)))
    real = measure_real(items, judges, run.path)
    new_rows: list[dict] = []
    loaded = load_run(run, (epochs or list(run.saved_epochs))[0], device=resolve_device(request.device))
    scales = evaluable_scales(loaded.tts.model, settings.scales)
    if list(scales) != list(settings.scales):
        print(f"{run.path}: fully fine-tuned (no adapters): scoring scale {scales[0]:g} only")
    if request.baselines:
        new_rows += rescore_baselines(loaded, run, settings, judges, real, prefixes)
    for epoch in epochs:
        if epoch != loaded.epoch:
            load_epoch(loaded, epoch)
        voices = loaded.voices or {None: loaded.xvector}
        synthesizer = Synthesizer(loaded.tts, Voice(xvector=next(iter(voices.values()))), decoding=settings.decoding)
        new_rows += evaluate_epoch(synthesizer, judges, real, run.path, epoch, scales, settings.seed,
                                   settings.max_new_tokens, voices, settings.batch_size,
                                   show_progress=True, prefixes=prefixes)  # fmt: skip
        print(f"epoch {epoch}: {len(scales)} scales x {len(items)} sentences scored", flush=True)
    best = publish(run.path, new_rows, settings.rule, old_rows=run.rows)
    return rescore_presets(loaded, best, items, settings, judges) or best


def rescore_presets(loaded, best: dict | None, items, settings: EvalSettings, judges: Judges) -> dict | None:
    """Presets kept for the chosen cell when it has no record (the re-score chose another cell, or the run is older
    than the measurement) and the base has presets; the new chosen cell, or None when nothing was measured."""
    if best is None or PRESETS_KEPT in best or not settings.presets_kept or not has_lora(loaded.tts.model):
        return None
    if not preset_speakers(loaded.tts) or int(best["epoch"]) not in loaded.run.saved_epochs:
        return None
    if int(best["epoch"]) != loaded.epoch:
        load_epoch(loaded, int(best["epoch"]))
    record = measure_presets(loaded.tts, judges.speaker, list(items[: settings.presets_kept]), epoch=int(best["epoch"]),
                             lora_scale=float(best["lora_scale"]), seed=settings.seed,
                             max_new_tokens=settings.max_new_tokens, batch_size=settings.batch_size,
                             decoding=settings.decoding)  # fmt: skip
    print(f"presets kept at the chosen cell: {len(record['similarity'])} presets measured", flush=True)
    return record_presets(loaded.run_dir, record)


def rescore_baselines(loaded, run: Run, settings: EvalSettings, judges: Judges, real, prefixes) -> list[dict]:
    """The zero-shot baseline rows of a finished run: its adapters at scale 0 (the base model) with the x-vector,
    and the voice clones from the first clip of its prepared dataset when that can still be found."""
    if not has_lora(loaded.tts.model):
        raise UserError(f"--baselines: {run.path} is fully fine-tuned; its base weights are not part of the run")
    prepared = prepared_dir_of(run.data, run.model_source)
    if prepared is None and VOICE_CLONES & set(settings.baselines):
        print(f"{run.path}: its prepared dataset is not here: no voice-clone baseline", flush=True)
    reference = reference_clip(prepared) if prepared is not None else None
    voices = loaded.voices or {None: loaded.xvector}
    rows = evaluate_baselines(loaded.tts, voices, reference, judges, real, run.path, settings.seed,
                              settings.max_new_tokens,
                              settings.batch_size, True, prefixes,
                              settings.baselines or DEFAULT_BASELINES, settings.decoding)  # fmt: skip
    print(f"zero-shot baselines: {', '.join(sorted({r['baseline'] for r in rows}))} scored", flush=True)
    return rows
