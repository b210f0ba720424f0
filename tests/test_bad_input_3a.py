"""The third round of bad inputs (issue 28), span files and config: shifted offsets never become
labels, what annotation tools really export is read (or named for what it is), every bad span is
reported at once, and config files and paths mean what they say."""

import json
import os

import pytest

from bert_ner.checkpoints import partial_dir, previous_dir, publish, recover
from bert_ner.config import load_config, parse_override, parse_yaml
from bert_ner.data import TAGS, case_variants, read_spans
from bert_ner.errors import UserError
from tests.conftest import SCRATCH, config_error

# ---------------------------------------------------------------------------------------------
# Span offsets counted in UTF-16 code units (doccano, Label Studio before 2022, JavaScript tools)

EMOJI = "😀😀 Samuel Adeyemi told Reuters about Vienna ."  # each 😀 is 1 code point, 2 UTF-16 code units
IN_UTF16 = [[5, 19, "PER"], [25, 32, "ORG"], [39, 45, "LOC"]]  # the issue's record, as doccano writes it
IN_CODE_POINTS = [[3, 17, "PER"], [23, 30, "ORG"], [37, 43, "LOC"]]
EMOJI_TAGS = [["O", "B-PER", "I-PER", "O", "B-ORG", "O", "B-LOC", "O"]]


def write_lines(path, records):
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    return path


def spans_error(path, **options) -> str:
    with pytest.raises(UserError) as error:
        read_spans(path, **options)
    return str(error.value)


@pytest.mark.parametrize(
    "entities, unit, expected",
    [
        (IN_CODE_POINTS, "code_points", EMOJI_TAGS),
        (IN_UTF16, "utf16", EMOJI_TAGS),
        (IN_UTF16, "code_points", "the spans fit whole words only when counted in UTF-16 code units (as doccano and "),
        (IN_CODE_POINTS, "utf16", "the spans fit whole words only when counted in code points (as Python counts)"),
        # data.widen_spans would make "Samuel Adeyemi told" a PER: shifted offsets are refused all the same
        (IN_UTF16, "code_points", "set data.span_offsets: utf16"),
        ([[5, 19, "PER"]], "code_points", "set data.span_offsets: utf16"),  # the first span is never taken alone
        ([[1, 6, "PER"]], "utf16", "it lies outside the text"),  # inside a surrogate pair: no character boundary
    ],
)
@pytest.mark.parametrize("widen", [False, True])
def test_offsets_are_read_in_the_unit_given_and_shifted_ones_are_named(tmp_path, entities, unit, expected, widen):
    path = write_lines(tmp_path / "doccano.jsonl", [{"text": EMOJI, "label": entities}])
    if isinstance(expected, list):
        assert read_spans(path, widen=widen, unit=unit)[TAGS] == expected
    else:
        message = spans_error(path, widen=widen, unit=unit)
        assert expected in message and "widen_spans" not in message, message


def test_a_span_cut_after_an_emoji_is_not_told_to_widen(tmp_path):
    """Neither unit fits, but the offsets may be shifted otherwise (doccano's grapheme clusters):
    widening is not what the message suggests."""
    path = write_lines(tmp_path / "doccano.jsonl", [{"text": EMOJI, "label": [[3, 17, "PER"], [24, 30, "ORG"]]}])
    message = spans_error(path)
    assert "span [24, 30, 'ORG'] ('euters') starts inside the word 'Reuters'; fix the span (or data.span_offsets" in message
    assert "widen_spans" not in message


def test_an_unknown_offset_unit_is_a_config_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("data:\n  span_offsets: bytes\n")
    with pytest.raises(UserError, match="data.span_offsets: 'bytes' is not one of code_points, utf16"):
        load_config(path)


def label_studio_task(text, results, data_key="text", task_id=1):
    return {"id": task_id, "data": {data_key: text, "meta": "x"}, "annotations": [{"id": 7, "result": results}]}


def region(start, end, label, text=None, from_name="label", to_name="text"):
    value = {"start": start, "end": end, "labels": [label]}
    if text is not None:
        value["text"] = text
    return {"from_name": from_name, "to_name": to_name, "type": "labels", "value": value}


