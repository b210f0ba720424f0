"""The offline demo (make demo): a real pretrained encoder, all-MiniLM-L6-v2, fine-tuned by train.py
on the shipped sample and used by infer.py. A few steps here; make demo trains it fully."""

import json

import pytest

from infer import main as infer
from tests.conftest import REPO
from train import main as train

ENCODER = REPO / "models/all-MiniLM-L6-v2"
pytestmark = pytest.mark.skipif(not ENCODER.is_dir(), reason="the demo's encoder is not installed: make test links it to models/")


def test_the_demo_fine_tunes_the_pretrained_encoder_and_infer_reads_it(tmp_path, capsys):
    output = tmp_path / "bert-ner"
    args = [
        "--config",
        str(REPO / "configs/demo.yaml"),
        f"training.output_dir={output}",
        "training.max_steps=4",
        "data.max_train_samples=64",
        "data.max_eval_samples=16",
        "data.max_test_samples=16",
    ]
    assert train(args) == 0
    card = json.loads((output / "config.json").read_text())
    assert card["model_type"] == "bert" and card["num_hidden_layers"] == 6  # the encoder's own shape, not a scratch model
    capsys.readouterr()
    assert infer(["--model", str(output), "--json", "Barack Obama was born in Hawaii."]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["text"] == "Barack Obama was born in Hawaii."
