"""The instruction probe inside a real ``Trainer.fit`` with the EvalSuite, on the tiny checkpoint: skipped with one
warning when a synthesizer cannot speak instructions, and, with the real Synthesizer (which takes ``instructs``; a
spy records the calls: the tiny random model cannot follow them), run on the
zero-shot baseline and on the epoch's best cell with the probe's texts, seeds and scale, its fields in the rows and
the chosen cell's record saying why there is no retention to report."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L

from qwen_tts_lit.metrics.instructions import PROBES, base_field, effect_field, reason_field, retention_field

PROBED = ("pace", "loudness")


def fit(tiny_dir: Path, prepared_demo: Path, root: Path) -> Path:
    from qwen_tts_lit.callbacks import EvalSuite
    from qwen_tts_lit.data.datamodule import QwenTTSDataModule
    from qwen_tts_lit.evaluation.settings import InstructProbeSettings, JudgeSettings
    from qwen_tts_lit.train.module import QwenTTSModule

    suite = EvalSuite(scales=[0.5, 1.0], num_utterances=1, max_new_tokens=6, baselines=["xvector"],
                      judges=JudgeSettings(asr=False, dnsmos=False, model_speaker_sim=False),
                      instruct_probe=InstructProbeSettings(enabled=True, every_n_epochs=1, sentences=1,
                                                           probes=PROBED))  # fmt: skip
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=1, limit_val_batches=1,
                        num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[suite], default_root_dir=root)  # fmt: skip
    trainer.fit(QwenTTSModule(model=str(tiny_dir)), datamodule=QwenTTSDataModule(prepared_dir=str(prepared_demo),
                                                                                  model=str(tiny_dir)))  # fmt: skip
    return root


def test_a_synthesizer_without_instructs_has_no_speaker():
    """The guard: a synthesizer whose ``synthesize`` takes no ``instructs`` (an older or foreign one) gives the probe
    no speaker, so the probe is skipped (the EvalSuite warns once); nothing is faked. The real one takes them."""
    from qwen_tts_lit.evaluation.instruct_probe import speaks_instructions, synthesizer_speaker
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer

    class Older:
        def synthesize(self, texts, seeds=0, lora_scale=1.0, max_new_tokens=None, batch_size=1, languages=None):
            raise AssertionError("never called")

    assert not speaks_instructions(Older()) and synthesizer_speaker(Older(), 1.0) is None
    assert speaks_instructions(Synthesizer.__new__(Synthesizer))


def test_the_probe_runs_in_a_fit_where_the_synthesizer_speaks_instructions(
    tiny_dir, prepared_demo, tmp_path, monkeypatch
):
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer

    calls = []
    original = Synthesizer.synthesize

    def synthesize(self, texts, seeds=0, lora_scale=1.0, max_new_tokens=None, batch_size=1, languages=None,
                   instructs=None):  # fmt: skip
        calls.append((list(texts), instructs, seeds, lora_scale))  # a spy: the real Synthesizer speaks them
        return original(self, texts, seeds, lora_scale, max_new_tokens, batch_size, languages, instructs)

    monkeypatch.setattr(Synthesizer, "synthesize", synthesize)
    probed = fit(tiny_dir, prepared_demo, tmp_path / "probed")
    asked = [call for call in calls if call[1] is not None]
    texts = [None] + [i.text for p in PROBES if p.name in PROBED for i in p.instructions]
    assert [call[1] for call in asked] == [texts, texts]  # the base model (scale 0), then the epoch's best cell
    assert [call[3] for call in asked][0] == 0.0 and asked[1][3] in (0.5, 1.0)
    assert all(call[2] == [1234] * len(texts) for call in asked)  # sentence 0's seed, every clip
    rows = [json.loads(line) for line in (probed / "eval" / "rows.jsonl").read_text().splitlines()]
    baseline = next(row for row in rows if row.get("baseline") == "xvector")
    cell = next(row for row in rows if not row.get("baseline") and row["lora_scale"] == asked[1][3])
    for name in PROBED:  # the tiny random model speaks near-silence: no effect can be measured, so NaN (null)
        assert effect_field(name) in baseline and base_field(name) in cell
    best = json.loads((probed / "best.json").read_text())
    assert best["lora_scale"] == asked[1][3]  # one epoch: the probed cell (its best scale) is the chosen one
    for name in PROBED:
        assert best["metrics"][retention_field(name)] is None
        assert best["metrics"][reason_field(name)] == "the base model's effect was not measured"
    assert best["metrics"]["instruct_retention"] is None


def test_the_probe_on_a_checkpoint_that_refuses_instructions_is_refused_before_training(
    tiny_custom_voice_dir, tiny_dir, prepared_demo, tmp_path
):
    """The 0.6B CustomVoice (here the tiny one with its config's size set to 0b6, as the released one has it) refuses
    instructions; the probe on it is refused in setup, one line naming the setting, before the baselines and the
    first step (not by the Synthesizer at the first probe, after minutes of work)."""
    import shutil

    import pytest

    from qwen_tts_lit.callbacks import EvalSuite
    from qwen_tts_lit.data.datamodule import QwenTTSDataModule
    from qwen_tts_lit.errors import UserError
    from qwen_tts_lit.evaluation.settings import InstructProbeSettings, JudgeSettings
    from qwen_tts_lit.train.module import QwenTTSModule

    small = shutil.copytree(tiny_custom_voice_dir, tmp_path / "cv_0b6")
    config = json.loads((small / "config.json").read_text())
    (small / "config.json").write_text(json.dumps({**config, "tts_model_size": "0b6"}))
    steps = []
    suite = EvalSuite(scales=[1.0], num_utterances=1, max_new_tokens=6, baselines=["xvector"],
                      judges=JudgeSettings(asr=False, dnsmos=False, model_speaker_sim=False),
                      instruct_probe=InstructProbeSettings(enabled=True))  # fmt: skip

    class Steps(L.Callback):
        def on_train_batch_start(self, *args):
            steps.append(1)

    trainer = L.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=1, limit_val_batches=1,
                        num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[suite, Steps()], default_root_dir=tmp_path)  # fmt: skip
    module = QwenTTSModule(model=str(small))
    with pytest.raises(UserError, match=r"^EvalSuite.instruct_probe: .*cv_0b6: the 0.6B CustomVoice model does not"):
        trainer.fit(module, datamodule=QwenTTSDataModule(prepared_dir=str(prepared_demo), model=str(tiny_dir)))
    assert not steps and module.tts is None  # nothing loaded, nothing trained
