"""EvalSuite during the demo fit, the listening report in a real browser, and the evaluation plumbing."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch

from qwen_tts_lit.evaluation.heldout import measure_real, read_heldout
from qwen_tts_lit.evaluation.judges import Judges
from qwen_tts_lit.evaluation.progress import STEPS, EvalProgress
from qwen_tts_lit.evaluation.scoring import score_utterances
from qwen_tts_lit.evaluation.settings import JudgeSettings
from qwen_tts_lit.metrics.selection import DNSMOS_FIELDS
from qwen_tts_lit.runs.records import merge_rows
from qwen_tts_lit.synthesis.synthesizer import Utterance

REPO = Path(__file__).resolve().parents[2]
HELDOUT = REPO / "data" / "demo" / "heldout.jsonl"
ROW_FIELDS = ("epoch", "lora_scale", "utt_id", "text", "heldout_text", "seed", "wav", "real_wav", "hypothesis", "wer",
              "spk_sim", "spk_sim_model", "rate_ratio", "words_per_second", "speech_seconds", "real_speech_seconds",
              "frames", "real_frames", "max_new_tokens", "hit_max_tokens")  # fmt: skip


def test_demo_fit_writes_rows_best_json_and_report(demo_run: Path):
    every = [json.loads(line) for line in (demo_run / "eval" / "rows.jsonl").read_text().splitlines()]
    rows = [r for r in every if not r.get("baseline")]
    cells = {(r["epoch"], r["lora_scale"]) for r in rows}
    assert cells == {(0, 0.5), (0, 1.0), (1, 0.5), (1, 1.0)}  # demo: 2 scales, here 2 epochs
    assert len(rows) == 4 * 3  # 3 held-out sentences per cell
    baselines = [r for r in every if r.get("baseline")]  # the base model zero-shot, before the first epoch
    assert sorted((r["baseline"], r["epoch"], r["lora_scale"]) for r in baselines) == sorted(
        [("voice_clone", -1, 0.0)] * 3 + [("xvector", -1, 0.0)] * 3
    )
    assert {r["seed"] for r in baselines} == {r["seed"] for r in rows}  # the same sentences and seeds
    for row in every:
        missing = [f for f in ROW_FIELDS if row.get(f) is None]
        assert not missing, (row["utt_id"], missing)
        assert (demo_run / row["wav"]).is_file() and (demo_run / row["real_wav"]).is_file()
        assert 0 < row["frames"] <= row["max_new_tokens"]
        assert row["hit_max_tokens"] == (row["frames"] == row["max_new_tokens"])
    assert {r["seed"] for r in rows if r["epoch"] == 0} == {r["seed"] for r in rows if r["epoch"] == 1}

    best = json.loads((demo_run / "best.json").read_text())
    assert (best["epoch"], best["lora_scale"]) in cells
    assert best["candidates"] == 4 and best["rule"]["primary"] == "error_rate" and best["ranked_by"] == "error_rate"
    assert all(best["metrics"][m] is not None for m in ("wer", "spk_sim", "rate_ratio", "eos_fail"))
    assert set(best["baselines"]) == {"voice_clone", "xvector"} and best["baselines"]["voice_clone"]["n"] == 3
    assert best["vs_baseline"].startswith("chosen cell vs best zero-shot (")
    report = (demo_run / "report.html").read_text()  # each baseline named for what it is
    assert "zero-shot voice clone (default streaming)" in report and "zero-shot x-vector (scale 0" in report

    metrics = list(csv.DictReader((demo_run / "metrics.csv").open()))
    for name in ("val/wer", "val/spk_sim", "val/rate_ratio", "val/eos_fail", "val/score", "val_scale/wer@0.5",
                 "time/eval_seconds"):  # fmt: skip
        assert len([r for r in metrics if r.get(name)]) == 2, name


def test_demo_fit_judges_naturalness_against_the_real_recordings(demo_run: Path):
    """DNSMOS is on by default: every row (baselines too) carries it beside its real recording's. The tiny random
    model speaks silence (peak -90 dBFS), which scores the floor, 1.0; the real espeak-ng recordings score above."""
    every = [json.loads(line) for line in (demo_run / "eval" / "rows.jsonl").read_text().splitlines()]
    real = {}
    for row in every:
        assert [row[name] for name in DNSMOS_FIELDS] == [1.0] * 4, row["utt_id"]
        real.setdefault(row["utt_id"], {name: row[f"real_{name}"] for name in DNSMOS_FIELDS})
        assert real[row["utt_id"]] == {name: row[f"real_{name}"] for name in DNSMOS_FIELDS}  # measured once
    assert all(1.5 < scores["dnsmos_ovrl"] < 4.5 for scores in real.values()), real
    best = json.loads((demo_run / "best.json").read_text())
    mean_real = sum(scores["dnsmos_ovrl"] for scores in real.values()) / len(real)
    assert best["metrics"]["dnsmos_ovrl"] == 1.0 and best["metrics"]["real_dnsmos_ovrl"] == pytest.approx(mean_real)
    assert best["baselines"]["xvector"]["dnsmos_ovrl"] == 1.0 and "dnsmos_ovrl +0.000" in best["vs_baseline"]
    assert best["intervals"]["dnsmos_ovrl"] == {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 3, "level": 0.95}
    assert f"OVRL 1.00 [1.00, 1.00] (real {mean_real:.2f})" in (demo_run / "report.html").read_text()  # its interval
    metrics = list(csv.DictReader((demo_run / "metrics.csv").open()))
    assert [float(r["val/dnsmos_ovrl"]) for r in metrics if r.get("val/dnsmos_ovrl")] == [1.0, 1.0]


def test_report_opens_in_headless_chromium_without_console_errors(demo_run: Path, tmp_path: Path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium package is not installed (CI installs it)")

    def open_page(page: Path) -> tuple[str, list[str]]:
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return result.stdout, [line for line in result.stderr.splitlines() if ":CONSOLE" in line]

    broken = tmp_path / "broken.html"  # the check itself must see a console error when there is one
    broken.write_text("<html><body><script>console.error('control'); missingFunction();</script></body></html>")
    assert len(open_page(broken)[1]) == 2

    dom, console = open_page(demo_run / "report.html")
    assert console == []
    assert "<svg" in dom and "Chosen: epoch" in dom and "Zero-shot baselines" in dom
    assert "zero-shot voice clone (default streaming)" in dom and "zero-shot x-vector (scale 0, training layout)" in dom
    sources = re.findall(r'<audio[^>]*\ssrc="([^"]+)"', dom)
    rows = (demo_run / "eval" / "rows.jsonl").read_text().splitlines()
    assert len(sources) >= 2 * len(rows)  # every cell's sentences with their real recordings, plus the chosen cell
    missing = [source for source in sources if not (demo_run / source).is_file()]
    assert not missing


@pytest.fixture(scope="module")
def judges() -> Judges:
    # DNSMOS off: it would add ~6 s to each measure_real of the 2 s held-out clips (7 windows each); its rows are
    # tested in tests/evaluation/test_naturalness.py and, through a real fit, in the demo test above.
    return Judges(JudgeSettings(dnsmos=False))


def test_a_real_recording_scored_as_a_synthesis_matches_itself(judges: Judges):
    """The plumbing, end to end on real speech: WER low, rate 1, same speaker, right frame counts; the judges score
    the clips two per call and the progress bar walks through each step."""
    items = read_heldout(HELDOUT, limit=3)
    real = measure_real(items, judges)
    utterances = []
    for item in items:
        wav, rate = sf.read(str(item.audio), dtype="float32")
        assert rate == 24000
        frames = int(np.ceil(len(wav) / 1920))
        utterances.append(Utterance(item.text, 0, wav, torch.zeros(frames, 16), frames, 100, False, 0.0))
    bar = io.StringIO()
    with EvalProgress(1, 1, 3, file=bar) as progress:
        rows = score_utterances(items, utterances, judges, real, progress=progress, batch_size=2)
    for scores, utterance in zip(rows, utterances, strict=True):
        assert scores["wer"] <= 0.2, scores["hypothesis"]
        assert scores["rate_ratio"] == pytest.approx(1.0)
        assert scores["spk_sim"] > 0.8
        assert scores["real_frames"] == utterance.frames and scores["frames"] == utterance.frames
    shown = bar.getvalue()
    assert all(f"evaluating epoch 1: {step}" in shown for step in ("ASR", "speaker", "VAD")), shown
    assert "3/3" in shown and "1 cells x 3 sentences" in shown


def test_an_epoch_is_spoken_in_batches_with_a_progress_bar(tiny_model, judges: Judges, tmp_path: Path, capsys):
    """evaluate_epoch on the tiny model: 3 sentences in generate calls of 2, one row per clip, the bar on stderr."""
    from qwen_tts_lit.evaluation.scoring import evaluate_epoch
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

    real = measure_real(read_heldout(HELDOUT, limit=3), judges)
    xvector = torch.randn(64, generator=torch.Generator().manual_seed(0))
    synthesizer = Synthesizer(tiny_model, Voice(xvector=xvector))
    calls = []
    original = synthesizer.synthesize
    synthesizer.synthesize = lambda texts, **kw: calls.append(len(texts)) or original(texts, **kw)
    rows = evaluate_epoch(synthesizer, judges, real, tmp_path, 0, [1.0], 7, 3, {None: xvector}, batch_size=2,
                          show_progress=True)  # fmt: skip
    assert calls == [2, 1] and [r["seed"] for r in rows] == [7, 8, 9]
    assert all((tmp_path / r["wav"]).is_file() and r["frames"] <= 3 for r in rows)
    shown = capsys.readouterr().err
    assert all(f"evaluating epoch 0: {step}" in shown for step in STEPS if step != "naturalness"), shown


def test_each_speaker_is_spoken_with_its_own_x_vector_and_judged_against_its_own_voice(
    tiny_model, judges: Judges, prepared_speakers: Path, tmp_path: Path
):
    """Several speakers: each held-out row is spoken with its speaker's x-vector, its spk_sim is to that speaker's
    real recordings, and its row names the speaker; a row naming no known speaker is refused."""
    from qwen_tts_lit.data.dataset import load_voices
    from qwen_tts_lit.evaluation.scoring import evaluate_epoch
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

    _, voices = load_voices(prepared_speakers)
    items = read_heldout(prepared_speakers / "val.jsonl", limit=1)  # the first row of each speaker
    assert [item.speaker for item in items] == ["ann", "bob", "cleo"]
    real = measure_real(items, judges)
    assert set(real.voices) == {"ann", "bob", "cleo"}
    synthesizer = Synthesizer(tiny_model, Voice(xvector=voices["ann"]))
    spoken_with = []
    original = synthesizer.synthesize
    synthesizer.synthesize = lambda texts, **kw: spoken_with.append(synthesizer.voice.xvector) or original(texts, **kw)
    rows = evaluate_epoch(synthesizer, judges, real, tmp_path, 0, [1.0], 7, 3, voices, batch_size=8)
    assert [r["speaker"] for r in rows] == ["ann", "bob", "cleo"] and [r["seed"] for r in rows] == [7, 8, 9]
    assert all(torch.equal(x, voices[name]) for x, name in zip(spoken_with, ["ann", "bob", "cleo"], strict=True))
    for row, item in zip(rows, items, strict=True):
        wav, _ = sf.read(str(tmp_path / row["wav"]), dtype="float32")
        assert row["spk_sim"] == pytest.approx(judges.speaker.similarity(wav, 24000, real.voices[item.speaker]),
                                               abs=1e-5)  # fmt: skip
    with pytest.raises(Exception, match="names no speaker"):
        evaluate_epoch(synthesizer, judges, measure_real(read_heldout(HELDOUT, limit=1), judges), tmp_path, 0,
                       [1.0], 7, 3, voices)  # fmt: skip


def test_read_heldout_names_the_line_and_field(tmp_path: Path):
    manifest = tmp_path / "h.jsonl"
    manifest.write_text('{"text": "fine", "audio": "a.wav"}\n')
    with pytest.raises(Exception, match=r"h.jsonl, line 1, field audio: .*a.wav not found"):
        read_heldout(manifest)
    manifest.write_text('{"text": "no audio field"}\n')
    with pytest.raises(Exception, match=r"line 1: needs JSON with 'text' and 'audio'"):
        read_heldout(manifest)


def test_merge_rows_replaces_rescored_cells_only():
    old = [{"epoch": 0, "lora_scale": 0.5, "utt_id": "a", "wer": 1.0}, {"epoch": 1, "lora_scale": 0.5, "utt_id": "a"}]
    new = [{"epoch": 0, "lora_scale": 0.5, "utt_id": "a", "wer": 0.2}]
    merged = merge_rows(old, new)
    assert merged == [new[0], old[1]]


def test_eval_suite_refuses_bad_scales_and_warns_on_an_uncapped_sweep():
    from qwen_tts_lit.callbacks import EvalSuite

    with pytest.raises(ValueError, match="scales"):
        EvalSuite(scales=[0.3, 3.0])
    with pytest.warns(UserWarning, match="above the ceiling"):
        EvalSuite(max_new_tokens=100_000)


@pytest.fixture(scope="module")
def chinese_heldout(tmp_path_factory) -> Path:
    """Two Chinese held-out sentences spoken by espeak-ng (Mandarin voice), as a held-out manifest."""
    folder = tmp_path_factory.mktemp("zh")
    rows = [("zh_1", "今天早上的火车晚了十二分钟。"), ("zh_2", "她把雨伞忘在公共汽车上了。")]
    for utt_id, text in rows:
        subprocess.run(["espeak-ng", "-v", "cmn", "-s", "150", "-w", str(folder / f"{utt_id}.wav"), text], check=True)
    manifest = folder / "heldout.jsonl"
    manifest.write_text("".join(json.dumps({"id": u, "text": t, "audio": f"{u}.wav", "language": "chinese"},
                                           ensure_ascii=False) + "\n" for u, t in rows))  # fmt: skip
    return manifest


class TrainingWouldStart(Exception):
    pass


class StopAtFitStart(L.Callback):
    """First in the callbacks: setup is over and training would begin (before the baselines are spoken)."""

    def on_fit_start(self, trainer, pl_module) -> None:
        raise TrainingWouldStart


def test_a_chinese_held_out_set_with_the_english_only_judge_stops_before_training(
    chinese_heldout: Path, tiny_dir: Path, prepared_demo: Path, tmp_path: Path
):
    """Exit 2 at setup (UserError), naming the languages and both ways out, before the model is loaded; the opt-out
    passes the same check. Through a real ``Trainer.fit``, where setup also reads the datamodule's validation split
    (the test called ``setup`` by hand with a stand-in trainer before)."""
    from qwen_tts_lit.callbacks import EvalSuite
    from qwen_tts_lit.data.datamodule import QwenTTSDataModule
    from qwen_tts_lit.errors import UserError
    from qwen_tts_lit.evaluation.settings import JudgeSettings
    from qwen_tts_lit.train.module import QwenTTSModule

    def fit(module: QwenTTSModule, suite: EvalSuite) -> None:
        trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            callbacks=[StopAtFitStart(), suite], default_root_dir=tmp_path)  # fmt: skip
        trainer.fit(module, datamodule=QwenTTSDataModule(prepared_dir=str(prepared_demo), model=str(tiny_dir)))

    module = QwenTTSModule(model=str(tiny_dir))
    with pytest.raises(UserError, match=r"held-out language\(s\) zh, but the ASR judge \(the bundled tiny.en\)"):
        fit(module, EvalSuite(heldout=str(chinese_heldout)))
    assert module.tts is None  # refused before configure_model: nothing loaded, nothing trained
    with pytest.raises(TrainingWouldStart):
        no_asr = EvalSuite(heldout=str(chinese_heldout), judges=JudgeSettings(asr=False))
        fit(QwenTTSModule(model=str(tiny_dir)), no_asr)


def test_chinese_speech_scored_without_asr_reports_cer_as_not_computed(chinese_heldout: Path, judges: Judges,
                                                                       monkeypatch):  # fmt: skip
    """The opt-out on real Chinese speech: rows say their metric is CER and carry none (null), speaker similarity
    and rate are measured, and the rule ranks on speaker similarity, saying so."""
    from helpers.recordings import recordings_as_utterances

    from qwen_tts_lit.metrics import select_best

    items = read_heldout(chinese_heldout)
    real = measure_real(items, judges)
    utterances = recordings_as_utterances(items)
    monkeypatch.setattr(judges, "asr", None)  # what JudgeSettings(asr=False) builds
    rows = score_utterances(items, utterances, judges, real)
    for row in rows:
        assert row["error_metric"] == "cer" and row["hypothesis"] is None
        assert row["cer"] is None and row["wer"] is None and row["error_rate"] is None
        assert row["spk_sim"] > 0.8 and row["rate_ratio"] == pytest.approx(1.0, abs=0.05)
    rows = [dict(row, epoch=0, lora_scale=1.0, utt_id=item.utt_id) for row, item in zip(rows, items, strict=True)]
    best = select_best(rows)
    assert best["ranked_by"] == "spk_sim" and best["unscored_rows"] == {"error_rate": 2}


def test_mixed_language_tags_evaluate_both_calls(tiny_model, judges: Judges, tmp_path: Path, monkeypatch):
    """A model trained with language_tag mixed is evaluated with both codec prefixes: each sentence is spoken with
    the language omitted ("auto") and with its language, the rows say which, and the report shows each."""
    from dataclasses import replace

    from qwen_tts_lit.errors import UserError
    from qwen_tts_lit.evaluation.report import render_report
    from qwen_tts_lit.evaluation.scoring import check_prefixes, evaluate_epoch
    from qwen_tts_lit.metrics import select_best
    from qwen_tts_lit.model.layout import trained_prefixes
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

    items = read_heldout(HELDOUT, limit=2)
    with pytest.raises(UserError, match="name no language, but the model was trained with the language"):
        check_prefixes(items, trained_prefixes("mixed"), "heldout.jsonl")  # the demo list names no language
    items = [replace(item, language="english") for item in items]
    real = measure_real(items, judges)
    asked, generate = [], tiny_model.model.generate
    monkeypatch.setattr(tiny_model.model, "generate", lambda **kw: asked.append(kw["languages"]) or generate(**kw))
    synthesizer = Synthesizer(tiny_model, Voice(xvector=torch.randn(64, generator=torch.Generator().manual_seed(0))))
    rows = evaluate_epoch(synthesizer, judges, real, tmp_path, 0, [1.0], 7, 2, {None: synthesizer.voice.xvector},
                          batch_size=4, prefixes=trained_prefixes("mixed"))  # fmt: skip
    assert asked == [["auto", "english", "auto", "english"]]
    assert [(r["utt_id"], r["prefix"], r["seed"]) for r in rows] == [
        (items[0].utt_id, "untagged", 7), (items[0].utt_id, "tagged", 7),
        (items[1].utt_id, "untagged", 8), (items[1].utt_id, "tagged", 8),
    ]  # fmt: skip
    assert rows[1]["wav"].endswith(".tagged.wav") and len({r["wav"] for r in rows}) == 4
    page = render_report(rows, select_best(rows))
    assert "Codec prefix: language omitted" in page and "Codec prefix: explicit language" in page


def test_a_held_out_text_is_scored_as_the_synthesizer_spoke_it():
    """The Synthesizer speaks a held-out transcript without its non-speech tags, so they are not scored as missed
    words either: the reference of WER and speech rate is the utterance's text (with item.text: WER 0.2, 5 words/s)."""
    from qwen_tts_lit.evaluation.heldout import HeldOut, RealRecordings
    from qwen_tts_lit.evaluation.scoring import metric_fields
    from qwen_tts_lit.metrics.asr import Transcript
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer

    item = HeldOut("a", "The train <laugh> was late.", Path("a.wav"), "english")
    spoken = Synthesizer.spoken_text(item.text).text
    utterance = Utterance(spoken, 0, np.zeros(24000, np.float32), torch.zeros(12, 16), 12, 100, False, 0.0)
    real = RealRecordings([item], {"a": 1.0}, {"a": 1.0}, np.zeros(256, np.float32))
    row = metric_fields(item, utterance, real, Transcript("the train was late"), 0.9, None, [(0.0, 1.0)])
    assert row["wer"] == 0.0 and row["words_per_second"] == 4.0


