"""Entity-level scores with seqeval (strict IOB2 matching), and the tags they are computed from."""

import numpy as np

from bert_ner.words import IGNORE_INDEX, NO_WORD, decode_logits, labels_of, spans


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
        **{f"span_{name}": value for name, value in untyped_span_scores(gold, predicted).items()},
        "per_type": per_type,
    }


def zero_f1_warning(split: str, gold: list[list[str]], predicted: list[list[str]], steps: int | None) -> str:
    """Why `split` scores F1 0 and what to check: its gold tags hold no entity, or the model found
    none of them. `steps` is how many optimizer steps the model trained here; None when it was only
    evaluated (model.fine_tune: false)."""
    if not any(spans(tags) for tags in gold):
        return (
            f"{split} has no gold entities (every tag is O), so its precision, recall and F1 are undefined and "
            f"reported as 0 whatever the model predicts; check that {split}'s tags are in data.tags_column and that "
            "data.label_map keeps their types, or score on data with entities"
        )
    found = sum(len(spans(tags)) for tags in predicted)
    what = "predicts no entities at all" if not found else f"gets none of its {found} predicted entities right"
    if steps is None:
        return (
            f"the model {what} on {split}, so its F1 is 0; it was not trained here (model.fine_tune: false): check that "
            "model.name_or_path is a model fine-tuned for NER on these entity types"
        )
    return (
        f"the model {what} on {split}, so its F1 is 0. This usually means it has not learned yet: "
        f"{steps} training steps are too few; train longer (training.num_train_epochs, "
        "more sentences) or with a larger training.learning_rate"
    )


# What score() reports overall; Trainer's logs also carry "<type>_f1" for each entity type (flatten).
OVERALL_SCORES = ("precision", "recall", "f1", "accuracy", "span_precision", "span_recall", "span_f1")


def metric_names(types: list[str]) -> list[str]:
    """The names each evaluation reports to Trainer (without its eval_ prefix), for entity `types`:
    what training.metric_for_best_model may name besides the loss."""
    return [*OVERALL_SCORES, *(f"{name}_f1" for name in types)]


def untyped_span_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Precision, recall and F1 of entity spans with their type ignored: an entity counts as found
    when both its boundaries are right, whatever type it is given. Beside the strict scores, it
    separates finding an entity from naming its type."""
    gold_spans = {(i, first, end) for i, tags in enumerate(gold) for _, first, end in spans(tags)}
    predicted_spans = {(i, first, end) for i, tags in enumerate(predicted) for _, first, end in spans(tags)}
    right = len(gold_spans & predicted_spans)
    precision = right / len(predicted_spans) if predicted_spans else 0.0
    recall = right / len(gold_spans) if gold_spans else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


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
    """`compute_metrics` for Trainer: scores each evaluated sentence as the final scores do, with the
    same decoding (bert_ner.words) as they and infer.py use. `gold_tags` are every word's tag of the
    evaluated split, in dataset order (which InOrderTrainer keeps): words cut off by max_length are
    predicted O and count as misses."""

    def __init__(self, id2label: dict[int, str], use_viterbi: bool, gold_tags: list[list[str]]):
        self.labels = labels_of(id2label)  # how the model's output ids are named (may differ in evaluate-only)
        self.use_viterbi = use_viterbi
        self.gold_tags = gold_tags

    def __call__(self, eval_prediction) -> dict[str, float]:
        rows = list(zip(eval_prediction.predictions, eval_prediction.label_ids))
        if len(rows) != len(self.gold_tags):
            raise ValueError(f"evaluated {len(rows)} sentences, but the split has {len(self.gold_tags)}")
        predicted = []
        for (logits, label_row), gold in zip(rows, self.gold_tags):
            labelled = label_row != IGNORE_INDEX  # a word's first sub-token, in word order
            word_index = np.where(labelled, np.cumsum(labelled) - 1, NO_WORD)
            predicted.append(decode_logits(list(word_index), logits, len(gold), self.labels, self.use_viterbi))
        return flatten(score(self.gold_tags, predicted))
