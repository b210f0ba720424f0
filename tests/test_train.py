"""train.py end to end on the shipped offline demo: the files it writes and the scores in them."""

import json
import shutil
import time

import pytest

from bert_ner.config import load_config
from bert_ner.data import TAGS, TOKENS, read_conll
from bert_ner.outputs import OWN_FILES, read_log, read_own_files
from tests.conftest import QUICK, REPO, SCRATCH
from train import main

WRITTEN = {
    "config.json",
    "bert_ner.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "training_args.bin",
    "train_config.yaml",
    "metrics.json",
    "classification_report.txt",
    "test_predictions.txt",
    "training_log.tsv",
    "learning_curves.png",
    "per_type_scores.png",
    "confusion_matrix.png",
    "reliability.png",
    "errors.md",
    "errors.jsonl",
    "README.md",
    OWN_FILES,
}
# An untrained model tags next to nothing correctly (F1 about 0.0); the demo reaches about 0.7.
LEARNED_F1 = 0.5


def test_demo_writes_every_output(demo_run):
    files = {p.name for p in demo_run.iterdir() if p.is_file()}
    assert files == WRITTEN
    assert read_own_files(demo_run) == WRITTEN  # what a rerun may replace, and nothing else
    assert not [p for p in demo_run.iterdir() if p.is_dir()]  # checkpoints are for resuming; a finished run drops them


def test_demo_learns(demo_run):
    metrics = json.loads((demo_run / "metrics.json").read_text())
    assert metrics["training"]["steps"] == 640 and metrics["training"]["runtime_s"] > 0  # 10 epochs of 64 batches
    for split in ("validation", "test"):
        assert metrics[split]["f1"] > LEARNED_F1, split
        assert set(metrics[split]["per_type"]) == {"PER", "ORG", "LOC", "MISC"}
        assert set(metrics[split]) == {
            "precision",
            "recall",
            "f1",
            "accuracy",
            "span_precision",
            "span_recall",
            "span_f1",
            "per_type",
        }


def test_saved_config_names_the_labels_and_the_resolved_config_reloads(demo_run):
    model_config = json.loads((demo_run / "config.json").read_text())
    assert sorted(model_config["id2label"].values()) == sorted(
        ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    )
    resolved = load_config(demo_run / "train_config.yaml")
    assert resolved.training["output_dir"] == str(demo_run)
    assert resolved.model.scratch.hidden_size == 128


def test_test_predictions_are_conll_with_the_gold_tags(demo_run):
    gold = read_conll(REPO / "data/demo/test.txt")
    lines = (demo_run / "test_predictions.txt").read_text().split("\n\n")
    sentences = [block.splitlines() for block in lines if block.strip()]
    assert len(sentences) == len(gold[TOKENS])
    first = [line.split(" ") for line in sentences[0]]
    assert [w for w, _, _ in first] == gold[TOKENS][0]
    assert [g for _, g, _ in first] == gold[TAGS][0]


def test_training_log_has_loss_and_validation_f1_per_epoch(demo_run):
    rows = [line.split("\t") for line in (demo_run / "training_log.tsv").read_text().splitlines()]
    header, body = rows[0], rows[1:]
    assert header[:3] == ["step", "epoch", "loss"]
    f1 = [row[header.index("eval_f1")] for row in body if row[header.index("eval_f1")]]
    epochs = load_config(SCRATCH).training["num_train_epochs"]
    assert len(f1) == epochs
    assert any(row[header.index("loss")] for row in body)


def evaluate_only(model_dir, output_dir) -> dict:
    code = main(
        [
            "--config",
            SCRATCH,
            "model.scratch=null",
            f"model.name_or_path={model_dir}",
            "model.fine_tune=false",
            f"training.output_dir={output_dir}",
        ]
    )
    assert code == 0
    return json.loads((output_dir / "metrics.json").read_text())


