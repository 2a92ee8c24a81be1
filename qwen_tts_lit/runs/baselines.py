"""The zero-shot baselines' names: the values stored in a row's ``baseline`` field (and in ``best.json``, the audio
folder ``eval/baseline=NAME/`` and a config's ``EvalSuite.baselines``), what each one is, and the names older run
folders used.

Each baseline is the base model before any training, on the same held-out sentences, seeds and judges as the
trained cells (``evaluation/scoring.py``, ``evaluate_baselines``):

- ``xvector``: the training x-vector alone, adapters at scale 0, in the layout the cells are spoken in (the whole
  text before the first frame): exactly the trained cells' call with the adapters off.
- ``voice_clone``: ``generate_voice_clone(text, ref_audio=REC, ref_text=TEXT)`` as users call it, i.e. with
  upstream's default text layout (``non_streaming_mode=False``: the text fed alongside the frames), cloned from
  the first training clip as recorded (prepare's appended silence cut).
- ``voice_clone_non_streaming``: the same call with ``non_streaming_mode=True``, the layout fine-tuning trains: it
  separates what the layout changes from what fine-tuning changes. Not scored unless asked for.
"""

from __future__ import annotations

XVECTOR = "xvector"
VOICE_CLONE = "voice_clone"
VOICE_CLONE_NON_STREAMING = "voice_clone_non_streaming"

LABELS = {
    XVECTOR: "zero-shot x-vector (scale 0, training layout)",
    VOICE_CLONE: "zero-shot voice clone (default streaming)",
    VOICE_CLONE_NON_STREAMING: "zero-shot voice clone (non-streaming)",
}
BASELINES = tuple(LABELS)  # every baseline an evaluation can score
DEFAULT_BASELINES = (XVECTOR, VOICE_CLONE)  # scored before the first epoch unless the config says otherwise
VOICE_CLONES = frozenset({VOICE_CLONE, VOICE_CLONE_NON_STREAMING})  # need a reference recording and one voice

# Older run folders and configs used "icl". Rows keep saying what they measured: in-context cloning with
# non_streaming_mode=True (in those runs from a reference that still carried prepare's ~1 s of appended silence),
# i.e. the non-streaming voice clone. A config asked for "the in-context cloning baseline" (its only one then):
# that request is now answered with the call users make.
RENAMED_ROWS = {"icl": VOICE_CLONE_NON_STREAMING}
RENAMED_SETTINGS = {"icl": VOICE_CLONE}


def current_name(name: str) -> str:
    """A stored baseline name (a row's, ``best.json``'s) as this version stores it: an older name mapped to what
    that baseline measured, any other unchanged."""
    return RENAMED_ROWS.get(name, name)


def requested_name(name: str) -> str:
    """A baseline named in settings (``EvalSuite.baselines``) as this version names it: an older name mapped to the
    baseline that now answers the request, any other unchanged."""
    return RENAMED_SETTINGS.get(name, name)


def label(name: str) -> str:
    """What a baseline is, for people (the report, the docs); an unknown name is shown as it is."""
    return LABELS.get(current_name(name), name)
