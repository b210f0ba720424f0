"""Text written without spaces (Chinese, Japanese, Thai), mixed scripts, invisible characters and
quote marks at a word's edge, line ends, and long texts: the words and sentences of raw text, with
offsets that are exact slices of the input; and a tiny model trained on Chinese characters that
finds its entities in raw Chinese text through infer.py, scoring as train.py scored it."""

import io
import json
import random

import numpy as np
import pytest

import bert_ner.words
from bert_ner.config import load_config
from bert_ner.data import decoded_lines, first_line, read_conll, read_spans
from bert_ner.errors import UserError
from bert_ner.record import ModelRecord, parse_record
from bert_ner.spans import looks_like_spans
from bert_ner.words import (
    CHARACTERS,
    TREEBANK,
    decode,
    entities,
    line_starts,
    rules_of,
    sentence_starts,
    split_lines,
    split_sentences,
    split_words,
)
from tests.conftest import REPO, SCRATCH, SENTENCE

ZH = "北京是中国的首都。李明在上海工作。"
THAI = "บารัก โอบามา เกิดที่ฮาวาย"


def words_of(text: str, word_rules: str = TREEBANK, language: str = "en") -> list[str]:
    spans = split_words(text, word_rules, language)
    assert all(start < end for start, end in spans) and spans == sorted(spans)
    assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:])), "words overlap"
    return [text[start:end] for start, end in spans]


@pytest.mark.parametrize(
    "text, word_rules, words",
    [
        (ZH, TREEBANK, list(ZH)),  # each Han character and each full stop its own word
        ("東京タワーは東京都港区にある。", TREEBANK, list("東京タワーは東京都港区にある。")),
        ("Anna Schmidt東京に行った。", TREEBANK, ["Anna", "Schmidt", *"東京に行った。"]),
        ("iPhone 15在北京发布", TREEBANK, ["iPhone", "15", *"在北京发布"]),
        ("李明，你好！ABC，DEF", TREEBANK, [*"李明，你好！", "ABC", "，", "DEF"]),
        ("北京　上海", TREEBANK, ["北", "京", "上", "海"]),  # the ideographic space separates, it is no word
        (THAI, TREEBANK, ["บารัก", "โอบามา", "เกิดที่ฮาวาย"]),  # as written: split at spaces
        # characters: each Thai character with its marks (the vowel and tone marks above and below)
        (THAI, CHARACTERS, ["บ", "า", "รั", "ก", "โ", "อ", "บ", "า", "ม", "า", "เ", "กิ", "ด", "ที่", "ฮ", "า", "ว", "า", "ย"]),
        ("ພາສາລາວ", CHARACTERS, ["ພ", "າ", "ສ", "າ", "ລ", "າ", "ວ"]),  # Lao
        ("서울에 갔다", CHARACTERS, ["서울에", "갔다"]),  # Korean is written with spaces
        ("Barack Obama was born in Hawaii.", CHARACTERS, ["Barack", "Obama", "was", "born", "in", "Hawaii", "."]),
        # format characters and quote marks at a word's edge are words of their own
        ("from \u200bReuters arrived", TREEBANK, ["from", "\u200b", "Reuters", "arrived"]),
        ("from \ufeffReuters\u200e arrived", TREEBANK, ["from", "\ufeff", "Reuters", "\u200e", "arrived"]),
        (
            "‹Reuters› and 「Reuters」 and ‛Reuters‟",
            TREEBANK,
            [*"‹", "Reuters", "›", "and", "「", "Reuters", "」", "and", "‛", "Reuters", "‟"],
        ),  # fmt: skip
        ("‚Reuters‘ said", TREEBANK, ["‚", "Reuters", "‘", "said"]),
        # ... but joiners inside a word, and an emoji's tag characters, stay
        ("خانه\u200cها", TREEBANK, ["خانه\u200cها"]),
        (
            "x 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f y",
            TREEBANK,
            ["x", "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", "y"],
        ),  # fmt: skip
        ("I ❤️ NY", TREEBANK, ["I", "❤️", "NY"]),
    ],
)
def test_words_of_text_without_spaces_mixed_scripts_and_edges(text, word_rules, words):
    assert words_of(text, word_rules) == words


