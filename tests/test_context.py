"""Document context: which neighbouring words each sentence is encoded with, and that they are never labelled."""

import pytest

from bert_ner.context import LEFT, RIGHT, add_context, context_words, documents_of, side_budgets, sub_token_lengths
from bert_ner.data import DOCUMENT, NO_DOCUMENT, TAGS, TOKENS
from bert_ner.words import IGNORE_INDEX, tokenize_and_align
from tests.conftest import wordpiece

X = IGNORE_INDEX


@pytest.mark.parametrize(
    "sentence, left_available, right_available, context_tokens, limit, expected",
    [
        (10, 100, 100, 32, 510, (32, 32)),  # plenty of room: the full budget on both sides
        (10, 100, 100, 64, 100, (45, 45)),  # the window is the limit: share the room evenly
        (10, 5, 100, 64, 100, (5, 64)),  # document start: little on the left
        (10, 5, 100, 100, 100, (5, 85)),  # ... and the right side may use what the left leaves
        (10, 100, 5, 100, 100, (85, 5)),  # document end, mirrored
        (10, 0, 0, 64, 100, (0, 0)),  # a one-sentence document
        (100, 50, 50, 64, 100, (0, 0)),  # the sentence fills the window
        (150, 50, 50, 64, 100, (0, 0)),  # the sentence is longer than the window: no context, truncated
        (10, 100, 100, 0, 100, (0, 0)),  # context off
        (9, 100, 100, 64, 100, (45, 46)),  # odd room: one sub-token more on the right
    ],
)
def test_side_budgets(sentence, left_available, right_available, context_tokens, limit, expected):
    assert side_budgets(sentence, left_available, right_available, context_tokens, limit) == expected


@pytest.mark.parametrize(
    "documents, expected",
    [
        ([0, 0, 1, 1], [range(0, 2), range(2, 4)]),
        ([NO_DOCUMENT, NO_DOCUMENT], [range(0, 1), range(1, 2)]),  # no document: each sentence alone
        ([0, NO_DOCUMENT, 0], [range(0, 1), range(1, 2), range(2, 3)]),
        ([], []),
    ],
)
def test_documents_of(documents, expected):
    assert documents_of(documents) == expected


SENTENCES = [["a", "b"], ["c"], ["d", "e", "f"], ["g"]]
LENGTHS = [[1, 2], [1], [1, 1, 3], [1]]  # sub-tokens per word


@pytest.mark.parametrize(
    "documents, context_tokens, limit, expected",
    [
        # budget 3 per side: whole words only, nearest first; f (3 pieces) would overflow
        ([0, 0, 0, 1], 3, 100, [([], ["c", "d", "e"]), (["a", "b"], ["d", "e"]), (["b", "c"], []), ([], [])]),
        # budget 1: "b" has 2 pieces, so sentence 1 gets nothing on the left
        ([0, 0, 0, 0], 1, 100, [([], ["c"]), ([], ["d"]), (["c"], ["g"]), ([], [])]),
        # a tight window of 6: the room after each sentence is shared, whole words only
        ([0, 0, 0, 0], 8, 6, [([], ["c", "d", "e"]), (["b"], ["d", "e"]), ([], ["g"]), (["d", "e", "f"], [])]),
        ([NO_DOCUMENT] * 4, 8, 100, [([], [])] * 4),
        ([0, 0, 0, 0], 0, 100, [([], [])] * 4),
    ],
)
def test_context_words(documents, context_tokens, limit, expected):
    assert context_words(SENTENCES, LENGTHS, documents, context_tokens, limit) == expected


def test_context_words_stops_at_the_edge_of_a_sentence_too_long_for_the_window():
    assert context_words([["x"] * 10, ["y"]], [[1] * 10, [1]], [0, 0], 5, 8) == [([], []), (["x"] * 5, [])]


def test_encoded_sentence_sits_between_its_neighbours_and_only_it_is_labelled():
    tokenizer = wordpiece(["Anna", "sang", "Oslo", "won", "Rome", "fell", "."])
    batch = {
        TOKENS: [["Anna", "sang", "."], ["Oslo", "won", "."], ["Rome", "fell", "."]],
        TAGS: [["B-PER", "O", "O"], ["B-LOC", "O", "O"], ["B-LOC", "O", "O"]],
        DOCUMENT: [0, 0, 1],
    }
    batch |= add_context(batch, tokenizer, context_tokens=2, limit=64)
    assert batch[LEFT] == [[], ["sang", "."], []] and batch[RIGHT] == [["Oslo", "won"], [], []]
    label2id = {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3, "I-LOC": 4}
    encoded = tokenize_and_align(batch, tokenizer, label2id, max_length=64, label_all_tokens=True)
    second = tokenizer.convert_ids_to_tokens(encoded["input_ids"][1])
    assert second == ["[CLS]", "sang", ".", "Oslo", "won", ".", "[SEP]"]
    assert encoded["labels"][1] == [X, X, X, 3, 0, 0, X]
    assert encoded["labels"][0] == [X, 1, 0, 0, X, X, X]  # right context: Oslo won
    assert encoded["words_kept"] == [3, 3, 3]


@pytest.mark.parametrize("probability, share", [(0.0, 0.0), (1.0, 1.0), (0.5, 0.5), (0.2, 0.2)])
def test_drops_context_draws_the_share_asked_for(probability, share):
    from bert_ner.context import drops_context

    drawn = [drops_context(42, epoch, sentence, probability) for epoch in range(3) for sentence in range(1000)]
    assert sum(drawn) / len(drawn) == pytest.approx(share, abs=0.03)


def test_drops_context_is_fixed_per_seed_epoch_and_sentence_and_new_each_epoch():
    from bert_ner.context import drops_context

    first = [drops_context(42, 0, i, 0.5) for i in range(200)]
    assert first == [drops_context(42, 0, i, 0.5) for i in range(200)]  # a resumed run sees the same
    assert first != [drops_context(42, 1, i, 0.5) for i in range(200)]  # another epoch draws anew
    assert first != [drops_context(1, 0, i, 0.5) for i in range(200)]


def test_context_dropout_dataset_shows_sentences_alone_when_drawn():
    from bert_ner.context import drops_context
    from bert_ner.trainer import ContextDropout

    with_context = [{"input_ids": [1, 7, 8, 9, 2], "labels": [X, X, 3, X, X], "word_index": [0]} for _ in range(50)]
    alone = [{"input_ids": [1, 8, 2], "labels": [X, 3, X], "word_index": [0]} for _ in range(50)]
    dataset = ContextDropout(with_context, alone, 0.5, seed=7)
    for epoch in (0, 1):
        dataset.epoch = epoch
        for i in range(50):
            expected = alone[i] if drops_context(7, epoch, i, 0.5) else with_context[i]
            assert dataset[i] == {"input_ids": expected["input_ids"], "labels": expected["labels"]}  # model inputs only


def test_counting_sub_tokens_of_a_long_sentence_gives_no_over_length_warning(capfd):
    """sub_token_lengths only counts; transformers' "longer than the maximum" warning would mislead."""
    tokenizer = wordpiece(["word"])
    tokenizer.model_max_length = 8
    assert sub_token_lengths(tokenizer, [["word"] * 20]) == [[1] * 20]
    assert "longer than the specified maximum" not in capfd.readouterr().err
