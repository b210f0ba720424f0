"""One word, one entity: text -> words, words -> sub-token labels, scores -> tags -> entities."""

import random

import numpy as np
import pytest

import bert_ner.words
from bert_ner.words import (
    IGNORE_INDEX,
    NO_WORD,
    Decoded,
    align_labels,
    decode,
    entities,
    inside_labels,
    sentence_starts,
    shown_score,
    spans,
    split_sentences,
    split_words,
    tags_for,
    tokenize_and_align,
    transitions,
    visible_words,
    word_scores,
    words_kept,
)
from tests.conftest import wordpiece

X = IGNORE_INDEX
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
INSIDE = inside_labels(LABELS)


def test_inside_labels_maps_b_to_i_and_keeps_the_rest():
    assert INSIDE == [0, 2, 2, 4, 4]


@pytest.mark.parametrize(
    "word_ids, word_labels, label_all_tokens, expected",
    [
        # [CLS] Obama was [SEP]: one sub-token per word
        ([None, 0, 1, None], [1, 0], False, [X, 1, 0, X]),
        # Ob ##ama ##s: first sub-token labelled, the rest ignored
        ([None, 0, 0, 0, 1, None], [1, 0], False, [X, 1, X, X, 0, X]),
        # same with label_all_tokens: later sub-tokens get the I- label, not B-
        ([None, 0, 0, 0, 1, None], [1, 0], True, [X, 1, 2, 2, 0, X]),
        # an I- word keeps I- on every piece; O stays O
        ([None, 0, 1, 1, 2, 2, None], [3, 4, 0], True, [X, 3, 4, 4, 0, 0, X]),
        # truncation: word 2 never appears, so it gets no label at all
        ([None, 0, 1, 1, None], [1, 2, 0], False, [X, 1, 2, X, X]),
        # nothing but special tokens
        ([None, None], [], False, [X, X]),
    ],
)
def test_align_labels(word_ids, word_labels, label_all_tokens, expected):
    assert align_labels(word_ids, word_labels, label_all_tokens, INSIDE) == expected


@pytest.mark.parametrize(
    "word_ids, first, count, kept",
    [
        ([None, 0, 0, 1, None], 0, 2, 2),
        ([None, 0, 0, 1, None], 0, 3, 1 + 1),  # word 2 was truncated away
        ([None, None], 0, 1, 0),
        ([None, 0, 1, 2, 2, 3, None], 1, 2, 2),  # words 1-2 of a sentence between context words 0 and 3
    ],
)
def test_words_kept(word_ids, first, count, kept):
    assert words_kept(word_ids, first, count) == kept


def test_tokenize_and_align_with_a_real_fast_tokenizer():
    tokenizer = wordpiece(["Bar", "##ack", "Ob", "##ama", "was", "born", "in", "Ha", "##wai", "##i"])
    batch = {"tokens": [["Barack", "Obama", "was", "born", "in", "Hawaii"]], "tags": [["B-PER", "I-PER", "O", "O", "O", "B-LOC"]]}
    label2id = {label: i for i, label in enumerate(LABELS)}

    encoded = tokenize_and_align(batch, tokenizer, label2id, max_length=64, label_all_tokens=False)
    assert tokenizer.convert_ids_to_tokens(encoded["input_ids"][0]) == [
        "[CLS]",
        "Bar",
        "##ack",
        "Ob",
        "##ama",
        "was",
        "born",
        "in",
        "Ha",
        "##wai",
        "##i",
        "[SEP]",
    ]
    assert encoded["labels"][0] == [X, 1, X, 2, X, 0, 0, 0, 3, X, X, X]
    assert encoded["words_kept"] == [6]

    all_tokens = tokenize_and_align(batch, tokenizer, label2id, max_length=64, label_all_tokens=True)
    assert all_tokens["labels"][0] == [X, 1, 2, 2, 2, 0, 0, 0, 3, 4, 4, X]

    truncated = tokenize_and_align(batch, tokenizer, label2id, max_length=6, label_all_tokens=False)
    assert truncated["labels"][0] == [X, 1, X, 2, X, X]  # [CLS] + 4 pieces + [SEP]
    assert truncated["words_kept"] == [2]
    assert truncated["word_index"][0] == [NO_WORD, 0, 0, 1, 1, NO_WORD]


