"""The rater's page: one ``index.html`` with its CSS and JavaScript inline (``page/``: page.html, page.css, page.js)
and the test as JSON inside it. The JSON holds what a rater's browser needs and nothing more: the opaque file
names, each trial's kind and what it plays; never a system, an epoch, a scale or a sentence id."""

from __future__ import annotations

import html
import json
from importlib import resources

from qwen_tts_lit.listening.designs import MUSHRA_BANDS, Design
from qwen_tts_lit.listening.plan import Plan

INDEX_FILE = "index.html"
AUDIO_DIR = "audio"  # beside index.html; the page plays audio/<name>.wav by relative path


def asset(name: str) -> str:
    return (resources.files("qwen_tts_lit.listening") / "page" / name).read_text(encoding="utf-8")


def page_data(test_id: str, design: Design, plan: Plan) -> dict:
    """What the page's script reads."""
    return {
        "test_id": test_id,
        "design": design.name,
        "title": design.title,
        "question": design.question,
        "instructions": design.instructions,
        "labels": [list(pair) for pair in design.labels],
        "scale": design.scale,
        "paired": design.paired,
        "multi": design.multi,
        "bands": [list(band) for band in MUSHRA_BANDS],
        "trials": [
            {"trial": t.trial, "kind": t.kind, "stimuli": list(t.stimuli), "reference": t.reference}
            for t in plan.trials
        ],
    }


def render_page(test_id: str, design: Design, plan: Plan) -> str:
    """The whole index.html."""
    data = json.dumps(page_data(test_id, design, plan), ensure_ascii=False)
    data = data.replace("<", "\\u003c")  # no "</script>" can end the JSON block early
    page = asset("page.html")
    for marker, value in (("__CSS__", asset("page.css")), ("__JS__", asset("page.js")), ("__DATA__", data),
                          ("__TITLE__", html.escape(design.title))):  # fmt: skip
        page = page.replace(marker, value)
    return page
