"""Reading sentences: CoNLL and JSON lines files, IOB repair, labels, and one path for every source."""

import json

import pytest

from bert_ner.config import DataConfig
from bert_ner.data import DOCUMENT, NO_DOCUMENT, TAGS, TOKENS, build_labels, load_splits, read_conll, tag_problem, to_iob2
from bert_ner.errors import UserError


@pytest.mark.parametrize(
    "tags, expected",
    [
        (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),  # IOB1 span start
        (["I-PER", "B-PER", "I-PER"], ["B-PER", "B-PER", "I-PER"]),  # IOB1 B- splits two adjacent spans
        (["I-ORG", "I-LOC"], ["B-ORG", "B-LOC"]),  # a change of type starts a span
        (["O", "I-MISC"], ["O", "B-MISC"]),  # stray I- after O
        (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),  # IOB2 is left alone
        ([], []),
    ],
)
def test_to_iob2(tags, expected):
    assert to_iob2(tags) == expected


@pytest.mark.parametrize(
    "tag, ok",
    [
        ("O", True),
        ("B-PER", True),
        ("I-MISC", True),
        ("B-WORK_OF_ART", True),
        ("PERSON", False),
        ("E-PER", False),
        ("B-", False),
        ("o", False),
    ],
)
def test_tag_problem(tag, ok):
    assert (tag_problem(tag) is None) == ok


def test_build_labels_is_sorted_and_pairs_b_with_i():
    assert build_labels([["B-PER", "O"], ["B-LOC", "I-LOC"], ["B-MISC"]]) == [
        "O",
        "B-LOC",
        "I-LOC",
        "B-MISC",
        "I-MISC",
        "B-PER",
        "I-PER",
    ]


def write(tmp_path, text: str | bytes, name: str = "data.txt"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


FOUR_COLUMNS = (
    "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman JJ I-NP I-MISC\n\n"
    "Peter NNP I-NP I-PER\n\n-DOCSTART- -X- -X- O\n\nBonn NNP I-NP I-LOC\n"
)


@pytest.mark.parametrize(
    "text",
    [
        FOUR_COLUMNS,
        FOUR_COLUMNS.replace("\n", "\r\n"),  # CRLF
        "\ufeff" + FOUR_COLUMNS,  # UTF-8 BOM
        FOUR_COLUMNS.replace(" ", "\t"),  # tabs
        FOUR_COLUMNS.replace("\n", "  \n"),  # trailing spaces
        FOUR_COLUMNS.rstrip("\n"),  # no final newline
    ],
)
def test_read_conll_four_columns_with_documents(tmp_path, text):
    rows = read_conll(write(tmp_path, text))
    assert rows[TOKENS] == [["EU", "rejects", "German"], ["Peter"], ["Bonn"]]
    assert rows[TAGS] == [["I-ORG", "O", "I-MISC"], ["I-PER"], ["I-LOC"]]
    assert rows[DOCUMENT] == [0, 0, 1]


def test_read_conll_two_columns_without_documents(tmp_path):
    rows = read_conll(write(tmp_path, "Anna B-PER\nsang O\n\nOslo B-LOC\n"))
    assert rows[TOKENS] == [["Anna", "sang"], ["Oslo"]]
    assert rows[DOCUMENT] == [NO_DOCUMENT, NO_DOCUMENT]


@pytest.mark.parametrize(
    "text, message",
    [
        ("Anna B-PER\nsang\n", "data.txt:2: one column"),
        ("Anna NNP B-PER\nsang O\n", "data.txt:2: 2 columns, but earlier lines have 3"),
        ("Anna PERSON\n", "data.txt:1: tag 'PERSON' is not IOB"),
        (b"Anna B-PER\nM\xfcnchen B-LOC\n", "data.txt:2: not UTF-8"),
    ],
)
def test_read_conll_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        read_conll(write(tmp_path, text))


def splits_from(tmp_path, train: str, validation: str, suffix: str = ".txt") -> tuple:
    files = {name: write(tmp_path, text, f"{name}{suffix}") for name, text in (("train", train), ("valid", validation))}
    cfg = DataConfig(dataset=None, train_file=str(files["train"]), validation_file=str(files["valid"]))
    return load_splits(cfg)


def test_load_splits_repairs_iob1_and_collects_labels(tmp_path):
    splits, labels = splits_from(tmp_path, "Anna I-PER\nMaria I-PER\n\nin O\nOslo I-LOC\n", "Oslo I-LOC\n")
    assert splits["train"][TAGS] == [["B-PER", "I-PER"], ["O", "B-LOC"]]
    assert labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def test_tag_unseen_in_train_is_an_error(tmp_path):
    with pytest.raises(UserError, match=r"valid.txt'.*tag 'B-ORG' does not occur in the training data"):
        splits_from(tmp_path, "Anna B-PER\n", "UN B-ORG\n")


@pytest.mark.parametrize("text", ["", "\n\n", "-DOCSTART- O\n\n"])
def test_empty_file_is_an_error(tmp_path, text):
    with pytest.raises(UserError, match="no sentences found"):
        splits_from(tmp_path, text, "Anna B-PER\n")


def test_jsonl_and_conll_give_the_same_rows(tmp_path):
    conll = "Anna B-PER\nsang O\n\nOslo B-LOC\n"
    jsonl = "\n".join(
        json.dumps({"tokens": t, "ner_tags": g}) for t, g in [(["Anna", "sang"], ["B-PER", "O"]), (["Oslo"], ["B-LOC"])]
    )
    from_conll, labels_conll = splits_from(tmp_path / "", conll, conll)
    (tmp_path / "j").mkdir()
    from_jsonl, labels_jsonl = splits_from(tmp_path / "j", jsonl, jsonl, suffix=".jsonl")
    assert from_jsonl["train"][TOKENS] == from_conll["train"][TOKENS]
    assert from_jsonl["train"][TAGS] == from_conll["train"][TAGS]
    assert labels_jsonl == labels_conll


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "train.jsonl:1: invalid JSON"),
        ('{"words": ["a"], "ner_tags": ["O"]}', "expected an object with 'tokens' and 'ner_tags'"),
        ('{"tokens": ["a", "b"], "ner_tags": ["O"]}', "lists of the same length"),
        ('{"tokens": ["Anna", "sang"], "ner_tags": [1, 0]}', r"train.jsonl:1: tag 1 is a number \(a class id\?\); data files"),
        ("\n\n", "no sentences found; expected one JSON object per line with 'tokens' and 'ner_tags' lists"),
    ],
)
def test_jsonl_errors(tmp_path, line, message):
    with pytest.raises(UserError, match=message):
        splits_from(tmp_path, line, line, suffix=".jsonl")