def test_a_word_without_sub_tokens_does_not_shift_the_others():
    tokenizer = wordpiece(["Anna", "sang"])
    batch = {"tokens": [["Anna", "\u200b", "sang"]], "tags": [["B-PER", "O", "O"]]}
    encoded = tokenize_and_align(batch, tokenizer, {label: i for i, label in enumerate(LABELS)}, 64, False)
    assert encoded["word_index"][0] == [NO_WORD, 0, 2, NO_WORD]
    assert encoded["words_kept"] == [2]


@pytest.mark.parametrize(
    "tokens, tags, kept_tokens, kept_tags",
    [
        (["Anna", "\u200b", "Schmidt"], ["B-PER", "O", "I-PER"], ["Anna", "Schmidt"], ["B-PER", "I-PER"]),
        (["\u200b", "Schmidt", "sang"], ["B-PER", "I-PER", "O"], ["Schmidt", "sang"], ["B-PER", "O"]),  # repaired
        (["Anna", "", "\x07", "sang"], ["B-PER", "O", "O", "O"], ["Anna", "sang"], ["B-PER", "O"]),
        (["Anna", "sang"], ["B-PER", "O"], ["Anna", "sang"], ["B-PER", "O"]),
    ],
)
def test_visible_words(tokens, tags, kept_tokens, kept_tags):
    tokenizer = wordpiece(["Anna", "Schmidt", "sang"])
    assert visible_words({"tokens": [tokens], "tags": [tags]}, tokenizer) == {"tokens": [kept_tokens], "tags": [kept_tags]}


SOFT_HYPHEN, ZWJ, ZWSP = "\u00ad", "\u200d", "\u200b"


@pytest.mark.parametrize(
    "text, words",
    [
        ("The U.S.-based firm Reuters said so .", ["The", "U.S.-based", "firm", "Reuters", "said", "so", "."]),
        ("Jean-Pierre Dupont met Anna Schmidt .", ["Jean-Pierre", "Dupont", "met", "Anna", "Schmidt", "."]),
        ("a New York-based unit", ["a", "New", "York-based", "unit"]),
        ("Obama's wife", ["Obama", "'s", "wife"]),
        ('(IBM) said "no".', ["(", "IBM", ")", "said", '"', "no", '"', "."]),
        (f"Officials from Reu{SOFT_HYPHEN}ters", ["Officials", "from", f"Reu{SOFT_HYPHEN}ters"]),
        (
            f"\u0645\u06cc{ZWJ}\u062e\u0648\u0627\u0647\u0645 Tehran",
            [f"\u0645\u06cc{ZWJ}\u062e\u0648\u0627\u0647\u0645", "Tehran"],
        ),
        (
            "I love Paris\U0001f600 and \U0001f1eb\U0001f1f7France",
            ["I", "love", "Paris", "\U0001f600", "and", "\U0001f1eb\U0001f1f7", "France"],
        ),
        ("thumbs \U0001f44d\U0001f3fd up", ["thumbs", "\U0001f44d\U0001f3fd", "up"]),  # a skin tone stays with its emoji
        ("  spaced\tout\n\nlines ", ["spaced", "out", "lines"]),
        # a paragraph: each sentence's final period is a word, abbreviations keep theirs
        (
            "I visited Paris. Then Anna Schmidt met Reuters.",
            ["I", "visited", "Paris", ".", "Then", "Anna", "Schmidt", "met", "Reuters", "."],
        ),
        (
            "Mr. Smith flew to Washington D.C. on Monday. He left.",
            ["Mr.", "Smith", "flew", "to", "Washington", "D.C.", "on", "Monday", ".", "He", "left", "."],
        ),
        ("Anna went home. Anna went home.", ["Anna", "went", "home", ".", "Anna", "went", "home", "."]),
        ("", []),
    ],
)
def test_split_words(text, words):
    found = split_words(text)
    assert [text[start:end] for start, end in found] == words


