"""Entities from raw text with a transformers token-classification pipeline.

The pipeline does the model work: batching, devices, and windows with overlap (`stride`) for texts
longer than the model takes. What a word is and what an entity is come from ner.words, the module
train.py scores with: the pipeline subclass below splits the text into its words, groups
sub-tokens by the encoding's `word_ids()`, and decodes tags with the same Viterbi pass.
"""

from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate

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
BATCH_SIZE = 32  # inputs per model call in infer.py (serve.py's calls are smaller: ner.serving.MODEL_BATCH)


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


def line_groups(sentences: list[list[tuple[int, int]]], line_starts: tuple[int, ...]) -> list[range]:
    """The word ranges of each line of a text (one range for a text of one line): tags are
    decoded line by line, so that no entity runs across a line break."""
    groups: list[range] = []
    first, previous_line = 0, None
    for sentence in sentences:
        line = bisect_right(line_starts, sentence[0][0])
        if groups and line == previous_line:
            groups[-1] = range(groups[-1].start, first + len(sentence))
        else:
            groups.append(range(first, first + len(sentence)))
        first, previous_line = first + len(sentence), line
    return groups or [range(0)]


Inputs = list[tuple[dict[str, list[int]], list[int | None]]]  # per model input: its sub-token ids by name, and each one's word


@dataclass
class Prepared:
    """One text ready for a model: its words (character spans), the word ranges decoded together
    (`groups`: each sentence, or each line), and one model input per window or sentence."""

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
    """Split `text` into sentences and words and encode them. A model trained without context
    reads each line's words whole, in overlapping windows when they are too many; a model trained
    with `data.context_tokens` reads each sentence between its neighbours' words, as train.py
    encoded it, and its tags are decoded sentence by sentence, as train.py scored them."""
    line_starts = tuple(i + 1 for i, character in enumerate(text) if character == "\n")  # a line ends a sentence
    sentences = split_sentences(text, line_starts)
    word_spans = [word for sentence in sentences for word in sentence]
    firsts = [0, *accumulate(len(sentence) for sentence in sentences)][:-1]
    words = [[text[start:end] for start, end in sentence] for sentence in sentences]
    if context_tokens and max_length and sentences:
        inputs = in_context(tokenizer, words, firsts, context_tokens, max_length, stride)
        groups = [range(first, first + len(sentence)) for first, sentence in zip(firsts, sentences)]
    else:  # each line alone, as infer.py reads lines without --documents
        groups = line_groups(sentences, line_starts)
        flat = [word for sentence in words for word in sentence]
        inputs = [
            item
            for group in groups
            for item in windows(tokenizer, flat[group.start : group.stop], group.start, max_length, stride)
        ]
    return Prepared(text, word_spans, groups, inputs)


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
        """The pipeline's batching and devices around `prepare` and `finish`."""

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

        def preprocess(self, text: str, max_length: int | None = None, stride: int = 0, context_tokens: int = 0):
            prepared = prepare(self.tokenizer, text, max_length, stride, context_tokens)
            for i, (ids, _) in enumerate(prepared.inputs):
                inputs = {
                    name: torch.tensor([values]) for name, values in ids.items() if name in self.tokenizer.model_input_names
                }
                # postprocess needs the prepared text once
                yield {**inputs, "prepared": prepared if i == 0 else None, "is_last": i == len(prepared.inputs) - 1}

        def _forward(self, inputs):
            kept = {key: inputs.pop(key) for key in ("prepared", "is_last")}
            output = self.model(**inputs)
            return {"logits": output["logits"], **kept}

        def postprocess(self, outputs, aggregation: str = DEFAULT_AGGREGATION, use_viterbi: bool = True):
            prepared = outputs[0]["prepared"]
            probabilities = []
            for output, (_, word_ids) in zip(outputs, prepared.inputs):
                logits = output["logits"][0].float().cpu().numpy()
                # Batched inputs are padded to the longest of the batch, on the tokenizer's side.
                first = len(logits) - len(word_ids) if self.tokenizer.padding_side == "left" else 0
                probabilities.append(softmax(logits[first : first + len(word_ids)]))
            return finish(prepared, probabilities, labels_of(self.model.config.id2label), aggregation, use_viterbi)

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
    """Entities for each text, in input order. Blank texts get none without a model call; the rest
    run longest first, so that each batch holds texts of similar length and pads little."""
    results: list[list[dict]] = [[] for _ in texts]
    todo = sorted((i for i, text in enumerate(texts) if text.strip()), key=lambda i: -len(texts[i]))
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
