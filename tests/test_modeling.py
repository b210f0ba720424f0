"""Building tokenizers and choosing label orders."""

import pytest

from bert_ner.config import ScratchConfig
from bert_ner.modeling import WORDPIECE_SPECIAL_TOKENS, label_order, learn_wordpiece, named_labels, vocabulary

SPECIAL = WORDPIECE_SPECIAL_TOKENS


@pytest.mark.parametrize(
    "sentences, size, lowercase, expected",
    [
        # characters alone and as continuations, then words by frequency (ties alphabetical)
        ([["ab", "ba", "ab"]], 100, False, SPECIAL + ["a", "b", "##a", "##b", "ab", "ba"]),
        # the size cap drops the rarest words first, never a character
        ([["ab", "ba", "ab"]], 10, False, SPECIAL + ["a", "b", "##a", "##b", "ab"]),
        ([["ab", "ba", "ab"]], 3, False, SPECIAL + ["a", "b", "##a", "##b"]),
        # BERT's punctuation splitting comes first: 3-0 is three pieces
        ([["3-0"]], 100, False, SPECIAL + ["-", "0", "3", "##-", "##0", "##3"]),
        ([["Ab", "ab"]], 100, True, SPECIAL + ["a", "b", "##a", "##b", "ab"]),
    ],
)
def test_vocabulary(sentences, size, lowercase, expected):
    assert vocabulary(sentences, size, lowercase) == expected


def test_learned_tokenizer_is_the_same_every_time_and_spells_unseen_words():
    sentences = [["Anna", "Schmidt", "visited", "Oslo", "."], ["Oslo", "won", "3-0", "."]]
    first, second = (learn_wordpiece(sentences, ScratchConfig()) for _ in range(2))
    assert first.get_vocab() == second.get_vocab()
    assert first.tokenize("Anna won") == ["Anna", "won"]
    assert first.tokenize("Sam") == ["S", "##a", "##m"]  # unseen word, seen characters: no [UNK]


@pytest.mark.parametrize(
    "dataset, checkpoint, expected",
    [
        (["O", "B-PER", "I-PER"], None, ["O", "B-PER", "I-PER"]),  # plain encoder: dataset order
        (["O", "B-PER", "I-PER"], ["B-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),  # same labels: keep the head
        (["O", "B-PER", "I-PER"], ["O", "B-LOC", "I-LOC"], ["O", "B-PER", "I-PER"]),  # other labels: new head
    ],
)
def test_label_order(dataset, checkpoint, expected):
    assert label_order(dataset, checkpoint) == expected


def test_named_labels_ignores_placeholder_names():
    from transformers import BertConfig

    assert named_labels(BertConfig(num_labels=3)) is None
    assert named_labels(BertConfig(id2label={0: "O", 1: "B-PER"})) == ["O", "B-PER"]


@pytest.mark.parametrize(
    "name_or_path, warned",
    [
        ("models/all-MiniLM-L6-v2", True),  # demo.yaml with one model.scratch key set on the command line
        ("bert-base-cased", False),  # the default: scratch.yaml names no model of its own
        (None, False),
    ],
)
def test_a_scratch_model_says_a_named_pretrained_one_is_not_used(caplog, name_or_path, warned):
    import logging

    from bert_ner.config import ModelConfig
    from bert_ner.modeling import build_model
    from tests.conftest import wordpiece

    cfg = ModelConfig(name_or_path=name_or_path, scratch=ScratchConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2))
    with caplog.at_level(logging.INFO, logger="bert_ner"):
        build_model(cfg, ["O", "B-PER"], wordpiece(["Anna"]))
    warnings = [record.message for record in caplog.records if record.levelno == logging.WARNING]
    expected = [f"a new BERT with random weights (model.scratch); model.name_or_path ({name_or_path}) is not used"]
    assert warnings == (expected if warned else [])
