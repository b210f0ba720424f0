"""Hyperparameter search: the space, its checks, and a 2-trial search on the demo."""

import json
import sys

import pytest
import yaml

from bert_ner.config import SearchConfig, load_config, search_problems
from bert_ner.search import NO_BEST_MODEL_WARNING, SearchSpace, TrialJudge, no_best_model_warning, trial_score, trials_table
from tests.conftest import SCRATCH
from tests.test_train import WRITTEN
from train import main


def test_space_samples_within_the_configured_ranges():
    optuna = pytest.importorskip("optuna")
    space = SearchSpace(SearchConfig(learning_rate=[1e-4, 1e-3], per_device_train_batch_size=[8], num_train_epochs=[2, 2]))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        values = space(study.ask())
        assert 1e-4 <= values["learning_rate"] <= 1e-3 and values["per_device_train_batch_size"] == 8
        assert values["num_train_epochs"] == 2 and 0 <= values["warmup_steps"] <= 0.1 and 0 <= values["weight_decay"] <= 0.1


@pytest.mark.parametrize("max_steps, epochs_searched", [(-1, True), (0, True), (50, False)])
def test_epochs_are_not_searched_when_max_steps_overrides_them(max_steps, epochs_searched, caplog):
    """TrainingArguments: a positive max_steps overrides num_train_epochs, so sampling it is wasted."""
    import types

    optuna = pytest.importorskip("optuna")
    from bert_ner.search import run_search

    class Stop(Exception):
        pass

    spaces = []

    def hyperparameter_search(hp_space, **_):
        spaces.append(hp_space)
        raise Stop

    trainer = types.SimpleNamespace(args=types.SimpleNamespace(max_steps=max_steps), hyperparameter_search=hyperparameter_search)
    caplog.set_level("INFO", logger="bert_ner")
    with pytest.raises(Stop):
        run_search(trainer, SearchConfig(trials=2), seed=0)
    values = spaces[0](optuna.create_study().ask())
    assert ("num_train_epochs" in values) == epochs_searched
    assert set(values) - {"num_train_epochs"} == {"learning_rate", "per_device_train_batch_size", "warmup_steps", "weight_decay"}
    assert ("overrides num_train_epochs" in caplog.text) == (not epochs_searched)


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({}, None),
        ({"learning_rate": [1e-3, 1e-5]}, "search.learning_rate: [0.001, 1e-05] is not a range"),
        ({"learning_rate": [0, 1e-5]}, "search.learning_rate: [0, 1e-05] must stay above 0"),
        (
            {"num_train_epochs": [2.5, 4]},
            "search.num_train_epochs: [2.5, 4] is not a range; expected [low, high], two whole numbers",
        ),
        ({"weight_decay": 0.1}, "search.weight_decay: 0.1 is not a range"),
        ({"per_device_train_batch_size": []}, "search.per_device_train_batch_size: [] is not a list of batch sizes"),
        ({"objective": "loss"}, "search.objective: 'loss' is not one of f1, precision, recall, accuracy"),
    ],
)
def test_search_problems(changes, problem):
    problems = search_problems(SearchConfig(**changes))
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]


def test_search_keys_are_checked_with_the_rest_of_the_config():
    from bert_ner.errors import UserError

    with pytest.raises(UserError, match="search.trails: unknown key; did you mean 'trials'"):
        load_config(SCRATCH, ["search.trails=2"])


def test_trials_table():
    trials = [
        {"number": 0, "value": 0.5, "seconds": 3.2, "params": {"learning_rate": 1e-4, "per_device_train_batch_size": 16}},
        {"number": 1, "value": None, "seconds": 0, "params": {"learning_rate": 2e-4, "per_device_train_batch_size": 32}},
    ]
    assert trials_table(trials, "f1") == [
        "trial\tvalidation_f1\tseconds\tlearning_rate\tper_device_train_batch_size",
        "0\t0.5000\t3\t0.0001\t16",
        "1\tfailed\t0\t0.0002\t32",
    ]


SEARCH = [
    "search.trials=2",
    "search.learning_rate=[3.0e-4, 1.0e-3]",
    "search.num_train_epochs=[1, 2]",
    "data.max_train_samples=256",
    "data.max_eval_samples=32",
    "data.max_test_samples=32",
    "training.disable_tqdm=true",
]


