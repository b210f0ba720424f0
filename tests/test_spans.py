"""Character-span files from annotation tools become the words and IOB2 tags train.py reads (bert_ner.spans)."""

import json

import pytest

from bert_ner.data import DOCUMENT, TAGS, TOKENS, read_conll, read_spans
from bert_ner.errors import UserError
from bert_ner.words import spans as tag_spans
from tests.conftest import REPO, SCRATCH
from train import main as train

TEXT = "Anna Schmidt flew to Paris. She met Reuters there."
EXPECTED = {
    TOKENS: [["Anna", "Schmidt", "flew", "to", "Paris", "."], ["She", "met", "Reuters", "there", "."]],
    TAGS: [["B-PER", "I-PER", "O", "O", "B-LOC", "O"], ["O", "O", "B-ORG", "O", "O"]],
    DOCUMENT: [0, 0],
}
SPANS = [[0, 12, "PER"], [21, 26, "LOC"], [36, 43, "ORG"]]


def write_lines(path, records) -> str:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(path)


@pytest.mark.parametrize(
    "shape, content",
    [
        ("bert-ner", [{"text": TEXT, "entities": SPANS}]),
        ("doccano", [{"id": 7, "text": TEXT, "label": SPANS}]),
        ("spacy", [{"text": TEXT, "ents": [{"start": s, "end": e, "label": label} for s, e, label in SPANS], "tokens": []}]),
        ("prodigy", [{"text": TEXT, "spans": [{"start": s, "end": e, "label": label} for s, e, label in SPANS]}]),
    ],
)
def test_each_tools_shape_reads_as_the_same_words_and_tags(tmp_path, shape, content):
    path = tmp_path / f"{shape}.jsonl"
    write_lines(path, content)
    assert read_spans(path) == EXPECTED


def test_label_studio_export_reads_as_the_same_words_and_tags(tmp_path):
    result = [{"type": "labels", "value": {"start": s, "end": e, "text": TEXT[s:e], "labels": [label]}} for s, e, label in SPANS]
    task = {"id": 42, "data": {"text": TEXT}, "annotations": [{"id": 1, "result": result}]}
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task], indent=2))
    assert read_spans(path) == EXPECTED


def test_each_record_is_a_document(tmp_path):
    path = tmp_path / "two.jsonl"
    write_lines(path, [{"text": TEXT, "entities": SPANS}, {"text": "Oslo won .", "entities": [[0, 4, "LOC"]]}])
    assert read_spans(path)[DOCUMENT] == [0, 0, 1]


def test_a_span_across_a_sentence_break_keeps_its_sentences_together(tmp_path):
    """The splitter ends a sentence after "Jr." here (and makes its period a word); the annotated
    entity says the sentence goes on."""
    text = "Acme Jr. Holdings rose."
    path = tmp_path / "one.jsonl"
    write_lines(path, [{"text": text, "entities": [[0, 17, "ORG"]]}])
    rows = read_spans(path)
    assert rows[TOKENS] == [["Acme", "Jr", ".", "Holdings", "rose", "."]]
    assert rows[TAGS] == [["B-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "O"]]


@pytest.mark.parametrize(
    "entities, message",
    [
        ([[0, 3, "PER"]], "span [0, 3, 'PER'] ('Ann') ends inside the word 'Anna'; fix the span, or set data.widen_spans: true"),
        ([[0, 99, "PER"]], "span [0, 99, 'PER']: it lies outside the text (0 to 50)"),
        ([[5, 5, "PER"]], "span [5, 5, 'PER']: it is empty"),
        ([[0, 12, "PER"], [5, 26, "LOC"]], "span [5, 26, 'LOC'] overlaps span [0, 12, 'PER']; entities here are flat"),
        ([[0, 4, 7]], "span [0, 4, 7]: its label is not a non-empty string"),
        ([[0, 4, "B-PER"]], "its label 'B-PER' is not an entity type name (no B-/I- prefix, not O, no spaces)"),
        ([[0, 4, "O"]], "its label 'O' is not an entity type name"),
        ([[0, 12, "Person Name"]], "its label 'Person Name' is not an entity type name"),
        ([[1, 12, "PER"]], "span [1, 12, 'PER'] ('nna Schmidt') starts inside the word 'Anna'"),
        ([[0, 4.5, "PER"]], "start and end must be whole numbers"),
        ([[4, 5, "PER"]], "span [4, 5, 'PER'] covers no word (' ')"),
        ([["a", 4]], "'entities' must be a list of [start, end, label] triples"),
    ],
)
def test_a_bad_span_is_an_error_naming_its_line_and_the_span(tmp_path, entities, message):
    path = tmp_path / "bad.jsonl"
    write_lines(path, [{"text": "Oslo won .", "entities": []}, {"text": TEXT, "entities": entities}])
    with pytest.raises(UserError) as error:
        read_spans(path)
    assert str(error.value).startswith(f"{path}:2: ") and message in str(error.value)


def test_a_label_studio_task_is_named_by_its_id(tmp_path):
    task = {"id": 42, "data": {"text": TEXT}, "annotations": [{"result": [{"value": {"start": 0, "end": 3, "labels": ["PER"]}}]}]}
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task]))
    with pytest.raises(UserError, match=r"export.json: task 42: span \[0, 3, 'PER'\]"):
        read_spans(path)


