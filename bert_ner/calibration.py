"""Calibrated entity scores: what an entity's score means, how it is fitted, and how it is measured.

A calibrated score estimates the probability that the entity is right: its span and its type
exactly a gold entity's. It is fitted on validation, so it holds for text like the validation
text; far from it (tweets for a news model) scores still run high. It never reaches 0 or 1: with n
validation entities it stays within [1 / (n + 2), (n + 1) / (n + 2)] (`bounded`). The int8 ONNX
export shifts raw scores with the texts that share a model call, and so the calibrated ones.

1. An entity's raw score is the mean probability of its words' tags (bert_ner.words.entity_score),
   each word's label probabilities first softened by a temperature T (bert_ner.words.tempered).
   The tags, and so the entities and F1, never depend on T.
2. `fit_temperature`: the T that minimises the negative log-likelihood of the gold tags of the
   validation words (temperature scaling of the logits).
3. An entity is known when the training data holds an entity of exactly the same words (case
   included) and type, else new (the seen and unseen entities of Augenstein et al. 2017,
   "Generalisation in named entity recognition"). A model is far surer of known entities, and
   the share of known ones varies between texts (CoNLL-2003's test set holds fewer than its
   validation set), so each kind gets its own map: a score then means the same whatever the mix.
   The record keeps the training entities as 64-bit digests (`entity_key`), not as text.
4. `fit_isotonic`: a non-decreasing map from the raw score (at T) to the share of validation
   entities that are right at that score: pool adjacent violators, linear between its blocks.
   One map for known and one for new entities when validation has KNOWN_MIN_ENTITIES of each;
   else one for all.
5. `Calibration.score`: the calibrated score.
6. `threshold_for`: the lowest score at which the validation entities kept reach a precision,
   judged by the rule of succession, (right + 1) / (kept + 2), so that a handful of right
   entities cannot show a high one. The recorded threshold reaches it among the known and among
   the new entities alike, so that it holds for any mix of the two (where the known alone are
   more precise than asked, the mix is too). Where that keeps every validation entity, it is 0:
   none is dropped. `estimated_threshold` instead reaches the precision on some text of the
   user's by the entities' calibrated scores alone (no labels), so it follows that text's mix.
7. `measure`: expected calibration error (ECE, over BINS equal-width bins of the score) and Brier
   score of the predicted entities; gold entities the model missed have no score and are not counted.

`fit` does 2-6 on validation sentences; train.py calls it at the end of training, and
bench/calibration.py on a model directory train.py wrote.
"""

import base64
import hashlib
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, replace

import numpy as np

from bert_ner.words import SCORE_DECIMALS, decode, entity_score, spans

BINS = 10  # equal-width bins of [0, 1] for the ECE and the reliability diagram
KNOWN_MIN_ENTITIES = 100  # validation entities each of known and new needs for a map of its own
KEY_BYTES = 8  # an entity_key's size: collisions among a training set's entities are negligible
TEMPERATURES = (0.05, 20.0)  # the range searched for T
PRECISION_SLACK = 1e-9  # far below any real difference of precision, far above floating-point error


Points = tuple[tuple[float, ...], tuple[float, ...]]  # an isotonic map: raw scores, calibrated scores


def entity_key(kind: str, words: Sequence[str]) -> bytes:
    """An entity's identity in a model's set of training entities: a KEY_BYTES BLAKE2b digest of
    its type and its words (joined by spaces), so that the record holds no training text."""
    return hashlib.blake2b(f"{kind}\t{' '.join(words)}".encode(), digest_size=KEY_BYTES).digest()


def training_entities(words: Iterable[Sequence[str]], tags: Iterable[Sequence[str]]) -> frozenset[bytes]:
    """The `entity_key`s of every entity in sentences of words and their IOB2 tags."""
    return frozenset(
        entity_key(kind, sentence[first:end])
        for sentence, sentence_tags in zip(words, tags)
        for kind, first, end in spans(list(sentence_tags))
    )


