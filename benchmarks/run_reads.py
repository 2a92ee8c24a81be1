"""How often ``export`` and ``evaluate`` open each file of a run folder, and list its checkpoints.

    python benchmarks/run_reads.py --run runs/demo/version_0          # one export and one evaluate of a copy

Each verb runs in this process on a fresh copy of the run (nothing of the original is written), under an audit
hook that counts every ``open`` (``open``, ``Path.read_text``, ``torch.load``, ``zipfile``, yaml, ...) and every
folder listing (``os.scandir`` / ``os.listdir``) below the copy, plus the speaker file's ``safe_open`` (safetensors
reads it from Rust, where no audit event fires). The evaluate is the smallest one (one epoch, one scale, two
sentences, no ASR): the count of run-folder reads does not depend on the cells' number, only the audio does.

Prints figures; asserts nothing (``tests/export/test_export.py`` and ``tests/evaluation/test_rescore.py`` pin the
counts that matter).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.reads import counting_reads  # noqa: E402

from qwen_tts_lit import cli  # noqa: E402


def measure(run: Path, verb: str, args: list[str]) -> collections.Counter:
    """Run ``verb`` on a copy of ``run``; (kind, path under the copy) -> how many times."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "run"
        shutil.copytree(run, copy)
        with counting_reads(copy) as reads:
            code = cli.main([verb, "--run", str(copy), *[a.replace("SCRATCH", scratch) for a in args]])
        if code != 0:
            raise SystemExit(f"{verb} exited {code}")
        return reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished run folder (fit, configs/demo.yaml)")
    options = parser.parse_args()
    verbs = {
        "export": ["--output", "SCRATCH/export", "--speaker-name", "demo"],
        "evaluate": ["--epochs", "1", "--scales", "1.0", "--num-utterances", "2", "--no-asr"],
    }
    for verb, args in verbs.items():
        reads = measure(options.run.resolve(), verb, args)
        opened = sum(n for (kind, _), n in reads.items() if kind == "open")
        listed = sum(n for (kind, _), n in reads.items() if kind == "list")
        print(f"{verb}: {opened} file reads, {listed} folder listings in the run folder")
        for (kind, path), n in sorted(reads.items()):
            print(f"  {n:3d} x {kind:4s} {path}")


if __name__ == "__main__":
    main()
