"""QwenTTSModule in process: adapters are the only thing that trains, and they round-trip exactly."""

from __future__ import annotations

import pytest
import torch

from qwen_tts_lit.cli.lightning import precision_problem
from qwen_tts_lit.data.dataset import Collate, PreparedSplit, load_xvector
from qwen_tts_lit.model.layout import SpecialIds
from qwen_tts_lit.model.lora import LoraSpec
from qwen_tts_lit.model.step import training_step_losses
from qwen_tts_lit.train.module import QwenTTSModule


@pytest.fixture(scope="module")
def batch(tiny_model, prepared_demo):
    special = SpecialIds.from_config(tiny_model.model.config)
    split = PreparedSplit(prepared_demo, "train", tiny_model.processor.tokenizer, special, None)
    return Collate(load_xvector(prepared_demo))([split[i] for i in range(3)])


def _module(tiny_dir) -> QwenTTSModule:
    module = QwenTTSModule(model=str(tiny_dir), lora=LoraSpec(rank=4, alpha=8, dropout=0.0))
    module.configure_model()
    return module


def _logits(module: QwenTTSModule, batch) -> torch.Tensor:
    module.tts.eval()
    with torch.no_grad():
        return training_step_losses(module.talker, batch).talker_logits


def test_only_adapter_parameters_change(tiny_dir, batch):
    module = _module(tiny_dir)
    before = {k: v.clone() for k, v in module.tts.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in module.tts.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        out = training_step_losses(module.talker, batch)
        (out.talker.mean + 0.3 * out.sub_talker.mean).backward()
        optimizer.step()
        optimizer.zero_grad()
    after = module.tts.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("lora_" in k for k in changed)
    assert any("lora_B" in k for k in changed)  # B starts at zero: it moving is what makes the adapter do anything
    trainable = {n for n, p in module.tts.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


def test_adapter_checkpoint_round_trip_gives_identical_outputs(tiny_dir, batch):
    trained = _module(tiny_dir)
    with torch.no_grad():
        for name, p in trained.tts.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.05)  # a non-trivial adapter
    checkpoint: dict = {}
    trained.on_save_checkpoint(checkpoint)
    restored = _module(tiny_dir)
    restored.load_state_dict(checkpoint["state_dict"], strict=False)
    assert torch.equal(_logits(trained, batch), _logits(restored, batch))
    assert not torch.equal(_logits(restored, batch), _logits(_module(tiny_dir), batch))  # the adapter mattered


def test_full_finetune_trains_the_talker_never_the_speaker_encoder(tiny_dir):
    module = QwenTTSModule(model=str(tiny_dir), finetune="full")
    module.configure_model()
    trainable = {n.split(".")[0] for n, p in module.tts.named_parameters() if p.requires_grad}
    assert trainable == {"talker"}


def test_full_finetune_in_half_precision_weights_warns(tiny_dir):
    module = QwenTTSModule(model=str(tiny_dir), finetune="full", dtype="bfloat16")
    module.configure_model()
    optimizer = torch.optim.AdamW([p for p in module.tts.parameters() if p.requires_grad], lr=1e-6)
    with pytest.warns(UserWarning, match="model.dtype: float32"):
        module._warn_if_risky(optimizer)


@pytest.mark.parametrize(
    ("precision", "accelerator", "cuda", "bf16", "refused"),
    [
        ("bf16-mixed", "gpu", True, False, "no bfloat16 support"),
        ("bf16-mixed", "auto", True, False, "no bfloat16 support"),
        ("bf16-mixed", "gpu", True, True, None),
        ("bf16-mixed", "cpu", False, False, None),  # torch runs bf16 autocast on CPU
        ("32-true", "gpu", False, False, "no CUDA device"),
    ],
)
def test_precision_the_device_cannot_run_is_refused(precision, accelerator, cuda, bf16, refused):
    problem = precision_problem(precision, accelerator, cuda, bf16)
    assert (problem is None) if refused is None else (refused in problem)
