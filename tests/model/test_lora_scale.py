"""LoRA strength per row: a batch whose rows run at different strengths equals each row run alone through peft's
own scaling (``rescale_adapter_scale``, the independent oracle); misuse fails loudly."""

from __future__ import annotations

import pytest
import torch

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.model.lora import adapters_at_scale

SCALES = [0.0, 0.35, 1.0, 2.0]


class TwoLayers(torch.nn.Module):
    """Two projections, as in a talker layer: (B, T, 8) -> (B, T, 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.q_proj, self.o_proj = torch.nn.Linear(8, 12), torch.nn.Linear(12, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.o_proj(torch.tanh(self.q_proj(x)))


@pytest.fixture
def peft_model():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(TwoLayers(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "o_proj"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # peft initialises B to zero: make the adapters matter
                param.normal_(0, 0.5)
    return model.eval()


def test_a_mixed_batch_equals_each_row_alone_at_its_scale(peft_model):
    from peft.helpers import rescale_adapter_scale

    x = torch.randn(len(SCALES), 5, 8, generator=torch.Generator().manual_seed(1))  # (B, T, D)
    with torch.no_grad():
        with adapters_at_scale(peft_model, SCALES):
            mixed = peft_model(x)
        for row, scale in enumerate(SCALES):
            with rescale_adapter_scale(peft_model, scale):
                want = peft_model(x[row : row + 1])
            torch.testing.assert_close(mixed[row : row + 1], want, rtol=1e-6, atol=1e-6)
            with adapters_at_scale(peft_model, scale):  # one strength for the whole batch: the same arithmetic
                assert torch.equal(peft_model(x)[row], mixed[row])
        with peft_model.disable_adapter():
            base = peft_model(x[:1])
        assert torch.equal(mixed[:1], base)  # 0 is exactly the base model
        assert (mixed[2:3] - base).abs().max() > 1e-2  # and the adapters do matter


def test_hooks_are_removed_and_peft_scaling_untouched(peft_model):
    x = torch.randn(2, 3, 8)
    with torch.no_grad():
        before = peft_model(x)
        with adapters_at_scale(peft_model, [0.5, 1.5]):
            pass
        assert torch.equal(peft_model(x), before)
    layers = [m for m in peft_model.modules() if hasattr(m, "lora_A")]
    assert all(not m.lora_A["default"]._forward_hooks for m in layers)
    assert all(m.scaling["default"] == 2.0 for m in layers)


def test_misuse_fails_loudly(peft_model):
    with pytest.raises(RuntimeError, match="2 scales for a batch of 3 rows"), torch.no_grad():
        with adapters_at_scale(peft_model, [0.5, 1.0]):
            peft_model(torch.randn(3, 2, 8))
    with pytest.raises(UserError, match="no LoRA adapters"):
        with adapters_at_scale(TwoLayers(), [0.5]):
            pass
    with adapters_at_scale(TwoLayers(), [1.0, 1.0]):  # as trained needs no adapters
        pass
    peft_model.merge_adapter()
    with pytest.raises(RuntimeError, match="merged"):
        with adapters_at_scale(peft_model, 0.5):
            pass
