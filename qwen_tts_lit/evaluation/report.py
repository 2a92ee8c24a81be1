"""The listening report of a run folder, rebuilt from its evaluation rows and its chosen cell.

Self-contained: audio by relative path (the wavs live beside it in the run folder), plots as inline SVG, no scripts
or network. Open it from the run folder (or copy the whole folder) and listen.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence

from qwen_tts_lit.metrics.instructions import PROBES, RETENTION, reason_field, retention_field, retention_sentence
from qwen_tts_lit.metrics.selection import aggregate, baseline_cells
from qwen_tts_lit.metrics.speech_rate import PAUSE_S
from qwen_tts_lit.metrics.uncertainty import Interval, format_interval
from qwen_tts_lit.model.layout import TAGGED, UNTAGGED
from qwen_tts_lit.runs.baselines import label as baseline_label
from qwen_tts_lit.runs.records import PRESETS_KEPT

CELL_METRICS = (("wer", "WER", "{:.3f}"), ("cer", "CER", "{:.3f}"), ("spk_sim", "SIM", "{:.3f}"),
                ("rate_ratio", "rate", "{:.2f}"), ("rate_ratio_vad", "rate (VAD)", "{:.2f}"),
                ("eos_fail", "EOS fail", "{:.0%}"))  # fmt: skip
ERROR_METRICS = ("wer", "cer")  # a cell shows the one(s) its rows' languages use; neither: not measured (no ASR)
# Shown beside the real recordings' own score, and only where measured (the judge can be off).
NATURALNESS_METRICS = (("dnsmos_ovrl", "OVRL", "{:.2f}"), ("dnsmos_sig", "SIG", "{:.2f}"),
                       ("dnsmos_p808", "P.808", "{:.2f}"))  # fmt: skip
PREFIX_LABELS = {UNTAGGED: "language omitted (generate_custom_voice(text, speaker))",
                 TAGGED: 'explicit language (language="English", ...)'}  # fmt: skip
PLOTTED = (("error_rate", "WER / CER by language (lower is better)"), ("spk_sim", "speaker similarity"),
           ("rate_ratio", "rate ratio (1 = real)"), ("dnsmos_ovrl", "naturalness: DNSMOS OVRL (1-5)"))  # fmt: skip
REAL_LEVEL = {"dnsmos_ovrl": "real_dnsmos_ovrl"}  # a panel's level of the real recordings, drawn as a solid line
BASELINES_NOTE = (
    "zero-shot x-vector: the training x-vector alone, adapters at scale 0, spoken exactly as the cells are; "
    "zero-shot voice clone (default streaming): generate_voice_clone(text, ref_audio, ref_text) as users call it, "
    "from the first training clip as recorded (without prepare's appended silence) and its transcript; "
    "(non-streaming): the same call with non_streaming_mode=True, the text layout fine-tuning trains."
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; font-size: 14px; }
td.chosen { background: #d8f5d0; font-weight: bold; }
td.failed { color: #999; }
audio { height: 30px; width: 220px; }
.note { color: #555; font-size: 13px; }
"""


def _fmt(value, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)


def _with_interval(value, interval: dict | None, pattern: str) -> str:
    """``0.123 [0.101, 0.150]`` when the metric has an interval (the chosen cell's record), else the value alone:
    uncertainty's ``format_interval``, the one writer of an interval, with this page's number format."""
    interval = interval or {}
    shown = Interval(value, interval.get("low"), interval.get("high"), interval.get("n") or 0)
    return format_interval(shown, number=pattern.format)


def _cell_text(cell: dict, intervals: dict | None = None) -> str:
    """A cell's metrics, each with its 95 % interval over held-out sentences when ``intervals`` has it, and n."""
    intervals = intervals or {}
    errors_measured = any(cell.get(name) is not None for name in ERROR_METRICS)
    lines = [] if errors_measured else ["WER/CER n/a"]
    lines += [f"{label} {_with_interval(cell.get(name), intervals.get(name), pattern)}"
              for name, label, pattern in CELL_METRICS
              if name not in ERROR_METRICS or cell.get(name) is not None]  # fmt: skip
    lines += [f"{label} {_naturalness(cell, name, pattern, intervals.get(name))}"
              for name, label, pattern in NATURALNESS_METRICS if cell.get(name) is not None]  # fmt: skip
    lines += _retention_lines(cell)
    sentences = max((i.get("n") or 0 for i in intervals.values()), default=0)
    return "<br>".join(lines + ([f"<span class='note'>n={sentences} sentences</span>"] if sentences else []))


