"""Build the small, deliberately dirty demo corpus shipped under ``data/demo/``.

All speech is real English synthesised by espeak-ng with ONE fixed target voice::

    espeak-ng -v en-us -s 175 -p 50 -a 100 -w out.wav "text"

(voice ``en-us``, 175 words/min, pitch 50, amplitude 100; espeak-ng writes 22050 Hz mono 16-bit PCM).
Resampling is done with the ``sox`` binary (``sox -D in.wav -e floating-point -b 32 out.wav rate -v SR``).
The espeak-ng lead/tail silence is trimmed (-45 dBFS gate, 20 ms margin) so that the padding added
below is exactly what the README says.

Outputs (all overwritten on every run)::

    data/demo/raw/wavs/utt_NNN.{wav,flac}   48 training clips, with deliberate dirt (see DIRT RULES)
    data/demo/raw/ref.wav                   reference clip of the same voice (own sentence), 24 kHz PCM_16
    data/demo/raw/train_raw.jsonl           {"audio", "text", "ref_audio", "language"} per line (Qwen3-TTS format)
    data/demo/heldout/heldout_NN.wav        8 held-out sentences, clean 24 kHz mono PCM_16
    data/demo/heldout.jsonl                 {"id", "text", "audio"} per line
    data/demo/README.md                     description and dirt table

DIRT RULES (n = 1-based clip number, clips sorted by id; random values from ``numpy.random.default_rng(0)``):

* sample rate: n % 12 == 4 -> 44100, n % 12 == 10 -> 48000, n % 3 == 0 -> 22050, else 16000.
* format (SPECIAL_FORMATS, all 16 kHz WAV): n == 2 FLOAT, n == 11 PCM_U8, n == 14 PCM_24, n == 20 stereo
  PCM_16 (channel gains STEREO_GAINS); other 16 kHz clips with n % 4 == 1 are mono PCM_16 WAV; everything
  else is 16-bit FLAC. (16-bit WAV for most clips would push the corpus past its 4 MB budget.)
* silence: lead 0.8-1.5 s if n % 8 == 3, trail 0.8-1.5 s if n % 8 == 7, none at all if n % 12 == 0,
  otherwise 0-0.25 s each; padding is -60 dBFS white noise (not digital zero) if n % 4 == 2.
* transcript dirt (audio is always the clean sentence): n % 9 == 4 gets one of TAGS; n == 37 gets extra
  whitespace, a tab, a curly apostrophe and a decomposed (NFD) "café".

Deterministic for a given espeak-ng/sox binary; run ``python scripts/make_demo_corpus.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data" / "demo"

# --- the one target voice -------------------------------------------------------------------------------------
ESPEAK_VOICE = "en-us"
ESPEAK_SPEED_WPM = 175
ESPEAK_PITCH = 50
ESPEAK_AMPLITUDE = 100
ESPEAK_SR = 22050
ESPEAK_FLAGS: tuple[str, ...] = tuple(
    f"-v {ESPEAK_VOICE} -s {ESPEAK_SPEED_WPM} -p {ESPEAK_PITCH} -a {ESPEAK_AMPLITUDE}".split()
)

SEED = 0
CLEAN_SR = 24000  # held-out and reference clips
LANGUAGE = "english"
TRIM_DBFS = -45.0
TRIM_MARGIN_S = 0.02
NOISE_DBFS = -60.0
STEREO_GAINS = (1.0, 0.8)
# clip number -> (container, soundfile subtype, channels); all are 16 kHz clips
SPECIAL_FORMATS: dict[int, tuple[str, str, int]] = {
    2: ("WAV", "FLOAT", 1),
    11: ("WAV", "PCM_U8", 1),
    14: ("WAV", "PCM_24", 1),
    20: ("WAV", "PCM_16", 2),
}

# --- texts (written for this corpus) --------------------------------------------------------------------------
TRAIN_SENTENCES: tuple[str, ...] = (
    "The morning train was twelve minutes late.",
    "She left her umbrella on the bus.",
    "Please close the window before it rains.",
    "My brother planted tomatoes by the fence.",
    "The library opens at nine on weekdays.",
    "We watched the sunset from the pier.",
    "Could you pass me the salt, please?",
    "The kettle whistled while everyone slept.",
    "He painted the kitchen pale green.",
    "Our flight was delayed by a storm.",
    "The children built a castle of sand.",
    "I forgot my keys at the office.",
    "A small dog barked at the cyclist.",
    "The museum has a new exhibit.",
    "They served warm bread with tomato soup.",
    "Turn left at the second traffic light.",
    "The meeting moved to Thursday afternoon.",
    "She hummed a tune while folding laundry.",
    "The corner bakery sells fresh bagels.",
    "Remember to water the plants on Sunday.",
    "The old clock stopped at noon.",
    "We need more paper for the printer.",
    "He jogs around the lake every morning.",
    "This soup needs a little more pepper.",
    "A gentle breeze moved through the grass.",
    "The students listened to the guest speaker.",
    "Grandmother knits scarves for the whole family.",
    "The bridge is closed for repairs.",
    "I would like a cup of coffee.",
    "The cat slept on the windowsill.",
    "Our team finished the project early.",
    "The snow melted in the bright sun.",
    "Please sign your name at the bottom.",
    "The farmer sold apples at the market.",
    "He found an old photo in the book.",
    "The concert was louder than expected.",
    "Let's meet outside the café at seven.",
    "The river was calm after the storm.",
    "She wrote a letter to her friend.",
    "The bus stop is across the street.",
    "We spent the evening playing board games.",
    "The nurse checked his temperature twice.",
    "A flock of geese flew over the harbor.",
    "The printer ran out of ink again.",
    "They painted a mural on the wall.",
    "Dinner will be ready in twenty minutes.",
    "The lighthouse guided ships through the fog.",
    "He carried the heavy boxes upstairs.",
)
HELDOUT_SENTENCES: tuple[str, ...] = (
    "The garden looks lovely after the rain.",
    "Please remember to lock the back door.",
    "The station was busy on Friday evening.",
    "He poured orange juice into two glasses.",
    "Our neighbors are moving to a village.",
    "The teacher drew a map on the board.",
    "She kept a warm blanket on the sofa.",
    "The pilot said we would land soon.",
)
REF_SENTENCE = "Hello, this is a short sample of my normal speaking voice."

# (tag, position) for the clips with n % 9 == 4, in order
TAGS: tuple[tuple[str, str], ...] = (
    ("<laugh>", "start"),
    ("[breath]", "middle"),
    ("(applause)", "end"),
    ("*sigh*", "start"),
    ("[laughter]", "end"),
)
UNICODE_CLIP = 37
UNICODE_TEXT = unicodedata.normalize("NFD", "  Let\u2019s meet  outside the café at seven. \t")


@dataclass(frozen=True)
class ClipPlan:
    """What dirt one training clip gets."""

    n: int
    sr: int
    fmt: str  # "WAV" or "FLAC"
    subtype: str
    channels: int
    lead_s: float
    trail_s: float
    noise_pad: bool
    text_clean: str
    text_dirty: str

    @property
    def clip_id(self) -> str:
        return f"utt_{self.n:03d}"

    @property
    def filename(self) -> str:
        return f"{self.clip_id}.{'flac' if self.fmt == 'FLAC' else 'wav'}"


def require_tools() -> None:
    """Exit with a clear message when a needed binary is missing."""
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        sys.exit(
            f"error: {', '.join(missing)} not found on PATH; install it first "
            "(Debian/Ubuntu: apt-get install espeak-ng sox)"
        )


def rate_for(n: int) -> int:
    if n % 12 == 4:
        return 44100
    if n % 12 == 10:
        return 48000
    if n % 3 == 0:
        return 22050
    return 16000


def format_for(n: int, sr: int) -> tuple[str, str, int]:
    """(container, soundfile subtype, channels) for clip n."""
    if n in SPECIAL_FORMATS:
        return SPECIAL_FORMATS[n]
    if sr == 16000 and n % 4 == 1:
        return "WAV", "PCM_16", 1
    return "FLAC", "PCM_16", 1


def dirty_text(n: int, clean: str, tag_index: dict[int, int]) -> str:
    if n == UNICODE_CLIP:
        return UNICODE_TEXT
    if n not in tag_index:
        return clean
    tag, where = TAGS[tag_index[n]]
    if where == "start":
        return f"{tag} {clean}"
    if where == "end":
        return f"{clean[:-1]} {tag}{clean[-1]}" if clean[-1] in ".?!" else f"{clean} {tag}"
    words = clean.split()
    mid = len(words) // 2
    return " ".join([*words[:mid], tag, *words[mid:]])


def plan_clips(rng: np.random.Generator) -> list[ClipPlan]:
    tagged = [n for n in range(1, len(TRAIN_SENTENCES) + 1) if n % 9 == 4]
    assert len(tagged) == len(TAGS)
    tag_index = {n: i for i, n in enumerate(tagged)}
    plans: list[ClipPlan] = []
    for n, clean in enumerate(TRAIN_SENTENCES, start=1):
        short = rng.uniform(0.0, 0.25, size=2)
        long = rng.uniform(0.8, 1.5, size=2)
        lead = long[0] if n % 8 == 3 else short[0]
        trail = long[1] if n % 8 == 7 else short[1]
        if n % 12 == 0:
            lead = trail = 0.0
        sr = rate_for(n)
        fmt, subtype, channels = format_for(n, sr)
        plans.append(
            ClipPlan(
                n=n,
                sr=sr,
                fmt=fmt,
                subtype=subtype,
                channels=channels,
                lead_s=round(float(lead), 3),
                trail_s=round(float(trail), 3),
                noise_pad=n % 4 == 2,
                text_clean=clean,
                text_dirty=dirty_text(n, clean, tag_index),
            )
        )
    return plans


def synthesize(text: str, sr: int, workdir: Path) -> np.ndarray:
    """espeak-ng -> sox resample -> float32 mono, trimmed to the speech."""
    raw, rs = workdir / "espeak.wav", workdir / "resampled.wav"
    subprocess.run(["espeak-ng", *ESPEAK_FLAGS, "-w", str(raw), "--", text], check=True)
    rate_fx = [] if sr == ESPEAK_SR else ["rate", "-v", str(sr)]
    subprocess.run(["sox", "-D", str(raw), "-e", "floating-point", "-b", "32", str(rs), *rate_fx], check=True)
    audio, got_sr = sf.read(rs, dtype="float32")
    assert got_sr == sr and audio.ndim == 1, (got_sr, audio.shape)
    return trim(audio, sr)


def trim(audio: np.ndarray, sr: int) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > 10 ** (TRIM_DBFS / 20))
    if loud.size == 0:
        raise RuntimeError("espeak-ng produced silence")
    margin = int(TRIM_MARGIN_S * sr)
    return audio[max(0, loud[0] - margin) : loud[-1] + margin + 1]


def pad(audio: np.ndarray, sr: int, lead_s: float, trail_s: float, noise: bool, rng: np.random.Generator) -> np.ndarray:
    def silence(seconds: float) -> np.ndarray:
        n = int(round(seconds * sr))
        if not noise:
            return np.zeros(n, dtype=np.float32)
        return (rng.standard_normal(n) * 10 ** (NOISE_DBFS / 20)).astype(np.float32)

    return np.concatenate([silence(lead_s), audio, silence(trail_s)])


def zero_peak_timestamp(path: Path) -> None:
    """libsndfile stamps the wall-clock time into the PEAK chunk of float WAVs; zero it for reproducible bytes."""
    data = bytearray(path.read_bytes())
    pos = data.find(b"PEAK", 12, data.find(b"data", 12))
    if pos >= 0:  # "PEAK", chunk size (4), version (4), timestamp (4)
        data[pos + 12 : pos + 16] = bytes(4)
        path.write_bytes(bytes(data))


def write_clean(path: Path, text: str, workdir: Path) -> float:
    audio = synthesize(text, CLEAN_SR, workdir)
    sf.write(path, audio, CLEAN_SR, format="WAV", subtype="PCM_16")
    return len(audio) / CLEAN_SR


def ids(nums: list[int]) -> str:
    return ", ".join(str(n) for n in nums) + f" ({len(nums)})"


def readme_text(plans: list[ClipPlan]) -> str:
    def sel(pred: Callable[[ClipPlan], bool]) -> str:
        return ids([p.n for p in plans if pred(p)])

    odd = ", ".join(f"{n} {sub}{' stereo' if ch == 2 else ''}" for n, (_, sub, ch) in sorted(SPECIAL_FORMATS.items()))
    rows = [
        *[(f"{sr} Hz", sel(lambda p, sr=sr: p.sr == sr)) for sr in (16000, 22050, 44100, 48000)],
        ("WAV container (all others are 16-bit FLAC)", sel(lambda p: p.fmt == "WAV")),
        (f"odd WAV formats (stereo: gains L/R {STEREO_GAINS[0]}/{STEREO_GAINS[1]})", odd),
        (
            "long silence, 0.8-1.5 s",
            f"lead: {sel(lambda p: p.lead_s >= 0.8)}; trail: {sel(lambda p: p.trail_s >= 0.8)}",
        ),
        ("no padding at all (others: 0-0.25 s each side)", sel(lambda p: p.lead_s == p.trail_s == 0.0)),
        (f"{NOISE_DBFS:.0f} dBFS noise instead of digital-zero padding", sel(lambda p: p.noise_pad)),
        ("non-speech tag in transcript", "; ".join(f"{p.n} `{p.text_dirty}`" for p in plans if p.n % 9 == 4)),
        ("extra whitespace, curly quote, NFD `café`", str(UNICODE_CLIP)),
    ]
    flags = " ".join(ESPEAK_FLAGS)
    lines = [
        "# Demo corpus (synthetic, one voice)",
        f'English speech made with `espeak-ng {flags} -w out.wav "text"` (22050 Hz source; sentences written'
        " for this repo).",
        f"`raw/`: {len(plans)} training clips `wavs/utt_NNN.{{wav,flac}}`, `ref.wav` (own sentence, clean 24 kHz) and "
        "`train_raw.jsonl` (Qwen3-TTS manifest: audio, text, ref_audio, language; paths relative to `raw/`).",
        f"`heldout/` + `heldout.jsonl`: {len(HELDOUT_SENTENCES)} clean 24 kHz mono PCM_16 recordings of sentences"
        " absent from training (for speech-rate evaluation).",
        "",
        "| deliberate dirt in training clips | clip numbers (utt_NNN) |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in rows],
        "",
        "Audio holds only the clean sentence (tags, whitespace and unicode are transcript dirt). Regenerate (needs"
        " espeak-ng and sox; deterministic, seed 0): `python scripts/make_demo_corpus.py`",
    ]
    return "\n".join(lines) + "\n"


def norm_text(text: str) -> str:
    """Lower-case, NFC, punctuation stripped, whitespace collapsed (for overlap checks)."""
    text = unicodedata.normalize("NFC", text).lower().replace("\u2019", "'")
    return " ".join("".join(c if c.isalnum() or c.isspace() else " " for c in text).split())


def check_texts() -> None:
    """Training sentences are unique and no held-out/reference sentence occurs inside any training text."""
    train = [norm_text(s) for s in TRAIN_SENTENCES]
    if len(set(train)) != len(train):
        sys.exit("error: duplicate training sentence")
    for s in (*HELDOUT_SENTENCES, REF_SENTENCE):
        if any(norm_text(s) in t or t in norm_text(s) for t in train):
            sys.exit(f"error: held-out/reference sentence overlaps the training texts: {s!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: data/demo)")
    args = parser.parse_args(argv)
    require_tools()
    t0 = time.perf_counter()

    check_texts()

    out: Path = args.out
    raw_dir, wav_dir, held_dir = out / "raw", out / "raw" / "wavs", out / "heldout"
    for d in (wav_dir, held_dir):  # idempotent: drop stale clips (a clip may have changed extension)
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)

    rng = np.random.default_rng(SEED)
    plans = plan_clips(rng)
    total_s = 0.0
    speech_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        manifest = []
        for p in plans:
            speech = synthesize(p.text_clean, p.sr, work)
            speech_s.append(len(speech) / p.sr)
            audio = pad(speech, p.sr, p.lead_s, p.trail_s, p.noise_pad, rng)
            if p.channels == 2:
                audio = np.stack([audio * STEREO_GAINS[0], audio * STEREO_GAINS[1]], axis=1)
            sf.write(wav_dir / p.filename, np.clip(audio, -1.0, 1.0), p.sr, format=p.fmt, subtype=p.subtype)
            if p.subtype == "FLOAT":
                zero_peak_timestamp(wav_dir / p.filename)
            total_s += len(audio) / p.sr
            manifest.append(
                {"audio": f"wavs/{p.filename}", "text": p.text_dirty, "ref_audio": "ref.wav", "language": LANGUAGE}
            )
        total_s += write_clean(raw_dir / "ref.wav", REF_SENTENCE, work)
        heldout = []
        for i, text in enumerate(HELDOUT_SENTENCES, start=1):
            hid = f"heldout_{i:02d}"
            total_s += write_clean(held_dir / f"{hid}.wav", text, work)
            heldout.append({"id": hid, "text": text, "audio": f"heldout/{hid}.wav"})

    def dump(path: Path, rows: list[dict[str, str]]) -> None:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")

    dump(raw_dir / "train_raw.jsonl", manifest)
    dump(out / "heldout.jsonl", heldout)
    (out / "README.md").write_text(readme_text(plans), encoding="utf-8")

    files = [f for f in sorted(out.rglob("*")) if f.is_file()]
    total_bytes = sum(f.stat().st_size for f in files)
    print(
        f"wrote {out}: {len(plans)} training clips + ref + {len(heldout)} held-out; "
        f"{total_s:.1f} s audio (train speech {min(speech_s):.2f}-{max(speech_s):.2f} s); "
        f"{len(files)} files, {total_bytes} bytes; {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