def test_evaluate_only_reproduces_the_saved_scores(demo_run, tmp_path):
    trained = json.loads((demo_run / "metrics.json").read_text())
    scored = evaluate_only(demo_run, tmp_path / "eval")
    assert scored["test"]["f1"] == pytest.approx(trained["test"]["f1"])
    assert not (tmp_path / "eval" / "model.safetensors").exists()


def test_evaluate_only_maps_labels_by_name_not_position(demo_run, tmp_path):
    """A checkpoint whose label ids are in another order (as Hub NER models often are) scores the same."""
    from safetensors.torch import load_file, save_file

    model_dir = tmp_path / "permuted"
    shutil.copytree(demo_run, model_dir, ignore=shutil.ignore_patterns("checkpoint-*"))
    config = json.loads((model_dir / "config.json").read_text())
    order = list(reversed(range(len(config["id2label"]))))  # new id i is old id order[i]
    config["id2label"] = {str(i): config["id2label"][str(old)] for i, old in enumerate(order)}
    config["label2id"] = {label: int(i) for i, label in config["id2label"].items()}
    (model_dir / "config.json").write_text(json.dumps(config))
    weights = load_file(model_dir / "model.safetensors")
    for name in ("classifier.weight", "classifier.bias"):
        weights[name] = weights[name][order].contiguous()
    save_file(weights, model_dir / "model.safetensors", metadata={"format": "pt"})

    trained = json.loads((demo_run / "metrics.json").read_text())
    scored = evaluate_only(model_dir, tmp_path / "eval")
    assert scored["test"]["f1"] == pytest.approx(trained["test"]["f1"])


