"""Two CPU processes (torchrun, accelerate launch) train as one: the same model as a single process
with their combined batch, and only rank 0 writes and talks."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SCRATCH
from tests.test_train import WRITTEN

# Dropout off: each process draws its own dropout masks, so with dropout the runs differ by chance.
# Random batches from 992 sentences (a multiple of 32): two shards of 16 are exactly one batch of 32.
SAME_RECIPE = [
    "--config",
    SCRATCH,
    "training.num_train_epochs=5",
    "training.disable_tqdm=true",
    "training.train_sampling_strategy=random",
    "data.max_train_samples=992",
    "model.scratch.hidden_dropout_prob=0",
    "model.scratch.attention_probs_dropout_prob=0",
]
BIN = Path(sys.executable).parent
LAUNCHERS = {
    "single": [sys.executable],
    "torchrun": [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2"],
    # --multi_gpu is accelerate's name for one process per device, CPUs included
    "accelerate": [
        str(BIN / "accelerate"),
        "launch",
        "--multi_gpu",
        "--num_processes=2",
        "--num_machines=1",
        "--mixed_precision=no",
        "--dynamo_backend=no",
    ],
}


def free_port() -> int:
    """A port nothing listens on, so that a busy default (29500) cannot fail the run."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if shutil.which("torchrun", path=str(BIN)) is None:
        pytest.fail("torchrun is missing from the environment that runs the tests")
    root = tmp_path_factory.mktemp("distributed")
    results = {}
    for name, launcher in LAUNCHERS.items():
        batch = 32 if name == "single" else 16
        if name == "accelerate":
            launcher = [*launcher, f"--main_process_port={free_port()}"]
        output_dir = root / name
        command = [
            *launcher,
            "train.py",
            *SAME_RECIPE,
            f"training.per_device_train_batch_size={batch}",
            f"training.output_dir={output_dir}",
        ]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{name}: {done.stderr[-3000:]}"
        results[name] = (output_dir, done.stdout + done.stderr)
    return results


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_processes_learn_what_one_process_learns(runs, launcher):
    single = json.loads((runs["single"][0] / "metrics.json").read_text())
    multi = json.loads((runs[launcher][0] / "metrics.json").read_text())
    assert single["test"]["f1"] > 0.3  # it learned something, so agreement means something
    assert multi["training"]["steps"] == single["training"]["steps"] == 5 * 992 // 32
    for split in ("validation", "test"):
        for key in ("precision", "recall", "f1", "accuracy"):
            assert multi[split][key] == pytest.approx(single[split][key], abs=1e-3), (split, key)


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_only_rank_zero_writes_and_reports(runs, launcher):
    output_dir, output = runs[launcher]
    assert output.count("== data ==") == 1
    assert output.count(f"saved to {output_dir}/") == 1
    assert {p.name for p in output_dir.iterdir()} == WRITTEN
    assert sorted(p.name for p in output_dir.parent.iterdir()) == sorted(LAUNCHERS)  # nothing half-written beside


def test_loss_divides_by_the_labelled_sub_tokens_of_the_whole_step():
    import torch

    from bert_ner.trainer import token_cross_entropy

    logits = torch.randn(2, 3, 4)
    labels = torch.tensor([[1, -100, 2], [0, 3, -100]])
    mean = torch.nn.functional.cross_entropy(logits.view(-1, 4), labels.view(-1), ignore_index=-100)
    assert token_cross_entropy({"logits": logits}, labels) == pytest.approx(mean.item())
    # a step of 8 labelled sub-tokens across processes, 4 of them here: half this process's mean
    assert token_cross_entropy({"logits": logits}, labels, num_items_in_batch=8) == pytest.approx(mean.item() / 2)


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.5])
def test_label_smoothing_factor_changes_the_loss_as_its_formula_says(epsilon):
    """training.label_smoothing_factor reaches our loss: (1 - e) * NLL + e * mean over labels of -log p,
    over labelled sub-tokens only (transformers' LabelSmoother)."""
    import torch

    from bert_ner.trainer import token_cross_entropy

    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5)
    labels = torch.tensor([[-100, 1, 3, -100], [0, 4, -100, -100]])
    log_p = torch.log_softmax(logits, dim=-1)
    labelled = labels != -100
    nll = -log_p[labelled].gather(-1, labels[labelled].unsqueeze(-1)).squeeze(-1)
    smooth = -log_p[labelled].mean(dim=-1)
    expected = ((1 - epsilon) * nll + epsilon * smooth).mean()
    assert token_cross_entropy({"logits": logits}, labels, label_smoothing=epsilon) == pytest.approx(expected.item(), rel=1e-5)


def test_train_py_hands_label_smoothing_factor_to_its_loss(tmp_path):
    from transformers import BertConfig, BertForTokenClassification, TrainingArguments

    from bert_ner.trainer import make_trainer
    from tests.conftest import wordpiece

    tokenizer = wordpiece(["Anna"])
    model = BertForTokenClassification(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=1,
            intermediate_size=8,
            num_labels=3,
        )
    )
    args = TrainingArguments(output_dir=str(tmp_path), label_smoothing_factor=0.2, report_to="none", use_cpu=True)
    trainer = make_trainer(model, tokenizer, args, {}, ["O", "B-PER", "I-PER"], use_viterbi=True)
    assert trainer.compute_loss_func.keywords == {"label_smoothing": 0.2}