@pytest.mark.parametrize(
    "text, offsets",
    [
        ("Anna Schmidt東京に行った。", [(0, 4), (5, 12), (12, 13), (13, 14)]),
        ("from \u200bReuters arrived", [(0, 4), (5, 6), (6, 13), (14, 21)]),
        ("iPhone 15在北京发布", [(0, 6), (7, 9), (9, 10), (10, 11)]),
    ],
)
def test_offsets_are_exact(text, offsets):
    assert split_words(text)[: len(offsets)] == offsets


@pytest.mark.parametrize(
    "text, language, sentences",
    [
        (ZH, "zh", ["北京是中国的首都。", "李明在上海工作。"]),
        (ZH, "en", ["北京是中国的首都。", "李明在上海工作。"]),  # full-width full stops end sentences in English too
        ("東京タワーは港区にある。本当？はい！", "ja", ["東京タワーは港区にある。", "本当？", "はい！"]),
        ("Dr. Müller kam um 9 Uhr an. Er blieb lange.", "de", ["Dr. Müller kam um 9 Uhr an. ", "Er blieb lange."]),
        ("Mr. Smith went to Washington. He stayed.", "en", ["Mr. Smith went to Washington. ", "He stayed."]),
    ],
)
def test_sentences_by_language(text, language, sentences):
    starts = sentence_starts(text, language=language)
    assert [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])] == sentences


def test_chinese_sentences_hold_their_characters():
    assert [[ZH[a:b] for a, b in sentence] for sentence in split_sentences(ZH, language="zh")] == [
        list("北京是中国的首都。"),
        list("李明在上海工作。"),
    ]


SENTENCES = [
    "Mr. Smith went to Washington.",
    "The U.S. economy grew 2.5 percent in 1996.",
    'He said: "We will go."',
    "Samsung Electronics Co. Ltd. reported profits.",
    "Is it true?",
    "Yes!",
    "Prices rose 3.4 pct.",
    "Dr. Jones arrived at 5 p.m. on Friday.",
]


@pytest.mark.parametrize("seed", range(3))
def test_a_long_text_read_in_pieces_splits_as_read_whole(seed, monkeypatch):
    rng = random.Random(seed)
    text = " ".join(rng.choice(SENTENCES) for _ in range(60))
    whole = sentence_starts(text)
    monkeypatch.setattr(bert_ner.words, "PIECE", 300)
    assert sentence_starts(text) == whole


def test_a_sentence_longer_than_a_piece_is_cut_at_a_space(monkeypatch):
    monkeypatch.setattr(bert_ner.words, "PIECE", 100)
    text = "Go. " + " ".join(["word"] * 100) + "."
    starts = sentence_starts(text)
    assert len(starts) > 2 and all(text[start - 1] == " " for start in starts[1:])
    assert [text[a:b] for a, b in split_words(text)] == ["Go", "."] + ["word"] * 100 + ["."]


@pytest.mark.parametrize(
    "sentences, rules",
    [
        ([["北", "京"], ["李", "明", "在", "上", "海"]], (CHARACTERS, "zh")),
        ([["東", "京", "に"]], (CHARACTERS, "ja")),
        ([["北京", "是", "首都"]], (TREEBANK, "zh")),  # words of several characters: segmented Chinese
        ([["EU", "rejects", "German", "call"]], (TREEBANK, "en")),
        ([["Anna", "Schmidt", "東", "京"]], (CHARACTERS, "zh")),  # Han alone: Chinese
        ([["บ", "า", "รั", "ก"]], (CHARACTERS, "en")),
        ([["Müller", "straße"], []], (TREEBANK, "en")),
    ],
)
def test_rules_of_training_words(sentences, rules):
    assert rules_of(sentences) == rules


