"""Entities from raw text with a transformers token-classification pipeline.

The pipeline does the model work: batching, devices, and windows with overlap (`stride`) for texts
longer than the model takes. What a word is and what an entity is come from ner.words, the module
train.py scores with: the pipeline subclass below splits the text into its words, groups
sub-tokens by the encoding's `word_ids()`, and decodes tags with the same Viterbi pass.
"""

from collections.abc import Iterator

from ner.errors import UserError

from ner.words import AGGREGATIONS, DEFAULT_AGGREGATION  # noqa: F401 (infer.py's --aggregation)

ENTITY_KEYS = ("entity_group", "word", "start", "end", "score")


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


def word_pipeline():
    """transformers' token-classification pipeline on ner.words' words and entities, run under
    torch.inference_mode instead of no_grad (no autograd bookkeeping at all). Made on demand:
    importing transformers takes seconds, and infer.py --help must not wait for it."""
    import torch
    from transformers import TokenClassificationPipeline

    from ner.words import decode, encode, entities, labels_of, softmax, split_words, word_scores

    class WordPipeline(TokenClassificationPipeline):
        def get_inference_context(self):
            return torch.inference_mode

        def _sanitize_parameters(self, max_length=None, stride=None, aggregation=None, use_viterbi=None, **_):
            # The parent's __call__ adds is_split_into_words and delimiter: the words are ours here.
            preprocess = {"max_length": max_length, "stride": stride}
            postprocess = {"aggregation": aggregation, "use_viterbi": use_viterbi}
            drop_unset = lambda params: {k: v for k, v in params.items() if v is not None}  # noqa: E731
            return drop_unset(preprocess), {}, drop_unset(postprocess)

        def preprocess(self, text: str, max_length: int | None = None, stride: int = 0):
            word_spans = split_words(text)
            words = [text[start:end] for start, end in word_spans]
            windows = encode(
                self.tokenizer, [words], max_length, stride=stride, return_overflowing_tokens=True, padding=True, return_tensors="pt"
            )
            for i in range(len(windows["input_ids"])):
                yield {
                    **{name: windows[name][i : i + 1] for name in self.tokenizer.model_input_names if name in windows},
                    "word_ids": windows.word_ids(i),
                    "text": text if i == 0 else None,  # postprocess needs them once per text
                    "word_spans": word_spans if i == 0 else None,
                    "is_last": i == len(windows["input_ids"]) - 1,
                }

        def _forward(self, inputs):
            kept = {key: inputs.pop(key) for key in ("word_ids", "text", "word_spans", "is_last")}
            output = self.model(**inputs)
            return {"logits": output["logits"], **kept}

        def postprocess(self, outputs, aggregation: str = DEFAULT_AGGREGATION, use_viterbi: bool = True):
            text, word_spans = outputs[0]["text"], outputs[0]["word_spans"]
            windows = []
            for output in outputs:
                logits = output["logits"][0].float().cpu().numpy()
                word_ids = output["word_ids"]
                # Batched windows are padded to the longest of the batch, on the tokenizer's side.
                first = len(logits) - len(word_ids) if self.tokenizer.padding_side == "left" else 0
                windows.append((word_ids, softmax(logits[first : first + len(word_ids)])))
            scores, seen = word_scores(windows, len(word_spans), aggregation)
            return entities(text, word_spans, decode(scores, seen, labels_of(self.model.config.id2label), use_viterbi))

    return WordPipeline


def set_threads(threads: int | None) -> None:
    """CPU threads for PyTorch; None keeps its default (one per physical core)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def make_pipeline(model, tokenizer, aggregation: str = DEFAULT_AGGREGATION, device: str = "cpu", trained=None):
    """The pipeline for `model`, encoding and decoding as `trained` (the model's DataConfig from
    its train_config.yaml; None = defaults, for a Hub model) says: its max_length and Viterbi."""
    from transformers.utils import logging as transformers_logging

    from ner.modeling import input_limit

    max_length = input_limit(tokenizer, model, trained.max_length if trained else None)
    # The pipeline logs an error for any model class it does not know, the ONNX stand-in
    # included, though it runs it fine; keep that false alarm off the user's screen.
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity(transformers_logging.CRITICAL)
    try:
        return word_pipeline()(
            model=model,
            tokenizer=tokenizer,
            device=resolve_device(device),
            max_length=max_length,
            stride=window_stride(max_length),
            aggregation=aggregation,
            use_viterbi=trained.viterbi if trained else True,
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
