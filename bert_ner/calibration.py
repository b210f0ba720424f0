"""Calibrated entity scores: what an entity's score means, how it is fitted, and how it is measured.

1. An entity's raw score is the mean probability of its words' tags (bert_ner.words.entity_score),
   each word's label probabilities first softened by a temperature T (bert_ner.words.tempered).
   The tags, and so the entities and F1, never depend on T.
2. `fit_temperature`: the T that minimises the negative log-likelihood of the gold tags of the
   validation words (temperature scaling of the logits).
3. `fit_isotonic`: a non-decreasing map from the raw score (at T) to the share of validation
   entities that are right at that score: pool adjacent violators, linear between its blocks.
   An entity is right when its span and its type are exactly a gold entity's.
4. `Calibration.score`: the calibrated score, an estimate of the probability that the entity is right.
5. `threshold_for`: the lowest score at which the validation entities kept reach a precision.
6. `measure`: expected calibration error (ECE, over BINS equal-width bins of the score) and Brier
   score of the predicted entities; gold entities the model missed have no score and are not counted.

`fit` does 2-5 on validation sentences; train.py calls it at the end of training, and
bench/calibration.py on a model directory train.py wrote.
"""

import math
from dataclasses import dataclass, replace

import numpy as np

from bert_ner.words import decode, entity_score, spans

BINS = 10  # equal-width bins of [0, 1] for the ECE and the reliability diagram
SCORE_DECIMALS = 4  # entity scores are reported so (bert_ner.words.entities): thresholds are chosen on them
TEMPERATURES = (0.05, 20.0)  # the range searched for T


@dataclass(frozen=True)
class Calibration:
    """How a model's raw entity scores become calibrated ones, as fitted on validation, and the
    score threshold that kept `min_precision` there (None: none asked, or none reached it)."""

    temperature: float = 1.0
    points: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # the isotonic map: raw scores, calibrated scores
    min_precision: float | None = None
    threshold: float | None = None

    def score(self, raw: float) -> float:
        """The calibrated score of an entity whose raw score (at `temperature`) is `raw`."""
        if self.points is None:
            return raw
        return float(np.interp(raw, *self.points))

    def as_dict(self) -> dict:
        points = None if self.points is None else [list(self.points[0]), list(self.points[1])]
        return {
            "temperature": self.temperature,
            "points": points,
            "min_precision": self.min_precision,
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, raw) -> "Calibration":
        """A calibration from its record form; ValueError saying what is wrong."""
        if not isinstance(raw, dict):
            raise ValueError(f"calibration {raw!r} is not an object")
        temperature, points = raw.get("temperature", 1.0), raw.get("points")
        if not isinstance(temperature, int | float) or not temperature > 0:
            raise ValueError(f"calibration temperature {temperature!r} is not a positive number")
        if points is not None:
            if not (isinstance(points, list) and len(points) == 2 and len(points[0]) == len(points[1]) > 0):
                raise ValueError("calibration points are not two lists of the same length")
            if any(b < a for a, b in zip(points[0], points[0][1:])):
                raise ValueError("calibration points are not in increasing order")
            points = (tuple(float(x) for x in points[0]), tuple(float(y) for y in points[1]))
        for key in ("min_precision", "threshold"):
            value = raw.get(key)
            if value is not None and (not isinstance(value, int | float) or not 0 <= value <= 1):
                raise ValueError(f"calibration {key} {value!r} is not a probability (0 to 1)")
        return cls(float(temperature), points, raw.get("min_precision"), raw.get("threshold"))


@dataclass
class Sentence:
    """One validation or test sentence as the model saw it: its words' label probabilities (shape
    [words, labels], bert_ner.words.word_scores), which words the model saw (shape [words]), and
    its gold IOB2 tags."""

    probabilities: np.ndarray
    seen: np.ndarray
    gold: list[str]


# ---------------------------------------------------------------------------------------------
# Fitting


def negative_log_likelihood(probabilities: np.ndarray, gold: np.ndarray, temperature: float) -> float:
    """Mean -log p(gold tag) of words (probabilities [words, labels], gold label ids [words]) at T."""
    logits = np.log(np.clip(probabilities, 1e-300, None)) / temperature  # log p = logits - their log-sum-exp
    top = logits.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    return float(np.mean(log_sum - logits[np.arange(len(gold)), gold]))


