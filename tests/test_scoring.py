"""Entity scores: seqeval in strict IOB2 mode, on every word of every sentence."""

import numpy as np
import pytest

from ner.align import IGNORE_INDEX
from ner.scoring import SeqevalMetrics, flatten, pad_truncated, score, word_predictions

X = IGNORE_INDEX
GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]


@pytest.mark.parametrize(
    "predicted, precision, recall",
    [
        (GOLD, 1.0, 1.0),
        ([["B-PER", "I-PER", "O", "O"], ["B-ORG", "O"]], 1.0, 2 / 3),  # a missed LOC
        ([["B-PER", "O", "O", "B-LOC"], ["B-ORG", "O"]], 2 / 3, 2 / 3),  # wrong boundary: PER is not matched
        ([["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]], 2 / 3, 2 / 3),  # wrong type
        ([["I-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]], 1.0, 2 / 3),  # strict: a span must start with B-
    ],
)
def test_score_overall(predicted, precision, recall):
    result = score(GOLD, predicted)
    assert result["precision"] == pytest.approx(precision)
    assert result["recall"] == pytest.approx(recall)
    assert result["f1"] == pytest.approx(2 * precision * recall / (precision + recall))


def test_score_per_type():
    result = score(GOLD, [["B-PER", "I-PER", "O", "O"], ["B-ORG", "O"]])
    assert set(result["per_type"]) == {"PER", "LOC", "ORG"}
    assert result["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert result["per_type"]["PER"]["f1"] == 1.0
    assert flatten(result)["LOC_f1"] == 0.0 and "per_type" not in flatten(result)


def test_word_predictions_keep_only_labelled_positions():
    id2label = {0: "O", 1: "B-PER", 2: "I-PER"}
    predicted = np.array([[2, 1, 2, 2, 0, 0], [0, 1, 1, 0, 0, 0]])
    labels = np.array([[X, 1, X, 2, 0, X], [X, 1, X, X, X, X]])
    assert word_predictions(predicted, labels, id2label) == [["B-PER", "I-PER", "O"], ["B-PER"]]


def test_truncated_words_are_scored_as_outside():
    assert pad_truncated([["B-PER"], ["O", "O"]], [["B-PER", "O", "B-LOC"], ["O", "O"]]) == [["B-PER", "O", "O"], ["O", "O"]]


def test_metrics_decode_predictions_by_the_models_own_label_names():
    """Evaluate-only: the model's ids mean other labels than the dataset's; names decide, not positions."""
    from transformers import EvalPrediction

    dataset_labels = ["O", "B-PER", "I-PER"]
    model_id2label = {0: "B-PER", 1: "I-PER", 2: "O"}
    logits = np.eye(3)[np.array([[2, 0, 1, 2]])]  # model says: O B-PER I-PER O
    labels = np.array([[X, 1, 2, X]])  # dataset says: B-PER I-PER
    metrics = SeqevalMetrics(dataset_labels, model_id2label)(EvalPrediction(predictions=logits, label_ids=labels))
    assert metrics["f1"] == 1.0


@pytest.mark.parametrize(
    "words, entities, expected",
    [
        (["Anna", "Schmidt", "sang"], [{"entity_group": "PER", "start": 0, "end": 12}], ["B-PER", "I-PER", "O"]),
        (["in", "New", "York", "and", "Rome"], [{"entity_group": "LOC", "start": 3, "end": 11}, {"entity_group": "LOC", "start": 16, "end": 20}],
         ["O", "B-LOC", "I-LOC", "O", "B-LOC"]),
        (["UN", "UN"], [{"entity_group": "ORG", "start": 0, "end": 2}, {"entity_group": "ORG", "start": 3, "end": 5}], ["B-ORG", "B-ORG"]),
        (["no", "one"], [], ["O", "O"]),
    ],
)
def test_entities_to_tags(words, entities, expected):
    from ner.scoring import entities_to_tags

    assert entities_to_tags(words, entities) == expected
