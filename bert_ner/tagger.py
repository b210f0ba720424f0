"""bert-ner's Python API: `Tagger` finds named entities in raw text with a model train.py saved.

    from bert_ner import Tagger
    tagger = Tagger.load("bert-ner")                  # or backend="onnx-int8", device="cuda"
    tagger("Barack Obama was born in Hawaii")         # [Entity(type='PER', text='Barack Obama', start=0, end=12, ...), ...]
    for entities in tagger.pipe(lines, documents=True):   # streamed, batched, context across lines
        ...

The model's record (bert_ner.record) says how to read text for it; the backends (PyTorch, ONNX
fp32 and int8) differ only in how one model call is made (bert_ner.torch_backend,
bert_ner.onnx_backend). infer.py, serve.py and export.py's self-check all tag through a Tagger.
"""

import itertools
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from typing import Protocol

import numpy as np

from bert_ner.errors import UserError, require_packages
from bert_ner.inference import (
    BATCH_SIZE,
    Reader,
    Steps,
    chunks,
    drain,
    kept,
    recorded_threshold,
    run_model,
    score_floor,
    words_of,
)
from bert_ner.modeling import Trust
from bert_ner.onnx_backend import OnnxModel
from bert_ner.outputs import BACKEND_FILES, DEFAULT_OUTPUT_DIR
from bert_ner.record import ModelRecord
from bert_ner.words import DEFAULT_AGGREGATION, Entity

BACKENDS = ("torch", *BACKEND_FILES)
TEXTS_PER_CHUNK = 256  # texts read and tagged together by `pipe`: bounds memory and gives results early


class Backend(Protocol):
    """What runs the model: `reader` reads text for it (bert_ner.inference.Reader), `logits` is one
    model call (padded inputs -> logits [inputs, longest, labels]), `call_cost` what one more call
    costs in padded sub-tokens (None: as few calls as the batch size allows)."""

    reader: Reader
    call_cost: int | None

    def logits(self, inputs: list[dict[str, list[int]]]) -> np.ndarray: ...


