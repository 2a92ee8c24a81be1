"""The resolved config a run saved (LightningCLI's ``config.yaml``: every default spelled out)."""

from __future__ import annotations

from pathlib import Path

from qwen_tts_lit.model.layout import language_tag_mode
from qwen_tts_lit.runs.folder import CONFIG_FILE


def read_config(run_dir: Path) -> dict:
    """``config.yaml`` as a dict ({} when absent)."""
    import yaml

    path = Path(run_dir) / CONFIG_FILE
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def _init_args(node) -> dict:
    """A config node as plain init args, whether written as ``{class_path, init_args}`` or as the args themselves."""
    if not isinstance(node, dict):
        return {}
    return dict(node.get("init_args") or {}) if "class_path" in node else dict(node)


def model_args(config: dict) -> dict:
    return _init_args(config.get("model"))


def data_args(config: dict) -> dict:
    return _init_args(config.get("data"))


def callback_args(config: dict, class_name: str) -> dict | None:
    """The init args of the first ``trainer.callbacks`` entry whose class is ``class_name``; None when absent."""
    callbacks = (config.get("trainer") or {}).get("callbacks") or []
    for callback in callbacks if isinstance(callbacks, list) else []:
        if isinstance(callback, dict) and str(callback.get("class_path", "")).split(".")[-1] == class_name:
            return _init_args(callback)
    return None


def max_epochs(config: dict) -> int | None:
    """``trainer.max_epochs``, or None."""
    value = (config.get("trainer") or {}).get("max_epochs")
    return int(value) if isinstance(value, int) and value > 0 else None


def trained_language_tag(config: dict) -> str:
    """The run's ``data.language_tag`` ("off", "on" or "mixed"); runs saved before it existed wrote
    ``use_language_tag`` (a boolean)."""
    data = data_args(config)
    return language_tag_mode(data.get("language_tag", data.get("use_language_tag")))
