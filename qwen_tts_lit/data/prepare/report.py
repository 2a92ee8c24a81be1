"""``report.json`` and its short human summary ``report.txt``.

Only facts about the data go in (no timings, no cache hits): a resumed run writes the same report, byte for byte,
as an uninterrupted one.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from qwen_tts_lit.data.dataset import NO_EVALUATION
from qwen_tts_lit.data.prepare.outputs import VAL_MANIFEST
from qwen_tts_lit.data.prepare.problems import Problem, sort_key


def distribution(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    points = np.percentile(np.asarray(values, dtype=np.float64), [0, 10, 50, 90, 100])
    summary = dict(zip(("min", "p10", "median", "p90", "max"), points.tolist(), strict=True))
    summary["mean"] = float(np.mean(values))
    return {k: round(v, 3) for k, v in summary.items()}


def build_report(
    *,
    input_path: str,
    input_format: str,
    rows: int,
    entries: dict[str, list[dict]],
    speech_s: dict[str, float],
    words: dict[str, int],
    speaker: dict,
    warnings: list[Problem],
    dropped: list[Problem],
    speakers: dict[str, str] | None = None,
) -> dict:
    """``entries``: the train/val manifest rows; ``speech_s``/``words``: per id, for the speech-rate figures;
    ``speakers``: several speakers' x-vector sources by name (adds the per-speaker section)."""
    everything = entries["train"] + entries["val"]
    minutes = _minutes(entries, speech_s)
    per_speaker = {"speakers": speaker_section(entries, speech_s, speakers)} if speakers else {}
    return {
        "input": {"path": input_path, "format": input_format, "rows": rows},
        "clips": {"train": len(entries["train"]), "val": len(entries["val"]), "dropped": len({p.row for p in dropped})},
        "minutes": minutes,
        "duration_s": distribution([e["duration_s"] for e in everything]),
        "words_per_second": distribution([words[e["id"]] / speech_s[e["id"]] for e in everything]),
        "speaker": speaker,
        "fixes": dict(sorted(Counter(p.kind for p in warnings).items())),
        "warnings": [p.to_json() for p in sorted(warnings, key=sort_key)],
        "dropped": [p.to_json() for p in sorted(dropped, key=sort_key)],
        "val_ids": [e["id"] for e in entries["val"]],
        **per_speaker,
    }


def _minutes(entries: dict[str, list[dict]], speech_s: dict[str, float]) -> dict[str, float]:
    minutes = {split: round(sum(e["duration_s"] for e in rows_) / 60, 3) for split, rows_ in entries.items()}
    minutes["speech"] = round(sum(speech_s[e["id"]] for split in entries.values() for e in split) / 60, 3)
    return minutes


def speaker_section(entries: dict[str, list[dict]], speech_s: dict[str, float], sources: dict[str, str]) -> dict:
    """Per speaker: clips and minutes by split, minutes of speech, where its x-vector comes from."""
    section = {}
    for name, source in sorted(sources.items()):
        own = {split: [e for e in rows_ if e["speaker"] == name] for split, rows_ in entries.items()}
        clips = {split: len(rows_) for split, rows_ in own.items()}
        section[name] = {"clips": clips, "minutes": _minutes(own, speech_s), "xvector": source}
    return section


def _line(name: str, stats: dict[str, float], unit: str) -> str:
    if not stats:
        return f"{name}: -"
    return f"{name} ({unit}): min {stats['min']}  median {stats['median']}  mean {stats['mean']}  max {stats['max']}"


def summary_text(report: dict) -> str:
    clips, minutes = report["clips"], report["minutes"]
    fixes = ", ".join(f"{kind} {n}" for kind, n in report["fixes"].items()) or "none"
    dropped = sorted({f"{d['file']}:{d['line']}" for d in report["dropped"]})
    lines = [
        f"Prepared {clips['train'] + clips['val']} clips ({clips['train']} train, {clips['val']} val) "
        f"from {report['input']['rows']} rows of {report['input']['path']} ({report['input']['format']})",
        f"Audio: {minutes['train'] + minutes['val']:.2f} min ({minutes['train']:.2f} train, {minutes['val']:.2f} val), "
        f"{minutes['speech']:.2f} min of it speech before the appended silence",
        _line("Clip duration", report["duration_s"], "s"),
        _line("Speech rate", report["words_per_second"], "words/s"),
        f"Speaker x-vector: {report['speaker']['source']} (dim {report['speaker']['dim']})",
        *(
            f"  {name}: {s['minutes']['speech']:.2f} min of speech, {s['clips']['train']} train + {s['clips']['val']} "
            f"val clips, x-vector {s['xvector']}"
            for name, s in report.get("speakers", {}).items()
        ),
        f"Fixed (warnings): {fixes}",
        f"Dropped: {clips['dropped']} row(s)" + (f": {', '.join(dropped)}" if dropped else ""),
    ]
    if not clips["val"]:  # fit refuses such a dataset later (EvalSuite.setup): say it now, with the same ways out
        lines.append(f"warning: no clip is held out for validation ({VAL_MANIFEST} is empty); {NO_EVALUATION}")
    return "\n".join(lines) + "\n"


def report_bytes(report: dict) -> bytes:
    return (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode()
