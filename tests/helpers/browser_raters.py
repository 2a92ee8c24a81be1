"""Acting as raters of a built listening test in a real browser (Debian's chromium, headless, driven by Playwright;
no browser download): each rater types an id, hears the trials in the order the page draws for that id, answers
with a planted preference read from the key, and downloads the ratings CSV. ``rate_in_browser`` is the whole
thing for a bundle: it returns the CSV files, ready for the ratings analysis."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio",
               "--autoplay-policy=no-user-gesture-required"]  # fmt: skip
# What a planted rater answers, by the role of the system a stimulus is (key.json's systems[...]["role"]).
PLANTED = {
    "mos": {"tuned": "5", "real": "4", "baseline": "2", "run": "3", "variant": "3"},
    "smos": {"tuned": "5", "real": "5", "baseline": "2", "run": "3", "variant": "3"},
    "mushra": {"tuned": 80, "real": 100, "anchor": 15, "baseline": 30, "run": 50, "variant": 50},
}


def launch(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)


def role(key: dict, file: str) -> str:
    return key["systems"][key["stimuli"][file]["system"]]["role"]


def planted_answer(key: dict, shown: list[str]) -> str | dict[str, int]:
    """The planted answer to a trial showing ``shown`` (A and B as shown for a paired design): the tuned system
    (or the first system compared) preferred, identical pairs answered as a good rater does."""
    design = key["design"]
    if design == "mushra":
        return {file: PLANTED["mushra"][role(key, file)] for file in shown}
    if design in ("mos", "smos"):
        return PLANTED[design][role(key, shown[0])]
    a, b = shown
    if a == b:
        return "0" if design == "cmos" else "none"
    first = next(iter(key["systems"]))  # the system the others are compared with
    a_first = key["stimuli"][a]["system"] == first
    if design == "cmos":
        return "-2" if a_first else "2"
    return "A" if a_first else "B"


SHOWN = """() => {
  const file = (button) => button.dataset.file;
  const buttons = [...document.querySelectorAll("#players button.play, #rating button.play")];
  const reference = buttons.find((b) => b.textContent.includes("Reference"));
  const played = buttons.filter((b) => b !== reference);
  return [reference ? file(reference) : null, played.map(file)];
}"""


def shown_files(page) -> tuple[str | None, list[str]]:
    """(reference, the stimuli in the order shown: A then B, or MUSHRA's sliders left to right) on screen."""
    reference, shown = page.evaluate(SHOWN)
    return reference, shown


def answer_trial(page, answer: str | dict[str, int]) -> None:
    """Play everything (real clicks; ``force`` skips Playwright's wait for a still layout), answer, go on."""
    for button in page.locator("button.play").all():
        button.click(force=True)
    if isinstance(answer, dict):
        for file, value in answer.items():
            page.locator(f"input[type=range][data-file='{file}']").fill(str(value), force=True)
    else:
        page.locator(f"#rating input[value='{answer}']").check(force=True)
    page.locator("#next").click()


def start(page, index: Path, rater: str) -> None:
    page.goto(index.as_uri())
    page.locator("#rater").fill(rater)
    page.locator("#begin").click()


def download(page, folder: Path) -> Path:
    with page.expect_download() as event:
        page.locator("#download").click()
    target = folder / event.value.suggested_filename
    event.value.save_as(target)
    return target


def rate_in_browser(
    browser, test_dir: Path, key_path: Path, raters: list[str], folder: Path,
    answer: Callable[[dict, list[str]], str | dict[str, int]] = planted_answer,
) -> list[Path]:  # fmt: skip
    """Every rater completes the test in a fresh browser context; their CSVs in ``folder``."""
    key = json.loads(Path(key_path).read_text())
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for rater in raters:
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        start(page, Path(test_dir) / "index.html", rater)
        while page.locator("#trial").is_visible():
            answer_trial(page, answer(key, shown_files(page)[1]))
        saved.append(download(page, folder))
        context.close()
    return saved


def have_browser() -> bool:
    return CHROMIUM.is_file() and shutil.which(str(CHROMIUM)) is not None