def test_two_trial_search_reports_saves_the_best_and_trains_with_it(tmp_path, caplog):
    pytest.importorskip("optuna")
    caplog.set_level("INFO", logger="bert_ner")
    output_dir = tmp_path / "out"
    assert main(["--config", SCRATCH, *SEARCH, f"training.output_dir={output_dir}"]) == 0
    assert {p.name for p in output_dir.iterdir()} == WRITTEN | {"best_hyperparameters.yaml", "search_trials.tsv"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the trials' scratch directory is gone
    rows = (output_dir / "search_trials.tsv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("trial\tvalidation_f1\tseconds\t")
    best = yaml.safe_load((output_dir / "best_hyperparameters.yaml").read_text())["training"]
    assert set(best) == {"learning_rate", "per_device_train_batch_size", "num_train_epochs", "warmup_steps", "weight_decay"}
    assert 3e-4 <= best["learning_rate"] <= 1e-3
    resolved = load_config(output_dir / "train_config.yaml")
    assert {key: resolved.training[key] for key in best} == best  # the final model trained with the best settings
    epochs = best["num_train_epochs"]
    batches = -(-256 // best["per_device_train_batch_size"])
    assert json.loads((output_dir / "metrics.json").read_text())["training"]["steps"] == epochs * batches
    assert "trials:\ntrial\tvalidation_f1" in caplog.text
    assert "trial 1 of 2: learning_rate=" in caplog.text and "trial 2 of 2: learning_rate=" in caplog.text
    assert caplog.text.count("a new BERT with random weights") == 1  # said once, not again for each trial


EPOCHS = [  # one trial's evaluations, in order: F1 peaks at the second epoch, the loss at the first
    {"eval_loss": 0.30, "eval_f1": 0.50, "eval_precision": 0.7, "epoch": 1.0},
    {"eval_loss": 0.35, "eval_f1": 0.80, "eval_precision": 0.6, "epoch": 2.0},
    {"loss": 0.1, "epoch": 2.5},  # a training log row between evaluations
    {"eval_loss": 0.40, "eval_f1": 0.80, "eval_precision": 0.9, "epoch": 3.0},
    {"eval_loss": 0.50, "eval_f1": 0.60, "eval_precision": 0.5, "epoch": 4.0},
]


@pytest.mark.parametrize(
    "objective, best_metric, greater_is_better, expected",
    [
        ("f1", "f1", True, 0.80),  # the default: best F1, and the first of two equal epochs
        ("f1", "eval_f1", True, 0.80),  # Trainer's spelling of the same metric
        ("f1", None, True, 0.60),  # without load_best_model_at_end the final model is the last epoch
        ("f1", "loss", False, 0.50),  # the final run keeps the lowest loss: judged at that epoch
        ("f1", "precision", True, 0.80),  # kept by precision (epoch 3), judged by F1 there
        ("precision", "f1", True, 0.6),  # the objective at the epoch best by F1 (epoch 2)
    ],
)
def test_a_trial_is_judged_at_the_epoch_the_final_run_keeps(objective, best_metric, greater_is_better, expected):
    assert trial_score(EPOCHS, objective, best_metric, greater_is_better) == expected


def test_the_judge_reads_the_trials_whole_evaluation_log():
    import types

    trainer = types.SimpleNamespace(state=types.SimpleNamespace(log_history=EPOCHS))
    judge = TrialJudge(trainer, "f1", "f1", True)
    assert judge(EPOCHS[-1]) == 0.80  # Trainer passes the last evaluation; the trial's best counts
    trainer.state.log_history = []  # no log yet: the evaluation it is given
    assert judge({"eval_f1": 0.4}) == 0.4


def test_search_without_optuna_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main(["--config", SCRATCH, *SEARCH, f"training.output_dir={tmp_path / 'out'}"]) == 2
    assert "error: search.trials needs Optuna: pip install -r requirements-search.txt" in capsys.readouterr().err


def test_one_table_gives_the_fields_their_checks_and_the_sampler():
    """Each searched field: a TrainingArguments field, a search.* key with its help, checked, and sampled."""
    import dataclasses

    from transformers import TrainingArguments

    from bert_ner.config import SEARCH_SPACE, describe

    arguments = {f.name for f in dataclasses.fields(TrainingArguments)}
    keys = {f.name for f in dataclasses.fields(SearchConfig)}
    help_lines = describe()
    for name, dimension in SEARCH_SPACE.items():
        assert name in arguments and name in keys
        assert f"  search.{name}: {dimension.help}" in help_lines
        reversed_range = list(reversed(dimension.default)) if dimension.kind != "choice" else []
        assert any(problem.startswith(f"search.{name}: ") for problem in search_problems(SearchConfig(**{name: reversed_range})))


def test_config_yaml_spells_the_search_space_defaults():
    """config.yaml writes the ranges out for readers; they must be the table's."""
    import yaml

    from bert_ner.config import SEARCH_SPACE
    from tests.conftest import REPO

    written = yaml.safe_load((REPO / "config.yaml").read_text())["search"]
    assert {name: written[name] for name in SEARCH_SPACE} == {name: list(d.default) for name, d in SEARCH_SPACE.items()}


def test_a_trial_stops_early_as_the_final_run_does_and_says_nothing_of_it(tmp_path, monkeypatch, capsys):
    """The search's Trainer carries the final run's early stopping; transformers' warning that a
    trial will not load its best model (it keeps none) is filtered out."""
    pytest.importorskip("optuna")
    import logging

    from transformers import EarlyStoppingCallback

    import bert_ner.search
    from bert_ner.errors import UserError

    seen = {}

    def inspect(trainer, *_):
        seen["callbacks"] = [c for c in trainer.callback_handler.callbacks if isinstance(c, EarlyStoppingCallback)]
        raise UserError("inspected")

    monkeypatch.setattr(bert_ner.search, "run_search", inspect)
    output_dir = tmp_path / "out"
    assert main(["--config", SCRATCH, *SEARCH, "early_stopping.patience=2", f"training.output_dir={output_dir}"]) == 2
    assert "error: inspected" in capsys.readouterr().err
    assert [c.early_stopping_patience for c in seen["callbacks"]] == [2]
    warning = logging.LogRecord("transformers.trainer_callback", logging.WARNING, "", 0, NO_BEST_MODEL_WARNING + ".", (), None)
    other = logging.LogRecord("transformers.trainer_callback", logging.WARNING, "", 0, "something else", (), None)
    assert not no_best_model_warning(warning) and no_best_model_warning(other)
