"""Entities from raw text with a transformers token-classification pipeline.

The pipeline subclass below keeps transformers' parameters, devices and inference mode; the rest
is this module's, shared with the ONNX backend: `prepare` splits each text into sentences and
words (ner.words, the module train.py scores with) and encodes them, a sentence per input, in
overlapping windows (`stride`) where a sentence is longer than the model takes; `run_model` tags
the inputs of all texts in model calls cut by length (`model_calls`); `finish` groups sub-tokens
into words by the encoding's `word_ids()` and decodes tags with the same Viterbi pass as train.py.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, islice

import numpy as np

from ner.errors import UserError
from ner.words import (
    DEFAULT_AGGREGATION,
    NO_WORD,
    Decoded,
    decode,
    encode,
    encode_with_context,
    entities,
    labels_of,
    softmax,
    split_sentences,
    word_scores,
)

# What a BERT-style token classifier takes, by the names its tokenizer gives them.
MODEL_INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")
BATCH_SIZE = 32  # the most inputs in one model call (infer.py's and serve.py's --batch-size)
BATCH_SIZE_HELP = (
    "the most model inputs per model call: an input is a sentence of a text (with its neighbours' words, for a "
    f"model trained with context), or a window of one too long for the model (default: {BATCH_SIZE})"
)
# What one more model call costs, in padded sub-tokens, when model_calls cuts calls: a call's fixed
# overhead, and the better use of the cores by a larger one. For MiniLM on 2 CPU cores, any value
# from 40 to 100 came within 5% of the least model time with torch and with int8, in groups of 256
# texts and of 32; model time was 6-22% below calls of a fixed 32 or 8 (bench/model_calls.py).
CALL_COST = 64


def window_stride(max_length: int) -> int:
    """Sub-tokens shared by neighbouring windows of a long text: a quarter of the window, at most 128.
    A word near one window's edge is scored from the window where it sits furthest from an edge."""
    return min(128, max_length // 4)


def resolve_device(device: str) -> str:
    """cpu / cuda / auto (cuda when there is one); cuda without one is a UserError."""
    if device == "cpu":
        return device
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}, but it finds no GPU"
        raise UserError(f"--device cuda: PyTorch {torch.__version__} is {build}; use --device cpu (or auto)")
    return "cuda" if torch.cuda.is_available() else "cpu"


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
    from ner.context import room

    encoded, indexes, sizes = encode_with_context(tokenizer, sentences, context_tokens, max_length)
    limit, inputs = room(tokenizer, max_length), []
    for i, (size, first) in enumerate(zip(sizes, firsts)):
        if size > limit:
            inputs += windows(tokenizer, sentences[i], first, max_length, stride)
        else:
            ids = {name: encoded[name][i] for name in MODEL_INPUT_NAMES if name in encoded}
            inputs.append((ids, [None if w == NO_WORD else first + w for w in indexes[i]]))
    return inputs


def prepare(tokenizer, text: str, max_length: int | None = None, stride: int = 0, context_tokens: int = 0) -> Prepared:
    """Split `text` into sentences and words and encode them, one input per sentence as train.py
    encoded them: alone for a model trained without context, between its neighbours' words for a
    model trained with `data.context_tokens`. A sentence too long for the model is read in
    overlapping windows. Tags are decoded sentence by sentence, as train.py scored them."""
    line_starts = tuple(i + 1 for i, character in enumerate(text) if character == "\n")  # a line ends a sentence
    sentences = split_sentences(text, line_starts)
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
    where a call's kernel launches cost far more than padding; not measured, as no GPU was lent).

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
    inputs = [ids for text in prepared for ids, _ in text.inputs]
    probabilities: list[np.ndarray] = [np.empty(0)] * len(inputs)
    for group in model_calls([len(ids["input_ids"]) for ids in inputs], batch_size, call_cost):
        logits = call([inputs[i] for i in group])
        for row, i in enumerate(group):
            probabilities[i] = softmax(logits[row, : len(inputs[i]["input_ids"])])
    per_text, first = [], 0
    for text in prepared:
        per_text.append(probabilities[first : first + len(text.inputs)])
        first += len(text.inputs)
    return per_text


def finish(
    prepared: Prepared, probabilities: list[np.ndarray], labels: list[str], aggregation: str, use_viterbi: bool
) -> list[dict]:
    """The entities of a prepared text from the label probabilities of each of its inputs (shape
    [sub-tokens of that input, labels]): one vector per word, then tags decoded group by group."""
    scores, seen = word_scores(
        [(word_ids, rows) for (_, word_ids), rows in zip(prepared.inputs, probabilities)], len(prepared.word_spans), aggregation
    )
    decoded = Decoded([], [])
    for group in prepared.groups:  # sentence by sentence where the model was trained so, as train.py scores
        part = decode(scores[group.start : group.stop], seen[group.start : group.stop], labels, use_viterbi)
        decoded.tags += part.tags
        decoded.probabilities += part.probabilities
    return entities(prepared.text, prepared.word_spans, decoded)


