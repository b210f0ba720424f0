"""Word labels -> sub-token labels, for a fast tokenizer's `word_ids()`."""

from ner.context import LEFT, RIGHT
from ner.data import TAGS, TOKENS

IGNORE_INDEX = -100  # PyTorch's cross-entropy skips this label: special tokens, later sub-tokens


def inside_labels(labels: list[str]) -> list[int]:
    """For each label id, the id to give a word's later sub-tokens: B-X -> I-X, anything else itself."""
    index = {label: i for i, label in enumerate(labels)}
    return [index.get("I-" + label[2:], i) if label.startswith("B-") else i for i, label in enumerate(labels)]


def align_labels(word_ids: list[int | None], word_labels: list[int], label_all_tokens: bool, inside: list[int]) -> list[int]:
    """One label per sub-token: the word's label on its first sub-token; on later ones IGNORE_INDEX,
    or the word's I- label when `label_all_tokens`; IGNORE_INDEX on special tokens and on words
    whose label is IGNORE_INDEX (context)."""
    aligned, previous = [], None
    for word in word_ids:
        if word is None or word_labels[word] == IGNORE_INDEX:
            aligned.append(IGNORE_INDEX)
        elif word != previous:
            aligned.append(word_labels[word])
        else:
            aligned.append(inside[word_labels[word]] if label_all_tokens else IGNORE_INDEX)
        previous = word
    return aligned


def words_kept(word_ids: list[int | None], first: int, count: int) -> int:
    """How many of the words first..first+count-1 have at least one sub-token left after truncation."""
    return len({w for w in word_ids if w is not None and first <= w < first + count})


def tokenize_and_align(batch, tokenizer, label2id: dict[str, int], max_length: int, label_all_tokens: bool) -> dict:
    """Tokenize a batch of sentences, between their context words when the batch has them, and give
    every sub-token its label (for `Dataset.map`). Context words are never labelled."""
    no_context = [[] for _ in batch[TOKENS]]
    lefts, rights = batch.get(LEFT, no_context), batch.get(RIGHT, no_context)
    words = [left + sentence + right for left, sentence, right in zip(lefts, batch[TOKENS], rights)]
    encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    inside = inside_labels(list(label2id))
    encoded["labels"], encoded["words_kept"] = [], []
    for i, (left, tags, right) in enumerate(zip(lefts, batch[TAGS], rights)):
        word_ids = encoded.word_ids(i)
        word_labels = [IGNORE_INDEX] * len(left) + [label2id[tag] for tag in tags] + [IGNORE_INDEX] * len(right)
        encoded["labels"].append(align_labels(word_ids, word_labels, label_all_tokens, inside))
        encoded["words_kept"].append(words_kept(word_ids, len(left), len(tags)))
    return encoded
