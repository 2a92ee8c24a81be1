"""What an RL (GRPO) step costs on the tiny model, and the learning curve of PROOF 4 as a plot.

    python benchmarks/rl_step_cost.py                      # 5 steps of the learning recipe: rollout / reward / update
    python benchmarks/rl_step_cost.py --judges             # the same with the judges' rewards (ASR, DNSMOS, runaway)
    python benchmarks/rl_step_cost.py --plot docs/images/rl_learning.png --steps 24   # PROOF 4's curve

The recipe is the learning test's (tests/helpers/rl.py: the tiny model made EOS-prone, 8 rollouts of one prompt
per step, a length reward). Per step: rollout (the batched generate of every rollout, decoding when a reward reads
audio), reward (the judges), update (the rest of the step: the teacher-forced policy and reference forwards, the
loss, backward and AdamW), from the module's own ``time/rl_*`` metrics and the step's wall time. Prints figures;
asserts nothing (tests never time). On a shared CPU the times move with the machine's load: compare runs of one
session only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import lightning as L

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the learning recipe of the tests
from helpers.rl import LEARN_TARGET, learning_run  # noqa: E402

from qwen_tts_lit.train.rewards import RewardWeights  # noqa: E402
from qwen_tts_lit.upstream.tiny import default_tiny_dir, make_tiny  # noqa: E402


class StepClock(L.Callback):
    """Wall time of every training batch (rollout + reward + update)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [int(r["step"]) for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(steps, [float(r["rl/reward/total"]) for r in rows], marker="o", label="mean reward (8 rollouts)")
    left.set_xlabel("optimizer step")
    left.set_ylabel(f"reward = -|frames - {LEARN_TARGET}| / {LEARN_TARGET}")
    left.set_title("GRPO on the tiny model: the length reward")
    twin = left.twinx()
    twin.plot(steps, [float(r["rl/frames"]) for r in rows], color="grey", alpha=0.5, label="mean frames")
    twin.set_ylabel("mean frames per rollout (cap 16)")
    right.plot(steps, [float(r["rl/kl"]) for r in rows], marker="o", color="tab:red")
    right.set_xlabel("optimizer step")
    right.set_ylabel("KL to the reference (k3, per token)")
    right.set_title("KL to the adapters at scale 0 (weight 0.04)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--judges", action="store_true", help="ASR error rate + DNSMOS + runaway rewards")
    parser.add_argument("--plot", type=Path, default=None, help="save the learning curve here")
    args = parser.parse_args()
    model_dir = default_tiny_dir()
    if not model_dir.is_dir():
        make_tiny(model_dir)
    rewards = (
        RewardWeights(error_rate=1.0, naturalness=1.0, runaway=1.0)
        if args.judges
        else RewardWeights(error_rate=0.0, runaway=0.0, length=1.0, target_frames=LEARN_TARGET)
    )
    clock = StepClock()
    with tempfile.TemporaryDirectory() as scratch:
        _, rows, _ = learning_run(model_dir, scratch, args.steps, rewards, callbacks=[clock])
    print("step  rollout_s  reward_s  update_s  total_s  reward   kl      frames")
    for row, total in zip(rows, clock.seconds, strict=True):
        rollout, reward = float(row["time/rl_rollout_seconds"]), float(row["time/rl_reward_seconds"])
        update = total - rollout - reward
        learned = f"{float(row['rl/reward/total']):6.3f}  {float(row['rl/kl']):6.4f}  {float(row['rl/frames']):6.2f}"
        print(f"{int(row['step']):4d}  {rollout:9.2f}  {reward:8.2f}  {update:8.2f}  {total:7.2f}  {learned}")
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