def word_pipeline():
    """transformers' token-classification pipeline on ner.words' words and entities (`prepare`
    and `finish` above), run under torch.inference_mode instead of no_grad (no autograd
    bookkeeping at all). Made on demand: importing transformers takes seconds, and infer.py
    --help must not wait for it."""
    import torch
    from transformers import TokenClassificationPipeline

    class WordPipeline(TokenClassificationPipeline):
        """The pipeline's parameters, devices and inference mode around `prepare`, `run_model`
        and `finish`. Its model calls are run_model's, cut by length across all the texts given
        (model_calls), where the parent's are runs of `batch_size` inputs in order."""

        def get_inference_context(self):
            return torch.inference_mode

        def _sanitize_parameters(
            self, max_length=None, stride=None, context_tokens=None, aggregation=None, use_viterbi=None, **_
        ):
            # The parent's __call__ adds is_split_into_words and delimiter: the words are ours here.
            preprocess = {"max_length": max_length, "stride": stride, "context_tokens": context_tokens}
            postprocess = {"aggregation": aggregation, "use_viterbi": use_viterbi}
            drop_unset = lambda params: {k: v for k, v in params.items() if v is not None}  # noqa: E731
            return drop_unset(preprocess), {}, drop_unset(postprocess)

        def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
            """Every call of the pipeline comes here, with one text or many. A list's texts are
            tagged together; a generator's or Dataset's `batch_size` texts at a time, as they come,
            so that they stream. num_workers is not used: the texts are prepared in this process."""
            labels = labels_of(self.model.config.id2label)
            options = {"aggregation": DEFAULT_AGGREGATION, "use_viterbi": True, **postprocess_params}
            call_cost = CALL_COST if self.device.type == "cpu" else None  # None: the fewest calls
            texts = iter(inputs)
            size = len(inputs) if isinstance(inputs, list) else batch_size
            while group := list(islice(texts, max(size, 1))):
                prepared = [prepare(self.tokenizer, text, **preprocess_params) for text in group]
                for text, rows in zip(prepared, run_model(prepared, self.logits, batch_size, call_cost)):
                    yield finish(text, rows, labels, **options)

        def logits(self, inputs: list[dict[str, list[int]]]) -> np.ndarray:
            """One model call: logits [inputs, longest, labels], as float32 on the CPU."""
            names = [name for name in MODEL_INPUT_NAMES if name in self.tokenizer.model_input_names]
            arrays = {name: torch.from_numpy(array) for name, array in padded(inputs, names).items()}
            return self.forward(arrays)["logits"].float().numpy()  # forward: the device, inference mode, and back

        def _forward(self, inputs):
            return {"logits": self.model(**inputs)["logits"]}

    return WordPipeline


def set_threads(threads: int | None) -> None:
    """CPU threads for PyTorch; None keeps its default (one per physical core)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def make_pipeline(model, tokenizer, aggregation: str = DEFAULT_AGGREGATION, device: str = "cpu", trained=None):
    """The pipeline for `model`, encoding and decoding as `trained` (the model's DataConfig,
    ner.config.trained_data_config; None = UNTRAINED_DATA) says: its max_length, document context
    and Viterbi."""
    from transformers.utils import logging as transformers_logging

    from ner.config import UNTRAINED_DATA
    from ner.modeling import input_limit

    trained = trained or UNTRAINED_DATA
    max_length = input_limit(tokenizer, model, trained.max_length)
    # The pipeline logs an error for a model class it does not list for token classification
    # (a checkpoint with a custom architecture), though it runs it fine; keep that off the screen.
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity(transformers_logging.CRITICAL)
    try:
        return word_pipeline()(
            model=model,
            tokenizer=tokenizer,
            device=resolve_device(device),
            batch_size=BATCH_SIZE,  # when a caller gives none (the parent's default is 1)
            max_length=max_length,
            stride=window_stride(max_length),
            context_tokens=trained.context_tokens,
            aggregation=aggregation,
            use_viterbi=trained.viterbi,
        )
    finally:
        transformers_logging.set_verbosity(verbosity)


def clean_entities(entities: list[dict], min_score: float = 0.0) -> list[dict]:
    """Entities scored at least `min_score`, sorted by position."""
    return sorted((entity for entity in entities if entity["score"] >= min_score), key=lambda entity: entity["start"])


def predict(ner, texts: list[str], batch_size: int, min_score: float = 0.0) -> list[list[dict]]:
    """Entities for each text, in input order; blank texts get none without a model call. The
    tagger `ner` cuts the texts' inputs into model calls of at most `batch_size` (model_calls)."""
    results: list[list[dict]] = [[] for _ in texts]
    todo = [i for i, text in enumerate(texts) if text.strip()]
    if todo:
        outputs = ner([texts[i] for i in todo], batch_size=batch_size)
        for i, entities in zip(todo, outputs):
            results[i] = clean_entities(entities, min_score)
    return results


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
