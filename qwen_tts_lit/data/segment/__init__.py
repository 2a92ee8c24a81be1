"""``segment``: long recordings -> clips cut at pauses, transcribed, filtered, proofread -> a manifest for prepare.

Modules, in the order the data passes through them: :mod:`~.request` (every knob, documented once),
:mod:`~.decode` (any length, any format, in blocks), :mod:`~.scan` (speech probability, level and clipping per
32 ms frame), :mod:`~.cuts` (pure: where to cut), :mod:`~.clips` (the 24 kHz clips), :mod:`~.measure`
(transcript, confidences, speaker embedding; cached), :mod:`~.filters` (pure: status and reasons), :mod:`~.sheet`
(review.csv and its edits), :mod:`~.page` (review.html), :mod:`~.summary`, :mod:`~.outputs` (file names) and
:mod:`~.pipeline` (the order of work, resumable and atomic).

From a notebook::

    from qwen_tts_lit.data.segment.pipeline import segment
    from qwen_tts_lit.data.segment.request import SegmentRequest
    summary = segment(SegmentRequest(input=["talk.mp3"], output="talk_clips"))
"""
