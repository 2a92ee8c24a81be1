"""The notebooks are stored without outputs and execute top to bottom (as ``pytest --nbmake notebooks/`` would).

``python -m pytest`` collects tests/ only (pyproject testpaths), so this module is what runs them in CI: 01 on the
session's demo run, 01 and 02 with nothing to show (a clear message, no error: what nbmake on a fresh clone runs,
from a notebooks/ folder); 02 on a real ablation root is in test_ablate_demo.py, beside the grid run that produces it.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from helpers.notebooks import NOTEBOOKS, execute_notebook

NAMES = ["01_pick_epoch.ipynb", "02_ablations.ipynb"]


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name: str):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    sources = "\n".join(cell.source for cell in code)
    imports = {line.split()[1] for line in sources.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"os", "pathlib", "pandas", "IPython.display", "qwen_tts_lit"}, imports
    assert "from qwen_tts_lit import analysis" in sources


def test_01_pick_epoch_on_the_demo_run(demo_run: Path):
    output = execute_notebook("01_pick_epoch.ipynb", {"QWEN_TTS_LIT_RUN": str(demo_run)})
    best = json.loads((demo_run / "best.json").read_text())
    assert f"chosen: epoch={best['epoch']} lora_scale={best['lora_scale']:g}" in output
    assert f"recomputed from the rows: epoch={best['epoch']} lora_scale={best['lora_scale']:g}" in output
    assert f"run: {demo_run}" in output and "<Figure" in output  # figures were drawn


@pytest.mark.parametrize("name", NAMES)
def test_notebook_without_runs_explains_what_to_run(name: str, tmp_path: Path):
    """Started in the notebooks/ folder of a checkout with no runs/ (a fresh clone): no error, a message with the
    command that makes one."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    output = execute_notebook(name, {"QWEN_TTS_LIT_RUN": None, "QWEN_TTS_LIT_ABLATION": None}, cwd=folder)
    assert f"{tmp_path}/runs" in output  # the repository root is the folder above notebooks/
    assert "python -m qwen_tts_lit " + ("fit --config configs/demo.yaml" if name.startswith("01") else "ablate") in (
        output
    )
