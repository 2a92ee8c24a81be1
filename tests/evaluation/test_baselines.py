"""The zero-shot voice-clone baseline is the call users make: upstream's ``generate_voice_clone(text, ref_audio,
ref_text)`` with its default (streaming) layout, from the reference recording as recorded.

The oracle is upstream's own function, called directly with the ORIGINAL recording (the file prepare read, not our
trimmed clip): the baseline's codes and audio must equal it under the same seed, and what the baseline handed to
upstream must be that recording sample for sample. Two controls show the oracle can fail: the non-streaming layout
and the reference with prepare's appended silence each give other codes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers.prepare import DEMO_RAW, demo_rows, write_jsonl, write_wav

from qwen_tts_lit.audio import as_mono, resample
from qwen_tts_lit.data.dataset import reference_clip
from qwen_tts_lit.data.prepare import PrepareOptions, prepare
from qwen_tts_lit.data.prepare.audio import block_db
from qwen_tts_lit.evaluation.heldout import HeldOut
from qwen_tts_lit.evaluation.progress import EvalProgress
from qwen_tts_lit.evaluation.scoring import baseline_synthesizers, epoch_rows, speak
from qwen_tts_lit.model.lora import evaluable_scales
from qwen_tts_lit.runs.baselines import VOICE_CLONE, VOICE_CLONE_NON_STREAMING, XVECTOR
from qwen_tts_lit.synthesis.presets import SEED_GUIDE
from qwen_tts_lit.synthesis.synthesizer import Synthesizer
from qwen_tts_lit.upstream.sampling import per_row_sampling

RATE = 24000
SEED = 1234
SENTENCE = "Hello there."
CAP = 12  # frames: an explicit cap (EvalSuite.max_new_tokens) keeps the tiny model's generations quick


def loud_recording(source: Path) -> np.ndarray:
    """A demo clip at 24 kHz cut to its first..last loud 10 ms block: prepare's trim then removes nothing, so the
    prepared clip is this recording followed by the appended silence, and nothing else."""
    audio, rate = sf.read(str(source), dtype="float32")
    speech = resample(as_mono(audio), rate, RATE)
    loud = np.flatnonzero(block_db(speech, RATE) > -40.0)  # well above prepare's -45 dBFS threshold
    return speech[loud[0] * 240 : (loud[-1] + 1) * 240]


@pytest.fixture(scope="module")
def recorded(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, str]:
    """(a prepared one-clip dataset, the recording as recorded (int16 samples of its source file), its text)."""
    folder = tmp_path_factory.mktemp("recorded")
    row = demo_rows()[0]
    source = write_wav(folder / "rec.wav", loud_recording(DEMO_RAW / row["audio"]))
    samples, _ = sf.read(str(source), dtype="int16")
    manifest = write_jsonl(folder / "raw.jsonl", [{"audio": str(source), "text": row["text"]}])
    prepare(PrepareOptions(manifest, folder / "prepared", str(tiny_dir), progress=False, val_fraction=0.0))
    return folder / "prepared", samples, row["text"]


def test_reference_is_the_recording_without_the_appended_silence(recorded, tmp_path: Path):
    prepared, samples, text = recorded
    (entry,) = [json.loads(line) for line in (prepared / "train.jsonl").read_text().splitlines()]
    padded, _ = sf.read(str(prepared / entry["audio"]), dtype="int16")
    assert len(padded) >= len(samples) + RATE and not padded[len(samples) :].any()  # prepare appended >= 1 s
    assert entry["speech_samples"] == len(samples)
    audio, spoken = reference_clip(prepared)
    assert spoken == text and np.array_equal(np.round(audio * 32768).astype(np.int16), samples)
    # A dataset prepared before the manifest recorded speech_samples: the documented rule finds the same clip.
    old = shutil.copytree(prepared, tmp_path / "old")
    (old / "train.jsonl").write_text(json.dumps({k: v for k, v in entry.items() if k != "speech_samples"}) + "\n")
    assert np.array_equal(reference_clip(old)[0], audio)


def upstream_clone(tts, text: str, ref_audio: np.ndarray, ref_text: str, cap: int, **layout) -> tuple:
    """(codes, wav) of upstream's ``generate_voice_clone`` called as a user calls it (no language: "Auto"), with
    the baseline's sampling settings, sampled from the row's seed; codes read off the real ``generate``."""
    captured = []
    generate = tts.model.generate

    def recording_generate(*args, **kwargs):
        codes, hidden = generate(*args, **kwargs)
        captured.append(codes)
        return codes, hidden

    # cap + 1 tokens: the cap frames the baseline keeps (it generates one more only to see a runaway)
    kwargs = SEED_GUIDE.generate_kwargs(cap) | {"max_new_tokens": cap + 1}
    tts.model.generate = recording_generate
    try:
        with per_row_sampling(tts.model, [SEED]), torch.no_grad():
            wavs, rate = tts.generate_voice_clone(text, ref_audio=(ref_audio, RATE), ref_text=ref_text, **kwargs,
                                                  **layout)  # fmt: skip
    finally:
        del tts.model.generate
    assert rate == RATE
    return captured[0][0].cpu(), wavs[0]


def test_voice_clone_baseline_is_generate_voice_clone_as_users_call_it(recorded, tiny_model):
    prepared, samples, ref_text = recorded
    recording = samples.astype(np.float32) / 32768.0  # the file as a user passes it (soundfile's float reading)
    given = []
    prompt = tiny_model.create_voice_clone_prompt

    def recording_prompt(ref_audio, *args, **kwargs):
        given.append(np.asarray(ref_audio[0]))
        return prompt(ref_audio, *args, **kwargs)

    xvector = torch.zeros(tiny_model.model.talker.config.hidden_size)
    tiny_model.create_voice_clone_prompt = recording_prompt
    try:
        spoken_by = baseline_synthesizers(tiny_model, {None: xvector}, reference_clip(prepared),
                                          [XVECTOR, VOICE_CLONE, VOICE_CLONE_NON_STREAMING])  # fmt: skip
    finally:
        del tiny_model.create_voice_clone_prompt
    assert list(spoken_by) == [XVECTOR, VOICE_CLONE, VOICE_CLONE_NON_STREAMING]
    (reference,) = given  # one prompt for both clones, from the recording itself: no appended silence
    assert len(reference) == len(samples) and np.array_equal(reference, recording)

    item = HeldOut("s0", SENTENCE, prepared / "audio" / "x.wav")
    rows = epoch_rows([item], evaluable_scales(tiny_model.model, [0.0]))  # as evaluate_baselines: no adapters
    quiet = EvalProgress(-1, 1, 1, enabled=False)
    (clone,) = speak(spoken_by[VOICE_CLONE], rows, SEED, CAP, 40, quiet)  # what evaluate_baselines speaks
    (layout,) = speak(spoken_by[VOICE_CLONE_NON_STREAMING], rows, SEED, CAP, 40, quiet)

    text, cap = Synthesizer.spoken_text(SENTENCE).text, CAP
    codes, wav = upstream_clone(tiny_model, text, recording, ref_text, cap)
    assert clone.codes.shape == codes.shape == (cap, 16) and torch.equal(clone.codes, codes)
    assert clone.wav.shape == wav.shape and np.array_equal(clone.wav, wav.astype(np.float32))

    # Controls: the oracle tells layouts and references apart.
    non_streaming, _ = upstream_clone(tiny_model, text, recording, ref_text, cap, non_streaming_mode=True)
    assert torch.equal(layout.codes, non_streaming)  # the separately named baseline is that call exactly
    assert not torch.equal(layout.codes, codes)
    padded, _ = sf.read(str(prepared / "audio" / f"{json.loads((prepared / 'train.jsonl').read_text())['id']}.wav"),
                        dtype="float32")  # fmt: skip
    with_silence, _ = upstream_clone(tiny_model, text, padded, ref_text, cap)
    assert not torch.equal(with_silence, codes)


# ---------------------------------------------------------------- names, old run folders, old configs


def rows_of(epoch: int, scale: float, wer: float, baseline: str | None = None, n: int = 3) -> list[dict]:
    """n scored rows of one cell (a baseline's when ``baseline`` is given), as rows.jsonl holds them."""
    extra = {"baseline": baseline} if baseline else {}
    return [{"epoch": epoch, "lora_scale": scale, "utt_id": f"u{i}", "text": "the cat sat", "seed": SEED + i,
             "hypothesis": "the cat sat", "error_metric": "wer", "wer": wer, "cer": None, "error_rate": wer,
             "spk_sim": 0.8, "spk_sim_model": None, "rate_ratio": 1.0, "hit_max_tokens": False,
             "wav": f"eval/u{i}.wav", "real_wav": f"eval/real/u{i}.wav", **extra} for i in range(n)]  # fmt: skip


def test_an_old_run_folders_icl_rows_read_as_the_non_streaming_clone(tmp_path: Path):
    """Runs before the rename stored "icl" (in-context cloning, non_streaming_mode=True): every reader shows it
    under its new name, and the next publish stores that name."""
    from qwen_tts_lit.analysis.runs import load_rows
    from qwen_tts_lit.evaluation.publish import publish
    from qwen_tts_lit.metrics import SelectionRule
    from qwen_tts_lit.runs.records import read_rows

    run = tmp_path / "version_0"
    old = rows_of(0, 1.0, 0.1) + rows_of(-1, 0.0, 0.3, "xvector") + rows_of(-1, 0.0, 0.2, "icl")
    write_jsonl(run / "eval" / "rows.jsonl", old)
    named = {row.get("baseline") for row in read_rows(run)}
    assert named == {None, XVECTOR, VOICE_CLONE_NON_STREAMING}
    assert set(load_rows(run)["baseline"].dropna()) == {XVECTOR, VOICE_CLONE_NON_STREAMING}

    best = publish(run, [], SelectionRule())
    assert set(best["baselines"]) == {XVECTOR, VOICE_CLONE_NON_STREAMING}
    assert best["vs_baseline"].startswith(f"chosen cell vs best zero-shot ({VOICE_CLONE_NON_STREAMING})")
    stored = {json.loads(line).get("baseline") for line in (run / "eval" / "rows.jsonl").read_text().splitlines()}
    assert stored == {None, XVECTOR, VOICE_CLONE_NON_STREAMING}
    report = (run / "report.html").read_text().replace(str(run), "RUN")  # the title names the folder
    for shown in ("zero-shot x-vector (scale 0, training layout)", "zero-shot voice clone (non-streaming)"):
        assert shown in report
    assert "icl" not in report.lower()


def test_settings_name_the_baselines_and_read_old_configs():
    from qwen_tts_lit.errors import UserError
    from qwen_tts_lit.evaluation.settings import EvalSettings

    assert EvalSettings().baselines == (XVECTOR, VOICE_CLONE)  # the call users make, by default
    with pytest.warns(UserWarning, match="'icl' is now 'voice_clone'"):
        old = EvalSettings.from_args({"baselines": ["xvector", "icl"]})  # a run folder's config.yaml from before
    assert old.baselines == (XVECTOR, VOICE_CLONE)
    both = EvalSettings(baselines=(VOICE_CLONE, VOICE_CLONE_NON_STREAMING))
    assert both.baselines == (VOICE_CLONE, VOICE_CLONE_NON_STREAMING)
    with pytest.raises(UserError, match="'clone' is not one of xvector, voice_clone, voice_clone_non_streaming"):
        EvalSettings(baselines=("clone",))
