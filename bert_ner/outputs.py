"""What a run leaves in output_dir besides the model (metrics, reports, predictions, the log),
and the name of every file and directory bert-ner writes or reads there: the one place they live."""

import hashlib
import json
from pathlib import Path

DEFAULT_OUTPUT_DIR = "bert-ner"  # where train.py saves and infer.py and export.py look, unless told

# What transformers names (save_pretrained, Trainer's checkpoints); the ONNX backends read the
# first three without transformers.
MODEL_CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
CHECKPOINT_PREFIX = "checkpoint-"  # Trainer's checkpoint directories (transformers' PREFIX_CHECKPOINT_DIR)
TRIAL_DIR_PREFIX = "run-"  # how Trainer.hyperparameter_search names each trial's directory
TRAINER_STATE = "trainer_state.json"
WEIGHTS = ("model.safetensors", "model.safetensors.index.json")  # one file, or shards and their index
OPTIMIZER = "optimizer.pt"  # absent with save_only_model

# bert-ner's own
WRITE_PROBE = ".write-test-"  # train.py's probe for a writable output_dir, deleted at once
ONNX_DIR = "onnx"  # export.py's
BACKEND_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}  # in ONNX_DIR
RESOLVED_CONFIG_FILE = "train_config.yaml"  # the run's resolved config, next to the model
RECORD_FILE = "bert_ner.json"  # what inference must do with the model (bert_ner.record)
METRICS_FILE = "metrics.json"
REPORT_FILE = "classification_report.txt"
PREDICTIONS_FILE = "test_predictions.txt"
LOG_FILE = "training_log.tsv"
LEARNING_CURVES = "learning_curves.png"
PER_TYPE = "per_type_scores.png"
CONFUSION = "confusion_matrix.png"
RELIABILITY = "reliability.png"  # entity scores before and after calibration
ERRORS_MD = "errors.md"
ERRORS_JSONL = "errors.jsonl"
MODEL_CARD = "README.md"  # the Hugging Face model card
BEST_FILE = "best_hyperparameters.yaml"  # with search.trials
TRIALS_FILE = "search_trials.tsv"
# Every file bert-ner wrote into an output directory, one relative path a line: a rerun may replace
# these, and refuses to run over anything else (a user's notes, an HTML page saved there).
OWN_FILES = ".bert-ner-files"
# infer.py --ray's output directory: shards of records, the lines it could not read, and a
# manifest written last, which also marks the directory as one a rerun may replace.
SHARD_PREFIX = "part-"
BAD_LINES_FILE = "bad_lines.jsonl"
RAY_MANIFEST = "bert_ner_run.json"
LOG_COLUMNS = ("step", "epoch", "loss", "learning_rate", "grad_norm", "eval_loss", "eval_precision", "eval_recall", "eval_f1")


# Working directories beside output_dir, hidden: the final output while it is written, the old
# output while the new one takes its name, hyperparameter trials.
SIBLING_ROLES = ("partial", "previous", "search")


def sibling_dir(output_dir: Path, role: str) -> Path:
    """`.NAME.<role>` beside output_dir NAME (SIBLING_ROLES)."""
    assert role in SIBLING_ROLES, role
    output_dir = output_dir.resolve()  # "." has no name to build a sibling's from
    return output_dir.with_name(f".{output_dir.name}.{role}")


SPLIT_NAMES = {"validation": "dev", "test": "test"}  # how summaries name the scored splits


def f1_summary(scores: dict) -> list[str]:
    """["dev f1 0.912 (spans 0.950)", ...] for the splits that `scores` (metrics.json) has: span F1
    strict, and in brackets with the type ignored, where the scores have it."""
    parts = []
    for split, name in SPLIT_NAMES.items():
        if isinstance(scores.get(split), dict):
            untyped = f" (spans {scores[split]['span_f1']:.3f})" if "span_f1" in scores[split] else ""
            parts.append(f"{name} f1 {scores[split]['f1']:.3f}{untyped}")
    return parts


def read_metrics(output_dir: Path) -> dict:
    """metrics.json of a run, as write_metrics wrote it."""
    return json.loads((output_dir / METRICS_FILE).read_text(encoding="utf-8"))


