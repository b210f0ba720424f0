"""Tokenizers and models: pretrained (Hub or directory), new from scratch, or a saved checkpoint."""

import logging
import re
from pathlib import Path

from ner import hub
from ner.config import ModelConfig, ScratchConfig
from ner.errors import UserError

log = logging.getLogger("ner")

# BPE tokenizers mark word starts with a space; words that arrive already split need one added.
PREFIX_SPACE_MODEL_TYPES = {"roberta", "longformer", "bart", "gpt2", "deberta", "mvp", "led"}
WORDPIECE_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
LEARN_VOCAB = "train"
GENERIC_LABEL = re.compile(r"LABEL_\d+")  # what transformers names labels nobody named


def pretrained_config(cfg: ModelConfig):
    """The checkpoint's config.json (model type, labels, sizes)."""
    from transformers import AutoConfig

    if not hub.looks_local(cfg.name_or_path):  # config validation has checked local directories
        hub.require(cfg.name_or_path, "model.name_or_path")
    try:
        return AutoConfig.from_pretrained(cfg.name_or_path, revision=cfg.revision)
    except (OSError, ValueError) as error:
        raise hub.load_error(cfg.name_or_path, "model.name_or_path", error) from None


def learn_wordpiece(sentences: list[list[str]], scratch: ScratchConfig):
    """A BERT WordPiece tokenizer whose vocabulary is learned from `sentences`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizerFast

    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=scratch.lowercase)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=scratch.vocab_size, special_tokens=WORDPIECE_SPECIAL_TOKENS)
    wordpiece.train_from_iterator((" ".join(words) for words in sentences), trainer)
    return BertTokenizerFast(
        vocab=wordpiece.get_vocab(), do_lower_case=scratch.lowercase, model_max_length=scratch.max_position_embeddings
    )


def load_tokenizer(cfg: ModelConfig, train_sentences: list[list[str]] | None, model_type: str | None = None):
    """The fast tokenizer: learned or read for a scratch model, else the checkpoint's own."""
    from transformers import AutoTokenizer, BertTokenizerFast

    scratch = cfg.scratch
    if scratch is not None and scratch.vocab == LEARN_VOCAB:
        return learn_wordpiece(train_sentences, scratch)
    if scratch is not None:
        if not Path(scratch.vocab).is_file():
            raise UserError(f"model.scratch.vocab: no such file '{scratch.vocab}'; give a vocab.txt or \"{LEARN_VOCAB}\"")
        return BertTokenizerFast(
            vocab=scratch.vocab, do_lower_case=scratch.lowercase, model_max_length=scratch.max_position_embeddings
        )
    extra = {"add_prefix_space": True} if model_type in PREFIX_SPACE_MODEL_TYPES else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.name_or_path, revision=cfg.revision, **extra)
    except (OSError, ValueError) as error:
        raise hub.load_error(cfg.name_or_path, "model.name_or_path", error) from None
    if not tokenizer.is_fast:
        raise UserError(f"model.name_or_path: '{cfg.name_or_path}' has no fast tokenizer, which word alignment needs")
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
        if sizes["hidden_size"] % sizes["num_attention_heads"]:
            raise UserError("model.scratch.num_attention_heads: must divide model.scratch.hidden_size")
        bert = BertConfig(
            vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, id2label=id2label, label2id=label2id, **sizes
        )
        return BertForTokenClassification(bert)
    config.id2label, config.label2id = id2label, label2id
    try:
        return AutoModelForTokenClassification.from_pretrained(
            cfg.name_or_path, revision=cfg.revision, config=config, ignore_mismatched_sizes=True
        )
    except (OSError, ValueError) as error:
        raise hub.load_error(cfg.name_or_path, "model.name_or_path", error) from None


def load_trained(cfg: ModelConfig, config):
    """A fine-tuned NER model as it is (evaluate-only); its own label names are kept."""
    from transformers import AutoModelForTokenClassification

    if named_labels(config) is None:
        raise UserError(
            f"model.name_or_path: '{cfg.name_or_path}' has no label names (id2label), so it was not fine-tuned "
            "for NER; set model.fine_tune: true to train it"
        )
    try:
        return AutoModelForTokenClassification.from_pretrained(cfg.name_or_path, revision=cfg.revision)
    except (OSError, ValueError) as error:
        raise hub.load_error(cfg.name_or_path, "model.name_or_path", error) from None


def input_limit(tokenizer, model, requested: int | None) -> int:
    """The longest input in sub-tokens: what the config asks for, but never more than the model takes."""
    limit = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    if requested is not None and requested > limit:
        log.warning(f"data.max_length {requested} is more than the model takes; using {limit}")
    return limit if requested is None else min(requested, limit)