def _retention_lines(cell: dict) -> list[str]:
    """A probed cell's instruction retention: the worst probe's share of the base model's effect, then each
    probe's (n/a where it has no reference; the reason is in the title, and in the section below)."""
    if RETENTION not in cell:
        return []
    shown = []
    for probe in PROBES:
        if retention_field(probe.name) not in cell:
            continue
        why = cell.get(reason_field(probe.name))
        text = _fmt(None if why else cell.get(retention_field(probe.name)), "{:.2f}")
        shown.append(f"<span title='{html.escape(why or '', quote=True)}'>{probe.name} {text}</span>")
    return [f"instructions kept {_fmt(cell.get(RETENTION), '{:.2f}')}", "<span class='note'>" + ", ".join(shown)
            + "</span>"]  # fmt: skip


def retention_section(best: dict | None, cells: list[dict]) -> list[str]:
    """The chosen cell's "retained 0.8 of the base model's slow-vs-fast effect", probe by probe, when probed."""
    if not any(RETENTION in cell for cell in cells):
        return []
    chosen = next((c for c in cells if best and (c["epoch"], c["lora_scale"]) == (best["epoch"], best["lora_scale"])),
                  None)  # fmt: skip
    if chosen is None or RETENTION not in chosen:
        lines = ["The chosen cell was not probed (instruct_probe.every_n_epochs / scales)."]
    else:
        lines = [retention_sentence(chosen, probe) for probe in PROBES if retention_field(probe.name) in chosen]
    return ["<h2>Instructions kept (the chosen cell)</h2>",
            "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>",
            "<p class='note'>Each probe sentence spoken plainly and with each instruction (same text, seed and "
            "scale); effect = instructed minus plain (pace: log ratio of articulation rates, level: dB, pitch: "
            "semitones), retention = this cell's effect over the base model's zero-shot effect with the same voice; "
            "n/a when the base model does not move the measure beyond its noise floor "
            "(docs/instructions_probe.md).</p>"]  # fmt: skip


def presets_section(best: dict | None) -> list[str]:
    """Whether the base model's preset speakers (a CustomVoice base's) kept their voices at the chosen cell."""
    record = (best or {}).get(PRESETS_KEPT)
    if not record:
        return []
    cells = "".join(f"<tr><td>{html.escape(name)}</td><td>{_fmt(value, '{:.3f}')}</td></tr>"
                    for name, value in record["similarity"].items())  # fmt: skip
    why = f" n/a: {html.escape(record['reason'])}." if record.get("reason") else ""
    return [f"<h2>Presets kept (epoch {int(record['epoch'])}, lora_scale {float(record['lora_scale']):g})</h2>",
            f"<table><tr><th>preset</th><th>SIM to its zero-shot voice</th></tr>{cells}</table>",
            f"<p class='note'>Each preset speaker of the base model speaks {len(record['sentences'])} held-out "
            "sentence(s) at scale 0 (the base model: its own voice) and at the chosen cell, same texts and seeds; "
            "SIM = mean resemblyzer similarity of the chosen cell's clips to the mean embedding of its scale-0 "
            f"clips (1 = unchanged; a preset that became another voice reads about 0.7 on espeak-ng).{why} "
            "docs/instructions_probe.md.</p>"]  # fmt: skip


def _naturalness(record: dict, name: str, pattern: str, interval: dict | None = None) -> str:
    """ "2.31 [2.10, 2.52] (real 3.05)": a naturalness score (with its interval, a cell's record) beside its real
    recordings' (a cell's or a row's)."""
    real = record.get(f"real_{name}")
    shown = _with_interval(record.get(name), interval, pattern)
    return shown + (f" (real {pattern.format(real)})" if real is not None else "")


def cell_intervals(best: dict | None, speaker: str | None = None) -> dict[tuple, dict]:
    """(epoch, lora_scale) -> each metric's interval, as the chosen cell records them (none in an older record);
    ``speaker``: that speaker's own."""
    found = {}
    for cell in (best or {}).get("cells") or []:
        own = cell.get("intervals") if speaker is None else (cell.get("intervals_by_speaker") or {}).get(speaker)
        found[(cell["epoch"], float(cell["lora_scale"]))] = own or {}
    return found


def grid_table(cells: list[dict], best: dict | None, intervals: dict[tuple, dict] | None = None) -> str:
    """Epochs down, scales across; each cell shows its metrics (with ``intervals``: (epoch, scale) -> each metric's
    95 % interval), the chosen one highlighted."""
    epochs = sorted({c["epoch"] for c in cells})
    scales = sorted({c["lora_scale"] for c in cells})
    by_key = {(c["epoch"], c["lora_scale"]): c for c in cells}
    intervals = intervals or {}
    head = "".join(f"<th>scale {s:g}</th>" for s in scales)
    lines = [f"<table><tr><th>epoch</th>{head}</tr>"]
    for epoch in epochs:
        tds = []
        for scale in scales:
            cell = by_key.get((epoch, scale))
            chosen = best is not None and (best["epoch"], best["lora_scale"]) == (epoch, scale)
            css = ' class="chosen"' if chosen else ""
            text = _cell_text(cell, intervals.get((epoch, float(scale)))) if cell else ""
            tds.append(f"<td{css}>{text}{' &#9733;' if chosen else ''}</td>")
        lines.append(f"<tr><th>{epoch}</th>{''.join(tds)}</tr>")
    return "\n".join(lines) + "</table>"


