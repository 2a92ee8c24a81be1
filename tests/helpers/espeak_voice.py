"""espeak-ng speech with known pitch (-p), speed (-s) and amplitude (-a) in Qwen3-TTS's ten languages, each clip
synthesised once per test process (espeak-ng is deterministic: the same arguments give the same samples), and
:class:`EspeakSpeaker`, an instructed speaker (``evaluation.instruct_probe.InstructedSpeaker``) that follows the
probe's instructions by changing those settings: the oracle of the retention probe."""

from __future__ import annotations

import functools
import io
import subprocess
from collections.abc import Mapping, Sequence

import numpy as np
import soundfile as sf

ESPEAK_RATE = 22050  # what espeak-ng writes
# A sentence in each language Qwen3-TTS speaks, with the espeak-ng voice that reads it.
SENTENCES = {
    "en": ("en-us", "The weather is lovely today, so we walked to the river."),
    "de": ("de", "Das Wetter ist heute sehr schön, also gingen wir zum Fluss."),
    "fr": ("fr-fr", "Il fait très beau aujourd'hui, alors nous sommes allés à la rivière."),
    "es": ("es", "Hoy hace muy buen tiempo, así que caminamos hasta el río."),
    "it": ("it", "Oggi il tempo è molto bello, così siamo andati al fiume."),
    "pt": ("pt", "O tempo está muito bom hoje, então fomos até o rio."),
    "ru": ("ru", "Сегодня очень хорошая погода, и мы пошли к реке."),
    "zh": ("cmn", "今天天气很好，所以我们走到了河边。"),
    "ja": ("ja", "きょうはとてもいいてんきなので、かわまであるきました。"),
    "ko": ("ko", "오늘은 날씨가 아주 좋아서 강까지 걸어갔습니다."),
}
PLAIN = {"speed": 160, "pitch": 50, "amplitude": 100}  # espeak-ng's own defaults are 175 / 50 / 100


@functools.lru_cache(maxsize=512)
def espeak(text: str, voice: str = "en-us", speed: int = 160, pitch: int = 50, amplitude: int = 100) -> np.ndarray:
    """float32 mono speech at ESPEAK_RATE (read-only: shared by every caller in this process)."""
    out = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", str(amplitude),
                          "--stdout", text], capture_output=True, check=True).stdout  # fmt: skip
    wav, rate = sf.read(io.BytesIO(out), dtype="float32")
    assert rate == ESPEAK_RATE
    wav.setflags(write=False)
    return wav


# How the double follows each of the probe's instructions (metrics/instructions.py keys): what to change, and to what.
FOLLOWS = {
    "slow": {"speed": 100},
    "fast": {"speed": 260},
    "soft": {"amplitude": 40},
    "loud": {"amplitude": 180},
    "whisper": {"voice_variant": "+whisper"},
    "low": {"pitch": 15},
    "high": {"pitch": 90},
}


class EspeakSpeaker:
    """espeak-ng as an instructed speaker: an instruction whose text it knows (``instructions``: {text: key}) changes
    its settings as ``FOLLOWS`` says, scaled by ``strength`` (1.0: as FOLLOWS; 0: ignores every instruction, the
    speaker a fine-tune that forgot them would be). The seeds are accepted and unused (espeak is deterministic)."""

    def __init__(self, instructions: Mapping[str, str], voice: str = "en-us", strength: float = 1.0) -> None:
        self.instructions, self.voice, self.strength = dict(instructions), voice, strength
        self.calls = 0

    def settings(self, instruct: str | None) -> dict:
        settings = dict(PLAIN, voice=self.voice)
        key = self.instructions.get(instruct) if instruct is not None else None
        for name, value in FOLLOWS.get(key, {}).items():
            if name == "voice_variant":
                settings["voice"] = self.voice + value if self.strength >= 0.5 else self.voice
            else:
                settings[name] = round(PLAIN[name] + self.strength * (value - PLAIN[name]))
        return settings

    def __call__(
        self, texts: Sequence[str], instructs: Sequence[str | None], seeds: Sequence[int]
    ) -> tuple[list[np.ndarray], int]:
        self.calls += 1
        assert len(texts) == len(instructs) == len(seeds)
        return [
            espeak(text, **self.settings(instruct)) for text, instruct in zip(texts, instructs, strict=True)
        ], ESPEAK_RATE