def test_an_entity_never_starts_with_an_invisible_character():
    text = "from \u200bReuters arrived"
    words = split_words(text)
    probabilities = np.array([[0.9, 0.1], [0.5, 0.5], [0.1, 0.9], [0.9, 0.1]])
    seen = np.array([True, False, True, True])  # the zero-width space becomes no sub-token
    found = entities(text, words, decode(probabilities, seen, ["O", "B-ORG"]))
    assert [(e["word"], e["start"], e["end"]) for e in found] == [("Reuters", 6, 13)]


def test_the_record_keeps_word_rules_and_language():
    record = ModelRecord(word_rules=CHARACTERS, language="zh")
    assert parse_record(record.to_json(), "x") == record
    bad = json.loads(record.to_json()) | {"language": "klingon"}
    with pytest.raises(UserError, match="language 'klingon' is not one of"):
        parse_record(json.dumps(bad), "x")


def test_config_keys_are_checked(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  language: zz\n  word_rules: character\n")
    with pytest.raises(UserError) as error:
        load_config(path)
    assert "data.word_rules: 'character' is not one of treebank, characters; did you mean 'characters'?" in str(error.value)
    assert "data.language: 'zz' is not one of" in str(error.value)


# ---------------------------------------------------------------------------------------------
# Line ends: one definition for every reader


@pytest.mark.parametrize(
    "text, lines",
    [
        ("a\nb\n", ["a", "b"]),
        ("a\r\nb\r\n", ["a", "b"]),
        ("a\rb\r", ["a", "b"]),  # old Mac files
        ("a\rb\r\nc\nd", ["a", "b", "c", "d"]),
        ("a\r\rb", ["a", "", "b"]),
        ("a\n\nb", ["a", "", "b"]),
        ("a", ["a"]),
    ],
)
def test_split_lines(text, lines):
    assert split_lines(text) == lines
    assert list(decoded_lines(io.BytesIO(text.encode()), "x")) == lines


@pytest.mark.parametrize(
    "text, starts",
    [("a\nb", (2,)), ("a\r\nb", (3,)), ("a\rb\r", (2,)), ("a\r\rb", (2, 3)), ("ab", ())],
)
def test_line_starts(text, starts):
    assert line_starts(text) == starts


def test_a_cr_only_file_is_read_line_by_line_by_every_reader(tmp_path, capsys):
    import infer

    texts = tmp_path / "texts.txt"
    texts.write_bytes(b"Anna Schmidt\rReuters\rGermany\r")
    assert list(infer.file_lines(str(texts))) == ["Anna Schmidt", "Reuters", "Germany"]
    conll = tmp_path / "train.txt"
    conll.write_bytes(b"Anna B-PER\rSchmidt I-PER\r\rBerlin B-LOC\r")
    assert read_conll(conll)["tokens"] == [["Anna", "Schmidt"], ["Berlin"]]
    spans = tmp_path / "spans.jsonl"
    lines = [{"text": "Anna Schmidt", "entities": [[0, 12, "PER"]]}, {"text": "in Berlin", "entities": [[3, 9, "LOC"]]}]
    spans.write_bytes("\r".join(json.dumps(line) for line in lines).encode())
    assert looks_like_spans(first_line(spans), "tokens", "ner_tags")
    assert read_spans(spans)["tags"] == [["B-PER", "I-PER"], ["O", "B-LOC"]]


def test_a_bad_byte_names_its_line_in_a_cr_only_file():
    with pytest.raises(UserError, match=r"^x:3: not UTF-8"):
        list(decoded_lines(io.BytesIO(b"a\rb\rc\xff\r"), "x"))


def test_a_text_with_cr_line_ends_starts_a_sentence_on_each_line():
    from bert_ner.inference import prepare
    from tests.conftest import wordpiece

    prepared = prepare(wordpiece(["a", "b"]), "Anna went\rto Berlin", max_length=32)
    assert [list(group) for group in prepared.groups] == [[0, 1], [2, 3]]


# ---------------------------------------------------------------------------------------------
# A tiny model trained on Chinese characters, tagging raw Chinese text


def test_a_model_trained_on_chinese_characters_finds_them_in_raw_text(tmp_path, capsys):
    import infer
    import train
    from bert_ner.outputs import METRICS_FILE
    from bert_ner.record import read_record
    from bert_ner.scoring import score
    from bert_ner.words import tags_for

    output_dir, sample = tmp_path / "zh", REPO / "data/demo-zh"
    files = {"train": "train", "validation": "valid", "test": "test"}
    splits = [f"data.{split}_file={sample / name}.txt" for split, name in files.items()]
    assert train.main(["--config", SCRATCH, f"training.output_dir={output_dir}", *splits, "training.num_train_epochs=6"]) == 0
    record = read_record(output_dir)
    assert (record.word_rules, record.language) == (CHARACTERS, "zh")

    test = read_conll(sample / "test.txt")
    texts = ["".join(characters) for characters in test["tokens"]]  # raw Chinese text, no spaces
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert infer.main(["--model", str(output_dir), "--file", str(tmp_path / "texts.txt"), "--json"]) == 0
    found = [json.loads(line)["entities"] for line in capsys.readouterr().out.splitlines()]
    for text, entities_of_text in zip(texts, found):
        assert all(text[e["start"] : e["end"]] == e["word"] for e in entities_of_text)
    predicted = [tags_for([(i, i + 1) for i in range(len(text))], records) for text, records in zip(texts, found)]
    f1 = score(test["tags"], predicted)["f1"]
    assert f1 > 0.5  # it found its entities
    assert f1 == pytest.approx(json.loads((output_dir / METRICS_FILE).read_text())["test"]["f1"])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Anna Schmidt東京に行った。", ("PER", "Anna Schmidt", 0, 12)),
        (SENTENCE.replace("Reuters", "\u200bReuters\u200e"), ("ORG", "Reuters", 35, 42)),
        (SENTENCE.replace("Germany", "«Germany»"), ("LOC", "Germany", 70, 77)),
    ],
)
def test_an_english_model_keeps_latin_names_whole_and_edges_out(demo_run, text, expected):
    from bert_ner import Tagger

    found = Tagger.load(str(demo_run))(text)
    assert expected in [(e.type, e.text, e.start, e.end) for e in found]
    assert all(text[e.start : e.end] == e.text and not bert_ner.words._is_edge(e.text[0]) for e in found)
    assert all(not bert_ner.words._is_edge(e.text[-1]) for e in found)


@pytest.mark.parametrize(
    "keys, words, rules",
    [
        ("", [["北", "京"]], (CHARACTERS, "zh")),  # from the training words
        ("  language: ja\n", [["北", "京"]], (CHARACTERS, "ja")),  # the keys win
        ("  word_rules: treebank\n", [["บ", "า"]], (TREEBANK, "en")),
        ("  word_rules: characters\n  language: de\n", [["Anna"]], (CHARACTERS, "de")),
        ("", [["Anna", "Schmidt"]], (TREEBANK, "en")),
    ],
)
def test_train_records_the_keys_or_what_the_training_words_show(tmp_path, keys, words, rules):
    from train import text_rules

    path = tmp_path / "c.yaml"
    path.write_text("data:\n" + keys if keys else "")
    assert text_rules(load_config(path), {"train": {"tokens": words}}) == rules


def test_train_warns_that_segmented_chinese_is_read_by_characters(caplog):
    from train import text_rules

    with caplog.at_level("WARNING", logger="bert_ner"):
        text_rules(load_config(REPO / "config.yaml"), {"train": {"tokens": [["北京", "是", "首都"]]}})
    assert "infer.py reads such text one character per word" in caplog.text
