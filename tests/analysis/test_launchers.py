"""``ablate``'s launchers without a cluster: the grid's slurm section and the command line, what is submitted again
(missing and failed runs; not queued or running ones), a failed run's checkpoint continued with ``fit --resume``,
``--status``, partial tables, GPU pinning. The real SLURM runs are tests/slurm/test_slurm_ablate.py (slow)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.ablation import eval_row, write_run
from test_ablate import main, make_grid

from qwen_tts_lit.analysis.launchers.local import gpu_slots, visible_gpus
from qwen_tts_lit.analysis.launchers.options import SlurmOptions, merged, sbatch_flags
from qwen_tts_lit.analysis.launchers.slurm import parameters

DONE = {"status": "done", "returncode": 0, "seconds": 1.0, "command": "earlier"}


def finished_rows() -> list[dict]:
    return [eval_row(0, 1.0, u, wer=0.25) for u in ("a", "b")]


def test_the_command_line_overrides_the_grids_slurm_section_knob_by_knob():
    grid = {"partition": "gpu", "time": 240, "gpus_per_task": 1, "sbatch": ["--exclusive"], "mem": "64G"}
    options = merged(grid, SlurmOptions(partition="preempt", cpus_per_task=8))
    assert (options.partition, options.time, options.gpus_per_task, options.cpus_per_task) == ("preempt", 240, 1, 8)
    params = parameters(options)
    assert params["additional_parameters"] == {"requeue": True, "exclusive": True, "signal": "USR1@90"}
    assert (params["partition"], params["time"], params["mem"]) == ("preempt", 240, "64G")
    assert params["setup"][0] == "export SUBMITIT_PREEMPT_SIGNAL=USR1"  # the task acts on the signal sbatch asks for
    assert parameters(SlurmOptions(signal_delay_s=300))["additional_parameters"]["signal"] == "USR1@300"
    assert parameters(SlurmOptions())["time"] == 1440  # not submitit's 5 minutes
    assert sbatch_flags(["#SBATCH --mail-type=END", "--gres=gpu:a100:1"]) == {"mail-type": "END", "gres": "gpu:a100:1"}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"partiton": "gpu"}, r"grid.yaml:\d+: slurm.partiton: unknown key \(expected one of partition, account"),
        ({"time": "4h"}, r"grid.yaml:\d+: slurm.time: expected a whole number >= 0, got '4h'"),
        ({"sbatch": "--exclusive"}, r"grid.yaml:\d+: slurm.sbatch: expected a list of strings"),
        ({"sbatch": ["exclusive"]}, r"grid.yaml:\d+: slurm.sbatch: expected sbatch options such as --exclusive"),
    ],
)
def test_a_bad_slurm_section_exits_2_naming_file_line_and_key(tmp_path: Path, monkeypatch, capsys, section, message):
    import re

    monkeypatch.chdir(tmp_path)
    make_grid(tmp_path, slurm=section)
    assert main("ablate", "--grid", "grid.yaml", "--root", "out", "--status", "true") == 2
    assert re.search(message, capsys.readouterr().err), message


def test_jobs_is_checked_once_with_the_launcher(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make_grid(tmp_path)
    assert main("ablate", "--grid", "grid.yaml", "--root", "out", "--jobs", "0") == 2
    assert "--jobs 0: expected a whole number >= 1" in capsys.readouterr().err
    assert main("ablate", "--grid", "grid.yaml", "--root", "out", "--launcher", "pbs") == 2
    assert "--launcher pbs: expected one of local, slurm" in capsys.readouterr().err


def test_each_concurrent_run_gets_its_own_gpu(monkeypatch):
    assert gpu_slots(3, ["0", "1"]) == ["0", "1", "0"] and gpu_slots(2, []) == [None, None]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpus() == ["2", "5"]  # the GPUs this process was given, not the machine's


def test_status_reads_each_state_from_the_folders_and_the_scheduler(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make_grid(tmp_path)
    out = tmp_path / "out"
    write_run(out / "corrected" / "seed_0", finished_rows(), status=DONE, max_epochs=1)
    failed = write_run(out / "shift" / "seed_0", status={"status": "failed", "returncode": 1}, max_epochs=1)
    (failed / "ablate.log").write_text("$ python -m qwen_tts_lit fit ...\nerror: NaN loss at step 7 (batch a, b)\n\n")
    gone = write_run(out / "shift" / "seed_1", max_epochs=1)  # a SLURM job that ended without writing a status
    (gone / "submission.json").write_text(json.dumps({"launcher": "slurm", "submission": {"job_id": "999999_1"},
                                                      "attempts": []}))  # fmt: skip
    assert main("ablate", "--grid", "grid.yaml", "--root", "out", "--status", "true") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "corrected seed 0: done"
    assert lines[1] == "corrected seed 1: not submitted"
    assert lines[2] == "shift seed 0: failed [exit 1]  log: out/shift/seed_0/ablate.log"
    assert lines[3] == "    error: NaN loss at step 7 (batch a, b)"  # the log's last line
    assert lines[4].startswith("shift seed 1: failed [job 999999_1: ended without an exit status (killed?)")
    assert lines[5] == "1 done, 1 not submitted, 2 failed"


def test_a_running_run_is_not_started_again_and_the_tables_say_what_is_missing(tmp_path: Path, monkeypatch, capsys):
    """A run another ablate on this machine is running (its pid alive) is skipped, not started a second time in
    the same folder; the tables cover the finished runs and name the missing one."""
    monkeypatch.chdir(tmp_path)
    make_grid(tmp_path, seeds=[0])
    out = tmp_path / "out"
    write_run(out / "corrected" / "seed_0", finished_rows(), status=DONE, max_epochs=1)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # stands for the other ablate
    try:
        running = write_run(out / "shift" / "seed_0", max_epochs=1)
        attempt = {"launcher": "local", "host": socket.gethostname(), "pid": other.pid}
        (running / "submission.json").write_text(json.dumps({"launcher": "local", "submission": {},
                                                             "attempts": [attempt]}))  # fmt: skip
        assert main("ablate", "--grid", "grid.yaml", "--root", "out") == 0
        err = capsys.readouterr().err
        assert "1 finished and skipped, 1 queued or running, 0 to run" in err
        markdown = (out / "ablation.md").read_text()
        assert "- missing (1 of 2 runs not done yet; the rows above are over the finished runs only):" in markdown
        assert f"  - shift seed 0: running (pid {other.pid})" in markdown
        assert "| corrected | 1 | 2 |" in markdown and not (running / "ablate.log").exists()  # nothing started
    finally:
        other.kill()
        other.wait()


def test_a_failed_run_that_saved_a_checkpoint_continues_from_it(tmp_path: Path, monkeypatch, capsys):
    """A run killed without a signal (its last epoch's checkpoint saved) is resumed in place on the next ablate,
    with ``fit --resume FOLDER``, not wiped and started again."""
    monkeypatch.chdir(tmp_path)
    make_grid(tmp_path, seeds=[0])
    out = tmp_path / "out"
    write_run(out / "corrected" / "seed_0", finished_rows(), status=DONE, max_epochs=1)
    killed = write_run(out / "shift" / "seed_0", status={"status": "failed", "returncode": -9}, max_epochs=1)
    (killed / "checkpoints").mkdir()
    torch.save({"epoch": 0, "global_step": 3, "state_dict": {}}, killed / "checkpoints" / "last.ckpt")
    main("ablate", "--grid", "grid.yaml", "--root", "out")  # the resumed fit fails on the hand-made folder: fine
    err = capsys.readouterr().err
    assert "shift seed 0: continues from out/shift/seed_0/checkpoints/last.ckpt (remove out/shift/seed_0" in err
    log = (killed / "ablate.log").read_text()
    assert log.startswith("$ python -m qwen_tts_lit fit --resume out/shift/seed_0\n")
    assert (killed / "checkpoints" / "last.ckpt").is_file()  # kept, not wiped
    record = json.loads((killed / "submission.json").read_text())
    assert record["launcher"] == "local" and record["attempts"][-1]["host"] == socket.gethostname()
    assert record["attempts"][-1]["pid"] == os.getpid()
