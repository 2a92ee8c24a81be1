"""The per-epoch plan, through a real ``Trainer.fit``: Lightning's own ``set_epoch`` call must reach
``StepPlanBatchSampler`` (it only looks at ``dataloader.sampler`` and ``dataloader.batch_sampler.sampler``; before the
fix every epoch replayed epoch 0's plan). A tiny stand-in module keeps it cheap: the plan is the datamodule's alone."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import lightning as L
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch

from qwen_tts_lit.data.datamodule import QwenTTSDataModule
from qwen_tts_lit.data.sampler import StepPlanBatchSampler


class RecordingData(QwenTTSDataModule):
    """The datamodule as fit builds it, with its train split wrapped to record every item the loader asks for."""

    def __init__(self, log: list, **kwargs) -> None:
        super().__init__(**kwargs)
        self.log = log

    def setup(self, stage: str) -> None:
        super().setup(stage)
        split, log = self.splits["train"], self.log

        class Recording(torch.utils.data.Dataset):
            def __len__(self):
                return len(split)

            def __getitem__(self, ref):
                log.append((ref.epoch, split.rows[ref.index]["id"]))
                return split[ref]

        self.splits["train"] = Recording()
        self.splits["train"].frame_counts, self.splits["train"].speakers = split.frame_counts, split.speakers


class Stub(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))

    def training_step(self, batch, batch_idx):
        return (self.weight**2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _fit(tmp_path, data, epochs, ckpt_path=None):
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", limit_val_batches=0, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        use_distributed_sampler=False,
                        callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=-1,
                                                                       filename="{epoch}")])  # fmt: skip
    trainer.fit(Stub(), datamodule=data, ckpt_path=ckpt_path)


def _by_epoch(log):
    plans: dict[int, list[str]] = {}
    for epoch, utt in log:
        plans.setdefault(epoch, []).append(utt)
    return plans


def test_lightning_reaches_the_plan_every_epoch_and_a_resume_replays_it(prepared_demo, tiny_dir, tmp_path):
    kwargs = dict(prepared_dir=str(prepared_demo), model=str(tiny_dir), batch_size=2, language_tag="mixed", seed=5)
    data = QwenTTSDataModule(**kwargs)
    data.setup("fit")
    loader = data._loader("train", shuffle=True, accumulate=1)
    _set_sampler_epoch(loader, 5)  # the reproduction: Lightning's own helper
    assert loader.batch_sampler.epoch == 5

    log: list = []
    _fit(tmp_path / "whole", RecordingData(log, **kwargs), epochs=3)
    plans = _by_epoch(log)
    assert sorted(plans) == [0, 1, 2]  # every item carries its epoch: mixed tags are drawn anew each epoch
    assert len({tuple(p) for p in plans.values()}) == 3  # three different orders
    split = QwenTTSDataModule(**kwargs)
    split.setup("fit")
    rows = split.splits["train"].rows
    for epoch, order in plans.items():  # exactly the documented plan of that epoch
        sampler = StepPlanBatchSampler(split.splits["train"].frame_counts, 2, seed=5)
        sampler.set_epoch(epoch)
        assert order == [rows[ref.index]["id"] for batch in sampler for ref in batch]

    resumed: list = []
    _fit(tmp_path / "resumed", RecordingData(resumed, **kwargs), epochs=3,
         ckpt_path=str(tmp_path / "whole" / "epoch=0.ckpt"))  # fmt: skip
    assert _by_epoch(resumed) == {1: plans[1], 2: plans[2]}


def test_a_balanced_run_trains_every_clip(prepared_speakers, tiny_dir, tmp_path):
    """An unbalanced corpus (one speaker with most clips): balanced sampling sub-samples that speaker each epoch,
    and over ceil(clips / share) epochs the draw (fewest draws, then longest ago) reaches every one of its clips."""
    folder = tmp_path / "data"
    shutil.copytree(prepared_speakers, folder)
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    first = rows[0]["speaker"]
    keep = [r for r in rows if r["speaker"] == first] + [r for r in rows if r["speaker"] != first][::3]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in keep))
    speakers = Counter(r["speaker"] for r in keep)
    assert len(speakers) >= 2 and speakers[first] > len(keep) / len(speakers)  # the first speaker is sub-sampled
    share = len(keep) // len(speakers)
    epochs = -(-speakers[first] // share)
    assert epochs >= 2  # a single epoch would not show the draw moving on
    log: list = []
    _fit(tmp_path / "run", RecordingData(log, prepared_dir=str(folder), model=str(tiny_dir), batch_size=2,
                                         speaker_sampling="balanced"), epochs=epochs)  # fmt: skip
    plans = _by_epoch(log)
    assert sorted(plans) == list(range(epochs))
    for order in plans.values():
        assert Counter(r["speaker"] for r in keep for utt in order if r["id"] == utt)[first] <= share + 1
    assert {utt for order in plans.values() for utt in order} == {r["id"] for r in keep}
