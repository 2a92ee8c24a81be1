"""``python -m qwen_tts_lit SUBCOMMAND``: one entry point, one small function per subcommand.

Exit codes: 0 success, 2 bad input or config (the message names the file, line and field), 1 internal error.
Heavy imports (torch, qwen_tts, lightning) happen inside the subcommands so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from qwen_tts_lit.errors import UserError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


def _make_tiny(args: argparse.Namespace) -> None:
    from qwen_tts_lit.tiny import TinyDirError, make_tiny

    try:
        path = make_tiny(args.dir)
    except TinyDirError as error:
        raise UserError(str(error)) from error
    print(path)


def _add_make_tiny(sub: argparse._SubParsersAction) -> Callable[[argparse.Namespace], None]:
    parser = sub.add_parser(
        "make-tiny",
        help="build the tiny random Qwen3-TTS checkpoint (official layout) used by the demo and the tests",
        description="Write a complete tiny Qwen3-TTS checkpoint (random weights, fixed seed) into DIR. "
        "Re-running on a finished DIR is a no-op; an interrupted build leaves nothing behind.",
    )
    parser.add_argument("dir", help="target directory (created; must be empty or a finished tiny build)")
    return _make_tiny


def _prepare(args: argparse.Namespace) -> None:
    from qwen_tts_lit.data.options import from_namespace
    from qwen_tts_lit.data.prepare import prepare

    output = prepare(from_namespace(args))
    print((output / "report.txt").read_text(), end="")
    print(output)


def _add_prepare(sub: argparse._SubParsersAction) -> Callable[[argparse.Namespace], None]:
    from qwen_tts_lit.data.options import add_arguments

    parser = sub.add_parser(
        "prepare",
        help="check, clean and codec-encode raw clips + transcripts into a training dataset",
        description="Check every row first and report all problems at once (exit 2, nothing written); then write "
        "cleaned 24 kHz audio, 12 Hz codec codes (cached: a re-run or an interrupted run resumes), the speaker "
        "x-vector, train/val manifests and a report into --output.",
    )
    add_arguments(parser)
    return _prepare


def _device(name: str) -> str:
    from qwen_tts_lit.model.load import resolve_device

    return resolve_device(name)


def _export(args: argparse.Namespace) -> None:
    from pathlib import Path

    from qwen_tts_lit.export import ExportRequest, export

    export(
        ExportRequest(
            run=Path(args.run),
            output=Path(args.output),
            speaker_name=args.speaker_name,
            format=args.format,
            epoch=args.epoch,
            lora_scale=args.lora_scale,
            keep_speaker_encoder=args.keep_speaker_encoder,
            force=args.force,
            base_model=args.base_model,
            device=_device(args.device),
        )
    )


def _add_export(sub: argparse._SubParsersAction) -> Callable[[argparse.Namespace], None]:
    parser = sub.add_parser(
        "export",
        help="export a run's chosen epoch x lora_scale as an official custom_voice checkpoint or a PEFT adapter",
        description="Defaults: the epoch and lora_scale in RUN/best.json. Without best.json give --epoch (the scale "
        "then defaults to 1.0, as trained). Written into a temporary folder and renamed into OUT at the end.",
    )
    parser.add_argument("--run", required=True, help="run folder (runs/NAME/version_N)")
    parser.add_argument("--output", required=True, help="export folder (must be absent or empty, or use --force)")
    parser.add_argument("--speaker-name", required=True, help="speaker name (lower-case; the custom_voice speaker id)")
    parser.add_argument(
        "--format",
        default="custom_voice",
        choices=["custom_voice", "adapter"],
        help="custom_voice (default): complete official checkpoint, LoRA merged; adapter: PEFT folder + x-vector",
    )
    parser.add_argument("--epoch", type=int, help="epoch to export (default: best.json)")
    parser.add_argument("--lora-scale", type=float, help="adapter strength in (0, 2] (default: best.json, else 1.0)")
    parser.add_argument(
        "--keep-speaker-encoder", action="store_true", help="custom_voice: keep speaker_encoder.* so it can be re-tuned"
    )
    parser.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    parser.add_argument("--base-model", help="base checkpoint, when the run's own source is not here")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    return _export


def _synthesize(args: argparse.Namespace) -> None:
    from pathlib import Path

    from qwen_tts_lit.errors import UserError
    from qwen_tts_lit.speak import RunawayError, SynthesizeRequest, synthesize_to_wav

    if args.text_file is not None:
        try:
            text = Path(args.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"--text-file {args.text_file}: cannot read it ({error})") from error
    else:
        text = args.text
    request = SynthesizeRequest(
        model=args.model,
        text=text,
        output=Path(args.output),
        lora_scale=args.lora_scale,
        seed=args.seed,
        max_new_tokens=args.max_new_tokens,
        chunk_chars=args.chunk_chars,
        epoch=args.epoch,
        language=args.language,
        speaker=args.speaker,
        base_model=args.base_model,
        retries=args.retries,
        keep_runaway=args.keep_runaway,
        pause_seconds=args.pause_seconds,
        device=_device(args.device),
    )
    try:
        from tqdm import tqdm

        output, _ = synthesize_to_wav(request, progress=lambda chunks: tqdm(chunks, desc="chunks", unit="chunk"))
    except RunawayError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_INTERNAL) from None  # the model failed to finish; not bad input
    print(output)


def _add_synthesize(sub: argparse._SubParsersAction) -> Callable[[argparse.Namespace], None]:
    from qwen_tts_lit.chunking import DEFAULT_CHUNK_CHARS, PAUSE_SECONDS

    parser = sub.add_parser(
        "synthesize",
        help="speak a text (any length) with a run, an adapter export or a custom_voice export into a 24 kHz wav",
        description="The text is split at sentence boundaries into chunks, each spoken with the same seed and the "
        "same speaker embedding, and joined with a short pause. A chunk that reaches the frame cap without EOS is "
        "retried with seed+1, seed+2, ...; if all retries run away nothing is written and the exit code is 1 "
        "(--keep-runaway keeps the capped audio and says so).",
    )
    parser.add_argument("--model", required=True, help="run folder, adapter export or custom_voice export")
    text = parser.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="the text to speak")
    text.add_argument("--text-file", help="UTF-8 text file to speak (blank lines end paragraphs)")
    parser.add_argument("--output", required=True, help="output .wav (24 kHz, 16-bit; written atomically)")
    parser.add_argument("--lora-scale", type=float, help="adapter strength in (0, 2] (default: best.json/export)")
    parser.add_argument("--seed", type=int, default=42, help="seed of every chunk (default: %(default)s)")
    parser.add_argument("--max-new-tokens", type=int, help="frame cap per chunk (default: from the chunk's length)")
    parser.add_argument(
        "--chunk-chars", type=int, default=DEFAULT_CHUNK_CHARS, help="max characters per chunk (default: %(default)s)"
    )
    parser.add_argument("--epoch", type=int, help="run folder only: epoch (default: best.json)")
    parser.add_argument("--language", help="language tag (default: auto, as training without use_language_tag)")
    parser.add_argument("--speaker", help="custom_voice export with several speakers: which one")
    parser.add_argument("--base-model", help="base checkpoint, when the run's or adapter's own source is not here")
    parser.add_argument("--retries", type=int, default=2, help="extra seeds for a runaway chunk (default: %(default)s)")
    parser.add_argument("--keep-runaway", action="store_true", help="keep a chunk that still hits the cap (reported)")
    parser.add_argument(
        "--pause-seconds",
        type=float,
        default=PAUSE_SECONDS,
        help="seconds of silence between chunks (default: %(default)s)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    return _synthesize


def _ablate(args: argparse.Namespace) -> None:
    from qwen_tts_lit.ablate import ablate

    failures = ablate(args.grid, args.root, seeds=args.seeds, dry_run=args.dry_run)
    if failures:
        print(f"error: {failures} run(s) failed; they are listed in the tables", file=sys.stderr)
        raise SystemExit(EXIT_INTERNAL)


def _add_ablate(sub: argparse._SubParsersAction) -> Callable[[argparse.Namespace], None]:
    parser = sub.add_parser(
        "ablate",
        help="run a grid of config overlays x seeds as fit commands and write ablation tables (md, tex, csv)",
        description="Each variant x seed runs as `python -m qwen_tts_lit fit --config ...` into ROOT/VARIANT/seed_S "
        "(sequentially; finished runs are skipped, a failed run does not stop the others), then ROOT/ablation.md, "
        ".tex and .csv get one row per variant: the selected epoch, scale, WER, SIM, rate_ratio, eos_fail as mean "
        "+- std over seeds, each with its command. Grid format: qwen_tts_lit/ablate.py.",
    )
    parser.add_argument("--grid", required=True, help="grid YAML (base configs, variants -> overlays, seeds)")
    parser.add_argument("--root", required=True, help="output folder: ROOT/VARIANT/seed_S run folders and the tables")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: the grid's seeds)")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the fit commands of the unfinished runs (one per line), run none"
    )
    return _ablate


def _evaluate(args: argparse.Namespace) -> None:
    import json

    from qwen_tts_lit.evaluation import JudgeSettings
    from qwen_tts_lit.rescore import rescore_run

    judges = JudgeSettings(args.asr_model, _device(args.asr_device), args.asr_compute_type, args.asr_beam_size,
                           args.asr_language, not args.no_model_speaker_sim)  # fmt: skip
    overrides = {"primary": args.primary, "rate_tolerance": args.rate_tolerance, "max_eos_fail": args.max_eos_fail}
    best = rescore_run(args.run, args.epochs, args.scales, judges, overrides, args.heldout, args.num_utterances,
                       args.seed, _device(args.device))  # fmt: skip
    print(json.dumps({k: best[k] for k in ("epoch", "lora_scale", "metrics", "reason")}, indent=2))


def _add_evaluate(sub: argparse._SubParsersAction) -> Callable[[argparse.Namespace], None]:
    parser = sub.add_parser(
        "evaluate",
        help="re-score a finished run's saved epochs (e.g. with a stronger ASR model) and choose again",
        description="Synthesize the held-out sentences for each saved epoch x lora_scale, score them, replace those "
        "cells' rows in RUN/eval/rows.jsonl and rebuild best.json and report.html. Defaults (scales, sentences, "
        "seed, rule) are the ones the run's EvalSuite used.",
    )
    parser.add_argument("--run", required=True, help="run folder (runs/NAME/version_N)")
    parser.add_argument("--epochs", type=int, nargs="+", help="epochs to score (default: every saved epoch)")
    parser.add_argument("--scales", type=float, nargs="+", help="lora_scales (default: the run's EvalSuite scales)")
    parser.add_argument("--heldout", help="JSONL of held-out sentences (default: those the run evaluated)")
    parser.add_argument("--num-utterances", type=int, help="first N held-out sentences (default: all)")
    parser.add_argument("--seed", type=int, help="sentence i uses seed + i (default: the run's)")
    parser.add_argument("--asr-model", help="faster-whisper model or dir, e.g. large-v3 (default: bundled tiny.en)")
    parser.add_argument("--asr-device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
    parser.add_argument("--asr-compute-type", default="int8", help="int8 on CPU, float16 on GPU (default: %(default)s)")
    parser.add_argument("--asr-beam-size", type=int, default=5, help="(default: %(default)s)")
    parser.add_argument("--asr-language", default="en", help="spoken language for ASR (default: %(default)s)")
    parser.add_argument("--no-model-speaker-sim", action="store_true", help="skip spk_sim_model (the model's encoder)")
    parser.add_argument("--primary", help="rule: metric to optimise (wer, cer, spk_sim, ...; default: the run's)")
    parser.add_argument("--rate-tolerance", type=float, help="rule: largest |rate_ratio - 1| (default: the run's)")
    parser.add_argument("--max-eos-fail", type=float, help="rule: largest runaway share (default: the run's)")
    parser.add_argument("--device", default="cpu", help="device for the TTS model: cpu, cuda, auto (default: cpu)")
    return _evaluate


SUBCOMMANDS: dict[str, Callable[[argparse._SubParsersAction], Callable[[argparse.Namespace], None]]] = {
    "make-tiny": _add_make_tiny,
    "prepare": _add_prepare,
    "export": _add_export,
    "synthesize": _add_synthesize,
    "evaluate": _add_evaluate,
    "ablate": _add_ablate,
}

# Handled by LightningCLI (jsonargparse): configs, --print_config, --help of every model/data/trainer argument.
LIGHTNING_SUBCOMMANDS = {
    "fit": "train: python -m qwen_tts_lit fit --config configs/demo.yaml",
    "validate": "run the validation loop: python -m qwen_tts_lit validate --config ... --ckpt_path ...",
}


def run_lightning(argv: list[str]) -> None:
    """Run LightningCLI on ``argv`` (which starts with fit or validate)."""
    from qwen_tts_lit.lightning_cli import QwenTTSCLI

    # LightningCLI warns when given args that are also sys.argv: let it read the command line itself then.
    QwenTTSCLI(args=None if argv == sys.argv[1:] else argv)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], None]]]:
    parser = argparse.ArgumentParser(
        prog="python -m qwen_tts_lit",
        description="Fine-tune Qwen3-TTS on one voice, correctly, and pick the best checkpoint by measurement.",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    handlers = {name: add(sub) for name, add in SUBCOMMANDS.items()}
    for name, help_text in LIGHTNING_SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)  # listed here; parsed by LightningCLI
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in LIGHTNING_SUBCOMMANDS:
            run_lightning(argv)
            return EXIT_OK
        parser, handlers = build_parser()
        args = parser.parse_args(argv)  # argparse exits 2 with the list of subcommands on an unknown one
        handlers[args.command](args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:
        if type(error).__name__ != "NonFiniteLossError":
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_OK
