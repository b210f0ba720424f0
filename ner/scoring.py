"""Entity-level scores with seqeval (strict IOB2 matching), and the tags they are computed from."""

from ner.align import IGNORE_INDEX
from ner.data import OUTSIDE


def word_predictions(predicted_ids, label_ids, id2label: dict[int, str]) -> list[list[str]]:
    """Per sentence, the predicted tag of every word that carries a label (its first sub-token)."""
    return [
        [id2label[int(p)] for p, gold in zip(pred_row, gold_row) if gold != IGNORE_INDEX]
        for pred_row, gold_row in zip(predicted_ids, label_ids)
    ]


def pad_truncated(predictions: list[list[str]], gold: list[list[str]]) -> list[list[str]]:
    """Predict O for words cut off by truncation, so they still count (as misses) in the score."""
    return [pred + [OUTSIDE] * (len(g) - len(pred)) for pred, g in zip(predictions, gold)]


def score(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Overall precision/recall/F1/accuracy and the same per entity type."""
    from seqeval.metrics import accuracy_score, classification_report
    from seqeval.scheme import IOB2

    report = classification_report(gold, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    overall = report["micro avg"]
    per_type = {
        name: {
            "precision": float(values["precision"]),
            "recall": float(values["recall"]),
            "f1": float(values["f1-score"]),
            "support": int(values["support"]),
        }
        for name, values in report.items()
        if not name.endswith(" avg")
    }
    return {
        "precision": float(overall["precision"]),
        "recall": float(overall["recall"]),
        "f1": float(overall["f1-score"]),
        "accuracy": float(accuracy_score(gold, predicted)),
        "per_type": per_type,
    }


def report_text(gold: list[list[str]], predicted: list[list[str]]) -> str:
    """seqeval's classification report, as a table."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    return classification_report(gold, predicted, mode="strict", scheme=IOB2, digits=4, zero_division=0)


def flatten(metrics: dict) -> dict[str, float]:
    """{"f1": .., "per_type": {"PER": {"f1": ..}}} -> {"f1": .., "PER_f1": ..} for Trainer's logs."""
    flat = {key: value for key, value in metrics.items() if key != "per_type"}
    for name, values in metrics["per_type"].items():
        flat[f"{name}_f1"] = values["f1"]
    return flat


class SeqevalMetrics:
    """`compute_metrics` for Trainer: scores the words that carry a label in each eval batch."""

    def __init__(self, gold_labels: list[str], id2label: dict[int, str]):
        self.gold_labels = gold_labels  # how the dataset's label ids were encoded
        self.id2label = id2label  # how the model's output ids are named (may differ in evaluate-only)

    def __call__(self, eval_prediction) -> dict[str, float]:
        predicted_ids = eval_prediction.predictions.argmax(-1)
        label_ids = eval_prediction.label_ids
        gold = [[self.gold_labels[g] for g in row if g != IGNORE_INDEX] for row in label_ids]
        return flatten(score(gold, word_predictions(predicted_ids, label_ids, self.id2label)))


def entities_to_tags(words: list[str], entities: list[dict]) -> list[str]:
    """IOB2 tags for `words`, given entities with character offsets into " ".join(words) (how the
    benchmarks turn CoNLL sentences into text). A word belongs to the entity it overlaps."""
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    tags = [OUTSIDE] * len(words)
    for entity in entities:
        covered = [i for i, s in enumerate(starts) if s < entity["end"] and s + len(words[i]) > entity["start"]]
        for k, i in enumerate(covered):
            tags[i] = ("B-" if k == 0 else "I-") + entity["entity_group"]
    return tags
