"""``ablate --launcher slurm`` on a real one-node SLURM (tests/slurm/conftest.py), against a local run of the same
grid: the shipped CI grid (configs/ablations/grid_demo.yaml: corrected vs upstream_talker_shift) with one seed, one
epoch of 4 batches (2 optimizer steps: the demo accumulates 2), one held-out sentence at one scale.

One task is signalled mid-epoch as SLURM does before a time limit (``scancel --signal=USR1``): it must save, be
requeued, continue in its own folder with ``fit --resume`` and end on the very weights of the uninterrupted local
run; and the SLURM tables must equal the local ones. One file, so that xdist keeps it on one worker (one cluster).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from helpers.fit import REPO, run_cli

pytestmark = pytest.mark.slow
SHIPPED_GRID = REPO / "configs" / "ablations" / "grid_demo.yaml"
VARIANTS = ("corrected", "upstream_talker_shift")
TINY = ("--trainer.max_epochs=1", "--trainer.limit_train_batches=4", "--trainer.limit_val_batches=1",
        "--trainer.callbacks.num_utterances=1", "--trainer.callbacks.scales=[1.0]", "--trainer.callbacks.baselines=[]",
        # A pause after each batch of a first attempt: the window in which the test signals a task mid-epoch.
        "--trainer.callbacks+=helpers.callbacks.PauseAfterBatch", "--trainer.callbacks.seconds=1.5")  # fmt: skip
TIMES: dict[str, float] = {}


def squeue() -> list[str]:
    listed = subprocess.run(["squeue", "--noheader", "--array", "--format=%i %T %r"], capture_output=True, text=True)
    return listed.stdout.splitlines()


def wait_for(condition, timeout: float, what: str, step: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; squeue: {squeue()}")


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped grid, one seed, the tiny settings above, one CPU per task."""
    shipped = yaml.safe_load(SHIPPED_GRID.read_text())

    def absolute(paths: list[str]) -> list[str]:
        return [str((SHIPPED_GRID.parent / p).resolve()) for p in paths]

    assert list(shipped["variants"]) == list(VARIANTS)
    shipped |= {"base": absolute(shipped["base"]), "seeds": [0], "args": list(TINY), "slurm": {"cpus_per_task": 1},
                "variants": {name: absolute(overlays) for name, overlays in shipped["variants"].items()}}  # fmt: skip
    path = tmp_path_factory.mktemp("grid") / "grid_demo.yaml"
    path.write_text(yaml.safe_dump(shipped, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def local_root(grid: Path, fit_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grid run locally, both runs at once (--jobs 2): the reference."""
    root = tmp_path_factory.mktemp("local") / "demo"
    started = time.monotonic()
    run_cli(REPO, "ablate", "--grid", str(grid), "--root", str(root), "--jobs", "2", cache=fit_cache)
    TIMES["local grid (--jobs 2)"] = time.monotonic() - started
    return root


@pytest.fixture(scope="module")
def slurm_root(grid: Path, local_root: Path, slurm_cluster: Path, fit_cache: Path, tmp_path_factory) -> dict:
    """The grid through the SLURM launcher; corrected's task signalled mid-epoch and requeued; then ablate again
    for the tables. Returns the root, what --status said while the task waited, and ablate's outputs."""
    root = tmp_path_factory.mktemp("slurm") / "demo"
    args = ("ablate", "--grid", str(grid), "--root", str(root))
    started = time.monotonic()
    submitted = run_cli(REPO, *args, "--launcher", "slurm", cache=fit_cache)
    folder = root / "corrected" / "seed_0"
    job = json.loads((folder / "submission.json").read_text())["submission"]["job_id"]
    wait_for(lambda: (folder / "trained_batch").is_file(), 300, "corrected's first batch")
    signalled = time.monotonic()
    subprocess.run(["scancel", "--signal=USR1", job], check=True)  # what --signal=USR1@90 sends before the limit
    wait_for(lambda: any(line.startswith(f"{job} PENDING") for line in squeue()), 120, f"{job} requeued")
    TIMES["signal -> requeued (saved, stopped)"] = time.monotonic() - signalled
    waiting = run_cli(REPO, *args, "--status", "true", cache=fit_cache).stdout
    # SLURM holds a requeued job back for about two minutes (its BeginTime); release it now.
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    wait_for(lambda: not squeue(), 400, "every task to end", step=0.5)
    TIMES["slurm grid (submit to end)"] = time.monotonic() - started
    again = run_cli(REPO, *args, "--launcher", "slurm", cache=fit_cache)
    status = run_cli(REPO, *args, "--status", "true", cache=fit_cache).stdout
    print("\nSLURM test times (s):", json.dumps({k: round(v, 1) for k, v in TIMES.items()}))
    return {"root": root, "job": job, "waiting": waiting, "submitted": submitted.stderr, "again": again.stderr,
            "status": status}  # fmt: skip


def state_dict(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_slurm_tables_equal_the_local_run(slurm_root: dict, local_root: Path):
    root = slurm_root["root"]
    assert "0 finished and skipped, 2 to run" in slurm_root["submitted"]
    assert "2 finished and skipped, 0 to run" in slurm_root["again"]  # nothing resubmitted
    for name in ("ablation.csv", "ablation.md"):
        local = (local_root / name).read_text().replace(str(local_root), "ROOT")
        assert (root / name).read_text().replace(str(root), "ROOT") == local, name
    assert "| corrected | 1 | 1 |" in (root / "ablation.md").read_text()
    for variant in VARIANTS:
        ours, theirs = root / variant / "seed_0", local_root / variant / "seed_0"
        assert (
            json.loads((ours / "best.json").read_text())["metrics"]
            == json.loads((theirs / "best.json").read_text())["metrics"]
        )
        record = json.loads((ours / "submission.json").read_text())
        assert record["launcher"] == "slurm" and "#SBATCH --signal=USR1@90" in record["submission"]["sbatch"]
        assert "#SBATCH --requeue" in record["submission"]["sbatch"] and record["attempts"][0]["host"]
        assert record["attempts"][0]["slurm_array_job_id"] == record["submission"]["job_id"].split("_")[0]


def test_a_signalled_task_is_requeued_and_ends_on_the_uninterrupted_weights(slurm_root: dict, local_root: Path):
    folder, uninterrupted = slurm_root["root"] / "corrected" / "seed_0", local_root / "corrected" / "seed_0"
    assert f"corrected seed 0: queued [job {slurm_root['job']}: PENDING (BeginTime)]" in slurm_root["waiting"]
    log = (folder / "ablate.log").read_text()
    assert "stopped by SIGUSR1 (the scheduler's requeue signal) after step 1" in log  # inside the epoch: 1 of 2
    assert f"$ python -m qwen_tts_lit fit --resume {folder} --trust-run" in log  # the requeued task, same folder
    attempts = json.loads((folder / "submission.json").read_text())["attempts"]
    assert [a.get("slurm_restart_count", "0") for a in attempts] == ["0", "1"]
    for name in ("epoch=000.ckpt", "last.ckpt"):
        ours, theirs = state_dict(folder / "checkpoints" / name), state_dict(uninterrupted / "checkpoints" / name)
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours), name
    rows = [json.loads(line) for line in (folder / "eval" / "rows.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in (uninterrupted / "eval" / "rows.jsonl").read_text().splitlines()]
    assert [r["wer"] for r in rows] == [r["wer"] for r in expected] and len(rows) == len(expected) == 1
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["epoch=000.ckpt", "last.ckpt"]
    steps = [line.split(",")[2] for line in (folder / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == [line.split(",")[2] for line in (uninterrupted / "metrics.csv").read_text().splitlines()[1:]]


def test_status_names_every_run_with_its_job_and_log(slurm_root: dict):
    lines = slurm_root["status"].splitlines()
    for variant in VARIANTS:
        assert any(line.startswith(f"{variant} seed 0: done [job ") and "ablate.log" in line for line in lines)
    assert lines[-1] == "2 done"