def _audio(src: str | None) -> str:
    if not src:
        return "n/a"
    return f'<audio controls preload="none" src="{html.escape(src)}"></audio>'


def sentence_table(rows: list[dict]) -> str:
    """One line per held-out sentence: the real recording beside the synthesized one, with its scores."""
    lines = ["<table><tr><th>sentence</th><th>real</th><th>synthesized</th><th>heard as</th><th>scores</th></tr>"]
    for row in sorted(rows, key=lambda r: (r.get("speaker") or "", r["utt_id"])):
        cap = ", hit the cap" if row.get("hit_max_tokens") else ""
        who = f"<b>{html.escape(row['speaker'])}</b>: " if row.get("speaker") else ""
        metric = row.get("error_metric") or "wer"
        natural = f", OVRL {_naturalness(row, 'dnsmos_ovrl', '{:.2f}')}" if row.get("dnsmos_ovrl") is not None else ""
        scores = (f"{metric.upper()} {_fmt(row.get(metric), '{:.2f}')}, SIM {_fmt(row.get('spk_sim'), '{:.2f}')}, "
                  f"rate {_fmt(row.get('rate_ratio'), '{:.2f}')}{natural}{cap}")  # fmt: skip
        prefix = f" <i>[{PREFIX_LABELS[row['prefix']]}]</i>" if row.get("prefix", UNTAGGED) != UNTAGGED else ""
        lines.append(
            f"<tr><td>{who}{html.escape(row['text'])}{prefix}</td><td>{_audio(row.get('real_wav'))}</td>"
            f"<td>{_audio(row['wav'])}</td><td>{html.escape(row.get('hypothesis') or '')}</td><td>{scores}</td></tr>"
        )
    return "\n".join(lines) + "</table>"


def speaker_tables(cells: list[dict], best: dict | None) -> list[str]:
    """Several speakers: each speaker's own epochs x scales grid (what the cell's combined figures come from)."""
    names = sorted({name for cell in cells for name in cell.get("by_speaker", {})})
    parts = []
    for name in names:
        own = [{"epoch": c["epoch"], "lora_scale": c["lora_scale"], **c["by_speaker"][name]}
               for c in cells if name in c.get("by_speaker", {})]  # fmt: skip
        parts += [f"<h3>{html.escape(name)}</h3>", grid_table(own, best, cell_intervals(best, name))]
    return parts