@dataclass(frozen=True)
class Calibration:
    """How a model's raw entity scores become calibrated ones, as fitted on validation, and the
    score threshold that kept `min_precision` there (None: none asked, or none reached it)."""

    temperature: float = 1.0
    points: Points | None = None  # the isotonic map of new entities; of all entities when known_points is None
    known_points: Points | None = None  # the isotonic map of known entities
    known: frozenset[bytes] = frozenset()  # the training data's entities (entity_key); empty without known_points
    min_precision: float | None = None
    threshold: float | None = None

    @property
    def unreached_precision(self) -> float | None:
        """The precision asked for when no validation score reached it, so that no threshold was
        recorded and every entity is kept; None otherwise."""
        return self.min_precision if self.threshold is None else None

    def is_known(self, kind: str, words: Sequence[str]) -> bool:
        """Whether the entity has a map of its own: the training data holds it, with this type."""
        return self.known_points is not None and entity_key(kind, words) in self.known

    def score(self, raw: float, kind: str, words: Sequence[str]) -> float:
        """The calibrated score of an entity of type `kind` and `words` whose raw score (at
        `temperature`) is `raw`."""
        points = self.known_points if self.is_known(kind, words) else self.points
        return raw if points is None else float(np.interp(raw, *points))

    def as_dict(self) -> dict:
        as_lists = lambda points: None if points is None else [list(points[0]), list(points[1])]  # noqa: E731
        known = {}
        if self.known_points is not None:
            known = {
                "known_points": as_lists(self.known_points),
                "known_count": len(self.known),
                "known_entities": base64.b64encode(b"".join(sorted(self.known))).decode("ascii"),
            }
        return {
            "temperature": self.temperature,
            "points": as_lists(self.points),
            **known,
            "min_precision": self.min_precision,
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, raw) -> "Calibration":
        """A calibration from its record form; ValueError saying what is wrong."""
        if not isinstance(raw, dict):
            raise ValueError(f"calibration {raw!r} is not an object")
        temperature = raw.get("temperature", 1.0)
        if not isinstance(temperature, int | float) or not temperature > 0:
            raise ValueError(f"calibration temperature {temperature!r} is not a positive number")
        points, known_points = (points_of(raw.get(key), key) for key in ("points", "known_points"))
        if (known_points is None) != (raw.get("known_entities") is None):
            have, lack = ("known_points", "known_entities") if known_points is not None else ("known_entities", "known_points")
            raise ValueError(f"calibration has {have} but no {lack}")
        known = frozenset() if known_points is None else known_entities(raw["known_entities"], raw.get("known_count"))
        for key in ("min_precision", "threshold"):
            value = raw.get(key)
            if value is not None and (not isinstance(value, int | float) or not 0 <= value <= 1):
                raise ValueError(f"calibration {key} {value!r} is not a probability (0 to 1)")
        return cls(float(temperature), points, known_points, known, raw.get("min_precision"), raw.get("threshold"))


def points_of(raw, key: str) -> Points | None:
    """An isotonic map from its record form (two lists: raw scores and calibrated scores, both
    non-decreasing, the calibrated ones probabilities); ValueError naming `key` when damaged."""
    if raw is None:
        return None
    if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(side, list) for side in raw)):
        raise ValueError(f"calibration {key} are not two lists of the same length")
    if not len(raw[0]) == len(raw[1]) > 0:
        raise ValueError(f"calibration {key} are not two lists of the same length")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in raw[0] + raw[1]):
        raise ValueError(f"calibration {key} hold something other than numbers")
    if any(b < a for side in raw for a, b in zip(side, side[1:])):
        raise ValueError(f"calibration {key} are not in increasing order")
    if not all(0 <= y <= 1 for y in raw[1]):
        raise ValueError(f"calibration {key} map to scores outside 0 to 1")
    return tuple(float(x) for x in raw[0]), tuple(float(y) for y in raw[1])


