"""Execute a notebook as nbmake does (nbclient, the notebook's folder as working directory) and read its output."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def set_environment(values: dict[str, str | None]) -> None:
    """Set (or, for None, remove) environment variables of this process, which a kernel inherits."""
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def execute_notebook(name: str, env: dict[str, str | None], cwd: Path = NOTEBOOKS, timeout: int = 600) -> str:
    """Run ``notebooks/NAME`` top to bottom (a failing cell raises CellExecutionError); return all text output.

    ``env`` is set for the kernel (None removes a variable); the kernel inherits this process's environment.
    """
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    saved = {key: os.environ.get(key) for key in env}
    set_environment(env)
    try:
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": cwd}})
        client.execute()
    finally:
        set_environment(saved)
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") or output.get("data", {}).get("text/markdown", ""))
            texts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)
