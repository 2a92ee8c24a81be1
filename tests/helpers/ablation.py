"""Hand-built run folders (the files EvalSuite, LightningCLI and ablate write) for the analysis and ablate tests."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from qwen_tts_lit.metrics.selection import select_best


def eval_row(epoch: int, scale: float, utt: str, **values) -> dict:
    """One eval/rows.jsonl row with plausible defaults; ``values`` override any field."""
    row = {
        "epoch": epoch, "lora_scale": scale, "utt_id": utt, "text": f"text of {utt}", "heldout_text": f"text of {utt}",
        "hypothesis": f"text of {utt}",
        "wer": 0.1, "cer": 0.05, "spk_sim": 0.8, "spk_sim_model": 0.9, "rate_ratio": 1.0, "words_per_second": 3.0,
        "speech_seconds": 2.0, "real_speech_seconds": 2.0, "frames": 30, "real_frames": 30, "hit_max_tokens": False,
        "seed": 1234, "wav": f"eval/epoch={epoch:03d}/scale={scale:g}/{utt}.wav",
    }  # fmt: skip
    return row | values


def write_run(
    folder: Path,
    rows: list[dict] | None = None,
    best: dict | None | bool = True,
    metrics_csv: str | None = None,
    max_epochs: int = 2,
    seed: int = 0,
    status: dict | None = None,
) -> Path:
    """A run folder: config.yaml, optional rows.jsonl, best.json (True: select_best(rows)), metrics.csv, ablate.json."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"seed_everything": seed, "trainer": {"max_epochs": max_epochs}, "model": {"seed": seed}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    if rows is not None:
        (folder / "eval").mkdir(exist_ok=True)
        (folder / "eval" / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if best is True:
        best = select_best(rows) if rows else None
    if best:
        (folder / "best.json").write_text(json.dumps(best))
    if metrics_csv is not None:
        (folder / "metrics.csv").write_text(metrics_csv)
    if status is not None:
        (folder / "ablate.json").write_text(json.dumps(status))
    return folder
