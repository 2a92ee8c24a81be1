"""``EvalSuite``'s flat arguments (what jsonargparse shows and configs name) are ``EvalSettings``' fields: the same
names, defaults and documentation, so neither can drift from the other; and the callback builds its settings by
keyword, so reordering the dataclass's fields cannot swap two values."""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import MISSING, fields

from qwen_tts_lit.evaluation import settings as settings_module
from qwen_tts_lit.evaluation.settings import EvalSettings, InstructProbeSettings, JudgeSettings
from qwen_tts_lit.metrics.selection import SelectionRule
from qwen_tts_lit.train.eval_suite import EvalSuite

CALLBACK_ONLY = {"audio_samples_to_log"}  # what the callback does with the results, not how evaluation runs


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def field_docs(cls: type) -> dict[str, str]:
    """Each field's attribute docstring (the string right after it in the class body)."""
    tree = ast.parse(inspect.getsource(settings_module))
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__).body
    return {
        node.target.id: _words(after.value.value)
        for node, after in zip(body, body[1:], strict=False)
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
    }


def arg_docs(function) -> dict[str, str]:
    """The ``Args:`` section of a Google-style docstring, name -> text."""
    section = inspect.getdoc(function).split("Args:", 1)[1]
    parts = re.split(r"^\s{4}(\w+): ", "\n" + section, flags=re.MULTILINE)
    return {name: _words(text) for name, text in zip(parts[1::2], parts[2::2], strict=True)}


def test_flat_arguments_are_the_settings_fields_with_their_defaults_and_docs():
    parameters = dict(inspect.signature(EvalSuite.__init__).parameters)
    parameters.pop("self")
    names = [name for name in parameters if name not in CALLBACK_ONLY]
    assert names == [f.name for f in fields(EvalSettings)]
    defaults = EvalSettings()
    for name in names:
        default = parameters[name].default
        expected = getattr(defaults, name)
        assert (tuple(default) if isinstance(default, list) else default) == expected, name
    documented, fields_doc = arg_docs(EvalSuite.__init__), field_docs(EvalSettings)
    for name in names:
        assert documented[name] == fields_doc[name], name


def test_each_flat_argument_lands_in_its_own_field():
    """Distinct values for every field: a positional build after a reorder would swap two of them."""
    values = dict(scales=[0.25, 0.75], num_utterances=3, heldout="h.jsonl", seed=9, every_n_epochs=2,
                  max_new_tokens=77, batch_size=5, decoding="static", judges=JudgeSettings(asr=False),
                  rule=SelectionRule(), baselines=["voice_clone_non_streaming"],
                  instruct_probe=InstructProbeSettings(sentences=1, every_n_epochs=5), presets_kept=3)  # fmt: skip
    assert set(values) == {f.name for f in fields(EvalSettings)}  # every field is exercised
    settings = EvalSuite(**values).settings
    for name, value in values.items():
        assert getattr(settings, name) == (tuple(value) if isinstance(value, list) else value), name
    assert all(f.default is not MISSING or f.default_factory is not MISSING for f in fields(EvalSettings))
