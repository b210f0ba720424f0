"""config.yaml: every shipped config loads; mistakes are named, explained and reported together."""

import pytest

from bert_ner.config import REMOVED_TRAINING_ARGS, TRAINING_DEFAULTS, DataConfig, load_config, parse_override
from bert_ner.errors import UserError
from tests.conftest import REPO, SCRATCH, config_error

SHIPPED = [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_builds_training_arguments(path):
    from train import training_arguments

    if path.name == "demo.yaml" and not (REPO / "models/all-MiniLM-L6-v2").is_dir():
        pytest.skip("the demo's encoder is not installed: make test (or make demo) links it to models/")
    cfg = load_config(path)
    args = training_arguments(cfg)
    assert args.output_dir == cfg.training["output_dir"]
    assert args.metric_for_best_model == "f1"


def test_default_config_is_bert_base_cased_on_conll2003():
    cfg = load_config(REPO / "config.yaml")
    assert cfg.model.name_or_path == "bert-base-cased"
    assert cfg.data.dataset == "lhoestq/conll2003"
    assert cfg.training["learning_rate"] == 5e-5 and cfg.training["num_train_epochs"] == 3


def test_document_context_is_on_by_default():
    # 128 sub-tokens per side had the best dev F1 of 0-256 (README, Results > Document context);
    # a config that leaves the key out gets the same as config.yaml.
    assert load_config(REPO / "config.yaml").data.context_tokens == DataConfig().context_tokens == 128


@pytest.mark.parametrize(
    "text, expected",
    [
        ("training.learning_rate=3e-5", (["training", "learning_rate"], 3e-05)),  # YAML 1.1 would say "3e-5"
        ("training.num_train_epochs=2", (["training", "num_train_epochs"], 2)),
        ("data.dataset=null", (["data", "dataset"], None)),
        ("data.label_all_tokens=true", (["data", "label_all_tokens"], True)),
        ("data.train_file=my data.txt", (["data", "train_file"], "my data.txt")),
        ("model.scratch.hidden_size=64", (["model", "scratch", "hidden_size"], 64)),
        ("training.report_to=[tensorboard]", (["training", "report_to"], ["tensorboard"])),
    ],
)
def test_parse_override(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["learning_rate=3e-5", "training.lr", "=3", "training..lr=1"])
def test_bad_override_says_the_expected_form(text):
    with pytest.raises(UserError, match="expected section.key=value"):
        parse_override(text)


def test_a_config_file_without_config_flag_gets_the_flag_suggested():
    with pytest.raises(
        UserError,
        match="'configs/demo.yaml' looks like a config file, and a config file needs --config: --config configs/demo.yaml",
    ):
        parse_override("configs/demo.yaml")


def test_overrides_apply_and_are_echoed(caplog):
    caplog.set_level("INFO", logger="bert_ner")
    cfg = load_config(SCRATCH, ["training.learning_rate=3e-5", "model.scratch.hidden_size=64"])
    assert cfg.training["learning_rate"] == 3e-5
    assert cfg.model.scratch.hidden_size == 64
    assert "override: training.learning_rate = 3e-05" in caplog.text


@pytest.mark.parametrize(
    "text, message",
    [
        ("modle:\n  name_or_path: x\n", "modle: unknown section; did you mean 'model'?"),
        ("model:\n  name_or_pth: x\n", "model.name_or_pth: unknown key; did you mean 'name_or_path'?"),
        ("data:\n  max_length: long\n", "data.max_length: 'long' is not an integer"),
        ("data:\n  label_all_tokens: 1\n", "data.label_all_tokens: 1 is not true or false"),
        ("data:\n  max_length: 0\n", "data.max_length: 0 is too small"),
        ("training:\n  learning_rate: fast\n", "training.learning_rate: 'fast' is not a number"),
        ("training:\n  num_train_epochs: -1\n", "training.num_train_epochs: -1.0 is too small"),
        (
            "training:\n  per_device_train_batch_size: 0\n",
            "training.per_device_train_batch_size: 0 is too small; expected more than 0",
        ),
        ("data:\n  context_dropout: 1.5\n", "data.context_dropout: 1.5 is too large; expected at most 1.0"),
        # a range of one key is checked with the others, not after they are fixed
        ("data:\n  context_dropout: 2\n  max_length: 1\n", "data.context_dropout: 2.0 is too large; expected at most 1.0"),
        ("training:\n  learning_rate: 0\n", "training.learning_rate: 0.0 is too small; expected more than 0"),
        ("inference:\n  min_precision: 1\n", "inference.min_precision: 1.0 is too large; expected less than 1.0"),
        ("inference:\n  min_precision: 0\n", "inference.min_precision: 0.0 is too small; expected more than 0"),
        (
            "model:\n  scratch:\n    hidden_size: 100\n    num_attention_heads: 3\n",
            "model.scratch.num_attention_heads: 3 does not divide model.scratch.hidden_size 100",
        ),
        ("training:\n  evaluation_strategy: epoch\n", "training.evaluation_strategy: renamed to eval_strategy"),
        # transformers' own checks of these name neither the key nor the nearest value
        ("training:\n  lr_scheduler_type: linar\n", "training.lr_scheduler_type: 'linar' is not one of its"),
        ("training:\n  lr_scheduler_type: linar\n", "values; did you mean 'linear'?"),
        ("training:\n  optim: adamw\n", "values; did you mean 'adamw_torch'?"),
        (
            "training:\n  save_strategy: EPOCH\n",
            "'EPOCH' is not one of its 4 values (no, steps, epoch, best); did you mean 'epoch'?",
        ),
        ("training:\n  save_strategy: 500\n", "training.save_strategy: 500 is not one of its 4 values"),
        ("training:\n  eval_strategy: epochs\n", "'epochs' is not one of its 3 values (no, steps, epoch); did you mean 'epoch'?"),
        (
            "training:\n  save_strategy: steps\n",
            "training.save_strategy: 'steps' and training.eval_strategy: 'epoch' must match while "
            "training.load_best_model_at_end is true",
        ),
        (
            "training:\n  learning_rat: 1.0e-5\n",
            "training.learning_rat: not a TrainingArguments field; did you mean 'learning_rate'?",
        ),
        ("model:\n  name_or_path: x\n   bad: indent\n", "config.yaml:3: invalid YAML"),
        ("- a list\n", "expected sections"),
        (
            "data:\n  dataset: null\n  train_file: nowhere.txt\n  validation_file: data/demo/valid.txt\n",
            "data.train_file: no such file 'nowhere.txt'",
        ),
        (
            "data:\n  dataset: null\n  train_file: data/demo\n  validation_file: data/demo/valid.txt\n",
            "data.train_file: 'data/demo' is a directory",
        ),
        (
            "data:\n  dataset: null\n  train_file: data/demo/generate.py\n  validation_file: data/demo/valid.txt\n",
            "unknown extension",
        ),
        ("data:\n  dataset: null\n  train_file: data/demo/train.txt\n", "data.validation_file: required when training"),
        (
            "data:\n  train_file: data/demo/train.txt\n  validation_file: data/demo/valid.txt\n",
            "data.dataset: set to 'lhoestq/conll2003', and local files too (data.train_file, data.validation_file)",
        ),
        ("model:\n  name_or_path: null\n", "model.name_or_path: is null"),
    ],
)
def test_config_errors_name_the_key_and_the_fix(tmp_path, text, message):
    assert message in config_error(tmp_path, text)


def test_all_problems_are_reported_at_once(tmp_path):
    message = config_error(tmp_path, "model:\n  fine_tun: true\ndata:\n  max_length: long\ntraining:\n  learning_rate: fast\n")
    assert len(message.splitlines()) == 3


def test_wrong_override_type_is_reported_like_a_file_value(tmp_path):
    assert "training.num_train_epochs: 'three' is not a number" in config_error(
        tmp_path, "{}", ["training.num_train_epochs=three"]
    )


def test_problems_name_where_the_value_came_from(tmp_path):
    message = config_error(tmp_path, "data:\n  max_length: long\n", ["training.per_device_train_batch_size=0"])
    assert set(message.splitlines()) == {
        "command line: training.per_device_train_batch_size: 0 is too small; expected more than 0",
        f"{tmp_path / 'config.yaml'}: data.max_length: 'long' is not an integer",
    }


@pytest.mark.parametrize(
    "text, overrides, source",
    [
        ("training:\n  eval_strategy: steps\n", [], "file"),
        ("{}", ["training.eval_strategy=steps"], "command line"),  # the file keeps the default save_strategy
        ("training:\n  eval_strategy: steps\n", ["training.save_strategy=epoch"], "command line"),
        ("early_stopping:\n  patience: 2\n", ["training.load_best_model_at_end=false"], "command line"),
        ("early_stopping:\n  patience: 2\ntraining:\n  load_best_model_at_end: false\n", [], "file"),
        ("{}", ["data.train_file=data/demo/train.txt", "data.validation_file=data/demo/valid.txt"], "command line"),
    ],
)
def test_a_problem_across_keys_is_the_command_line_s_when_it_set_one_of_them(tmp_path, text, overrides, source):
    (line,) = config_error(tmp_path, text, overrides).splitlines()
    assert line.startswith("command line: " if source == "command line" else f"{tmp_path / 'config.yaml'}: ")


def test_removed_training_args_point_at_existing_fields():
    """Every hint for a removed TrainingArguments field names a field transformers still has."""
    import dataclasses
    import re

    from transformers import TrainingArguments

    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    assert not set(REMOVED_TRAINING_ARGS) & fields
    assert set(TRAINING_DEFAULTS) <= fields
    for hint in REMOVED_TRAINING_ARGS.values():
        for name in re.findall(r"\b([a-z]+_[a-z_]+)\b", re.sub(r'"[^"]*"', "", hint)):  # field names, not values
            assert name in fields, hint


def test_training_arguments_own_checks_become_user_errors(tmp_path):
    from train import training_arguments

    path = tmp_path / "c.yaml"
    # checked by transformers only: saving steps that are no multiple of the evaluation steps
    path.write_text("training:\n  eval_strategy: steps\n  save_strategy: steps\n  eval_steps: 2\n  save_steps: 3\n")
    with pytest.raises(UserError, match="^training: .*round multiple of the evaluation steps"):
        training_arguments(load_config(path))


def test_the_manual_lists_every_config_key_as_help_prints_it():
    from bert_ner.config import describe

    manual = (REPO / "docs/training.md").read_text()
    missing = [line for line in describe() if line not in manual]
    assert not missing, "docs/training.md's config reference is out of date; paste `python train.py --help` again"


@pytest.mark.parametrize(
    "training, cuda, bf16_supported, expected",
    [
        ({}, False, False, {}),  # CPU: full precision
        ({}, True, True, {"bf16": True}),
        ({}, True, False, {"fp16": True}),  # an older GPU
        ({"bf16": False}, True, True, {}),  # the config decides
        ({"fp16": True}, True, True, {}),
    ],
)
def test_precision_defaults(training, cuda, bf16_supported, expected):
    from bert_ner.hardware import precision_defaults

    assert precision_defaults(training, cuda, bf16_supported) == expected


@pytest.mark.parametrize(
    "training, cuda, world_size, expected",
    [
        ({}, False, 2, {"use_cpu": True}),  # torchrun on CPU: join the processes over gloo
        ({}, False, 1, {}),
        ({}, True, 2, {}),  # GPUs: one per process, as launched
        ({"use_cpu": False}, False, 2, {}),  # the config decides
    ],
)
def test_cpu_processes_defaults(training, cuda, world_size, expected):
    from bert_ner.hardware import cpu_processes_defaults

    assert cpu_processes_defaults(training, cuda, world_size) == expected


def test_the_shipped_configs_save_where_infer_py_looks():
    """config.yaml and the demo spell out output_dir for readers; it must be the one default."""
    from bert_ner.config import load_config
    from bert_ner.outputs import DEFAULT_OUTPUT_DIR

    for path in (REPO / "config.yaml", REPO / "configs/demo.yaml"):
        assert str(load_config(path).output_dir) == DEFAULT_OUTPUT_DIR, path


def test_a_config_directory_names_the_files_in_it(tmp_path):
    (tmp_path / "a.yaml").write_text("{}")
    (tmp_path / "b.yaml").write_text("{}")
    with pytest.raises(UserError, match=r"^--config '.*' is a directory; pass one file in it \(a.yaml, b.yaml\)$"):
        load_config(tmp_path)


def test_an_evaluate_only_run_may_name_any_strategies(tmp_path):
    """train.py sets eval and save strategies itself when it only scores (EVALUATE_ONLY_TRAINING)."""
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name_or_path: some/model\n  fine_tune: false\ntraining:\n  eval_strategy: steps\n")
    assert load_config(path).training["eval_strategy"] == "steps"
