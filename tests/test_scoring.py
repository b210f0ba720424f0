"""Entity scores: seqeval in strict IOB2 mode, on every word of every sentence."""

import numpy as np
import pytest

from bert_ner.scoring import SeqevalMetrics, flatten, score, zero_f1_warning
from bert_ner.words import IGNORE_INDEX, NO_WORD, decode_logits

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


def test_predictions_pair_with_words_by_word_index_not_by_position():
    """Word 1 became no sub-token (a zero-width space): it is O, and word 2 keeps its own prediction."""
    labels = ["O", "B-PER", "I-PER"]
    logits = np.log(np.eye(3)[[0, 0, 1, 2, 0, 0]] + 1e-6)  # per sub-token: O O B-PER I-PER O O
    word_index = [NO_WORD, 0, 2, 2, NO_WORD]  # [CLS] w0 w2 w2 [SEP]; the sixth row is Trainer's padding
    assert decode_logits(word_index, logits, 3, labels) == ["O", "O", "B-PER"]


def test_truncated_words_are_scored_as_outside():
    labels = ["O", "B-PER", "I-PER"]
    logits = np.eye(3)[[0, 1, 0]]
    assert decode_logits([NO_WORD, 0, NO_WORD], logits, 3, labels) == ["B-PER", "O", "O"]


def test_metrics_decode_predictions_by_the_models_own_label_names():
    """Evaluate-only: the model's ids mean other labels than the dataset's; names decide, not positions."""
    from transformers import EvalPrediction

    model_id2label = {0: "B-PER", 1: "I-PER", 2: "O"}
    logits = np.eye(3)[np.array([[2, 0, 1, 2]])]  # model says: O B-PER I-PER O
    labels = np.array([[X, 1, 2, X]])  # dataset ids ["O", "B-PER", "I-PER"]: two labelled words
    metrics = SeqevalMetrics(model_id2label, True, [["B-PER", "I-PER"]])(EvalPrediction(predictions=logits, label_ids=labels))
    assert metrics["f1"] == 1.0


def test_metrics_count_words_cut_by_max_length_as_misses():
    """Three words, the third cut off (no label in the input): its entity is a miss, as in the final scores."""
    from transformers import EvalPrediction

    model_id2label = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
    logits = np.eye(5)[np.array([[0, 1, 0, 0]])]  # [CLS] B-PER O [SEP]
    labels = np.array([[X, 1, 0, X]])
    metrics = SeqevalMetrics(model_id2label, True, [["B-PER", "O", "B-LOC"]])(
        EvalPrediction(predictions=logits, label_ids=labels)
    )
    assert (metrics["precision"], metrics["recall"]) == (1.0, 0.5)


@pytest.mark.parametrize(
    "predicted, strict_f1, span_f1",
    [
        ([["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]], 1.0, 1.0),  # exact
        ([["B-ORG", "I-ORG", "O", "B-LOC"], ["B-ORG", "O"]], 2 / 3, 1.0),  # wrong type: found, misnamed
        ([["B-PER", "O", "O", "B-LOC"], ["B-ORG", "O"]], 2 / 3, 2 / 3),  # wrong boundary: not found either way
        ([["O", "O", "O", "O"], ["O", "O"]], 0.0, 0.0),
    ],
)
def test_untyped_span_f1_ignores_the_type_but_not_the_boundaries(predicted, strict_f1, span_f1):
    result = score(GOLD, predicted)
    assert result["f1"] == pytest.approx(strict_f1)
    assert result["span_f1"] == pytest.approx(span_f1)


@pytest.mark.parametrize(
    "gold, predicted, steps, expected",
    [
        (
            [["O", "O"]],
            [["O", "O"]],
            None,
            "test has no gold entities (every tag is O), so its precision, recall and F1 are undefined",
        ),
        ([["O", "O"]], [["B-PER", "O"]], 0, "test has no gold entities (every tag is O)"),
        ([["B-PER", "O"]], [["O", "O"]], 16, "the model predicts no entities at all on test, so its F1 is 0. "),
        ([["B-PER", "O"]], [["O", "O"]], 16, "16 training steps are too few; train longer"),
        ([["B-PER", "O"]], [["O", "B-LOC"]], 3, "gets none of its 1 predicted entities right on test"),
        ([["B-PER", "O"]], [["O", "O"]], None, "it was not trained here (model.fine_tune: false): check that model.name_or_path"),
    ],
    ids=["evaluate-only-no-gold", "trained-no-gold", "nothing-found", "steps", "all-wrong", "evaluate-only-nothing-found"],
)
def test_zero_f1_warning_names_the_cause(gold, predicted, steps, expected):
    warning = zero_f1_warning("test", gold, predicted, steps)
    assert expected in warning
    assert ("training steps" in warning) == (steps is not None and "no gold" not in expected)
