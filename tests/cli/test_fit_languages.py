"""A Chinese corpus through the whole pipeline, in process: the run that used to stop at the end of epoch 0 with
``float() argument must be ... not 'NoneType'`` (the rule's primary metric empty for Chinese). Here judged by a
multilingual Whisper (the tests' base model, tests/helpers/whisper.py), so every row is scored by CER, and with
``language_tag: mixed``, so one small fit also shows the trained layouts reaching evaluation and export. The ASR
opt-out on Chinese is tested on real speech in tests/train/test_eval_suite.py."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers.runs import main

SENTENCES = [
    "今天早上的火车晚了十二分钟。", "她把雨伞忘在公共汽车上了。",
    "下雨之前请把窗户关上。", "我们明天去北京看朋友。",
    "这家饭店的面条非常好吃。", "孩子们在公园里踢足球。",
    "请把这封信交给你的老师。", "图书馆晚上九点关门。",
    "他每天早上六点起床跑步。", "这本书我已经看了两遍。",
]  # fmt: skip

pytestmark = pytest.mark.usefixtures("run_cache")  # the base model "tiny" resolves to the session's cache


@pytest.fixture(scope="module")
def chinese_run(tmp_path_factory, multilingual_whisper: Path) -> Path:
    work = tmp_path_factory.mktemp("zh_fit")
    (work / "wavs").mkdir()
    rows = []
    for i, text in enumerate(SENTENCES):
        wav = work / "wavs" / f"zh_{i:02d}.wav"
        subprocess.run(["espeak-ng", "-v", "cmn", "-s", "150", "-w", str(wav), text], check=True)
        rows.append({"audio": f"wavs/{wav.name}", "text": text, "language": "chinese", "id": wav.stem})
    (work / "train_raw.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    demo = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "demo.yaml").read_text())
    callbacks = [c for c in demo["trainer"]["callbacks"] if not c["class_path"].endswith("EvalSuite")]
    callbacks.append({"class_path": "qwen_tts_lit.callbacks.EvalSuite",
                      "init_args": {"scales": [1.0], "num_utterances": 1, "max_new_tokens": 8,
                                    "judges": {"asr_model": str(multilingual_whisper)}}})  # fmt: skip
    demo["trainer"].update(max_epochs=1, callbacks=callbacks, default_root_dir=str(work / "runs"), logger=[
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(work / "runs"),
                                                                            "name": "zh"}}])  # fmt: skip
    demo["data"] = {"raw": str(work / "train_raw.jsonl"), "batch_size": 4, "language_tag": "mixed"}
    config = work / "zh.yaml"
    config.write_text(yaml.safe_dump(demo, allow_unicode=True))
    assert main("fit", "--config", config) == 0
    (run,) = (work / "runs" / "zh").glob("version_*")
    return run


def test_a_chinese_run_finishes_and_says_how_it_chose(chinese_run: Path):
    rows = [json.loads(line) for line in (chinese_run / "eval" / "rows.jsonl").read_text().splitlines()]
    by_sentence = {}
    for row in (r for r in rows if not r.get("baseline")):  # val sentences x both prefixes (mixed) x 1 scale
        by_sentence.setdefault(row["utt_id"], []).append(row["prefix"])
    assert by_sentence and all(sorted(p) == ["tagged", "untagged"] for p in by_sentence.values())
    # Every row transcribed (a string; the tiny model's 8 frames are silence, so "" and CER 1) and scored by CER.
    for row in rows:
        assert row["error_metric"] == "cer" and row["wer"] is None and isinstance(row["hypothesis"], str), row
        assert math.isfinite(row["cer"]) and row["error_rate"] == row["cer"], row
    best = json.loads((chinese_run / "best.json").read_text())
    assert best["ranked_by"] == "error_rate" and best["unscored_rows"] == {}
    assert best["metrics"]["cer"] is not None and best["metrics"]["wer"] is None
    assert {r["baseline"] for r in rows if r.get("baseline")} == {"xvector", "voice_clone"}  # zero-shot, Chinese too
    page = (chinese_run / "report.html").read_text()
    assert re.search(r"CER \d\.\d{3}", page) and "WER/CER n/a" not in page and "Codec prefix: explicit language" in page


def test_its_export_card_names_both_calls(chinese_run: Path, tmp_path: Path):
    out = tmp_path / "cv"
    assert main("export", "--run", chinese_run, "--output", out, "--speaker_name", "zh") == 0
    meta = json.loads((out / "qwen_tts_lit.json").read_text())
    assert meta["language_tag"] == "mixed" and meta["trained_prefixes"] == ["untagged", "tagged"]
    card = (out / "README.md").read_text()
    assert 'speaker="zh")  # language omitted' in card and 'speaker="zh", language="English")' in card