def known_entities(raw, count) -> frozenset[bytes]:
    """The training entities' keys from their record form: base64 of the digests one after
    another, and how many there are (so that a cut-short list is caught)."""
    try:
        packed = base64.b64decode(raw, validate=True) if isinstance(raw, str) else None
    except ValueError:
        packed = None
    if packed is None or len(packed) % KEY_BYTES:
        raise ValueError(f"calibration known_entities is not base64 of {KEY_BYTES}-byte digests")
    keys = frozenset(packed[i : i + KEY_BYTES] for i in range(0, len(packed), KEY_BYTES))
    if count != len(keys) or not keys:
        raise ValueError(f"calibration known_entities holds {len(keys)} entities, not the {count!r} it says (known_count)")
    return keys


@dataclass
class Sentence:
    """One validation or test sentence as the model saw it: its words' label probabilities (shape
    [words, labels], bert_ner.words.word_scores), which words the model saw (shape [words]), its
    gold IOB2 tags and its words."""

    probabilities: np.ndarray
    seen: np.ndarray
    gold: list[str]
    words: list[str]


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


def threshold_for(scores: np.ndarray, correct: np.ndarray, precision: float, succession: bool = False) -> float | None:
    """The lowest score t at which the entities scored t or more are right at least `precision`
    of the time (the most recall that keeps the precision); 0.0 when that keeps every entity, so
    none is dropped; None when no t reaches it. `correct` is 1 or 0 per entity (shape
    [entities]), or the probability that it is right. `succession`: judge the kept entities by
    the rule of succession, (right + 1) / (kept + 2), as `bounded` does, so that a handful of
    right entities cannot show a high precision (0.99 takes 98 right in a row)."""
    scores, correct = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    if not len(scores):
        return None
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], np.cumsum(correct[order])
    kept = np.arange(1, len(ranked) + 1)
    achieved = (hits + 1) / (kept + 2) if succession else hits / kept
    last_of_each = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))  # ties are kept or dropped together
    # a hair of slack: a sum of scores such as 0.95 + 0.85 falls short of 1.8 in floating point
    reached = [i for i in last_of_each if achieved[i] >= precision - PRECISION_SLACK]
    if not reached:
        return None
    return 0.0 if max(reached) == len(ranked) - 1 else float(ranked[max(reached)])


def is_asked_precision(value: object) -> bool:
    """A precision a threshold can be asked to keep: a real number above 0 and below 1 (any
    threshold keeps precision 0; calibrated scores, and the rule of succession, never reach 1)."""
    return is_probability(value) and 0 < value < 1


ASKED_PRECISION = "a precision above 0 and below 1 (any threshold keeps precision 0, and calibrated scores never reach 1)"


def estimated_threshold(scores: Iterable[float], precision: float) -> float | None:
    """The lowest calibrated score t at which the entities of some text scored t or more are
    right at least `precision` of the time by their own scores: calibrated, an entity is right
    with the probability its score gives, so the kept entities' mean score is their expected
    precision. No gold labels are needed, and the threshold follows the text's own mix of known
    and new entities. `scores`: calibrated entity scores (0-1). 0.0 when every entity together
    reaches `precision` (none is dropped); None when even the best-scored entities fall short
    (or there are none). Scores are taken at SCORE_DECIMALS, as inference reports them, so
    float32 ones give the threshold a table shows. ValueError for a `precision` that is not
    `is_asked_precision`, or `scores` that are not a sequence of probabilities (a list, a 1-d
    numpy array or torch tensor, any iterable)."""
    if not is_asked_precision(precision):
        raise ValueError(f"precision {precision!r}: give {ASKED_PRECISION}")
    unordered = isinstance(scores, str | bytes | Mapping | Set) or not isinstance(scores, Iterable)
    if unordered or getattr(scores, "ndim", 1) != 1:
        shape = f"a {scores.ndim}-d {type(scores).__name__}" if hasattr(scores, "ndim") else type(scores).__name__
        raise ValueError(f"scores must be a 1-d sequence of the entities' calibrated scores, not {shape}")
    scores = scores.tolist() if hasattr(scores, "tolist") else list(scores)  # numpy and torch: Python numbers
    wrong = [score for score in scores if not is_probability(score)]
    if wrong:
        raise ValueError(f"scores must be numbers from 0 to 1, the entities' calibrated scores; got {wrong[0]!r:.80}")
    as_array = np.round(np.array(scores, dtype=np.float64), SCORE_DECIMALS)
    threshold = threshold_for(as_array, as_array, precision)
    return None if threshold is None else round(threshold, SCORE_DECIMALS)


