"""Every `training:` field does what the transformers docs say, or is refused in one line with the
reason (bert_ner.training_options; README > Training options)."""

import dataclasses
import json

import pytest

from bert_ner.config import load_config
from bert_ner.errors import UserError
from bert_ner.hardware import precision_problems
from bert_ner.outputs import read_log
from bert_ner.scoring import OVERALL_SCORES, flatten, metric_names, score
from bert_ner.training_options import REFUSED_TRAINING_ARGS, best_model_problems, planned_steps, short_run_warning
from tests.conftest import QUICK, SCRATCH
from train import main


def config_problem(overrides: list[str]) -> str:
    with pytest.raises(UserError) as error:
        load_config(SCRATCH, overrides)
    return str(error.value)


@pytest.mark.parametrize(
    "override, message",
    [
        ("training.push_to_hub=true", "training.push_to_hub: True is not supported: train.py writes the finished model"),
        ("training.prediction_loss_only=true", "needs the predictions"),
        ("training.batch_eval_metrics=true", "computed over a whole split at once"),
        ("training.eval_do_concat_batches=false", "pairs the predictions with the sentences across batches"),
        (
            "training.label_names=[tags]",
            "training.label_names: ['tags'] is not supported: the loss and the scores read the labels column",
        ),
        ("training.enable_jit_checkpoint=true", "scored and saved as if it had finished"),
        ("training.resume_from_checkpoint=bert-ner/checkpoint-3", "resumes by itself from the newest complete checkpoint"),
        ("training.do_train=true", "Trainer does not read it"),
        ("training.do_train=false", "train.py trains when model.fine_tune is true"),
        ("training.resume_from_checkpoint=true", "training.resume_from_checkpoint: True is not supported"),
        (
            "training.train_sampling_strategy=shuffled",
            "training.train_sampling_strategy: 'shuffled' is not one of random, sequential",
        ),
        ("training.report_to=tensorboardd", "training.report_to: tensorboardd unknown; expected none, all or some of"),
        ("training.report_to=[tensorboard]", "training.report_to: tensorboard is not installed (pip install tensorboard)"),
        ("training.deepspeed=ds.json", "training.deepspeed: needs the deepspeed package, which is not installed"),
        ("training.use_liger_kernel=true", "needs the liger-kernel package"),
        ("data.context_dropout=0.5", None),  # allowed alone ...
        ("training.dataloader_persistent_workers=true", None),  # ... and this alone
    ],
)
def test_fields_train_py_cannot_honour_are_refused_with_the_reason(override, message):
    if message is None:
        load_config(SCRATCH, [override])
    else:
        assert message in config_problem([override])


PERSISTENT = ["data.context_dropout=0.5", "training.dataloader_persistent_workers=true", "training.dataloader_num_workers=1"]


def test_persistent_workers_would_freeze_the_context_dropout_draw():
    message = config_problem([*PERSISTENT, "data.context_tokens=16"])
    assert "keep the first epoch's draw of data.context_dropout" in message


def test_persistent_workers_are_fine_without_context():
    load_config(SCRATCH, [*PERSISTENT, "data.context_tokens=0"])  # nothing to drop, nothing to freeze


def test_only_fields_trainer_never_reads_are_refused_at_their_defaults():
    """Setting a field to its default changes nothing, so it is refused only where any value
    would mislead (do_train: false does not mean evaluate only)."""
    from transformers import TrainingArguments

    from bert_ner.training_options import NOT_READ_BY_TRAINER

    defaults = {f.name: f.default for f in dataclasses.fields(TrainingArguments) if f.init}
    for name, refusal in REFUSED_TRAINING_ARGS.items():
        assert refusal.refused(defaults[name]) == (refusal.reason == NOT_READ_BY_TRAINER), name


@pytest.mark.parametrize(
    "training, problem",
    [
        ({"metric_for_best_model": "f1"}, None),
        ({"metric_for_best_model": "eval_f1"}, None),
        ({"metric_for_best_model": "loss"}, None),
        ({"metric_for_best_model": "loss", "greater_is_better": False}, None),
        ({"metric_for_best_model": "PER_f1"}, None),
        ({"metric_for_best_model": "span_f1"}, None),
        (
            {"metric_for_best_model": "overall_f1"},
            "'overall_f1' is not reported by an evaluation; expected loss or one of precision",
        ),
        ({"metric_for_best_model": "GPE_f1"}, "'GPE_f1' is not reported"),
        ({"metric_for_best_model": "f1", "greater_is_better": False}, "false would keep the epoch with the lowest f1"),
        ({"metric_for_best_model": "loss", "greater_is_better": True}, "true would keep the epoch with the highest loss"),
        ({"metric_for_best_model": "f1", "greater_is_better": True}, None),
    ],
)
def test_metric_for_best_model_must_be_reported(training, problem):
    problems = best_model_problems(training, metric_names(["LOC", "PER"]))
    assert problems == [] if problem is None else problem in problems[0]


def test_metric_names_are_what_an_evaluation_reports():
    gold = [["B-PER", "O", "B-LOC"]]
    assert set(flatten(score(gold, gold))) == set(metric_names(["LOC", "PER"]))
    assert set(OVERALL_SCORES) < set(metric_names([]) + ["x"])


