"""Word labels -> sub-token labels, for a fast tokenizer's `word_ids()`."""

from ner.data import TAGS, TOKENS

IGNORE_INDEX = -100  # PyTorch's cross-entropy skips this label: special tokens, later sub-tokens


def inside_labels(labels: list[str]) -> list[int]:
    """For each label id, the id to give a word's later sub-tokens: B-X -> I-X, anything else itself."""
    index = {label: i for i, label in enumerate(labels)}
    return [index.get("I-" + label[2:], i) if label.startswith("B-") else i for i, label in enumerate(labels)]


def align_labels(word_ids: list[int | None], word_labels: list[int], label_all_tokens: bool, inside: list[int]) -> list[int]:
    """One label per sub-token: the word's label on its first sub-token; on later ones IGNORE_INDEX,
    or the word's I- label when `label_all_tokens`; IGNORE_INDEX on special tokens."""
    aligned, previous = [], None
    for word in word_ids:
        if word is None:
            aligned.append(IGNORE_INDEX)
        elif word != previous:
            aligned.append(word_labels[word])
        else:
            aligned.append(inside[word_labels[word]] if label_all_tokens else IGNORE_INDEX)
        previous = word
    return aligned


def words_kept(word_ids: list[int | None]) -> int:
    """How many words have at least one sub-token left after truncation."""
    return max((w for w in word_ids if w is not None), default=-1) + 1


def tokenize_and_align(batch, tokenizer, label2id: dict[str, int], max_length: int, label_all_tokens: bool) -> dict:
    """Tokenize a batch of word lists and give every sub-token its label (for `Dataset.map`)."""
    encoded = tokenizer(batch[TOKENS], is_split_into_words=True, truncation=True, max_length=max_length)
    inside = inside_labels(list(label2id))
    encoded["labels"], encoded["words_kept"] = [], []
    for i, tags in enumerate(batch[TAGS]):
        word_ids = encoded.word_ids(i)
        word_labels = [label2id[tag] for tag in tags]
        encoded["labels"].append(align_labels(word_ids, word_labels, label_all_tokens, inside))
        encoded["words_kept"].append(words_kept(word_ids))
    return encoded
