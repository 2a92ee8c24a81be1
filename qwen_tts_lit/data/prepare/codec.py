"""The model side of ``prepare``: load the checkpoint, encode clips to 12 Hz codes (cached), compute x-vectors.

Everything runs through the official wrapper (``qwen_tts.Qwen3TTSModel``): ``model.model.speech_tokenizer.encode``
for codes and ``model.model.extract_speaker_embedding`` for the x-vector, so prepared data is what upstream inference
would compute. Weights are loaded in float32: codes are argmins over codebook distances, and a bf16 encoder would
give different codes on different hardware.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from qwen_tts_lit.data.prepare.audio import pcm16_to_float
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import write_atomic

CODES_RECIPE = "qwen_tts_lit.codes/v1"  # bump when the way codes are computed changes: old cache entries then miss
NUM_CODE_GROUPS = 16


def load_model(model: str, device: str):
    """``Qwen3TTSModel`` (the official wrapper) in float32 on ``device``."""
    from qwen_tts_lit.upstream.loading import load_qwen3_tts

    try:
        return load_qwen3_tts(model, "float32", device=device)
    except (OSError, ValueError) as error:
        raise UserError(f"--model {model}: cannot load the checkpoint: {error}") from error


def _tensor_bytes(tensor) -> bytes:
    import torch

    return tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes()


def tokenizer_fingerprint(speech_tokenizer) -> str:
    """Hash of the speech tokenizer's weights and architecture: codes cached under another tokenizer never match."""
    digest = hashlib.sha256(CODES_RECIPE.encode())
    config = {k: v for k, v in speech_tokenizer.model.config.to_dict().items() if not k.startswith("_")}
    for volatile in ("transformers_version", "torch_dtype", "dtype"):  # loading, not computing, details
        config.pop(volatile, None)
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    digest.update(str(speech_tokenizer.feature_extractor.sampling_rate).encode())
    for name, tensor in sorted(speech_tokenizer.model.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


class CodeCache:
    """``.npy`` files of codes keyed by sha256(tokenizer fingerprint, cleaned 16-bit audio).

    Each entry is written to a temporary name and renamed, so a kill leaves whole entries or none, and a re-run
    (or a resumed run) encodes only what is missing.
    """

    def __init__(self, directory: Path, fingerprint: str) -> None:
        self.directory, self.fingerprint = directory, fingerprint
        directory.mkdir(parents=True, exist_ok=True)

    def key(self, pcm: np.ndarray) -> str:
        digest = hashlib.sha256(self.fingerprint.encode())
        digest.update(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached (num_frames, 16) codes, or None (also for an entry that is not valid codes)."""
        try:
            codes = np.load(self.path(key), allow_pickle=False)
        except (OSError, ValueError):  # absent, or damaged by something other than a kill
            return None
        ok = codes.dtype == np.int64 and codes.ndim == 2 and codes.shape[1] == NUM_CODE_GROUPS
        return codes if ok else None

    def put(self, key: str, codes: np.ndarray) -> None:
        write_atomic(self.path(key), npy_bytes(codes))


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.int64), allow_pickle=False)
    return buffer.getvalue()


def encode(speech_tokenizer, pcms: list[np.ndarray], rate: int) -> list[np.ndarray]:
    """One padded batch through ``speech_tokenizer.encode``: [(num_frames, 16) int64] in input order."""
    output = speech_tokenizer.encode([pcm16_to_float(pcm) for pcm in pcms], sr=rate)
    return [codes.cpu().numpy().astype(np.int64) for codes in output.audio_codes]


def speaker_embedding(model, audio: np.ndarray, rate: int) -> np.ndarray:
    """(D,) float32 x-vector, exactly as upstream's voice-clone prompt computes it (24 kHz float input)."""
    embedding = model.model.extract_speaker_embedding(audio.astype(np.float32), rate)
    return embedding.float().cpu().numpy()
