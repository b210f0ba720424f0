"""The schema of config.yaml: typed, strict, and loaded with dotted `key=value` overrides.

`model:` and `data:` are ours and live in the dataclasses below, one help text per field.
`training:` is `transformers.TrainingArguments`, passed through unchanged, so every Trainer option
works under the name the transformers docs give it. Problems are collected and reported together.
"""

import dataclasses
import difflib
import enum
import logging
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bert_ner.errors import UserError
from bert_ner.hub import looks_local
from bert_ner.outputs import DEFAULT_OUTPUT_DIR
from bert_ner.training_options import as_written, option_problems, refusal
from bert_ner.words import SENTENCE_LANGUAGES, WORD_RULES

log = logging.getLogger("bert_ner")

CONFIG_FILE = "config.yaml"
CONLL_SUFFIXES = (".txt", ".conll")
# What span offsets count (data.span_offsets). Python counts code points; JavaScript tools (doccano,
# Label Studio before 2022) count UTF-16 code units, in which a character beyond U+FFFF (an emoji) counts 2.
CODE_POINTS, UTF16 = "code_points", "utf16"
OFFSET_UNITS = (CODE_POINTS, UTF16)
JSONL_SUFFIXES = (".json", ".jsonl")

# What bert-ner picks where TrainingArguments' own default does not suit NER fine-tuning.
# Anything set under `training:` in the config wins.
TRAINING_DEFAULTS = {
    "output_dir": DEFAULT_OUTPUT_DIR,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "load_best_model_at_end": True,
    "metric_for_best_model": "f1",
    "save_total_limit": 1,
    "logging_steps": 50,
    "report_to": "none",
    # Batches of similar lengths: 2x the real tokens/s of random batches on CoNLL-2003, same test F1
    # (docs/speed.md). train_sampling_strategy: random restores the plain recipe.
    "train_sampling_strategy": "group_by_length",
    # Every weight of a token classifier gets a gradient; the search for unused ones costs each step.
    "ddp_find_unused_parameters": False,
    # A resumed run carries on early stopping's count of evaluations without improvement, so that
    # it stops where an uninterrupted run stops.
    "restore_callback_states_from_checkpoint": True,
}