def fit_temperature(probabilities: np.ndarray, gold: np.ndarray, steps: int = 60) -> float:
    """The temperature in TEMPERATURES that minimises `negative_log_likelihood` (golden-section
    search over log T: the likelihood is unimodal in T). 1.0 for no words."""
    if len(gold) == 0:
        return 1.0
    ratio = (math.sqrt(5) - 1) / 2
    low, high = (math.log(t) for t in TEMPERATURES)
    cost = lambda log_t: negative_log_likelihood(probabilities, gold, math.exp(log_t))  # noqa: E731
    for _ in range(steps):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if cost(a) <= cost(b):
            high = b
        else:
            low = a
    return round(math.exp((low + high) / 2), 4)


def fit_isotonic(scores: np.ndarray, correct: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The non-decreasing fit of `correct` (0 or 1) to `scores` (pool adjacent violators), as points
    for linear interpolation: each block's mean score and share correct. Interpolating between
    block means rather than stepping at block edges keeps the map free of jumps, so that scores
    that differ in the last digits (one backend's logits and another's) stay close."""
    values, inverse = np.unique(np.asarray(scores, dtype=np.float64), return_inverse=True)
    sums = np.bincount(inverse, weights=np.asarray(correct, dtype=np.float64)).tolist()
    counts = np.bincount(inverse).astype(float).tolist()
    blocks: list[list[float]] = []  # [sum correct, count, sum of scores]
    for value, total, count in zip(values.tolist(), sums, counts):
        blocks.append([total, count, value * count])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            total, count, score_sum = blocks.pop()
            blocks[-1] = [blocks[-1][0] + total, blocks[-1][1] + count, blocks[-1][2] + score_sum]
    return tuple(b[2] / b[1] for b in blocks), tuple(b[0] / b[1] for b in blocks)


def threshold_for(scores: np.ndarray, correct: np.ndarray, precision: float) -> float | None:
    """The lowest score t at which the entities scored t or more are right at least `precision`
    of the time (the most recall that keeps the precision); None when no t reaches it."""
    scores, correct = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)
    if not len(scores):
        return None
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], np.cumsum(correct[order])
    last_of_each = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))  # ties are kept or dropped together
    reached = [i for i in last_of_each if hits[i] / (i + 1) >= precision]
    return float(ranked[max(reached)]) if reached else None


# ---------------------------------------------------------------------------------------------
# Entities and their scores


def word_table(sentences: list[Sentence], labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every seen word's label probabilities (shape [words, labels]) and gold label id (shape [words])."""
    index = {label: i for i, label in enumerate(labels)}
    rows, gold = [], []
    for sentence in sentences:
        for i in np.flatnonzero(sentence.seen):
            if sentence.gold[i] in index:  # a gold type the model lacks (evaluate-only) says nothing of T
                rows.append(sentence.probabilities[i])
                gold.append(index[sentence.gold[i]])
    return np.array(rows).reshape(len(rows), len(labels)), np.array(gold, dtype=int)


def entity_table(
    sentences: list[Sentence], labels: list[str], use_viterbi: bool = True, temperature: float = 1.0
) -> tuple[np.ndarray, np.ndarray, int]:
    """The raw score (at `temperature`) and rightness of every predicted entity, and the number of
    gold entities, decoded as train.py and inference decode."""
    scores, correct, gold_count = [], [], 0
    for sentence in sentences:
        decoded = decode(sentence.probabilities, sentence.seen, labels, use_viterbi, temperature)
        gold = set(spans(sentence.gold))
        gold_count += len(gold)
        for span in spans(decoded.tags):
            scores.append(entity_score(decoded.probabilities[span[1] : span[2]]))
            correct.append(span in gold)
    return np.array(scores, dtype=np.float64), np.array(correct, dtype=bool), gold_count


def scored(sentences: list[Sentence], labels: list[str], calibration: Calibration, use_viterbi: bool = True):
    """Every predicted entity's score as inference reports it under `calibration`, its rightness,
    and the number of gold entities."""
    raw, correct, gold_count = entity_table(sentences, labels, use_viterbi, calibration.temperature)
    return np.array([round(calibration.score(s), SCORE_DECIMALS) for s in raw]), correct, gold_count


def bounded(points: tuple[tuple[float, ...], tuple[float, ...]], entities: int):
    """The map's scores kept within [1 / (n + 2), (n + 1) / (n + 2)] for n validation entities (the
    rule of succession): so few entities cannot show that an entity is surely right, or surely wrong."""
    low, high = 1 / (entities + 2), (entities + 1) / (entities + 2)
    return points[0], tuple(min(max(y, low), high) for y in points[1])


def fit(
    sentences: list[Sentence], labels: list[str], use_viterbi: bool = True, min_precision: float | None = None
) -> Calibration:
    """The calibration of a model from its validation sentences: T, then the isotonic map, then
    the threshold for `min_precision` (0-1) when asked."""
    probabilities, gold = word_table(sentences, labels)
    temperature = fit_temperature(probabilities, gold)
    raw, correct, _ = entity_table(sentences, labels, use_viterbi, temperature)
    calibration = Calibration(temperature, bounded(fit_isotonic(raw, correct), len(raw)) if len(raw) else None)
    if min_precision is None:
        return calibration
    scores, correct, _ = scored(sentences, labels, calibration, use_viterbi)
    return replace(calibration, min_precision=min_precision, threshold=threshold_for(scores, correct, min_precision))


# ---------------------------------------------------------------------------------------------
# Measuring


def reliability(scores: np.ndarray, correct: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per equal-width score bin ([0, 0.1), ... [0.9, 1]): entities, their mean score, the share right."""
    scores, correct = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    which = np.minimum((scores * bins).astype(int), bins - 1)
    table = []
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        table.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "entities": count,
                "mean_score": round(float(scores[inside].mean()), 4) if count else None,
                "accuracy": round(float(correct[inside].mean()), 4) if count else None,
            }
        )
    return table


def expected_calibration_error(scores: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float:
    """The entity-weighted mean, over equal-width score bins, of |mean score - share right| (0 for none)."""
    total = len(scores)
    if not total:
        return 0.0
    scores, correct = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    which = np.minimum((scores * bins).astype(int), bins - 1)
    gaps = [abs(scores[which == b].mean() - correct[which == b].mean()) * (which == b).sum() for b in set(which.tolist())]
    return float(sum(gaps) / total)


def brier_score(scores: np.ndarray, correct: np.ndarray) -> float:
    """Mean squared difference between score and rightness (1 right, 0 wrong); 0 for no entities."""
    if not len(scores):
        return 0.0
    return float(np.mean((np.asarray(scores, dtype=np.float64) - np.asarray(correct, dtype=np.float64)) ** 2))


def at_threshold(scores: np.ndarray, correct: np.ndarray, gold_count: int, threshold: float) -> dict:
    """Precision and recall of the entities scored `threshold` or more, and how many are kept."""
    kept = np.asarray(scores) >= threshold
    hits = int(np.asarray(correct)[kept].sum())
    return {
        "threshold": threshold,
        "kept": int(kept.sum()),
        "precision": round(hits / kept.sum(), 4) if kept.any() else None,
        "recall": round(hits / gold_count, 4) if gold_count else None,
    }


def summary(scores: np.ndarray, correct: np.ndarray) -> dict:
    """ECE, Brier score and the reliability table of predicted entities' scores."""
    return {
        "entities": len(scores),
        "ece": round(expected_calibration_error(scores, correct), 4),
        "brier": round(brier_score(scores, correct), 4),
        "bins": reliability(scores, correct),
    }


def measure(sentences: list[Sentence], labels: list[str], calibration: Calibration, use_viterbi: bool = True) -> dict:
    """Calibration of the entity scores of `sentences` before (the model's own scores), with the
    temperature alone, and after (temperature and isotonic map); precision and recall at the
    calibration's threshold."""
    before = scored(sentences, labels, Calibration(), use_viterbi)
    tempered = scored(sentences, labels, Calibration(calibration.temperature), use_viterbi)
    after = scored(sentences, labels, calibration, use_viterbi)
    report = {"before": summary(*before[:2]), "temperature": summary(*tempered[:2]), "after": summary(*after[:2])}
    if calibration.threshold is not None:
        report["threshold"] = at_threshold(*after, calibration.threshold) | {"min_precision": calibration.min_precision}
    return report