@pytest.mark.parametrize(
    "text, sentences",
    [
        ("Anna went home. Anna went home.", ["Anna went home. ", "Anna went home."]),  # the same sentence twice
        ("Dr. Smith came. He left.", ["Dr. Smith came. ", "He left."]),  # an abbreviation ends nothing
        ("No period here", ["No period here"]),
        ("One line.\nAnother line.", ["One line.\n", "Another line."]),
        # pySBD returns `great.` and `....` here, sharing a period; each character lands in one sentence
        ("It was great....  Really.", ["It was great.", "...  ", "Really."]),
        # pySBD deletes its placeholder ☝ and starts its sentence at the variation selector after it,
        # which belongs to the ☝: a variation selector alone made a word of its own
        ("☝️ Look. Go.", ["☝️ Look. ", "Go."]),
        # pySBD ends a sentence after these before a capital; inside a name that would cut the entity
        ("Samsung Electronics Co. Ltd. said so.", ["Samsung Electronics Co. Ltd. said so."]),
        ("Warner Bros. Entertainment Inc. and Sony Corp. agreed.", ["Warner Bros. Entertainment Inc. and Sony Corp. agreed."]),
        ("He flew to Ft. Worth. Then he left.", ["He flew to Ft. Worth. ", "Then he left."]),
        ("Shares of Apple Inc. The firm fell.", ["Shares of Apple Inc. The firm fell."]),  # a missed end costs less
        ("Apple Inc.\nThe firm fell.", ["Apple Inc.\n", "The firm fell."]),  # a line break ends a sentence in any case
        ("It cost 5 Inc. The end.", ["It cost 5 Inc. The end."]),
        ("It is MegaCorp.           Then it fell.", ["It is MegaCorp.           ", "Then it fell."]),  # a whole word only
        ("Smith Jr. Came home. Then left.", ["Smith Jr. ", "Came home. ", "Then left."]),  # not a name's abbreviation
    ],
)
def test_sentence_starts_cut_the_text_into_sentences_that_share_no_character(text, sentences):
    starts = sentence_starts(text)
    assert [text[start:end] for start, end in zip(starts, starts[1:] + [len(text)])] == sentences


def split_without_shortcut(text: str, monkeypatch) -> list[list[tuple[int, int]]]:
    with monkeypatch.context() as patch:
        patch.setattr(bert_ner.words, "_one_sentence", lambda text: False)
        return split_sentences(text)


@pytest.mark.parametrize(
    "text, shortcut",
    [
        ("No period here", True),
        ("Anna went home .", True),
        ("Is it ?", True),
        ("  Leading and trailing spaces.  ", True),
        ("EU rejects German call to boycott British lamb .", True),
        ("", True),
        ("Dr. Smith came.", False),  # a period inside: pySBD decides
        ("Wow!!!", False),
        ('"Go," he said .', False),  # a quote that opens the text can end a sentence
        ("' Hello ' Mary said", False),
        ("( Reuters ) The", False),
        ("see a) this b) that", False),  # list items
        ('He paused -" The end', False),  # a dash and a quote
        ("One line\nAnother line", False),
        ("U.S. troops", False),
        ("☝️ This is the one.", False),  # pySBD's placeholders: it may end a sentence at them or delete them
        ("Comet ☄️ Go outside!", False),
    ],
)
def test_one_sentence_shortcut_is_taken_only_where_pysbd_keeps_the_text_whole(text, shortcut, monkeypatch):
    assert bert_ner.words._one_sentence(text) == shortcut
    assert split_sentences(text) == split_without_shortcut(text, monkeypatch)


def test_one_sentence_shortcut_splits_random_texts_as_pysbd_does(monkeypatch):
    """Random texts of the characters pySBD's rules turn on: each splits the same either way."""
    pieces = list("ab AB ,;:-'\"“”‘’「」（）(1 .!?。\n…é\t\u00a0\u2028\x85\ufe0f☝☄ȸ∯♨") + [
        " He",
        " The",
        "Mr",
        "U.S",
        '-" ',
        "a)",
        "2)",
    ]
    rng = random.Random(0)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 20))) for _ in range(3000)]
    taken = [text for text in texts if bert_ner.words._one_sentence(text)]
    assert len(taken) > 300  # the shortcut is exercised
    assert [split_sentences(text) for text in taken] == [split_without_shortcut(text, monkeypatch) for text in taken]


