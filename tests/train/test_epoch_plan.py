"""The per-epoch plan as a real ``Trainer.fit`` runs it (docs/sampling.md): Lightning's own ``set_epoch`` calls must
reach the batch sampler, so each epoch trains its own shuffle, language-tag draw and balanced draw; a resumed fit
replays the uninterrupted fit's plan epoch by epoch; validation sees the same batches every epoch. What the
training step saw is recorded by a callback (the utterance ids and codec prefix of every micro-batch), never by
calling the sampler by hand."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch
from lightning.pytorch.callbacks import ModelCheckpoint

from qwen_tts_lit.data.datamodule import QwenTTSDataModule
from qwen_tts_lit.data.dataset import load_xvector
from qwen_tts_lit.data.prepare.outputs import read_manifest
from qwen_tts_lit.data.sampler import StepPlanBatchSampler
from qwen_tts_lit.model.layout import LanguageTagPlan
from qwen_tts_lit.model.lora import LoraSpec
from qwen_tts_lit.speaker_file import write_speakers
from qwen_tts_lit.train.module import QwenTTSModule
from qwen_tts_lit.upstream.loading import load_config

BATCH = 4
EPOCHS = 3


class PlanRecorder(L.Callback):
    """Every micro-batch the training and validation steps get: ``(utterance id, tagged)`` per row, by epoch."""

    def __init__(self, think_id: int) -> None:
        self.think_id = think_id
        self.train: dict[int, list[tuple]] = {}
        self.val: dict[int, list[tuple]] = {}

    def _rows(self, batch) -> tuple:
        tagged = (batch.codec_ids[:, 3] == self.think_id).tolist()  # think opens the tagged prefix, nothink the other
        return tuple(zip(batch.utterance_ids, tagged, strict=True))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.train.setdefault(trainer.current_epoch, []).append(self._rows(batch))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking:
            self.val.setdefault(trainer.current_epoch, []).append(self._rows(batch))


class StopAtStep(L.Callback):
    """Stop the fit once ``step`` optimizer steps are done (a stopped run keeps its max_epochs, so its learning-rate
    schedule is the uninterrupted run's)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def _fit(tiny_dir: Path, data: Path, root: Path, ckpt_path: Path | None = None, stop_at: int = 0, **settings):
    """``Trainer.fit`` of LoRA on the tiny checkpoint for ``EPOCHS`` epochs, a checkpoint per epoch in ``root``
    (``epoch=N.ckpt``); with ``stop_at``, also ``step=N.ckpt`` at that optimizer step, where it stops. Returns the
    recorder."""
    recorder = PlanRecorder(load_config(str(tiny_dir)).talker_config.codec_think_id)
    module = QwenTTSModule(model=str(tiny_dir), lora=LoraSpec(rank=2, alpha=4, dropout=0.0))
    datamodule = QwenTTSDataModule(prepared_dir=str(data), model=str(tiny_dir), batch_size=BATCH, **settings)
    callbacks = [recorder, ModelCheckpoint(dirpath=root, filename="{epoch}", save_top_k=-1)]
    if stop_at:
        step_checkpoint = ModelCheckpoint(dirpath=root, filename="{step}", save_top_k=-1, every_n_train_steps=stop_at)
        callbacks += [step_checkpoint, StopAtStep(stop_at)]
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=EPOCHS, limit_val_batches=1, num_sanity_val_steps=0, logger=False,
        callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False, default_root_dir=root,
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return recorder


def _documented_plan(data: Path, epoch: int, tags: LanguageTagPlan, **sampler) -> list[tuple]:
    """What docs/sampling.md says epoch ``epoch`` trains: the sampler's plan of that epoch, each row tagged by the
    language-tag draw of that epoch."""
    rows = read_manifest(data / "train.jsonl")
    plan = StepPlanBatchSampler([int(r["num_frames"]) for r in rows], BATCH, **sampler)
    plan.set_epoch(epoch)
    return [tuple((rows[ref.index]["id"], tags.tagged(rows[ref.index]["id"], epoch)) for ref in b) for b in plan]


MID_EPOCH_STEP = 15  # 11 micro-batches (= optimizer steps) an epoch: the 4th batch of epoch 1 is the last one trained


@pytest.fixture(scope="module")
def mixed_fits(tiny_dir, prepared_demo, tmp_path_factory):
    """One speaker, mixed language tags: a 3-epoch fit, and the same fit stopped during epoch 1 then resumed to
    epoch 3 (``fit --resume`` passes Lightning's ckpt_path) from epoch 0's checkpoint, in the main process and with a
    DataLoader worker (the plan is made in the main process, the layouts in the worker), and from a checkpoint
    written mid-epoch 1. Returns (uninterrupted, stopped, {how: resumed}, root)."""
    root = tmp_path_factory.mktemp("mixed")
    settings = {"language_tag": "mixed", "seed": 3}
    whole = _fit(tiny_dir, prepared_demo, root / "whole", **settings)
    first = _fit(tiny_dir, prepared_demo, root / "first", stop_at=MID_EPOCH_STEP, **settings)
    epoch_0, mid_epoch_1 = root / "first" / "epoch=0.ckpt", root / "first" / f"step={MID_EPOCH_STEP}.ckpt"
    resumed = {
        how: _fit(tiny_dir, prepared_demo, root / how, checkpoint, num_workers=workers, **settings)
        for how, checkpoint, workers in (("epoch-end", epoch_0, 0), ("epoch-end-worker", epoch_0, 1),
                                         ("mid-epoch", mid_epoch_1, 0))
    }  # fmt: skip
    return whole, first, resumed, root


def test_lightnings_own_call_reaches_the_plan(prepared_demo, tiny_dir):
    """The issue's reproduction: Lightning's helper, as its fit and evaluation loops call it."""
    data = QwenTTSDataModule(prepared_dir=str(prepared_demo), model=str(tiny_dir), language_tag="mixed")
    data.setup("fit")
    loader = data.train_dataloader()
    _set_sampler_epoch(loader, 5)
    assert loader.batch_sampler.epoch == 5
    assert {ref.epoch for batch in loader.batch_sampler for ref in batch} == {5}


def test_each_epoch_trains_its_documented_plan_and_the_epochs_differ(mixed_fits, prepared_demo):
    whole, _, _, _ = mixed_fits
    assert sorted(whole.train) == list(range(EPOCHS))
    tags = LanguageTagPlan("mixed", 0.5, seed=3)
    ids = sorted(r["id"] for r in read_manifest(prepared_demo / "train.jsonl"))
    for epoch, batches in whole.train.items():
        assert batches == _documented_plan(prepared_demo, epoch, tags, seed=3), epoch
        assert sorted(uid for batch in batches for uid, _ in batch) == ids  # one speaker: every clip once
    orders = [[uid for batch in whole.train[e] for uid, _ in batch] for e in range(EPOCHS)]
    assert len({tuple(order) for order in orders}) == EPOCHS  # a new shuffle each epoch
    drawn = [{uid: tagged for batch in whole.train[e] for uid, tagged in batch} for e in range(EPOCHS)]
    for a, b in ((0, 1), (1, 2), (0, 2)):  # a new tag draw each epoch: many utterances change prefix
        changed = sum(drawn[a][uid] != drawn[b][uid] for uid in ids)
        assert 0.25 * len(ids) < changed < 0.75 * len(ids), (a, b, changed)
    assert all(0.25 * len(ids) < sum(d.values()) < 0.75 * len(ids) for d in drawn)  # about half tagged


def test_a_resumed_fit_replays_the_uninterrupted_plan_of_every_epoch(mixed_fits):
    """From an epoch's end the next epoch's plan; from mid-epoch the rest of that epoch's plan (Lightning alone
    would start the epoch again); and so the same final weights."""
    whole, first, resumed, root = mixed_fits
    done = MID_EPOCH_STEP - len(whole.train[0])  # epoch 1's micro-batches trained before the mid-epoch checkpoint
    assert sorted(first.train) == [0, 1] and first.train[0] == whole.train[0]
    assert first.train[1] == whole.train[1][:done]
    for how, run in resumed.items():
        assert sorted(run.train) == [1, 2] and run.train[1] != run.train[2], how
        assert run.train[1] == whole.train[1][done if how == "mid-epoch" else 0 :], how
        assert run.train[2] == whole.train[2], how
        final, reference = (_weights(root / name / "epoch=2.ckpt") for name in (how, "whole"))
        assert final.keys() == reference.keys() and all(torch.equal(final[k], reference[k]) for k in final), how


def _weights(checkpoint: Path) -> dict:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


def test_validation_sees_the_same_batches_every_epoch(mixed_fits):
    """Lightning sets the training epoch on the validation sampler too: its plan and tag draw must not move, so the
    validation loss stays comparable across epochs."""
    whole, _, resumed, _ = mixed_fits
    assert sorted(whole.val) == list(range(EPOCHS)) and whole.val[0]
    assert whole.val[0] == whole.val[1] == whole.val[2]
    assert all(run.val[epoch] == whole.val[0] for run in resumed.values() for epoch in (1, 2))


def _two_speakers(prepared_demo: Path, folder: Path, small: int) -> Path:
    """The demo corpus as two speakers: ``big`` with most train clips, ``small`` with ``small`` of them (the demo's
    x-vector for both; this is about which clips train, not how they sound)."""
    folder.mkdir(parents=True)
    for split in ("train", "val"):
        rows = read_manifest(prepared_demo / f"{split}.jsonl")
        for index, row in enumerate(rows):
            row["codes"] = str(prepared_demo / row["codes"])
            row["speaker"] = "small" if index < (small if split == "train" else 1) else "big"
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    xvector = load_xvector(prepared_demo)
    write_speakers(folder, {"big": xvector, "small": xvector})
    shutil.copy(prepared_demo / "prepare_config.json", folder / "prepare_config.json")
    return folder


def test_a_balanced_fit_trains_every_clip(tiny_dir, prepared_demo, tmp_path):
    """43 train clips: big 35, small 8; each speaker's share is 21 or 22 a epoch, so big is sub-sampled. Its 35
    clips must all train within ceil(35 / 21) = 2 epochs (the draw goes to the clips undrawn longest)."""
    data = _two_speakers(prepared_demo, tmp_path / "data", small=8)
    speakers = {r["id"]: r["speaker"] for r in read_manifest(data / "train.jsonl")}
    recorded = _fit(tiny_dir, data, tmp_path / "run", stop_at=2 * 11, speaker_sampling="balanced")  # 2 epochs
    seen = [Counter(uid for batch in recorded.train[e] for uid, _ in batch) for e in (0, 1)]
    for counts in seen:
        shares = Counter(speakers[uid] for uid in counts.elements())
        assert sorted(shares.values()) == [21, 22], shares  # equal shares up to the odd one
        assert all(n == 1 for uid, n in counts.items() if speakers[uid] == "big")  # sub-sampled: no repeats
    big = {uid for uid, speaker in speakers.items() if speaker == "big"}
    assert {uid for uid in seen[0] if uid in big} != {uid for uid in seen[1] if uid in big}
    assert set(seen[0]) | set(seen[1]) == set(speakers)  # every clip trained
