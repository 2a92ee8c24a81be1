"""``fit --config configs/demo.yaml --model.model tiny_custom_voice`` with the instruction probe on, through the CLI in
process: the real Synthesizer speaks the probe's instructions (base model at scale 0, then the chosen cell), the rows
carry the probe's fields and ``best.json`` retention NaN with its reason; when fit ends each of the tiny CustomVoice's
three presets speaks the held-out sentence at scale 0 and at the chosen cell, and ``best.json`` and the report
record it (``presets_kept``). A spy records every ``Synthesizer.synthesize`` call; the tiny random model speaks
silence, so the similarities are null with their reason (the helper is tested on espeak-ng voices in
tests/evaluation/test_instruct_probe.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.runs import main

from qwen_tts_lit.metrics.audio import is_silent
from qwen_tts_lit.metrics.instructions import PROBES, reason_field, retention_field

REPO = Path(__file__).resolve().parents[2]
PROBED = ("pace", "loudness")
PRESETS = ["dylan", "ryan", "vivian"]

pytestmark = pytest.mark.usefixtures("run_cache")


@pytest.fixture(scope="module")
def probed_run(tmp_path_factory, tiny_custom_voice_dir):
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer

    work = tmp_path_factory.mktemp("cv_probe")
    calls = []
    original = Synthesizer.synthesize

    def spy(self, texts, seeds=0, lora_scale=1.0, max_new_tokens=None, batch_size=1, languages=None,
            instructs=None):  # fmt: skip
        spoken = original(self, texts, seeds, lora_scale, max_new_tokens, batch_size, languages, instructs)
        calls.append({"speaker": self.voice.speaker, "texts": list(texts), "instructs": instructs, "seeds": seeds,
                      "scale": lora_scale, "wavs": [u.wav for u in spoken]})  # fmt: skip
        return spoken

    suite = "--trainer.callbacks.init_args."  # the last callback of demo.yaml is the EvalSuite
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Synthesizer, "synthesize", spy)
        patch.chdir(work)  # demo.yaml's loggers write under ./runs
        code = main("fit", "--config", REPO / "configs" / "demo.yaml", "--model.model", "tiny_custom_voice",
                    "--data.raw", REPO / "data" / "demo" / "raw" / "train_raw.jsonl", "--trainer.max_epochs", "1",
                    "--trainer.enable_progress_bar", "false", f"{suite}num_utterances", "1",
                    f"{suite}max_new_tokens", "6", f"{suite}judges.asr", "false", f"{suite}judges.dnsmos", "false",
                    f"{suite}instruct_probe.enabled", "true", f"{suite}instruct_probe.every_n_epochs", "1",
                    f"{suite}instruct_probe.sentences", "1", f"{suite}instruct_probe.probes", json.dumps(PROBED),
                    f"{suite}presets_kept", "1")  # fmt: skip
    assert code == 0
    (run,) = (work / "runs" / "demo").glob("version_*")
    return run, calls


def test_the_probe_speaks_instructions_through_the_real_synthesizer(probed_run):
    run, calls = probed_run
    best = json.loads((run / "best.json").read_text())
    asked = [call for call in calls if call["instructs"] is not None]
    texts = [None] + [i.text for p in PROBES if p.name in PROBED for i in p.instructions]
    # The base model with its first preset and with the new voice, then the chosen cell (the epoch's best).
    assert [call["instructs"] for call in asked] == [texts, texts, texts]
    assert [(call["speaker"], call["scale"]) for call in asked] == [
        ("dylan", 0.0),
        (None, 0.0),
        (None, best["lora_scale"]),
    ]
    rows = [json.loads(line) for line in (run / "eval" / "rows.jsonl").read_text().splitlines()]
    probed = [row for row in rows if "instruct_pace_effect" in row]
    cells = [(row.get("baseline"), row["lora_scale"]) for row in probed]
    assert cells == [("xvector", 0.0), (None, best["lora_scale"])]  # the reference and the chosen cell
    for name in PROBED:
        assert best["metrics"][retention_field(name)] is None
        assert best["metrics"][reason_field(name)] == "the base model's effect was not measured"


def test_each_preset_speaks_at_scale_0_and_at_the_chosen_cell_when_fit_ends(probed_run):
    run, calls = probed_run
    best = json.loads((run / "best.json").read_text())
    rows = [json.loads(line) for line in (run / "eval" / "rows.jsonl").read_text().splitlines()]
    first = next(row for row in rows if row.get("baseline") == "xvector")  # the first held-out sentence
    preset_calls = [call for call in calls if call["speaker"] is not None and call["instructs"] is None]
    assert [call["speaker"] for call in preset_calls] == PRESETS  # after the probe's own preset call, once each
    for call in preset_calls:
        assert call["texts"] == [first["text"]] * 2 and call["seeds"] == [1234, 1234]
        assert call["scale"] == [0.0, best["lora_scale"]]
        assert all(is_silent(wav) for wav in call["wavs"])  # why the similarity below is null, not a number
    record = best["presets_kept"]
    assert (record["epoch"], record["lora_scale"]) == (best["epoch"], best["lora_scale"])
    assert record["sentences"] == [first["utt_id"]]
    assert record["similarity"] == dict.fromkeys(PRESETS)
    assert "silent" in record["reason"]
    report = (run / "report.html").read_text()
    assert f"Presets kept (epoch {best['epoch']}, lora_scale {best['lora_scale']:g})" in report
    assert all(f"<td>{name}</td><td>n/a</td>" in report for name in PRESETS)


def test_evaluate_measures_presets_kept_for_a_chosen_cell_without_a_record(probed_run, tmp_path):
    """A finished run whose chosen cell has no record (an older run, or a re-score that chose another cell, where
    best.json drops the old one): ``evaluate`` measures it with the chosen epoch's saved weights."""
    import shutil

    run, _ = probed_run
    copy = shutil.copytree(run, tmp_path / "run")
    best = json.loads((copy / "best.json").read_text())
    (copy / "best.json").write_text(json.dumps({k: v for k, v in best.items() if k != "presets_kept"}))
    assert main("evaluate", "--run", copy) == 0
    again = json.loads((copy / "best.json").read_text())
    assert (again["epoch"], again["lora_scale"]) == (best["epoch"], best["lora_scale"])
    assert again["presets_kept"] == best["presets_kept"]  # the same cell, sentences, seeds and (silent) verdict
    assert "Presets kept" in (copy / "report.html").read_text()
