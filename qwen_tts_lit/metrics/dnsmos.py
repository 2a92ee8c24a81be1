"""Naturalness without a reference: Microsoft's DNSMOS (P.835 SIG/BAK/OVRL, P.808 MOS), and the interface any other
naturalness judge plugs into (:class:`NaturalnessJudge`).

DNSMOS predicts the mean opinion score listeners would give a clip on the ITU scales (1 bad .. 5 excellent): SIG the
speech itself, BAK the background, OVRL the whole (P.835), and the P.808 MOS of a second model. The ONNX models ship
inside the ``speechmos`` wheel (MIT, 9 MB: nothing is downloaded). This module runs them itself so that the
windows of many clips go through one ONNX call; the scores are those of ``speechmos.dnsmos.run`` (and of
Microsoft's ``dnsmos_local.py``) on each clip: the same windows, features and calibration (the tests check it).

A silent clip (:func:`~qwen_tts_lit.metrics.audio.is_silent`) scores the bottom of the scale, 1.0 on every field,
without running the models: a listener gives silence the lowest rating, while the models, which never heard
digital silence, rate it above noise (OVRL 1.8, BAK 3.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from qwen_tts_lit.audio import resample
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.metrics.audio import is_silent
from qwen_tts_lit.metrics.selection import DNSMOS_FIELDS  # its row fields, named where the rule reads them

DNSMOS_RATE = 16000
WINDOW_SECONDS = 9.01  # the models' input: 144160 samples
WINDOW_SAMPLES = int(WINDOW_SECONDS * DNSMOS_RATE)
SCALE_FLOOR = 1.0  # MOS 1 = "bad": a silent clip's score on every field
WINDOWS_PER_CALL = 16  # windows per ONNX call (16 x 144160 floats in; the P.835 network's activations bound it)
P835_MODEL, P808_MODEL = "sig_bak_ovr.onnx", "model_v8.onnx"  # in speechmos/dnsmos_models/
# The quadratic fits from the P.835 network's raw outputs to MOS (speechmos.dnsmos / dnsmos_local.py, non-personal).
P835_CALIBRATION = {
    "dnsmos_sig": (-0.08397278, 1.22083953, 0.0052439),
    "dnsmos_bak": (-0.13166888, 1.60915514, -0.39604546),
    "dnsmos_ovrl": (-0.06766283, 1.11546468, 0.04602535),
}
P808_MELS, P808_FRAME, P808_HOP = 120, 320, 160


@runtime_checkable
class NaturalnessJudge(Protocol):
    """A judge of how natural a clip sounds, without a reference: DNSMOS, or one whose weights a user has locally
    (a UTMOS folder). Every row of an evaluation carries each of its ``fields``; its real recording's are the
    ``real_``-prefixed ones. Register an instance in ``evaluation/judges.py`` (``naturalness_judges``)."""

    fields: tuple[str, ...]
    """The row fields it writes (unique across judges, e.g. ``("utmos",)``)."""

    def score_batch(self, wavs: Sequence[np.ndarray], sr: int) -> list[dict[str, float]]:
        """One {field: score} per clip (mono float32 at ``sr``; resample to the model's own rate), all clips of an
        epoch in as few model calls as memory allows."""
        ...


def windows(audio: np.ndarray) -> list[np.ndarray]:
    """The 9.01 s windows DNSMOS averages over, of 16 kHz mono audio, as the reference cuts them: a clip shorter
    than a window is doubled until it fills one; windows start every second."""
    while len(audio) < WINDOW_SAMPLES:
        audio = np.append(audio, audio)
    hops = int(np.floor(len(audio) / DNSMOS_RATE) - WINDOW_SECONDS) + 1
    cut = [audio[int(i * DNSMOS_RATE) : int((i + WINDOW_SECONDS) * DNSMOS_RATE)] for i in range(hops)]
    # The reference's float end (e.g. int(16.01 * 16000) = 160159) leaves some windows one sample short, and it
    # skips them: so do we, so that the scores stay the published DNSMOS's.
    return [window for window in cut if len(window) == WINDOW_SAMPLES]


def p808_features(window: np.ndarray) -> np.ndarray:
    """The P.808 model's input of one window: a (900, 120) log-mel spectrogram, scaled as the model was trained."""
    import librosa

    mel = librosa.feature.melspectrogram(y=window[:-P808_HOP], sr=DNSMOS_RATE, n_fft=P808_FRAME + 1,
                                         hop_length=P808_HOP, n_mels=P808_MELS)  # fmt: skip
    return ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T.astype(np.float32)  # (900, 120)


def calibrate(raw: np.ndarray) -> dict[str, np.ndarray]:
    """P.835 MOS per window from the network's raw (N, 3) SIG, BAK, OVRL outputs."""
    return {name: np.polyval(P835_CALIBRATION[name], raw[:, column]) for column, name in enumerate(DNSMOS_FIELDS[:3])}


def models_folder() -> Path:
    """``speechmos``'s folder of DNSMOS ONNX models (found without importing its code, which needs requests)."""
    from importlib.util import find_spec

    spec = find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("DNSMOS judge: the speechmos package is not installed (pip install --no-deps "
                        "speechmos==0.0.1.1), or set judges.dnsmos: false")  # fmt: skip
    return Path(next(iter(spec.submodule_search_locations))) / "dnsmos_models"


class DNSMOS:
    """DNSMOS P.835 (SIG, BAK, OVRL) and P.808 through onnxruntime; the two models load on first use."""

    fields = DNSMOS_FIELDS

    def __init__(self, folder: str | Path | None = None, device: str = "cpu", threads: int = 0) -> None:
        """folder: holds sig_bak_ovr.onnx and model_v8.onnx (None: those speechmos ships). device: "cuda" runs
        them on the GPU where the installed onnxruntime has a CUDA provider (onnxruntime-gpu), else on the CPU.
        threads: onnxruntime's intra-op threads on the CPU (0: its default, one per core)."""
        self.folder, self.device, self.threads = Path(folder) if folder else None, device, threads
        self._sessions = None

    @property
    def sessions(self):
        """(P.835 session, P.808 session)."""
        if self._sessions is None:
            import onnxruntime as ort

            folder = self.folder or models_folder()
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            providers = ["CPUExecutionProvider"]
            if self.device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            self._sessions = tuple(ort.InferenceSession(str(folder / name), sess_options=options,
                                                        providers=providers)
                                   for name in (P835_MODEL, P808_MODEL))  # fmt: skip
        return self._sessions

    def score(self, wav: np.ndarray, sr: int) -> dict[str, float]:
        """One clip's scores (any rate)."""
        return self.score_batch([wav], sr)[0]

    def score_batch(self, wavs: Sequence[np.ndarray], sr: int) -> list[dict[str, float]]:
        """Each clip's mean over its windows, the windows of all clips through each model ``WINDOWS_PER_CALL`` at
        a time; a silent clip scores ``SCALE_FLOOR`` on every field."""
        cut, owners = [], []
        for index, wav in enumerate(wavs):
            audio = resample(wav, sr, DNSMOS_RATE)
            if is_silent(audio):  # also keeps an empty clip out of the doubling loop
                continue
            own = windows(np.clip(audio, -1.0, 1.0).astype(np.float32))  # the models were fed [-1, 1] audio
            cut += own
            owners += [index] * len(own)
        scores = [dict.fromkeys(DNSMOS_FIELDS, SCALE_FLOOR) for _ in wavs]
        if not cut:
            return scores
        p835, p808 = self.sessions
        raw, mos = [], []
        for start in range(0, len(cut), WINDOWS_PER_CALL):
            chunk = cut[start : start + WINDOWS_PER_CALL]
            raw.append(p835.run(None, {"input_1": np.stack(chunk)})[0])  # (n, 3)
            features = np.stack([p808_features(window) for window in chunk])  # (n, 900, 120)
            mos.append(p808.run(None, {"input_1": features})[0][:, 0])  # (n,)
        per_window = calibrate(np.concatenate(raw)) | {"dnsmos_p808": np.concatenate(mos)}
        owners_array = np.asarray(owners)
        for index in sorted(set(owners)):
            mine = owners_array == index
            scores[index] = {name: float(values[mine].mean()) for name, values in per_window.items()}
        return scores
