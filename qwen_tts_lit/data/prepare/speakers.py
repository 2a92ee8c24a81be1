"""The speaker file of a prepared dataset: each voice's x-vector (the speaker encoder's output), computed once so
training never runs the encoder. From the reference recordings when given (one, or the mean of several), else the
mean over the voice's training clips; with several speakers one x-vector per speaker, each from its own."""

from __future__ import annotations

import json

import numpy as np

from qwen_tts_lit.data.prepare import codec
from qwen_tts_lit.data.prepare.audio import pcm16_to_float
from qwen_tts_lit.data.prepare.checks import Reference
from qwen_tts_lit.data.prepare.options import PrepareOptions
from qwen_tts_lit.data.prepare.plan import Plan
from qwen_tts_lit.data.prepare.write import read_clean
from qwen_tts_lit.speaker_file import speaker_bytes, speakers_bytes


def speaker_tensor(
    references: list[Reference], model, options: PrepareOptions, train_xvectors: dict
) -> tuple[np.ndarray, str]:
    """The x-vector and its provenance: one reference, the mean over several, or the mean over train clips."""
    if references:
        vectors = []
        for reference in references:
            cleaned = read_clean(reference.path, options, trailing_silence_s=0.0, frame=1)
            speech = pcm16_to_float(cleaned.pcm[: cleaned.speech_samples])
            vectors.append(codec.speaker_embedding(model, speech, options.sample_rate))
        source = "ref_audio:" + ",".join(reference.given for reference in references)
        source = source if len(vectors) == 1 else "mean_of_" + source
    else:
        vectors, source = [train_xvectors[key] for key in sorted(train_xvectors)], "mean_of_train"
    # Sum in float64 in id order: the mean is the same bytes whatever order the clips were encoded in.
    return np.mean(np.stack(vectors).astype(np.float64), axis=0).astype(np.float32), source


def speaker_vectors(plan: Plan, model, options: PrepareOptions, train_xvectors: dict) -> dict[str, tuple]:
    """Several speakers: name -> (x-vector, source), each from its own reference or its own train clips."""
    speaker_of = {clip.id: clip.speaker for clip in plan.clips}
    found = {}
    for name, references in sorted(plan.speaker_references.items()):
        own = {key: vector for key, vector in train_xvectors.items() if speaker_of[key] == name}
        found[name] = speaker_tensor(references, model, options, own)
    return found


def build_speaker_file(plan: Plan, model, options: PrepareOptions, train_xvectors: dict) -> tuple[bytes, dict, dict]:
    """(the x-vector file, the report's ``speaker`` record, {name: x-vector source} with several speakers or {})."""
    base = {"model": options.model}
    if plan.speaker_references is None:
        xvector, source = speaker_tensor(plan.references, model, options, train_xvectors)
        vectors = {plan.speaker: xvector}
        metadata = {"format": "qwen_tts_lit.speaker/v1", "source": source, **base}
        metadata |= {"speaker": plan.speaker} if plan.speaker else {}
        data, sources = speaker_bytes(xvector, metadata), {}
        info = {"source": source, "dim": int(xvector.shape[0]), "speaker": plan.speaker}
    else:
        found = speaker_vectors(plan, model, options, train_xvectors)
        vectors = {name: vector for name, (vector, _) in found.items()}
        sources = {name: source for name, (_, source) in found.items()}
        data = speakers_bytes(vectors, {"sources": json.dumps(sources, ensure_ascii=False), **base})
        info = {"source": "per_speaker", "dim": plan.hidden_size, "speaker": None}
    for name, vector in vectors.items():
        if vector.shape != (plan.hidden_size,):
            raise RuntimeError(f"x-vector of {name} of shape {vector.shape}, expected ({plan.hidden_size},)")
    return data, info, sources
