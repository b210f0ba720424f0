"""Word labels to sub-token labels."""

import pytest

from ner.align import IGNORE_INDEX, align_labels, inside_labels, tokenize_and_align, words_kept
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
        "[CLS]", "Bar", "##ack", "Ob", "##ama", "was", "born", "in", "Ha", "##wai", "##i", "[SEP]",
    ]
    assert encoded["labels"][0] == [X, 1, X, 2, X, 0, 0, 0, 3, X, X, X]
    assert encoded["words_kept"] == [6]

    all_tokens = tokenize_and_align(batch, tokenizer, label2id, max_length=64, label_all_tokens=True)
    assert all_tokens["labels"][0] == [X, 1, 2, 2, 2, 0, 0, 0, 3, 4, 4, X]

    truncated = tokenize_and_align(batch, tokenizer, label2id, max_length=6, label_all_tokens=False)
    assert truncated["labels"][0] == [X, 1, X, 2, X, X]  # [CLS] + 4 pieces + [SEP]
    assert truncated["words_kept"] == [2]
