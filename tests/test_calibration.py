"""Calibrated entity scores (bert_ner.calibration): the fits, the measures and the threshold on
small tables; the calibration in the model's record, applied alike by every backend."""

import base64
import dataclasses
import json
import logging
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bert_ner.calibration import (
    KNOWN_MIN_ENTITIES,
    Calibration,
    Sentence,
    brier_score,
    entity_key,
    entity_table,
    estimated_threshold,
    expected_calibration_error,
    fit,
    fit_isotonic,
    fit_temperature,
    measure,
    reliability,
    threshold_for,
    training_entities,
)
from bert_ner.errors import UserError
from bert_ner.record import ModelRecord, parse_record, read_record, write_record
from bert_ner.words import decode, softmax, tempered
from tests.test_record import OLD_MODEL

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_temperature_has_the_known_answer():
    """Logits [4, 0] on every word, and the first label right on 8 words of 10: the likelihood is
    best where softmax([4, 0] / T) gives the first label 0.8, at T = 4 / ln 4."""
    probabilities = softmax(np.array([[4.0, 0.0]] * 10))
    gold = np.array([0] * 8 + [1] * 2)
    assert fit_temperature(probabilities, gold) == pytest.approx(4 / math.log(4), abs=1e-3)


def test_temperature_of_confident_right_answers_sharpens_and_of_none_is_one():
    probabilities = softmax(np.array([[2.0, 0.0]] * 10))
    assert fit_temperature(probabilities, np.zeros(10, dtype=int)) < 1
    assert fit_temperature(np.zeros((0, 2)), np.zeros(0, dtype=int)) == 1.0


def test_tempering_probabilities_is_dividing_the_logits():
    logits = np.array([[3.0, 1.0, -2.0], [0.5, 0.4, 0.1]])
    assert tempered(softmax(logits), 2.5) == pytest.approx(softmax(logits / 2.5))
    assert tempered(softmax(logits), 1.0) is not None and (tempered(softmax(logits), 1.0) == softmax(logits)).all()


@pytest.mark.parametrize(
    "scores, correct, points",
    [
        ([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1], ((0.1, 0.25, 0.4), (0.0, 0.5, 1.0))),  # 0.2 and 0.3 pooled
        ([0.4, 0.3, 0.2, 0.1], [0, 0, 1, 1], ((0.25,), (0.5,))),  # all in one block
        ([0.5, 0.5, 0.9], [1, 0, 1], ((0.5, 0.9), (0.5, 1.0))),  # equal scores are one point
    ],
)
def test_isotonic_fit(scores, correct, points):
    xs, ys = fit_isotonic(np.array(scores), np.array(correct))
    assert xs == pytest.approx(points[0]) and ys == pytest.approx(points[1])


