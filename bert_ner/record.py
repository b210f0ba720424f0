"""The saved model's record: what inference must do with this model, written once by train.py.

A model directory holds the weights and tokenizer (transformers' files) and `RECORD_FILE`, a small
versioned JSON object: the longest input, the document context and the decoding the model was
trained and scored with, and its word rules and tag scheme. `Tagger.load` reads it, so that every
entry point (infer.py, serve.py, export.py's self-check, the Python API) encodes and decodes as
train.py scored, whatever its own defaults. `ModelRecord.to_json` and `read_record` are inverses.

A directory without the record still loads (`read_record`): a model saved by an earlier bert-ner
is read from its train_config.yaml, and any other token-classification model (a Hub model, an
export from elsewhere) gets `ModelRecord()`: sentences alone, the model's own length limit, Viterbi.

Version 2 added `calibration` (bert_ner.calibration) and the words of scripts written without
spaces (word rules `characters`, sentence languages other than English), version 3 the calibration's
separate map for entities of the training data. A record is written as the oldest version that holds it (`version_of`), so that an
older bert-ner reads what it can score right and refuses the rest; a model without a calibration
scores as before it existed.
"""

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bert_ner.calibration import Calibration
from bert_ner.errors import UserError
from bert_ner.outputs import RECORD_FILE, RESOLVED_CONFIG_FILE
from bert_ner.tags import TAG_SCHEME
from bert_ner.words import DEFAULT_LANGUAGE, SENTENCE_LANGUAGES, TREEBANK, WORD_RULES

RECORD_VERSION = 3  # the newest version this bert-ner reads and writes
# a calibrated copy of a model directory, fitted on its validation data (CoNLL files)
CALIBRATE = (
    "python bench/calibration.py --model DIR --train TRAIN --validation VALIDATION --test TEST --write NEW_DIR "
    "[--record-min-precision P]"
)
RECALIBRATE = f"or calibrate it again ({CALIBRATE})"
RECORD_FORMAT = "bert-ner model record"


@dataclass(frozen=True)
class ModelRecord:
    """What inference must do with a saved model. The defaults are what a model that says
    nothing of its training gets."""

    max_length: int | None = None  # sub-tokens per model input, special tokens included; None = the model's own limit
    context_tokens: int = 0  # sub-tokens of neighbouring sentences on each side (bert_ner.context); 0 = sentences alone
    viterbi: bool = True  # decode with a Viterbi pass over valid IOB2 transitions; False = each word's likeliest tag
    word_rules: str = TREEBANK  # how raw text becomes words (bert_ner.words.WORD_RULES)
    language: str = DEFAULT_LANGUAGE  # the sentence splitter's language (pySBD's codes: bert_ner.words.SENTENCE_LANGUAGES)
    tag_scheme: str = TAG_SCHEME
    calibration: Calibration | None = None  # entity scores fitted on validation; None = the model's own scores

    def to_json(self) -> str:
        fields = {spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self)}
        if self.calibration is None:
            del fields["calibration"]
        else:
            fields["calibration"] = self.calibration.as_dict()
        return json.dumps({"format": RECORD_FORMAT, "version": version_of(self), **fields}, indent=2) + "\n"


def version_of(record: ModelRecord) -> int:
    """The oldest record version that holds `record`: 1 reads English sentences split into
    Treebank words, uncalibrated; 2 also the characters word rules and other sentence languages."""
    words = 1 if (record.word_rules, record.language) == (TREEBANK, DEFAULT_LANGUAGE) else 2
    return max(words, calibration_version(record.calibration))


def calibration_version(calibration: Calibration | None) -> int:
    """The oldest record version that holds `calibration`: 2 one map, 3 a map for the training data's entities."""
    if calibration is None:
        return 1
    return 2 if calibration.known_points is None else 3


def write_record(model_dir: Path, record: ModelRecord) -> None:
    (Path(model_dir) / RECORD_FILE).write_text(record.to_json(), encoding="utf-8")


def parse_record(text: str, source: str) -> ModelRecord:
    """A record from its JSON text; UserError naming `source` when it is damaged or made by a newer
    bert-ner. Keys this version does not know are refused only with a newer version number."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise UserError(f"{source}: not a bert-ner model record ({error}); copy the model directory again") from None
    if not isinstance(raw, dict) or raw.get("format") != RECORD_FORMAT:
        raise UserError(f"{source}: not a bert-ner model record; copy the model directory again")
    if not isinstance(raw.get("version"), int) or raw["version"] > RECORD_VERSION:
        raise UserError(
            f"{source}: record version {raw.get('version')!r} was written by a newer bert-ner than this one "
            f"(it reads version {RECORD_VERSION}); update this bert-ner (git pull in its clone, then pip install .)"
        )
    known = {spec.name for spec in dataclasses.fields(ModelRecord)}
    fields = {key: value for key, value in raw.items() if key in known}
    if fields.get("calibration") is not None:
        try:
            fields["calibration"] = Calibration.from_dict(fields["calibration"])
        except ValueError as error:
            raise UserError(f"{source}: {error}; copy the model directory again, {RECALIBRATE}") from None
    record = ModelRecord(**fields)
    if raw["version"] < calibration_version(record.calibration):
        raise UserError(
            f"{source}: record version {raw['version']} cannot hold its calibration "
            f"(version {calibration_version(record.calibration)} can); "
            f"copy the model directory again, {RECALIBRATE}"
        )
    problems = record_problems(record)
    if problems:
        raise UserError(f"{source}: " + "; ".join(problems) + "; copy the model directory again, or train again")
    return record


def record_problems(record: ModelRecord) -> list[str]:
    problems = []
    if record.max_length is not None and (not isinstance(record.max_length, int) or record.max_length < 8):
        problems.append(f"max_length {record.max_length!r} is not a number of sub-tokens (8 or more)")
    if not isinstance(record.context_tokens, int) or record.context_tokens < 0:
        problems.append(f"context_tokens {record.context_tokens!r} is not 0 or more")
    if not isinstance(record.viterbi, bool):
        problems.append(f"viterbi {record.viterbi!r} is not true or false")
    if record.word_rules not in WORD_RULES:
        problems.append(f"word_rules {record.word_rules!r} is not one of {', '.join(WORD_RULES)}")
    if record.language not in SENTENCE_LANGUAGES:
        problems.append(f"language {record.language!r} is not one of {', '.join(SENTENCE_LANGUAGES)}")
    if record.tag_scheme != TAG_SCHEME:
        problems.append(f"tag_scheme {record.tag_scheme!r} is not {TAG_SCHEME}")
    return problems


def read_record(model_dir: str | Path, locate: Callable[[str], Path | None] | None = None) -> ModelRecord:
    """The record of the model in `model_dir`: its RECORD_FILE; for a model saved by a bert-ner
    before the record existed, what its train_config.yaml says (`from_run_config`); otherwise
    ModelRecord(). `locate(file name)` gives a file's local path or None (default: the file in
    `model_dir`); the PyTorch backend passes one that also finds a Hub model's files."""
    locate = locate or (lambda name: Path(model_dir) / name if (Path(model_dir) / name).is_file() else None)
    if path := locate(RECORD_FILE):
        return parse_record(Path(path).read_text(encoding="utf-8"), str(path))
    if run_config := locate(RESOLVED_CONFIG_FILE):
        return from_run_config(Path(run_config).read_text(encoding="utf-8"), str(run_config))
    return ModelRecord()


def from_run_config(text: str, source: str) -> ModelRecord:
    """The record of a model saved before the record existed, from its resolved run config: its
    `data:` keys max_length, context_tokens and viterbi. A config from before data.context_tokens
    existed trained on sentences alone."""
    try:
        data = (yaml.safe_load(text) or {}).get("data") or {}
    except (yaml.YAMLError, AttributeError) as error:
        raise UserError(f"{source}: cannot read it ({error}); copy the model directory again") from None
    record = ModelRecord(
        max_length=data.get("max_length"), context_tokens=data.get("context_tokens", 0), viterbi=data.get("viterbi", True)
    )
    problems = record_problems(record)
    if problems:
        raise UserError(f"{source}: " + "; ".join(problems) + "; fix the file, or train again")
    return record