@pytest.mark.parametrize(
    "text, results, expected",
    [
        # value.text says what the span covers: code points that fit it are taken
        (EMOJI, [region(s, e, label, EMOJI[s:e]) for s, e, label in IN_CODE_POINTS], EMOJI_TAGS),
        # Label Studio before 2022 counted UTF-16: value.text shows the offsets are shifted
        (
            EMOJI,
            [region(s, e, label, EMOJI[s2:e2]) for (s, e, label), (s2, e2, _) in zip(IN_UTF16, IN_CODE_POINTS)],
            "set data.span_offsets: utf16",
        ),
        # whole words, but not the words value.text names: never a label
        ("Anna sang .", [region(0, 4, "PER", "Oslo")], "span [0, 4, 'PER'] covers 'Anna', but the file says it covers 'Oslo'"),
    ],
)
def test_label_studio_value_text_is_checked_against_the_text(tmp_path, text, results, expected):
    path = tmp_path / "export.json"
    path.write_text(json.dumps([label_studio_task(text, results)]), encoding="utf-8")
    if isinstance(expected, list):
        assert read_spans(path)[TAGS] == expected
    else:
        assert expected in spans_error(path)


# ---------------------------------------------------------------------------------------------
# What Label Studio really exports, and the other shapes

TEXT = "Anna Schmidt flew to Paris ."
TAGGED = [["B-PER", "I-PER", "O", "O", "B-LOC", "O"]]


def per_region(kind, start, end):
    """A per-region TextArea or Choices result: the same start and end as a label, no labels."""
    value = {"start": start, "end": end, **({"text": ["a note"]} if kind == "textarea" else {"choices": ["sure"]})}
    return {"from_name": f"{kind}_per_region", "to_name": "text", "type": kind, "value": value}


@pytest.mark.parametrize(
    "task, taken",
    [
        (label_studio_task(TEXT, [region(0, 12, "PER"), per_region("textarea", 0, 12), region(21, 26, "LOC")]), "'label'"),
        (label_studio_task(TEXT, [region(0, 12, "PER"), per_region("choices", 0, 12), region(21, 26, "LOC")]), "'label'"),
        # two label sets on one text: read together
        (
            label_studio_task(TEXT, [region(0, 12, "PER", from_name="people"), region(21, 26, "LOC", from_name="places")]),
            "'people', 'places'",
        ),
        # a text field not called text: the one the results name (to_name)
        (
            label_studio_task(TEXT, [region(0, 12, "PER", to_name="body"), region(21, 26, "LOC", to_name="body")], "body"),
            "data.body",
        ),
        # ... or the one value.text fits
        (
            label_studio_task(
                TEXT, [region(0, 12, "PER", "Anna Schmidt", to_name="t"), region(21, 26, "LOC", "Paris", to_name="t")], "body"
            ),
            "data.body",
        ),
    ],
)
def test_label_studio_exports_as_ner_projects_write_them(tmp_path, caplog, task, taken):
    caplog.set_level("INFO", logger="bert_ner")
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task]))
    assert read_spans(path)[TAGS] == TAGGED
    assert "Label Studio JSON export: labels from_name" in caplog.text and taken in caplog.text


def test_labels_over_two_texts_are_refused_naming_them(tmp_path):
    task = {
        "id": 3,
        "data": {"title": "Oslo", "body": TEXT},
        "annotations": [{"result": [region(0, 4, "LOC", to_name="title"), region(0, 12, "PER", to_name="body")]}],
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task]))
    assert "task 3: labels over several texts (to_name body, title)" in spans_error(path)


def json_min(task_id, annotation_id, **labels):
    record = {
        "text": TEXT,
        "id": task_id,
        "annotator": 1,
        "annotation_id": annotation_id,
        "created_at": "2024-01-01",
        "lead_time": 3.2,
    }
    return {**record, **labels}


def test_label_studio_json_min_is_read(tmp_path, caplog):
    caplog.set_level("INFO", logger="bert_ner")
    regions = [
        {"start": 0, "end": 12, "text": "Anna Schmidt", "labels": ["PER"]},
        {"start": 21, "end": 26, "text": "Paris", "labels": ["LOC"]},
    ]
    records = [
        json_min(1, 10, label=regions, sentiment="Positive"),
        json_min(1, 11, label=regions[:1]),  # a second annotation of task 1: left out, counted
        json_min(2, None),  # not annotated
    ]
    path = tmp_path / "min.json"
    path.write_text(json.dumps(records))
    assert read_spans(path)[TAGS] == TAGGED
    assert "Label Studio JSON-MIN export: labels from_name 'label' over the field text" in caplog.text
    assert "1 more annotations of tasks already read were left out" in caplog.text
    assert "1 tasks have no annotation" in caplog.text