def test_hub_format_dataset_goes_through_the_same_path(tmp_path):
    """A dataset as the Hub serves it (parquet, ClassLabel tag ids) loads through data.dataset and
    yields the same sentences and tags as the CoNLL files it was made from."""
    import datasets

    files = DataConfig(dataset=None, train_file="data/demo/train.txt", validation_file="data/demo/valid.txt")
    from_files, labels = load_splits(files)
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=labels)),
            "document_id": datasets.Value("string"),
        }
    )
    for split, dataset in from_files.items():
        hub_style = datasets.Dataset.from_dict(
            {
                "tokens": dataset[TOKENS],
                "ner_tags": [[labels.index(t) for t in tags] for tags in dataset[TAGS]],
                "document_id": [f"{split}-{d}" for d in dataset[DOCUMENT]],
            },
            features=features,
        )
        hub_style.to_parquet(str(tmp_path / f"{split}.parquet"))
    from_hub, hub_labels = load_splits(DataConfig(dataset=str(tmp_path), document_column="document_id"))
    assert hub_labels == labels
    for split in from_files:
        assert from_hub[split][TOKENS] == from_files[split][TOKENS]
        assert from_hub[split][TAGS] == from_files[split][TAGS]
        assert from_hub[split][DOCUMENT] == from_files[split][DOCUMENT]
    without_documents, _ = load_splits(DataConfig(dataset=str(tmp_path)))
    assert set(without_documents["train"][DOCUMENT]) == {NO_DOCUMENT}


@pytest.mark.parametrize(
    "ids, expected",
    [(["b", "b", "a", "b"], [0, 0, 1, 0]), ([7, 7, 3], [0, 0, 1]), ([None, "x"], [NO_DOCUMENT, 0]), ([], [])],
)
def test_document_numbers(ids, expected):
    from bert_ner.data import document_numbers

    assert document_numbers(ids) == expected


def test_sample_caps(tmp_path):
    cfg = DataConfig(
        dataset=None,
        train_file="data/demo/train.txt",
        validation_file="data/demo/valid.txt",
        max_train_samples=7,
        max_eval_samples=3,
    )
    splits, _ = load_splits(cfg)
    assert (len(splits["train"]), len(splits["validation"])) == (7, 3)


@pytest.mark.parametrize(
    "tags, expected",
    [
        (["B-person", "I-person", "O", "B-geo-loc"], ["B-PER", "I-PER", "O", "B-LOC"]),
        (["B-product", "I-product"], ["B-MISC", "I-MISC"]),
        (["B-other", "I-other", "B-person"], ["O", "O", "B-PER"]),  # dropped
        (["O"], ["O"]),
    ],
)
def test_map_types(tags, expected):
    from bert_ner.data import map_types

    label_map = {"person": "PER", "geo-loc": "LOC", "product": "MISC", "other": None}
    assert map_types(tags, label_map) == expected


def test_a_type_the_label_map_does_not_name_is_a_config_error(tmp_path):
    from bert_ner.config import DataConfig
    from bert_ner.data import load_splits

    (tmp_path / "test.txt").write_text("Anna B-person\nvisits O\nIKEA B-corporation\n")
    cfg = DataConfig(dataset=None, test_file=str(tmp_path / "test.txt"), label_map={"person": "PER"})
    with pytest.raises(UserError, match="has types the map does not name: corporation; map each to a type"):
        load_splits(cfg)
    cfg.label_map = {"person": "PER", "corporation": "ORG"}
    splits, labels = load_splits(cfg)
    assert splits["test"]["tags"] == [["B-PER", "O", "B-ORG"]] and labels == ["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]
