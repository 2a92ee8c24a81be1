"""A listening test's analysis end to end (listening/results.py, tables.py, results_command.py, analysis.listening):
raters' CSVs in the contract format with planted preferences, careless raters and swapped A/B sides, analysed into
each design's results, written as Markdown, LaTeX and CSV tables, and read by a notebook."""

from __future__ import annotations

import csv
import random
import shlex

import numpy as np
import pytest
from helpers.listening import make_key, write_key, write_sessions

from qwen_tts_lit.analysis import listening_results
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.listening.results import analyse_listening
from qwen_tts_lit.listening.results_command import run_results
from qwen_tts_lit.listening.tables import write_listening_tables

SYSTEMS = {"tuned": "tuned", "zero_shot": "baseline", "real": "real"}
ITEMS = [f"s{k}" for k in range(8)]
RATERS = [f"rater{k}" for k in range(10)]


def _noisy(shown, base: dict[str, float], spread: float, low: float, high: float, whole: bool = True) -> float:
    """A rating near ``base[system]`` with a rater's leniency and noise (seeded by what was heard: reproducible)."""
    rng = random.Random(f"{shown.rater}/{shown.trial}/{shown.system}/{shown.system_b}")
    leniency = random.Random(shown.rater).gauss(0, spread / 2)
    value = min(high, max(low, base[shown.system] + leniency + rng.gauss(0, spread)))
    return round(value) if whole else round(value, 1)


@pytest.mark.parametrize("design", ["mos", "smos"])
def test_mos_finds_the_planted_order_with_counts(tmp_path, design):
    key = make_key(design, SYSTEMS, ITEMS, attention=0)
    base = {"tuned": 4.2, "zero_shot": 3.0, "real": 4.4}
    paths = write_sessions(tmp_path, key, RATERS, lambda s: _noisy(s, base, 0.6, 1, 5))
    results = analyse_listening(paths, write_key(tmp_path, key))
    assert (results.design, results.raters, results.items, results.ratings) == (design, 10, 8, 240)
    scores = {s.system: s.score for s in results.scores}
    assert list(scores) == ["tuned", "zero_shot", "real"]  # the key's order
    for score in scores.values():
        assert (score.raters, score.items, score.ratings) == (10, 8, 80)
        assert score.low < score.mean < score.high
    rows = [row for path in paths for row in csv.DictReader(path.open()) if row["trial_kind"] == "test"]
    tuned = [float(r["rating"]) for r in rows if key["stimuli"][r["stimulus"]]["system"] == "tuned"]
    assert scores["tuned"].mean == pytest.approx(np.mean(tuned))  # the plain mean of the CSVs' ratings
    differences = {(d.first, d.second): d for d in results.differences}
    assert set(differences) == {("tuned", "zero_shot"), ("tuned", "real"), ("zero_shot", "real")}
    planted = differences[("tuned", "zero_shot")]
    assert planted.difference.mean > 0.8 and planted.p_value < 0.001 and planted.difference.ratings == 80
    assert differences[("zero_shot", "real")].difference.high < 0


def test_cmos_undoes_the_per_rater_side_swap_and_reports_ties_and_attention(tmp_path):
    key = make_key("cmos", {"tuned": "tuned", "zero_shot": "baseline"}, ITEMS, attention=3)

    def rate(shown):
        if shown.kind == "attention":  # rater0 hears a difference in an identical pair
            return 2 if shown.rater == "rater0" else 0
        better = 1 if shown.system_b == "tuned" else -1  # B compared with A: + when B is the tuned one
        return better * random.Random(f"{shown.rater}{shown.trial}").choice([0, 1, 1, 2])

    paths = write_sessions(tmp_path, key, RATERS, rate)
    results = analyse_listening(paths, write_key(tmp_path, key))
    (pair,) = results.cmos
    assert (pair.first, pair.second) == ("tuned", "zero_shot")
    assert pair.signs.losses == 0 and pair.signs.wins + pair.signs.ties == 80 and pair.signs.ties > 0
    assert pair.score.mean > 0.5 and pair.score.low > 0 and pair.signs.p_value < 1e-6
    assert (pair.score.raters, pair.score.items) == (10, 8)
    attention = {a.rater: (a.trials, a.failed) for a in results.attention}
    assert attention["rater0"] == (3, 3) and attention["rater1"] == (3, 0)


def test_cmos_with_no_preference_is_not_called_different(tmp_path):
    key = make_key("cmos", {"tuned": "tuned", "zero_shot": "baseline"}, ITEMS)

    def rate(shown):  # the answer depends on the side only: no system is better
        return random.Random(f"{shown.rater}{shown.trial}").choice([-1, 0, 1])

    results = analyse_listening(write_sessions(tmp_path, key, RATERS, rate), write_key(tmp_path, key))
    (pair,) = results.cmos
    assert pair.signs.p_value > 0.05 and pair.score.low < 0 < pair.score.high