@pytest.mark.parametrize(
    "labels, previous, following, allowed",
    [
        (["O", "B-PER", "I-PER"], "O", "I-PER", False),
        (["O", "B-PER", "I-PER"], "B-PER", "I-PER", True),
        (["O", "B-PER", "I-PER"], "I-PER", "I-PER", True),
        (["O", "B-PER", "I-PER", "B-ORG", "I-ORG"], "B-PER", "I-ORG", False),
        (["O", "B-PER", "I-PER", "B-ORG", "I-ORG"], "I-ORG", "B-ORG", True),
        (["O", "I-PER"], "O", "I-PER", True),  # IOB1 label set without B-PER: I-PER must be able to open
    ],
)
def test_transitions(labels, previous, following, allowed):
    table, _ = transitions(labels)
    assert table[labels.index(previous), labels.index(following)] == allowed


LABELS_MO = ["O", "B-MISC", "I-MISC", "B-ORG", "I-ORG"]


def probabilities(rows: list[dict[str, float]], labels: list[str] = LABELS_MO) -> np.ndarray:
    """Word scores from {label: probability}; the rest of each row's mass spread over other labels."""
    table = np.zeros((len(rows), len(labels)))
    for i, row in enumerate(rows):
        rest = (1 - sum(row.values())) / (len(labels) - len(row))
        table[i] = [row.get(label, rest) for label in labels]
    return table


@pytest.mark.parametrize(
    "rows, viterbi_tags, argmax_tags",
    [
        # the case: B-MISC I-ORG I-ORG; Viterbi picks the best valid reading instead
        (
            [{"B-MISC": 0.9}, {"I-ORG": 0.5, "I-MISC": 0.4}, {"I-ORG": 0.6, "I-MISC": 0.3}],
            ["B-MISC", "I-MISC", "I-MISC"],
            ["B-MISC", "I-ORG", "I-ORG"],
        ),
        ([{"O": 0.9}, {"I-ORG": 0.6, "B-ORG": 0.3}], ["O", "B-ORG"], ["O", "I-ORG"]),  # I- after O
        ([{"I-ORG": 0.7, "B-ORG": 0.2}], ["B-ORG"], ["I-ORG"]),  # I- opening a sentence
        ([{"B-ORG": 0.8}, {"I-ORG": 0.8}, {"O": 0.9}], ["B-ORG", "I-ORG", "O"], ["B-ORG", "I-ORG", "O"]),  # valid stays
    ],
)
def test_decode(rows, viterbi_tags, argmax_tags):
    scores = probabilities(rows)
    seen = np.ones(len(rows), dtype=bool)
    assert decode(scores, seen, LABELS_MO).tags == viterbi_tags
    assert decode(scores, seen, LABELS_MO, use_viterbi=False).tags == argmax_tags


@pytest.mark.parametrize(
    "rows, seen, expected",
    [
        ([{"B-ORG": 0.9}, {}, {"I-ORG": 0.9}], [True, False, True], ["B-ORG", "I-ORG", "I-ORG"]),  # inside: continues it
        ([{"B-ORG": 0.9}, {}, {"B-ORG": 0.9}], [True, False, True], ["B-ORG", "O", "B-ORG"]),
        ([{"O": 0.9}, {}, {"O": 0.9}, {}], [True, False, True, False], ["O", "O", "O", "O"]),
        ([{}, {}], [False, False], ["O", "O"]),
    ],
)
def test_decode_gives_words_without_scores_o_unless_inside_an_entity(rows, seen, expected):
    decoded = decode(probabilities(rows), np.array(seen), LABELS_MO)
    assert decoded.tags == expected
    assert [p is None for p in decoded.probabilities] == [not s for s in seen]


def test_word_scores_pair_sub_tokens_with_words_and_prefer_the_window_centre():
    labels = 2
    first = np.array([[0.0, 1.0], [0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.0, 1.0]])
    second = np.array([[0.0, 1.0], [0.6, 0.4], [0.7, 0.3], [0.8, 0.2], [0.0, 1.0]])
    windows = [([None, 0, 1, 2, None], first), ([None, 1, 2, 3, None], second)]
    scores, seen = word_scores(windows, 5)
    assert scores.shape == (5, labels) and list(seen) == [True, True, True, True, False]
    assert list(scores[1]) == [0.2, 0.8]  # word 1: centre of the first window, edge of the second
    assert list(scores[2]) == [0.7, 0.3]  # word 2: edge of the first, centre of the second
    assert list(scores[3]) == [0.8, 0.2]  # only in the second