def test_ece_and_brier_on_a_small_table():
    """Bin [0.9, 1]: two entities at 0.95, one right (gap 0.45); bin [0.1, 0.2): two at 0.15, none
    right (gap 0.15). ECE = (2 * 0.45 + 2 * 0.15) / 4; Brier = (0.05² + 0.95² + 2 * 0.15²) / 4."""
    scores, correct = np.array([0.95, 0.95, 0.15, 0.15]), np.array([1, 0, 0, 0])
    assert expected_calibration_error(scores, correct) == pytest.approx(0.3)
    assert brier_score(scores, correct) == pytest.approx(0.2375)
    bins = reliability(scores, correct)
    assert [b["entities"] for b in bins] == [0, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert bins[9] | {"high": 1.0} == {"low": 0.9, "high": 1.0, "entities": 2, "mean_score": 0.95, "accuracy": 0.5}
    assert expected_calibration_error(np.array([1.0, 0.0]), np.array([1, 0])) == 0  # a score of 1 is in the last bin
    assert expected_calibration_error(np.array([]), np.array([])) == brier_score(np.array([]), np.array([])) == 0


@pytest.mark.parametrize(
    "precision, succession, threshold",
    [
        (1.0, False, 0.9),
        (0.9, False, 0.9),
        (0.75, False, 0.7),
        (0.7, False, 0.7),
        (0.66, False, 0.7),
        (0.6, False, 0.0),  # every entity kept: none dropped
        (0.1, False, 0.0),
        # by the rule of succession, (right + 1) / (kept + 2): at 0.9, 2/3; at 0.8, 3/5; at 0.7, 4/6; at 0.6, 4/7
        (0.9, True, None),  # one right entity shows no precision of 0.9
        (0.66, True, 0.7),
        (0.57, True, 0.0),
    ],
)
def test_threshold_is_the_lowest_score_that_keeps_the_precision(precision, succession, threshold):
    """Kept at 0.9: 1/1 right; at 0.8 (a tie, kept together): 2/3; at 0.7: 3/4; at 0.6: 3/5."""
    scores, correct = np.array([0.8, 0.9, 0.6, 0.8, 0.7]), np.array([1, 1, 0, 0, 1])
    assert threshold_for(scores, correct, precision, succession) == threshold


def test_the_rule_of_succession_asks_more_right_entities_for_a_higher_precision():
    """(k + 1) / (k + 2) >= 0.99 from k = 98 right entities in a row."""
    scores = np.linspace(0.999, 0.9, 100)
    correct = np.append(np.ones(98), np.zeros(2))
    assert threshold_for(scores, correct, 0.99, succession=True) == scores[97]
    assert threshold_for(scores[:97], correct[:97], 0.99, succession=True) is None


def test_no_threshold_when_no_score_keeps_the_precision():
    assert threshold_for(np.array([0.9, 0.5]), np.array([0, 1]), 0.9) is None
    assert threshold_for(np.array([]), np.array([]), 0.9) is None


@pytest.mark.parametrize(
    "scores, precision, threshold",
    [
        ([0.95, 0.9, 0.8, 0.6, 0.3], 0.9, 0.9),  # kept at 0.9: mean 0.925; at 0.8: 0.883
        ([0.95, 0.9, 0.8, 0.6, 0.3], 0.88, 0.8),
        ([0.95, 0.9, 0.8, 0.6, 0.3], 0.7, 0.0),  # every entity: mean 0.71, so none is dropped
        ([0.95, 0.9, 0.8, 0.6, 0.3], 0.96, None),  # not even the best entity alone
        ([0.95, 0.85, 0.85, 0.3], 0.89, 0.95),  # a tie is kept or dropped together: 0.883 with both
        ([0.3, 0.95, 0.87], 0.9, 0.87),  # in any order
        ([], 0.9, None),
        ((score for score in [0.95, 0.3]), 0.9, 0.95),  # any iterable
        (np.array([0.95, 0.3], dtype=np.float32), np.float32(0.9), 0.95),  # numpy's numbers
        (torch.tensor([0.95, 0.3]), 0.9, 0.95),  # a tensor's
        (np.array([0.4746, 0.3], dtype=np.float32), 0.45, 0.4746),  # float32 taken at the 4 decimals shown
        (np.array([0.9, 0.9, 0.2], dtype=np.float32), 0.9, 0.9),  # float32's 0.9 is 0.89999998
        ([0.95, 0.85, 0.2], 0.9, 0.85),  # 0.95 + 0.85 is 1.7999999999999998 in floating point
    ],
)
def test_estimated_threshold_keeps_the_precision_the_scores_promise(scores, precision, threshold):
    assert estimated_threshold(scores, precision) == threshold


@pytest.mark.parametrize(
    "scores, precision, said",
    [
        ([0.9], 0, "precision 0: give a precision above 0 and below 1 (any threshold keeps precision 0"),
        ([0.9], 1, "precision 1: give a precision above 0 and below 1"),
        ([1.0, 1.0], 1.0, "precision 1.0: give a precision above 0 and below 1"),
        ([0.9], 1.5, "precision 1.5: give a precision above 0 and below 1"),
        ([0.9], "0.9", "precision '0.9': give a precision"),
        ([0.9], True, "precision True: give a precision"),
        ("abc", 0.9, "scores must be a 1-d sequence of the entities' calibrated scores, not str"),
        (0.7, 0.9, "scores must be a 1-d sequence of the entities' calibrated scores, not float"),
        (np.array(0.7), 0.9, "scores must be a 1-d sequence of the entities' calibrated scores, not a 0-d ndarray"),
        (torch.ones(2, 2), 0.9, "scores must be a 1-d sequence of the entities' calibrated scores, not a 2-d Tensor"),
        ({0.5: 1}, 0.9, "scores must be a 1-d sequence of the entities' calibrated scores, not dict"),
        ({0.5, 0.7}, 0.9, "scores must be a 1-d sequence of the entities' calibrated scores, not set"),
        (["0.9"], 0.9, "scores must be numbers from 0 to 1, the entities' calibrated scores; got '0.9'"),
        ([[0.5, 0.6]], 0.9, "scores must be numbers from 0 to 1"),
        ([0.9, {"score": 0.8}], 0.9, "scores must be numbers from 0 to 1"),
        ([0.9, 1.2], 0.9, "scores must be numbers from 0 to 1"),
        ([0.9, float("nan")], 0.9, "scores must be numbers from 0 to 1"),
        ([0.9, None], 0.9, "scores must be numbers from 0 to 1, the entities' calibrated scores; got None"),
    ],
)
def test_estimated_threshold_refuses_what_is_not_a_probability(scores, precision, said):
    with pytest.raises(ValueError, match=re.escape(said)):
        estimated_threshold(scores, precision)


def sentence(rows: list[list[float]], gold: list[str], words: list[str]) -> Sentence:
    return Sentence(np.array(rows), np.ones(len(rows), dtype=bool), gold, words)


# Two sentences: `Anna Schmidt` found right (PER, sure), `Paris` found as PER though gold LOC (unsure).
SENTENCES = [
    sentence(
        [[0.02, 0.9, 0.02, 0.04, 0.02], [0.05, 0.02, 0.9, 0.01, 0.02], [0.9, 0.02, 0.02, 0.04, 0.02]],
        ["B-PER", "I-PER", "O"],
        ["Anna", "Schmidt", "said"],
    ),
    sentence([[0.9, 0.02, 0.02, 0.04, 0.02], [0.1, 0.5, 0.0, 0.4, 0.0]], ["O", "B-LOC"], ["in", "Paris"]),
]


def test_entities_are_right_when_span_and_type_match_and_scores_are_their_words_mean():
    table = entity_table(SENTENCES, LABELS)
    assert table.scores.tolist() == pytest.approx([0.9, 0.5]) and table.correct.tolist() == [True, False]
    assert table.entities == [("PER", ["Anna", "Schmidt"]), ("PER", ["Paris"])] and table.gold_count == 2


def test_temperature_changes_scores_but_never_tags():
    for s in SENTENCES:
        assert decode(s.probabilities, s.seen, LABELS, True, 3.0).tags == decode(s.probabilities, s.seen, LABELS).tags
    assert entity_table(SENTENCES, LABELS, temperature=3.0).scores[0] < 0.9


def test_fit_maps_scores_to_the_share_right_and_measures_before_and_after():
    calibration = fit(SENTENCES, LABELS, min_precision=0.6)
    assert calibration.points[1] == (0.25, 0.75)  # the wrong entity and the right one, bounded for 2 entities
    assert calibration.score(0.0, "PER", ["Paris"]) == 0.25 and calibration.score(1.0, "PER", ["Paris"]) == 0.75
    assert calibration.known_points is None  # no training entities given
    assert calibration.min_precision == 0.6 and calibration.threshold == 0.75  # the right one alone: (1 + 1) / (1 + 2)
    assert fit(SENTENCES, LABELS, min_precision=0.9).threshold is None  # one right entity cannot show 0.9
    report = measure(SENTENCES, LABELS, calibration)
    assert report["after"]["ece"] == 0.25 < report["before"]["ece"]
    assert report["threshold"] == {"threshold": 0.75, "kept": 1, "precision": 1.0, "recall": 0.5, "min_precision": 0.6}
    assert report["estimated"] == {"threshold": 0.75, "kept": 1, "precision": 1.0, "recall": 0.5}
    sure = measure(SENTENCES, LABELS, dataclasses.replace(calibration, min_precision=0.9))
    assert sure["estimated"] is None  # by the scores alone (0.75 at best), no entity is 90% sure
    halves = measure(SENTENCES, LABELS, dataclasses.replace(calibration, min_precision=0.5))
    assert halves["estimated"] == {"threshold": 0.0, "kept": 2, "precision": 0.5, "recall": 0.5}  # mean 0.5: none dropped


def test_training_entities_are_the_keys_of_their_words_and_type():
    known = training_entities(
        [["Anna", "Schmidt", "met", "Anna"], ["in", "Paris"]], [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-LOC"]]
    )
    assert known == {entity_key("PER", ["Anna", "Schmidt"]), entity_key("LOC", ["Anna"]), entity_key("LOC", ["Paris"])}
    assert entity_key("PER", ["Anna"]) not in known and entity_key("LOC", ["paris"]) not in known  # type and case count
    assert entity_key("PER", ["Anna Schmidt"]) == entity_key("PER", ["Anna", "Schmidt"])  # words joined by spaces
    assert len(entity_key("PER", ["Anna"])) == 8


def one_entity(word: str, probability: float, right: bool) -> Sentence:
    """A sentence `in WORD` where the model tags WORD B-LOC with `probability`; gold LOC if `right`."""
    rest = (1 - probability) / 4
    row = [rest, rest, rest, probability, rest]
    return sentence([[0.9, 0.02, 0.02, 0.04, 0.02], row], ["O", "B-LOC" if right else "O"], ["in", word])


# Known entities (Berlin, in the training data) all right at score 0.8; new ones (Xanadu) right
# half the time at the same score: one map for all would call both 0.75.
N = KNOWN_MIN_ENTITIES
MIXED = [one_entity("Berlin", 0.8, True)] * N + [one_entity("Xanadu", 0.8, k % 2 == 0) for k in range(N)]
KNOWN = frozenset({entity_key("LOC", ["Berlin"])})


def test_a_threshold_that_keeps_every_validation_entity_is_0():
    # both entities kept reach 0.5 together: the lowest score would say entities are dropped, 0 says none are
    assert fit(SENTENCES, LABELS, min_precision=0.5).threshold == 0.0


def test_known_and_new_entities_get_a_map_each():
    calibration = fit(MIXED, LABELS, known=KNOWN)
    assert calibration.known == KNOWN and calibration.is_known("LOC", ["Berlin"]) and not calibration.is_known("PER", ["Berlin"])
    raw = entity_table(MIXED, LABELS, temperature=calibration.temperature).scores[0]
    assert calibration.score(raw, "LOC", ["Berlin"]) == (N + 1) / (N + 2)  # all right, bounded by the rule of succession
    assert calibration.score(raw, "LOC", ["Xanadu"]) == 0.5
    report = measure(MIXED, LABELS, calibration)
    assert report["before"]["ece"] == pytest.approx(0.05)  # all at 0.8, right 3 times in 4
    assert report["after"]["ece"] < 0.005 and report["after"]["known"] == N
    assert report["after"]["kinds"] == {
        "known": {"entities": N, "precision": 1.0, "mean_score": round((N + 1) / (N + 2), 4)},
        "new": {"entities": N, "precision": 0.5, "mean_score": 0.5},
    }


@pytest.mark.parametrize(
    "known, mixed",
    [
        (frozenset(), MIXED),  # no training entities
        (KNOWN, MIXED[: N - 1] + MIXED[N:]),  # one known entity too few
        (KNOWN, MIXED[:N] + MIXED[N : 2 * N - 1]),  # one new entity too few
    ],
)
def test_one_map_for_all_without_enough_of_both(known, mixed):
    calibration = fit(mixed, LABELS, known=known)
    assert calibration.known_points is None and calibration.known == frozenset()
    assert calibration.score(0.9, "LOC", ["Berlin"]) == calibration.score(0.9, "LOC", ["Xanadu"])


# The same known entities; new ones right at a raw 0.9 and wrong at 0.5, half and half.
SPREAD = MIXED[:N] + [one_entity("Xanadu", 0.9, True)] * (N // 2) + [one_entity("Xanadu", 0.5, False)] * (N // 2)


@pytest.mark.parametrize(
    "validation, min_precision, threshold",
    [
        (MIXED, 0.5, 0.0),  # the known and the new each reach 0.5 with every entity kept: none is dropped
        (MIXED, 0.9, None),  # the new never reach 0.9, though the known alone would
        (SPREAD, 0.9, (N + 1) / (N + 2)),  # the known need none, the new drop their wrong (kept: the top of their map)
    ],
)
def test_the_threshold_keeps_the_precision_among_known_and_new_alike(validation, min_precision, threshold):
    calibration = fit(validation, LABELS, min_precision=min_precision, known=KNOWN)
    assert calibration.threshold == (None if threshold is None else round(threshold, 4))


CALIBRATION = Calibration(1.7, ((0.2, 0.5, 0.9), (0.1, 0.4, 0.95)), min_precision=0.9, threshold=0.5)
# Six training entities' keys: 48 bytes, 64 base64 characters, of which the first 32 hold three keys.
KNOWN_B64 = base64.b64encode(
    b"".join(entity_key("LOC", [city]) for city in ("Berlin", "Paris", "Rome", "Oslo", "Bern", "Riga"))
).decode()
# The same, with its own map for a known `Reuters` (ORG): the fixture model finds it in TEXTS.
KNOWN_CALIBRATION = dataclasses.replace(
    CALIBRATION, known_points=((0.5, 1.0), (0.97, 0.99)), known=frozenset({entity_key("ORG", ["Reuters"])})
)


KNOWN_CALIBRATION_RECORD = ModelRecord(calibration=KNOWN_CALIBRATION).to_json()


@pytest.mark.parametrize("calibration, version", [(CALIBRATION, 2), (KNOWN_CALIBRATION, 3)])
def test_a_record_with_a_calibration_reads_back_as_written(tmp_path, calibration, version):
    """Written as the oldest version that holds it: a bert-ner that reads version 2 scores one map right."""
    record = ModelRecord(max_length=64, calibration=calibration)
    write_record(tmp_path, record)
    assert json.loads((tmp_path / "bert_ner.json").read_text())["version"] == version
    assert read_record(tmp_path) == record


def test_a_record_without_a_calibration_is_written_as_version_1(tmp_path):
    write_record(tmp_path, ModelRecord(max_length=64))
    saved = json.loads((tmp_path / "bert_ner.json").read_text())
    assert saved["version"] == 1 and "calibration" not in saved


@pytest.mark.parametrize(
    "calibration, message",
    [
        ({"temperature": 0}, "temperature 0 is not a positive number"),
        ({"points": [[0.5, 0.2], [0.1, 0.2]]}, "not in increasing order"),
        ({"points": [[0.5], []]}, "not two lists of the same length"),
        ({"points": [[0.5], ["x"]]}, "points hold something other than numbers"),
        ({"threshold": 2}, "threshold 2 is not a probability"),
        ({"points": [[0.2, 0.5], [0.9, 0.1]]}, "points are not in increasing order"),  # a map that goes down
        ({"points": [[0.2, 0.5], [0.5, 4.5]]}, "points map to scores outside 0 to 1"),
        ({"points": [[0.2, 0.5], [0.1, float("nan")]]}, "points hold something other than numbers"),
        ({"points": [[0.2, True], [0.1, 0.2]]}, "points hold something other than numbers"),
        ({"known_points": [[0.5], [0.9]]}, "has known_points but no known_entities"),
        ({"known_entities": KNOWN_B64, "known_count": 6}, "has known_entities but no known_points"),
        ({"known_points": [[0.5], [0.9]], "known_entities": "AAAA", "known_count": 1}, "not base64 of 8-byte digests"),
        ({"known_points": [[0.5], [0.9]], "known_entities": "not base64!", "known_count": 1}, "known_entities is not base64"),
        ({"known_points": [[0.5], [0.9]], "known_entities": KNOWN_B64[:32], "known_count": 6}, "holds 3 entities, not the 6"),
        ({"known_points": [[0.5], [0.9]], "known_entities": KNOWN_B64}, "not the None it says"),
        ({"known_points": [[0.5], [0.9]], "known_entities": "", "known_count": 0}, "holds 0 entities"),
        ({"known_points": [[0.9, 0.5], [0.9, 1]], "known_entities": KNOWN_B64, "known_count": 6}, "known_points are not in"),
    ],
)
def test_a_damaged_calibration_is_a_one_line_error(calibration, message):
    text = json.dumps({"format": "bert-ner model record", "version": 3, "calibration": calibration})
    with pytest.raises(UserError, match=re.escape(message)) as error:
        parse_record(text, "m/bert_ner.json")
    assert str(error.value).startswith("m/bert_ner.json: ") and "bench/calibration.py --model DIR --train TRAIN" in str(
        error.value
    )


def test_a_record_older_than_its_calibration_is_refused():
    text = json.loads(KNOWN_CALIBRATION_RECORD) | {"version": 2}
    with pytest.raises(UserError, match="record version 2 cannot hold its calibration"):
        parse_record(json.dumps(text), "m/bert_ner.json")


def test_an_old_model_has_no_calibration_and_no_threshold():
    from bert_ner import Tagger

    tagger = Tagger.load(str(OLD_MODEL), device="cpu")
    assert tagger.record.calibration is None and tagger.threshold == 0.0


def test_train_records_a_calibration_and_measures_it(demo_run):
    metrics = json.loads((demo_run / "metrics.json").read_text())["calibration"]
    assert set(metrics) == {"temperature", "bins", "validation", "test"} and metrics["bins"] == 10
    for split in ("validation", "test"):
        assert set(metrics[split]) == {"before", "temperature", "after"}
        assert metrics[split]["before"]["entities"] == metrics[split]["after"]["entities"] > 0
        assert sum(b["entities"] for b in metrics[split]["after"]["bins"]) == metrics[split]["after"]["entities"]
    assert read_record(demo_run).calibration.temperature == metrics["temperature"]
    assert (demo_run / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The previous version's tiny model (tests/fixtures) with its ONNX export, made as
    tests/test_export.py makes the demo's: no training needed."""
    for package in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(package, reason="ONNX support is optional: pip install -r requirements-export.txt")
    import export

    model_dir = tmp_path_factory.mktemp("export") / "model"
    shutil.copytree(OLD_MODEL, model_dir)
    assert export.main(["--model", str(model_dir)]) == 0
    return model_dir


# The sentences the previous version's model was tagged on (tests/fixtures): ten entities, scored 0.39 to 0.996.
TEXTS = [json.loads(line)["text"] for line in (OLD_MODEL.parent / "model-v0.9.expected.jsonl").read_text().splitlines()]


def scores_of(tagged: list[list[dict]]) -> list[float]:
    return [entity["score"] for found in tagged for entity in found]


def spans_of(tagged: list[list[dict]]) -> list[list[tuple]]:
    return [[(entity["entity_group"], entity["start"], entity["end"]) for entity in found] for found in tagged]


def test_pytorch_and_onnx_give_the_same_calibrated_scores(exported, tmp_path):
    from bert_ner import Tagger

    model = tmp_path / "model"
    shutil.copytree(exported, model)
    texts = TEXTS
    plain = Tagger.load(str(model), device="cpu").tag(texts)
    write_record(model, dataclasses.replace(read_record(model), calibration=dataclasses.replace(CALIBRATION, threshold=None)))
    torch_tagged = Tagger.load(str(model), device="cpu").tag(texts)
    assert Tagger.load(str(model), backend="onnx").tag(texts) == torch_tagged
    assert spans_of(torch_tagged) == spans_of(plain) and sum(map(len, plain)) > 5  # the same entities, other scores
    assert scores_of(torch_tagged) != scores_of(plain)
    # From the raw scores as reported (4 decimals): the map's slope, at most 1.4, keeps them within 2e-4.
    expected = [CALIBRATION.score(s, kind, words) for s, kind, words in raw_scores(model, texts)]
    assert scores_of(torch_tagged) == pytest.approx(expected, abs=2e-4)


def test_known_entities_are_scored_by_their_own_map_in_every_backend(exported, tmp_path):
    from bert_ner import Tagger

    model = tmp_path / "model"
    shutil.copytree(exported, model)
    calibration = dataclasses.replace(KNOWN_CALIBRATION, threshold=None)
    write_record(model, dataclasses.replace(read_record(model), calibration=calibration))
    tagged = Tagger.load(str(model), device="cpu").tag(TEXTS)
    assert Tagger.load(str(model), backend="onnx").tag(TEXTS) == tagged
    expected = [calibration.score(s, kind, words) for s, kind, words in raw_scores(model, TEXTS)]
    assert scores_of(tagged) == pytest.approx(expected, abs=2e-4)
    reuters = [e["score"] for found in tagged for e in found if (e["entity_group"], e["word"]) == ("ORG", "Reuters")]
    assert len(reuters) >= 2 and min(reuters) >= 0.97  # the known map's floor
    assert min(e["score"] for found in tagged for e in found if e["word"] != "Reuters") < 0.97


def raw_scores(model, texts: list[str]) -> list[tuple[float, str, list[str]]]:
    """The entities' mean word probabilities at CALIBRATION's temperature, computed apart, with
    their types and words (the fixture's texts are words joined by spaces)."""
    from bert_ner import Tagger

    record = read_record(model)
    write_record(model, dataclasses.replace(record, calibration=Calibration(CALIBRATION.temperature)))
    found = [
        (e["score"], e["entity_group"], e["word"].split(" ")) for f in Tagger.load(str(model), device="cpu").tag(texts) for e in f
    ]
    write_record(model, record)
    return found


def test_the_recorded_threshold_drops_entities_unless_a_min_score_says_otherwise(exported, tmp_path):
    from bert_ner import Tagger

    model = tmp_path / "model"
    shutil.copytree(exported, model)
    write_record(model, dataclasses.replace(read_record(model), calibration=CALIBRATION))
    for backend in ("torch", "onnx"):
        tagger = Tagger.load(str(model), backend=backend, device="cpu")
        every = tagger.tag(TEXTS, min_score=0.0)
        assert tagger.threshold == 0.5 and min(scores_of(every)) < 0.5
        assert tagger.tag(TEXTS) == [[e for e in found if e["score"] >= 0.5] for found in every]
        assert tagger.tag(TEXTS, min_score=np.float32(0.5)) == tagger.tag(TEXTS)  # numpy's numbers too
        assert tagger.tag(TEXTS, min_score=np.int64(0)) == every


def test_infer_says_when_the_recorded_threshold_leaves_entities_out(exported, tmp_path, capsys):
    import infer

    model = tmp_path / "model"
    shutil.copytree(exported, model)
    write_record(model, dataclasses.replace(read_record(model), calibration=CALIBRATION))
    notes = []
    for extra in ([], ["--min-score", "0.5"], ["--min-score", "0"]):
        capsys.readouterr()
        assert infer.main(["--model", str(model), *extra, TEXTS[0]]) == 0
        notes.append([line for line in capsys.readouterr().err.splitlines() if line.startswith("note: entities")])
    said = (
        "note: entities scored below 0.5000 are left out (the threshold recorded with the model for precision 0.9 on validation)"
    )
    assert notes[0] == [said + "; --min-score 0 keeps them"] and notes[1] == notes[2] == []  # asked for: nothing to say
    write_record(model, dataclasses.replace(read_record(model), calibration=dataclasses.replace(CALIBRATION, threshold=None)))
    assert infer.main(["--model", str(model), TEXTS[0]]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"note: {model} was calibrated for precision 0.9, but no score reached it on validation, so it holds no threshold "
        "and every entity is kept"
    ]


@pytest.mark.parametrize(
    "calibration, min_score, said, floor, precision",
    [
        (CALIBRATION, [], "entities scored below 0.5000 are left out (the threshold recorded with the model", 0.5, 0.9),
        (CALIBRATION, ["--min-score", "0"], None, 0.0, None),
        (CALIBRATION, ["--min-score", "0.5"], None, 0.5, 0.9),  # the recorded threshold, given again
        (dataclasses.replace(CALIBRATION, threshold=None), [], "no score reached it on validation", 0.0, None),
    ],
)
def test_serve_says_what_the_recorded_threshold_leaves_out(calibration, min_score, said, floor, precision, tmp_path, caplog):
    import serve

    model = tmp_path / "model"
    shutil.copytree(OLD_MODEL, model)
    write_record(model, dataclasses.replace(read_record(model), calibration=calibration))
    with caplog.at_level(logging.INFO, logger="bert_ner"):
        served = serve.load_model(serve.parse_args(["--model", str(model), "--device", "cpu", *min_score]))
    notes = [record.getMessage() for record in caplog.records if "threshold" in record.getMessage()]
    assert notes == ([] if said is None else [next(note for note in notes if said in note)])
    assert served.info["min_score"] == floor and served.info["min_score_for_precision"] == precision


def test_infer_min_precision_keeps_the_entities_whose_scores_promise_it(exported, tmp_path, capsys):
    import infer
    from bert_ner import Tagger

    model = tmp_path / "model"
    shutil.copytree(exported, model)
    write_record(model, dataclasses.replace(read_record(model), calibration=CALIBRATION))
    every = Tagger.load(str(model), device="cpu").tag(TEXTS, min_score=0.0)
    scores = sorted(scores_of(every), reverse=True)
    precision = round(sum(scores[: len(scores) // 2]) / (len(scores) // 2), 3)  # about the better half's mean
    floor = estimated_threshold(scores, precision)
    chosen = [score for score in scores if score >= floor]
    assert 0 < len(chosen) < len(scores) and min(scores) < CALIBRATION.threshold  # a cut the recorded one would not make
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    capsys.readouterr()
    assert (
        infer.main(["--model", str(model), "--json", "--min-precision", str(precision), "--file", str(tmp_path / "texts.txt")])
        == 0
    )
    out, err = capsys.readouterr()
    assert [json.loads(line)["entities"] for line in out.splitlines()] == [
        [e for e in found if e["score"] >= floor] for found in every
    ]
    mean = sum(chosen) / len(chosen)
    assert err.splitlines() == [
        f"note: kept {len(chosen)} of {len(scores)} entities, those scored {floor:.4f} or more: their mean calibrated score, "
        f"the precision to expect on text like the model's validation data, is {mean:.4f}; --min-score {floor:.4f} applies "
        "this threshold elsewhere (serve.py, --ray)"
    ]
    assert infer.main(["--model", str(model), "--json", "--min-precision", "0.99999", TEXTS[0]]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["entities"] == [] and err.startswith("note: no entity kept: even the best-scored")
    assert infer.main(["--model", str(model), "--json", "--min-precision", "0.01", TEXTS[0]]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["entities"] == every[0]
    assert err.startswith(f"note: kept all {len(every[0])} entities: their mean calibrated score")
    assert "at least 0.01 without a threshold; --min-score 0 keeps every entity elsewhere (serve.py, --ray)" in err
    assert infer.main(["--model", str(model), "--json", "--min-precision", "0.9", "the cat sat"]) == 0
    assert capsys.readouterr().err == "note: no entity found, so none to keep\n"
    (tmp_path / "empty.txt").write_text("")
    page = tmp_path / "empty.html"
    args = ["--model", str(model), "--min-precision", "0.9", "--html", str(page), "--file", str(tmp_path / "empty.txt")]
    assert infer.main(args) == 0
    assert capsys.readouterr().err.splitlines() == [
        "note: the input holds no text, so there is no entity to keep",
        f"did not write {page}: no text was tagged",
    ]


def test_infer_min_precision_still_writes_what_was_tagged_before_a_bad_line(exported, tmp_path, capsys):
    import infer

    model = tmp_path / "model"
    shutil.copytree(exported, model)
    write_record(model, dataclasses.replace(read_record(model), calibration=CALIBRATION))
    texts, page = tmp_path / "texts.txt", tmp_path / "page.html"
    texts.write_bytes(("\n".join(TEXTS) + "\n").encode() + b"M\xfcnchen\n")
    capsys.readouterr()
    args = ["--model", str(model), "--json", "--min-precision", "0.5", "--html", str(page), "--file", str(texts)]
    assert infer.main(args) == 2
    out, err = capsys.readouterr()
    assert [json.loads(line)["text"] for line in out.splitlines()] == TEXTS
    lines = err.splitlines()
    assert lines[0] == f"note: stopped after {len(TEXTS)} texts; the threshold comes only from what was tagged"
    assert lines[1].startswith("note: kept ")
    assert lines[-2:] == [
        f"wrote {page} with the {len(TEXTS)} texts tagged before stopping",
        f"error: {texts}:{len(TEXTS) + 1}: not UTF-8 (byte 0xfc); re-save the file as UTF-8",
    ]
    assert "said on Tuesday that" in page.read_text()  # the first text, in the page


def test_infer_min_precision_still_writes_what_was_tagged_before_ctrl_c(exported, tmp_path, capsys, monkeypatch):
    import infer

    def typed_then_interrupted():
        yield from TEXTS
        raise KeyboardInterrupt

    model = tmp_path / "model"
    shutil.copytree(exported, model)
    write_record(model, dataclasses.replace(read_record(model), calibration=CALIBRATION))
    monkeypatch.setattr(infer, "input_texts", lambda args: (typed_then_interrupted(), True))
    monkeypatch.setattr("bert_ner.tagger.TEXTS_PER_CHUNK", 2)  # texts are read, then tagged, two at a time
    capsys.readouterr()
    assert infer.main(["--model", str(model), "--json", "--min-precision", "0.5"]) == 130
    out, err = capsys.readouterr()
    assert [json.loads(line)["text"] for line in out.splitlines()] == TEXTS[:4]  # those tagged before it
    assert err.splitlines()[0] == "note: stopped after 4 texts; the threshold comes only from what was tagged"
    assert err.splitlines()[-1] == "interrupted"


def test_min_precision_needs_calibrated_scores(capsys):
    import infer

    assert infer.main(["--model", str(OLD_MODEL), "--min-precision", "0.9", TEXTS[0]]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.endswith(
            "its entity scores are not calibrated, so they say nothing of precision; calibrate it "
            "(python bench/calibration.py --model DIR --train TRAIN --validation VALIDATION --test TEST "
            "--write NEW_DIR [--record-min-precision P]), or drop --min-precision for --min-score"
        )
        and "\n" not in err
    )


@pytest.mark.parametrize(
    "extra, said",
    [
        (["--min-precision", "0"], "--min-precision 0: give a precision above 0 and below 1"),
        (["--min-precision", "1.2"], "--min-precision 1.2: give a precision above 0 and below 1"),
        (["--min-precision", "1"], "--min-precision 1: give a precision above 0 and below 1 (any threshold keeps precision 0"),
        (["--min-precision", "0.9", "--min-score", "0.5"], "takes no --min-score and no --ray"),
        (["--min-precision", "0.9", "--ray", "--file", "x.txt", "--output", "out"], "takes no --min-score and no --ray"),
    ],
)
def test_min_precision_with_what_it_cannot_take_is_refused(extra, said, capsys):
    import infer

    with pytest.raises(SystemExit) as exit:
        infer.parse_args(["--model", str(OLD_MODEL), *extra])
    assert exit.value.code == 2 and said in capsys.readouterr().err


def test_the_model_card_says_what_a_score_is_and_its_threshold():
    from bert_ner.card import scoring

    assert scoring(ModelRecord()) == ""
    said = scoring(ModelRecord(calibration=CALIBRATION))
    assert (
        "temperature 1.7, then an isotonic map)" in said
        and "scored below 0.5000 are dropped unless `min_score` (`--min-score`, `--min-precision`)" in said
    )
    assert "validation's entities reach precision 0.9, by the rule of succession (what it keeps: Evaluation)" in said
    known = scoring(ModelRecord(calibration=dataclasses.replace(KNOWN_CALIBRATION, min_precision=0.9, threshold=0.5)))
    assert "maps for entities known from training and new ones" in known
    assert "validation's known and new entities each reach precision 0.9" in known
    unreached = ModelRecord(calibration=dataclasses.replace(CALIBRATION, min_precision=0.99, threshold=None))
    assert "No score reached precision 0.99 on validation, so no threshold was recorded: every entity is kept." in scoring(
        unreached
    )
    none_dropped = scoring(ModelRecord(calibration=dataclasses.replace(CALIBRATION, threshold=0.0)))
    assert "reach precision 0.9 without a threshold, so none is dropped" in none_dropped and "below" not in none_dropped


@pytest.mark.parametrize(
    "calibration, said",
    [
        (
            {
                "validation": {"threshold": {"threshold": 0.5433, "precision": 0.9578, "recall": 0.8632}},
                "test": {"threshold": {"threshold": 0.5433, "precision": 0.9327, "recall": 0.8074}},
            },
            "Dropping those scored below the recorded threshold, 0.5433, as inference does, gives precision 95.78 and "
            "recall 86.32 on validation, precision 93.27 and recall 80.74 on test.",
        ),
        ({"test": {"ece": 0.02}}, ""),  # no threshold
        ({"test": {"threshold": {"threshold": 0.0, "precision": 0.9, "recall": 0.9}}}, ""),  # drops nothing
    ],
)
def test_the_model_card_says_what_the_recorded_threshold_keeps(calibration, said):
    from bert_ner.card import thresholded

    assert said in thresholded({"calibration": {"temperature": 1.0, "bins": 10, **calibration}})
    assert bool(thresholded({"calibration": calibration})) == bool(said)


@pytest.mark.parametrize("min_score", [1.5, -1, float("nan"), "0.5", True])
def test_a_min_score_that_is_no_probability_is_refused_by_every_entry(min_score):
    from bert_ner import Tagger

    tagger = Tagger.load(str(OLD_MODEL), device="cpu")
    for call in (lambda: tagger(TEXTS[0], min_score=min_score), lambda: tagger.pipeline(TEXTS[0], min_score=min_score)):
        with pytest.raises(ValueError, match=r"min_score .* is not a probability \(0 to 1\); 0 keeps every entity"):
            call()


def test_the_calibrate_hint_makes_a_calibrated_copy_that_min_precision_reads(tmp_path, capsys, monkeypatch):
    """The command the hint names (bert_ner.record.CALIBRATE), on the tiny model and the demo's files."""
    import importlib.util
    import sys

    import infer

    bench = Path(__file__).resolve().parent.parent / "bench"
    monkeypatch.syspath_prepend(str(bench))
    import results

    monkeypatch.setattr(results, "REPO", tmp_path)
    monkeypatch.setattr(results, "RESULTS", tmp_path / "results")
    spec = importlib.util.spec_from_file_location("bench_calibration", bench / "calibration.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script, "WNUT", tmp_path / "none.txt")  # no cross-domain set: tests never read ../shared
    demo = bench.parent / "data" / "demo"
    files = ["--train", demo / "train.txt", "--validation", demo / "valid.txt", "--test", demo / "test.txt"]
    calibrated = tmp_path / "calibrated"

    def calibrate(*extra) -> int:
        argv = ["calibration.py", "--model", OLD_MODEL, *files, *extra]
        monkeypatch.setattr(sys, "argv", [str(arg) for arg in argv])
        with pytest.raises(SystemExit) as done:
            script.main()
        return done.value.code

    capsys.readouterr()
    assert calibrate("--write", calibrated) == 0
    said, progress = capsys.readouterr()
    assert f"no WNUT-17 test set at {tmp_path / 'none.txt'}: measuring on CoNLL alone" in progress
    assert f"tagging {demo / 'test.txt'} (" in progress  # each step said as it starts
    assert "test: entity ECE " in said and "min precision 0.9, estimated threshold " in said  # figures, not only a path
    recorded = read_record(calibrated).calibration
    assert recorded.points is not None and recorded.threshold is None  # none asked: every entity kept
    assert said.rstrip().endswith(f"calibrated copy in {calibrated}")
    assert not (tmp_path / "results").exists()  # figures are recorded only with --machine
    with_threshold = ["--write", tmp_path / "with-threshold", "--record-min-precision", "0.5", "--machine", "a test"]
    assert calibrate(*with_threshold) == 0
    recorded = read_record(tmp_path / "with-threshold").calibration
    assert recorded.min_precision == 0.5
    said = capsys.readouterr().out.rstrip().splitlines()
    assert said[-1] == f"calibrated copy in {tmp_path / 'with-threshold'}" + script.recorded_note(0.5, recorded.threshold)
    assert any(line.startswith("min precision 0.5") for line in said)  # what the recorded precision keeps
    for threshold, said in [
        (0.61234, ", dropping entities scored below 0.6123 (precision 0.5 on validation)"),
        (0.0, ", with threshold 0: the validation entities reach precision 0.5 without one, so none is dropped"),
        (None, ", with no threshold: no score keeps precision 0.5 on validation, so every entity is kept"),
    ]:
        assert script.recorded_note(0.5, threshold) == said
    kept = {"threshold": 0.0, "precision": 0.9512, "recall": 0.8}
    for row, said in [
        (
            {"min_precision": 0.9, "threshold": 0.5, "test": kept | {"threshold": 0.5}, "test_estimated": kept},
            [
                "min precision 0.9, validation threshold 0.5000 on test: precision 95.12, recall 80.00",
                "min precision 0.9, estimated no threshold needed on test: precision 95.12, recall 80.00",
            ],
        ),
        (
            {"min_precision": 0.999, "threshold": None, "test_estimated": None, "wnut17_test_estimated": kept},
            [
                "min precision 0.999: no validation threshold reaches it (by the rule of succession)",
                "min precision 0.999, estimated no threshold needed on wnut17_test: precision 95.12, recall 80.00",
            ],
        ),
    ]:
        assert script.threshold_lines(row) == said
    for extra, said in [
        (["--write", calibrated], f"--write {calibrated}: it exists; name a new directory"),
        (["--min-precision", "0.9", "1.5"], "precision 1.5: --min-precision and --record-min-precision take a precision"),
        (["--write", tmp_path / "sure", "--record-min-precision", "1"], "precision 1: --min-precision and"),
        (["--record-min-precision", "0.9"], "give --write DIR too"),
        (["--wnut", tmp_path / "none.txt"], f"--wnut {tmp_path / 'none.txt'}: no such file"),
        (["--model", tmp_path / "absent"], f"--model {tmp_path / 'absent'}: no such directory"),
    ]:
        assert calibrate(*extra) == 2 and said in capsys.readouterr().err
    recorded_result = json.loads((tmp_path / "results" / f"calibration-{OLD_MODEL.name}.json").read_text())
    assert recorded_result["machine"] == "a test" and recorded_result["figures"]["test"]
    capsys.readouterr()
    assert infer.main(["--model", str(calibrated), "--json", "--min-precision", "0.5", TEXTS[0]]) == 0
    assert capsys.readouterr().err.startswith("note: ")
