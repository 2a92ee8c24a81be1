"""``listen``: a blind listening test built from run folders. Reads the sources, plans the trials, writes the test
folder (stimuli and page, staged, so it is whole or absent) and then the key beside it, outside what raters get.

OUTPUT/test/index.html, OUTPUT/test/audio/<random>.wav, OUTPUT/key.json, optionally OUTPUT/webmushra/."""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import shown, staged_folder, write_atomic
from qwen_tts_lit.listening import sources as read
from qwen_tts_lit.listening.designs import design as design_named
from qwen_tts_lit.listening.key import KEY_FILE, key_record, write_key
from qwen_tts_lit.listening.page import AUDIO_DIR, INDEX_FILE, render_page
from qwen_tts_lit.listening.plan import ANCHOR, ATTENTION, PRACTICE, Plan, Stimulus, plan_test
from qwen_tts_lit.listening.request import ListenRequest
from qwen_tts_lit.listening.stimuli import Levels, write_stimuli
from qwen_tts_lit.listening.webmushra import WEBMUSHRA_DIR, webmushra_config, write_webmushra

TEST_DIR = "test"


@dataclass(frozen=True)
class Built:
    """What ``listen`` wrote."""

    test_id: str
    index: Path
    key: Path
    plan: Plan
    levels: Levels
    webmushra: Path | None = None


def sources_of(request: ListenRequest) -> read.Sources:
    given = request.sources_given
    if len(given) != 1:
        raise UserError("listen: give one of --run RUN, --runs '[RUN1, RUN2]' or --ablation ROOT"
                        + (f" (got {', '.join('--' + g for g in given)})" if given else ""))  # fmt: skip
    if request.run:
        return read.from_run(request.run)
    if request.runs:
        return read.from_runs(list(request.runs))
    return read.from_ablation(request.ablation)


def build_test(request: ListenRequest) -> Built:
    """Build the test ``request`` describes; nothing is written when the request or a source is refused."""
    design = design_named(request.design)
    output = Path(request.output)
    if (output / KEY_FILE).exists():
        raise UserError(f"--output {output}: holds a test already ({output / KEY_FILE}); ratings of it need that "
                        "key, so choose another folder")  # fmt: skip
    sources = sources_of(request)
    plan = plan_test(sources, design, sentences=request.sentences, practice=request.practice,
                     attention=request.attention, seed=request.seed)  # fmt: skip
    if request.webmushra:
        webmushra_config("check", design, plan)  # refuses a design webMUSHRA cannot show before anything is written
    test_id = secrets.token_hex(8)

    def source_of(stimulus: Stimulus) -> Path:
        return sources.audio[(read.REAL if stimulus.system == ANCHOR else stimulus.system, stimulus.item)]

    with staged_folder(output / TEST_DIR) as staging:
        levels = write_stimuli(plan.stimuli.values(), source_of, staging / AUDIO_DIR, progress=_bar(request))
        write_atomic(staging / INDEX_FILE, render_page(test_id, design, plan))
    provenance = {"seed": request.seed, "loudness": {
        "method": "ITU-R BS.1770-4 integrated loudness (K-weighted, gated), after trimming silence at the ends",
        "target_lufs": levels.target_lufs, "lowered_to_avoid_clipping": levels.lowered,
        "silent_stimuli": list(levels.silent), "measured_lufs": levels.measured}}  # fmt: skip
    key = write_key(output / KEY_FILE, key_record(test_id, design, plan, sources, provenance))
    webmushra = None
    if request.webmushra:
        webmushra = write_webmushra(output / WEBMUSHRA_DIR, test_id, design, plan, output / TEST_DIR / AUDIO_DIR)
    return Built(test_id, output / TEST_DIR / INDEX_FILE, key, plan, levels, webmushra)


def _bar(request: ListenRequest):
    if not request.progress:
        return lambda items: items

    def bar(items):
        from tqdm import tqdm

        return tqdm(list(items), desc="listen: stimuli", unit="file", file=sys.stderr, leave=False)

    return bar


def summary_lines(built: Built, design: str) -> list[str]:
    """What ``listen`` prints when it is done: what it built, where the test and the key are, what to run next."""
    kinds = [trial.kind for trial in built.plan.trials]
    levels = built.levels
    level = f"every stimulus at {levels.target_lufs:g} LUFS (BS.1770 integrated)"
    level += " (lowered from -23 so that none clips)" if levels.lowered else ""
    level += f"; {len(levels.silent)} silent stimuli left as they are" if levels.silent else ""
    lines = [
        f"listen: a blind {design} test of {len(kinds)} trials ({kinds.count(PRACTICE)} practice, "
        f"{kinds.count(ATTENTION)} attention checks), {len(built.plan.stimuli)} stimuli; {level}",
        f"  the test, for raters: {shown(built.index)} (opens from disk in a browser; give them the whole "
        f"{shown(built.index.parent)}/ folder)",
        f"  the key, keep it private: {shown(built.key)} (never put it in the folder you send)",
    ]
    if built.webmushra is not None:
        lines.append(f"  webMUSHRA: {shown(built.webmushra)} and its audio (docs/listening.md says where they go)")
    results = shown(built.key.parent / "results")
    lines.append(f"next: collect each rater's {built.test_id}_<rater>.csv, then python -m qwen_tts_lit listen "
                 f"--results '[A.csv, B.csv]' --key {shown(built.key)} --output {results}")  # fmt: skip
    return lines
