"""configs/gpu/t4.yaml's precision on the CPU, as far as torch allows: float16 weights, float32 adapters and
Lightning's 16-mixed with its GradScaler. Lightning turns 16-mixed into bf16-mixed on a CPU, so the plugin is
given explicitly: the same plugin a GPU run builds, with the CPU's float16 autocast and GradScaler."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.plugins import MixedPrecision

from qwen_tts_lit.data.datamodule import QwenTTSDataModule
from qwen_tts_lit.model.lora import LoraSpec
from qwen_tts_lit.train.module import QwenTTSModule


def test_float16_weights_train_under_16_mixed_with_loss_scaling(tiny_dir, prepared_demo, tmp_path):
    module = QwenTTSModule(model=str(tiny_dir), dtype="float16", lora=LoraSpec(rank=4, alpha=8, dropout=0.0))
    data = QwenTTSDataModule(prepared_dir=str(prepared_demo), model=str(tiny_dir), batch_size=2)
    plugin = MixedPrecision("16-mixed", "cpu")
    trainer = L.Trainer(
        accelerator="cpu", plugins=[plugin], max_steps=2, limit_val_batches=0, logger=False, callbacks=[],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, datamodule=data)
    assert isinstance(plugin.scaler, torch.amp.GradScaler) and plugin.scaler.get_scale() > 1  # the loss was scaled
    assert {p.dtype for n, p in module.tts.named_parameters() if "lora_" not in n} == {torch.float16}
    adapters = {n: p for n, p in module.tts.named_parameters() if p.requires_grad}
    assert adapters and all(p.dtype == torch.float32 for p in adapters.values())  # master weights stay float32
    assert any(p.abs().sum() > 0 for n, p in adapters.items() if "lora_B" in n)  # B left zero: the steps applied
    assert torch.isfinite(torch.as_tensor(trainer.callback_metrics["train/loss"]))