def test_a_rows_text_is_what_was_spoken_and_its_wer_recomputes_from_the_row(tiny_model, judges: Judges,
                                                                            tmp_path: Path):  # fmt: skip
    """A held-out transcript with a non-speech tag: its row's ``text`` is the text as spoken and scored, so WER
    recomputed from the row alone (text, hypothesis, language) with the project's error rate is the row's ``wer``;
    the transcript as written is ``heldout_text``. The real ``synthesize`` cleans and speaks each text; its audio is
    then swapped for the sentence's real recording, since the tiny model's near-silence scores 1.0 against any
    reference and could not tell the two texts apart (the last assert shows these clips do)."""
    from dataclasses import replace

    from qwen_tts_lit.analysis import load_rows
    from qwen_tts_lit.evaluation.publish import publish
    from qwen_tts_lit.evaluation.scoring import evaluate_epoch
    from qwen_tts_lit.languages.rules import language_code
    from qwen_tts_lit.metrics import SelectionRule, error_rate
    from qwen_tts_lit.runs.records import read_rows
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

    items = [replace(item, text=item.text.replace(" ", " [breath] ", 1), language="english")
             for item in read_heldout(HELDOUT, limit=2)]  # fmt: skip
    real = measure_real(items, judges)
    recorded = {7 + i: sf.read(str(item.audio), dtype="float32")[0] for i, item in enumerate(items)}
    synthesizer = Synthesizer(tiny_model, Voice(xvector=torch.randn(64, generator=torch.Generator().manual_seed(0))))
    speak = synthesizer.synthesize

    def speak_then_play_the_recording(texts, **kw):
        return [replace(utterance, wav=recorded[utterance.seed]) for utterance in speak(texts, **kw)]

    synthesizer.synthesize = speak_then_play_the_recording
    rows = evaluate_epoch(synthesizer, judges, real, tmp_path, 0, [1.0], 7, 3, {None: synthesizer.voice.xvector})
    publish(tmp_path, rows, SelectionRule())
    stored = read_rows(tmp_path)
    for row, item in zip(stored, items, strict=True):
        recomputed = error_rate(row["text"], row["hypothesis"], language_code(row["language"]))
        assert row["error_metric"] == "wer" and recomputed == row["wer"] == row["error_rate"]
        assert row["text"] == Synthesizer.spoken_text(item.text).text == item.text.replace(" [breath]", "")
        assert row["heldout_text"] == item.text and "[breath]" in item.text
        assert error_rate(row["heldout_text"], row["hypothesis"], "en") != row["wer"]  # the tag would count
    assert load_rows(tmp_path).drop(columns="frame_ratio").to_dict("records") == stored  # analysis reads the same