def is_probability(value: object) -> bool:
    """A real number (numpy's included, not a bool or a string) from 0 to 1; NaN is not."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= value <= 1


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


@dataclass
class EntityTable:
    """Every predicted entity of some sentences: its raw score (shape [entities]), whether it is
    right (shape [entities]), its type and words; and the number of gold entities."""

    scores: np.ndarray
    correct: np.ndarray
    entities: list[tuple[str, list[str]]]
    gold_count: int


def entity_table(sentences: list[Sentence], labels: list[str], use_viterbi: bool = True, temperature: float = 1.0) -> EntityTable:
    """The predicted entities of `sentences` with their raw scores at `temperature`, decoded as
    train.py and inference decode."""
    scores, correct, found, gold_count = [], [], [], 0
    for sentence in sentences:
        decoded = decode(sentence.probabilities, sentence.seen, labels, use_viterbi, temperature)
        gold = set(spans(sentence.gold))
        gold_count += len(gold)
        for span in spans(decoded.tags):
            scores.append(entity_score(decoded.probabilities[span[1] : span[2]]))
            correct.append(span in gold)
            found.append((span[0], sentence.words[span[1] : span[2]]))
    return EntityTable(np.array(scores, dtype=np.float64), np.array(correct, dtype=bool), found, gold_count)


def scored(sentences: list[Sentence], labels: list[str], calibration: Calibration, use_viterbi: bool = True):
    """Every predicted entity's score as inference reports it under `calibration`, its rightness,
    and the number of gold entities."""
    table = entity_table(sentences, labels, use_viterbi, calibration.temperature)
    return calibrated(table, calibration), table.correct, table.gold_count


def calibrated(table: EntityTable, calibration: Calibration) -> np.ndarray:
    """The table's entity scores as inference reports them under `calibration` (shape [entities])."""
    scores = [round(calibration.score(raw, *entity), SCORE_DECIMALS) for raw, entity in zip(table.scores, table.entities)]
    return np.array(scores, dtype=np.float64)


def bounded(points: Points, entities: int) -> Points:
    """The map's scores kept within [1 / (n + 2), (n + 1) / (n + 2)] for n validation entities (the
    rule of succession): so few entities cannot show that an entity is surely right, or surely wrong."""
    low, high = 1 / (entities + 2), (entities + 1) / (entities + 2)
    return points[0], tuple(min(max(y, low), high) for y in points[1])


def isotonic_map(scores: np.ndarray, correct: np.ndarray) -> Points | None:
    """`fit_isotonic`, `bounded` by the number of entities; None for none."""
    return bounded(fit_isotonic(scores, correct), len(scores)) if len(scores) else None