@pytest.mark.parametrize("layout", ["array", "lines"])
def test_spacy_v2_train_data_is_read(tmp_path, layout):
    data = [[TEXT, {"entities": [[0, 12, "PER"], [21, 26, "LOC"]]}]]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(data) if layout == "array" else json.dumps(data[0]) + "\n")
    assert read_spans(path)[TAGS] == TAGGED


@pytest.mark.parametrize(
    "content, message",
    [
        ([[TEXT, {"ents": []}]], 'spaCy v2 TRAIN_DATA needs [text, {"entities": [[start, end, label], ...]}]'),
        ([{"name": "x"}], "item 0: found name; expected "),
        ([42], "item 0: found a int; expected "),
    ],
)
def test_an_unknown_shape_is_named_without_calling_it_a_label_studio_task(tmp_path, content, message):
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(content))
    error = spans_error(path)
    assert message in error and "Label Studio task" not in error.split("expected")[0]


# ---------------------------------------------------------------------------------------------
# Every bad span at once


def test_every_bad_span_is_reported_at_once(tmp_path):
    path = write_lines(
        tmp_path / "bad.jsonl",
        [
            {"text": TEXT, "entities": [[0, 3, "PER"], [21, 26, "LOC"], [21, 99, "LOC"]]},
            {"text": "Oslo won .", "entities": [[0, 4, "B-LOC"]]},
        ],
    )
    lines = spans_error(path).splitlines()
    assert [line.split(": span ")[0] for line in lines] == [f"{path}:1", f"{path}:1", f"{path}:2"], lines


def test_many_bad_spans_are_counted_past_the_first_twenty(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", [{"text": "Oslo won .", "entities": [[0, 3, "LOC"]]}] * 25)
    lines = spans_error(path).splitlines()
    assert len(lines) == 21 and lines[-1] == "... and 5 more bad spans"


# ---------------------------------------------------------------------------------------------
# Entity types that differ only in case


@pytest.mark.parametrize(
    "tags, expected",
    [
        ([["B-PRODUCT", "O"], ["B-Product", "I-Product"]], [("PRODUCT", "Product")]),
        ([["B-PER"], ["B-LOC"]], []),
        ([["B-per", "B-PER", "B-Per"]], [("PER", "Per")]),
    ],
)
def test_case_variants(tags, expected):
    assert case_variants(tags) == expected


def test_a_type_differing_only_in_case_is_refused_in_one_line(tmp_path, capsys):
    from train import main as train

    train_file = tmp_path / "train.txt"
    train_file.write_text("Acme B-PRODUCT\nsold O\n\nAcme B-Product\nsold O\n")
    out = tmp_path / "out"
    assert train(["--config", SCRATCH, f"data.train_file={train_file}", f"training.output_dir={out}"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "the entity types 'PRODUCT' and 'Product' differ only in case" in errors[0], errors


# ---------------------------------------------------------------------------------------------
# Config files: duplicate keys, YAML 1.1 surprises, paths


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "training:\n  output_dir: runs/a\nmodel:\n  scratch: {}\ntraining:\n  seed: 1\n",
            "config.yaml:5: 'training' is given twice in one mapping (first on line 1); keep one",
        ),
        ("training:\n  seed: 1\n  seed: 2\n", "config.yaml:3: 'seed' is given twice in one mapping (first on line 2)"),
        ("data:\n  label_map: {a: PER, a: LOC}\n", "config.yaml:2: 'a' is given twice"),
        ("training:\n  output_dir:\n", "training.output_dir: is empty; name the directory for the model (e.g. bert-ner)"),
        ("training:\n  output_dir: ''\n", "training.output_dir: is empty"),
        ("training:\n  output_dir: ~\n", "training.output_dir: is empty"),  # a bare ~ is YAML's null
        (
            "training:\n  output_dir: $BERT_NER_UNSET_28/run\n",
            "training.output_dir: '$BERT_NER_UNSET_28/run' names $BERT_NER_UNSET_28, which is not set",
        ),
        ("model:\n  revision: 1.0\n", "model.revision: 1.0 is not a string (YAML reads it as a number); write it in quotes"),
        ("data:\n  label_all_tokens: yes\n", "data.label_all_tokens: 'yes' is not true or false"),
        ("data:\n  tokens_column: true\n", "data.tokens_column: True is not a string (YAML reads it as true or false)"),
    ],
)
def test_config_file_surprises_are_named(tmp_path, text, message):
    assert message in config_error(tmp_path, text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a: no", {"a": "no"}),  # YAML 1.1 read false: `eval_strategy: no`, a type named NO
        ("a: off", {"a": "off"}),
        ("a: True", {"a": True}),
        ("a: 1e-5", {"a": 1e-5}),
        ("a: 1:30", {"a": "1:30"}),  # not sixty-based 90
        ("a: 010", {"a": "010"}),  # not octal 8
        ("a: 0x10", {"a": 16}),
        ("b: &b {x: 1}\nc:\n  <<: *b\n  x: 2", {"b": {"x": 1}, "c": {"x": 2}}),  # a merge key is not a duplicate
    ],
)
def test_yaml_values_read_as_yaml_1_2(text, expected):
    assert parse_yaml(text, "t") == expected


