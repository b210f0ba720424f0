"""Document context: each sentence is encoded between words of its neighbours in the same document.

Only the sentence's own words are labelled and scored; the context words carry IGNORE_INDEX. This
is how the BERT paper reached 92.4 F1 on CoNLL-2003 (and what FLERT studies). Context is taken as
whole words, nearest first, within a budget of sub-tokens per side.
"""

from bisect import bisect_left, bisect_right
from itertools import accumulate

from bert_ner.tags import DOCUMENT, NO_DOCUMENT, TOKENS

LEFT, RIGHT = "left_context", "right_context"


def side_budgets(sentence: int, left_available: int, right_available: int, context_tokens: int, limit: int) -> tuple[int, int]:
    """Sub-tokens of context to take left and right of a sentence of `sentence` sub-tokens.

    Each side gets up to `context_tokens`. When the window (`limit` sub-tokens, special tokens
    excluded) cannot hold that much, the room after the sentence is shared evenly, and a side
    with less context than its share (a document edge) leaves the rest to the other side.
    """
    room = max(limit - sentence, 0)
    left, right = min(context_tokens, left_available), min(context_tokens, right_available)
    if left + right <= room:
        return left, right
    if left <= room // 2:
        return left, room - left
    if right <= room - room // 2:
        return room - right, right
    return room // 2, room - room // 2


def documents_of(documents: list[int]) -> list[range]:
    """Runs of consecutive sentences that share a document id; a sentence without one stands alone."""
    runs, start = [], 0
    for i in range(1, len(documents) + 1):
        if i == len(documents) or documents[i] != documents[start] or documents[i] == NO_DOCUMENT:
            runs.append(range(start, i))
            start = i
    return runs


def context_words(
    sentences: list[list[str]], lengths: list[list[int]], documents: list[int], context_tokens: int, limit: int
) -> list[tuple[list[str], list[str]]]:
    """For every sentence, the words of its neighbours to put on its left and on its right.

    `lengths[i][j]` is how many sub-tokens word j of sentence i becomes. Words are taken whole,
    nearest first, and never across a document boundary.
    """
    result: list[tuple[list[str], list[str]]] = [([], []) for _ in sentences]
    if context_tokens <= 0:
        return result
    for run in documents_of(documents):
        words = [w for i in run for w in sentences[i]]
        ends = [0, *accumulate(n for i in run for n in lengths[i])]  # sub-tokens before each word
        first = 0  # index in `words` of the current sentence's first word
        for i in run:
            last = first + len(sentences[i])
            size = ends[last] - ends[first]
            left, right = side_budgets(size, ends[first], ends[-1] - ends[last], context_tokens, limit)
            # Whole words only: the furthest word boundaries within `left` / `right` sub-tokens.
            left_start = bisect_left(ends, ends[first] - left, 0, first + 1)
            right_end = bisect_right(ends, ends[last] + right) - 1
            result[i] = (words[left_start:first], words[last:right_end])
            first = last
    return result


def sub_token_lengths(tokenizer, sentences: list[list[str]]) -> list[list[int]]:
    """How many sub-tokens each word of each sentence becomes (special tokens excluded)."""
    if not sentences:
        return []
    # Only counted, never fed to the model: transformers' warning about inputs over its limit would mislead.
    pieces = tokenizer(sentences, is_split_into_words=True, add_special_tokens=False, verbose=False)
    lengths = []
    for i, words in enumerate(sentences):
        counts = [0] * len(words)
        for word in pieces.word_ids(i):
            counts[word] += 1
        lengths.append(counts)
    return lengths


def room(tokenizer, max_length: int) -> int:
    """Sub-tokens an input of `max_length` holds besides the special tokens."""
    return max_length - len(tokenizer("")["input_ids"])


def add_context(batch: dict, tokenizer, context_tokens: int, limit: int) -> dict:
    """`Dataset.map` over a whole split (batch_size=None): the LEFT and RIGHT context word columns."""
    lengths = sub_token_lengths(tokenizer, batch[TOKENS])
    pairs = context_words(batch[TOKENS], lengths, batch[DOCUMENT], context_tokens, limit)
    return {LEFT: [left for left, _ in pairs], RIGHT: [right for _, right in pairs]}


def with_context(dataset, tokenizer, context_tokens: int, max_length: int):
    """`dataset` with LEFT and RIGHT context columns for inputs of at most `max_length` sub-tokens."""
    limit = room(tokenizer, max_length)
    options = {"tokenizer": tokenizer, "context_tokens": context_tokens, "limit": limit}
    return dataset.map(add_context, batched=True, batch_size=None, fn_kwargs=options)  # neighbours: the whole split


def has_documents(splits) -> bool:
    """Whether any sentence of any split belongs to a document (context needs one)."""
    return any(d != NO_DOCUMENT for dataset in splits.values() for d in dataset[DOCUMENT])


def drops_context(seed: int, epoch: int, sentence: int, probability: float) -> bool:
    """Whether training sentence `sentence` is shown without its context in `epoch`
    (data.context_dropout, FLERT's context dropout): a fixed draw per run seed, epoch and sentence,
    so that a resumed run sees what the uninterrupted one would have."""
    import random

    return random.Random(f"{seed}:{epoch}:{sentence}").random() < probability