# An evaluate-only run (model.fine_tune: false) trains nothing, so nothing is evaluated or saved
# per epoch; Trainer refuses per-epoch evaluation without a validation set, which such a run may lack.
EVALUATE_ONLY_TRAINING = {"eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False}


# TrainingArguments fields that transformers 5 removed, and what to write instead.
REMOVED_TRAINING_ARGS = {
    "evaluation_strategy": "renamed to eval_strategy in transformers 5",
    "group_by_length": 'replaced by train_sampling_strategy: "group_by_length" in transformers 5',
    "no_cuda": "replaced by use_cpu: true in transformers 5",
    "overwrite_output_dir": "removed in transformers 5; output_dir is reused as it is",
    "logging_dir": "removed in transformers 5; logs go under output_dir",
    "save_safetensors": "removed in transformers 5; weights are always saved as safetensors",
    "use_mps_device": "removed in transformers 5; Apple MPS is used automatically",
    "warmup_ratio": "removed in transformers 5; warmup_steps below 1 is a fraction of the training steps (warmup_steps: 0.1)",
}

# TrainingArguments fields that must be positive; transformers itself accepts 0 or negatives
# for several of them and only fails an hour later, or never.
POSITIVE_TRAINING_ARGS = (
    "learning_rate",
    "num_train_epochs",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
)


POSITIVE = "positive"  # a minimum for values that must be above 0, however small


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass
class ScratchConfig:
    """A new BERT with random weights: for offline demos, tests and speed work."""

    vocab: str = field(
        default="train",
        metadata=_help('"train" = learn a WordPiece vocabulary from the training split; or a vocab.txt path'),
    )
    vocab_size: int = field(default=2000, metadata=_help("at most this many vocabulary entries when vocab is train", min=100))
    lowercase: bool = field(default=False, metadata=_help("lowercase text before WordPiece (uncased model)"))
    hidden_size: int = field(default=128, metadata=_help("width of every layer", min=1))
    num_hidden_layers: int = field(default=2, metadata=_help("number of transformer layers", min=1))
    num_attention_heads: int = field(default=2, metadata=_help("must divide hidden_size", min=1))
    intermediate_size: int = field(default=512, metadata=_help("width of the feed-forward layers", min=1))
    max_position_embeddings: int = field(default=512, metadata=_help("longest input in sub-tokens", min=8))
    hidden_dropout_prob: float = field(default=0.1, metadata=_help("dropout on every layer's output; 0 = none", min=0.0))
    attention_probs_dropout_prob: float = field(default=0.1, metadata=_help("dropout on attention weights; 0 = none", min=0.0))


@dataclass
class ModelConfig:
    """Which encoder to fine-tune (or to score as it is)."""

    name_or_path: str | None = field(
        default="bert-base-cased",
        metadata=_help("a Hub model id or a local directory; ignored when scratch is set"),
    )
    revision: str | None = field(default=None, metadata=_help("Hub branch, tag or commit; null = main"))
    scratch: ScratchConfig | None = field(
        default=None, metadata=_help("null = start from pretrained weights; a mapping = a new random BERT")
    )
    fine_tune: bool = field(
        default=True,
        metadata=_help("false = evaluate only: score name_or_path on validation and test without training"),
    )
    allow_pickle: bool = field(
        default=False,
        metadata=_help("true = also load pickle weights (pytorch_model.bin), which can run code; only for sources you trust"),
    )
    trust_remote_code: bool = field(
        default=False,
        metadata=_help("true = run model code that a Hub repository ships; only for sources you trust"),
    )


@dataclass
class DataConfig:
    """Where the sentences come from and how they become model inputs."""

    dataset: str | None = field(
        default="lhoestq/conll2003",
        metadata=_help("a Hub dataset id; null = read train_file, validation_file and test_file"),
    )
    revision: str | None = field(default=None, metadata=_help("Hub dataset branch, tag or commit; null = main"))
    train_file: str | None = field(
        default=None,
        metadata=_help(
            "CoNLL columns (.txt, .conll), JSON lines of words and tags, or character spans from annotation tools (.json, .jsonl)"
        ),
    )
    validation_file: str | None = field(default=None, metadata=_help("same formats; used to pick the best epoch"))
    test_file: str | None = field(default=None, metadata=_help("same formats; null = no test scores"))
    tokens_column: str = field(default="tokens", metadata=_help("column (or JSON key) holding the word list"))
    tags_column: str = field(default="ner_tags", metadata=_help("column (or JSON key) holding the tag list"))
    widen_spans: bool = field(
        default=False,
        metadata=_help("span files (docs/data.md): a span that ends inside a word is an error; true = widen it to whole words"),
    )
    span_offsets: str = field(
        default=CODE_POINTS,
        metadata=_help(
            "what span files' offsets count: code_points (Python, spaCy, Prodigy, Label Studio) or utf16 "
            "(doccano, JavaScript tools: an emoji counts 2); docs/data.md",
            choices=OFFSET_UNITS,
        ),
    )
    max_length: int | None = field(
        default=None, metadata=_help("sub-tokens per input, longer ones are truncated; null = the model's limit", min=8)
    )
    context_tokens: int = field(
        # The context size with the best dev F1 over three seeds (docs/results.md).
        default=128,
        metadata=_help("sub-tokens of neighbouring sentences (same document) added on each side as context; 0 = off", min=0),
    )
    context_dropout: float = field(
        # 0.5, FLERT's: one model that reads sentences with context and alone about as well as
        # the models trained for each (docs/results.md).
        default=0.5,
        metadata=_help(
            "share of training sentences that see no context in each epoch, drawn anew per epoch, so that one model "
            "also learns sentences alone (FLERT uses 0.5); 0 = always context",
            min=0.0,
            max=1.0,
        ),
    )
    document_column: str | None = field(
        default=None, metadata=_help("Hub column with a document id per sentence (CoNLL files use -DOCSTART-); null = none")
    )
    label_all_tokens: bool = field(
        default=False,
        metadata=_help("train on every sub-token (I- label after the first) instead of only the first"),
    )
    label_map: dict[str, str | None] = field(
        default_factory=dict,
        metadata=_help(
            "rename the data's entity types before anything else, e.g. {person: PER, geo-loc: LOC}; a type mapped to "
            "null becomes O; when set, every type of the data must be named; {} = as they are"
        ),
    )
    word_rules: str | None = field(
        default=None,
        metadata=_help(
            f"how infer.py splits raw text into words ({', '.join(WORD_RULES)}; docs/inference.md); "
            "null = as the training words show (single characters of scripts without spaces = characters)"
        ),
    )
    language: str | None = field(
        default=None,
        metadata=_help(
            "the text's language for sentence splitting, a pySBD code (en, zh, ja, de, ...); "
            "null = as the training words show (zh or ja for single Han or kana characters, else en)"
        ),
    )
    max_train_samples: int | None = field(default=None, metadata=_help("use only the first N sentences", min=1))
    max_eval_samples: int | None = field(default=None, metadata=_help("same, for validation", min=1))
    max_test_samples: int | None = field(default=None, metadata=_help("same, for test", min=1))

    def local_files(self) -> dict[str, str]:
        """The local files given, by split name."""
        files = {"train": self.train_file, "validation": self.validation_file, "test": self.test_file}
        return {split: path for split, path in files.items() if path}


@dataclass
class InferenceConfig:
    """How the saved model is to be used: recorded with it (bert_ner.record), read by every entry point."""

    viterbi: bool = field(
        default=True,
        metadata=_help(
            "decode tags with a Viterbi pass that allows only valid IOB2 (scores and infer.py alike); "
            "false = each word's likeliest tag"
        ),
    )
    calibrate: bool = field(
        default=True,
        metadata=_help(
            "fit calibrated entity scores on validation at the end of training, recorded with the model "
            "(docs/inference.md); false = the model's own scores"
        ),
    )
    min_precision: float | None = field(
        default=None,
        metadata=_help(
            "record the lowest score threshold at which validation entities reach this precision; infer.py and "
            "serve.py drop entities below it unless --min-score says otherwise; above 0, below 1; null = no threshold",
            min=POSITIVE,
            below=1.0,
        ),
    )


# Keys that moved to another section, and where: an old config gets one line that says so.
MOVED_KEYS = {"data.viterbi": "inference.viterbi"}


@dataclass
class CheckpointsConfig:
    """What a rerun does with the checkpoints an interrupted run left in output_dir."""

    resume: bool = field(
        default=True,
        metadata=_help("true = continue from the newest complete checkpoint; false = refuse to run while any are there"),
    )
    fresh: bool = field(default=False, metadata=_help("true = delete output_dir's checkpoints first and train from the start"))


@dataclass
class EarlyStoppingConfig:
    """Stop training when validation F1 (training.metric_for_best_model) stops improving; the best
    epoch is still the model saved. The names are those of transformers' EarlyStoppingCallback."""

    patience: int = field(
        default=0, metadata=_help("stop after this many evaluations without improvement; 0 = never stop early", min=0)
    )
    threshold: float = field(
        default=0.0, metadata=_help("how much the metric must improve to count as improving (e.g. 0.001 of F1)", min=0.0)
    )


SEARCH_OBJECTIVES = ("f1", "precision", "recall", "accuracy")


@dataclass(frozen=True)
class SearchDimension:
    """One searched TrainingArguments field: how it is sampled, its default range, its help."""

    kind: str  # "log": [low, high] on a log scale; "float": [low, high]; "int": [low, high], whole; "choice": from a list
    default: tuple
    help: str


# The search space, the one table SearchConfig's fields, their checks (search_problems), the help
# text and the sampler (bert_ner.search.SearchSpace) read. Names are the TrainingArguments fields set.
SEARCH_SPACE = {
    "learning_rate": SearchDimension("log", (1e-5, 1e-4), "[low, high], sampled on a log scale"),
    "per_device_train_batch_size": SearchDimension("choice", (16, 32), "the sizes to choose from"),
    "num_train_epochs": SearchDimension("int", (2, 5), "[low, high], whole epochs"),
    "warmup_steps": SearchDimension("float", (0.0, 0.1), "[low, high]; below 1 = a fraction of the steps"),
    "weight_decay": SearchDimension("float", (0.0, 0.1), "[low, high]"),
}


def _search_field(dimension: SearchDimension):
    kind = list[int] if dimension.kind in ("int", "choice") else list[float]
    return kind, field(default_factory=lambda: list(dimension.default), metadata=_help(dimension.help))


SearchConfig = dataclasses.make_dataclass(
    "SearchConfig",
    [
        (
            "trials",
            int,
            field(
                default=0, metadata=_help("> 0 = try this many settings first, then train with the best; 0 = no search", min=0)
            ),
        ),
        ("objective", str, field(default="f1", metadata=_help(f"validation score to maximize: {', '.join(SEARCH_OBJECTIVES)}"))),
        *[(name, *_search_field(dimension)) for name, dimension in SEARCH_SPACE.items()],
    ],
)
SearchConfig.__doc__ = """Hyperparameter search with Optuna before the final training (SEARCH_SPACE)."""


def search_problems(search) -> list[str]:
    """What is wrong with the search space: ranges are [low, high] with 0 <= low <= high (above 0
    on a log scale), choices a non-empty list of positive integers."""
    problems = []
    if search.objective not in SEARCH_OBJECTIVES:
        problems.append(f"search.objective: {search.objective!r} is not one of {', '.join(SEARCH_OBJECTIVES)}")
    for name, dimension in SEARCH_SPACE.items():
        value = getattr(search, name)
        if dimension.kind == "choice":
            if not isinstance(value, list) or not value or not all(_check_scalar(v, int)[0] and v > 0 for v in value):
                problems.append(f"search.{name}: {value!r} is not a list of batch sizes, e.g. [16, 32]")
            continue
        kind = int if dimension.kind == "int" else float
        numbers = isinstance(value, list) and len(value) == 2 and all(_check_scalar(v, kind)[0] for v in value)
        if not numbers or value[0] > value[1] or value[0] < 0:
            expected = "whole numbers" if kind is int else "numbers"
            problems.append(f"search.{name}: {value!r} is not a range; expected [low, high], two {expected}, 0 <= low <= high")
        elif dimension.kind == "log" and value[0] <= 0:
            problems.append(f"search.{name}: {value!r} must stay above 0 (it is sampled on a log scale)")
    return problems


def word_problems(data: DataConfig) -> list[str]:
    """data.word_rules and data.language name rules and a language bert_ner.words knows, or are null."""
    problems = []
    for key, value, known in (("word_rules", data.word_rules, WORD_RULES), ("language", data.language, SENTENCE_LANGUAGES)):
        if value is not None and value not in known:
            problems.append(f"data.{key}: {value!r} is not one of {', '.join(known)}{_suggest(str(value), known)}")
    return problems


@dataclass
class Config:
    """The whole of config.yaml."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    checkpoints: CheckpointsConfig = field(default_factory=CheckpointsConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def output_dir(self) -> Path:
        return Path(self.training["output_dir"])


CONFIG_SECTIONS = tuple(f.name for f in dataclasses.fields(Config))  # model, data, ..., training


# ---------------------------------------------------------------------------------------------
# YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's reading of plain values where YAML 1.1 surprises: `5e-5` is a
    number (1.1 insists on `5.0e-5`); only true/false are booleans (1.1 also reads yes, no, on,
    off, y and n, so `eval_strategy: no` or a type named NO arrived as false); `1:30` is not
    sixty-based. A key given twice in one mapping is an error (1.1 keeps the last silently)."""


def _without_resolvers(tags: set[str]) -> dict[str, list]:
    return {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in tags]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_BOOL, _INT, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_Loader.yaml_implicit_resolvers = _without_resolvers({_BOOL, _INT})
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|0o[0-7_]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT, re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"), list("-+0123456789."))


class DuplicateKey(yaml.MarkedYAMLError):
    """A key given twice in one mapping."""


def _checked_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: keys written beside it override it
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in first_line:
            raise DuplicateKey(
                problem=f"'{key}' is given twice in one mapping (first on line {first_line[key]}); keep one",
                problem_mark=key_node.start_mark,
            )
        first_line[key] = key_node.start_mark.line + 1
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


def _construct_map(loader: _Loader, node: yaml.MappingNode):
    data: dict = {}
    yield data  # as SafeLoader does: an anchor may refer to the mapping before it is filled
    data.update(_checked_mapping(loader, node))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text; a syntax error or a key given twice names `source:line`."""
    try:
        return yaml.load(text, Loader=_Loader)
    except DuplicateKey as error:
        raise UserError(f"{source}:{error.problem_mark.line + 1}: {error.problem}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(error, "problem", None) or str(error)
        raise UserError(f"{where}: invalid YAML ({problem}); fix the syntax and rerun") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """`training.learning_rate=3e-5` -> (["training", "learning_rate"], 3e-05), the value parsed as YAML."""
    key, sep, value = text.partition("=")
    parts = key.strip().split(".")
    if not sep and text.lower().endswith((".yaml", ".yml")):
        raise UserError(f"'{text}' looks like a config file, and a config file needs --config: --config {text}")
    if not sep or len(parts) < 2 or not all(parts):
        raise UserError(f"override '{text}': expected section.key=value, e.g. training.learning_rate=3e-5")
    return parts, parse_yaml(value, f"override '{text}'")


def apply_override(raw: dict[str, Any], path: list[str], value: Any) -> None:
    """Set raw[a][b]... = value, creating mappings on the way (unknown keys are caught by validation)."""
    node = raw
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


# ---------------------------------------------------------------------------------------------
# Validation


def _suggest(key: str, valid: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _enum_values(hint: Any) -> list[str]:
    """The values of the Enum in a TrainingArguments type hint (`SchedulerType | str`), or []:
    transformers' own check of them names neither the key nor the nearest value."""
    for kind in typing.get_args(hint) or (hint,):
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return [str(member.value) for member in kind]
    return []


_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _check_scalar(value: Any, kind: type) -> tuple[bool, Any]:
    """Whether value has the scalar type `kind`, and the value converted (int -> float)."""
    if kind is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool):
        return False, value
    if kind is float and isinstance(value, int | float):
        return True, float(value)
    return isinstance(value, kind), value