def fit(
    sentences: list[Sentence],
    labels: list[str],
    use_viterbi: bool = True,
    min_precision: float | None = None,
    known: frozenset[bytes] = frozenset(),
) -> Calibration:
    """The calibration of a model from its validation sentences and its `known` training
    entities (`training_entities`): T, then the isotonic maps, then the threshold for
    `min_precision` (0-1) when asked."""
    probabilities, gold = word_table(sentences, labels)
    temperature = fit_temperature(probabilities, gold)
    table = entity_table(sentences, labels, use_viterbi, temperature)
    is_known = np.array([entity_key(kind, words) in known for kind, words in table.entities], dtype=bool)
    if min(is_known.sum(), (~is_known).sum()) >= KNOWN_MIN_ENTITIES:
        new_points = isotonic_map(table.scores[~is_known], table.correct[~is_known])
        known_points = isotonic_map(table.scores[is_known], table.correct[is_known])
        calibration = Calibration(temperature, new_points, known_points, known)
    else:
        calibration = Calibration(temperature, isotonic_map(table.scores, table.correct))
    if min_precision is None:
        return calibration
    return replace(calibration, min_precision=min_precision, threshold=threshold_of(table, calibration, min_precision))


def threshold_of(table: EntityTable, calibration: Calibration, min_precision: float) -> float | None:
    """The lowest calibrated score at which the kept entities of `table` (decoded at the
    calibration's temperature) reach `min_precision` among the known and among the new alike,
    by the rule of succession (`threshold_for` of each, the higher); 0.0 when that keeps every
    entity; None when either never does."""
    is_known = np.array([calibration.is_known(kind, words) for kind, words in table.entities], dtype=bool)
    scores = calibrated(table, calibration)
    groups = [group for group in (is_known, ~is_known) if group.any()]
    thresholds = [threshold_for(scores[group], table.correct[group], min_precision, succession=True) for group in groups]
    return None if not thresholds or None in thresholds else max(thresholds)


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


def kind_summary(scores: np.ndarray, correct: np.ndarray) -> dict:
    """How many entities of one kind (known or new), the share right and their mean score: where
    the two part, that kind's scores run high or low on these sentences."""
    count = len(scores)
    return {
        "entities": count,
        "precision": round(float(np.mean(correct)), 4) if count else None,
        "mean_score": round(float(np.mean(scores)), 4) if count else None,
    }


def measure(sentences: list[Sentence], labels: list[str], calibration: Calibration, use_viterbi: bool = True) -> dict:
    """Calibration of the entity scores of `sentences` before (the model's own scores), with the
    temperature alone, and after (temperature and isotonic maps); how many predicted entities were
    scored as known, and of the known and of the new the share right and the mean score after;
    precision and recall at the calibration's threshold, and at the one `estimated_threshold`
    finds for its precision from these sentences' own scores."""
    before = scored(sentences, labels, Calibration(), use_viterbi)
    table = entity_table(sentences, labels, use_viterbi, calibration.temperature)
    tempered = calibrated(table, Calibration(calibration.temperature))
    after = calibrated(table, calibration), table.correct, table.gold_count
    report = {"before": summary(*before[:2]), "temperature": summary(tempered, table.correct), "after": summary(*after[:2])}
    is_known = np.array([calibration.is_known(kind, words) for kind, words in table.entities], dtype=bool)
    report["after"]["known"] = int(is_known.sum())
    report["after"]["kinds"] = {
        kind: kind_summary(after[0][group], table.correct[group]) for kind, group in (("known", is_known), ("new", ~is_known))
    }
    if calibration.threshold is not None:
        report["threshold"] = at_threshold(*after, calibration.threshold) | {"min_precision": calibration.min_precision}
    if calibration.min_precision is not None:
        estimated = estimated_threshold(after[0], calibration.min_precision)
        report["estimated"] = None if estimated is None else at_threshold(*after, estimated)
        report["min_precision"] = calibration.min_precision  # what `threshold` and `estimated` were asked to keep
    return report


def metrics_entry(
    calibration: Calibration, splits: dict[str, list[Sentence]], labels: list[str], use_viterbi: bool = True
) -> dict:
    """metrics.json's `calibration`: the temperature, the number of bins and `measure` of each split."""
    measured = {split: measure(sentences, labels, calibration, use_viterbi) for split, sentences in splits.items()}
    return {"temperature": calibration.temperature, "bins": BINS, **measured}
