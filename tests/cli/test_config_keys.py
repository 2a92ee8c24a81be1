"""Keys through the entry point: an earlier version's renamed keys are read under their new names with one line
each, an unknown key is one line with the closest valid keys (never jsonargparse's usage dump)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from qwen_tts_lit.cli import main
from qwen_tts_lit.cli.config_keys import RENAMED_KEYS, rename_keys
from qwen_tts_lit.cli.parse_errors import closest_keys

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.yaml"

# The first version's spelling (model.lora_rank, model.fix_*, data.use_language_tag), with values unlike the
# defaults so that a key dropped on the way cannot pass.
OLD_MODEL = {"lora_rank": 4, "lora_alpha": 12, "lora_dropout": 0.25, "lora_code_predictor": True,
             "fix_text_projection": True, "fix_talker_shift": False, "fix_sub_talker_alignment": False,
             "fix_sub_talker_shift": False}  # fmt: skip


def _old_config(tmp_path: Path) -> Path:
    config = yaml.safe_load(DEMO.read_text())
    del config["model"]["lora"]
    config["model"].update(OLD_MODEL)
    config["data"]["use_language_tag"] = True
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_an_old_config_runs_with_one_line_per_renamed_key(tmp_path: Path, capsys):
    old = _old_config(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(old), "--model.lora_dropout", "0.5", "--print_config"])
    assert exit_info.value.code in (0, None)
    out, err = capsys.readouterr()
    parsed = yaml.safe_load(out)
    assert parsed["model"]["lora"] == {"rank": 4, "alpha": 12, "dropout": 0.5, "code_predictor": True}
    assert parsed["model"]["fixes"] == {"text_projection": True, "talker_shift": False,
                                        "sub_talker_alignment": False, "sub_talker_shift": False}  # fmt: skip
    assert parsed["data"]["language_tag"] is True
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert sorted(notes) == sorted(
        [f"note: {old}: {o} is now called {n}; read as {n} (rename it there)" for o, n in RENAMED_KEYS.items()]
        + ["note: the command line: model.lora_dropout is now called model.lora.dropout; read as model.lora.dropout "
           "(rename it there)"]
    )  # fmt: skip


def test_both_names_of_one_key_is_one_line(tmp_path: Path, capsys):
    config = yaml.safe_load(DEMO.read_text())
    config["model"]["lora_rank"] = 4
    (tmp_path / "both.yaml").write_text(yaml.safe_dump(config))
    assert main(["fit", "--config", str(tmp_path / "both.yaml"), "--print_config"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {tmp_path / 'both.yaml'}: model.lora_rank and model.lora.rank both given: "
                   "model.lora_rank is the old name of model.lora.rank; keep model.lora.rank only")  # fmt: skip


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("file", "error: model.lora.rnk: not an option of fit; did you mean model.lora.rank"),
        ("flag", "error: data.batchsize: not an option of fit; did you mean data.batch_size"),
        ("callback", "error: trainer.callbacks: num_utterancez is not an argument of qwen_tts_lit.callbacks.EvalSuite;"
                     " did you mean num_utterances?"),
        ("value", "error: model.finetune: expected one of 'lora', 'full', given half"),
    ],
)  # fmt: skip
def test_an_unknown_key_or_bad_value_is_one_line_with_the_closest_keys(where, expected, tmp_path: Path, capsys):
    config = yaml.safe_load(DEMO.read_text())
    extra = []
    if where == "file":
        config["model"]["lora"]["rnk"] = 4
    elif where == "flag":
        extra = ["--data.batchsize", "3"]
    elif where == "callback":
        extra = ["--trainer.callbacks.num_utterancez", "3"]
    else:
        extra = ["--model.finetune", "half"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["fit", "--config", str(tmp_path / "c.yaml"), *extra]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert lines[0].endswith("(see python -m qwen_tts_lit fit --help)") and "__main__" not in lines[0]
    assert not (tmp_path / "runs").exists()


def test_renaming_is_pure_and_leaves_other_keys():
    config = {"model": {"lora_rank": 4, "model": "tiny"}, "model.fix_talker_shift": False, "trainer": {"x": 1}}
    renamed, moved = rename_keys(config)
    assert renamed == {"model": {"model": "tiny", "lora": {"rank": 4}, "fixes": {"talker_shift": False}},
                       "trainer": {"x": 1}}  # fmt: skip
    assert moved == [("model.lora_rank", "model.lora.rank"), ("model.fix_talker_shift", "model.fixes.talker_shift")]
    assert config["model"] == {"lora_rank": 4, "model": "tiny"}  # the input is not edited
    assert closest_keys("trainer.max_epoch", ["trainer.max_epochs", "trainer.min_epochs", "model.lora"])[0] == (
        "trainer.max_epochs"
    )
