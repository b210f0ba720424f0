"""Loading is safe by default: safetensors only, no model code from a repository, safe YAML."""

import json
import shutil

import pytest

from bert_ner.config import ModelConfig, load_config
from bert_ner.errors import UserError
from bert_ner.modeling import Trust, pickle_only
from infer import main as infer
from tests.conftest import SCRATCH
from train import main as train


@pytest.mark.parametrize(
    "files, expected",
    [
        (["config.json", "model.safetensors"], None),
        (["config.json", "pytorch_model.bin"], "pytorch_model.bin"),
        (["model.safetensors", "pytorch_model.bin"], None),  # safetensors are there: those are loaded
        (["model-00001-of-00002.safetensors", "model.safetensors.index.json", "pytorch_model.bin"], None),
        (["config.json", "tokenizer.json"], None),  # no weights at all: the loader says so
        (["training_args.bin", "model.ckpt"], "model.ckpt"),
    ],
)
def test_pickle_only(files, expected):
    assert pickle_only(files) == expected


def test_defaults_load_safetensors_only_and_no_remote_code():
    assert Trust.of(ModelConfig()).model_kwargs() == {"use_safetensors": True, "trust_remote_code": False}


@pytest.fixture(scope="module")
def pickled(demo_run, tmp_path_factory):
    """The demo model with its weights stored as a pickle (pytorch_model.bin) instead of safetensors."""
    import torch
    from safetensors.torch import load_file

    model_dir = tmp_path_factory.mktemp("pickled") / "model"
    shutil.copytree(demo_run, model_dir, ignore=shutil.ignore_patterns("checkpoint-*", "model.safetensors"))
    torch.save(load_file(demo_run / "model.safetensors"), model_dir / "pytorch_model.bin")
    return model_dir


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def test_infer_refuses_pickle_weights_unless_allowed(pickled, capsys):
    assert infer(["--model", str(pickled), "Anna Schmidt visited Oslo ."]) == 2
    (error,) = error_lines(capsys)
    assert error == (
        f"error: --model: '{pickled}' has only pickle weights (pytorch_model.bin), which can run code when loaded; "
        "convert them to safetensors, or pass --allow-pickle if you trust their source"
    )
    assert infer(["--model", str(pickled), "--allow-pickle", "--json", "Anna Schmidt visited Oslo ."]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "Anna Schmidt visited Oslo ."


def test_train_refuses_pickle_weights_unless_allowed(pickled, tmp_path, capsys):
    args = ["--config", SCRATCH, "model.scratch=null", f"model.name_or_path={pickled}", "model.fine_tune=false"]
    assert train([*args, f"training.output_dir={tmp_path / 'a'}"]) == 2
    (error,) = error_lines(capsys)
    assert "has only pickle weights (pytorch_model.bin)" in error and "model.allow_pickle=true" in error
    assert train([*args, "model.allow_pickle=true", f"training.output_dir={tmp_path / 'b'}"]) == 0
    assert (tmp_path / "b" / "metrics.json").is_file()


def test_repository_code_never_runs_unless_trusted(demo_run, tmp_path, capsys):
    """A model directory that ships its own Python (auto_map) loads with transformers' own classes;
    its code runs only with --trust-remote-code."""
    model_dir = tmp_path / "remote"
    shutil.copytree(demo_run, model_dir, ignore=shutil.ignore_patterns("checkpoint-*"))
    ran = tmp_path / "code-ran"
    (model_dir / "configuration_evil.py").write_text(
        f"open({str(ran)!r}, 'w').write('yes')\n"
        "from transformers import BertConfig\n\nclass EvilConfig(BertConfig):\n    model_type = 'evil'\n"
    )
    config = json.loads((model_dir / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig"}
    (model_dir / "config.json").write_text(json.dumps(config))
    assert infer(["--model", str(model_dir), "--json", "Anna Schmidt visited Oslo ."]) == 0
    assert not ran.exists()
    assert json.loads(capsys.readouterr().out)["text"] == "Anna Schmidt visited Oslo ."
    infer(["--model", str(model_dir), "--trust-remote-code", "Anna Schmidt visited Oslo ."])
    assert ran.exists()  # the opt-in really is what stands between a repository's code and this machine


def test_config_yaml_cannot_run_code(tmp_path):
    ran = tmp_path / "code-ran"
    path = tmp_path / "config.yaml"
    path.write_text(f"model: !!python/object/apply:os.system ['touch {ran}']\n")
    with pytest.raises(UserError, match="invalid YAML"):
        load_config(path)
    assert not ran.exists()
