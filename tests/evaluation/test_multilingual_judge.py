"""Non-English speech judged by a real multilingual ASR model through the evaluation's own scoring
(``score_utterances``, as every epoch's evaluation runs it): espeak-ng Spanish and German scored by WER, Mandarin by
CER, each row transcribed in its own language; and rows that name no language, resolved once to the language the
judge detects. The judge is Whisper base (tests/helpers/whisper.py), small enough for
CPU tests and far from large-v3: the sentences are ones it hears well on espeak-ng, and the bounds come from measuring
it (docstrings below)."""

from __future__ import annotations

import json
import subprocess
from copy import copy
from pathlib import Path

import numpy as np
import pytest
from helpers.recordings import recordings_as_utterances

from qwen_tts_lit.evaluation.heldout import HeldOut, RealRecordings, measure_real, read_heldout
from qwen_tts_lit.evaluation.judges import Judges
from qwen_tts_lit.evaluation.scoring import Cell, save_clip, score_utterances
from qwen_tts_lit.evaluation.settings import JudgeSettings, asr_problem
from qwen_tts_lit.metrics import ASR, char_error_rate

# (id, language, espeak-ng voice, text, what espeak-ng reads). Debian's espeak-ng "cmn" voice knows few characters
# and spells the others as pinyin read in English with tone digits; its pinyin voice speaks real Mandarin.
CLIPS = [
    ("es_1", "spanish", "es", "La biblioteca cierra a las nueve de la noche.", None),
    ("es_2", "spanish", "es", "Los niños juegan al fútbol en el parque.", None),
    ("de_1", "german", "de", "Morgen besuchen wir unsere Freunde in Berlin.", None),
    ("zh_1", "chinese", "cmn-latn-pinyin", "我们明天去北京看朋友。",
     "wo3 men5 ming2 tian1 qu4 bei3 jing1 kan4 peng2 you5"),
]  # fmt: skip


@pytest.fixture(scope="module")
def judges(multilingual_whisper: Path) -> Judges:
    return Judges(JudgeSettings(asr_model=str(multilingual_whisper), dnsmos=False))  # the rest: the defaults


@pytest.fixture(scope="module")
def scored(judges: Judges, tmp_path_factory) -> dict:
    """Each clip's row, scored as an epoch's clips are: the real recording stands in for a synthesis."""
    folder = tmp_path_factory.mktemp("languages")
    for utt_id, _, voice, text, spoken in CLIPS:
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(folder / f"{utt_id}.wav"), spoken or text], check=True)
    manifest = folder / "heldout.jsonl"
    manifest.write_text("".join(json.dumps({"id": u, "text": t, "audio": f"{u}.wav", "language": lang},
                                           ensure_ascii=False) + "\n" for u, lang, _, t, _ in CLIPS))  # fmt: skip
    items = read_heldout(manifest)
    real = measure_real(items, judges)
    utterances = recordings_as_utterances(items)
    rows = score_utterances(items, utterances, judges, real)
    spanish = [i for i, item in enumerate(items) if item.language == "spanish"]
    english_only = copy(judges)
    english_only.asr = ASR()  # the bundled tiny.en, which setup refuses for Spanish: here it judges anyway
    by_tiny_en = score_utterances([items[i] for i in spanish], [utterances[i] for i in spanish], english_only, real)
    for item, row in [*zip(items, rows, strict=True), *zip(["tiny.en"] * len(spanish), by_tiny_en, strict=True)]:
        print(getattr(item, "utt_id", item), row["error_metric"], round(row["error_rate"], 3), row["hypothesis"])
    return {"rows": dict(zip([item.utt_id for item in items], rows, strict=True)), "by_tiny_en": by_tiny_en}


def test_the_judge_is_multilingual_and_passes_the_setup_check(judges: Judges, multilingual_whisper: Path):
    assert judges.asr.multilingual  # what the loaded model says of itself
    languages = {"spanish", "german", "chinese"}
    assert asr_problem(JudgeSettings(asr_model=str(multilingual_whisper)), languages, "x") is None
    assert "English-only" in asr_problem(JudgeSettings(), {"spanish"}, "x")  # the bundled tiny.en is refused


def test_spanish_and_german_are_scored_by_wer_in_their_own_language(scored: dict):
    """Measured (this file with -rP: Whisper base, int8, beam 5): es_1 WER 0.111, es_2 0.125, de_1 0.0. Over six
    sentences each at espeak-ng's default speed it averaged WER 0.63 on Spanish and 0.58 on German, so these are its
    good cases; 0.4 leaves room for another CPU's rounding while a judge that does not speak Spanish scores above 1
    (next test)."""
    rows = scored["rows"]
    for utt_id, words in (("es_1", {"biblioteca", "noche"}), ("es_2", {"niños", "fútbol", "parque"}),
                          ("de_1", {"morgen", "freunde", "berlin"})):  # fmt: skip
        row = rows[utt_id]
        assert row["error_metric"] == "wer" and row["cer"] is None, row
        assert np.isfinite(row["wer"]) and row["wer"] <= 0.4 and row["error_rate"] == row["wer"], row
        assert words <= set(row["hypothesis"].lower().replace(".", "").split()), row["hypothesis"]


