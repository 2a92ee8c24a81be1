"""Reading raters' CSVs against a test's key (listening/ratings.py): tidy records from files in the exact contract
format, practice dropped and attention kept apart, and every mistake one line naming the file, the row and the
field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.listening import COLUMNS, answers, make_key, write_key, write_rows

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.listening.ratings import read_key, read_ratings

SYSTEMS = {"tuned": "tuned", "base": "baseline", "real": "real"}


def _mos(tmp_path: Path, design: str = "mos", attention: int = 0):
    key = make_key(design, SYSTEMS, ["s1", "s2"], attention=attention)
    return key, write_key(tmp_path, key)


def test_records_name_rater_system_item_and_drop_practice(tmp_path):
    key, key_path = _mos(tmp_path)
    rows = answers(key, "ann", lambda shown: {"tuned": 5, "base": 3, "real": 4}[shown.system])
    ratings = read_ratings([write_rows(tmp_path / "ann.csv", rows)], read_key(key_path))
    assert len(rows) == 9 and len(ratings) == 6  # 3 practice rows dropped
    assert {(r.system, r.item, r.rating) for r in ratings} == {
        (s, i, v) for s, v in (("tuned", 5.0), ("base", 3.0), ("real", 4.0)) for i in ("s1", "s2")
    }
    assert {r.rater for r in ratings} == {"ann"} and {r.kind for r in ratings} == {"test"}
    assert all(r.source == tmp_path / "ann.csv" and r.row >= 2 for r in ratings)


def test_pairs_keep_the_sides_as_shown_and_attention_trials_apart(tmp_path):
    key = make_key("cmos", SYSTEMS, ["s1", "s2"], attention=2)
    key_path = write_key(tmp_path, key)
    rows = answers(key, "bo", lambda shown: 1)
    ratings = read_ratings([write_rows(tmp_path / "bo.csv", rows)], read_key(key_path))
    assert sum(r.kind == "attention" for r in ratings) == 2
    by_trial = {row["trial"]: row for row in rows}
    for r in ratings:  # the record is the pair as the rater saw it, not the key's order
        assert (r.stimulus, r.stimulus_b) == (by_trial[r.trial]["stimulus"], by_trial[r.trial]["stimulus_b"])
    assert {r.system for r in ratings if r.kind == "test"} >= {"tuned", "base"}


def _first_test_row(rows: list[dict]) -> int:
    return next(i for i, row in enumerate(rows) if row["trial_kind"] == "test")


def _edit(field: str, value):
    def change(rows):
        rows[_first_test_row(rows)][field] = value

    return change


# (design, change to the rows, field named, words of the message)
MISTAKES = [
    ("mos", _edit("test_id", "feedbeef"), "test_id", "not this key's test"),
    ("mos", _edit("stimulus", "0000beef.wav"), "stimulus", "not one of the key's stimuli"),
    ("mos", _edit("rating", "6"), "rating", "from 1 to 5"),
    ("mos", _edit("rating", "good"), "rating", "from 1 to 5"),
    ("mos", _edit("rating", ""), "rating", "from 1 to 5"),
    ("smos", _edit("rating", "0"), "rating", "from 1 to 5"),
    ("mushra", _edit("rating", "100.5"), "rating", "from 0 to 100"),
    ("cmos", _edit("rating", "4"), "rating", "from -3 to 3"),
    ("cmos", _edit("rating", "1.5"), "rating", "whole number"),
    ("ab", _edit("rating", "a"), "rating", "one of A, B, none"),
    ("mos", _edit("trial", "no-such-trial"), "trial", "not one of the key's trials"),
    ("mos", _edit("trial_kind", "practice"), "trial_kind", "the key says"),
    ("mos", _edit("design", "cmos"), "design", "the key's test is 'mos'"),
    ("cmos", _edit("stimulus_b", ""), "stimulus_b", "names the pair"),
    ("mos", _edit("rater", ""), "rater", "empty"),
]


@pytest.mark.parametrize(("design", "change", "field", "words"), MISTAKES,
                         ids=[f"{m[0]}-{m[2]}-{i}" for i, m in enumerate(MISTAKES)])  # fmt: skip
def test_a_mistake_is_one_line_naming_file_row_and_field(tmp_path, design, change, field, words):
    key = make_key(design, SYSTEMS, ["s1", "s2"])
    key_path = write_key(tmp_path, key)
    rows = answers(key, "cy", lambda shown: {"ab": "A", "cmos": 0, "mushra": 50}.get(design, 3))
    row = _first_test_row(rows) + 2  # the header is row 1
    change(rows)
    path = write_rows(tmp_path / "cy.csv", rows)
    with pytest.raises(UserError) as caught:
        read_ratings([path], read_key(key_path))
    message = str(caught.value)
    assert message.startswith(f"{path}, row {row}, field {field}: ") and words in message
    assert "\n" not in message


def test_an_unknown_stimulus_of_another_trial_is_refused(tmp_path):
    key, key_path = _mos(tmp_path)
    rows = answers(key, "dee", lambda shown: 3)
    i = _first_test_row(rows)
    other = next(r["stimulus"] for r in rows if r["trial"] != rows[i]["trial"])
    rows[i]["stimulus"] = other
    path = write_rows(tmp_path / "dee.csv", rows)
    with pytest.raises(UserError, match=rf"row {i + 2}, field stimulus: .* is not played in trial"):
        read_ratings([path], read_key(key_path))


def test_a_missing_column_is_named(tmp_path):
    key, key_path = _mos(tmp_path)
    rows = answers(key, "eve", lambda shown: 3)
    path = tmp_path / "eve.csv"
    kept = [c for c in COLUMNS if c != "rating"]
    path.write_text(",".join(kept) + "\n" + "\n".join(",".join(str(r[c]) for c in kept) for r in rows) + "\n")
    with pytest.raises(UserError, match=r"eve\.csv, row 1, field rating: missing column"):
        read_ratings([path], read_key(key_path))


def test_a_row_with_too_few_fields_is_named(tmp_path):
    key, key_path = _mos(tmp_path)
    path = write_rows(tmp_path / "fay.csv", answers(key, "fay", lambda shown: 3))
    path.write_text(path.read_text() + "5be1f00d,mos,fay\n")
    with pytest.raises(UserError, match=r"fay\.csv, row 11: 3 fields, the header has 11"):
        read_ratings([path], read_key(key_path))


def test_the_same_answer_twice_is_refused_naming_both_rows(tmp_path):
    """Two sessions of one rater id: which one counts is the experimenter's call, so neither is guessed."""
    key, key_path = _mos(tmp_path)
    first = write_rows(tmp_path / "gus.csv", answers(key, "gus", lambda shown: 3))
    again = write_rows(tmp_path / "gus-again.csv", answers(key, "gus", lambda shown: 4))
    with pytest.raises(UserError) as caught:
        read_ratings([first, again], read_key(key_path))
    message = str(caught.value)
    assert message.startswith(f"{again}, row 2, field rater: rater 'gus' already rated trial ")
    assert f"in {first}, row 2" in message
    # a pair is one answer whichever side was A: the same trial twice in a CMOS session is refused too
    key = make_key("cmos", SYSTEMS, ["s1"])
    key_path = write_key(tmp_path, key)
    rows = answers(key, "hal", lambda shown: 1)
    i = _first_test_row(rows)
    swapped = {**rows[i], "stimulus": rows[i]["stimulus_b"], "stimulus_b": rows[i]["stimulus"]}
    path = write_rows(tmp_path / "hal.csv", [*rows, swapped])
    with pytest.raises(UserError, match=rf"row {len(rows) + 2}, field rater: .*in .*hal\.csv, row {i + 2}"):
        read_ratings([path], read_key(key_path))