def test_ab_counts_no_preference_and_tests_the_decided_answers(tmp_path):
    key = make_key("ab", {"tuned": "tuned", "zero_shot": "baseline", "other": "baseline"}, ITEMS, attention=2)

    def rate(shown):
        if shown.kind == "attention":
            return "none"
        if "tuned" not in (shown.system, shown.system_b):
            return "none"
        side = "A" if shown.system == "tuned" else "B"
        other = "B" if side == "A" else "A"
        return random.Random(f"{shown.rater}{shown.trial}").choice([side, side, side, other, "none"])

    paths = write_sessions(tmp_path, key, RATERS, rate)
    results = analyse_listening(paths, write_key(tmp_path, key))
    pairs = {(a.first, a.second): a for a in results.ab}
    assert list(pairs) == [("tuned", "zero_shot"), ("tuned", "other"), ("zero_shot", "other")]
    planted = pairs[("tuned", "zero_shot")].preference
    assert planted.total == 80 and planted.first > 2 * planted.second and planted.p_value < 0.001
    assert planted.decided_share.low > 0.5 and planted.none > 0
    neither = pairs[("zero_shot", "other")].preference
    assert (neither.first, neither.second, neither.none, neither.p_value) == (0, 0, 80, None)
    assert all(a.failed == 0 and a.trials == 2 for a in results.attention)


def test_mushra_excludes_raters_by_bs1534_and_lists_why(tmp_path):
    systems = {"tuned": "tuned", "zero_shot": "baseline", "real": "real", "anchor": "anchor"}
    key = make_key("mushra", systems, ITEMS)
    base = {"tuned": 75, "zero_shot": 55, "real": 98, "anchor": 20}

    def rate(shown):
        if shown.rater == "rater0" and shown.system == "real":  # misses the hidden reference half the time
            return 60 if shown.item in ITEMS[::2] else 100
        if shown.rater == "rater1" and shown.system == "anchor":  # rates the anchor as excellent
            return 95
        if shown.system == "real":
            return 100
        return _noisy(shown, base, 8, 0, 100, whole=False)

    paths = write_sessions(tmp_path, key, RATERS, rate)
    key_path = write_key(tmp_path, key)
    results = analyse_listening(paths, key_path)
    assert set(results.excluded) == {"rater0", "rater1"}
    assert "hidden reference rated below 90 in 4 of 8 trials" in results.excluded["rater0"]
    assert "anchor rated above 90 in 8 of 8 trials" in results.excluded["rater1"]
    assert results.raters == 8 and all(s.score.raters == 8 for s in results.scores)
    screening = {a.rater: a for a in results.attention}
    assert (screening["rater0"].trials, screening["rater0"].failed) == (8, 4)
    scores = {s.system: s.score.mean for s in results.scores}
    assert scores["real"] == 100 and scores["anchor"] < scores["zero_shot"] < scores["tuned"]
    differences = {(d.first, d.second): d for d in results.differences}
    assert differences[("tuned", "zero_shot")].p_value < 0.001
    assert set(analyse_listening(paths, key_path, screen_anchor=False).excluded) == {"rater0"}


def test_tables_are_written_with_intervals_counts_and_the_command(tmp_path, capsys):
    key = make_key("mos", SYSTEMS, ITEMS)
    base = {"tuned": 4.2, "zero_shot": 3.0, "real": 4.4}
    paths = write_sessions(tmp_path, key, RATERS[:4], lambda s: _noisy(s, base, 0.6, 1, 5))
    key_path = write_key(tmp_path, key)
    out = tmp_path / "tables"
    assert run_results(paths, key_path, out) == 0
    printed = capsys.readouterr().out
    assert "mos test 5be1f00d: 4 raters, 8 items, 96 answers from 4 file(s)" in printed
    assert "listening_mos_systems.md" in printed and "listening_mos_differences.md" in printed
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"listening_mos_{t}.{x}" for t in ("systems", "differences") for x in ("md", "tex", "csv"))
    results = analyse_listening(paths, key_path)
    tuned = results.scores[0].score
    markdown = (out / "listening_mos_systems.md").read_text()
    assert (
        f"| tuned (tuned label) | tuned | {tuned.mean:.2f} [{tuned.low:.2f}, {tuned.high:.2f}] | 4 | 8 | 32 |"
        in markdown
    )
    assert "| system | role | MOS [95 % CI] | raters | items | ratings |" in markdown
    assert "python -m qwen_tts_lit listen --results" in markdown and "--key" in markdown
    differences = (out / "listening_mos_differences.md").read_text()
    assert "(n=32 pairs, p=" in differences
    latex = (out / "listening_mos_differences.tex").read_text()
    assert r"\toprule" in latex and r"$\Delta$MOS first $-$ second" in latex and "zero\\_shot" in latex
    rows = list(csv.DictReader((out / "listening_mos_systems.csv").open()))
    assert float(rows[0]["mean"]) == pytest.approx(tuned.mean) and rows[0]["raters"] == "4"
    assert float(rows[0]["low"]) == pytest.approx(tuned.low) and rows[0]["command"].startswith("python -m")
    again = write_listening_tables(results, out)  # the same results write the same files again (no temporaries left)
    assert sorted(p.name for p in again) == written == sorted(p.name for p in out.iterdir())


