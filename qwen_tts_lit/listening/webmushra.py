"""The same test as a webMUSHRA configuration (https://github.com/audiolabs/webMUSHRA), for people who host it:
``DIR/webmushra/<test_id>.yaml`` and a copy of the audio, ``DIR/webmushra/audio/``. webMUSHRA has page types for
MUSHRA (``mushra``), single-stimulus ratings (``likert_single_stimulus``: MOS) and A/B (``paired_comparison``), none
for SMOS or CMOS. It shuffles pages and stimuli itself and writes its own results format, not this page's CSV.
Our own low anchor and hidden reference are listed as stimuli (its ``createAnchor35`` is off), so key.json covers
every file it plays."""

from __future__ import annotations

from pathlib import Path

import yaml

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import copy_file, write_atomic
from qwen_tts_lit.listening.designs import Design
from qwen_tts_lit.listening.page import AUDIO_DIR
from qwen_tts_lit.listening.plan import PRACTICE, Plan

WEBMUSHRA_DIR = "webmushra"
PAGE_TYPES = {"mushra": "mushra", "mos": "likert_single_stimulus", "ab": "paired_comparison"}


def resource(test_id: str, file: str) -> str:
    """Where webMUSHRA finds a stimulus: its configs/resources/audio/<test_id>/ folder (docs/listening.md)."""
    return f"configs/resources/audio/{test_id}/{file}"


def _page(test_id: str, design: Design, trial, number: int) -> dict:
    practice = trial.kind == PRACTICE
    page = {"type": PAGE_TYPES[design.name], "id": trial.trial,
            "name": f"Practice {number}" if practice else f"Trial {number}", "content": design.question}  # fmt: skip
    stems = {Path(file).stem: resource(test_id, file) for file in trial.stimuli}
    if design.name == "mushra":
        page |= {"showWaveform": True, "enableLooping": True, "reference": resource(test_id, trial.reference),
                 "createAnchor35": False, "createAnchor70": False, "stimuli": stems}  # fmt: skip
    elif design.name == "mos":
        page |= {"mustPlayback": "ended", "stimuli": stems,
                 "response": [{"value": value, "label": label} for value, label in design.labels]}  # fmt: skip
    else:  # ab: webMUSHRA compares its "reference" (A) with each stimulus (B), and shuffles which side is which
        first, second = trial.stimuli
        page |= {"showWaveform": True, "enableLooping": True, "unforced": "No preference",
                 "reference": resource(test_id, first),
                 "stimuli": {Path(second).stem: resource(test_id, second)}}  # fmt: skip
    return page


def webmushra_config(test_id: str, design: Design, plan: Plan) -> dict:
    """The configuration: a welcome page, the practice pages in order, the other pages shuffled, a finish page
    that asks for the rater id."""
    if design.name not in PAGE_TYPES:
        raise UserError(f"--webmushra: webMUSHRA has no page type for {design.name}; it takes "
                        f"{', '.join(PAGE_TYPES)} (the built page runs every design)")  # fmt: skip
    practice = [t for t in plan.trials if t.kind == PRACTICE]
    rest = [t for t in plan.trials if t.kind != PRACTICE]
    pages: list = [{"type": "generic", "id": "welcome", "name": design.title, "content": design.instructions}]
    pages += [_page(test_id, design, t, n) for n, t in enumerate(practice, 1)]
    pages.append(["random", *(_page(test_id, design, t, n) for n, t in enumerate(rest, 1))])
    pages.append({"type": "finish", "name": "Thank you", "content": "Thank you for taking part.",
                  "showResults": False, "writeResults": True,
                  "questionnaire": [{"type": "text", "label": "Your rater id", "name": "rater"}]})  # fmt: skip
    return {"testname": design.title, "testId": test_id, "bufferSize": 2048, "stopOnErrors": True,
            "showButtonPreviousPage": True, "remoteService": "service/write.php", "pages": pages}  # fmt: skip


def write_webmushra(folder: Path, test_id: str, design: Design, plan: Plan, audio: Path) -> Path:
    """Write the configuration and a copy of every stimulus it plays into ``folder``; the configuration's path."""
    config = webmushra_config(test_id, design, plan)
    for file in sorted(plan.stimuli):
        copy_file(audio / file, folder / AUDIO_DIR / file)
    return write_atomic(folder / f"{test_id}.yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
