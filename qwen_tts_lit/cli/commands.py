"""The subcommands: each is a documented request dataclass (its options) and a thin handler that hands the request
to the stage that does the work. Requests live in light modules, so building the parser imports no torch; each
handler imports its stage when it runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qwen_tts_lit.analysis.request import AblateRequest
from qwen_tts_lit.data.prepare.options import PrepareOptions
from qwen_tts_lit.data.segment.request import SegmentRequest
from qwen_tts_lit.errors import Interrupted, RunFailed, UserError
from qwen_tts_lit.evaluation.request import EvaluateRequest
from qwen_tts_lit.export.request import ExportRequest
from qwen_tts_lit.files import shown
from qwen_tts_lit.listening.request import ListenRequest
from qwen_tts_lit.synthesis.request import SynthesizeRequest
from qwen_tts_lit.train.request import EstimateMemoryRequest
from qwen_tts_lit.upstream.request import MakeTinyRequest


def make_tiny(request: MakeTinyRequest) -> None:
    from qwen_tts_lit.upstream.tiny import TinyDirError
    from qwen_tts_lit.upstream.tiny import make_tiny as build

    try:
        print(build(request.dir, request.kind))
    except TinyDirError as error:
        raise UserError(str(error)) from error


def prepare(options: PrepareOptions) -> None:
    from qwen_tts_lit.data.prepare.outputs import REPORT_TXT
    from qwen_tts_lit.data.prepare.pipeline import prepare as run
    from qwen_tts_lit.files import StorageError

    again = "run the same command again to resume (finished clips are reused, the output is the same)"
    try:
        output = run(options)
    except KeyboardInterrupt as error:
        raise Interrupted(f"prepare: interrupted; {again}") from error
    except StorageError as error:
        raise StorageError(f"{error}; then {again}") from error
    print((output / REPORT_TXT).read_text(), end="")
    print(output)


def segment(request: SegmentRequest) -> None:
    from qwen_tts_lit.data.segment.pipeline import segment as run
    from qwen_tts_lit.data.segment.summary import next_steps, summary_text

    summary = run(request)
    print(summary_text(summary), end="")
    print(next_steps(request.output, summary))


def export(request: ExportRequest) -> None:
    from qwen_tts_lit.export.pipeline import export as run

    run(request)


def synthesize(request: SynthesizeRequest) -> None:
    from tqdm import tqdm

    from qwen_tts_lit.synthesis.long_form import synthesize_to_wav

    output, _ = synthesize_to_wav(request, progress=lambda chunks: tqdm(chunks, desc="chunks", unit="chunk"))
    print(output)


def evaluate(request: EvaluateRequest) -> None:
    from qwen_tts_lit.evaluation.publish import result_lines
    from qwen_tts_lit.evaluation.rescore import rescore_run

    best = rescore_run(request)
    if best is None:  # only zero-shot rows so far: no trained cell to choose
        print(f"{request.run}: no epoch has evaluation rows yet, so nothing was chosen; score them with --epochs N")
        return
    print(json.dumps({k: best[k] for k in ("epoch", "lora_scale", "metrics", "reason")}, indent=2))
    for line in [f"evaluate: done; run folder {shown(request.run)}", *result_lines(Path(request.run))]:
        print(line, file=sys.stderr)


def ablate(request: AblateRequest) -> None:
    from qwen_tts_lit.analysis.ablate import ablate as run

    failures = run(
        request.grid, request.root, seeds=request.seeds, dry_run=request.dry_run, status=request.status,
        launcher=request.launcher, jobs=request.jobs, slurm=request.slurm, wait=request.wait,
    )  # fmt: skip
    if failures:
        raise RunFailed(f"{failures} run(s) failed; they are listed in the tables")


def estimate_memory(request: EstimateMemoryRequest) -> None:
    from tqdm import tqdm

    from qwen_tts_lit.cli.fit_settings import settings_problems
    from qwen_tts_lit.cli.lightning import resolved_fit_config
    from qwen_tts_lit.model.memory import phases
    from qwen_tts_lit.train.memory import estimate_fit_config, format_report, training_setup

    for path in request.fit_config:
        if not path.is_file():
            raise UserError(f"--fit_config {path}: file not found")
    config = resolved_fit_config([str(path) for path in request.fit_config])
    if request.batch_size is not None:  # the flag replaces the config's value, so that one is not checked
        config = {**config, "data": {**config["data"], "batch_size": request.batch_size}}
    problems = settings_problems(config, "fit")  # fit's own checks: a config fit refuses is not estimated
    if problems:
        raise UserError("\n".join(problems))
    total = phases(training_setup(config["model"], config["trainer"]))
    with tqdm(total=total, desc="tracing the training step on fake tensors", unit="phase") as bar:
        report = estimate_fit_config(config, request, progress=lambda phase: (bar.set_postfix_str(phase), bar.update()))
    print(format_report(report))
    configs = " ".join(f"--config {path}" for path in request.fit_config)
    print(f"next: python -m qwen_tts_lit fit {configs}  (docs/memory.md explains each line)")


def listen(request: ListenRequest) -> None:
    if request.results or request.key:  # analysing a test's ratings, not building one
        from qwen_tts_lit.listening.results_command import run_results

        if not request.results or not request.key or request.sources_given:
            raise UserError("listen: analysing ratings takes --results '[R1.csv, R2.csv]' and --key KEY.json (and "
                            "--output for the tables), without --run, --runs or --ablation")  # fmt: skip
        run_results(list(request.results), request.key, request.output)
        return
    from qwen_tts_lit.listening.bundle import build_test, summary_lines

    built = build_test(request)
    print("\n".join(summary_lines(built, request.design)))


@dataclass(frozen=True)
class Command:
    """A subcommand: its options (a documented dataclass) and what runs it."""

    request: type
    handler: Callable[[object], None]


COMMANDS: dict[str, Command] = {
    "make-tiny": Command(MakeTinyRequest, make_tiny),
    "segment": Command(SegmentRequest, segment),
    "prepare": Command(PrepareOptions, prepare),
    "export": Command(ExportRequest, export),
    "synthesize": Command(SynthesizeRequest, synthesize),
    "evaluate": Command(EvaluateRequest, evaluate),
    "ablate": Command(AblateRequest, ablate),
    "listen": Command(ListenRequest, listen),
    "estimate-memory": Command(EstimateMemoryRequest, estimate_memory),
}

# Handled by LightningCLI (jsonargparse): configs, --print_config, --help of every model/data/trainer argument.
LIGHTNING_COMMANDS = {
    "fit": "train: python -m qwen_tts_lit fit --config configs/demo.yaml",
    "validate": "run the validation loop: python -m qwen_tts_lit validate --config ... --ckpt_path ...",
}