def test_an_unknown_shape_names_the_file_and_the_keys_it_found(tmp_path):
    path = tmp_path / "odd.jsonl"
    write_lines(path, [{"text": TEXT, "annotations": []}])
    with pytest.raises(UserError, match=r"odd.jsonl:1: no entities: .*found text, annotations"):
        read_spans(path)


def test_widen_spans_widens_to_whole_words_and_counts_them(tmp_path, caplog):
    path = tmp_path / "ragged.jsonl"
    write_lines(path, [{"text": TEXT, "entities": [[1, 10, "PER"], [21, 25, "LOC"]]}])
    caplog.set_level("WARNING", logger="bert_ner")
    assert read_spans(path, widen=True)[TAGS] == [EXPECTED[TAGS][0], ["O"] * 5]
    assert "2 spans started or ended inside a word and were widened to whole words" in caplog.text


def conll_as_spans(conll, path):
    """The CoNLL sentences as span records: the words joined by spaces, each entity a span."""
    rows = read_conll(conll)
    records = []
    for words, tags in zip(rows[TOKENS], rows[TAGS]):
        starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
        entities = [[starts[first], starts[end - 1] + len(words[end - 1]), kind] for kind, first, end in tag_spans(tags)]
        records.append({"text": " ".join(words), "entities": entities})
    return write_lines(path, records)


def test_a_span_file_trains_to_the_same_scores_as_the_conll_files(tmp_path):
    """The demo's CoNLL sentences written as span records: the same words, tags and test F1."""
    files = {
        split: conll_as_spans(REPO / f"data/demo/{split}.txt", tmp_path / f"{split}.jsonl")
        for split in ("train", "valid", "test")
    }
    for split, path in files.items():
        conll = read_conll(REPO / f"data/demo/{split}.txt")
        rows = read_spans(tmp_path / f"{split}.jsonl")
        assert rows[TOKENS] == conll[TOKENS] and rows[TAGS] == conll[TAGS], split
    quick = ["training.num_train_epochs=3", "data.max_eval_samples=64", "data.max_test_samples=64"]
    scores = {}
    for name, data in {
        "conll": [],
        "spans": [
            f"data.train_file={files['train']}",
            f"data.validation_file={files['valid']}",
            f"data.test_file={files['test']}",
        ],
    }.items():
        assert train(["--config", SCRATCH, *quick, *data, f"training.output_dir={tmp_path / name}"]) == 0
        scores[name] = json.loads((tmp_path / name / "metrics.json").read_text())["test"]
    assert scores["conll"]["f1"] > 0.1 and scores["spans"] == scores["conll"]