def write_metrics(output_dir: Path, metrics: dict) -> None:
    (output_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")


def write_reports(output_dir: Path, reports: dict[str, str]) -> None:
    """seqeval's report per split, one after the other."""
    text = "\n".join(f"== {split} ==\n{report}" for split, report in reports.items())
    (output_dir / REPORT_FILE).write_text(text, encoding="utf-8")


def conll_lines(sentences: list[list[str]], gold: list[list[str]], predicted: list[list[str]]) -> list[str]:
    """`word gold predicted` per word, a blank line after each sentence: what conlleval reads."""
    lines = []
    for words, gold_tags, predicted_tags in zip(sentences, gold, predicted):
        lines += [f"{w} {g} {p}" for w, g, p in zip(words, gold_tags, predicted_tags)]
        lines.append("")
    return lines


def write_predictions(output_dir: Path, sentences, gold, predicted) -> None:
    (output_dir / PREDICTIONS_FILE).write_text("\n".join(conll_lines(sentences, gold, predicted)) + "\n", encoding="utf-8")


def log_rows(log_history: list[dict]) -> list[str]:
    """Trainer's log history as a tab-separated table, one row per logging or evaluation step."""
    rows = ["\t".join(LOG_COLUMNS)]
    for entry in log_history:
        if not any(key in entry for key in ("loss", "eval_loss")):
            continue  # the end-of-training summary has its own place in metrics.json
        cells = [entry.get(key, "") for key in LOG_COLUMNS]
        rows.append("\t".join(f"{c:.6g}" if isinstance(c, float) else str(c) for c in cells))
    return rows


def write_log(output_dir: Path, log_history: list[dict]) -> None:
    (output_dir / LOG_FILE).write_text("\n".join(log_rows(log_history)) + "\n", encoding="utf-8")


def read_labels(model_dir: Path) -> list[str]:
    """A saved model's label names in id order (its config.json), or [] where there is no model."""
    config = model_dir / MODEL_CONFIG_FILE
    if not config.is_file():
        return []
    id2label = json.loads(config.read_text(encoding="utf-8")).get("id2label", {})
    return [id2label[key] for key in sorted(id2label, key=int)]


def read_log(output_dir: Path) -> list[dict]:
    """training_log.tsv back as rows of numbers (None where a cell is empty)."""
    lines = (output_dir / LOG_FILE).read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [{key: float(cell) if cell else None for key, cell in zip(header, line.split("\t"))} for line in lines[1:] if line]


def read_predictions(output_dir: Path) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """test_predictions.txt back as words, gold tags and predicted tags per sentence."""
    sentences: tuple[list, list, list] = ([], [], [])
    current: tuple[list, list, list] = ([], [], [])
    for line in (output_dir / PREDICTIONS_FILE).read_text(encoding="utf-8").split("\n"):
        if line:
            for column, value in zip(current, line.rsplit(" ", 2)):  # a JSON-lines word may hold spaces
                column.append(value)
        elif current[0]:
            for all_, one in zip(sentences, current):
                all_.append(one)
            current = ([], [], [])
    return sentences


def files_under(directory: Path) -> list[str]:
    """Every file under `directory`, and every empty directory (with a trailing /), as sorted
    relative POSIX paths."""
    found = []
    for path in directory.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                found.append(path.relative_to(directory).as_posix() + "/")
        else:
            found.append(path.relative_to(directory).as_posix())
    return sorted(found)


# A file this small may be one a user edits by hand (the model card above all): the record of own
# files keeps its digest, so that an edit is noticed before a rerun or bert_ner.insights would replace
# it. Larger files (the weights) are never edited by hand, and hashing them would slow every run.
EDITABLE_BYTES = 16 * 2**20


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:  # in blocks: a recorded file may have grown since
        while block := file.read(2**20):
            digest.update(block)
    return digest.hexdigest()


def _current_digest(output_dir: Path, name: str) -> str | None:
    """The digest of `name` as it is now where it may be edited by hand (EDITABLE_BYTES), else None."""
    path = output_dir / name
    editable = path.is_file() and not path.is_symlink() and path.stat().st_size <= EDITABLE_BYTES
    return _digest(path) if editable and name != OWN_FILES else None


def _read_record(output_dir: Path) -> dict[str, str | None] | None:
    """The record of own files: each name and its digest (None where none was kept), or None
    where there is no record. Records of older versions list names only."""
    path = output_dir / OWN_FILES
    if not path.is_file():
        return None
    entries = (line.partition("\t") for line in path.read_text(encoding="utf-8").splitlines() if line)
    return {name: digest or None for name, _, digest in entries}


def _write_record(output_dir: Path, record: dict[str, str | None]) -> None:
    """One line per name, with a tab and its digest where it has one."""
    lines = [f"{name}\t{digest}" if digest else name for name, digest in sorted({**record, OWN_FILES: None}.items())]
    (output_dir / OWN_FILES).write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_own_files(output_dir: Path) -> None:
    """Record everything now in output_dir as bert-ner's own (the last file a run writes)."""
    _write_record(output_dir, {name: _current_digest(output_dir, name) for name in files_under(output_dir)})


def read_own_files(output_dir: Path) -> set[str] | None:
    """The files bert-ner recorded as its own in output_dir, or None where it recorded none."""
    record = _read_record(output_dir)
    return None if record is None else set(record)


def add_own_files(output_dir: Path, paths: list[str]) -> None:
    """Record more files as bert-ner's own, or files it wrote again (export.py's ONNX files,
    bert_ner.insights' plots and card), in a directory train.py wrote. The others keep their recorded
    digest: a file edited since it was recorded must still read as edited."""
    record = _read_record(output_dir)
    if record is not None:
        _write_record(output_dir, record | {name: _current_digest(output_dir, name) for name in paths})


def check_own_files_writable(output_dir: Path) -> None:
    """Raise OSError now where add_own_files could not update the record (a read-only
    directory), before work that would then be left unrecorded. Writes nothing."""
    path = output_dir / OWN_FILES
    if path.is_file():
        path.open("a", encoding="utf-8").close()


def edited_files(output_dir: Path, names: list[str] | None = None) -> list[str]:
    """Of bert-ner's own files in output_dir (or of `names` among them), those changed since it
    wrote them: their digest differs from the record's."""
    record = _read_record(output_dir) or {}
    wanted = record if names is None else [name for name in names if name in record]
    return [
        name
        for name in sorted(wanted)
        if record[name] and (output_dir / name).is_file() and _digest(output_dir / name) != record[name]
    ]
