"""What a listening test compares, read from run folders: the systems (a run's chosen cell, its zero-shot baselines,
several runs' chosen cells, or an ablation's variants), the held-out sentences they all spoke, the wav each system
spoke each sentence in, and the real recording of each sentence (the copy the evaluation put in the run folder).
Everything comes from the evaluation rows (``runs.records``), so a test hears exactly the clips that were scored."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import shown
from qwen_tts_lit.metrics.evidence import sentence_of
from qwen_tts_lit.model.layout import UNTAGGED
from qwen_tts_lit.runs.baselines import label as baseline_label
from qwen_tts_lit.runs.config import read_config
from qwen_tts_lit.runs.folder import BEST_FILE, ROWS_FILE
from qwen_tts_lit.runs.records import read_best, read_rows
from qwen_tts_lit.runs.roots import find_run_folders, variant_and_seed

REAL = "real"  # the system id of the real recordings
TUNED = "tuned"  # the system id of a run's chosen cell


@dataclass(frozen=True)
class System:
    """One system of the test, as key.json records it."""

    id: str
    label: str
    role: str  # tuned, baseline, real, anchor, variant or run
    source: str


@dataclass(frozen=True)
class Item:
    """One held-out sentence: ``speaker/utt_id`` (``utt_id`` for one voice) and its text."""

    id: str
    text: str


@dataclass
class Sources:
    """The systems (the first one is what the others are compared with; the real recordings last), the sentences
    every one of them spoke, and the wav of each (system, sentence)."""

    kind: str
    systems: list[System]
    items: list[Item]
    audio: dict[tuple[str, str], Path]
    provenance: dict = field(default_factory=dict)

    def system(self, system_id: str) -> System:
        return next(system for system in self.systems if system.id == system_id)


def where(path: Path) -> str:
    """A source folder as the key records it: absolute, so the key says the same wherever listen was run."""
    return Path(path).resolve().as_posix()


def item_id(row: dict) -> str:
    speaker, utt_id = sentence_of(row)
    return f"{speaker}/{utt_id}" if speaker else utt_id


def _clips(run: Path, rows: list[dict], field_name: str = "wav") -> dict[str, tuple[Path, str]]:
    """{item: (wav, text)} of one cell's rows; of a sentence spoken under several codec prefixes, the untagged one
    (what users call), else the first."""
    found: dict[str, tuple[Path, str]] = {}
    for row in sorted(rows, key=lambda row: row.get("prefix", UNTAGGED) != UNTAGGED):
        item = item_id(row)
        if item in found:
            continue
        if not row.get(field_name):
            raise UserError(f"{run / ROWS_FILE}: sentence {item}, field {field_name}: missing (re-score the run with "
                            "`evaluate` to write it)")  # fmt: skip
        path = run / row[field_name]
        if not path.is_file():
            raise UserError(f"{run / ROWS_FILE}: sentence {item}, field {field_name}: {path} not found")
        found[item] = (path, str(row.get("heldout_text") or row.get("text") or ""))
    return found


def _chosen(run: Path) -> tuple[dict, list[dict], list[dict]]:
    """(the chosen cell, its rows, every row) of a run; UserError when it has no evaluation to listen to."""
    if not run.is_dir():
        raise UserError(f"{run}: run folder not found (expected runs/NAME/version_N from `fit`)")
    best = read_best(run)
    if best is None:
        raise UserError(f"{run / BEST_FILE}: not found; the evaluation writes it (`evaluate --run {shown(run)}`)")
    rows = read_rows(run)
    cell = (int(best["epoch"]), float(best["lora_scale"]))
    chosen = [row for row in rows if not row.get("baseline") and (int(row["epoch"]), float(row["lora_scale"])) == cell]
    if not chosen:
        raise UserError(f"{run / ROWS_FILE}: no rows of the chosen cell (epoch {cell[0]}, lora_scale {cell[1]:g})")
    return best, chosen, rows


def _cell_label(best: dict) -> str:
    return f"epoch {int(best['epoch'])} x {float(best['lora_scale']):g}"


def _assemble(kind: str, spoken: list[tuple[System, dict]], real: dict, provenance: dict) -> Sources:
    """Sources from each system's {item: (wav, text)} and the real recordings': the sentences every system spoke,
    in the first system's order."""
    common = [item for item in spoken[0][1] if item in real and all(item in clips for _, clips in spoken)]
    if not common:
        raise UserError("the runs share no held-out sentence with a real recording: nothing to compare")
    systems = [system for system, _ in spoken]
    systems.append(System(REAL, "real recording", "real", "the held-out sentences' recordings (eval/real)"))
    audio = {(system.id, item): clips[item][0] for system, clips in spoken for item in common}
    audio |= {(REAL, item): real[item][0] for item in common}
    items = [Item(item, spoken[0][1][item][1]) for item in common]
    return Sources(kind, systems, items, audio, provenance)


