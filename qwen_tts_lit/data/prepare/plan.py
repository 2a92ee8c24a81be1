"""``prepare``'s check phase: read and measure every row, collect every problem, decide the split, write nothing.

:func:`check_input` returns the :class:`Plan` the write phase carries out, or raises
:class:`~qwen_tts_lit.errors.UserError` (exit code 2) listing every problem when any is an error. An input whose rows
name several speakers (a ``speaker`` field, or a folder per speaker) is checked per speaker (each needs clips to train
on and held-out clips; a speaker with little speech is warned about) and split per speaker.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from qwen_tts_lit.data.prepare.checks import Clip, Reference, check_references, check_rows, read_val_list
from qwen_tts_lit.data.prepare.options import PrepareOptions
from qwen_tts_lit.data.prepare.outputs import CACHE_DIR, CONFIG
from qwen_tts_lit.data.prepare.problems import UNPARSED, Problem, format_problems
from qwen_tts_lit.data.prepare.sources import detect_format, read_rows
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import unwritable
from qwen_tts_lit.speaker_file import speaker_key
from qwen_tts_lit.upstream.loading import load_config, supported_languages
from qwen_tts_lit.upstream.pairings import instruct_problem, speaker_encoder_source

# Under this much speech a speaker of a several-speaker input is warned about (the seed guide asks 10-30 min for one
# voice; a few minutes still give a recognisable but unstable voice).
SPEAKER_WARN_MINUTES = 3.0


@dataclass
class Plan:
    """Everything the write phase needs, decided while nothing had been written."""

    clips: list[Clip]
    val_ids: set[str]
    references: list[Reference]
    warnings: list[Problem]
    dropped: list[Problem]
    rows: int
    input_format: str
    speaker: str | None
    hidden_size: int
    speaker_references: dict[str, list[Reference]] | None = None
    """Several speakers: each one's reference recordings (empty: the mean of its train clips). None: one speaker."""


def log(options: PrepareOptions, message: str) -> None:
    """A progress line on stderr, when progress is on."""
    if options.progress:
        print(message, file=sys.stderr)


def progress_bar(options: PrepareOptions, total: int, desc: str):
    """A tqdm bar on stderr over ``total`` clips (off without progress)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="clip", disable=not options.progress, file=sys.stderr)


def _output_problem(output: Path) -> Problem | None:
    if output.exists() and not output.is_dir():
        return Problem(str(output), None, "--output", "exists and is not a directory", "bad_output")
    message = unwritable(output)
    if message:
        return Problem(str(output), None, "--output", message, "bad_output")
    ours = (output / CONFIG).is_file() or (output / CACHE_DIR).is_dir()
    if output.is_dir() and any(output.iterdir()) and not ours:
        message = "is not empty and holds no earlier prepare output; choose a new or empty directory"
        return Problem(str(output), None, "--output", message, "bad_output")
    return None


def _model_problems(options: PrepareOptions) -> tuple[object | None, list[Problem]]:
    try:
        config = load_config(options.model)
    except (OSError, ValueError) as error:
        return None, [
            Problem(options.model, None, "--model", f"cannot read the checkpoint config: {error}", "bad_model")
        ]
    problems = []
    try:
        speaker_encoder_source(options.model, config, options.speaker_encoder_model)
    except UserError as error:
        problems.append(Problem(options.model, None, "--model", str(error).removeprefix(f"{options.model}: "),
                                "bad_model"))  # fmt: skip
    if not problems and config.speaker_encoder_config.sample_rate != options.sample_rate:
        message = f"the model works at {config.speaker_encoder_config.sample_rate} Hz"
        problems.append(Problem("--sample_rate", None, None, message, "bad_option"))
    return config, problems


def split_val(ids: list[str], fraction: float, seed: int) -> set[str]:
    """Held-out ids: the ``round(n * fraction)`` ids (at least 1, at most n - 1) of smallest sha256(seed:id).

    A hash rank, not a shuffle: the split does not depend on row order or input format, and adding clips later
    moves no existing clip between train and val.
    """
    if fraction <= 0 or len(ids) < 2:
        return set()
    count = min(len(ids) - 1, max(1, round(len(ids) * fraction)))
    return set(sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())[:count])


def _resolve(problems: list[Problem], options: PrepareOptions) -> tuple[list[Problem], list[Problem], set[int]]:
    """Split problems into (warnings kept, errors of dropped rows, dropped row indices); raise on fatal errors."""
    errors = [p for p in problems if not p.fixable or options.strict]
    fatal = [p for p in errors if p.row is None or not options.skip_bad]
    if fatal:
        strict = " (--strict: every automatic fix counts as an error)" if options.strict else ""
        hint = "Fix them" + ("" if options.skip_bad else ", or pass --skip_bad true to drop the rows that have them")
        header = f"{len(fatal)} problem(s) in the input{strict}; nothing was written. {hint}:"
        raise UserError(format_problems(fatal, header))
    dropped_rows = {p.row for p in errors}
    warnings = [p for p in problems if p.fixable and not options.strict and p.row not in dropped_rows]
    return warnings, errors, dropped_rows - {UNPARSED}


def check_input(options: PrepareOptions) -> Plan:
    """The check phase: read and measure every row, collect every problem, write nothing."""
    bad_options = options.check()
    if bad_options:
        raise UserError("\n".join(["bad option(s); nothing was written:", *(f"  {m}" for m in bad_options)]))
    config, problems = _model_problems(options)
    output_problem = _output_problem(options.output)
    problems += [output_problem] if output_problem else []
    rows, found = read_rows(options.input, options.input_format)
    problems += found
    languages = supported_languages(config) if config is not None else None
    with progress_bar(options, len(rows), "checking") as bar:
        clips, found = check_rows(rows, options, languages, bar)
    several = len({raw.speaker for raw in rows if raw.speaker}) > 1
    if several:
        speaker_references, ref_problems = _speaker_references(rows, options)
        references = []
    else:
        speaker_references, (references, ref_problems) = None, check_references(rows, options)
    problems += found + ref_problems + _instruct_problems(rows, config)
    known = {clip.id for clip in clips}
    val_ids, val_problems = read_val_list(options.val_list, known) if options.val_list else ([], [])
    warnings, dropped, dropped_rows = _resolve(problems + val_problems, options)
    clips = [clip for clip in clips if clip.row not in dropped_rows]
    if not clips:
        raise UserError(f"{options.input}: no usable rows; nothing was written")
    if several:
        for clip in clips:
            clip.speaker = speaker_key(clip.speaker)
        kept = {clip.speaker for clip in clips}
        for name in sorted(set(speaker_references) - kept):  # --skip_bad dropped every row of this speaker
            message = f"speaker {name!r}: every row was dropped (--skip_bad); the model will not have this voice"
            warnings.append(Problem(str(options.input), None, "speaker", message, "speaker_dropped", True))
        speaker_references = {name: refs for name, refs in speaker_references.items() if name in kept}
    if not options.val_list:
        val_ids = _split(clips, options, several)
    train = [clip for clip in clips if clip.id not in set(val_ids)]
    if not train:
        raise UserError(f"{options.val_list}: every usable row is held out for validation; nothing is left to train on")
    if several:
        _check_per_speaker(clips, set(val_ids), options)
        warnings += _little_data(clips, options)
    fmt = options.input_format if options.input_format != "auto" else detect_format(options.input) or "?"
    speakers = Counter(clip.speaker for clip in clips if clip.speaker)
    speaker = speakers.most_common(1)[0][0] if speakers and not several else None
    return Plan(clips, set(val_ids), references, warnings, dropped, len(rows), fmt, speaker,
                config.talker_config.hidden_size, speaker_references)  # fmt: skip


def _instruct_problems(rows, config) -> list[Problem]:
    """Rows with an instruction for a checkpoint that cannot follow one (``upstream.pairings.instruct_problem``)."""
    reason = instruct_problem(config) if config is not None else None
    return [Problem(raw.file, raw.line, "instruct", reason, "bad_instruct", row=index)
            for index, raw in enumerate(rows) if reason and (raw.instruct or "").strip()]  # fmt: skip


def _speaker_references(rows, options: PrepareOptions) -> tuple[dict[str, list[Reference]], list[Problem]]:
    """Each speaker's reference recordings, from its own rows (``speaker_source`` decided per speaker)."""
    by_speaker: dict[str, list] = {}
    for raw in rows:
        if raw.speaker:
            by_speaker.setdefault(speaker_key(raw.speaker), []).append(raw)
    found, problems = {}, []
    for name in sorted(by_speaker):
        found[name], more = check_references(by_speaker[name], options, name)
        problems += [p for p in more if p not in problems]  # --ref_audio is refused once, not once per speaker
    return found, problems