def test_an_unreported_metric_fails_before_training(tmp_path, capsys):
    code = main(["--config", SCRATCH, *QUICK, "training.metric_for_best_model=bleu", f"training.output_dir={tmp_path / 'out'}"])
    assert code == 2 and "training.metric_for_best_model: 'bleu' is not reported" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_trainers_own_argument_checks_are_one_line(tmp_path, capsys):
    """fsdp needs several processes; Trainer says so only once it is built, as a ValueError."""
    assert main(["--config", SCRATCH, *QUICK, "training.fsdp=full_shard", f"training.output_dir={tmp_path / 'out'}"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: training: ") and "distributed" in errors[0]


def test_remove_unused_columns_false_trains_the_same(tmp_path):
    """train.py hands Trainer only the model's inputs, so the field changes nothing, as the docs say
    for a dataset without unused columns."""
    runs = {}
    for value in ("true", "false"):
        output_dir = tmp_path / value
        assert (
            main(["--config", SCRATCH, *QUICK, f"training.remove_unused_columns={value}", f"training.output_dir={output_dir}"])
            == 0
        )
        runs[value] = json.loads((output_dir / "metrics.json").read_text())
    assert runs["true"]["test"] == runs["false"]["test"]


def test_metric_for_best_model_loss_keeps_the_lowest_validation_loss(tmp_path):
    output_dir = tmp_path / "loss"
    args = [
        "--config",
        SCRATCH,
        "data.max_train_samples=256",
        "data.max_eval_samples=32",
        "data.max_test_samples=16",
        "training.num_train_epochs=3",
        "training.metric_for_best_model=loss",
        f"training.output_dir={output_dir}",
    ]
    assert main(args) == 0
    evaluations = [row for row in read_log(output_dir) if row["eval_loss"] is not None]
    best = min(evaluations, key=lambda row: row["eval_loss"])
    assert len(evaluations) == 3
    assert json.loads((output_dir / "metrics.json").read_text())["validation"]["f1"] == pytest.approx(best["eval_f1"])


@pytest.mark.parametrize(
    "training, cuda, refused",
    [
        ({"fp16": True}, False, True),
        ({"fp16": True}, True, False),
        ({"bf16": True, "use_cpu": True}, False, False),
        ({}, False, False),
    ],
)
def test_fp16_without_a_gpu_is_refused_since_it_would_do_nothing(training, cuda, refused):
    assert bool(precision_problems(training, cuda)) == refused


def test_each_refusal_is_the_only_problem_its_field_gets():
    message = config_problem(["training.resume_from_checkpoint=true"])
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize("key", ["eval_strategy", "save_strategy", "logging_strategy"])
def test_an_unquoted_no_is_the_word_no(key):
    """YAML 1.1 reads `eval_strategy: no` as false; the user wrote the strategy "no"."""
    other = {
        "eval_strategy": ["training.load_best_model_at_end=false"],
        "save_strategy": ["training.load_best_model_at_end=false"],
    }
    assert load_config(SCRATCH, [f"training.{key}=no", *other.get(key, [])]).training[key] == "no"


def test_transformers_argument_errors_are_one_line(tmp_path, capsys):
    """A check only transformers makes (saving steps a multiple of evaluation steps) is one line.
    A strategy mismatch, whose message from transformers spans three lines, is bert-ner's own check."""
    steps = ["training.eval_strategy=steps", "training.save_strategy=steps", "training.eval_steps=2", "training.save_steps=3"]
    assert main(["--config", SCRATCH, *QUICK, *steps, f"training.output_dir={tmp_path / 'out'}"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert (
        len(errors) == 1 and errors[0].startswith("error: training: ") and "round multiple of the evaluation steps" in errors[0]
    )
    assert main(["--config", SCRATCH, *QUICK, "training.eval_strategy=steps", f"training.output_dir={tmp_path / 'out'}"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "training.save_strategy: 'epoch' and training.eval_strategy: 'steps' must match" in errors[0]


@pytest.mark.parametrize(
    "sentences, batch, accumulation, processes, epochs, max_steps, steps",
    [
        (30, 32, 1, 1, 3, -1, 3),  # the small dataset with the default recipe
        (30, 8, 1, 1, 20, -1, 80),
        (1017, 16, 1, 1, 3, -1, 192),  # the demo
        (100, 8, 4, 1, 1, -1, 4),  # 13 batches, 4 per update: the last update is partial
        (100, 8, 1, 2, 1.5, -1, 11),  # two processes halve the batches; a fractional epoch rounds up
        (30, 32, 1, 1, 3, 500, 500),  # max_steps overrides the epochs
    ],
)
def test_planned_steps(sentences, batch, accumulation, processes, epochs, max_steps, steps):
    assert planned_steps(sentences, batch, accumulation, processes, epochs, max_steps) == steps


@pytest.mark.parametrize(
    "sentences, batch, epochs, max_steps, expected",
    [
        (
            30,
            32,
            3,
            -1,
            "this run takes only 3 optimizer steps (30 training sentences), fewer than the 100 a model needs to learn "
            "NER; expect a low F1. Train longer, e.g. training.num_train_epochs=25 training.per_device_train_batch_size=8, "
            "or add sentences (docs/training.md: Small datasets)",
        ),
        (30, 4, 3, -1, "Train longer, e.g. training.num_train_epochs=13, or add sentences"),
        (30, 32, 3, 50, "only 50 optimizer steps (30 training sentences)"),
        (30, 32, 3, 50, "Raise training.max_steps to 100 or more"),
        (1017, 16, 3, -1, None),
        (30, 8, 25, -1, None),
    ],
)
def test_a_run_too_short_to_learn_is_said_before_training(sentences, batch, epochs, max_steps, expected):
    warning = short_run_warning(sentences, batch, 1, 1, epochs, max_steps)
    if expected is None or expected.startswith("this run"):
        assert warning == expected
    else:
        assert expected in warning
