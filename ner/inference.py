"""Entities from raw text with a transformers token-classification pipeline.

The pipeline does the model work: batching, windows with overlap (`stride`) for texts longer
than the model takes, and merging sub-tokens into words. What we add: the word-level default,
the entity text taken from the input itself, and a score threshold.
"""

from collections.abc import Iterator

# "first" labels a word by its first sub-token, as train.py trains, and never reports a fragment
# of a word ("simple" can report "##ama"; "none" reports sub-tokens). The pipeline's words do
# split at punctuation inside a token (SKIING-WORLD), where train.py's words do not: see README.
WORD_LEVEL_AGGREGATIONS = ("first", "average", "max")
DEFAULT_AGGREGATION = "first"
ENTITY_KEYS = ("entity_group", "word", "start", "end", "score")


def window_stride(model_max_length: int) -> int:
    """Sub-tokens shared by neighbouring windows of a long text: a quarter of the window, at most 128.
    An entity cut by one window's edge appears whole in the next; the pipeline keeps the longer one."""
    return min(128, model_max_length // 4)


def resolve_device(device: str) -> str:
    """cpu / cuda / auto (cuda when there is one)."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def inference_mode_pipeline():
    """transformers' token-classification pipeline, run under torch.inference_mode instead of
    no_grad: no autograd bookkeeping at all, which no_grad still keeps per tensor. Made on demand:
    importing transformers takes seconds, and infer.py --help must not wait for it."""
    import torch
    from transformers import TokenClassificationPipeline

    class InferenceModePipeline(TokenClassificationPipeline):
        def get_inference_context(self):
            return torch.inference_mode

    return InferenceModePipeline


def set_threads(threads: int | None) -> None:
    """CPU threads for PyTorch; None keeps its default (one per physical core)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def make_pipeline(model, tokenizer, aggregation: str = DEFAULT_AGGREGATION, device: str = "cpu"):
    from transformers.utils import logging as transformers_logging

    # The pipeline logs an error for any model class it does not know, the ONNX stand-in
    # included, though it runs it fine; keep that false alarm off the user's screen.
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity(transformers_logging.CRITICAL)
    try:
        return inference_mode_pipeline()(
            model=model,
            tokenizer=tokenizer,
            aggregation_strategy=aggregation,
            stride=window_stride(tokenizer.model_max_length),
            device=resolve_device(device),
        )
    finally:
        transformers_logging.set_verbosity(verbosity)


def clean_entities(text: str, entities: list[dict], min_score: float = 0.0) -> list[dict]:
    """The pipeline's entities with the exact input substring as `word` (decoding would lowercase
    for uncased models and respace punctuation), plain floats, sorted by position."""
    cleaned = [
        {
            "entity_group": entity["entity_group"],
            "word": text[entity["start"] : entity["end"]],
            "start": int(entity["start"]),
            "end": int(entity["end"]),
            "score": round(float(entity["score"]), 4),
        }
        for entity in entities
        if float(entity["score"]) >= min_score
    ]
    return sorted(cleaned, key=lambda entity: entity["start"])


def predict(ner, texts: list[str], batch_size: int, min_score: float = 0.0) -> list[list[dict]]:
    """Entities for each text, in input order. Blank texts get none without a model call; the rest
    run longest first, so that each batch holds texts of similar length and pads little."""
    results: list[list[dict]] = [[] for _ in texts]
    todo = sorted((i for i, text in enumerate(texts) if text.strip()), key=lambda i: -len(texts[i]))
    if todo:
        outputs = ner([texts[i] for i in todo], batch_size=batch_size)
        for i, entities in zip(todo, outputs):
            results[i] = clean_entities(texts[i], entities, min_score)
    return results


def chunks(items: Iterator[str], size: int) -> Iterator[list[str]]:
    """Consecutive lists of `size` items (the last may be shorter), read lazily. When reading fails
    midway, the items read so far still come out before the error does."""
    chunk = []
    try:
        for item in items:
            chunk.append(item)
            if len(chunk) == size:
                yield chunk
                chunk = []
    except Exception:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk
