"""Entities from raw text, whatever runs the model: what every backend shares.

A `Reader` does all but the model calls, as the saved model's record says (bert_ner.record):
`prepare` splits each text into sentences and words (bert_ner.words, the module train.py scores
with) and encodes them, a sentence per input (between its neighbours' words for a model trained
with context), in overlapping windows (`stride`) where a sentence is longer than the model takes;
`run_model` tags the inputs of all texts in model calls cut by length (`model_calls`); `finish`
groups sub-tokens into words by the encoding's `word_ids()` and decodes tags with the same Viterbi
pass as train.py. A backend only makes one model call: padded inputs in, logits out.
"""

import logging
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from bert_ner.calibration import Calibration, is_probability
from bert_ner.context import room
from bert_ner.errors import UserError
from bert_ner.record import CALIBRATE, ModelRecord
from bert_ner.words import (
    DEFAULT_AGGREGATION,
    DEFAULT_LANGUAGE,
    NO_WORD,
    TREEBANK,
    Decoded,
    decode,
    encode,
    encode_with_context,
    entities,
    line_starts,
    shown_score,
    softmax,
    split_sentences,
    word_scores,
)

log = logging.getLogger("bert_ner")

# What a BERT-style token classifier takes, by the names its tokenizer gives them.
MODEL_INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")
BATCH_SIZE = 32  # the most inputs in one model call (infer.py's and serve.py's --batch-size)
BATCH_SIZE_HELP = (
    "the most model inputs per model call: an input is a sentence of a text (with its neighbours' words, for a "
    f"model trained with context), or a window of one too long for the model (default: {BATCH_SIZE})"
)
# What one more model call costs on a CPU, in padded sub-tokens, when model_calls cuts calls: a
# call's fixed overhead, and the better use of the cores by a larger one (bench/model_calls.py
# measures the range that comes close to the least model time).
CALL_COST = 64


def window_stride(max_length: int) -> int:
    """Sub-tokens shared by neighbouring windows of a long text: a quarter of the window, at most 128.
    A word near one window's edge is scored from the window where it sits furthest from an edge."""
    return min(128, max_length // 4)


Inputs = list[tuple[dict[str, list[int]], list[int | None]]]  # per model input: its sub-token ids by name, and each one's word


@dataclass
class Prepared:
    """One text ready for a model: its words (character spans), the word ranges decoded together
    (`groups`: each sentence), and one model input per sentence, or per window of a long one."""

    text: str
    word_spans: list[tuple[int, int]]
    groups: list[range]
    inputs: Inputs


def windows(tokenizer, words: list[str], first: int, max_length: int | None, stride: int) -> Inputs:
    """Overlapping windows over `words`, the first of which is word `first` of the text."""
    encoded = encode(tokenizer, [words], max_length, stride=stride, return_overflowing_tokens=True)
    return [
        (
            {name: encoded[name][i] for name in MODEL_INPUT_NAMES if name in encoded},
            [None if w is None else first + w for w in encoded.word_ids(i)],
        )
        for i in range(len(encoded["input_ids"]))
    ]


def in_context(
    tokenizer, sentences: list[list[str]], firsts: list[int], context_tokens: int, max_length: int, stride: int
) -> Inputs:
    """One input per sentence, between its neighbours' words; a sentence too long for any context
    is read in windows instead, as without context."""
    encoded, indexes, sizes = encode_with_context(tokenizer, sentences, context_tokens, max_length)
    limit, inputs = room(tokenizer, max_length), []
    for i, (size, first) in enumerate(zip(sizes, firsts)):
        if size > limit:
            inputs += windows(tokenizer, sentences[i], first, max_length, stride)
        else:
            ids = {name: encoded[name][i] for name in MODEL_INPUT_NAMES if name in encoded}
            inputs.append((ids, [None if w == NO_WORD else first + w for w in indexes[i]]))
    return inputs


def prepare(
    tokenizer,
    text: str,
    max_length: int | None = None,
    stride: int = 0,
    context_tokens: int = 0,
    word_rules: str = TREEBANK,
    language: str = DEFAULT_LANGUAGE,
) -> Prepared:
    """Split `text` into sentences and words by the model's `word_rules` and `language`
    (bert_ner.words) and encode them, one input per sentence as train.py encoded them: alone for
    a model trained without context, between its neighbours' words for a model trained with
    `data.context_tokens`. A sentence too long for the model is read in overlapping windows.
    Tags are decoded sentence by sentence, as train.py scored them."""
    sentences = split_sentences(text, line_starts(text), word_rules, language)  # a line ends a sentence
    return encode_text(tokenizer, text, sentences, max_length, stride, context_tokens)


def prepare_words(
    tokenizer, sentences: list[list[str]], max_length: int | None = None, stride: int = 0, context_tokens: int = 0
) -> Prepared:
    """`prepare` for text already split into sentences and words (a CoNLL file's document, to score
    or calibrate on): the words joined by spaces, encoded as `prepare` encodes them."""
    spans: list[list[tuple[int, int]]] = [[] for _ in sentences]
    position = 0
    for words, sentence in zip(sentences, spans):
        for word in words:
            sentence.append((position, position + len(word)))
            position += len(word) + 1
    text = " ".join(word for words in sentences for word in words)
    return encode_text(tokenizer, text, spans, max_length, stride, context_tokens)


def encode_text(
    tokenizer, text: str, sentences: list[list[tuple[int, int]]], max_length: int | None, stride: int, context_tokens: int
) -> Prepared:
    """A text's sentences (their words' character spans) encoded as `prepare` says."""
    word_spans = [word for sentence in sentences for word in sentence]
    firsts = [0, *accumulate(len(sentence) for sentence in sentences)][:-1]
    words = [[text[start:end] for start, end in sentence] for sentence in sentences]
    groups = [range(first, first + len(sentence)) for first, sentence in zip(firsts, sentences)]
    if context_tokens and max_length and sentences:
        inputs = in_context(tokenizer, words, firsts, context_tokens, max_length, stride)
    else:
        inputs = [
            item for first, sentence in zip(firsts, words) for item in windows(tokenizer, sentence, first, max_length, stride)
        ]
    return Prepared(text, word_spans, groups, inputs)


def model_calls(lengths: Sequence[int], batch_size: int, call_cost: int | None = CALL_COST) -> list[list[int]]:
    """Model inputs of these lengths (sub-tokens) grouped into model calls: lists of input indices,
    longest first, each of at most `batch_size` inputs and padded to its first. The cuts make the padded
    sub-tokens plus `call_cost` per call fewest (dynamic programming over the sorted lengths), so
    that short inputs are not padded to a long one's width, nor each given a call of its own.
    `call_cost` None: as few calls as `batch_size` allows, still cut where they pad least (a GPU,
    where a call's kernel launches cost far more than padding).

    >>> model_calls([5, 40, 6, 38], batch_size=4, call_cost=10)
    [[1, 3], [2, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # stable: equal lengths in input order
    if call_cost is None:  # more than all the padding one more call could ever save
        call_cost = 1 + len(lengths) * max(lengths, default=0)
    cost, start = [0] + [float("inf")] * len(order), [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):  # cost[end]: the cheapest calls for the `end` longest inputs
        for first in range(max(0, end - batch_size), end):
            cut = cost[first] + call_cost + (end - first) * lengths[order[first]]
            if cut < cost[end]:
                cost[end], start[end] = cut, first
    calls, end = [], len(order)
    while end:
        calls.append(order[start[end] : end])
        end = start[end]
    return calls[::-1]


def padded(inputs: list[dict[str, list[int]]], names: Sequence[str]) -> dict[str, np.ndarray]:
    """One model call's inputs as int64 arrays [inputs, longest], zero-padded on the right: a
    padded sub-token has attention mask 0 and is not read back (run_model). A model that takes
    no attention mask would read the padding: UserError when inputs of different lengths meet."""
    width = max(len(ids["input_ids"]) for ids in inputs)
    if "attention_mask" not in names and any(len(ids["input_ids"]) < width for ids in inputs):
        raise UserError(
            f"the model takes no attention_mask (its inputs: {', '.join(names)}), so inputs of different "
            "lengths cannot share a model call; use --batch-size 1"
        )
    arrays = {name: np.zeros((len(inputs), width), dtype=np.int64) for name in names}
    for row, ids in enumerate(inputs):
        for name in names:
            arrays[name][row, : len(ids[name])] = ids[name]
    return arrays


def run_model(
    prepared: list[Prepared],
    call: Callable[[list[dict[str, list[int]]]], np.ndarray],
    batch_size: int,
    call_cost: int | None = CALL_COST,
) -> list[list[np.ndarray]]:
    """The label probabilities (shape [sub-tokens, labels]) of each input of each prepared text,
    from `call`: a list of inputs -> logits [inputs, longest, labels]. All the texts' inputs
    share model calls (model_calls, with `call_cost`)."""
    return drain(model_steps(prepared, call, batch_size, call_cost))


# What a step of Reader.steps did: read one text, or made one model call.
READ, MODEL_CALL = "read", "model call"

Steps = Generator[str, None, list]  # yields after each step (READ, MODEL_CALL), returns the result


def model_steps(
    prepared: list[Prepared], call: Callable[[list[dict[str, list[int]]]], np.ndarray], batch_size: int, call_cost: int | None
) -> Steps:
    """`run_model` one model call at a time: yields MODEL_CALL after each."""
    inputs = [ids for text in prepared for ids, _ in text.inputs]
    probabilities: list[np.ndarray] = [np.empty(0)] * len(inputs)
    for group in model_calls([len(ids["input_ids"]) for ids in inputs], batch_size, call_cost):
        logits = call([inputs[i] for i in group])
        for row, i in enumerate(group):
            probabilities[i] = softmax(logits[row, : len(inputs[i]["input_ids"])])
        yield MODEL_CALL
    per_text, first = [], 0
    for text in prepared:
        per_text.append(probabilities[first : first + len(text.inputs)])
        first += len(text.inputs)
    return per_text


def drain(steps: Steps) -> list:
    """Run steps to the end; their result."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


def words_of(prepared: Prepared, probabilities: list[np.ndarray], aggregation: str) -> tuple[np.ndarray, np.ndarray]:
    """The label probabilities of each word of a prepared text (shape [words, labels]) and which
    words the model saw (bert_ner.words.word_scores), from those of each of its inputs (shape
    [sub-tokens of that input, labels])."""
    windows = [(word_ids, rows) for (_, word_ids), rows in zip(prepared.inputs, probabilities)]
    return word_scores(windows, len(prepared.word_spans), aggregation)


def finish(
    prepared: Prepared,
    probabilities: list[np.ndarray],
    labels: list[str],
    aggregation: str,
    use_viterbi: bool,
    calibration: Calibration | None = None,
) -> list[dict]:
    """The entities of a prepared text from the label probabilities of each of its inputs (shape
    [sub-tokens of that input, labels]): one vector per word, then tags decoded group by group,
    and scores calibrated where the model has a `calibration`."""
    scores, seen = words_of(prepared, probabilities, aggregation)
    temperature = calibration.temperature if calibration else 1.0
    decoded = Decoded([], [])
    for group in prepared.groups:  # sentence by sentence where the model was trained so, as train.py scores
        part = decode(scores[group.start : group.stop], seen[group.start : group.stop], labels, use_viterbi, temperature)
        decoded.tags += part.tags
        decoded.probabilities += part.probabilities
    return entities(prepared.text, prepared.word_spans, decoded, calibration.score if calibration else None)


def kept(entities: list[dict], min_score: float = 0.0) -> list[dict]:
    """Entity records scored at least `min_score`, sorted by position."""
    return sorted((entity for entity in entities if entity["score"] >= min_score), key=lambda entity: entity["start"])


def score_floor(asked: float | None, record: ModelRecord) -> float:
    """The score below which entities are dropped: `asked` (a probability), or the threshold
    recorded with the model; ValueError for anything else."""
    if asked is None:
        return recorded_threshold(record)
    if not is_probability(asked):
        raise ValueError(f"min_score {asked!r} is not a probability (0 to 1); 0 keeps every entity")
    return float(asked)


def floor_precision(asked: float | None, record: ModelRecord) -> float | None:
    """The validation precision the score floor (`score_floor`) was recorded for, when the floor is
    the recorded threshold (`asked` None, or the same score); else None."""
    calibration = record.calibration
    if calibration is None or calibration.threshold is None or asked not in (None, calibration.threshold):
        return None
    return calibration.min_precision


def recorded_threshold(record: ModelRecord) -> float:
    """The score threshold recorded with a model for a precision (bert_ner.calibration), else 0."""
    calibration = record.calibration
    return calibration.threshold if calibration is not None and calibration.threshold is not None else 0.0


def threshold_note(record: ModelRecord, model: str) -> str | None:
    """What a user of the model at `model` should be told of its recorded threshold when no
    min_score is given: the entities it leaves out, or that none reached its precision; None
    when there is nothing to tell."""
    calibration = record.calibration
    if calibration is None:
        return None
    if calibration.unreached_precision is not None:
        return (
            f"{model} was calibrated for precision {calibration.unreached_precision:g}, but no score reached it on "
            "validation, so it holds no threshold and every entity is kept"
        )
    if calibration.threshold:
        return (
            f"entities scored below {shown_score(calibration.threshold)} are left out (the threshold recorded with the "
            f"model for precision {calibration.min_precision:g} on validation); --min-score 0 keeps them"
        )
    return None


def require_calibrated(record: ModelRecord, model: str) -> None:
    """UserError when the model at `model` has no calibrated scores to estimate precision by."""
    calibration = record.calibration
    if calibration is None or calibration.points is None:
        raise UserError(
            f"{model}: its entity scores are not calibrated, so they say nothing of precision; calibrate it "
            f"({CALIBRATE}), or drop --min-precision for --min-score"
        )


def chunks(items: Iterator[str], size: int, can_start: Callable[[str], bool] = lambda item: True) -> Iterator[list[str]]:
    """Consecutive lists of `size` items or a few more, read lazily: a new list starts only at an
    item for which `can_start` holds (infer.py --documents: at a blank line, never inside a
    document). When reading fails midway, the items read so far still come out before the error does."""
    chunk: list[str] = []
    try:
        for item in items:
            if len(chunk) >= size and can_start(item):
                yield chunk
                chunk = []
            chunk.append(item)
    except Exception:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


def longest_input(limits: list[int], requested: int | None) -> int:
    """The longest input in sub-tokens: `requested` (data.max_length), but never more than the
    smallest of `limits` (the tokenizer's model_max_length, the model's position embeddings)."""
    limit = min(limits)
    if requested is not None and requested > limit:
        log.warning(f"data.max_length {requested} is more than the model takes; using {limit}")
    return limit if requested is None else min(requested, limit)


ModelCall = Callable[[list[dict[str, list[int]]]], np.ndarray]  # inputs -> logits [inputs, longest, labels]


class Reader:
    """Everything from raw text to entities but the model calls, for one model: its tokenizer
    (a transformers fast tokenizer, or bert_ner.onnx_backend.FastTokenizer), its label names in id
    order, the longest input it takes (`input_limit`, sub-tokens) and its record."""

    def __init__(
        self, tokenizer, labels: list[str], input_limit: int, record: ModelRecord, aggregation: str = DEFAULT_AGGREGATION
    ):
        self.tokenizer, self.labels, self.record, self.aggregation = tokenizer, labels, record, aggregation
        self.max_length = longest_input([input_limit], record.max_length)
        self.stride = window_stride(self.max_length)

    def prepare(self, text: str) -> Prepared:
        record = self.record
        return prepare(
            self.tokenizer, text, self.max_length, self.stride, record.context_tokens, record.word_rules, record.language
        )

    def prepare_words(self, sentences: list[list[str]]) -> Prepared:
        return prepare_words(self.tokenizer, sentences, self.max_length, self.stride, self.record.context_tokens)

    def finish(self, prepared: Prepared, probabilities: list[np.ndarray]) -> list[dict]:
        return finish(prepared, probabilities, self.labels, self.aggregation, self.record.viterbi, self.record.calibration)

    def tag(
        self, texts: list[str], call: ModelCall, batch_size: int = BATCH_SIZE, call_cost: int | None = CALL_COST
    ) -> list[list[dict]]:
        """Each text's entity records, in input order; the texts' inputs share model calls
        (`run_model`) and a blank text gets none without a model call."""
        return drain(self.steps(texts, call, batch_size, call_cost))

    def steps(self, texts: list[str], call: ModelCall, batch_size: int = BATCH_SIZE, call_cost: int | None = CALL_COST) -> Steps:
        """`tag` in steps of bounded work, each text read and each model call one step: for a
        caller that does other work between them (serve.py, so that one long request cannot hold
        the model for long while short ones wait). Returns what `tag` returns."""
        results: list[list[dict]] = [[] for _ in texts]
        todo = [i for i, text in enumerate(texts) if text.strip()]
        prepared = []
        for i in todo:
            prepared.append(self.prepare(texts[i]))
            yield READ
        probabilities = yield from model_steps(prepared, call, batch_size, call_cost)
        for i, text, rows in zip(todo, prepared, probabilities):
            results[i] = self.finish(text, rows)
        return results