def test_unreachable_hub_fails_in_seconds_and_points_to_the_demo(monkeypatch, tmp_path, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.monotonic()
    assert main([f"training.output_dir={tmp_path}"]) == 2
    assert time.monotonic() - start < 15
    error = capsys.readouterr().err
    assert "data.dataset: 'lhoestq/conll2003' is no local directory, and the Hugging Face Hub, where it would be" in error
    assert "HF_HUB_OFFLINE=1" in error and "make demo" in error
    assert "set data.dataset=null and data.train_file, data.validation_file, data.test_file to local files" in error


def test_a_directory_datasets_cannot_read_as_data_dataset_says_how_to_name_the_files(tmp_path, capsys):
    conll = tmp_path / "conll"
    conll.mkdir()
    shutil.copy("data/demo/train.txt", conll / "train.conll")  # a suffix bert-ner reads, datasets does not
    no_files = ["data.train_file=null", "data.validation_file=null", "data.test_file=null"]
    assert main(["--config", SCRATCH, f"data.dataset={conll}", *no_files, f"training.output_dir={tmp_path / 'out'}"]) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: data.dataset: could not load '{conll}': ")
    assert error.endswith(
        "; for CoNLL or JSON lines files, set data.dataset=null and data.train_file, data.validation_file, "
        "data.test_file to local files"
    )


def test_a_directory_of_conll_files_as_data_dataset_says_how_to_name_the_files(tmp_path, capsys):
    """datasets reads a directory of .txt files as lines of text: the error says data.dataset=null
    and the *_file keys, not which columns are missing."""
    conll = tmp_path / "conll"
    conll.mkdir()
    for split in ("train", "valid", "test"):
        shutil.copy(f"data/demo/{split}.txt", conll / f"{split}.txt")
    no_files = ["data.train_file=null", "data.validation_file=null", "data.test_file=null"]
    assert main(["--config", SCRATCH, f"data.dataset={conll}", *no_files, f"training.output_dir={tmp_path / 'out'}"]) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert error == (
        f"error: data.dataset: '{conll}' holds plain text files, which datasets reads as lines, not words and tags; "
        "for CoNLL files (a 'word tag' line per word), set data.dataset=null and data.train_file, data.validation_file, "
        "data.test_file to local files"
    )


def test_offline_without_the_dataset_in_the_cache_says_what_to_do(monkeypatch, tmp_path, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main([f"training.output_dir={tmp_path / 'out'}"]) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert "'lhoestq/conll2003' is not in your Hugging Face cache, and HF_HUB_OFFLINE=1 forbids downloading it" in error
    assert "run once with network and without HF_HUB_OFFLINE" in error
    assert "or set data.dataset=null and data.train_file, data.validation_file, data.test_file to local files" in error
    assert not (tmp_path / "out").exists()  # a failed run leaves no empty output directory


@pytest.mark.parametrize(
    "files, message",
    [
        ([], "'{dir}' has no config.json, so it holds no model; point model.name_or_path at a directory train.py wrote"),
        (["config.json"], "could not load '{dir}': "),  # no weights: transformers' reason, then the same next step
    ],
)
def test_a_directory_that_is_no_whole_model_says_what_one_holds(tmp_path, capsys, files, message):
    model = tmp_path / "model"
    model.mkdir()
    for name in files:
        (model / name).write_text(json.dumps({"model_type": "bert", "hidden_size": 32}))
    assert (
        main(["--config", SCRATCH, "model.scratch=null", f"model.name_or_path={model}", f"training.output_dir={tmp_path / 'o'}"])
        == 2
    )
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert message.format(dir=model) in error
    assert error.endswith("point model.name_or_path at a directory train.py wrote, or one a Hugging Face model was saved to")


def test_missing_local_model_directory_is_a_one_line_error(tmp_path, capsys):
    assert (
        main(["--config", SCRATCH, "model.scratch=null", "model.name_or_path=./no-such-model", f"training.output_dir={tmp_path}"])
        == 2
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].endswith(
        "command line: model.name_or_path: no model directory './no-such-model'; "
        "check the path, or give a Hub id such as bert-base-cased"
    )


def test_user_error_exits_2_without_traceback_and_debug_shows_it(tmp_path, capsys):
    assert main(["--config", SCRATCH, "training.learning_rate=fast"]) == 2
    error = capsys.readouterr().err
    assert "training.learning_rate: 'fast' is not a number" in error and "Traceback" not in error
    from bert_ner.errors import UserError

    with pytest.raises(UserError):
        main(["--debug", "--config", SCRATCH, "training.learning_rate=fast"])


def test_help_lists_the_config_keys(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "data.label_all_tokens:" in text and "model.scratch.vocab:" in text and "training.*:" in text


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory):
    """A random RoBERTa with a byte-level BPE vocabulary: an encoder that is not BERT, built offline."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    directory = tmp_path_factory.mktemp("roberta")
    sentences = [" ".join(words) for words in read_conll(REPO / "data/demo/train.txt")[TOKENS]]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(sentences, vocab_size=600, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(directory))
    tokenizer = RobertaTokenizerFast(
        vocab=str(directory / "vocab.json"), merges=str(directory / "merges.txt"), model_max_length=128
    )
    tokenizer.save_pretrained(directory)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=tokenizer.pad_token_id,
    )
    RobertaModel(config).save_pretrained(directory)
    return directory


def test_other_encoders_need_only_name_or_path(tiny_roberta, tmp_path):
    """A BPE encoder trains by changing model.name_or_path alone; its tokenizer gets
    add_prefix_space, without which pre-split words are cut differently than in running text."""
    output_dir = tmp_path / "out"
    code = main(
        [
            "--config",
            SCRATCH,
            "model.scratch=null",
            f"model.name_or_path={tiny_roberta}",
            *QUICK,
            f"training.output_dir={output_dir}",
        ]
    )
    assert code == 0
    assert json.loads((output_dir / "config.json").read_text())["model_type"] == "roberta"
    assert json.loads((output_dir / "tokenizer_config.json").read_text())["add_prefix_space"] is True
    assert set(json.loads((output_dir / "metrics.json").read_text())) == {"validation", "test", "training", "calibration"}


def test_document_context_run_scores_every_word(tmp_path):
    output_dir = tmp_path / "context"
    assert main(["--config", SCRATCH, "data.context_tokens=16", *QUICK, f"training.output_dir={output_dir}"]) == 0
    resolved = load_config(output_dir / "train_config.yaml")
    assert resolved.data.context_tokens == 16
    predictions = [line for line in (output_dir / "test_predictions.txt").read_text().splitlines() if line]
    test_words = sum(len(words) for words in read_conll(REPO / "data/demo/test.txt")[TOKENS][:16])
    assert len(predictions) == test_words  # context words are never predicted or scored


def test_context_without_documents_says_so_once_and_trains_without(tmp_path, caplog):
    rows = read_conll(REPO / "data/demo/train.txt")
    for name in ("train", "valid"):
        lines = [json.dumps({"tokens": t, "ner_tags": g}) for t, g in zip(rows[TOKENS][:40], rows[TAGS][:40])]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines))
    caplog.set_level("WARNING", logger="bert_ner")
    code = main(
        [
            "--config",
            SCRATCH,
            f"data.train_file={tmp_path / 'train.jsonl'}",
            f"data.validation_file={tmp_path / 'valid.jsonl'}",
            "data.test_file=null",
            "data.context_tokens=16",
            *QUICK,
            f"training.output_dir={tmp_path / 'out'}",
        ]
    )
    assert code == 0
    assert caplog.text.count("the data has no documents") == 1
    # saved as trained, so that infer.py does not give the model context it never learned to use
    assert load_config(tmp_path / "out" / "train_config.yaml").data.context_tokens == 0


def test_length_grouped_training_still_scores_every_sentence_in_order(tmp_path):
    """transformers 5 length-groups evaluation too under group_by_length; predictions must still
    line up with their sentences."""
    output_dir = tmp_path / "grouped"
    code = main(
        ["--config", SCRATCH, "training.train_sampling_strategy=group_by_length", *QUICK, f"training.output_dir={output_dir}"]
    )
    assert code == 0
    gold = read_conll(REPO / "data/demo/test.txt")
    blocks = [b.splitlines() for b in (output_dir / "test_predictions.txt").read_text().split("\n\n") if b.strip()]
    assert [[line.split(" ")[1] for line in b] for b in blocks] == gold[TAGS][:16]


def test_context_dropout_trains_and_keeps_context_for_scoring(tmp_path):
    output_dir = tmp_path / "dropout"
    assert (
        main(
            [
                "--config",
                SCRATCH,
                "data.context_tokens=16",
                "data.context_dropout=0.5",
                *QUICK,
                f"training.output_dir={output_dir}",
            ]
        )
        == 0
    )
    resolved = load_config(output_dir / "train_config.yaml")
    assert (resolved.data.context_tokens, resolved.data.context_dropout) == (16, 0.5)


def test_evaluate_only_without_a_validation_file_writes_the_test_scores(demo_run, tmp_path):
    output_dir = tmp_path / "scores"
    code = main(
        [
            "--config",
            SCRATCH,
            "model.scratch=null",
            f"model.name_or_path={demo_run}",
            "model.fine_tune=false",
            "data.validation_file=null",
            f"training.output_dir={output_dir}",
        ]
    )
    assert code == 0
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert (
        "validation" not in metrics and metrics["test"]["f1"] == json.loads((demo_run / "metrics.json").read_text())["test"]["f1"]
    )


# Ten epochs asked; an improvement must be 0.5 F1 to count, so patience 1 stops after epoch 2.
EARLY_STOPPING_RUN = [
    "--config",
    SCRATCH,
    "training.num_train_epochs=10",
    "early_stopping.patience=1",
    "early_stopping.threshold=0.5",
    "data.max_train_samples=64",
    "data.max_eval_samples=16",
    "data.max_test_samples=16",
]


def test_early_stopping_stops_when_validation_f1_stops_improving(tmp_path, caplog):
    """Ten epochs asked; an improvement must be 0.5 F1 to count, so the second evaluation already
    counts as none and patience 1 stops there. The best epoch is the one kept."""
    caplog.set_level("INFO", logger="bert_ner")
    output_dir = tmp_path / "early"
    assert main([*EARLY_STOPPING_RUN, f"training.output_dir={output_dir}"]) == 0
    evaluations = [row for row in read_log(output_dir) if row["eval_f1"] is not None]
    assert [row["epoch"] for row in evaluations] == [1.0, 2.0]
    scores = json.loads((output_dir / "metrics.json").read_text())
    assert scores["validation"]["f1"] == pytest.approx(max(row["eval_f1"] for row in evaluations))
    assert scores["training"]["epochs"] == 2.0
    assert "did not improve for 1 evaluations; stopped after epoch 2 of 10" in caplog.text


def test_resuming_a_run_that_stopped_early_does_not_train_on(tmp_path, monkeypatch, caplog):
    """Killed after early stopping, before the scores were written: the rerun resumes from the
    checkpoint where the run stopped, trains no further, and keeps the best epoch."""
    import train

    output_dir = tmp_path / "early"
    args = [*EARLY_STOPPING_RUN, f"training.output_dir={output_dir}"]

    def killed(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "evaluate", killed)
    assert main(args) == 130
    monkeypatch.undo()
    caplog.set_level("INFO", logger="bert_ner")
    assert main(args) == 0
    evaluations = [row for row in read_log(output_dir) if row["eval_f1"] is not None]
    assert [row["epoch"] for row in evaluations] == [1.0, 2.0]
    scores = json.loads((output_dir / "metrics.json").read_text())
    assert scores["training"]["steps"] == 8  # 2 epochs of 64 sentences in batches of 16
    assert "the run had stopped early at step 8" in caplog.text
    assert scores["validation"]["f1"] == pytest.approx(max(row["eval_f1"] for row in evaluations))


def test_early_stopping_needs_evaluations(tmp_path):
    from bert_ner.config import load_config as load
    from bert_ner.errors import UserError

    with pytest.raises(UserError, match="early_stopping.patience: needs evaluations"):
        load(SCRATCH, ["early_stopping.patience=2", "training.load_best_model_at_end=false"])


def test_each_evaluation_scores_as_the_final_scores_do(tmp_path, caplog):
    """data.max_length 12 cuts words off the longer validation sentences. The per-epoch validation
    F1 that picks the best epoch counts them as misses, as the final scores do: one definition."""
    caplog.set_level("WARNING", logger="bert_ner")
    output_dir = tmp_path / "cut"
    args = ["--config", SCRATCH, "data.max_length=12", "training.num_train_epochs=2", "data.max_eval_samples=64"]
    assert main([*args, "data.max_test_samples=16", f"training.output_dir={output_dir}"]) == 0
    assert any(message.startswith("validation: ") and "beyond max_length 12" in message for message in caplog.messages)
    evaluations = [row for row in read_log(output_dir) if row["eval_f1"] is not None]
    final = json.loads((output_dir / "metrics.json").read_text())["validation"]["f1"]
    assert final > 0.1
    assert max(row["eval_f1"] for row in evaluations) == pytest.approx(final, abs=1e-4)


@pytest.mark.parametrize(
    "overrides, splits, reason",
    [
        ([], ("train", "validation"), None),  # none asked
        (["inference.min_precision=0.9"], ("train", "validation"), None),
        (["inference.min_precision=0.9", "inference.calibrate=false"], ("train", "validation"), "set inference.calibrate: true"),
        (["inference.min_precision=0.9"], ("train",), "the data has no validation split"),
        (
            ["inference.min_precision=0.9", "model.fine_tune=false", "model.scratch=null"],
            ("train", "validation"),
            "no model is saved",
        ),
    ],
)
def test_a_precision_that_cannot_be_recorded_is_said_before_training(overrides, splits, reason):
    from train import unrecorded_precision

    said = unrecorded_precision(load_config(SCRATCH, overrides), dict.fromkeys(splits))
    assert said == reason if reason is None else reason in said