def _optional_of(hint: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); `X` -> (X, False)."""
    args = typing.get_args(hint)
    if type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def _check_value(
    key: str,
    value: Any,
    hint: Any,
    minimum: float | str | None,
    problems: list[str],
    maximum: float | None = None,
    choices: tuple = (),
    below: float | None = None,
) -> Any:
    kind, optional = _optional_of(hint)
    if value is None:
        if not optional:
            problems.append(f"{key}: must not be null; expected {_EXPECTED.get(kind, 'a value')}")
        return value
    if dataclasses.is_dataclass(kind):
        return build_section(kind, value, key, problems)
    if kind not in _EXPECTED:
        return value
    ok, value = _check_scalar(value, kind)
    if not ok and kind is str and isinstance(value, int | float):  # `revision: 1.0`, `name_or_path: 2024`
        read_as = "true or false" if isinstance(value, bool) else "a number"
        problems.append(f"{key}: {value!r} is not a string (YAML reads it as {read_as}); write it in quotes")
    elif not ok:
        problems.append(f"{key}: {value!r} is not {_EXPECTED[kind]}")
    elif choices and value not in choices:
        problems.append(f"{key}: {value!r} is not one of {', '.join(choices)}")
    elif minimum == POSITIVE and value <= 0:
        problems.append(f"{key}: {value!r} is too small; expected more than 0")
    elif minimum not in (None, POSITIVE) and value < minimum:
        problems.append(f"{key}: {value!r} is too small; expected at least {minimum}")
    elif maximum is not None and value > maximum:
        problems.append(f"{key}: {value!r} is too large; expected at most {maximum}")
    elif below is not None and value >= below:
        problems.append(f"{key}: {value!r} is too large; expected less than {below}")
    return value


def build_section(cls: type, raw: Any, prefix: str, problems: list[str]) -> Any:
    """Build dataclass `cls` from a mapping, appending every problem found to `problems`."""
    if not isinstance(raw, dict):
        problems.append(f"{prefix}: expected a mapping of keys, got {raw!r}")
        return cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if f"{prefix}.{key}" in MOVED_KEYS:
            problems.append(f"{prefix}.{key}: moved to {MOVED_KEYS[f'{prefix}.{key}']}; write it there")
        elif key not in fields:
            problems.append(f"{prefix}.{key}: unknown key{_suggest(str(key), fields)}")
    values = {}
    for name, spec in fields.items():
        if name in raw:
            values[name] = _check_value(
                f"{prefix}.{name}",
                raw[name],
                hints[name],
                spec.metadata.get("min"),
                problems,
                spec.metadata.get("max"),
                spec.metadata.get("choices", ()),
                spec.metadata.get("below"),
            )
    return cls(**values)


# Keys that name a file or directory. `~` and $VARIABLES in them are expanded once, when the config
# loads, so that bert-ner, Trainer and the checkpoints all see one path (a literal `./~/run`
# beside Trainer's `$HOME/run` lost every checkpoint on a rerun).
PATH_KEYS = (
    "model.name_or_path",
    "model.scratch.vocab",
    "data.dataset",
    "data.train_file",
    "data.validation_file",
    "data.test_file",
    "training.output_dir",
)
_VARIABLE = re.compile(r"\$(?:(\w+)|\{(\w+)\})")


def expanded_path(key: str, value: Any, environ: typing.Mapping[str, str], problems: list[str]) -> Any:
    """`value` with `~` and $NAME or ${NAME} expanded; an unset variable is a problem, not a
    literal `$NAME` directory. Anything but a string comes back as it is."""
    if not isinstance(value, str):
        return value
    if unset := [name for pair in _VARIABLE.findall(value) for name in pair if name and name not in environ]:
        problems.append(f"{key}: '{value}' names ${unset[0]}, which is not set; set it, or write the path out")
        return value
    value = _VARIABLE.sub(lambda match: environ[match[1] or match[2]], value)
    return str(Path(value).expanduser()) if value.startswith("~") else value


def expand_paths(raw: dict[str, Any], environ: typing.Mapping[str, str], problems: list[str]) -> None:
    """Expand every PATH_KEYS value present in the raw config, in place."""
    for dotted in PATH_KEYS:
        *sections, key = dotted.split(".")
        node = raw
        for section in sections:
            node = node.get(section) if isinstance(node, dict) else None
        if isinstance(node, dict) and key in node:
            node[key] = expanded_path(dotted, node[key], environ, problems)


def check_training(raw: Any, problems: list[str]) -> dict[str, Any]:
    """Check `training:` against TrainingArguments' own fields and types; return it with our defaults."""
    from transformers import TrainingArguments

    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"training: expected a mapping of TrainingArguments fields, got {raw!r}")
        return dict(TRAINING_DEFAULTS)
    fields = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    hints = typing.get_type_hints(TrainingArguments)
    checked = {}
    for key, value in raw.items():
        name = f"training.{key}"
        if key == "output_dir" and (value is None or (isinstance(value, str) and not value.strip())):
            # `output_dir: $OUT` with $OUT unset in a script arrives empty: the run would replace "." whole
            problems.append(f"{name}: is empty; name the directory for the model (e.g. {DEFAULT_OUTPUT_DIR})")
        elif key in REMOVED_TRAINING_ARGS:
            problems.append(f"{name}: {REMOVED_TRAINING_ARGS[key]}")
        elif key not in fields:
            problems.append(f"{name}: not a TrainingArguments field{_suggest(str(key), fields)}")
        elif why := refusal(key, value):
            problems.append(why)
        elif (choices := _enum_values(hints.get(key))) and str(written := as_written(key, value)) not in choices:
            listed = f" ({', '.join(choices)})" if len(choices) <= 8 else ""
            lowered = str(written).lower()
            nearest = next((choice for choice in choices if choice.startswith(lowered)), None)
            hint = f"; did you mean '{nearest}'?" if nearest else _suggest(lowered, choices)
            problems.append(f"{name}: {written!r} is not one of its {len(choices)} values{listed}{hint}")
        else:
            minimum = POSITIVE if key in POSITIVE_TRAINING_ARGS else None
            checked[key] = _check_value(name, as_written(key, value), hints.get(key), minimum, problems)
    problems += option_problems(checked)
    return {**TRAINING_DEFAULTS, **checked}


