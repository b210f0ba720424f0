"""Tokenizers and models: pretrained (Hub or directory), new from scratch, or a saved checkpoint."""

import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bert_ner import hub
from bert_ner.config import ModelConfig, ScratchConfig
from bert_ner.errors import UserError
from bert_ner.inference import longest_input

log = logging.getLogger("bert_ner")

# BPE tokenizers mark word starts with a space; words that arrive already split need one added.
PREFIX_SPACE_MODEL_TYPES = {"roberta", "longformer", "bart", "gpt2", "deberta", "mvp", "led"}
WORDPIECE_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
LEARN_VOCAB = "train"
GENERIC_LABEL = re.compile(r"LABEL_\d+")  # what transformers names labels nobody named
SAFE_WEIGHTS_SUFFIX = ".safetensors"
# Weights stored with Python's pickle, which can run any code while it loads.
PICKLE_WEIGHTS_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass(frozen=True)
class Trust:
    """What loading a model may do beyond reading safetensors and JSON: both off unless the user
    opts in. `opt_in` says how they do (a config key or a flag), for messages."""

    allow_pickle: bool = False
    remote_code: bool = False
    opt_in: str = "model.allow_pickle=true"

    @classmethod
    def of(cls, cfg: ModelConfig) -> "Trust":
        return cls(allow_pickle=cfg.allow_pickle, remote_code=cfg.trust_remote_code)

    def model_kwargs(self) -> dict:
        return {"use_safetensors": None if self.allow_pickle else True, "trust_remote_code": self.remote_code}


def pickle_only(files: Iterable[str]) -> str | None:
    """The pickle weights file of a checkpoint that has no safetensors weights, or None."""
    files = sorted(files)
    if any(name.endswith(SAFE_WEIGHTS_SUFFIX) for name in files):
        return None
    return next((name for name in files if name.endswith(PICKLE_WEIGHTS_SUFFIXES)), None)


def refuse_pickle(name: str, key: str, trust: Trust) -> None:
    """A local checkpoint with only pickle weights loads only when the user opted in."""
    path = Path(name).expanduser()
    if trust.allow_pickle or not path.is_dir():
        return
    weights = pickle_only(file.name for file in path.iterdir())
    if weights:
        raise UserError(
            f"{key}: '{name}' has only pickle weights ({weights}), which can run code when loaded; convert them to "
            f"safetensors, or pass {trust.opt_in} if you trust their source"
        )


def weight_errors() -> tuple[type[Exception], ...]:
    """What loading weights raises for files that are not there or cannot be read: transformers'
    OSError and ValueError, and safetensors' own error for a damaged or cut-short file."""
    from safetensors import SafetensorError

    return OSError, ValueError, SafetensorError


def pretrained_config(name: str, revision: str | None = None, key: str = "model.name_or_path", trust: Trust = Trust()):
    """The checkpoint's config.json (model type, labels, sizes), from a directory or the Hub."""
    from transformers import AutoConfig

    if not hub.looks_local(name):
        hub.require(name, key)
    try:
        return AutoConfig.from_pretrained(name, revision=revision, trust_remote_code=trust.remote_code)
    except (OSError, ValueError) as error:
        raise hub.load_error(name, key, error) from None


def vocabulary(sentences: Iterable[list[str]], size: int, lowercase: bool) -> list[str]:
    """A WordPiece vocabulary learned from words: special tokens, every character alone and as a
    ##continuation (so any word can still be spelled), then the most frequent words, ties in
    alphabetical order, up to `size` entries.

    Deterministic by construction; the tokenizers library's WordPiece trainer is not (it breaks
    ties in hash-map order, so its vocabulary changes from run to run).
    """
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    split = pre_tokenizers.BertPreTokenizer()  # the punctuation splitting BERT applies to each word
    counts = Counter(
        piece for words in sentences for word in words for piece, _ in split.pre_tokenize_str(normalizer.normalize_str(word))
    )
    characters = sorted({c for piece in counts for c in piece})
    vocab = WORDPIECE_SPECIAL_TOKENS + characters + ["##" + c for c in characters]
    frequent = sorted((piece for piece in counts if len(piece) > 1), key=lambda piece: (-counts[piece], piece))
    return vocab + frequent[: max(size - len(vocab), 0)]


def learn_wordpiece(sentences: Iterable[list[str]], scratch: ScratchConfig):
    """A BERT WordPiece tokenizer whose vocabulary is learned from `sentences`."""
    from transformers import BertTokenizerFast

    vocab = vocabulary(sentences, scratch.vocab_size, scratch.lowercase)
    return BertTokenizerFast(
        vocab={token: i for i, token in enumerate(vocab)},
        do_lower_case=scratch.lowercase,
        model_max_length=scratch.max_position_embeddings,
    )


