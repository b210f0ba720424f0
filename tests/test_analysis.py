"""Error analysis, plots and the model card: tables for the pure parts, then the files a run gets."""

import json

import pytest
import yaml

from bert_ner.analysis import MISSED, SPURIOUS, WRONG_BOUNDARY, WRONG_TYPE, all_errors, classify, marked, spans, type_confusion
from bert_ner.card import model_card
from bert_ner.insights import main as report
from bert_ner.outputs import conll_lines, log_rows, read_log, read_predictions
from bert_ner.record import ModelRecord
from tests.conftest import SCRATCH


@pytest.mark.parametrize(
    "tags, expected",
    [
        (["O", "O"], []),
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
        (["B-PER", "B-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
        (["I-PER", "I-PER"], []),  # strict IOB2: an entity must start with B-
        (["B-PER", "I-LOC"], [("PER", 0, 1)]),  # a type change ends it
        (["B-ORG", "I-ORG", "I-ORG"], [("ORG", 0, 3)]),
    ],
)
def test_spans(tags, expected):
    assert spans(tags) == expected


O = "O"  # noqa: E741 (the IOB2 outside tag, short so that the tables below line up)


@pytest.mark.parametrize(
    "gold, predicted, expected",
    [
        # right: no errors
        (["B-PER", "I-PER", O], ["B-PER", "I-PER", O], []),
        ([O, "B-LOC"], [O, O], [(MISSED, "LOC", "-")]),
        ([O, O], ["B-ORG", O], [(SPURIOUS, "-", "ORG")]),
        (["B-LOC", O], ["B-ORG", O], [(WRONG_TYPE, "LOC", "ORG")]),
        (["B-PER", "I-PER"], ["B-PER", O], [(WRONG_BOUNDARY, "PER", "PER")]),
        # a name split in two is one boundary error, not a boundary error and a spurious entity
        (["B-PER", "I-PER", "I-PER"], ["B-PER", O, "B-PER"], [(WRONG_BOUNDARY, "PER", "PER")]),
        # other type and other boundaries: the type is what is named
        (["B-ORG", "I-ORG", "I-ORG"], [O, "B-LOC", O], [(WRONG_TYPE, "ORG", "LOC")]),
        # one prediction over two gold entities of different types: the type that differs is named
        (["B-PER", "B-LOC"], ["B-PER", "I-PER"], [(WRONG_TYPE, "LOC", "PER")]),
        (["B-PER", "I-PER"], ["B-PER", "B-LOC"], [(WRONG_TYPE, "PER", "LOC")]),
        # several in one sentence, in word order
        (
            ["B-PER", O, "B-LOC", O],
            [O, "B-MISC", "B-ORG", O],
            [(MISSED, "PER", "-"), (SPURIOUS, "-", "MISC"), (WRONG_TYPE, "LOC", "ORG")],
        ),
    ],
)
def test_classify(gold, predicted, expected):
    assert [(e.kind, e.gold_type, e.predicted_type) for e in classify(0, gold, predicted)] == expected


def test_type_confusion_counts_each_gold_entity_once_and_spurious_ones():
    gold = [["B-PER", "I-PER", O, "B-LOC", O], ["B-ORG", O]]
    predicted = [["B-PER", O, O, "B-ORG", "B-MISC"], [O, O]]
    assert type_confusion(gold, predicted) == {
        ("PER", WRONG_BOUNDARY): 1,
        ("LOC", "ORG"): 1,
        (SPURIOUS, "MISC"): 1,
        ("ORG", MISSED): 1,
    }


@pytest.mark.parametrize(
    "gold, predicted, expected",
    [
        (["B-PER", "I-PER", O], ["B-PER", "I-PER", O], {("PER", "PER"): 1}),  # exact: the diagonal
        (["B-PER", "I-PER", O], ["B-PER", O, O], {("PER", WRONG_BOUNDARY): 1}),  # right type, too short
        ([O, "B-PER", O], ["B-PER", "I-PER", "I-PER"], {("PER", WRONG_BOUNDARY): 1}),  # right type, too long
        (["B-PER", "I-PER", O], ["B-PER", "B-PER", O], {("PER", WRONG_BOUNDARY): 1}),  # split in two: still one entity
        (["B-LOC", "I-LOC", O], ["B-ORG", O, O], {("LOC", "ORG"): 1}),  # wrong type, boundaries too
        (["B-LOC", O], [O, O], {("LOC", MISSED): 1}),
        ([O, O], [O, "B-MISC"], {(SPURIOUS, "MISC"): 1}),
    ],
    ids=["exact", "short", "long", "split", "wrong-type", "missed", "spurious"],
)
def test_type_confusion_counts_only_exact_matches_as_correct(gold, predicted, expected):
    assert type_confusion([gold], [predicted]) == expected


def test_marked():
    assert marked(["Anna", "Schmidt", "saw", "Oslo"], [("PER", 0, 2), ("LOC", 3, 4)]) == "[Anna Schmidt]PER saw [Oslo]LOC"


def test_predictions_and_log_read_back_what_was_written(tmp_path):
    words, gold, predicted = [["New York", "Times"], ["a"]], [["B-ORG", "I-ORG"], ["O"]], [["B-LOC", "O"], ["O"]]
    (tmp_path / "test_predictions.txt").write_text("\n".join(conll_lines(words, gold, predicted)) + "\n")
    assert read_predictions(tmp_path) == (words, gold, predicted)
    history = [{"loss": 0.5, "epoch": 0.5, "step": 10}, {"eval_loss": 0.4, "eval_f1": 0.8, "epoch": 1.0, "step": 20}]
    (tmp_path / "training_log.tsv").write_text("\n".join(log_rows(history)) + "\n")
    rows = read_log(tmp_path)
    assert rows[0]["loss"] == 0.5 and rows[0]["eval_f1"] is None and rows[1]["eval_f1"] == 0.8


@pytest.mark.parametrize(
    "history, drawn",
    [
        ([{"loss": 0.5, "epoch": 0.5, "step": 10}], True),
        ([{"eval_loss": 0.4, "eval_f1": 0.8, "epoch": 1.0, "step": 2}], True),  # fewer steps than logging_steps
        ([], False),
    ],
)
def test_learning_curves_are_drawn_from_whatever_a_training_run_logged(tmp_path, history, drawn):
    from bert_ner.insights import write_insights

    (tmp_path / "metrics.json").write_text(json.dumps({"training": {"runtime_s": 1.0, "steps": 2, "epochs": 1.0}}))
    (tmp_path / "training_log.tsv").write_text("\n".join(log_rows(history)) + "\n")
    assert ("learning_curves.png" in write_insights(tmp_path)) == drawn
    assert (tmp_path / "learning_curves.png").is_file() == drawn


def test_demo_run_gets_plots_errors_and_a_model_card(demo_run):
    for png in ("learning_curves.png", "per_type_scores.png", "confusion_matrix.png"):
        assert (demo_run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    words, gold, predicted = read_predictions(demo_run)
    errors = all_errors(gold, predicted)
    records = [json.loads(line) for line in (demo_run / "errors.jsonl").read_text().splitlines()]
    assert len(records) == len(errors) > 0
    assert {r["kind"] for r in records} <= {MISSED, SPURIOUS, WRONG_TYPE, WRONG_BOUNDARY}
    text = (demo_run / "errors.md").read_text()
    assert text.startswith(f"# Test-set errors\n\n{len(errors)} errors.")
    metrics = json.loads((demo_run / "metrics.json").read_text())
    # every error is a missed gold entity, a spurious prediction, or both at once: the counts agree with seqeval
    true_positive = round(metrics["test"]["recall"] * sum(t["support"] for t in metrics["test"]["per_type"].values()))
    gold_entities = sum(len(spans(g)) for g in gold)
    assert sum(len(r["gold"]) for r in records) == gold_entities - true_positive
    card = (demo_run / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["pipeline_tag"] == "token-classification"
    f1 = next(m for m in front["model-index"][0]["results"][0]["metrics"] if m["name"].startswith("Test F1"))
    assert f1["value"] == round(metrics["test"]["f1"], 4)
    assert "| **overall** |" in card and f'Tagger.load("{demo_run}")' in card
    assert f'pipeline("token-classification", model="{demo_run}"' in card and "each sentence alone" in card
    assert "data/demo" not in card  # local data paths stay on the machine that trained


def test_card_names_a_hub_base_model_and_dataset():
    resolved = {
        "model": {"name_or_path": "bert-base-cased", "scratch": None},
        "data": {"dataset": "lhoestq/conll2003"},
        "training": {"learning_rate": 5e-5, "num_train_epochs": 3},
    }
    scores = {
        "precision": 0.9,
        "recall": 0.9,
        "f1": 0.9,
        "per_type": {"PER": {"precision": 1, "recall": 1, "f1": 1, "support": 3}},
    }
    card = model_card(resolved, {"test": scores}, ["O", "B-PER", "I-PER"], "my-ner", "my-ner", ModelRecord(context_tokens=128))
    front = yaml.safe_load(card.split("---")[1])
    assert front["base_model"] == "bert-base-cased" and front["datasets"] == ["lhoestq/conll2003"]
    assert "fine-tuned from [`bert-base-cased`](https://huggingface.co/bert-base-cased)" in card
    assert "| learning_rate | 5e-05 |" in card and "up to 128 sub-tokens of its neighbours' words" in card


def test_report_draws_everything_again(demo_run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(demo_run, copy)
    for name in ("errors.md", "learning_curves.png", "README.md"):
        (copy / name).unlink()
    assert report([str(copy)]) == 0
    assert (copy / "errors.md").read_text() == (demo_run / "errors.md").read_text()
    assert (copy / "learning_curves.png").is_file() and (copy / "README.md").is_file()
    assert report([str(tmp_path)]) == 2
    assert f"no metrics.json in {tmp_path}/" in capsys.readouterr().err


def test_a_failing_report_does_not_cost_the_model(tmp_path, monkeypatch, caplog):
    import train

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(train, "write_insights", broken)
    caplog.set_level("WARNING", logger="bert_ner")
    output_dir = tmp_path / "out"
    args = [
        "--config",
        SCRATCH,
        "training.num_train_epochs=1",
        "data.max_train_samples=64",
        f"training.output_dir={output_dir}",
    ]
    assert train.main(args) == 0
    assert (output_dir / "model.safetensors").is_file()
    assert "could not write the plots, error analysis or model card (RuntimeError('no fonts'))" in caplog.text
    assert f"python -m bert_ner.insights {output_dir}" in caplog.text
