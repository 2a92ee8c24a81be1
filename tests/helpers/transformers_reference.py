"""What must not change with the transformers version: measured here, compared with a reference recorded under
transformers 4.57.3 (tests/upstream/transformers_reference.json) by tests/upstream/test_transformers_versions.py.

- the tiny checkpoint's files (sha256; its weights are drawn by our recipe, not by transformers' init order),
- greedy codes of the official batched ``generate`` (a padded batch of 3 and a batch of 1),
- prepare's output for the demo corpus: every codes file and the x-vectors, byte for byte (sha256),
- the first optimizer steps of a real Lightning fit: each step's loss and the gradient norm of the first step.

Regenerate (under transformers 4.57.3, the shared venv) after changing the tiny recipe or the demo corpus:
``PYTHONPATH=. python tests/helpers/transformers_reference.py`` (about 30 s; it refuses another version).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1] / "upstream" / "transformers_reference.json"
REFERENCE_VERSION = "4.57.3"
TEXTS = ["Hi.", "The morning train was twelve minutes late today.", "She left her umbrella on the bus."]
CAPS = [6, 9, 7]
FIT_STEPS = 4


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checkpoint_hashes(tiny_dir: Path) -> dict[str, str]:
    """The tiny checkpoint's weight files (configs differ by transformers' own keys and version stamp)."""
    return {name: sha256(tiny_dir / name) for name in ("model.safetensors", "speech_tokenizer/model.safetensors")}


def greedy_codes(tiny_dir: Path) -> dict[str, list]:
    """Greedy codes of upstream's batched generate, as an evaluation epoch calls it (left-padded rows)."""
    import torch

    from qwen_tts_lit.synthesis.presets import GREEDY
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice
    from qwen_tts_lit.upstream.loading import load_qwen3_tts

    tts = load_qwen3_tts(str(tiny_dir))
    synth = Synthesizer(tts, Voice(xvector=torch.randn(64, generator=torch.Generator().manual_seed(0))), preset=GREEDY)
    batched = synth.synthesize(TEXTS, seeds=[1, 2, 3], max_new_tokens=CAPS, batch_size=3)
    single = synth.synthesize(TEXTS[1:2], seeds=[1], max_new_tokens=CAPS[1:2], batch_size=1)
    return {"batch_of_3": [u.codes.tolist() for u in batched], "batch_of_1": [u.codes.tolist() for u in single]}


def prepared_hashes(prepared: Path) -> dict[str, str]:
    """Every codes file prepare wrote, by name, and the x-vector's bytes (its file also names the model's path)."""
    from safetensors.numpy import load_file

    hashes = {f"codes/{path.name}": sha256(path) for path in sorted((prepared / "codes").iterdir())}
    xvector = load_file(str(prepared / "speaker.safetensors"))["xvector"]
    hashes["xvector"] = hashlib.sha256(xvector.tobytes()).hexdigest()
    return hashes


def fit_steps(tiny_dir: Path, prepared: Path, root: Path) -> dict[str, list[float]]:
    """The first FIT_STEPS optimizer steps of a real Trainer fit with configs/demo.yaml's settings (LoRA r8, AdamW
    lr 1e-3 without weight decay, batch 4, 2 batches accumulated, seed 0): every batch's loss and every step's
    gradient norm. A drift from the second step on with equal first ones is a weight-update difference; one in
    the first loss a forward difference."""
    import lightning as L
    import torch

    from qwen_tts_lit.data.datamodule import QwenTTSDataModule
    from qwen_tts_lit.model.lora import LoraSpec
    from qwen_tts_lit.train.module import QwenTTSModule

    class Record(L.Callback):
        def __init__(self) -> None:
            self.losses: list[float] = []
            self.grad_norms: list[float] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.losses.append(float(outputs["loss"]))

        def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
            grads = [p.grad.double().norm() for p in pl_module.parameters() if p.grad is not None]
            self.grad_norms.append(float(torch.stack(grads).norm()))

    L.seed_everything(0, verbose=False)
    module = QwenTTSModule(
        model=str(tiny_dir),
        lora=LoraSpec(rank=8, alpha=16, dropout=0.0),
        optimizer=lambda params: torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0),
    )
    data = QwenTTSDataModule(prepared_dir=str(prepared), model=str(tiny_dir), batch_size=4)
    record = Record()
    trainer = L.Trainer(
        accelerator="cpu", max_steps=FIT_STEPS, accumulate_grad_batches=2, limit_val_batches=0, logger=False,
        callbacks=[record], enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=root, deterministic=True,
    )  # fmt: skip
    trainer.fit(module, datamodule=data)
    return {"losses": record.losses, "grad_norms": record.grad_norms}


def measure(tiny_dir: Path, prepared: Path, root: Path) -> dict:
    return {
        "checkpoint": checkpoint_hashes(tiny_dir),
        "greedy_codes": greedy_codes(tiny_dir),
        "prepared": prepared_hashes(prepared),
        "fit": fit_steps(tiny_dir, prepared, root),
    }


def main() -> None:
    import os

    import transformers

    if transformers.__version__ != REFERENCE_VERSION:
        sys.exit(f"the reference is recorded under transformers {REFERENCE_VERSION}, not {transformers.__version__}")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["QWEN_TTS_LIT_CACHE"] = scratch
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        from qwen_tts_lit.data.dataset import prepared_cache_dir
        from qwen_tts_lit.data.prepare import PrepareOptions, prepare
        from qwen_tts_lit.upstream.tiny import default_tiny_dir, make_tiny

        raw = Path(__file__).resolve().parents[2] / "data" / "demo" / "raw" / "train_raw.jsonl"
        tiny = make_tiny(default_tiny_dir())
        prepared = prepared_cache_dir(str(raw), "tiny")
        prepare(PrepareOptions(input=raw, output=prepared, model="tiny", progress=False))
        result = {"transformers": transformers.__version__, **measure(tiny, Path(prepared), Path(scratch) / "fit")}
    REFERENCE.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