def load_tokenizer(cfg: ModelConfig, train_sentences: list[list[str]] | None, model_type: str | None = None):
    """The fast tokenizer: learned or read for a scratch model, else the checkpoint's own."""
    from transformers import BertTokenizerFast

    scratch = cfg.scratch
    if scratch is not None and scratch.vocab == LEARN_VOCAB:
        return learn_wordpiece(train_sentences, scratch)
    if scratch is not None:
        if not Path(scratch.vocab).is_file():
            raise UserError(f"model.scratch.vocab: no such file '{scratch.vocab}'; give a vocab.txt or \"{LEARN_VOCAB}\"")
        return BertTokenizerFast(
            vocab=scratch.vocab, do_lower_case=scratch.lowercase, model_max_length=scratch.max_position_embeddings
        )
    return checkpoint_tokenizer(cfg.name_or_path, cfg.revision, model_type, trust=Trust.of(cfg))


def checkpoint_tokenizer(
    name: str, revision: str | None, model_type: str | None, key: str = "model.name_or_path", trust: Trust = Trust()
):
    """A checkpoint's own fast tokenizer (word alignment needs `word_ids`, which only fast ones have)."""
    from transformers import AutoTokenizer

    extra = {"add_prefix_space": True} if model_type in PREFIX_SPACE_MODEL_TYPES else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=trust.remote_code, **extra)
    except (OSError, ValueError) as error:
        raise hub.load_error(name, key, error) from None
    if not tokenizer.is_fast:
        raise UserError(f"{key}: '{name}' has no fast tokenizer, which word alignment needs")
    return tokenizer


def named_labels(config) -> list[str] | None:
    """The checkpoint's label names in id order, or None when it has only LABEL_n placeholders."""
    labels = [config.id2label[i] for i in sorted(config.id2label)]
    return None if all(GENERIC_LABEL.fullmatch(label) for label in labels) else labels


def label_order(dataset_labels: list[str], checkpoint_labels: list[str] | None) -> list[str]:
    """The label order to train with: the checkpoint's when it already has the same labels, so that
    fine-tuning an NER model further keeps its head; otherwise the dataset's."""
    if checkpoint_labels and sorted(checkpoint_labels) == sorted(dataset_labels):
        return checkpoint_labels
    return dataset_labels


def build_model(cfg: ModelConfig, labels: list[str], tokenizer, config=None):
    """The token-classification model: a new BERT for `scratch`, else the pretrained weights with a
    head for `labels` (a checkpoint with other labels gets a fresh head)."""
    from transformers import AutoModelForTokenClassification, BertConfig, BertForTokenClassification

    id2label = dict(enumerate(labels))
    label2id = {label: i for i, label in id2label.items()}
    if cfg.scratch is not None:
        sizes = {k: v for k, v in vars(cfg.scratch).items() if k not in ("vocab", "vocab_size", "lowercase")}
        bert = BertConfig(
            vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, id2label=id2label, label2id=label2id, **sizes
        )
        # Setting one model.scratch key makes a new model of random weights; say so where a config
        # also names a pretrained one of its own, which would otherwise be dropped without a word.
        if cfg.name_or_path and cfg.name_or_path != ModelConfig().name_or_path:
            log.warning(f"a new BERT with random weights (model.scratch); model.name_or_path ({cfg.name_or_path}) is not used")
        else:
            log.info("a new BERT with random weights (model.scratch)")
        return BertForTokenClassification(bert)
    config.id2label, config.label2id = id2label, label2id
    trust = Trust.of(cfg)
    refuse_pickle(cfg.name_or_path, "model.name_or_path", trust)
    from transformers.utils import logging as transformers_logging

    # transformers prints a table of the new head's weights (MISSING) and the unused pooler
    # (UNEXPECTED), which reads like an error to a newcomer; one line says what happened.
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        model = AutoModelForTokenClassification.from_pretrained(
            cfg.name_or_path, revision=cfg.revision, config=config, ignore_mismatched_sizes=True, **trust.model_kwargs()
        )
    except weight_errors() as error:
        raise hub.load_error(cfg.name_or_path, "model.name_or_path", error) from None
    finally:
        transformers_logging.set_verbosity(verbosity)
    log.info(f"pretrained encoder from {cfg.name_or_path}, with a new classification head for {len(labels)} labels")
    return model


def load_trained(name: str, revision: str | None = None, key: str = "model.name_or_path", trust: Trust = Trust()):
    """A fine-tuned NER model and its tokenizer, as they are: what infer.py runs and evaluate-only
    scores. Its own label names are kept; callers map labels by name. (An ONNX export runs
    without transformers: bert_ner.onnx_backend.OnnxTagger.)"""
    from transformers import AutoModelForTokenClassification

    config = pretrained_config(name, revision, key, trust)
    if named_labels(config) is None:
        raise UserError(
            f"{key}: '{name}' has no label names (id2label), so it was not fine-tuned for NER; "
            "fine-tune it first (python train.py with model.name_or_path set to it)"
        )
    tokenizer = checkpoint_tokenizer(name, revision, config.model_type, key, trust)
    refuse_pickle(name, key, trust)
    try:
        model = AutoModelForTokenClassification.from_pretrained(name, revision=revision, config=config, **trust.model_kwargs())
    except weight_errors() as error:
        raise hub.load_error(name, key, error) from None
    return model, tokenizer


def input_limit(tokenizer, model, requested: int | None) -> int:
    """The longest input in sub-tokens: what the config asks for, but never more than the model takes."""
    return longest_input([tokenizer.model_max_length, model.config.max_position_embeddings], requested)