def plots_svg(cells: list[dict], baselines: dict[str, dict] | None = None) -> str:
    """WER, SIM, rate ratio and naturalness (when measured) against epoch, one line per scale, the zero-shot
    baselines as dashed levels and the real recordings' naturalness as a solid one, as one inline SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plotted = [(name, title) for name, title in PLOTTED
               if name not in REAL_LEVEL or any(c.get(name) is not None for c in cells)]  # fmt: skip
    figure, axes = plt.subplots(1, len(plotted), figsize=(4 * len(plotted), 2.8), layout="constrained")
    for axis, (name, title) in zip(axes, plotted, strict=True):
        for scale in sorted({c["lora_scale"] for c in cells}):
            points = sorted((c["epoch"], c[name]) for c in cells if c["lora_scale"] == scale and c[name] is not None)
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=f"{scale:g}")
        for style, (mode, baseline) in zip(("--", ":", "-."), (baselines or {}).items(), strict=False):
            if baseline.get(name) is not None:
                axis.axhline(baseline[name], color="gray", linestyle=style, label=baseline_label(mode))
        real = [c[REAL_LEVEL[name]] for c in cells if c.get(REAL_LEVEL.get(name)) is not None]
        if real:  # every cell speaks the same sentences: one level
            axis.axhline(sum(real) / len(real), color="black", label="real recordings")
            axis.legend(fontsize=7)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("epoch")
    axes[0].legend(title="lora_scale", fontsize=8)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prolog and doctype: inline SVG in HTML


def render_report(rows: Sequence[dict], best: dict | None, title: str = "Evaluation", head: str = "") -> str:
    """The whole page as a string; ``head`` goes into its ``<head>`` (publish records there what it shows)."""
    rows = list(rows)
    cells = aggregate(rows, ((best or {}).get("rule") or {}).get("speaker_aggregate", "mean"))
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'>{head}<title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]  # fmt: skip
    if best is not None:
        verdict = "" if best.get("passed_filters") else " (no cell passed the filters: see below)"
        parts.append(
            f"<p><b>Chosen: epoch {best['epoch']}, lora_scale {best['lora_scale']:g}</b>{verdict}. "
            f"Rule: {html.escape(best.get('reason', ''))}.</p>"
        )
        sure = (best.get("confidence") or {}).get("summary")
        if sure:  # how sure the choice is, on the first screen (absent from an older chosen cell)
            parts.append(f"<p><b>How sure:</b> {html.escape(sure)}</p>")
    parts += ["<h2>Epochs &times; scales</h2>", grid_table(cells, best, cell_intervals(best))]
    if best is not None and best.get("cells"):
        parts.append("<p class='note'>[low, high]: 95 % interval of the mean over the held-out sentences "
                     "(studentized bootstrap; docs/uncertainty.md); n = sentences.</p>")  # fmt: skip
    parts += retention_section(best, cells)
    parts += presets_section(best)
    baselines = baseline_cells(rows)
    if baselines:  # the base model, zero-shot: what fine-tuning has to beat
        heads = "".join(f"<th>{html.escape(baseline_label(mode))}<br><code>{html.escape(mode)}</code></th>"
                        for mode in baselines)  # fmt: skip
        recorded = (best or {}).get("baselines") or {}
        texts = "".join(f"<td>{_cell_text(cell, (recorded.get(mode) or {}).get('intervals'))}</td>"
                        for mode, cell in baselines.items())  # fmt: skip
        versus = f"<p>{html.escape(best['vs_baseline'])}</p>" if best and best.get("vs_baseline") else ""
        parts += [
            "<h2>Zero-shot baselines (the base model, before training)</h2>",
            f"<table><tr>{heads}</tr><tr>{texts}</tr></table>",
            versus,
            f"<p class='note'>{BASELINES_NOTE} Same sentences, seeds and judges as every cell.</p>",
        ]
    prefixes = sorted({row.get("prefix", UNTAGGED) for row in rows}, key=lambda p: p != UNTAGGED)
    if len(prefixes) > 1:  # language_tag mixed: the cells above pool both calls; here each on its own
        for prefix in prefixes:
            subset = [row for row in rows if row.get("prefix", UNTAGGED) == prefix]
            parts += [f"<h3>Codec prefix: {PREFIX_LABELS[prefix]}</h3>", grid_table(aggregate(subset), best)]
    by_speaker = speaker_tables(cells, best)
    if by_speaker:
        how = ((best or {}).get("rule") or {}).get("speaker_aggregate", "mean")
        parts += [f"<p class='note'>Several speakers: each cell above is the {how} over speakers of each speaker's "
                  "own figures, below.</p>", "<h2>By speaker</h2>", *by_speaker]  # fmt: skip
    parts.append(
        "<p class='note'>WER / CER: ASR word error rate (character error rate for Chinese, Japanese, Korean and "
        "Cantonese) against the text. SIM: speaker similarity to the real recordings. "
        "rate: seconds per spoken word (character in Chinese, Japanese, Korean, Cantonese) of articulated speech, "
        f"pauses of {PAUSE_S} s or more left out, over the real recording's (ASR word time stamps within VAD "
        "speech; 1 = same pace, above 1 slower, below 1 faster; the VAD's alone without ASR). rate (VAD): the "
        "older cross-check, VAD speech seconds over the real recording's, which under-reads pace. "
        "EOS fail: share of generations that hit the token cap. OVRL, SIG, P.808: naturalness, DNSMOS's predicted "
        "listener ratings (1 bad .. 5 excellent; P.835 overall and speech signal, P.808), each beside the real "
        "recordings' own score; a silent clip scores 1.</p>"
    )
    if cells:
        parts += ["<h2>Metrics by epoch</h2>", plots_svg(cells, baselines)]
    if best is not None:
        chosen = [r for r in rows if (r["epoch"], r["lora_scale"]) == (best["epoch"], best["lora_scale"])
                  and not r.get("baseline")]  # fmt: skip
        parts += [f"<h2>Listen: the chosen cell (epoch {best['epoch']}, scale {best['lora_scale']:g})</h2>",
                  sentence_table(chosen)]  # fmt: skip
    for mode in baselines:
        members = [r for r in rows if r.get("baseline") == mode]
        parts += [f"<details><summary>{html.escape(baseline_label(mode))}</summary>", sentence_table(members),
                  "</details>"]  # fmt: skip
    parts.append("<h2>Every cell</h2>")
    for cell in cells:
        members = [r for r in rows if (r["epoch"], r["lora_scale"]) == (cell["epoch"], cell["lora_scale"])
                   and not r.get("baseline")]  # fmt: skip
        parts.append(f"<details><summary>epoch {cell['epoch']}, scale {cell['lora_scale']:g}</summary>")
        parts += [sentence_table(members), "</details>"]
    parts.append("</body></html>\n")
    return "\n".join(parts)
