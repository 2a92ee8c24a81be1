"""Naturalness in the evaluation rows: every clip and its real recording get each naturalness judge's scores
(DNSMOS, with its real models; a judge of one's own through the same interface), null where a judge is off."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from qwen_tts_lit.evaluation.heldout import measure_real, read_heldout
from qwen_tts_lit.evaluation.judges import Judges
from qwen_tts_lit.evaluation.progress import EvalProgress
from qwen_tts_lit.evaluation.scoring import score_utterances
from qwen_tts_lit.evaluation.settings import JudgeSettings
from qwen_tts_lit.metrics import NaturalnessJudge
from qwen_tts_lit.metrics.selection import DNSMOS_FIELDS

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt)")

SENTENCES = {  # at 200 words per minute, 4.6-4.8 s: one DNSMOS window each
    "train": "The morning train was late again because of the heavy snow, so we waited in the cold station for an "
    "hour.",
    "umbrella": "She left her blue umbrella on the bus near the old station, and nobody found it until the next "
    "morning.",
}


@pytest.fixture(scope="module")
def heldout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A held-out manifest of espeak-ng recordings at 22.05 kHz (a rate the synthesis does not use)."""
    from helpers.long_recordings import espeak

    folder = tmp_path_factory.mktemp("natural_heldout")
    lines = []
    for utt_id, text in SENTENCES.items():
        sf.write(str(folder / f"{utt_id}.wav"), espeak(text, ("-v", "en-us", "-s", "200"), 22050), 22050)
        lines.append(json.dumps({"id": utt_id, "text": text, "audio": f"{utt_id}.wav", "language": "english"}))
    (folder / "heldout.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "heldout.jsonl"


class PeakLevel:
    """A naturalness judge of one's own, through the plug-in interface: the clip's peak level in dBFS."""

    fields = ("peak_dbfs",)

    def score_batch(self, wavs, sr):
        return [{"peak_dbfs": float(20 * np.log10(np.abs(wav).max()))} for wav in wavs]


def test_each_clip_is_judged_beside_its_real_recording(heldout: Path):
    """Real recordings scored as if synthesized (resampled to 24 kHz): each row's DNSMOS is within resampling of
    its real recording's, which rides in the same row; a clip is scored in the 'naturalness' step."""
    from helpers.recordings import recordings_as_utterances

    judges = Judges(JudgeSettings(asr=False, model_speaker_sim=False))  # DNSMOS on: the default
    items = read_heldout(heldout)
    real = measure_real(items, judges)
    bar = io.StringIO()
    with EvalProgress(0, 1, len(items), file=bar) as progress:
        rows = score_utterances(items, recordings_as_utterances(items), judges, real, progress=progress)
    assert "evaluating epoch 0: naturalness 2/2" in bar.getvalue()
    for item, row in zip(items, rows, strict=True):
        assert real.naturalness[item.utt_id] == {name: row[f"real_{name}"] for name in DNSMOS_FIELDS}
        for name in DNSMOS_FIELDS:
            assert 1.0 < row[name] < 5.0 and row[name] == pytest.approx(row[f"real_{name}"], abs=0.05), name


def test_a_judge_of_ones_own_plugs_in_and_dnsmos_off_leaves_nulls(heldout: Path):
    """The plug-in interface: a registered NaturalnessJudge's fields reach every row and, as real_*, its real
    recording's; with judges.dnsmos false the DNSMOS fields are there, null."""
    from helpers.recordings import recordings_as_utterances

    judges = Judges(JudgeSettings(asr=False, model_speaker_sim=False, dnsmos=False))
    assert judges.naturalness == []
    judges.naturalness.append(PeakLevel())
    assert isinstance(judges.naturalness[0], NaturalnessJudge)
    items = read_heldout(heldout)
    real = measure_real(items, judges)
    rows = score_utterances(items, recordings_as_utterances(items), judges, real)
    for item, row in zip(items, rows, strict=True):
        wav, _ = sf.read(str(item.audio), dtype="float32")
        assert row["real_peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(wav).max()))
        assert row["peak_dbfs"] == pytest.approx(row["real_peak_dbfs"], abs=0.5)  # the same speech at 24 kHz
        assert all(row[name] is None and row[f"real_{name}"] is None for name in DNSMOS_FIELDS)
