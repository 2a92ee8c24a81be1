"""Writing ``key.json`` (format 1): which system and sentence every stimulus file is, and every trial; kept OUTSIDE
the test folder given to raters. The format is the contract the ratings analysis reads (docs/listening.md)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from qwen_tts_lit.files import write_atomic
from qwen_tts_lit.listening.designs import Design
from qwen_tts_lit.listening.plan import Plan
from qwen_tts_lit.listening.sources import Sources

KEY_FILE = "key.json"
KEY_FORMAT = 1


def key_record(test_id: str, design: Design, plan: Plan, sources: Sources, provenance: dict) -> dict:
    """key.json's content."""
    texts = {item.id: item.text for item in sources.items}
    return {
        "format": KEY_FORMAT,
        "test_id": test_id,
        "design": design.name,
        "scale": design.scale,
        "systems": {s.id: {"label": s.label, "role": s.role, "source": s.source} for s in plan.systems},
        "stimuli": {
            file: {"system": stimulus.system, "item": stimulus.item, "text": texts[stimulus.item]}
            for file, stimulus in sorted(plan.stimuli.items())
        },
        "trials": [
            {"trial": t.trial, "kind": t.kind, "item": t.item, "stimuli": list(t.stimuli), "reference": t.reference}
            for t in plan.trials
        ],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sources": {"kind": sources.kind, **sources.provenance, **provenance},
    }


def write_key(path: Path, record: dict) -> Path:
    return write_atomic(path, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