def check_consistency(cfg: Config, problems: list[str]) -> None:
    """Rules that span several keys, and the local files named."""
    model, data = cfg.model, cfg.data
    if model.scratch is None and not model.name_or_path:
        problems.append("model.name_or_path: is null; name a Hub model or a directory, or set model.scratch")
    if model.scratch is not None and model.scratch.hidden_size % model.scratch.num_attention_heads:
        problems.append(
            f"model.scratch.num_attention_heads: {model.scratch.num_attention_heads} does not divide "
            f"model.scratch.hidden_size {model.scratch.hidden_size}; choose heads that divide it (e.g. hidden_size / 64)"
        )
    training = cfg.training
    evaluated, saved = training.get("eval_strategy"), training.get("save_strategy")
    # (evaluate-only runs set all three themselves: EVALUATE_ONLY_TRAINING)
    if model.fine_tune and training.get("load_best_model_at_end") and saved != "best" and evaluated != saved:
        problems.append(  # transformers' own check names its command-line flags, not these keys
            f"training.save_strategy: {saved!r} and training.eval_strategy: {evaluated!r} must match while "
            "training.load_best_model_at_end is true (bert-ner's default: it keeps the best epoch); set "
            "training.load_best_model_at_end=false, or both strategies alike"
        )
    if cfg.early_stopping.patience and not (
        cfg.training.get("load_best_model_at_end") and cfg.training.get("eval_strategy") != "no"
    ):
        problems.append(
            "early_stopping.patience: needs evaluations to watch and the best model kept "
            "(training.eval_strategy other than no, training.load_best_model_at_end: true, as by default)"
        )
    if not isinstance(data.label_map, dict) or not all(
        isinstance(k, str) and (v is None or (isinstance(v, str) and v and "-" not in v[:2])) for k, v in data.label_map.items()
    ):
        problems.append(
            f"data.label_map: {data.label_map!r} is not a mapping of type names to type names (or null), e.g. {{person: PER}}"
        )
    if data.context_dropout and data.context_tokens and cfg.training.get("dataloader_persistent_workers"):
        problems.append(
            "training.dataloader_persistent_workers: workers that persist keep the first epoch's draw of "
            "data.context_dropout; unset it, or set data.context_dropout: 0"
        )
    if model.scratch is not None and not model.fine_tune:
        problems.append("model.fine_tune: false needs a trained model; unset model.scratch")
    if model.scratch is None and model.name_or_path and looks_local(model.name_or_path):
        if not Path(model.name_or_path).expanduser().is_dir():
            problems.append(
                f"model.name_or_path: no model directory '{model.name_or_path}'; "
                "check the path, or give a Hub id such as bert-base-cased"
            )
    if not model.fine_tune and model.name_or_path and Path(model.name_or_path).resolve() == cfg.output_dir.resolve():
        problems.append(
            f"training.output_dir: '{cfg.output_dir}' is the model being scored (model.name_or_path), and a run replaces "
            "its output_dir whole; choose another output_dir for the scores"
        )
    problems += search_problems(cfg.search)
    if cfg.search.trials and not model.fine_tune:
        problems.append("search.trials: a search trains; it needs model.fine_tune: true")
    files = data.local_files()
    if data.dataset and files:
        given = ", ".join(f"data.{split}_file" for split in files)
        problems.append(
            f"data.dataset: set to '{data.dataset}', and local files too ({given}); set data.dataset: null to use the files"
        )
    if not data.dataset:
        if model.fine_tune and not data.train_file:
            problems.append("data.train_file: required when data.dataset is null")
        if model.fine_tune and not data.validation_file:
            problems.append("data.validation_file: required when training (it picks the best epoch)")
        if not model.fine_tune and not data.validation_file and not data.test_file:
            problems.append("data.test_file: required (or data.validation_file) to evaluate")
    for split, path in files.items():
        key = f"data.{split}_file"
        if not Path(path).exists():
            problems.append(f"{key}: no such file '{path}'; check the path (relative to where you run train.py)")
        elif Path(path).is_dir():
            problems.append(f"{key}: '{path}' is a directory; expected a file")
        elif Path(path).suffix.lower() not in CONLL_SUFFIXES + JSONL_SUFFIXES:
            problems.append(f"{key}: '{path}' has an unknown extension; use .txt/.conll (CoNLL) or .json/.jsonl (JSON lines)")


