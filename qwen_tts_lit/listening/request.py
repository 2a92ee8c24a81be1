"""``listen``'s options (one documented field per flag); importing this module loads nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ListenRequest:
    """build a blind listening test (mos, smos, cmos, ab, mushra) from run folders

    Writes OUTPUT/test/ (index.html and audio/: give it to raters; it opens from disk in a browser, no server, no
    network) and OUTPUT/key.json (which file is which system: keep it private). From --run: the run's chosen cell
    against its zero-shot baselines and the real recordings; from --runs: each run's chosen cell; from --ablation:
    each variant's chosen cell. docs/listening.md says what each design asks and how the test is blinded.
    With --results and --key it analyses the raters' CSVs instead and writes the tables into OUTPUT
    (docs/listening_analysis.md).
    """

    output: Path
    """Folder for the test (OUTPUT/test/) and its key (OUTPUT/key.json); refused if it already holds a key. With
    --results: the folder for the tables."""
    design: str = "mos"
    """mos (naturalness 1-5), smos (similarity to the real voice 1-5), cmos (-3..+3), ab (A/B with no
    preference) or mushra (0-100, hidden reference and low anchor)."""
    run: Path | None = None
    """A run folder: its chosen cell vs its zero-shot baselines vs the real recordings."""
    runs: tuple[Path, ...] | None = None
    """Several run folders: their chosen cells against each other (the first is compared with the others)."""
    ablation: Path | None = None
    """An ablate root: each variant's chosen cell (its lowest seed's) against the others."""
    sentences: int | None = None
    """The first N held-out sentences every system spoke (default: all of them)."""
    practice: int = 2
    """Practice trials first (repeats of test trials, left out of the analysis)."""
    attention: int = 2
    """Attention checks: cmos/ab an identical pair, smos the reference against itself (mushra: its hidden
    reference is in every trial; mos has none)."""
    seed: int = 0
    """Picks the practice trials and the attention checks' sentences (file names and the test id are random)."""
    webmushra: bool = False
    """Also write the test as a webMUSHRA configuration with its audio (OUTPUT/webmushra/; mushra, mos, ab)."""
    progress: bool = True
    """Show a progress bar while the stimuli are written."""
    results: tuple[Path, ...] | None = None
    """Analyse these ratings CSVs (one per rater session, as the page saves them) instead of building a test:
    MOS/SMOS/MUSHRA per system with intervals over raters and items, CMOS, A/B, MUSHRA post-screening."""
    key: Path | None = None
    """With --results: the test's key.json (written beside the test folder when it was built)."""

    @property
    def sources_given(self) -> list[str]:
        """The source options given (``run``, ``runs``, ``ablation``): building takes exactly one, analysing none."""
        return [name for name in ("run", "runs", "ablation") if getattr(self, name)]