@pytest.mark.parametrize(
    "aggregation, expected",
    [("first", [0.9, 0.1]), ("average", [0.6, 0.4]), ("max", [0.9, 0.1])],
)
def test_word_scores_aggregation(aggregation, expected):
    pieces = np.array([[0.9, 0.1], [0.3, 0.7]])
    scores, _ = word_scores([([0, 0], pieces)], 1, aggregation)
    assert scores[0] == pytest.approx(expected)


@pytest.mark.parametrize(
    "tags, expected",
    [
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
        (["B-MISC", "I-ORG", "I-ORG"], [("MISC", 0, 1)]),  # strict IOB2, as seqeval scores
        (["I-PER", "I-PER"], []),
        (["B-PER", "B-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
    ],
)
def test_spans(tags, expected):
    assert spans(tags) == expected


def test_entities_take_offsets_and_text_from_the_words():
    text = f"Anna Schmidt Reu{SOFT_HYPHEN}ters said so ."
    word_spans = split_words(text)
    decoded = Decoded(["B-PER", "I-PER", "B-ORG", "O", "O", "O"], [0.9, 0.7, 0.6, 0.9, 0.9, 0.9])
    assert entities(text, word_spans, decoded) == [
        {"entity_group": "PER", "word": "Anna Schmidt", "start": 0, "end": 12, "score": 0.8},
        {"entity_group": "ORG", "word": f"Reu{SOFT_HYPHEN}ters", "start": 13, "end": 21, "score": 0.6},
    ]


@pytest.mark.parametrize(
    "word_spans, found, expected",
    [
        ([(0, 4), (5, 12), (13, 17)], [{"entity_group": "PER", "start": 0, "end": 12}], ["B-PER", "I-PER", "O"]),
        (
            [(0, 2), (3, 6), (7, 11), (12, 15), (16, 20)],
            [{"entity_group": "LOC", "start": 3, "end": 11}, {"entity_group": "LOC", "start": 16, "end": 20}],
            ["O", "B-LOC", "I-LOC", "O", "B-LOC"],
        ),
        (
            [(0, 2), (3, 5)],
            [{"entity_group": "ORG", "start": 0, "end": 2}, {"entity_group": "ORG", "start": 3, "end": 5}],
            ["B-ORG", "B-ORG"],
        ),
        ([(0, 5), (5, 7)], [{"entity_group": "PER", "start": 0, "end": 5}], ["B-PER", "O"]),  # Obama|'s, detokenized
        ([(0, 2), (3, 6)], [], ["O", "O"]),
    ],
)
def test_tags_for(word_spans, found, expected):
    assert tags_for(word_spans, found) == expected


@pytest.mark.parametrize(
    "score, shown", [(0.5, "0.5000"), (0.86254, "0.8625"), (0.0, "0.0000"), (1, "1.0000"), (5e-05, "0.0001")]
)
def test_a_score_is_shown_with_the_decimals_it_is_reported_with(score, shown):
    assert shown_score(score) == shown


LIGHT_WORDS = """
import sys
from bert_ner.words import split_words
print(split_words("Obama's U.S.-based firm."))
print(sorted(name for name in sys.modules if name.split(".")[0] in ("nltk", "scipy")))
import nltk
print(nltk.tokenize.TreebankWordTokenizer().tokenize("a firm") and nltk.tokenize.destructive.NLTKWordTokenizer.__name__)
"""


def test_words_need_one_module_of_nltk_and_a_later_import_of_nltk_is_whole():
    """NLTK's package __init__ imports all of NLTK (and SciPy where installed): the word rules load
    only the module they need, and leave nothing behind that a user's own `import nltk` would miss."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", LIGHT_WORDS], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    words, modules, later = run.stdout.splitlines()
    assert words == "[(0, 5), (5, 7), (8, 18), (19, 23), (23, 24)]"
    assert modules == "[]" and later == "NLTKWordTokenizer"