def _split(clips: list[Clip], options: PrepareOptions, several: bool) -> set[str]:
    """The held-out ids: over all clips for one speaker (as always), within each speaker for several, so that
    every voice is evaluated on its own sentences."""
    if not several:
        return split_val([clip.id for clip in clips], options.val_fraction, options.seed)
    ids: dict[str, list[str]] = {}
    for clip in clips:
        ids.setdefault(clip.speaker, []).append(clip.id)
    return set().union(*(split_val(group, options.val_fraction, options.seed) for group in ids.values()))


def _check_per_speaker(clips: list[Clip], val_ids: set[str], options: PrepareOptions) -> None:
    """Every speaker needs clips to train on, and held-out clips unless evaluation is off (--val_fraction 0)."""
    counts: dict[str, list[int]] = {}
    for clip in clips:
        counts.setdefault(clip.speaker, [0, 0])[clip.id in val_ids] += 1
    need_val = options.val_fraction > 0 or options.val_list is not None
    bad = []
    for name, (train, val) in sorted(counts.items()):
        if not train or (need_val and not val):
            lacking = "no clip to train on" if not train else "no held-out clip to evaluate the voice on"
            bad.append(f"  speaker {name!r}: {train} train + {val} held-out clip(s): {lacking}")
    if bad:
        hint = "give each speaker at least 2 usable clips" + (
            " and list some of each speaker's ids in --val_list" if options.val_list else ""
        )
        raise UserError("\n".join([f"{len(bad)} speaker(s) cannot be trained and evaluated; {hint}:", *bad]))


def _little_data(clips: list[Clip], options: PrepareOptions) -> list[Problem]:
    speech: dict[str, float] = {}
    for clip in clips:
        speech[clip.speaker] = speech.get(clip.speaker, 0.0) + clip.speech_s
    return [
        Problem(str(options.input), None, "speaker", f"speaker {name!r} has {seconds / 60:.2f} min of speech "
                f"(under {SPEAKER_WARN_MINUTES:g} min the voice tends to be unstable)", "little_speaker_data", True)
        for name, seconds in sorted(speech.items()) if seconds < SPEAKER_WARN_MINUTES * 60
    ]  # fmt: skip
