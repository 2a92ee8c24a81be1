"""Presets kept when the chosen cell is not the last epoch: a real 2-epoch ``Trainer.fit`` from the tiny CustomVoice
whose chosen cell names epoch 0 (a callback listed before the EvalSuite rewrites ``best.json`` as if the rule had
chosen it). Its presets must speak with epoch 0's saved weights, not the live ones of epoch 1, and the live weights
must be back when fit returns."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("run_cache")


def adapters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The LoRA tensors of the model, by their name inside it."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if "lora_" in name}


def saved_adapters(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    return {key.removeprefix("tts.base_model.model."): value for key, value in state.items() if "lora_" in key}


class ChooseEpochZero(L.Callback):
    """Before the EvalSuite's on_fit_end: the chosen cell is epoch 0's (the rule's choice, rewritten)."""

    def on_fit_end(self, trainer, pl_module):
        path = Path(trainer.default_root_dir) / "best.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "epoch": 0}))


def test_presets_speak_with_the_chosen_epochs_saved_weights(tiny_custom_voice_dir, tmp_path, monkeypatch):
    from lightning.pytorch.callbacks import ModelCheckpoint

    from qwen_tts_lit.callbacks import EvalSuite
    from qwen_tts_lit.data.datamodule import QwenTTSDataModule
    from qwen_tts_lit.evaluation.settings import JudgeSettings
    from qwen_tts_lit.runs.folder import EPOCH_CHECKPOINT_NAME
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer
    from qwen_tts_lit.train.module import QwenTTSModule

    heard = []
    original = Synthesizer.synthesize

    def spy(self, texts, *args, **kwargs):
        if self.voice.speaker is not None:  # a preset speaking: which adapters it speaks with
            heard.append((self.voice.speaker, adapters(self.tts.model)))
        return original(self, texts, *args, **kwargs)

    monkeypatch.setattr(Synthesizer, "synthesize", spy)
    suite = EvalSuite(scales=[1.0], num_utterances=1, max_new_tokens=6, baselines=["xvector"], presets_kept=1,
                      judges=JudgeSettings(asr=False, dnsmos=False, model_speaker_sim=False))  # fmt: skip
    saving = ModelCheckpoint(
        dirpath=tmp_path / "checkpoints", filename=EPOCH_CHECKPOINT_NAME, save_top_k=-1, auto_insert_metric_name=False
    )
    trainer = L.Trainer(accelerator="cpu", max_epochs=2, limit_train_batches=2, limit_val_batches=1,
                        num_sanity_val_steps=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[saving, ChooseEpochZero(), suite], default_root_dir=tmp_path)  # fmt: skip
    module = QwenTTSModule(model="tiny_custom_voice", optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2))
    data = QwenTTSDataModule(raw=str(REPO / "data" / "demo" / "raw" / "train_raw.jsonl"), model="tiny_custom_voice")
    trainer.fit(module, datamodule=data)

    epoch0, epoch1 = (saved_adapters(tmp_path / "checkpoints" / f"epoch={e:03d}.ckpt") for e in (0, 1))
    assert set(epoch0) == set(epoch1) and any(not torch.equal(epoch0[k], epoch1[k]) for k in epoch0)  # trained
    assert [speaker for speaker, _ in heard] == ["dylan", "ryan", "vivian"]
    for _, spoken_with in heard:
        assert set(spoken_with) == set(epoch0) and all(torch.equal(spoken_with[k], epoch0[k]) for k in epoch0)
    live = adapters(module.wrapper.model)
    assert all(torch.equal(live[k], epoch1[k]) for k in epoch1)  # restored after the presets spoke
    record = json.loads((tmp_path / "best.json").read_text())["presets_kept"]
    assert record["epoch"] == 0 and set(record["similarity"]) == {"dylan", "ryan", "vivian"}