def test_the_command_a_table_prints_reproduces_it(tmp_path):
    """Each table names the command that made it; run as printed (through the command line), it writes the same
    tables again."""
    from qwen_tts_lit.cli.app import main

    key = make_key("mos", SYSTEMS, ITEMS)
    paths = write_sessions(tmp_path, key, RATERS[:3], lambda s: _noisy(s, {"tuned": 4.2, "zero_shot": 3.0,
                                                                          "real": 4.4}, 0.6, 1, 5))  # fmt: skip
    key_path = write_key(tmp_path, key)
    out = tmp_path / "tables"
    run_results(paths, key_path, out)
    before = {p.name: p.read_text() for p in out.iterdir()}
    line = next(text for text in before["listening_mos_systems.md"].splitlines() if "python -m qwen_tts_lit" in text)
    argv = shlex.split(line.strip("`"))
    assert argv[:3] == ["python", "-m", "qwen_tts_lit"]
    for path in out.iterdir():
        path.unlink()
    assert main(argv[3:]) == 0
    assert {p.name: p.read_text() for p in out.iterdir()} == before


def test_every_design_writes_its_tables(tmp_path):
    for design, answer in (("cmos", lambda s: 1), ("ab", lambda s: "A"), ("mushra", lambda s: 100)):
        folder = tmp_path / design
        folder.mkdir()
        systems = {"tuned": "tuned", "real": "real"} if design == "mushra" else {"a": "run", "b": "run"}
        key = make_key(design, systems, ITEMS[:3], attention=1 if design != "mushra" else 0)
        results = analyse_listening(write_sessions(folder, key, RATERS[:3], answer), write_key(folder, key))
        names = {p.name for p in write_listening_tables(results, folder / "out")}
        wanted = {"cmos": ("pairs", "attention"), "ab": ("pairs", "attention"), "mushra": ("systems", "screening")}
        assert {f"listening_{design}_{t}.md" for t in wanted[design]} <= names


def test_a_notebook_reads_the_tables_as_dataframes(tmp_path):
    key = make_key("ab", {"tuned": "tuned", "zero_shot": "baseline"}, ITEMS)
    paths = write_sessions(tmp_path, key, RATERS[:3], lambda s: "A")
    frames = listening_results(paths, write_key(tmp_path, key))
    pairs = frames["pairs"]
    assert pairs.attrs["design"] == "ab" and pairs.attrs["raters"] == 3
    rows = [row for path in paths for row in csv.DictReader(path.open()) if row["trial_kind"] == "test"]
    tuned_as_a = sum(key["stimuli"][row["stimulus"]]["system"] == "tuned" for row in rows)  # "A" picks the side
    assert 0 < tuned_as_a < 24
    first = pairs.iloc[0]
    assert (first["first"], first["prefer_first"], first["prefer_second"], first["no_preference"]) == (
        "tuned",
        tuned_as_a,
        24 - tuned_as_a,
        0,
    )
    assert first["answers"] == 24 and first["share_first"] == pytest.approx(tuned_as_a / 24)


def test_nothing_to_score_is_one_line(tmp_path):
    key = make_key("mos", SYSTEMS, ITEMS[:1], practice=1)
    key["trials"] = [t for t in key["trials"] if t["kind"] == "practice"]
    paths = write_sessions(tmp_path, key, RATERS[:1], lambda s: 3)
    with pytest.raises(UserError, match="no test trial answered"):
        analyse_listening(paths, write_key(tmp_path, key))


def test_analysing_takes_ratings_and_a_key_and_no_source(tmp_path, capsys):
    """`listen --results` without --key, --key without --results, or either beside a source to build from: exit 2,
    one line, nothing written."""
    from qwen_tts_lit.cli.app import main

    out = tmp_path / "tables"
    for argv in (["--results", "[a.csv]"], ["--key", "k.json"], ["--results", "[a.csv]", "--key", "k.json",
                                                                  "--run", "r"]):  # fmt: skip
        assert main(["listen", *argv, "--output", str(out)]) == 2
        assert "listen: analysing ratings takes --results" in capsys.readouterr().err
    assert not out.exists()
