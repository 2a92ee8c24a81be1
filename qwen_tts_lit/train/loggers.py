"""A CSVLogger that continues a run's ``metrics.csv`` instead of deleting it.

Lightning's CSVLogger removes an existing ``metrics.csv`` when it starts in a folder that has one, so a resumed run
would lose every epoch before the checkpoint. The CLI uses this subclass (same arguments) when it resumes a run:
it appends to the file and rewrites it, atomically, only when new columns appear. The steps a killed run logged
past its checkpoint are removed before (``runs.metrics.keep_metrics_before``).
"""

from __future__ import annotations

import csv
import io
import os

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from qwen_tts_lit.files import write_atomic


class ContinuedExperimentWriter(ExperimentWriter):
    """Lightning's writer, minus the deletion: an existing file's columns are read and its rows kept."""

    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as handle:
                self.metrics_keys = sorted(csv.DictReader(handle).fieldnames or [])

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        with open(self.metrics_file_path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(self.metrics_file_path, buffer.getvalue())


class CSVLogger(LightningCSVLogger):
    """``lightning.pytorch.loggers.CSVLogger`` that appends to an existing ``metrics.csv`` (a resumed run)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ContinuedExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuedExperimentWriter(log_dir=self.log_dir)
        return self._experiment