def test_eval_strategy_no_is_the_word_no(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("training:\n  eval_strategy: no\n  save_strategy: no\n  load_best_model_at_end: false\n")
    assert load_config(path).training["eval_strategy"] == "no"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.label_map={a: B, a: C}"], "override 'data.label_map={a: B, a: C}':1: 'a' is given twice"),
        (["training.output_dir="], "training.output_dir: is empty"),  # `training.output_dir=$OUT`, $OUT unset
    ],
)
def test_override_surprises_are_named(tmp_path, overrides, message):
    assert message in config_error(tmp_path, "{}", overrides)


@pytest.mark.parametrize(
    "overrides, expected, said",
    [
        (["training.seed=1", "training.seed=2"], ("training", "seed", 2), "training.seed replaces the earlier training.seed"),
        (
            ["data.label_map={a: B}", "data.label_map.a=C"],
            ("data", "label_map", {"a": "C"}),
            "replaces the earlier data.label_map",
        ),
    ],
)
def test_the_later_of_two_overrides_wins_and_says_so(overrides, expected, said, caplog):
    caplog.set_level("INFO", logger="bert_ner")
    cfg = load_config(SCRATCH, overrides)
    section, key, value = expected
    got = getattr(cfg, section)
    assert (got[key] if isinstance(got, dict) else getattr(got, key)) == value
    assert said in caplog.text


def test_home_and_variables_are_expanded_in_every_path_key_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("BERT_NER_DATA_28", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    for name in ("train.txt", "valid.txt"):
        (tmp_path / "data" / name).write_text("Anna B-PER\n")
    cfg = load_config(
        SCRATCH,
        [
            "training.output_dir=~/run",
            "data.train_file=${BERT_NER_DATA_28}/train.txt",
            "data.validation_file=$BERT_NER_DATA_28/valid.txt",
        ],
    )
    assert cfg.training["output_dir"] == str(tmp_path / "run")
    assert cfg.data.train_file == str(tmp_path / "data/train.txt")
    assert cfg.data.validation_file == str(tmp_path / "data/valid.txt")
    assert parse_override("training.output_dir=~/run")[1] == "~/run"  # the override itself is plain YAML


# ---------------------------------------------------------------------------------------------
# A symlinked output_dir


def test_a_symlinked_output_dir_is_published_into_its_target(tmp_path):
    """bert-ner/ linked to a bigger disk: the new model goes into the target, the link stays a link,
    and the working directories sit beside the target (one filesystem, so the renames are atomic)."""
    target = tmp_path / "big" / "bert-ner"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("old")
    link = tmp_path / "bert-ner"
    link.symlink_to(target)
    partial = partial_dir(link)
    assert partial.parent == target.parent and previous_dir(link).parent == target.parent
    partial.mkdir()
    (partial / "new.txt").write_text("new")
    publish(link, partial)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["bert-ner"]

    # killed between publish's two renames: recover puts the previous output back into the target
    target.rename(previous_dir(link))
    recover(link)
    assert link.is_symlink() and (target / "new.txt").read_text() == "new"


def test_a_symlinked_output_dir_trains_and_publishes_into_its_target(tmp_path):
    from train import main as train

    target = tmp_path / "disk" / "model"
    target.mkdir(parents=True)
    link = tmp_path / "bert-ner"
    link.symlink_to(target)
    quick = ["training.num_train_epochs=1", "data.max_train_samples=32", "data.max_eval_samples=8", "data.max_test_samples=8"]
    assert train(["--config", SCRATCH, *quick, f"training.output_dir={link}"]) == 0
    assert link.is_symlink() and (target / "model.safetensors").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]
