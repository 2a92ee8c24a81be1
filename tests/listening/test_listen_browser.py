"""The rater's page in a real browser (Debian's chromium, headless, driven by Playwright): for each design, built
from the session's demo run, two raters complete the test with a planted preference read from the key; each one
hears the trials in the order order.py computes for their id (so the orders differ, and one id gives one order,
also after a reload), the second reloads halfway and loses nothing, and both CSVs hold exactly the rows the
planted answers imply, in the columns the analysis reads. A screenshot of each design's first test trial is taken
(``LISTEN_SCREENSHOTS=docs/images`` keeps them as docs/images/listen_<design>.png)."""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from helpers.browser_raters import answer_trial, download, have_browser, launch, planted_answer, shown_files, start

from qwen_tts_lit.cli.app import main
from qwen_tts_lit.listening.bundle import build_test
from qwen_tts_lit.listening.designs import DESIGNS
from qwen_tts_lit.listening.order import presentation
from qwen_tts_lit.listening.request import ListenRequest
from qwen_tts_lit.listening.results import analyse_listening

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
pytestmark = pytest.mark.skipif(not have_browser(), reason="needs /usr/bin/chromium (the Makefile installs it)")

COLUMNS = ["test_id", "design", "rater", "trial", "trial_kind", "order", "stimulus", "stimulus_b", "rating",
           "seconds", "saved_at"]  # fmt: skip  # docs/listening.md: the ratings CSV, column for column
RATERS = ("ann", 'Bob, "the" 2nd')  # the second needs CSV quoting and a file-name-safe spelling


@pytest.fixture(scope="module")
def context():
    """One browser and one profile for the module (a profile costs about a second to make): the raters share it as
    they would share a lab machine; the page keeps each test's and rater's answers apart."""
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(accept_downloads=True, viewport={"width": 1000, "height": 700})
        yield context
        browser.close()


@pytest.fixture(scope="module")
def bundles(demo_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("listen")
    for name in DESIGNS:
        build_test(ListenRequest(output=root / name, design=name, run=demo_run, sentences=2, practice=1,
                                 attention=1, progress=False))  # fmt: skip
    return {name: root / name for name in DESIGNS}


@pytest.fixture(scope="module")
def ratings() -> dict[str, list[Path]]:
    """The CSVs the raters downloaded, by design (filled by the browser test, read by the analysis test)."""
    return {}


def expected_rows(key: dict, rater: str) -> list[list[str]]:
    """The CSV rows (without seconds and saved_at) a planted rater must produce, from order.py's presentation."""
    design = DESIGNS[key["design"]]
    rows = []
    for trial in presentation(key["test_id"], rater, key["trials"], design.paired, design.multi):
        answer = planted_answer(key, trial["stimuli"])
        base = [key["test_id"], key["design"], rater, trial["trial"], trial["kind"], str(trial["order"])]
        if design.paired:
            rows.append([*base, *trial["stimuli"], answer])
        elif design.multi:
            rows += [[*base, file, "", str(answer[file])] for file in trial["stimuli"]]
        else:
            rows.append([*base, trial["stimuli"][0], "", answer])
    return rows


def complete(page, key: dict, rater: str, index: Path, *, reload_after: int | None = None, shot: Path | None = None):
    """Rate every trial as ``rater``; check each one shows what order.py says; reload once after ``reload_after``."""
    design = DESIGNS[key["design"]]
    expected = presentation(key["test_id"], rater, key["trials"], design.paired, design.multi)
    start(page, index, rater)
    position = 0
    while page.locator("#trial").is_visible():
        reference, shown = shown_files(page)
        assert shown == expected[position]["stimuli"], f"{rater}: trial {position} is not order.py's"
        assert reference == expected[position]["reference"]
        if shot is not None and expected[position]["kind"] == "test":
            page.screenshot(path=str(shot), full_page=True)
            shot = None
        answer_trial(page, planted_answer(key, shown))
        position += 1
        if position == reload_after:
            page.reload()
            assert page.locator("#rater").input_value() == rater  # the page offers to continue as this rater
            assert f"has answered {position} of {len(expected)}" in page.locator("#resume").inner_text()
            page.locator("#begin").click()
    assert position == len(expected)
    return expected


@pytest.mark.parametrize("name", list(DESIGNS))
def test_raters_complete_each_design_in_the_browser(name, context, bundles, ratings, tmp_path):
    folder = bundles[name]
    key = json.loads((folder / "key.json").read_text())
    orders, saved = [], []
    for number, rater in enumerate(RATERS):
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        page.on("request", lambda request, errors=errors: errors.append(request.url)
                if not request.url.startswith(("file:", "blob:", "data:")) else None)  # fmt: skip
        shot = tmp_path / f"listen_{name}.png" if number == 0 else None
        orders.append(complete(page, key, rater, folder / "test" / "index.html",
                               reload_after=2 if number == 1 else None, shot=shot))  # fmt: skip
        saved.append(download(page, tmp_path))
        assert errors == []  # no script error, no request off the disk
        page.close()
        if shot is not None and os.environ.get("LISTEN_SCREENSHOTS"):
            Path(os.environ["LISTEN_SCREENSHOTS"], shot.name).write_bytes(shot.read_bytes())
    assert [t["trial"] for t in orders[0]] != [t["trial"] for t in orders[1]] or name == "mushra"  # 1+2 trials
    assert [t["stimuli"] for t in orders[0]] != [t["stimuli"] for t in orders[1]]
    ratings[name] = saved
    for rater, path in zip(RATERS, saved, strict=True):
        assert path.name == f"{key['test_id']}_{'Bob_the_2nd' if rater != 'ann' else 'ann'}.csv"
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == COLUMNS
        assert [row[:9] for row in rows[1:]] == expected_rows(key, rater)
        for row in rows[1:]:
            assert float(row[9]) >= 0
            datetime.fromisoformat(row[10].replace("Z", "+00:00"))


@pytest.mark.parametrize("name", list(DESIGNS))
def test_the_analysis_recovers_the_planted_preference(name, bundles, ratings, tmp_path, capsys):
    """The ratings analysis on the CSVs the browser wrote, through the command line a user runs (``listen --results
    ... --key ... --output``): the tuned system comes first in every design, and the tables say so."""
    if name not in ratings:
        pytest.skip("the browser test of this design did not run")
    key = bundles[name] / "key.json"
    tables = tmp_path / "tables"
    argv = ["listen", "--results", json.dumps([str(path) for path in ratings[name]]), "--key", str(key),
            "--output", str(tables)]  # fmt: skip
    assert main(argv) == 0
    assert str(tables) in capsys.readouterr().out.replace("\n", "")
    written = sorted(path.name for path in tables.iterdir())
    assert written and {Path(n).suffix for n in written} == {".md", ".tex", ".csv"}
    found = analyse_listening(ratings[name], key)
    if name in ("mos", "smos", "mushra"):
        means = {score.system: score.score.mean for score in found.scores}
        synthetic = {system: mean for system, mean in means.items() if system not in ("real", "anchor")}
        assert max(synthetic, key=synthetic.get) == "tuned" and len(synthetic) >= 3
    elif name == "cmos":
        assert found.cmos and all(pair.first == "tuned" and pair.score.mean == pytest.approx(2) for pair in found.cmos)
    else:
        assert found.ab and all(pair.preference.first == pair.preference.first + pair.preference.second
                                for pair in found.ab)  # fmt: skip
    assert all(check.failed == 0 for check in found.attention)
