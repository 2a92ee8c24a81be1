"""``review.html``: every clip with its audio, transcript, status and reasons, to listen while editing review.csv.

Self-contained like the training report: inline CSS, audio by relative path (``clips/`` beside it), no scripts, no
network. Clips needing a decision come first (review, then drop, then keep), each group in time order.
"""

from __future__ import annotations

import html

from qwen_tts_lit.data.segment.filters import DROP, KEEP, REASONS, REVIEW
from qwen_tts_lit.data.segment.outputs import SHEET
from qwen_tts_lit.data.segment.summary import summary_text

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; font-size: 14px; }
td.keep { background: #d8f5d0; } td.review { background: #fff3c4; } td.drop { background: #f6d5d5; }
audio { height: 30px; width: 240px; }
del { color: #999; }
.note { color: #555; font-size: 13px; }
pre { background: #f6f6f6; padding: 8px; }
"""
ORDER = (REVIEW, DROP, KEEP)


def _clip_row(record: dict) -> str:
    edited = " (edited)" if record["status_edited"] else ""
    text = html.escape(record["text"])
    if record["text_edited"]:
        text += f"<br><del>{html.escape(record['asr_text'])}</del> <span class=note>(ASR)</span>"
    notes = "<br>".join(html.escape(note) for note in record["notes"]) or "&mdash;"
    similarity = record.get("speaker_similarity")
    facts = (f"{record['seconds']:.1f} s, {html.escape(record['source'])} {record['start']:.2f}-{record['end']:.2f} s"
             f"<br>speaker {'n/a' if similarity is None else f'{similarity:.2f}'}, "
             f"log-prob {record['avg_logprob']:.2f}")  # fmt: skip
    return (
        f"<tr><td>{html.escape(record['id'])}</td><td class={record['status']}>{record['status']}{edited}"
        f"<br><span class=note>machine: {record['auto_status']}</span></td>"
        f'<td><audio controls preload="none" src="{html.escape(record["audio"])}"></audio></td>'
        f"<td>{text}</td><td class=note>{notes}</td><td class=note>{facts}</td></tr>"
    )


def review_page(records: list[dict], summary: dict) -> str:
    """The whole page for ``records`` (clips.jsonl rows) and the run's summary."""
    sections = []
    for status in ORDER:
        chosen = [r for r in records if r["status"] == status]
        if not chosen:
            continue
        head = "<tr><th>clip</th><th>status</th><th>listen</th><th>transcript</th><th>reasons</th><th>facts</th></tr>"
        rows = "\n".join(_clip_row(record) for record in chosen)
        sections.append(f"<h2 id={status}>{status}: {len(chosen)} clip(s)</h2>\n<table>{head}\n{rows}</table>")
    legend = "\n".join(
        f"<tr><td>{name}</td><td>{status}</td><td>{html.escape(meaning)}</td></tr>"
        for name, (status, meaning) in REASONS.items()
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Review clips</title><style>{STYLE}</style></head><body>
<h1>Review clips</h1>
<pre>{html.escape(summary_text(summary))}</pre>
<p class=note>Listen here; edit <code>{SHEET}</code> beside this page: set <code>status</code> to keep, review or drop
and correct <code>text</code> where the transcript is wrong, then run the same segment command again. It writes the
manifest from your edits without transcribing anything again. Only clips marked keep go into the manifest.</p>
{"".join(sections)}
<h2>Reasons</h2>
<table><tr><th>reason</th><th>status</th><th>meaning</th></tr>
{legend}</table>
</body></html>
"""
