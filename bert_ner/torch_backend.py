"""The PyTorch backend: a transformers pipeline around a bert_ner.inference.Reader.

`TaggingPipeline` is a transformers `Pipeline` built on its documented extension points:
`preprocess` reads a text into model inputs (`Reader.prepare`), `_forward` makes the model calls,
`postprocess` decodes entities (`Reader.finish`). It is registered as the pipeline task `bert-ner`,
so that after `import bert_ner.torch_backend`, `transformers.pipeline("bert-ner", model=DIR)` tags
as infer.py does. `TaggingPipeline.logits` is the one model call that `bert_ner.Tagger` makes
through this backend; the ONNX backends make the same call with onnxruntime.
"""

from itertools import islice
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForTokenClassification, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils import cached_file
from transformers.utils import logging as transformers_logging

from bert_ner.errors import UserError
from bert_ner.inference import BATCH_SIZE, CALL_COST, MODEL_INPUT_NAMES, Reader, kept, padded, run_model, score_floor
from bert_ner.modeling import Trust, load_trained
from bert_ner.record import ModelRecord, read_record
from bert_ner.words import DEFAULT_AGGREGATION, labels_of

TASK = "bert-ner"


def resolve_device(device: str) -> str:
    """cpu / cuda / auto (cuda when there is one); cuda without one is a UserError."""
    if device == "cpu":
        return device
    if device == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}, but it finds no GPU"
        raise UserError(f"--device cuda: PyTorch {torch.__version__} is {build}; use --device cpu (or auto)")
    return "cuda" if torch.cuda.is_available() else "cpu"


def hub_record(name: str, revision: str | None = None) -> ModelRecord:
    """The record of a local model directory or a Hub model, found as transformers finds its
    config.json (a Hub model's files come through the cache)."""

    def locate(file_name: str) -> Path | None:
        found = cached_file(name, file_name, revision=revision, _raise_exceptions_for_missing_entries=False)
        return Path(found) if found else None

    return read_record(name, locate)


class TaggingPipeline(Pipeline):
    """transformers' pipeline interface to bert-ner: `pipe(text)` -> the entity records of the text,
    `pipe([texts], batch_size=32)` -> a list of them, a generator -> an iterator, streamed. Call
    options: `min_score` (drop entities scored below it; default: the threshold recorded with the
    model, else 0)."""

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False

    def __init__(
        self, model, tokenizer, *args, record: ModelRecord | None = None, aggregation: str = DEFAULT_AGGREGATION, **kwargs
    ):
        kwargs.setdefault("batch_size", BATCH_SIZE)  # the parent's default is 1
        super().__init__(model, tokenizer, *args, **kwargs)
        record = record if record is not None else hub_record(model.name_or_path)
        limit = min(tokenizer.model_max_length, model.config.max_position_embeddings)
        self.reader = Reader(tokenizer, labels_of(model.config.id2label), limit, record, aggregation)
        self.input_names = [name for name in MODEL_INPUT_NAMES if name in tokenizer.model_input_names]

    @property
    def call_cost(self) -> int | None:
        return CALL_COST if self.device.type == "cpu" else None  # None: as few calls as batch_size allows

    def _sanitize_parameters(self, min_score: float | None = None, **_):
        return {}, {}, ({} if min_score is None else {"min_score": min_score})

    def preprocess(self, text: str):
        return self.reader.prepare(text)

    def _forward(self, prepared):
        return {"prepared": prepared, "probabilities": run_model([prepared], self.logits, self._batch_size, self.call_cost)[0]}

    def postprocess(self, outputs, min_score: float | None = None):
        return kept(self.reader.finish(outputs["prepared"], outputs["probabilities"]), self.min_score(min_score))

    def min_score(self, asked: float | None) -> float:
        """The score below which entities are dropped: `asked`, or the threshold recorded with the model."""
        return score_floor(asked, self.reader.record)

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        """The one override: the parent runs `batch_size` inputs in order through a DataLoader,
        while a text here has several inputs (sentences, windows) that model calls cut by length
        across all texts given (bert_ner.inference.model_calls). A list is tagged together; a
        generator or Dataset `batch_size` texts at a time, as they come."""
        min_score = self.min_score(postprocess_params.get("min_score"))
        size = len(inputs) if isinstance(inputs, list) else batch_size
        texts = iter(inputs)
        while group := list(islice(texts, max(size, 1))):
            for entities in self.reader.tag(group, self.logits, batch_size, self.call_cost):
                yield kept(entities, min_score)

    def logits(self, inputs: list[dict[str, list[int]]]) -> np.ndarray:
        """One model call: logits [inputs, longest, labels] as float32 on the CPU."""
        with self.device_placement(), torch.inference_mode():  # no autograd bookkeeping at all
            arrays = {name: torch.from_numpy(array).to(self.device) for name, array in padded(inputs, self.input_names).items()}
            return self.model(**arrays).logits.float().cpu().numpy()


PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=TaggingPipeline, pt_model=AutoModelForTokenClassification)


def load(
    model: str,
    device: str = "auto",
    threads: int | None = None,
    aggregation: str = DEFAULT_AGGREGATION,
    trust: Trust = Trust(),
    revision: str | None = None,
    key: str = "--model",
) -> TaggingPipeline:
    """The pipeline for a saved model (a directory, or a Hub id), on `device`, as its record says."""
    transformers_logging.disable_progress_bar()  # "Loading weights" bars would bury the answer
    device = resolve_device(device)  # before the model loads
    if threads:
        torch.set_num_threads(threads)
    weights, tokenizer = load_trained(model, revision, key=key, trust=trust)
    # The pipeline logs an error for a model class it does not list for token classification
    # (a checkpoint with a custom architecture), though it runs it fine; keep that off the screen.
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity(transformers_logging.CRITICAL)
    try:
        return TaggingPipeline(
            weights, tokenizer, task=TASK, device=device, record=hub_record(model, revision), aggregation=aggregation
        )
    finally:
        transformers_logging.set_verbosity(verbosity)