def source_of(problem: str, overridden: set[str], path: Path) -> str:
    """Where the values a problem names came from: the command line when an override set one of
    the keys it names (the key it is about first, and any other whose value it involves), a key
    inside one, or the section one lies in; else the config file."""
    keys = {problem.split(":")[0], *re.findall(r"\b(?:" + "|".join(CONFIG_SECTIONS) + r")\.[\w.]*\w", problem)}
    on_command_line = any(k == key or k.startswith(key + ".") or key.startswith(k + ".") for k in overridden for key in keys)
    return "command line" if on_command_line else str(path)


def load_config(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read config.yaml, apply dotted overrides (echoing each), and validate everything at once."""
    path = Path(path)
    if path.is_dir():
        files = ", ".join(sorted(file.name for file in path.glob("*.yaml"))[:4])
        raise UserError(f"--config '{path}' is a directory; pass one file in it{f' ({files})' if files else ''}")
    if not path.is_file():
        raise UserError(f"config file '{path}' not found; pass --config PATH (default: {CONFIG_FILE})")
    raw = parse_yaml(path.read_text(encoding="utf-8"), str(path)) or {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected sections (model:, data:, training:), got {type(raw).__name__}")
    overridden = set()
    for text in overrides:
        keys, value = parse_override(text)
        dotted = ".".join(keys)
        # The later of two overrides wins, as wrapper scripts rely on (bench/*.sh pass their
        # defaults, then the user's); said once, so that it is never a surprise.
        if clash := next(
            (k for k in overridden if k == dotted or k.startswith(dotted + ".") or dotted.startswith(k + ".")), None
        ):
            log.info(f"override: {dotted} replaces the earlier {clash} (the later override wins)")
        apply_override(raw, keys, value)
        overridden.add(dotted)
        log.info(f"override: {dotted} = {value!r}")

    problems: list[str] = []
    expand_paths(raw, os.environ, problems)
    sections = set(CONFIG_SECTIONS)
    for key in raw:
        if key not in sections:
            problems.append(f"{key}: unknown section{_suggest(str(key), sections)}")
    cfg = Config(
        model=build_section(ModelConfig, raw.get("model") or {}, "model", problems),
        data=build_section(DataConfig, raw.get("data") or {}, "data", problems),
        inference=build_section(InferenceConfig, raw.get("inference") or {}, "inference", problems),
        checkpoints=build_section(CheckpointsConfig, raw.get("checkpoints") or {}, "checkpoints", problems),
        search=build_section(SearchConfig, raw.get("search") or {}, "search", problems),
        early_stopping=build_section(EarlyStoppingConfig, raw.get("early_stopping") or {}, "early_stopping", problems),
        training=check_training(raw.get("training"), problems),
    )
    problems += word_problems(cfg.data)
    if not problems:
        check_consistency(cfg, problems)
    if problems:
        # A problem with a value given on the command line is the command line's, not the file's.
        raise UserError("\n".join(f"{source_of(p, overridden, path)}: {p}" for p in problems))
    return cfg


def to_yaml(cfg: Config) -> str:
    """The resolved config as readable YAML (what train.py saves next to the model)."""
    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False, allow_unicode=True)


def describe(cls: type = Config, prefix: str = "") -> list[str]:
    """One `key: help` line per field of our sections, for --help."""
    lines = []
    for spec in dataclasses.fields(cls):
        kind, _ = _optional_of(typing.get_type_hints(cls)[spec.name])
        key = f"{prefix}{spec.name}"
        if spec.name == "training":
            lines.append(f"  {key}.*: any transformers.TrainingArguments field")
        elif dataclasses.is_dataclass(kind) and cls is Config:
            lines += describe(kind, f"{key}.")
        else:
            lines.append(f"  {key}: {spec.metadata.get('help', '')}")
            if dataclasses.is_dataclass(kind):
                lines += describe(kind, f"{key}.")
    return lines


# What a saved config that lacks a key (written before the key existed) meant by it, where that is
# not the key's default today: data.context_tokens and data.context_dropout came in off (0) and
# took their defaults (128, 0.5) once measured.
BEFORE_KEY_EXISTED: dict[str, dict[str, Any]] = {"data": {"context_tokens": 0, "context_dropout": 0.0}}


def saved_defaults() -> dict[str, Any]:
    """What each key of a saved config (a checkpoint's) means where it is missing, as plain dicts:
    today's default, or what it meant before the key existed (BEFORE_KEY_EXISTED)."""
    defaults = yaml.safe_load(to_yaml(Config()))
    for section, keys in BEFORE_KEY_EXISTED.items():
        defaults[section].update(keys)
    return defaults
