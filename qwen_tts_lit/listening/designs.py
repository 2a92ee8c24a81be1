"""The five listening-test designs: what a rater is asked, the scale an answer is on (as key.json records it) and
what each point of a category scale is called. The page, the key, the webMUSHRA config and the analysis read the
scales from here, so a scale has one owner."""

from __future__ import annotations

from dataclasses import dataclass

from qwen_tts_lit.errors import UserError


@dataclass(frozen=True)
class Design:
    """One design: its question, its scale and how a trial is laid out."""

    name: str
    title: str
    question: str
    instructions: str
    scale: dict
    """key.json's ``scale``: {"min", "max"} of a numeric scale, or {"choices"} of a forced choice."""
    labels: tuple[tuple[str, str], ...] = ()
    """(value as the CSV writes it, what the page calls it) for a category scale, in the order shown."""
    paired: bool = False
    """A trial shows two stimuli, A and B (the page swaps them per rater)."""
    reference: bool = False
    """A trial shows an open reference (the real recording) beside what is rated."""
    multi: bool = False
    """A trial rates several stimuli at once on sliders (MUSHRA)."""

    @property
    def values(self) -> tuple[str, ...]:
        """Every answer the scale allows, as the CSV writes it (a slider: its two ends)."""
        if "choices" in self.scale:
            return tuple(self.scale["choices"])
        return tuple(value for value, _ in self.labels) or (str(self.scale["min"]), str(self.scale["max"]))


# ITU-T P.800's absolute category rating (MOS) and the degradation-free wording SMOS studies use.
MOS = Design(
    "mos",
    "Naturalness (MOS)",
    "How natural does this speech sound?",
    "You will hear one recording at a time. Rate how natural it sounds, as the speech of a real person, from "
    "1 (bad) to 5 (excellent). Ignore what is said; judge how it sounds. Play each recording before you rate it.",
    {"min": 1, "max": 5},
    (("1", "1 Bad"), ("2", "2 Poor"), ("3", "3 Fair"), ("4", "4 Good"), ("5", "5 Excellent")),
)
SMOS = Design(
    "smos",
    "Speaker similarity (SMOS)",
    "How similar is the voice of the recording to the reference voice?",
    "Each trial has a reference recording of a real voice and one recording to rate. Rate how similar the voice is "
    "to the reference's, from 1 (not at all similar) to 5 (extremely similar). Judge the voice, not the words or the "
    "sound quality. Play both before you rate.",
    {"min": 1, "max": 5},
    (
        ("1", "1 Not at all similar"),
        ("2", "2 Slightly similar"),
        ("3", "3 Moderately similar"),
        ("4", "4 Very similar"),
        ("5", "5 Extremely similar"),
    ),
    reference=True,
)
# ITU-T P.800's comparison category rating: the answer is B compared with A (+3: B much better).
CMOS = Design(
    "cmos",
    "Comparison (CMOS)",
    "How does B compare with A?",
    "Each trial has two recordings of the same sentence, A and B. Say how B compares with A in overall quality and "
    "naturalness, from -3 (B is much worse than A) to +3 (B is much better than A); 0 if you hear no difference. "
    "Play both before you answer.",
    {"min": -3, "max": 3},
    (
        ("-3", "-3 B much worse"),
        ("-2", "-2 B worse"),
        ("-1", "-1 B slightly worse"),
        ("0", "0 About the same"),
        ("1", "+1 B slightly better"),
        ("2", "+2 B better"),
        ("3", "+3 B much better"),
    ),
    paired=True,
)
AB = Design(
    "ab",
    "Preference (A/B)",
    "Which recording do you prefer?",
    "Each trial has two recordings of the same sentence, A and B. Choose the one you prefer overall, or "
    '"No preference" if you cannot choose. Play both before you answer.',
    {"choices": ["A", "B", "none"]},
    (("A", "A is better"), ("none", "No preference"), ("B", "B is better")),
    paired=True,
)
# ITU-R BS.1534-3: a hidden reference and a low anchor among the stimuli, 0-100 sliders over five labelled bands.
MUSHRA = Design(
    "mushra", "MUSHRA", "Rate each recording against the reference.",
    "Each trial has a reference (a real recording) and several recordings of the same sentence. Rate each one from "
    "0 to 100 against the reference: 100 if you cannot tell it from the reference. The reference is hidden among "
    "them; at least one recording is much worse. Play every recording (you may replay and compare freely), then "
    "set every slider.",
    {"min": 0, "max": 100},
    reference=True, multi=True,
)  # fmt: skip
DESIGNS = {design.name: design for design in (MOS, SMOS, CMOS, AB, MUSHRA)}
MUSHRA_BANDS = (("Excellent", 80), ("Good", 60), ("Fair", 40), ("Poor", 20), ("Bad", 0))  # BS.1534-3's scale


def design(name: str) -> Design:
    """The design called ``name``; UserError naming the choices otherwise."""
    if name not in DESIGNS:
        raise UserError(f"--design {name!r}: unknown design; choose one of {', '.join(DESIGNS)}")
    return DESIGNS[name]
