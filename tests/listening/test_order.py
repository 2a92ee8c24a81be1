"""The per-rater order's generator (the page runs the same steps in JavaScript; test_listen_browser.py compares
them): FNV-1a's published vectors, mulberry32's range and determinism, and what is shuffled per design."""

from __future__ import annotations

from qwen_tts_lit.listening.order import fnv1a, mulberry32, presentation


def test_fnv1a_matches_the_published_vectors():
    assert fnv1a("") == 0x811C9DC5
    assert fnv1a("a") == 0xE40C292C
    assert fnv1a("foobar") == 0xBF9CF968


def test_mulberry32_is_deterministic_and_uniform_enough():
    first, again = mulberry32(42), mulberry32(42)
    draws = [first() for _ in range(20_000)]
    assert draws[:50] == [again() for _ in range(50)]
    assert all(0 <= d < 1 for d in draws)
    assert abs(sum(draws) / len(draws) - 0.5) < 0.01
    assert draws[:50] != [mulberry32(43)() for _ in range(1)] * 50


def trials(count: int, practice: int = 2) -> list[dict]:
    made = [{"trial": f"p{i}", "kind": "practice", "stimuli": [f"p{i}a", f"p{i}b"]} for i in range(practice)]
    return made + [{"trial": f"t{i}", "kind": "test", "stimuli": [f"t{i}a", f"t{i}b", f"t{i}c"]} for i in range(count)]


def test_practice_first_then_the_rest_shuffled_per_rater_and_the_same_for_one_rater():
    one = presentation("abc", "rater-1", trials(12), paired=False, multi=False)
    assert [t["kind"] for t in one[:2]] == ["practice", "practice"]
    assert [t["order"] for t in one] == list(range(14))
    assert one == presentation("abc", "rater-1", trials(12), paired=False, multi=False)
    other = presentation("abc", "rater-2", trials(12), paired=False, multi=False)
    assert [t["trial"] for t in one] != [t["trial"] for t in other]
    assert sorted(t["trial"] for t in one) == sorted(t["trial"] for t in other)
    # the test id is part of the seed: one rater id, two tests, two orders
    assert [t["trial"] for t in presentation("abd", "rater-1", trials(12), False, False)] != [t["trial"] for t in one]


def test_paired_designs_swap_sides_and_mushra_shuffles_stimuli_per_rater():
    pairs = [{"trial": f"t{i}", "kind": "test", "stimuli": ["x", "y"]} for i in range(40)]
    swapped = [t["stimuli"] == ["y", "x"] for t in presentation("id", "r", pairs, paired=True, multi=False)]
    assert 10 < sum(swapped) < 30
    mushra = presentation("id", "r", trials(30, 0), paired=False, multi=True)
    assert any(t["stimuli"] != sorted(t["stimuli"]) for t in mushra)
    given = {t["trial"]: sorted(t["stimuli"]) for t in trials(30, 0)}
    assert all(sorted(t["stimuli"]) == given[t["trial"]] for t in mushra)
    unchanged = presentation("id", "r", trials(30, 0), paired=False, multi=False)
    assert all(t["stimuli"] == [t["trial"] + s for s in "abc"] for t in unchanged)
