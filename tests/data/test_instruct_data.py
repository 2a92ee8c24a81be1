"""Fine-tuning from CustomVoice with instructions in the data (docs/instructions.md): prepare takes the x-vector from
the paired Base's speaker encoder (the CustomVoice checkpoint has none) and the codes from the CustomVoice's own
speech tokenizer, keeps each row's ``instruct``, and refuses instructed rows for a checkpoint that ignores them; in a
real ``Trainer.fit`` from the tiny custom_voice checkpoint every instructed row is laid out with or without its
instruction exactly as the instruct dropout drew it for that epoch, and plain rows never get one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pytest
from helpers.prepare import demo_rows, write_jsonl

from qwen_tts_lit.data.datamodule import QwenTTSDataModule
from qwen_tts_lit.data.prepare import PrepareOptions, prepare
from qwen_tts_lit.data.prepare.audio import pcm16_to_float
from qwen_tts_lit.data.prepare.write import read_clean
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.model.layout import InstructPlan, instruct_prompt
from qwen_tts_lit.speaker_file import read_speaker
from qwen_tts_lit.train.module import QwenTTSModule

INSTRUCTS = ("Speak slowly and sadly.", None, "  Whisper, very softly.  ", "", "Shout it out!", None)


def _rows():
    rows = demo_rows()[: len(INSTRUCTS)]
    for row, instruct in zip(rows, INSTRUCTS, strict=True):
        if instruct is not None:
            row["instruct"] = instruct
    return rows


@pytest.fixture(scope="module")
def cache(fit_cache):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QWEN_TTS_LIT_CACHE", str(fit_cache))
        yield fit_cache


@pytest.fixture(scope="module")
def prepared(cache, tiny_custom_voice_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("instruct")
    manifest = write_jsonl(folder / "raw.jsonl", _rows())
    return prepare(PrepareOptions(input=manifest, output=folder / "prepared", model="tiny_custom_voice",
                                  val_fraction=0.0, progress=False))  # fmt: skip


def test_prepare_keeps_instructions_and_takes_the_xvector_from_the_paired_base(prepared, tiny_model):
    rows = [json.loads(line) for line in (prepared / "train.jsonl").read_text().splitlines()]
    by_audio = {row["source_audio"]: row.get("instruct") for row in rows}
    expected = {row["audio"]: (row.get("instruct") or "").strip() or None for row in _rows()}
    assert by_audio == expected  # stripped; an empty instruction is none, as upstream reads it
    config = json.loads((prepared / "prepare_config.json").read_text())
    assert config["options"]["speaker_encoder_model"] == "tiny"  # the pairing, recorded
    vector = read_speaker(prepared, "test").numpy()
    assert vector.shape == (tiny_model.model.config.talker_config.hidden_size,)
    options = PrepareOptions(input=prepared, output=prepared, model="tiny")
    cleaned = read_clean(Path(demo_rows()[0]["ref_audio"]), options, trailing_silence_s=0.0, frame=1)
    speech = pcm16_to_float(cleaned.pcm[: cleaned.speech_samples])
    expected_vector = tiny_model.model.extract_speaker_embedding(speech, 24000).numpy()  # the base's encoder
    np.testing.assert_allclose(vector, expected_vector, rtol=1e-5, atol=1e-6)


def _as_0b6(tiny_custom_voice_dir, tmp_path):
    """The tiny custom_voice checkpoint relabelled as the 0.6B size (upstream ignores instruct for it)."""
    folder = tmp_path / "cv0b6"
    shutil.copytree(tiny_custom_voice_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["tts_model_size"] = "0b6"
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_instructions_are_refused_for_the_0_6b_custom_voice(cache, tiny_custom_voice_dir, prepared, tmp_path):
    """prepare names the file, line and field before writing anything; fit refuses a prepared dataset with them."""
    folder = _as_0b6(tiny_custom_voice_dir, tmp_path)
    manifest = write_jsonl(tmp_path / "raw.jsonl", _rows())
    with pytest.raises(UserError) as error:
        prepare(PrepareOptions(input=manifest, output=tmp_path / "out", model=str(folder), progress=False))
    assert f"{manifest}:1: instruct:" in str(error.value) and "0.6B CustomVoice" in str(error.value)
    assert not (tmp_path / "out").exists()
    data = QwenTTSDataModule(prepared_dir=str(prepared), model=str(folder))
    with pytest.raises(UserError, match=r"train.jsonl:\d+: field 'instruct': the 0.6B CustomVoice"):
        data.setup("fit")


def test_a_custom_voice_without_a_known_base_needs_the_option(cache, tiny_custom_voice_dir, tmp_path):
    folder = tmp_path / "unknown_cv"
    shutil.copytree(tiny_custom_voice_dir, folder)
    (folder / "qwen_tts_lit_tiny.json").unlink()  # no longer the tiny build: its pairing is unknown
    manifest = write_jsonl(tmp_path / "raw.jsonl", _rows()[:3])
    with pytest.raises(UserError, match="speaker_encoder_model"):
        prepare(PrepareOptions(input=manifest, output=tmp_path / "out", model=str(folder), progress=False))


class SeenLayouts(L.Callback):
    """Records, per (epoch, utterance), whether the batch the step got starts with the instruct turn."""

    def __init__(self, user_start: list[int]) -> None:
        self.user_start, self.seen = user_start, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        n = len(self.user_start)
        for ids, utterance in zip(batch.text_ids, batch.utterance_ids, strict=True):
            self.seen[(trainer.current_epoch, utterance)] = ids[:n].tolist() == self.user_start


def test_fit_from_custom_voice_lays_out_instructions_as_the_dropout_draws(cache, prepared, tmp_path):
    """A real fit from the tiny custom_voice checkpoint (LoRA, 3 epochs, dropout 0.5): the step is fed the instruct
    turn exactly for the instructed rows the plan keeps in that epoch, never for plain rows; both draws happen."""
    from qwen_tts_lit.upstream.loading import load_text_tokenizer

    tokenizer = load_text_tokenizer("tiny_custom_voice")
    user_start = tokenizer(instruct_prompt("x"))["input_ids"][:3]  # <|im_start|> user \n
    recorder = SeenLayouts(user_start)
    data = QwenTTSDataModule(prepared_dir=str(prepared), model="tiny_custom_voice", batch_size=3, instruct_dropout=0.5)
    module = QwenTTSModule(model="tiny_custom_voice", seed=0)
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", limit_val_batches=0, logger=False, enable_checkpointing=False,
                        default_root_dir=tmp_path,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[recorder])  # fmt: skip
    trainer.fit(module, datamodule=data)
    rows = {row["id"]: row.get("instruct") for row in data.splits["train"].rows}
    plan = InstructPlan(0.5, 0)
    expected = {(epoch, uid): bool(rows[uid]) and plan.keeps(uid, epoch) for epoch, uid in recorder.seen}
    assert recorder.seen == expected and len(recorder.seen) == 3 * len(rows)
    instructed = [value for (_, uid), value in recorder.seen.items() if rows[uid]]
    assert True in instructed and False in instructed  # kept in some epochs, dropped in others
    assert module.wrapper.model.tts_model_type == "custom_voice"
