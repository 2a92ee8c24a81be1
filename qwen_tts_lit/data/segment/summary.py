"""The summary of a segment run: minutes in, minutes kept, clips per status with their reasons, and whether the
kept minutes reach the seed guide's 10-30 minutes of clean single-speaker audio."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from qwen_tts_lit.data.segment.filters import KEEP, REVIEW, STATUSES
from qwen_tts_lit.data.segment.outputs import MANIFEST, PAGE, SHEET

GUIDE_MINUTES = (10.0, 30.0)  # the seed guide: 10-30 minutes of clean single-speaker audio


def build_summary(recordings: list[dict], records: list[dict]) -> dict:
    """``recordings``: {id, source, seconds} per input; ``records``: the clips (clips.jsonl rows, final statuses)."""
    statuses = {}
    for status in STATUSES:
        chosen = [r for r in records if r["status"] == status]
        reasons = Counter(reason for r in chosen for reason in r["reasons"])
        statuses[status] = {"clips": len(chosen), "minutes": round(sum(r["seconds"] for r in chosen) / 60, 2),
                            "reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))}  # fmt: skip
    kept = statuses[KEEP]["minutes"]
    low, high = GUIDE_MINUTES
    return {
        "recordings": len(recordings),
        "minutes_in": round(sum(r["seconds"] for r in recordings) / 60, 2),
        "minutes_in_clips": round(sum(r["seconds"] for r in records) / 60, 2),
        "minutes_kept": kept,
        "statuses": statuses,
        "edited": {"status": sum(r["status_edited"] for r in records), "text": sum(r["text_edited"] for r in records)},
        "edited_text_still_review": sum(r["text_edited"] and r["status"] == REVIEW for r in records),
        "guide_minutes": list(GUIDE_MINUTES),
        "reaches_guide": kept >= low,
        "guide": "below" if kept < low else "within" if kept <= high else "above",
    }


def summary_bytes(summary: dict) -> bytes:
    return (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode()


def summary_text(summary: dict) -> str:
    """A few lines for the terminal and summary.txt."""
    lines = [
        f"{summary['recordings']} recording(s), {summary['minutes_in']:.1f} min in; "
        f"{summary['minutes_in_clips']:.1f} min of clips"
    ]
    for status, facts in summary["statuses"].items():
        reasons = ", ".join(f"{name} {count}" for name, count in facts["reasons"].items())
        lines.append(
            f"  {status:<6} {facts['clips']:>5} clips {facts['minutes']:>7.1f} min"
            + (f"  ({reasons})" if reasons else "")
        )
    low, high = summary["guide_minutes"]
    kept, review = summary["minutes_kept"], summary["statuses"][REVIEW]["minutes"]
    verdict = {
        "below": f"below the seed guide's {low:g}-{high:g} min of clean single-speaker audio"
        + (f": proofread the {review:.1f} min marked review, or add recordings" if review else ": add recordings"),
        "within": f"within the seed guide's {low:g}-{high:g} min",
        "above": f"above the seed guide's {low:g}-{high:g} min (more clean audio does not hurt)",
    }[summary["guide"]]
    lines.append(f"kept {kept:.1f} min: {verdict}")
    edited = summary["edited"]
    if edited["status"] or edited["text"]:
        lines.append(f"edits from {SHEET}: {edited['status']} status(es), {edited['text']} transcript(s)")
    if summary["edited_text_still_review"]:
        lines.append(f"{summary['edited_text_still_review']} clip(s) with a corrected transcript are still marked "
                     "review: set their status to keep to use them")  # fmt: skip
    return "\n".join(lines) + "\n"


def next_steps(output: Path, summary: dict) -> str:
    """Where the results are and what to run next (printed, not stored: it names the folder as given)."""
    kept = summary["statuses"][KEEP]
    lines = [
        f"outputs in {output}:",
        f"  {PAGE:<16} listen to every clip with its transcript, status and reasons",
        f"  {SHEET:<16} edit status (keep / review / drop) and text, then run this same command again",
        f"  {MANIFEST:<16} the {kept['clips']} kept clip(s), {kept['minutes']:.1f} min: the input of prepare",
    ]
    if kept["clips"] >= 2:
        lines.append(f"next: python -m qwen_tts_lit prepare --input {output / MANIFEST} --output {output}_prepared "
                     "--model MODEL")  # fmt: skip
    else:
        lines.append(f"next: proofread {output / SHEET} (nothing to train on is marked keep yet), then run again")
    return "\n".join(lines)