def test_key_mistakes_are_named(tmp_path):
    key, key_path = _mos(tmp_path)
    with pytest.raises(UserError, match="key not found"):
        read_key(tmp_path / "nope.json")
    for change, words in [
        (lambda k: k.pop("test_id"), "field test_id: missing"),
        (lambda k: k.update(format=2), "field format: 2: this version reads format 1"),
        (lambda k: k.update(design="mosx"), "field design: 'mosx'"),
        (lambda k: k.update(scale={"min": 5, "max": 1}), "field scale"),
        (lambda k: k["trials"][0]["stimuli"].append("x.wav"), "trials[0].stimuli: 'x.wav'"),
        (lambda k: next(iter(k["stimuli"].values())).update(system="ghost"), "is not one of the systems"),
        (lambda k: k["trials"][1].update(trial=k["trials"][0]["trial"]), "trials[1].trial: .* an earlier trial"),
        (lambda k: k.update(design="cmos", scale={"min": -3, "max": 3}), "trials[0].stimuli: a cmos trial plays two"),
    ]:
        broken = json.loads(json.dumps(key))
        change(broken)
        with pytest.raises(UserError, match=f"key.json, .*{words.replace('[', '.').replace(']', '.')}"):
            read_key(write_key(tmp_path, broken))
    (tmp_path / "key.json").write_text("{not json")
    with pytest.raises(UserError, match="not a listening-test key"):
        read_key(tmp_path / "key.json")


def test_a_spreadsheet_bom_and_blank_lines_are_read(tmp_path):
    key, key_path = _mos(tmp_path)
    path = write_rows(tmp_path / "ida.csv", answers(key, "ida", lambda shown: 2))
    path.write_text("\ufeff" + path.read_text() + "\n\n")
    assert len(read_ratings([path], read_key(key_path))) == 6
