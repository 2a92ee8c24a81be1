"""segment's pure parts on hand-made numbers: where to cut (frame tracks -> clips), which status each clip gets and
why, the review sheet's edits, the recording names. No model, no audio file: milliseconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qwen_tts_lit.data.segment.cuts import CutSettings, plan_cuts, speech_runs, split_long_run
from qwen_tts_lit.data.segment.decode import find_recordings
from qwen_tts_lit.data.segment.filters import (
    DROP,
    KEEP,
    REASONS,
    REVIEW,
    Evidence,
    FilterSettings,
    decide,
    dominant_speaker,
    status_of,
    word_across,
)
from qwen_tts_lit.data.segment.request import SegmentRequest
from qwen_tts_lit.data.segment.scan import FRAME_S, Scan, span_facts
from qwen_tts_lit.data.segment.sheet import read_sheet, sheet_bytes
from qwen_tts_lit.data.segment.summary import build_summary, summary_text
from qwen_tts_lit.errors import UserError

SETTINGS = CutSettings(min_seconds=2.0, max_seconds=15.0, margin_seconds=0.2, min_pause_seconds=0.3,
                       max_inner_pause_seconds=1.0, threshold=0.5)  # fmt: skip


def tracks(*pieces: tuple[str, float]) -> tuple[np.ndarray, np.ndarray, float]:
    """(speech probability, level dB, seconds) of consecutive ("speech" | "pause", seconds) pieces."""
    prob, level = [], []
    for kind, seconds in pieces:
        n = round(seconds / FRAME_S)
        prob += [0.95 if kind == "speech" else 0.02] * n
        level += [-20.0 if kind == "speech" else -80.0] * n
    return np.array(prob, np.float32), np.array(level, np.float32), len(prob) * FRAME_S


def spans(cuts) -> list[float]:
    return [t for c in cuts for t in (c.speech_start, c.speech_end)]


def near(values: list[float]):
    return pytest.approx(values, abs=FRAME_S)  # hand-made seconds land on the 32 ms frame grid


def test_speech_runs_use_silero_hysteresis():
    prob = np.array([0.1, 0.6, 0.4, 0.36, 0.2, 0.1, 0.55, 0.9])
    assert speech_runs(prob, 0.5) == [(1, 4), (6, 8)]  # 0.4 and 0.36 stay speech (above 0.5 - 0.15), 0.2 leaves


def test_each_sentence_its_own_clip_with_margins_inside_the_pauses():
    prob, level, seconds = tracks(("pause", 1.0), ("speech", 3.0), ("pause", 0.8), ("speech", 4.0), ("pause", 0.32),
                                  ("speech", 2.5), ("pause", 1.0))  # fmt: skip
    cuts = plan_cuts(prob, level, seconds, SETTINGS)
    assert spans(cuts) == near([1.0, 4.0, 4.8, 8.8, 9.12, 11.62])
    assert cuts[0].start == pytest.approx(cuts[0].speech_start - 0.2)  # the full margin where the pause allows it
    assert cuts[0].end == pytest.approx(cuts[0].speech_end + 0.2)
    assert cuts[1].end == cuts[2].start == pytest.approx((cuts[1].speech_end + cuts[2].speech_start) / 2)  # 0.32 s
    # pause: each side gets half of it, never an overlap
    assert not any(c.forced_start or c.forced_end for c in cuts)


def test_gaps_shorter_than_the_minimum_pause_stay_inside_a_clip():
    prob, level, seconds = tracks(("pause", 0.5), ("speech", 2.0), ("pause", 0.2), ("speech", 2.0), ("pause", 0.5))
    assert len(plan_cuts(prob, level, seconds, SETTINGS)) == 1


def test_a_short_phrase_joins_the_neighbour_across_the_shorter_pause():
    prob, level, seconds = tracks(("pause", 1.0), ("speech", 3.0), ("pause", 0.9), ("speech", 0.8), ("pause", 0.5),
                                  ("speech", 3.0), ("pause", 1.0))  # fmt: skip
    cuts = plan_cuts(prob, level, seconds, SETTINGS)
    assert spans(cuts) == near([1.0, 4.0, 4.9, 9.2])


def test_a_short_phrase_stays_alone_behind_long_pauses():
    prob, level, seconds = tracks(("pause", 1.0), ("speech", 3.0), ("pause", 2.0), ("speech", 0.8), ("pause", 2.0),
                                  ("speech", 3.0), ("pause", 1.0))  # fmt: skip
    cuts = plan_cuts(prob, level, seconds, SETTINGS)
    assert [c.speech_end - c.speech_start for c in cuts] == near([3.0, 0.8, 3.0])  # filters drop it: too_short


def test_speech_without_a_pause_is_cut_at_its_quietest_points_into_the_fewest_clips():
    prob, level, seconds = tracks(("pause", 1.0), ("speech", 31.0), ("pause", 1.0))
    dips = [9.0, 12.5, 22.0]  # quieter moments inside the speech (word gaps); 12.5 s is the quietest
    for at, db in zip(dips, (-45.0, -60.0, -50.0), strict=True):
        level[round(at / FRAME_S)] = db
    cuts = plan_cuts(prob, level, seconds, SETTINGS)
    assert len(cuts) == 3  # 31 s in clips of at most 15 s
    assert all(c.end - c.start <= SETTINGS.max_seconds for c in cuts)
    assert [c.forced_end for c in cuts] == [True, True, False] and [c.forced_start for c in cuts] == [False, True, True]
    assert cuts[0].end == cuts[1].start and cuts[1].end == cuts[2].start  # contiguous: not a sample lost
    assert abs(cuts[0].end - 12.5) <= FRAME_S  # the quietest boundary allowed (the first clip must leave <= 2 clips)
    assert abs(cuts[1].end - 22.0) <= FRAME_S


def test_split_long_run_picks_the_quietest_allowed_boundary():
    quiet = np.full(501, -20.0)
    quiet[[50, 300, 420]] = [-90.0, -70.0, -60.0]
    # 500 frames, pieces of at most 300: two pieces; the first cut must leave at most 300 (>= 200) and be >= 100
    assert split_long_run(0, 500, quiet, max_len=300, min_len=100) == [300]
    assert split_long_run(0, 500, quiet, max_len=300, min_len=10) == [300]  # 50 would leave 450 > 300
    assert split_long_run(0, 250, quiet, max_len=300, min_len=100) == []


def test_no_clip_is_longer_than_max_seconds_whatever_the_merges():
    rng = np.random.default_rng(0)
    pieces = [(kind, float(rng.uniform(0.1, 6.0))) for _ in range(60) for kind in ("speech", "pause")]
    prob, level, seconds = tracks(*pieces)
    cuts = plan_cuts(prob, level, seconds, SETTINGS)
    assert all(c.end - c.start <= SETTINGS.max_seconds + 1e-9 for c in cuts)
    assert all(a.end <= b.start for a, b in zip(cuts, cuts[1:], strict=False))


def test_span_facts_count_speech_level_and_clipping():
    prob, level, seconds = tracks(("pause", 1.0), ("speech", 2.0), ("pause", 1.0))
    clipped = np.zeros(len(prob), np.int32)
    clipped[40:45] = 100
    scan = Scan(16000, int(seconds * 16000), prob, level, clipped)
    facts = span_facts(scan, 0.8, 3.2, 0.5)
    assert facts["speech_seconds"] == pytest.approx(2.0, abs=FRAME_S)
    assert facts["level_db"] == pytest.approx(-20.0)  # the speech frames only, not the pauses
    assert facts["clipped_fraction"] == pytest.approx(500 / (2.4 * 16000), rel=1e-3)
    assert Scan.from_bytes(scan.to_bytes("abc"), "abc").speech_prob.tolist() == prob.tolist()
    assert Scan.from_bytes(scan.to_bytes("abc"), "other file") is None


# ------------------------------------------------------------------------------------------------------ filters

FILTERS = FilterSettings(min_seconds=2.0, margin_seconds=0.2, min_speaker_similarity=0.75, min_avg_logprob=-1.0,
                         max_no_speech_prob=0.6, max_compression_ratio=2.4, rate_factor=1.5, quiet_db=-40.0,
                         max_clipped_fraction=0.001, language="en")  # fmt: skip
VOICE, OTHER = np.eye(4)[0], np.eye(4)[1]


def clip(i: int, text: str = "", embedding=VOICE, **changes) -> Evidence:
    values = dict(id=f"r_{i:04d}", seconds=3.4, speech_span=3.0, speech_seconds=3.0, level_db=-20.0,
                  clipped_fraction=0.0, forced_start=False, forced_end=False, digest=f"d{i}",
                  text=text or f"sentence number {i} has exactly nine spoken words here",
                  avg_logprob=-0.3, no_speech_prob=0.05, compression_ratio=1.2, language="en",
                  embedding=np.asarray(embedding, dtype=np.float32))  # fmt: skip
    return Evidence(**(values | changes))


def test_every_reason_has_a_status_and_drop_beats_review():
    assert {status for status, _ in REASONS.values()} == {DROP, REVIEW}
    assert status_of([]) == KEEP and status_of(["clipped", "duplicate"]) == DROP and status_of(["clipped"]) == REVIEW


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (dict(text="."), "no_speech"),
        (dict(no_speech_prob=0.9), "no_speech"),
        (dict(compression_ratio=3.1), "repetitive"),
        (dict(speech_span=1.0, speech_seconds=1.0), "too_short"),
        (dict(avg_logprob=-1.4), "low_confidence"),
        (dict(level_db=-47.0), "too_quiet"),
        (dict(clipped_fraction=0.02), "clipped"),
        (dict(forced_end=True), "forced_cut"),
        (dict(embedding=OTHER), "other_speaker"),
        (dict(speech_seconds=1.0), "rate_outlier"),  # 9 words in 1 s against a median of 3 words/s
        (dict(text="sentence number 1 has exactly nine spoken words here"), "duplicate"),
    ],
)
def test_each_reason_flags_its_clip_and_only_it(changes: dict, reason: str):
    clips = [clip(i) for i in range(1, 7)] + [clip(7, **changes)]
    verdicts = decide(clips, FILTERS)
    assert reason in verdicts[-1].reasons, verdicts[-1]
    assert verdicts[-1].status == REASONS[reason][0]
    assert all(v.status == KEEP for v in verdicts[:-1]), [v.reasons for v in verdicts[:-1]]


def test_detected_languages_other_and_unsupported():
    settings = FilterSettings(**{**FILTERS.__dict__, "language": None})
    clips = [clip(i) for i in range(1, 6)] + [clip(6, language="de"), clip(7, language="sw")]
    verdicts = decide(clips, settings)
    assert verdicts[5].reasons == ("other_language",) and verdicts[6].reasons == ("unsupported_language",)


def test_the_dominant_speaker_is_the_majority_and_a_reference_overrides_it():
    rng = np.random.default_rng(0)
    main = [VOICE + 0.1 * rng.standard_normal(4) for _ in range(6)]
    guests = [OTHER + 0.1 * rng.standard_normal(4) for _ in range(3)]
    reference = dominant_speaker(main + guests, threshold=0.75)
    assert np.dot(reference, VOICE) > 0.95
    clips = [clip(i, embedding=e) for i, e in enumerate(main + guests)]
    assert [v.status for v in decide(clips, FILTERS)] == [KEEP] * 6 + [REVIEW] * 3
    flipped = decide(clips, FILTERS, reference=OTHER)  # --speaker_reference: the guest is the target voice
    assert [v.status for v in flipped] == [REVIEW] * 6 + [KEEP] * 3


def test_a_word_spanning_a_forced_cut_flags_both_clips():
    words = [["every", 0.5, 0.9], ["evening", 0.9, 1.51], ["and", 1.52, 1.7]]
    assert word_across(words, 1.5) is None  # "evening" ends 0.01 s after the cut: time stamp noise
    assert word_across(words, 1.2) == "evening"
    clips = [clip(i) for i in range(1, 7)]
    clips[2] = clip(3, forced_end=True, word_across_end="evening")
    clips[3] = clip(4, forced_start=True)
    verdicts = decide(clips, FILTERS)
    assert verdicts[2].reasons == verdicts[3].reasons == ("forced_cut", "word_at_cut")


# ---------------------------------------------------------------------------------------------- sheet, names


def record(i: int, status: str = KEEP, text: str = "a b c", **changes) -> dict:
    values = {"id": f"r_{i:04d}", "status": status, "text": text, "reasons": [], "audio": f"clips/r_{i:04d}.wav",
              "seconds": 3.0, "source": "r.wav", "start": float(i), "end": i + 3.0, "auto_status": status,
              "asr_text": text, "speaker_similarity": 0.9, "avg_logprob": -0.3, "words_per_second": 3.0}  # fmt: skip
    return values | changes


def test_sheet_edits_are_the_cells_that_differ_from_the_machine(tmp_path: Path):
    sheet = tmp_path / "review.csv"
    sheet.write_bytes(sheet_bytes([record(1), record(2, REVIEW, "hello world"), record(3, text='say "yes", ok')]))
    text = sheet.read_text().replace("r_0002,review,hello world", "r_0002,keep,hello there world")
    sheet.write_bytes(("\ufeff" + text.replace(",", ";").replace("\n", "\r\n")).encode())  # Excel: BOM, ;, CRLF
    rows = read_sheet(sheet)
    assert not rows["r_0001"].edited
    assert rows["r_0002"].status_edited and rows["r_0002"].text_edited and rows["r_0002"].text == "hello there world"
    assert rows["r_0003"].text == 'say "yes"; ok'  # quoting survives (the comma became a ; in this edit)


def test_bad_sheet_cells_are_named_by_line_and_field(tmp_path: Path):
    sheet = tmp_path / "review.csv"
    text = sheet_bytes([record(1), record(2)]).decode().replace("r_0001,keep", "r_0001,maybe")
    sheet.write_text(text.replace("r_0002,keep,a b c", "r_0002,keep,"))
    with pytest.raises(UserError) as error:
        read_sheet(sheet)
    assert "review.csv, line 2, field status: 'maybe'" in str(error.value)
    assert "line 3, field text: empty" in str(error.value)


def test_recording_ids_are_file_names_and_collisions_are_refused(tmp_path: Path):
    for name in ("a/talk one.mp3", "a/sub/talk.flac", "b/talk.flac", "c/интервью.wav"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [i for i, _ in find_recordings((tmp_path / "a",))] == ["sub_talk", "talk_one"]
    assert [i for i, _ in find_recordings((tmp_path / "a",), skip=tmp_path / "a" / "sub")] == ["talk_one"]
    assert find_recordings((tmp_path / "c",))[0][0].startswith("recording-")  # prepare's ids are ASCII
    with pytest.raises(UserError, match="would both be named 'talk'"):
        find_recordings((tmp_path / "b" / "talk.flac", tmp_path / "a" / "sub" / "talk.flac"))


def test_options_out_of_range_are_named():
    bad = SegmentRequest(input=("x.wav",), output="o", max_seconds=30.0, vad_threshold=1.5, rate_factor=1.0).check()
    assert any(m.startswith("--max_seconds") and "24" in m for m in bad)
    assert any(m.startswith("--vad_threshold") for m in bad) and any(m.startswith("--rate_factor") for m in bad)
    assert SegmentRequest(input=("x.wav",), output="o").check() == []


def test_summary_says_whether_the_kept_minutes_reach_the_guide():
    records = [record(i) | {"reasons": [], "status_edited": False, "text_edited": False, "seconds": 60.0}
               for i in range(12)]  # fmt: skip
    records[0] |= {"status": REVIEW, "reasons": ["clipped"], "text_edited": True}
    summary = build_summary([{"seconds": 900.0}], records)
    assert summary["minutes_in"] == 15.0 and summary["minutes_kept"] == 11.0 and summary["guide"] == "within"
    assert summary["statuses"][REVIEW] == {"clips": 1, "minutes": 1.0, "reasons": {"clipped": 1}}
    text = summary_text(summary)
    assert "kept 11.0 min: within the seed guide's 10-30 min" in text and "still marked review" in text
    assert build_summary([{"seconds": 60.0}], records[:3])["guide"] == "below"


def test_the_segment_manual_lists_every_reason_with_its_status():
    manual = (Path(__file__).resolve().parents[2] / "docs" / "segment.md").read_text()
    for name, (status, _) in REASONS.items():
        assert f"| `{name}` | {status} |" in manual, name
