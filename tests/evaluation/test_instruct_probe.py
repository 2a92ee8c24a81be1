"""The instruction-retention probe end to end on real speech: espeak-ng as an instructed speaker (it follows the
probe's instructions by changing its speed, amplitude and pitch: tests/helpers/espeak_voice.py), measured by the
real judges (faster-whisper words within silero-vad speech for pace; level and F0 for the others), the effects
written into evaluation rows and read by the selection rule. Oracles: a speaker against itself retains 1, one that
ignores the instructions 0, one that does the opposite a negative share, one half as strong less than all; a base
model that does not follow an instruction gives NaN with its reason, never a number."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from helpers.espeak_voice import EspeakSpeaker

from qwen_tts_lit.evaluation.instruct_probe import ProbeMeasures, ProbeSentence, attach, base_effects, probe_effects
from qwen_tts_lit.metrics.instructions import (
    PROBES,
    RETENTION,
    cell_retention,
    effect_field,
    reason_field,
    retention,
    retention_field,
    retention_sentence,
)
from qwen_tts_lit.metrics.selection import SelectionRule, aggregate, select_best

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt)")
SENTENCES = (ProbeSentence("s0", "The morning train was late again, so we walked to the old harbour.", 1234),)
INSTRUCTIONS = {i.text: i.key for p in PROBES for i in p.instructions}


@pytest.fixture(scope="module")
def measures() -> ProbeMeasures:
    """Pace from silero-vad's speech alone (the probe's rate without the ASR judge; the ASR path is tested once,
    below: Whisper on every clip of five speakers would cost the suite 15 s)."""
    from qwen_tts_lit.metrics.speech_rate import SpeechDetector

    return ProbeMeasures(None, SpeechDetector())


@pytest.fixture(scope="module")
def effects(measures: ProbeMeasures) -> dict:
    """{speaker name: its effects}, each measured once for the module."""
    speakers = {
        "base": EspeakSpeaker(INSTRUCTIONS),
        "ignores": EspeakSpeaker(INSTRUCTIONS, strength=0.0),
        "half": EspeakSpeaker(INSTRUCTIONS, strength=0.5),
        "opposite": EspeakSpeaker(INSTRUCTIONS, strength=-0.5),
        "other_voice": EspeakSpeaker(INSTRUCTIONS, voice="en-gb-x-rp"),  # (en-gb ignores +whisper)
    }
    return {name: probe_effects(speaker, SENTENCES, PROBES, measures) for name, speaker in speakers.items()}


def cell(effects: dict, epoch: int, wer: float, reference: dict, baseline: str | None = None) -> list[dict]:
    rows = [{"epoch": epoch, "lora_scale": 1.0, "utt_id": s.utt_id, "wer": wer, "error_rate": wer, "spk_sim": 0.8,
             "rate_ratio": 1.0, "hit_max_tokens": False, "text": s.text, "wav": f"{s.utt_id}.wav",
             **({"baseline": baseline} if baseline else {})}
            for s in SENTENCES]  # fmt: skip
    return attach(rows, effects, 1.0, PROBES, reference)


def test_the_base_speaker_moves_every_measure_the_way_asked(effects: dict) -> None:
    for utt, fields in effects["base"].items():
        # espeak-ng -s 100 vs 260 (2.6x) reads as a pace ratio of 1.8-2.8 (VAD speech with pauses cut out
        # under-reads pace: docs/speech_rate.md); -a 40 vs 180 is 20 log10(4.5) = 13.1 dB; -p 15 vs 90 several
        # semitones.
        assert 0.59 < fields[effect_field("pace")] < 1.03, utt  # ln(1.8) .. ln(2.8)
        assert fields[effect_field("loudness")] == pytest.approx(13.1, abs=1.5), utt
        assert fields[effect_field("whisper")] > 2, utt
        assert fields[effect_field("pitch")] > 5, utt
        assert fields[effect_field("slow")] < 0 < fields[effect_field("fast")], utt
        assert fields[effect_field("low")] < 0 < fields[effect_field("high")], utt


def test_retention_against_the_base(effects: dict) -> None:
    reference = base_effects(cell(effects["base"], -1, 0.1, {}, baseline="xvector"), PROBES)
    cells = {name: aggregate(cell(effects[name], 0, 0.1, reference))[0] for name in effects}
    for probe in PROBES:
        name = retention_field(probe.name)
        assert cells["base"][name] == pytest.approx(1.0), probe.name  # the same speaker: all of it
        assert cells["ignores"][name] == pytest.approx(0.0, abs=1e-9), probe.name  # identical clips: none
        if probe.name != "whisper":  # the double whispers or not (no half whisper)
            assert 0.2 < cells["half"][name] < 0.85, probe.name
            assert cells["opposite"][name] < -0.2, probe.name
        assert 0.6 < cells["other_voice"][name] < 1.5, probe.name  # another voice following the same way
    assert cells["ignores"][RETENTION] == pytest.approx(0.0, abs=1e-9)
    assert cells["base"][RETENTION] == pytest.approx(1.0)
    sentence = retention_sentence(cells["half"], PROBES[0])
    assert sentence.startswith("retained 0.") and "of the base model's slow-vs-fast effect" in sentence


def test_no_reference_is_nan_with_its_reason(effects: dict) -> None:
    # The base model ignores instructions (the tiny model's case): every probe has nothing to retain.
    reference = base_effects(cell(effects["ignores"], -1, 0.1, {}, baseline="xvector"), PROBES)
    (measured,) = aggregate(cell(effects["base"], 0, 0.1, reference))
    for probe in PROBES:
        assert math.isnan(measured[retention_field(probe.name)])
        assert "too little" in measured[reason_field(probe.name)] and "nothing to retain" in measured[
            reason_field(probe.name)]  # fmt: skip
    assert math.isnan(measured[RETENTION]) and measured["instruct_retention_probe"] is None
    assert "no retention" in retention_sentence(measured, PROBES[0])
    # The wrong way, not measured, and a cell without probe rows.
    assert retention(0.5, -0.3, "rate")[1].startswith("the base model moves it the wrong way")
    assert "not measured" in retention(0.5, None, "level")[1]
    assert "not measured" in retention(None, 3.0, "level")[1]
    assert cell_retention({"wer": 0.1}) == {}


def test_the_rule_gates_and_ranks_on_retention(effects: dict) -> None:
    baseline = cell(effects["base"], -1, 0.3, {}, baseline="xvector")
    reference = base_effects(baseline, PROBES)
    # Epoch 0 keeps the instructions, epoch 1 forgot them but reads better.
    rows = baseline + cell(effects["base"], 0, 0.2, reference) + cell(effects["ignores"], 1, 0.1, reference)
    assert select_best(rows)["epoch"] == 1  # default: retention is shown, not required
    gated = select_best(rows, SelectionRule(min_instruct_retention=0.5))
    assert gated["epoch"] == 0 and "instruct_retention >= 0.5" in gated["reason"]
    assert gated["metrics"][RETENTION] == pytest.approx(1.0)
    secondary = select_best(rows, SelectionRule(primary="instruct_retention", tie_break=("error_rate",)))
    assert secondary["epoch"] == 0
    # Without probe rows the gate fails every cell, and says so.
    plain = [{k: v for k, v in row.items() if not k.startswith("instruct_")} for row in rows]
    assert not select_best(plain, SelectionRule(min_instruct_retention=0.5))["passed_filters"]
    # The report shows it per cell, and the chosen cell's sentence per probe.
    from qwen_tts_lit.evaluation.report import render_report

    page = render_report(rows, gated)
    assert page.count("instructions kept 1.00") >= 1 and "instructions kept 0.00" in page
    assert "retained 1.00 of the base model&#x27;s slow-vs-fast effect" in page
    assert "Instructions kept" not in render_report(plain, select_best(plain))


@pytest.fixture(scope="module")
def judges():
    from qwen_tts_lit.evaluation.judges import Judges
    from qwen_tts_lit.evaluation.settings import JudgeSettings

    return Judges(JudgeSettings(dnsmos=False, model_speaker_sim=False))


def test_pace_through_the_asr_and_vad_judges(judges) -> None:
    """The pace probe as evaluation runs it with the ASR judge: faster-whisper's words within silero-vad's speech
    (``metrics.speech_rate.articulated_seconds``), pauses cut out."""
    from qwen_tts_lit.metrics.instructions import probes_named

    speaker = EspeakSpeaker(INSTRUCTIONS)
    (fields,) = probe_effects(
        speaker, SENTENCES, probes_named(["pace"]), ProbeMeasures(judges.asr, judges.vad)
    ).values()
    assert speaker.calls == 1 and set(fields) == {effect_field(k) for k in ("slow", "fast", "pace")}
    assert math.log(2.0) < fields[effect_field("pace")] < math.log(2.9)  # 2.6x espeak-ng's words per minute


def test_settings_refuse_what_cannot_work() -> None:
    from qwen_tts_lit.errors import UserError
    from qwen_tts_lit.evaluation.settings import EvalSettings, InstructProbeSettings

    assert not EvalSettings().instruct_probe.enabled  # off by default
    with pytest.raises(UserError, match="rule.min_instruct_retention 0.5: needs the instruction probe"):
        EvalSettings(rule=SelectionRule(min_instruct_retention=0.5))
    with pytest.raises(UserError, match="needs the 'xvector' baseline"):
        EvalSettings(instruct_probe=InstructProbeSettings(enabled=True), baselines=("voice_clone",))
    with pytest.raises(UserError, match=r"instruct_probe.sentences 0: must be >= 1(.|\n)*'loud' not among"):
        EvalSettings(instruct_probe=InstructProbeSettings(sentences=0, probes=("loud",)))
    parsed = EvalSettings.from_args({"instruct_probe": {"enabled": True, "scales": [1.0, 0.5], "probes": ["pace"]}})
    assert parsed.instruct_probe == InstructProbeSettings(enabled=True, scales=(0.5, 1.0), probes=("pace",))


def test_presets_kept_compares_each_preset_with_its_own_zero_shot_voice(judges) -> None:
    """Two "presets" (espeak-ng voices), each speaking the sentences at scale 0 and at the chosen cell: one kept (the
    same voice, at another pitch setting of the same speaker), one damaged (it became the other voice)."""
    from helpers.espeak_voice import ESPEAK_RATE, espeak

    from qwen_tts_lit.evaluation.instruct_probe import presets_kept

    texts = ["The morning train was late again.", "She left her blue umbrella on the bus.",
             "We planted three apple trees last spring."]  # fmt: skip
    ann = [espeak(t, "en-us") for t in texts]
    cleo = [espeak(t, "en-us+f3") for t in texts]
    kept = presets_kept(judges.speaker, {"ann": ann, "cleo": cleo},
                        {"ann": [espeak(t, "en-us", pitch=55) for t in texts], "cleo": ann}, ESPEAK_RATE)  # fmt: skip
    assert set(kept) == {"preset_ann_sim", "preset_cleo_sim"}
    assert kept["preset_ann_sim"] > 0.85  # espeak's same voice: 0.83-0.90 across sentences (FACTS 5)
    assert kept["preset_cleo_sim"] < kept["preset_ann_sim"] - 0.1  # the damaged preset reads lower
    assert presets_kept(judges.speaker, {"ann": ann}, {}, ESPEAK_RATE) == {}
    # A preset whose zero-shot clips are silent (the tiny random model) has no voice to compare with: NaN, not the
    # judge's 0.0 for silence, which would read as "destroyed".
    silent = [np.zeros(ESPEAK_RATE, dtype=np.float32)] * 2
    assert math.isnan(presets_kept(judges.speaker, {"ann": silent}, {"ann": ann[:2]}, ESPEAK_RATE)["preset_ann_sim"])


def test_a_presets_record_stays_with_its_cell_only() -> None:
    """best.json's presets_kept describes one cell's weights: kept when the rule chooses that cell again, dropped
    when it chooses another (a re-score with other judges can move the choice)."""
    from qwen_tts_lit.runs.records import PRESETS_KEPT, carry_presets

    old = {"epoch": 2, "lora_scale": 0.5, PRESETS_KEPT: {"epoch": 2, "lora_scale": 0.5, "similarity": {"a": 0.9}}}
    assert carry_presets(old, {"epoch": 2, "lora_scale": 0.5})[PRESETS_KEPT] == old[PRESETS_KEPT]
    assert PRESETS_KEPT not in carry_presets(old, {"epoch": 2, "lora_scale": 1.0})
    assert PRESETS_KEPT not in carry_presets(old, {"epoch": 1, "lora_scale": 0.5})
    assert PRESETS_KEPT not in carry_presets(None, {"epoch": 2, "lora_scale": 0.5})