def from_run(run: Path) -> Sources:
    """A run's chosen cell (``tuned``) against each zero-shot baseline it scored and the real recordings."""
    run = Path(run)
    best, chosen, rows = _chosen(run)
    spoken = [(System(TUNED, _cell_label(best), "tuned", where(run)), _clips(run, chosen))]
    for name in dict.fromkeys(row["baseline"] for row in rows if row.get("baseline")):
        own = [row for row in rows if row.get("baseline") == name]
        spoken.append((System(name, baseline_label(name), "baseline", where(run)), _clips(run, own)))
    provenance = {"run": where(run), "cell": {"epoch": int(best["epoch"]), "lora_scale": float(best["lora_scale"])}}
    return _assemble("run", spoken, _clips(run, chosen, "real_wav"), provenance)


def from_runs(runs: list[Path]) -> Sources:
    """Several runs' chosen cells (``run1``, ``run2``, ...) against each other and the real recordings (the first
    run's copies)."""
    if len(runs) < 2:
        raise UserError("--runs: give at least two run folders (one run: --run)")
    spoken, cells = [], {}
    for number, run in enumerate(map(Path, runs), 1):
        best, chosen, _ = _chosen(run)
        spoken.append((System(f"run{number}", f"{where(run)}: {_cell_label(best)}", "run", where(run)),
                       _clips(run, chosen)))  # fmt: skip
        cells[f"run{number}"] = {
            "run": where(run),
            "epoch": int(best["epoch"]),
            "lora_scale": float(best["lora_scale"]),
        }
    _, first, _ = _chosen(Path(runs[0]))
    return _assemble("runs", spoken, _clips(Path(runs[0]), first, "real_wav"), {"runs": cells})


def from_ablation(root: Path) -> Sources:
    """Each variant of an ablation root (ROOT/VARIANT/seed_S) against the others: each variant's chosen cell of
    its lowest seed that has one (seeds are repeats of one recipe; a listener hears one of them), in the folders'
    sorted order, the first variant being the one the others are compared with."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"--ablation {root}: folder not found")
    found: dict[str, tuple[int | None, Path]] = {}
    for path in find_run_folders(root):
        if read_best(path) is None:
            continue
        variant, seed = variant_and_seed(path, root, read_config(path))
        if variant not in found or (seed is not None and (found[variant][0] is None or seed < found[variant][0])):
            found[variant] = (seed, path)
    if len(found) < 2:
        raise UserError(f"--ablation {root}: {len(found)} variant(s) with a chosen cell ({BEST_FILE}); need two")
    spoken, cells = [], {}
    for variant, (seed, run) in found.items():
        best, chosen, _ = _chosen(run)
        label = f"{variant} (seed {seed}, {_cell_label(best)})"
        spoken.append((System(variant, label, "variant", where(run)), _clips(run, chosen)))
        cells[variant] = {"run": where(run), "seed": seed, "epoch": int(best["epoch"]),
                          "lora_scale": float(best["lora_scale"])}  # fmt: skip
    first_run = next(iter(found.values()))[1]
    _, first, _ = _chosen(first_run)
    return _assemble(
        "ablation", spoken, _clips(first_run, first, "real_wav"), {"ablation": where(root), "variants": cells}
    )