class Tagger:
    """Tags raw text with one model. Make one with `Tagger.load`; call it on a text, or `pipe` many.

    `backend` runs the model: for the PyTorch backend, the transformers pipeline that makes the
    model calls (bert_ner.torch_backend.TaggingPipeline, also `pipeline`); for ONNX,
    bert_ner.onnx_backend.OnnxModel."""

    def __init__(self, backend: Backend, backend_name: str = "torch"):
        self.backend, self.backend_name = backend, backend_name

    @classmethod
    def load(
        cls,
        model: str = DEFAULT_OUTPUT_DIR,
        backend: str = "torch",
        device: str = "auto",
        threads: int | None = None,
        aggregation: str = DEFAULT_AGGREGATION,
        trust: Trust = Trust(opt_in="trust=Trust(allow_pickle=True)"),
        revision: str | None = None,
    ) -> "Tagger":
        """The tagger for `model`: a directory train.py wrote, or a Hub id (PyTorch backend only).

        backend: torch, or an export's onnx (fp32) / onnx-int8 (python export.py), which run on CPU
        without torch or transformers. device: cpu, cuda or auto (cuda when there is one).
        threads: CPU threads for the model (None: the library's default). aggregation: how a
        word's sub-token predictions combine (first, average, max). trust: whether pickle
        weights and a Hub repository's code may load (bert_ner.modeling.Trust).
        Raises UserError, with what to do next, for a missing model or package."""
        if backend not in BACKENDS:
            raise UserError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
        if backend != "torch":
            if device == "cuda":
                raise UserError("--device cuda: the ONNX backends run on CPU; use --backend torch for a GPU, or --device cpu")
            return cls(OnnxModel(model, backend, threads, aggregation), backend)
        require_packages(
            "torch",
            "transformers",
            hint="pip install -r requirements.txt for --backend torch, or use --backend onnx-int8 with an export",
        )
        from bert_ner import torch_backend  # torch and transformers take seconds to import: only for this backend

        return cls(torch_backend.load(model, device, threads, aggregation, trust, revision), backend)

    @property
    def reader(self) -> Reader:
        return self.backend.reader

    @property
    def pipeline(self):
        """The transformers pipeline of the PyTorch backend (None for ONNX): `pipeline(texts)`."""
        return self.backend if self.backend_name == "torch" else None

    @property
    def labels(self) -> list[str]:
        """The model's labels in id order (O, B-PER, ...)."""
        return self.reader.labels

    @property
    def record(self) -> ModelRecord:
        """What the saved model says about reading text for it."""
        return self.reader.record

    @property
    def threshold(self) -> float:
        """The score below which entities are dropped unless a call says otherwise (`min_score`):
        the one recorded with the model for a precision (train.py inference.min_precision), else 0."""
        return recorded_threshold(self.record)

    def __call__(self, text: str, min_score: float | None = None) -> list[Entity]:
        """The entities of one text, sorted by position, scored `min_score` or more (None: `threshold`)."""
        (records,) = self.tag([text], min_score=min_score)
        return [Entity.from_dict(record) for record in records]

    def pipe(
        self, texts: Iterable[str], batch_size: int = BATCH_SIZE, documents: bool = False, min_score: float | None = None
    ) -> Iterator[list[Entity]]:
        """The entities of each text, in order, read and tagged TEXTS_PER_CHUNK texts at a time.
        documents: consecutive non-blank texts are one document's lines and each other's
        context (a blank text ends a document); offsets stay each text's own."""
        for _, records in self.records(texts, batch_size, documents, min_score):
            yield [Entity.from_dict(record) for record in records]

    def records(
        self, texts: Iterable[str], batch_size: int = BATCH_SIZE, documents: bool = False, min_score: float | None = None
    ) -> Iterator[tuple[str, list[dict]]]:
        """`pipe` as (text, entity records): the dict form infer.py --json writes. When reading the
        texts fails midway, the results of the texts read so far still come before the error."""
        # With documents, a chunk ends only at a blank text: a document is read whole.
        can_start = (lambda text: not text.strip()) if documents else (lambda text: True)
        for chunk in chunks(iter(texts), TEXTS_PER_CHUNK, can_start):
            yield from zip(chunk, self.tag_lines(chunk, batch_size, documents, min_score))

    def tag(self, texts: list[str], batch_size: int = BATCH_SIZE, min_score: float | None = None) -> list[list[dict]]:
        """Each text's entity records, sorted by position; all the texts' inputs share model calls
        of at most `batch_size` inputs (bert_ner.inference.model_calls)."""
        return drain(self.tag_steps(texts, batch_size, min_score))

    def tag_steps(self, texts: list[str], batch_size: int = BATCH_SIZE, min_score: float | None = None) -> Steps:
        """`tag` in steps of bounded work (bert_ner.inference.Reader.steps): a generator that
        returns what `tag` returns."""
        floor = score_floor(min_score, self.record)  # checked before any work
        found = yield from self.reader.steps(texts, self.backend.logits, batch_size, self.backend.call_cost)
        return [kept(entities, floor) for entities in found]

    def word_probabilities(
        self, sentences: list[list[str]], documents: list[int] | None = None, batch_size: int = BATCH_SIZE
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """For text already split into sentences and words (a CoNLL file's, to score or calibrate
        on): each sentence's word label probabilities (shape [words, labels]) and which words the
        model saw (shape [words]), read as inference reads text. `documents` (a number per
        sentence) puts consecutive sentences of one document together, for a model trained with context."""
        together = documents is not None and self.record.context_tokens > 0
        groups = [list(run) for _, run in itertools.groupby(range(len(sentences)), key=lambda i: documents[i] if together else i)]
        prepared = [self.reader.prepare_words([sentences[i] for i in group]) for group in groups]
        result: list[tuple[np.ndarray, np.ndarray]] = []
        for text, rows in zip(prepared, run_model(prepared, self.backend.logits, batch_size, self.backend.call_cost)):
            scores, seen = words_of(text, rows, self.reader.aggregation)
            result += [(scores[span.start : span.stop], seen[span.start : span.stop]) for span in text.groups]
        return result

    def tag_lines(self, lines: list[str], batch_size: int = BATCH_SIZE, documents: bool = False, min_score: float | None = None):
        """`tag`, or with `documents` each document's lines together: one text with a line break
        between lines (which always ends a sentence), its entities given back to each line."""
        if not documents:
            return self.tag(lines, batch_size, min_score)
        groups = document_lines(lines)
        found = self.tag(["\n".join(lines[i] for i in group) for group in groups], batch_size, min_score)
        result: list[list[dict]] = [[] for _ in lines]
        for group, entities in zip(groups, found):
            for i, line_entities in zip(group, by_line([lines[i] for i in group], entities)):
                result[i] = line_entities
        return result


def document_lines(lines: list[str]) -> list[list[int]]:
    """The indexes of each run of consecutive non-blank lines (blank lines belong to none)."""
    found: list[list[int]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if found and found[-1][-1] == i - 1:
            found[-1].append(i)
        else:
            found.append([i])
    return found


def by_line(lines: list[str], entities: list[dict]) -> list[list[dict]]:
    """Entities of "\\n".join(lines) as each line's own, with offsets into that line."""
    starts = [0, *itertools.accumulate(len(line) + 1 for line in lines)][:-1]
    result: list[list[dict]] = [[] for _ in lines]
    for entity in entities:
        i = bisect_right(starts, entity["start"]) - 1
        result[i].append({**entity, "start": entity["start"] - starts[i], "end": entity["end"] - starts[i]})
    return result
