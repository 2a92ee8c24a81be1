"""``language_tag`` off / on / mixed: which codec prefix each training utterance gets (docs/train.md, "The language
tag"). The layouts themselves are proven against ``generate_custom_voice`` in
tests/model/test_step_consistency.py; here: the seeded choice, the languages it needs, and the settings."""

from __future__ import annotations

import json

import pytest
import torch

from qwen_tts_lit.data.datamodule import QwenTTSDataModule
from qwen_tts_lit.data.dataset import PreparedSplit
from qwen_tts_lit.data.sampler import ItemRef, StepPlanBatchSampler
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.model.layout import (
    TAGGED,
    UNTAGGED,
    LanguageTagPlan,
    SpecialIds,
    call_prefix,
    language_tag_mode,
    trained_prefixes,
)

IDS = [f"utt_{i:04d}" for i in range(2000)]


class Refs(torch.utils.data.Dataset):
    """A dataset whose item is the index it is asked for (an ``ItemRef``): what the sampler planned."""

    def __getitem__(self, ref):
        return ref


def test_modes_and_the_calls_they_train():
    assert [language_tag_mode(v) for v in (None, False, True, "Mixed", " on ")] == ["off", "off", "on", "mixed", "on"]
    with pytest.raises(ValueError, match="off, on, mixed"):
        language_tag_mode("sometimes")
    assert trained_prefixes("off") == (UNTAGGED,) and trained_prefixes(True) == (TAGGED,)
    assert trained_prefixes("mixed") == (UNTAGGED, TAGGED)
    assert [call_prefix(x) for x in (None, "auto", "Auto", "english", "Chinese")] == [UNTAGGED] * 3 + [TAGGED] * 2


def test_mixed_draw_is_seeded_per_utterance_and_epoch():
    plan = LanguageTagPlan("mixed", 0.3, seed=7)
    epoch0 = [plan.tagged(u, 0) for u in IDS]
    assert epoch0 == [LanguageTagPlan("mixed", 0.3, seed=7).tagged(u, 0) for u in IDS]  # a new process draws alike
    assert abs(sum(epoch0) / len(IDS) - 0.3) < 0.04  # the probability is the share tagged
    epoch1 = [plan.tagged(u, 1) for u in IDS]
    assert epoch1 != epoch0 and abs(sum(epoch1) / len(IDS) - 0.3) < 0.04  # a new draw each epoch
    assert epoch0 != [LanguageTagPlan("mixed", 0.3, seed=8).tagged(u, 0) for u in IDS]
    assert not any(LanguageTagPlan("off").tagged(u, 0) for u in IDS[:50])
    assert all(LanguageTagPlan("on").tagged(u, 3) for u in IDS[:50])
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="language_tag_probability"):
            LanguageTagPlan("mixed", bad)


def test_sampler_hands_the_epoch_to_every_item():
    """Set as Lightning sets it (its own helper, on a DataLoader), so the dataset in each worker draws that epoch."""
    from lightning.fabric.utilities.data import _set_sampler_epoch

    sampler = StepPlanBatchSampler([5, 6, 7, 8], batch_size=2, seed=0)
    loader = torch.utils.data.DataLoader(Refs(), batch_sampler=sampler, collate_fn=lambda refs: refs)
    _set_sampler_epoch(loader, 3)
    assert {ref.epoch for batch in loader for ref in batch} == {3}


def _split(prepared_demo, tiny_model, plan, per_epoch=True):
    config = tiny_model.model.config
    split = PreparedSplit(prepared_demo, "train", tiny_model.processor.tokenizer, SpecialIds.from_config(config),
                          dict(config.talker_config.codec_language_id), plan, per_epoch)  # fmt: skip
    return split


def test_split_lays_out_each_utterance_with_its_drawn_prefix(prepared_demo, tiny_model):
    talker = tiny_model.model.config.talker_config
    plan = LanguageTagPlan("mixed", 0.5, seed=0)
    split = _split(prepared_demo, tiny_model, plan)
    for epoch in (0, 1):
        for index, row in enumerate(split.rows):
            sequence = split[ItemRef(index, 1, 1, epoch)].sequence
            if plan.tagged(row["id"], epoch):
                assert sequence.codec_ids[3:7].tolist() == [talker.codec_think_id, talker.codec_think_bos_id,
                                                            talker.codec_language_id[row["language"]],
                                                            talker.codec_think_eos_id]  # fmt: skip
            else:
                assert sequence.codec_ids[3:6].tolist() == [talker.codec_nothink_id, talker.codec_think_bos_id,
                                                            talker.codec_think_eos_id]  # fmt: skip
    drawn = {plan.tagged(row["id"], e) for row in split.rows for e in (0, 1)}
    assert drawn == {True, False}  # both prefixes really occur in the demo corpus
    fixed = _split(prepared_demo, tiny_model, plan, per_epoch=False)  # validation: the same draw every epoch
    assert all(
        fixed[ItemRef(i, 1, 1, 5)].sequence.length == fixed[ItemRef(i, 1, 1, 0)].sequence.length
        for i in range(len(fixed))
    )


@pytest.mark.parametrize("language", ["auto", "klingon"])
def test_tagged_modes_need_a_known_language_on_every_row(prepared_demo, tiny_model, tmp_path, language):
    rows = [json.loads(line) for line in (prepared_demo / "train.jsonl").read_text().splitlines()][:3]
    rows[1]["language"] = language
    for row in rows:
        row["codes"] = str(prepared_demo / row["codes"])
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    for mode in ("on", "mixed"):
        with pytest.raises(UserError, match=rf"train.jsonl:2: field 'language' is '{language}'.*language_tag={mode}"):
            _split(tmp_path, tiny_model, LanguageTagPlan(mode))
    assert len(_split(tmp_path, tiny_model, LanguageTagPlan("off"))) == 3  # off never reads the language


def test_datamodule_settings(prepared_demo):
    assert QwenTTSDataModule(prepared_dir=str(prepared_demo)).tags.mode == "off"
    assert QwenTTSDataModule(prepared_dir=str(prepared_demo), language_tag=True).tags.mode == "on"  # YAML's bare on
    module = QwenTTSDataModule(prepared_dir=str(prepared_demo), language_tag="mixed", language_tag_probability=0.25,
                               seed=3)  # fmt: skip
    assert module.tags == LanguageTagPlan("mixed", 0.25, 3)
    with pytest.raises(UserError, match="data.language_tag 'sometimes'"):
        QwenTTSDataModule(prepared_dir=str(prepared_demo), language_tag="sometimes")
    with pytest.raises(UserError, match="data.language_tag_probability 1.5"):
        QwenTTSDataModule(prepared_dir=str(prepared_demo), language_tag="mixed", language_tag_probability=1.5)
