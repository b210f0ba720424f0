"""The saved model's record: written once by train.py, read by every entry point (bert_ner.record)."""

import dataclasses
import json
import shutil

import pytest

from bert_ner.errors import UserError
from bert_ner.outputs import RECORD_FILE, RESOLVED_CONFIG_FILE
from bert_ner.record import ModelRecord, parse_record, read_record, write_record
from tests.conftest import REPO

OLD_MODEL = REPO / "tests/fixtures/model-v0.9"  # a model saved by bert-ner before the record existed


@pytest.mark.parametrize(
    "record, version",
    [
        (ModelRecord(max_length=128, context_tokens=64, viterbi=False), 1),
        # words a version-1 bert-ner would split otherwise: it must refuse them, not misread them
        (ModelRecord(word_rules="characters"), 2),
        (ModelRecord(language="zh"), 2),
    ],
)
def test_a_record_reads_back_as_written_in_the_oldest_version_that_holds_it(tmp_path, record, version):
    write_record(tmp_path, record)
    assert read_record(tmp_path) == record
    assert json.loads((tmp_path / RECORD_FILE).read_text())["version"] == version


def test_a_version_1_record_of_characters_still_reads():
    """Written so before version 2 said so."""
    text = '{"format": "bert-ner model record", "version": 1, "word_rules": "characters", "language": "zh"}'
    assert parse_record(text, "m/bert_ner.json") == ModelRecord(word_rules="characters", language="zh")


@pytest.mark.parametrize(
    "saved, max_length, viterbi, context",
    [
        ("data:\n  max_length: 64\n  viterbi: false\n  context_tokens: 0\n", 64, False, 0),
        ("data:\n  max_length: 64\n  context_tokens: 128\n", 64, True, 128),
        # an older model: keys it lacks take the defaults (viterbi), or what they meant before they
        # existed: context_tokens came in at 0 (sentences alone) and became 128 later
        ("data:\n  max_length: null\n", None, True, 0),
        ("data:\n  max_length: 32\n  a_key_from_a_newer_version: 1\n", 32, True, 0),
        ("model:\n  name_or_path: x\n", None, True, 0),
    ],
)
def test_a_model_saved_before_the_record_is_read_from_its_run_config(tmp_path, saved, max_length, viterbi, context):
    (tmp_path / RESOLVED_CONFIG_FILE).write_text(saved)
    record = read_record(tmp_path)
    assert (record.max_length, record.viterbi, record.context_tokens) == (max_length, viterbi, context)


def test_a_model_that_says_nothing_is_read_as_sentences_alone_with_viterbi(tmp_path):
    assert read_record(tmp_path) == ModelRecord(max_length=None, context_tokens=0, viterbi=True)


def test_the_record_wins_over_the_run_config(tmp_path):
    (tmp_path / RESOLVED_CONFIG_FILE).write_text("data:\n  context_tokens: 128\n")
    write_record(tmp_path, ModelRecord(context_tokens=0))
    assert read_record(tmp_path).context_tokens == 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("{", "not a bert-ner model record"),
        ('{"version": 1}', "not a bert-ner model record"),
        ('{"format": "bert-ner model record", "version": 4}', "written by a newer bert-ner"),  # this one reads 3
        ('{"format": "bert-ner model record", "version": 1, "context_tokens": -1}', "context_tokens -1 is not 0 or more"),
        ('{"format": "bert-ner model record", "version": 1, "word_rules": "spaces"}', "word_rules 'spaces' is not one of"),
    ],
)
def test_a_damaged_or_newer_record_is_a_one_line_error(text, message):
    with pytest.raises(UserError, match=message):
        parse_record(text, "bert_ner.json")


def test_unknown_keys_of_the_same_version_are_skipped():
    text = '{"format": "bert-ner model record", "version": 1, "context_tokens": 8, "from_a_later_patch": true}'
    assert parse_record(text, "x").context_tokens == 8


def test_train_writes_the_record_of_what_it_trained_and_scored(demo_run):
    record = read_record(demo_run)
    assert dataclasses.replace(record, calibration=None) == ModelRecord(max_length=128, context_tokens=0, viterbi=True)
    assert record.calibration is not None and record.calibration.threshold is None  # fitted on validation; no precision asked


def test_a_model_saved_by_the_previous_version_loads_and_tags_as_before(tmp_path):
    """The fixture is a tiny model saved by bert-ner 0.9 (no record, a train_config.yaml), with the
    entities that version's infer.py --json gave for its sentences."""
    from bert_ner import Tagger

    model = tmp_path / "old"
    shutil.copytree(OLD_MODEL, model)
    expected = [json.loads(line) for line in (OLD_MODEL.parent / "model-v0.9.expected.jsonl").read_text().splitlines()]
    tagger = Tagger.load(str(model), device="cpu")
    assert tagger.record == ModelRecord(max_length=None, context_tokens=0, viterbi=True)
    assert [{"text": r["text"], "entities": tagger.tag([r["text"]])[0]} for r in expected] == expected
