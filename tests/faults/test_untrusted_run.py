"""A run folder from someone else must not run code here: a checkpoint whose pickle would create a marker file (its
``__reduce__`` calls ``os.system``), and a ``config.yaml`` naming a foreign class, are refused in one line naming the
file and what it wanted, on every path that reads a run (export, evaluate, synthesize, fit --resume); the marker never
appears. With --trust-run the user vouches for the run and the same file loads (the marker appears: the test can
fail). A checkpoint's hyper-parameters are checked as a config is, and a class the file checks cannot see (a dotted
string, a sub-config) is kept out by jsonargparse's import policy, while classes the user names stay allowed.
Lightning's own restore stays safe under TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD; what we write (checkpoints, shipped
configs, adapter exports) needs no trust."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers.runs import main

from qwen_tts_lit.runs.checkpoints import TRUST_ENV
from qwen_tts_lit.runs.folder import CHECKPOINT_DIR, CONFIG_FILE

pytestmark = pytest.mark.usefixtures("run_cache")


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def crafted(demo_run: Path, tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """(a copy of the demo run whose epoch-1 and last checkpoints carry the payload, the marker it would create)."""
    monkeypatch.setenv(TRUST_ENV, "0")  # whatever --trust-run sets in this process is undone after the test
    run = tmp_path / "version_0"
    shutil.copytree(demo_run, run)  # with its evaluation rows: evaluate re-scores from them
    marker = tmp_path / "MARKER"
    checkpoint = torch.load(run / CHECKPOINT_DIR / "epoch=001.ckpt", weights_only=True, map_location="cpu")
    for name in ("epoch=001.ckpt", "last.ckpt"):
        path = run / CHECKPOINT_DIR / name
        if name == "epoch=001.ckpt" or path.exists():
            torch.save({**checkpoint, "note": Payload(marker)}, path)
    return run, marker


def _refused(capsys, path_part: str, wanted: str) -> None:
    err = capsys.readouterr().err.strip()
    line = err.splitlines()[-1]
    assert "Traceback" not in err and path_part in line and wanted in line and "--trust-run" in line, err


def test_export_refuses_a_crafted_checkpoint_and_trust_loads_it(crafted, tmp_path, capsys):
    run, marker = crafted
    args = ("export", "--run", run, "--epoch", 1, "--speaker_name", "demo", "--format", "adapter")
    assert main(*args, "--output", tmp_path / "out") == 2
    _refused(capsys, "epoch=001.ckpt", "system")
    assert not marker.exists() and not (tmp_path / "out").exists()
    assert main(*args, "--output", tmp_path / "trusted", "--trust-run") == 0
    assert marker.exists()  # the payload is real: without the safe loader it runs


def test_synthesize_and_evaluate_from_a_run_refuse_it(crafted, tmp_path, capsys):
    run, marker = crafted
    out = tmp_path / "a.wav"
    assert main("synthesize", "--model", run, "--epoch", 1, "--text", "Hi.", "--max_new_tokens", 2,
                "--output", out) == 2  # fmt: skip
    _refused(capsys, "epoch=001.ckpt", "system")
    assert main("evaluate", "--run", run, "--epochs", "1", "--scales", "1.0", "--num_utterances", "1") == 2
    _refused(capsys, "epoch=001.ckpt", "system")
    assert not marker.exists() and not out.exists()


def test_fit_resume_refuses_a_crafted_checkpoint_and_a_foreign_config_class(crafted, demo_run, tmp_path, capsys):
    run, marker = crafted
    assert main("fit", "--resume", run, "--trainer.max_epochs", "3") == 2
    _refused(capsys, ".ckpt", "system")
    assert not marker.exists()
    shutil.copytree(demo_run / CHECKPOINT_DIR, run / CHECKPOINT_DIR, dirs_exist_ok=True)  # clean checkpoints again
    config = run / CONFIG_FILE
    (tmp_path / "evil_plugin.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Hook: pass\n")
    text = config.read_text().replace("callbacks:", "callbacks:\n  - class_path: evil_plugin.Hook", 1)
    assert "evil_plugin" in text
    config.write_text(text)
    assert main("fit", "--resume", run, "--trainer.max_epochs", "3") == 2
    _refused(capsys, CONFIG_FILE, "evil_plugin.Hook")
    assert not marker.exists()


def test_fit_resume_of_a_crafted_checkpoint_goes_on_when_trusted(crafted, capsys):
    """--trust-run holds for all three reads of ``fit --resume`` (the session's record, LightningCLI's merge of the
    hyper-parameters, which hard-codes weights_only=True, and the Trainer's restore): the fit completes."""
    run, marker = crafted
    checkpoint = run / CHECKPOINT_DIR / "epoch=001.ckpt"
    assert main("fit", "--resume", checkpoint, "--trust-run", "--trainer.enable_progress_bar", "false") == 0, (
        capsys.readouterr().err[-2000:]
    )
    assert marker.exists()  # max_epochs 2 was reached at this checkpoint: restored, nothing more to train


# ------------------------------------------------------------------------------------------- what we write


def test_a_real_fit_writes_checkpoints_the_safe_loader_reads_as_they_are(demo_run: Path):
    """Every checkpoint a real Trainer fit wrote names no global beyond what torch's weights_only loader rebuilds by
    default (tensors, dicts, lists, numbers, strings): the safe loader needs no allowlist for our own files."""
    checkpoints = sorted((demo_run / CHECKPOINT_DIR).glob("*.ckpt"))
    assert [p.name for p in checkpoints] == ["epoch=000.ckpt", "epoch=001.ckpt", "last.ckpt"]
    for path in checkpoints:
        assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == [], path
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert state["state_dict"] and state["optimizer_states"] and state["xvector"].dim() == 1


def test_every_shipped_config_names_only_trusted_classes(repo_root: Path):
    """A run trained from any config this project ships resumes without --trust-run: each class it names passes the
    file check and, imported by jsonargparse under the run-folder import policy, the policy too (which also checks
    the path a class is defined under, e.g. transformers.optimization.Adafactor)."""
    from jsonargparse._util import import_object

    from qwen_tts_lit.cli.import_policy import import_policy
    from qwen_tts_lit.runs.checkpoints import TRUSTED_IMPORT_PATHS, untrusted_classes

    configs = sorted((repo_root / "configs").rglob("*.yaml"))
    trees = {path.relative_to(repo_root): yaml.safe_load(path.read_text()) for path in configs}
    named = {value for tree in trees.values() for value in _class_paths(tree)}
    assert {"torch.optim.AdamW", "qwen_tts_lit.callbacks.EvalSuite", "transformers.Adafactor"} <= named
    assert {str(path): found for path, tree in trees.items() if (found := untrusted_classes(tree))} == {}
    with import_policy(set(TRUSTED_IMPORT_PATHS)):
        for name in sorted(named):
            import_object(name)  # raises ImportDenied when the policy would refuse it


def _class_paths(tree) -> list[str]:
    if isinstance(tree, dict):
        own = [tree["class_path"]] if isinstance(tree.get("class_path"), str) else []
        return own + [name for value in tree.values() for name in _class_paths(value)]
    if isinstance(tree, list):
        return [name for value in tree for name in _class_paths(value)]
    return []


SHAREABLE_SUFFIXES = {".safetensors", ".json", ".md"}  # tensors, settings, the model card


def test_an_adapter_export_is_safetensors_and_json_only(demo_run: Path, tmp_path: Path):
    """No file of an adapter export is a pickle (or torch's zip of one): tensors are safetensors, the rest text."""
    from safetensors import safe_open

    out = tmp_path / "adapter"
    assert main("export", "--run", demo_run, "--epoch", 1, "--output", out, "--speaker-name", "demo",
                "--format", "adapter") == 0  # fmt: skip
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and {p.suffix for p in files} <= SHAREABLE_SUFFIXES, sorted(str(p.relative_to(out)) for p in files)
    assert {p.suffix for p in files} >= {".safetensors", ".json"}
    for path in files:
        assert not path.read_bytes()[:4].startswith((b"\x80", b"PK\x03\x04")), path  # pickle 2+ / torch.save's zip
        if path.suffix == ".safetensors":
            with safe_open(str(path), "pt") as handle:
                assert list(handle.keys()), path
        else:
            path.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- Lightning's restore


def test_lightnings_own_restore_is_safe_whatever_the_environment_says(tmp_path: Path, monkeypatch):
    """A real Trainer's restore (``fit(ckpt_path=...)``) goes through our CheckpointIO, which asks torch for
    weights_only=True explicitly: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, which turns off torch's default (what Lightning
    relies on: it passes weights_only=None), cannot undo it. Trusted, the same restore unpickles the payload."""
    import lightning as L
    from lightning.pytorch.demos.boring_classes import BoringModel

    from qwen_tts_lit.errors import UserError
    from qwen_tts_lit.train.checkpoint_io import AtomicCheckpointIO

    def trainer(epochs: int) -> L.Trainer:
        return L.Trainer(default_root_dir=tmp_path, max_epochs=epochs, limit_train_batches=2, limit_val_batches=0,
                         logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, plugins=[AtomicCheckpointIO()])  # fmt: skip

    monkeypatch.setenv(TRUST_ENV, "0")
    first = trainer(1)
    first.fit(BoringModel())
    checkpoint, marker = tmp_path / "crafted.ckpt", tmp_path / "MARKER"
    first.save_checkpoint(checkpoint)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    torch.save({**state, "note": Payload(marker)}, checkpoint)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(UserError) as refused:
        trainer(2).fit(BoringModel(), ckpt_path=checkpoint)
    assert str(refused.value).startswith(f"{checkpoint}: refused to load: it asks to run posix.system")
    assert "\n" not in str(refused.value) and not marker.exists()
    monkeypatch.setenv(TRUST_ENV, "1")
    trainer(2).fit(BoringModel(), ckpt_path=checkpoint)
    assert marker.exists()  # the payload is real: the refusal above is what kept it from running


# ------------------------------------------------------------------------------------------- foreign classes


@pytest.fixture
def planted(tmp_path: Path, monkeypatch) -> tuple[str, Path]:
    """(a module on sys.path whose import creates a marker file, the marker); it defines a Callback and an AdamW.
    Named per test so that one test's import cannot hide another's."""
    name, marker = f"planted_{tmp_path.name}", tmp_path / "IMPORTED"
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / f"{name}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\nimport lightning\nimport torch\n\n\n"
        "class Callback(lightning.Callback):\n    pass\n\n\nclass Optimizer(torch.optim.AdamW):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    monkeypatch.setenv(TRUST_ENV, "0")
    yield name, marker
    sys.modules.pop(name, None)


def _copy(demo_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "version_0"
    shutil.copytree(demo_run, run, ignore=shutil.ignore_patterns("events.out.*", "validate"))
    return run


def _edit_config(run: Path, edit) -> None:
    path = run / CONFIG_FILE
    config = yaml.safe_load(path.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    return err.splitlines()[-1]


def test_fit_resume_refuses_a_foreign_class_in_the_checkpoints_hyper_parameters(demo_run, planted, tmp_path, capsys):
    """LightningCLI merges a checkpoint's hyper-parameters into the model's config before it instantiates it: a
    class named there is refused in one line naming the file and the class, before that merge imports it."""
    module, marker = planted
    run = _copy(demo_run, tmp_path)
    checkpoint = run / CHECKPOINT_DIR / "epoch=001.ckpt"
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state["hyper_parameters"]["optimizer"] = {"class_path": f"{module}.Optimizer"}
    torch.save(state, checkpoint)
    assert main("fit", "--resume", checkpoint) == 2
    line = _one_line(capsys)
    assert line.startswith(f"error: {checkpoint}: refused to load: it asks to run the class {module}.Optimizer"), line
    assert "hyper_parameters.optimizer" in line and "--trust-run" in line, line
    assert not marker.exists() and module not in sys.modules
    assert main("fit", "--resume", checkpoint, "--trust-run", "--trainer.enable_progress_bar", "false") == 0
    assert marker.exists()  # merged and instantiated as the checkpoint says: the refusal is what stood in its way
    assert os.environ.get(TRUST_ENV) == "0"  # --trust-run vouched for that command only (a notebook runs several)


def _dotted_optimizer(run: Path, module: str) -> None:
    _edit_config(run, lambda config: config["model"].__setitem__("optimizer", f"{module}.Optimizer"))


def _sub_config_callback(run: Path, module: str) -> None:
    (run / "extra_callback.yaml").write_text(f"class_path: {module}.Callback\n")
    _edit_config(run, lambda config: config["trainer"]["callbacks"].append("extra_callback.yaml"))


@pytest.mark.parametrize("hide", [_dotted_optimizer, _sub_config_callback], ids=["dotted-string", "sub-config"])
def test_fit_resume_imports_no_class_the_file_check_cannot_see(hide, demo_run, planted, tmp_path, capsys):
    """The backstop: a class named where the config.yaml check does not look (a plain dotted string for a
    callable-typed option, a sub-config file the run's config points to) is still never imported: jsonargparse's
    import-path policy denies it while LightningCLI parses and instantiates. One line naming the class, exit 2."""
    from jsonargparse._common import parsing_settings

    module, marker = planted
    run = _copy(demo_run, tmp_path)
    hide(run, module)
    before = dict(parsing_settings)
    assert main("fit", "--resume", run) == 2
    line = _one_line(capsys)
    assert f"{module}." in line and "--trust-run" in line and "not allowed" not in line, line
    assert not marker.exists() and module not in sys.modules
    assert parsing_settings == before  # the policy ends with the command (notebooks and tests run several CLIs)
    assert main("fit", "--resume", run, "--trust-run", "--trainer.enable_progress_bar", "false") == 0
    assert marker.exists()


def test_validate_from_a_run_folder_imports_no_class_its_config_names(demo_run, planted, tmp_path, capsys):
    """``validate --config RUN/config.yaml --ckpt_path RUN/checkpoints/...`` (docs/train.md) is covered too."""
    module, marker = planted
    run = _copy(demo_run, tmp_path)
    _edit_config(run, lambda c: c["trainer"]["callbacks"].append({"class_path": f"{module}.Callback"}))
    args = ("validate", "--config", run / CONFIG_FILE, "--ckpt_path", run / CHECKPOINT_DIR / "epoch=001.ckpt")
    assert main(*args) == 2
    line = _one_line(capsys)
    assert f"{module}.Callback" in line and "--trust-run" in line, line
    assert not marker.exists() and module not in sys.modules


def test_classes_the_user_names_stay_allowed_when_resuming(demo_run, planted, tmp_path, capsys):
    """The policy keeps out what a run folder names, not what the user asks for: a callback named on the command
    line, or in a config file of the user's own (outside any run folder), is imported and runs. (The resumed run's
    config.yaml then names it: resuming that run again takes --trust-run, so the second case starts from a copy.)"""
    module, marker = planted
    run = _copy(demo_run, tmp_path / "a")
    quiet = ("--trainer.enable_progress_bar", "false")
    assert main("fit", "--resume", run, f"--trainer.callbacks+={module}.Callback", *quiet) == 0, capsys.readouterr()
    assert marker.exists()
    marker.unlink()
    sys.modules.pop(module)
    run = _copy(demo_run, tmp_path / "b")
    own = tmp_path / "mine" / "extra.yaml"
    own.parent.mkdir()
    callbacks = yaml.safe_load((run / CONFIG_FILE).read_text())["trainer"]["callbacks"]
    own.write_text(yaml.safe_dump({"trainer": {"callbacks": [*callbacks, {"class_path": f"{module}.Callback"}]}}))
    assert main("fit", "--resume", run, "--config", own, *quiet) == 0, capsys.readouterr()
    assert marker.exists()


@pytest.mark.parametrize("verb", ["export", "evaluate", "synthesize"])
def test_export_evaluate_and_synthesize_never_import_what_the_config_names(verb, demo_run, planted, tmp_path, capsys):
    """They read plain values from config.yaml (yaml.safe_load) and instantiate nothing it names, so they succeed
    without --trust-run and the module is never imported."""
    module, marker = planted
    run = _copy(demo_run, tmp_path)
    _edit_config(run, lambda c: c["trainer"]["callbacks"].append({"class_path": f"{module}.Callback"}))
    _dotted_optimizer(run, module)
    args = {
        "export": ("--run", run, "--epoch", 1, "--output", tmp_path / "out", "--speaker-name", "demo"),
        "evaluate": ("--run", run, "--epochs", 1, "--scales", 1.0, "--num-utterances", 1, "--no-asr"),
        "synthesize": ("--model", run, "--epoch", 1, "--text", "Hi.", "--output", tmp_path / "o.wav",
                       "--max-new-tokens", 8, "--retries", 0, "--keep-runaway"),
    }[verb]  # fmt: skip
    assert main(verb, *args) == 0, capsys.readouterr().err[-2000:]
    assert not marker.exists() and module not in sys.modules