def test_the_same_spanish_audio_judged_by_the_english_only_model_fails_the_bound(scored: dict):
    """The control: the same clips and scoring, only the judge changed to one that does not speak Spanish (measured
    WER 1.33 and 1.75: English words invented for the sounds). Forcing the multilingual judge to decode English is no
    control: on these clear Spanish clips Whisper base ignores the language token and writes Spanish anyway."""
    right = np.mean([scored["rows"][u]["wer"] for u in ("es_1", "es_2")])
    wrong = [row["wer"] for row in scored["by_tiny_en"]]
    assert min(wrong) > 0.4 and np.mean(wrong) > right + 0.5, (right, [r["hypothesis"] for r in scored["by_tiny_en"]])


def test_mandarin_is_scored_by_cer(scored: dict):
    """Measured CER 0.1: the one difference is 們 for 们 (Whisper base writes traditional characters)."""
    row = scored["rows"]["zh_1"]
    assert row["error_metric"] == "cer" and row["wer"] is None, row
    assert np.isfinite(row["cer"]) and row["cer"] <= 0.4 and "北京" in row["hypothesis"], row


class DetectsMandarin(ASR):
    """The real Whisper base, but every clip's language detection says Mandarin. Whisper base detects espeak-ng
    Mandarin as Thai (measured on the pinyin voice: th 0.60, 0.54, 0.41 on three sentences; the cmn voice en/th,
    Cantonese th), so this judge's detection is stood in; the decoding in Mandarin is the real model's."""

    def detect(self, audio):
        return [("zh", 1.0)] * len(audio)


def _rows_without_language(folder: Path, judges: Judges, clip: tuple) -> tuple[dict, HeldOut, RealRecordings]:
    """One held-out sentence whose manifest row names no language, measured and scored as an epoch's clips are
    (its real recording standing in for a synthesis), and the row the run would record for it."""
    utt_id, _, voice, text, spoken = clip
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(folder / f"{utt_id}.wav"), spoken or text], check=True)
    manifest = folder / f"{utt_id}.jsonl"
    manifest.write_text(json.dumps({"id": utt_id, "text": text, "audio": f"{utt_id}.wav"}, ensure_ascii=False) + "\n")
    items = read_heldout(manifest)
    real = measure_real(items, judges)
    utterances = recordings_as_utterances(items)
    fields = score_utterances(items, utterances, judges, real)[0]
    record = save_clip(folder / "run", 0, Cell(0, items[0], 1.0), utterances[0], real)
    print(utt_id, fields["error_metric"], fields["error_rate"], fields["hypothesis"], record["language"])
    return record | fields, items[0], real


@pytest.fixture(scope="module")
def detected(multilingual_whisper: Path, tmp_path_factory) -> dict:
    """Rows of sentences without a language, judged by an ASR that detects each clip's language (asr_language
    None): Mandarin (detection stood in, above) and Spanish (Whisper base's own detection)."""
    folder = tmp_path_factory.mktemp("detected")
    judges = Judges(JudgeSettings(asr_model=str(multilingual_whisper), asr_language=None))
    spanish = _rows_without_language(folder, judges, CLIPS[0])
    judges.asr = DetectsMandarin(str(multilingual_whisper), language=None)
    return {"zh_1": _rows_without_language(folder, judges, CLIPS[3]), "es_1": spanish}


def test_a_chinese_row_without_a_language_is_scored_by_cer_in_the_language_the_judge_detected(detected: dict):
    """Issue 21: "auto" was resolved three ways (the cell said "auto", the ASR got "" and detected, scoring fell back
    to "en"), so this row was scored by WER with English rules (measured before the fix, on this code's tests/ against
    the old package: error_metric "wer", WER 1.0 on Whisper's Thai reading of the clip, row language "auto"). Resolved
    once, it is transcribed, scored and recorded as Chinese: CER on the simplified text (measured CER 0.0: Whisper's
    們 is 们 in one script)."""
    row, item, real = detected["zh_1"]
    assert row["error_metric"] == "cer" and row["wer"] is None, row
    assert row["cer"] == row["error_rate"] == char_error_rate(item.text, row["hypothesis"], "zh") <= 0.4, row
    assert "北京" in row["hypothesis"], row
    assert (row["language"], row["language_source"]) == ("chinese", "detected")
    assert real.language_of(item).code == "zh"


def test_a_row_without_a_language_records_the_language_whisper_detected(detected: dict):
    """The same path with Whisper base's own detection (it hears espeak-ng Spanish as Spanish, p 0.93): the row is
    transcribed in Spanish, scored by WER with Spanish rules and records "spanish", found by detection."""
    row, _, _ = detected["es_1"]
    assert (row["language"], row["language_source"]) == ("spanish", "detected")
    assert row["error_metric"] == "wer" and row["wer"] <= 0.4 and "biblioteca" in row["hypothesis"].lower(), row