def test_a_bad_span_in_a_training_file_exits_2_in_one_line(tmp_path, capsys):
    path = tmp_path / "train.jsonl"
    write_lines(path, [{"text": TEXT, "entities": [[0, 3, "PER"]]}])
    assert train(["--config", SCRATCH, f"data.train_file={path}", f"training.output_dir={tmp_path / 'out'}"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{path}:1: span [0, 3, 'PER']" in errors[0]


# ---------------------------------------------------------------------------------------------
# infer.py --format: predictions back to the tools

LINES = ["Anna Schmidt flew to Paris .", "", "Reuters said so on Tuesday ."]


def infer_format(capsys, model_dir, name: str, *extra) -> str:
    from infer import main as infer

    assert infer(["--model", str(model_dir), "--format", name, *extra, *LINES]) == 0
    return capsys.readouterr().out


def test_jsonl_is_what_json_writes(demo_run, capsys):
    from infer import main as infer

    assert infer(["--model", str(demo_run), "--json", *LINES]) == 0
    written = capsys.readouterr().out
    assert written == infer_format(capsys, demo_run, "jsonl")


def test_spans_round_trip_through_train_py(demo_run, capsys, tmp_path):
    """A span file -> infer.py --format spans -> train.py's reader: the same entities."""
    found = [json.loads(line) for line in infer_format(capsys, demo_run, "jsonl").splitlines()]
    path = tmp_path / "predicted.jsonl"
    path.write_text(infer_format(capsys, demo_run, "spans"))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["text"] for r in records] == LINES
    assert [[[e["start"], e["end"], e["entity_group"]] for e in f["entities"]] for f in found] == [r["entities"] for r in records]
    assert sum(map(len, (r["entities"] for r in records))) > 0
    rows = read_spans(path)  # blank lines hold no sentence
    written = [(label, r["text"][start:end]) for r in records for start, end, label in r["entities"]]
    read_back = [
        (kind, " ".join(words[first:end]))
        for words, tags in zip(rows[TOKENS], rows[TAGS])
        for kind, first, end in tag_spans(tags)
    ]
    assert read_back == written


def test_conll_has_a_word_and_its_tag_per_line(demo_run, capsys):
    output = infer_format(capsys, demo_run, "conll")
    blocks = output.split("\n\n")
    assert len(blocks) == 3 and blocks[-1] == "" and "\n\n\n" not in output  # the blank line gives no block
    first = [line.split(" ") for line in blocks[0].splitlines()]
    assert [word for word, _ in first] == LINES[0].split()
    found = json.loads(infer_format(capsys, demo_run, "jsonl").splitlines()[0])["entities"]
    assert sum(tag.startswith("B-") for _, tag in first) == len(found)


def test_label_studio_is_a_task_list_with_scored_predictions(demo_run, capsys):
    tasks = json.loads(infer_format(capsys, demo_run, "label-studio"))
    assert [task["data"]["text"] for task in tasks] == LINES
    found = [json.loads(line)["entities"] for line in infer_format(capsys, demo_run, "jsonl").splitlines()]
    for task, entities in zip(tasks, found):
        (prediction,) = task["predictions"]
        assert [(r["value"]["start"], r["value"]["end"], r["value"]["labels"], r["score"]) for r in prediction["result"]] == [
            (e["start"], e["end"], [e["entity_group"]], e["score"]) for e in entities
        ]
        assert all(r["from_name"] == "label" and r["to_name"] == "text" and r["type"] == "labels" for r in prediction["result"])
        assert 0 < prediction["score"] <= 1 and prediction["model_version"] == str(demo_run)


def test_label_studio_export_of_the_predictions_reads_back(demo_run, capsys, tmp_path):
    """Pre-annotations accepted as they are in Label Studio come back in its export as annotations."""
    tasks = json.loads(infer_format(capsys, demo_run, "label-studio"))
    exported = [
        {"id": i, "data": t["data"], "annotations": [{"result": t["predictions"][0]["result"]}]} for i, t in enumerate(tasks)
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(exported))
    rows = read_spans(path)
    assert sum(tag.startswith("B-") for tags in rows[TAGS] for tag in tags) == sum(
        len(t["predictions"][0]["result"]) for t in tasks
    )


@pytest.mark.parametrize("other", ["conll", "table"])  # table too, when it is asked for, not only the default
def test_json_and_another_format_together_is_refused(demo_run, capsys, other):
    from infer import main as infer

    with pytest.raises(SystemExit):
        infer(["--model", str(demo_run), "--json", "--format", other, "x"])
    assert f"--json is --format jsonl; give one of them, not --format {other} too" in capsys.readouterr().err


def test_a_token_file_with_a_text_field_is_still_a_token_file(tmp_path):
    path = tmp_path / "hub-style.jsonl"
    write_lines(path, [{"id": 0, "text": "Anna sang .", "tokens": ["Anna", "sang", "."], "ner_tags": ["B-PER", "O", "O"]}])
    from bert_ner.config import DataConfig
    from bert_ner.data import read_file

    assert read_file(str(path), DataConfig())[TAGS] == [["B-PER", "O", "O"]]


def test_records_without_an_annotation_are_left_out_and_counted(tmp_path, caplog):
    """Label Studio tasks not annotated yet or cancelled, and Prodigy's rejected examples."""
    caplog.set_level("WARNING", logger="bert_ner")
    done = {
        "id": 1,
        "data": {"text": "Oslo won ."},
        "annotations": [{"result": [{"value": {"start": 0, "end": 4, "labels": ["LOC"]}}]}],
    }
    todo = {"id": 2, "data": {"text": "Paris won ."}, "annotations": [], "predictions": [{"result": []}]}
    cancelled = {"id": 3, "data": {"text": "Rome won ."}, "annotations": [{"was_cancelled": True, "result": []}]}
    export = tmp_path / "export.json"
    export.write_text(json.dumps([done, todo, cancelled]))
    assert read_spans(export)[TOKENS] == [["Oslo", "won", "."]]
    assert "2 tasks have no annotation (not yet annotated, or cancelled) and were left out" in caplog.text
    prodigy = tmp_path / "prodigy.jsonl"
    write_lines(prodigy, [{"text": "Paris is lovely .", "spans": [{"start": 0, "end": 5, "label": "PER"}], "answer": "reject"}])
    write_lines(prodigy, [json.loads(prodigy.read_text()), {"text": "Oslo won .", "spans": [], "answer": "accept"}])
    assert read_spans(prodigy)[TOKENS] == [["Oslo", "won", "."]]
    assert "1 records answered reject or ignore (Prodigy) were left out" in caplog.text


def test_an_export_with_no_annotated_task_says_so_in_its_own_terms(tmp_path):
    from bert_ner.config import DataConfig
    from bert_ner.data import read_file

    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"id": 1, "data": {"text": "Paris won ."}, "annotations": []}]))
    with pytest.raises(UserError, match="no sentences found; expected texts with their entity spans, or annotated Label Studio"):
        read_file(str(export), DataConfig())


