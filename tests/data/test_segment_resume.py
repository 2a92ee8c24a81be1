"""segment's failure modes on a short m4a (decoded by PyAV): a run killed half-way resumes to byte-identical output
without transcribing anything twice; what cannot work fails at start with exit 2 and one line naming the problem."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.long_recordings import MAIN_VOICE, SENTENCES, espeak
from helpers.prepare import tree_bytes

from qwen_tts_lit.cli import main
from qwen_tts_lit.data.segment.decode import probe, read_blocks

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt)")
RATE = 24000


def write_m4a(path: Path, audio: np.ndarray, rate: int) -> Path:
    """AAC in an MP4 container, encoded with PyAV (FFmpeg): a format libsndfile cannot read."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(audio[None].astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def voice_memo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three sentences of one voice with pauses, 11 s, as memo.m4a."""
    pause = np.zeros(int(0.8 * RATE), np.float32)
    parts = [pause]
    for key in ("a3", "a5", "a6"):
        parts += [espeak(SENTENCES[key], MAIN_VOICE, RATE), pause]
    return write_m4a(tmp_path_factory.mktemp("memo") / "memo.m4a", np.concatenate(parts), RATE)


def test_m4a_is_read_by_pyav_in_blocks(voice_memo: Path):
    info = probe(voice_memo)
    assert (info.decoder, info.rate, info.channels) == ("pyav", RATE, 1)
    blocks = list(read_blocks(info, block_seconds=1.0))
    assert len(blocks) > 5 and all(b.dtype == np.float32 and b.shape[1] == 1 for b in blocks)
    assert sum(len(b) for b in blocks) / RATE == pytest.approx(info.seconds, abs=0.1)


# A real subprocess, SIGKILLed right after its Nth transcript reached the cache.
KILLED_RUN = """
import os, signal, sys
from qwen_tts_lit.data.segment import measure
put, calls = measure.MeasureCache.put, [0]
def put_then_die(self, key, measured):
    put(self, key, measured)
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AFTER_PUTS"]):
        os.kill(os.getpid(), signal.SIGKILL)
measure.MeasureCache.put = put_then_die
from qwen_tts_lit.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # a whole segment run in a subprocess, killed and resumed: 32 s, a fifth of the fast lane
def test_a_killed_run_resumes_to_byte_identical_output(voice_memo: Path, tmp_path: Path):
    killed, clean = tmp_path / "killed", tmp_path / "uninterrupted"
    args = ["segment", "--input", str(voice_memo), "--progress", "false"]
    env = {**os.environ, "KILL_AFTER_PUTS": "2"}
    result = subprocess.run([sys.executable, "-c", KILLED_RUN, *args, "--output", str(killed)], env=env,
                            capture_output=True, timeout=300)  # fmt: skip
    assert result.returncode == -9, result.stderr.decode()
    assert not (killed / "train_raw.jsonl").exists()  # no manifest: the folder does not look finished
    cached = {p: p.stat().st_mtime_ns for p in (killed / ".work" / "measure").glob("*.json")}
    assert len(cached) == 2 and len(list((killed / "clips").glob("*.wav"))) == 3
    assert main([*args, "--output", str(killed)]) == 0
    assert main([*args, "--output", str(clean)]) == 0
    assert tree_bytes(killed) == tree_bytes(clean)
    assert {p: p.stat().st_mtime_ns for p in cached} == cached  # resumed: nothing transcribed twice
    assert len((killed / "train_raw.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--language", "de"], "the ASR model tiny.en (the bundled default) is English-only; pass --asr"),
        (["--language", "sw"], "Qwen3-TTS does not speak it; it speaks en (english), zh (chinese)"),
        (["--asr", "/nonexistent/whisper-model"], "--asr /nonexistent/whisper-model: cannot load"),
        (["--max_seconds", "30"], "--max_seconds: must be above --min_seconds (2.0) and below 24"),
    ],
)
def test_what_cannot_work_fails_at_start_with_exit_2(voice_memo, tmp_path, capsys, extra, message):
    output = tmp_path / "out"
    assert main(["segment", "--input", str(voice_memo), "--output", str(output), "--progress", "false", *extra]) == 2
    assert message in capsys.readouterr().err
    assert not output.exists()


def test_unreadable_input_and_a_foreign_output_folder_are_refused(voice_memo, tmp_path, capsys):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF, but not really a wave file")
    assert main(["segment", "--input", str(voice_memo), str(broken), "--output", str(tmp_path / "o")]) == 2
    assert f"{broken}: cannot decode it as audio" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["segment", "--input", str(voice_memo), "--output", str(foreign)]) == 2
    assert "not empty and not an earlier segment output" in capsys.readouterr().err


def test_a_row_deleted_from_the_sheet_means_drop(voice_memo: Path, tmp_path: Path, capsys):
    """Deleting a clip's row from review.csv was silently undone (the clip came back as keep and was trained on)."""
    import csv
    import json

    output = tmp_path / "out"
    args = ["segment", "--input", str(voice_memo), "--output", str(output), "--progress", "false"]
    assert main(args) == 0
    sheet = output / "review.csv"
    rows = list(csv.DictReader(sheet.open(newline="")))
    kept = [row["id"] for row in rows if row["status"] == "keep"]
    assert len(kept) == 3
    with sheet.open("w", newline="") as handle:  # the user deletes the second clip's row
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(row for row in rows if row["id"] != kept[1])
    capsys.readouterr()

    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"review.csv has no row for 1 clip(s) it listed ({kept[1]}): a deleted row means drop" in err
    manifest = [json.loads(line)["id"] for line in (output / "train_raw.jsonl").read_text().splitlines()]
    assert manifest == [kept[0], kept[2]]
    rewritten = {row["id"]: row for row in csv.DictReader(sheet.open(newline=""))}
    assert (rewritten[kept[1]]["status"], rewritten[kept[1]]["auto_status"]) == ("drop", "keep")  # now an edit
    before = tree_bytes(output)
    assert main(args) == 0  # the drop lives in the sheet: another run changes nothing and says nothing
    assert tree_bytes(output) == before and "has no row" not in capsys.readouterr().err

    sheet.unlink()  # a sheet moved away starts a new one from the machine's statuses
    assert main(args) == 0
    assert len((output / "train_raw.jsonl").read_text().splitlines()) == 3


def test_an_mp3_is_segmented_without_the_decoders_noise(tmp_path: Path, capfd):
    """libmpg123 (inside libsndfile) wrote `[src/libmpg123/layer3.c:...] error: part2_3_length (1856) too large for
    available bit count` to fd 2 for frames it then decodes, and the scan bar overran its total (TqdmWarning)."""
    import soundfile as sf

    pause = np.zeros(int(1.0 * RATE), np.float32)
    parts = [pause]
    for key in ("a3", "a5", "a6"):
        parts += [espeak(SENTENCES[key], MAIN_VOICE, RATE), pause]
    mp3 = tmp_path / "talk.mp3"
    sf.write(str(mp3), np.concatenate(parts), RATE, format="MP3")  # libsndfile's own (LAME) encoder
    with sf.SoundFile(str(mp3)) as recording:  # read in blocks, as segment's decoder does (a whole read is silent)
        for _ in recording.blocks(4096):
            pass
    assert "part2_3_length" in capfd.readouterr().err  # control: the decoder does print it for this file
    assert main(["segment", "--input", str(mp3), "--output", str(tmp_path / "out")]) == 0  # with progress bars
    err = capfd.readouterr().err
    assert "libmpg123" not in err and "part2_3_length" not in err
    assert "TqdmWarning" not in err and "clamping frac" not in err
