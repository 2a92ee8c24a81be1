"""Gradient checkpointing with LoRA (the bug: transformers' default reentrant checkpointing fails in backward), and
the precision the recipes train in: bf16 base weights with float32 adapters keep the step's numbers."""

from __future__ import annotations

import pytest
import torch

from qwen_tts_lit.model.lora import LoraSpec, cast_adapter_inputs
from qwen_tts_lit.model.step import combine_losses, training_step_losses
from qwen_tts_lit.model.trainable import make_trainable
from qwen_tts_lit.train.module import QwenTTSModule
from qwen_tts_lit.upstream.loading import load_qwen3_tts

SPEC = LoraSpec(rank=4, alpha=8, dropout=0.0)


@pytest.fixture(scope="module")
def batch(tiny_model, prepared_demo):
    from qwen_tts_lit.data.dataset import Collate, PreparedSplit, load_xvector
    from qwen_tts_lit.model.layout import SpecialIds

    special = SpecialIds.from_config(tiny_model.model.config)
    split = PreparedSplit(prepared_demo, "train", tiny_model.processor.tokenizer, special, None)
    return Collate(load_xvector(prepared_demo))([split[i] for i in range(3)])  # 3 clips of different lengths


def _lora_model(tiny_dir, dtype: str = "float32", checkpointing: bool = False, bf16_values: bool = False):
    """The tiny model loaded as QwenTTSModule loads it, with seeded non-zero adapters (B starts at zero, which would
    leave A without gradient). ``bf16_values``: float32 weights holding bf16 values, as a released (bf16)
    checkpoint loaded in float32 does."""
    model = load_qwen3_tts(str(tiny_dir), dtype).model
    if bf16_values:
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.copy_(parameter.to(torch.bfloat16))
    torch.manual_seed(0)
    trained = make_trainable(model, "lora", SPEC, checkpointing)
    with torch.no_grad():
        for name, parameter in trained.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.05)
    return model, trained


def _loss_and_gradients(model, trained, batch, autocast: torch.dtype | None = None):
    with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        out = training_step_losses(model.talker, batch)
        loss = combine_losses(out.talker, out.sub_talker)
    loss.backward()
    grads = torch.cat([p.grad.float().flatten() for p in trained.parameters() if p.requires_grad])
    return loss.detach().float(), grads


def test_gradient_checkpointing_with_lora_gives_the_same_gradients(tiny_dir, batch):
    plain = _loss_and_gradients(*_lora_model(tiny_dir), batch)
    checkpointed = _loss_and_gradients(*_lora_model(tiny_dir, checkpointing=True), batch)
    assert torch.equal(plain[0], checkpointed[0])
    torch.testing.assert_close(checkpointed[1], plain[1], rtol=1e-5, atol=1e-7)  # recomputed, not stored: same math


def test_reentrant_checkpointing_is_the_bug_it_replaces(tiny_dir, batch):
    model, trained = _lora_model(tiny_dir)
    model.talker.gradient_checkpointing_enable()  # transformers' default: reentrant
    with pytest.raises(RuntimeError, match="does not require grad"):
        _loss_and_gradients(model, trained, batch)


def test_the_module_turns_checkpointing_on_through_make_trainable(tiny_dir):
    module = QwenTTSModule(model=str(tiny_dir), lora=SPEC, gradient_checkpointing=True)
    module.configure_model()
    assert module.talker.model.gradient_checkpointing and module.talker.training


def test_uncast_adapter_inputs_under_autocast_are_bit_identical(tiny_dir, batch):
    model, trained = _lora_model(tiny_dir, "bfloat16")  # adapters float32 (peft upcasts), base bf16
    cast = _loss_and_gradients(model, trained, batch, torch.bfloat16)
    trained.zero_grad(set_to_none=True)
    cast_adapter_inputs(trained, False)
    uncast = _loss_and_gradients(model, trained, batch, torch.bfloat16)
    assert torch.equal(cast[0], uncast[0]) and torch.equal(cast[1], uncast[1])


def test_bf16_base_weights_keep_the_step_as_close_as_the_previous_recipe(tiny_dir, batch):
    """The released weights are bf16, so the fp32 reference holds bf16 values too; the recipe's bf16 weights under
    bf16 autocast must be as close to the fp32 step as the previous recipe (fp32 weights, bf16 autocast) was."""
    reference = _loss_and_gradients(*_lora_model(tiny_dir, bf16_values=True), batch)
    previous = _loss_and_gradients(*_lora_model(tiny_dir, bf16_values=True), batch, torch.bfloat16)
    model, trained = _lora_model(tiny_dir, "bfloat16")
    cast_adapter_inputs(trained, False)  # as QwenTTSModule runs its steps under autocast
    recipe = _loss_and_gradients(model, trained, batch, torch.bfloat16)

    def errors(run):
        loss = float(abs(run[0] - reference[0]) / reference[0])
        cosine = float(torch.nn.functional.cosine_similarity(run[1], reference[1], dim=0))
        return loss, cosine

    (loss_before, cosine_before), (loss_now, cosine_now) = errors(previous), errors(recipe)
    assert loss_now < 5e-3 and cosine_now > 0.999  # stated tolerance: 0.5 % of the loss, gradient direction kept
    assert loss_now <= 2 * loss_before + 1e-4 and cosine_now >= cosine_before - 1e-3


def test_the_24gb_recipes_adafactor_trains_the_talker_with_factored_state(tiny_dir, batch, repo_root):
    """configs/gpu/24gb_full_sft.yaml's optimizer, built from the file as fit builds it: it steps the talker (with
    checkpointing, as that recipe runs) and keeps only factored second moments, no first moment (why it fits)."""
    import yaml

    from qwen_tts_lit.train.memory import optimizer_factory

    spec = yaml.safe_load((repo_root / "configs/gpu/24gb_full_sft.yaml").read_text())["model"]["optimizer"]
    model = load_qwen3_tts(str(tiny_dir), "float32").model
    trained = make_trainable(model, "full", SPEC, gradient_checkpointing=True)
    parameters = [p for p in trained.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in parameters]
    optimizer = optimizer_factory(spec)(parameters)
    _loss_and_gradients(model, trained, batch, torch.bfloat16)
    optimizer.step()
    assert all(p.grad is None for p in model.speaker_encoder.parameters())
    assert all(torch.isfinite(p).all() for p in parameters)
    assert sum(not torch.equal(a, b) for a, b in zip(before, parameters, strict=True)) > 0.9 * len(parameters)
    matrices = [optimizer.state[p] for p in parameters if p.dim() == 2]
    assert matrices and all("exp_avg" not in s and s["exp_avg_sq_row"].dim() == 1 for s in matrices)