def test_doccano_entity_objects_read_like_triples(tmp_path):
    path = tmp_path / "doccano.jsonl"
    entities = [{"id": 9, "label": label, "start_offset": s, "end_offset": e} for s, e, label in SPANS]
    write_lines(path, [{"id": 1, "text": TEXT, "entities": entities, "relations": []}])
    assert read_spans(path) == EXPECTED


def test_label_studio_output_is_a_list_even_for_no_texts(demo_run, capsys, tmp_path):
    from infer import main as infer

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert infer(["--model", str(demo_run), "--format", "label-studio", "--file", str(empty)]) == 0
    assert json.loads(capsys.readouterr().out) == []
    broken = tmp_path / "broken.txt"
    broken.write_bytes(b"Anna flew to Oslo .\n\xff\n")
    assert infer(["--model", str(demo_run), "--format", "label-studio", "--file", str(broken)]) == 2
    assert [task["data"]["text"] for task in json.loads(capsys.readouterr().out)] == ["Anna flew to Oslo ."]


@pytest.mark.parametrize(
    "word_rules, expected",
    [
        # a model trained on Thai characters: one line per character with its marks, as it read them
        ("characters", "ไ O\nป O\nก B-LOC\nรุ I-LOC\nง I-LOC\nเ I-LOC\nท I-LOC\nพ I-LOC\n\n"),
        ("treebank", "ไปกรุงเทพ B-LOC\n\n"),  # the default rules see one word
    ],
)
def test_conll_output_splits_words_by_the_models_rules(word_rules, expected):
    from bert_ner.spans import conll_block

    bangkok = {"entity_group": "LOC", "word": "กรุงเทพ", "start": 2, "end": 9, "score": 0.9}
    assert conll_block("ไปกรุงเทพ", [bangkok], word_rules, "en") == expected
