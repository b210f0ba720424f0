"""Tag a corpus on Ray Data (python infer.py --ray): the same records as infer.py --json, on a
laptop's local Ray or a cluster's.

1. Read: every input file whole, as bytes (ray.data.read_binary_files): local paths or any URL
   Ray Data reads. Ray's read_text would split lines where str.splitlines does (U+2028 too), not
   where infer.py --file does, and neither it nor read_json says which line a row came from.
2. Split: each file into rows {file, line, text, fields, error} (`file_rows`): a text file's
   lines, a JSON line's text field and its other fields, a Parquet row's text column and its other
   columns. A line that can't be read becomes an error row naming file:line; the others go on.
3. Tag: a pool of actors (`TagBatches`), each loading the Tagger once, tags chunks of rows into
   infer.py --json's records plus the row's position and fields: a chunk is what infer.py tags
   together (TEXTS_PER_CHUNK texts of a file, or with documents the whole file).
4. Write: each write task writes its shard into the output's hidden sibling (`ShardSink`); the
   manifest comes last and one rename publishes the directory (`publish`): a reader sees the
   previous complete output or the new one, never a half-written one.
"""

import glob
import io
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
from ray.data.block import BlockAccessor
from ray.data.datasource import Datasink, WriteResult

from bert_ner.data import numbered_lines
from bert_ner.errors import UserError
from bert_ner.inference import BATCH_SIZE
from bert_ner.outputs import BAD_LINES_FILE, RAY_MANIFEST, SHARD_PREFIX, sibling_dir
from bert_ner.spans import json_record, one_line_json
from bert_ner.tagger import TEXTS_PER_CHUNK, Tagger
from bert_ner.words import Entity

OUTPUT_FORMATS = ("jsonl", "parquet")
JSON_LINES_SUFFIXES = (".jsonl", ".json")  # any other name but .parquet is a text file, a text per line
PARQUET_SUFFIX = ".parquet"
# A row between the split and the tagging: one schema whatever the input, the user's own fields
# as one JSON string, so that Arrow never has to unify their types across files.
FILE, LINE, TEXT, FIELDS, ERROR = COLUMNS = ("file", "line", "text", "fields", "error")
RECORD = "record"  # the tagged row: its output record as one JSON line
POSITION = (FILE, LINE)
# Reading, splitting and writing wait on storage and take little CPU next to the model: they hold
# none, or workers holding every CPU (--workers 2 on 2 CPUs) would leave them none and the run would stall.
IO_TASK = {"num_cpus": 0}


# 2. Split


def file_rows(path: str, data: bytes, text_field: str = TEXT) -> list[dict]:
    """The rows of one input file, in order: Parquet by its suffix, JSON lines by .jsonl or .json,
    any other file a text per line. `line` is 1-based (a Parquet row's number in its file)."""
    if path.endswith(PARQUET_SUFFIX):
        return parquet_rows(path, data, text_field)
    rows = []
    for number, line in numbered_lines(io.BytesIO(data), path):  # lines as infer.py --file reads them
        try:
            if isinstance(line, UserError):
                raise line
            if not path.endswith(JSON_LINES_SUFFIXES):
                rows.append(row(path, number, line))
            elif line.strip():  # a blank JSON line holds no record: skipped, as JSON lines readers do
                rows.append(
                    row(path, number, *json_fields(json_object(line, f"{path}:{number}"), text_field, f"{path}:{number}"))
                )
        except UserError as error:
            rows.append(row(path, number, error=str(error)))
    return rows


def parquet_rows(path: str, data: bytes, text_field: str) -> list[dict]:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except pa.ArrowException as error:
        return [row(path, 0, error=f"{path}: not a Parquet file ({error}); check the file, or rename it if it is text")]
    rows = []
    for number, values in enumerate(table.to_pylist(), 1):
        try:
            rows.append(row(path, number, *json_fields(values, text_field, f"{path}: row {number}")))
        except UserError as error:
            rows.append(row(path, number, error=str(error)))
    return rows


def json_object(line: str, where: str) -> dict:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise UserError(f"{where}: not JSON ({error.msg} at column {error.colno}); fix the line") from None
    if not isinstance(value, dict):
        raise UserError(f"{where}: a JSON {type(value).__name__}, not an object with a text field")
    return value


def json_fields(values: dict, text_field: str, where: str) -> tuple[str, str]:
    """A record's text and its other fields, as JSON, which the output carries."""
    text = values.get(text_field)
    if not isinstance(text, str):
        found = "no" if text is None else f"a {type(text).__name__} in"
        raise UserError(
            f"{where}: {found} field '{text_field}' where the text should be; name the text's field with --text-field"
        )
    fields = {key: value for key, value in values.items() if key != text_field}
    if clash := [key for key in (*POSITION, *json_record("", [])) if key in fields]:
        raise UserError(f"{where}: field '{clash[0]}' is one the output writes; rename it")
    return text, json.dumps(fields, ensure_ascii=False, default=str)  # default: a Parquet timestamp's text


def row(path: str, line: int, text: str = "", fields: str = "{}", error: str = "") -> dict:
    return {FILE: path, LINE: line, TEXT: text, FIELDS: fields, ERROR: error}


def split_files(batch: dict[str, np.ndarray], text_field: str, documents: bool) -> dict[str, list]:
    """read_binary_files' rows (bytes, path) -> chunks of each file's rows, one row per chunk with
    a list per column: infer.py's chunks of TEXTS_PER_CHUNK texts, or with documents the whole
    file. A worker tags a chunk as infer.py does, so its texts share the same model calls (the
    int8 backend's results depend on which texts share a call)."""
    chunks = []
    for path, data in zip(batch["path"], batch["bytes"]):
        rows = file_rows(str(path), bytes(data), text_field)
        size = max(len(rows), 1) if documents else TEXTS_PER_CHUNK
        chunks += [rows[first : first + size] for first in range(0, len(rows), size)]
    return {column: [[r[column] for r in chunk] for chunk in chunks] for column in COLUMNS}


# 3. Tag


@dataclass
class TagSettings:
    """How the workers load and run the Tagger: Tagger.load's arguments, then Tagger.records'."""

    load: dict = field(default_factory=dict)
    batch_size: int = BATCH_SIZE
    min_score: float | None = None  # None: the threshold the model records (bert_ner.calibration)
    documents: bool = False
    text_field: str = TEXT


def output_record(text: str, entities: list[dict], file: str, line: int, fields: str) -> str:
    """infer.py --json's record for a text, after the input's own fields and its position."""
    return one_line_json({**json.loads(fields), FILE: file, LINE: line, **json_record(text, entities)})


class TagBatches:
    """A Ray Data worker: loads the Tagger once, then tags chunks of rows (split_files') into
    {record, error} rows, in order."""

    def __init__(self, settings: TagSettings):
        self.settings = settings
        self.tagger = Tagger.load(**settings.load)

    def __call__(self, batch: pa.Table) -> dict[str, list]:
        """Chunks (split_files' rows) -> one {record, error} row per text, in order."""
        results: dict[str, list] = {RECORD: [], ERROR: []}
        for chunk in batch.to_pylist():
            tagged = self.tag([dict(zip(COLUMNS, values)) for values in zip(*(chunk[column] for column in COLUMNS))])
            results[RECORD] += tagged[RECORD]
            results[ERROR] += tagged[ERROR]
        return results

    def tag(self, rows: list[dict]) -> dict[str, list]:
        """Rows in order -> their records ("" for an error row) and errors ("" for a record). An
        error row is read as a blank line: with documents, it ends its document."""
        texts = ["" if r[ERROR] else r[TEXT] for r in rows]
        s = self.settings
        # infer.py's own loop, so that a file's texts share model calls as they do there
        found = [entities for _, entities in self.tagger.records(texts, s.batch_size, s.documents, s.min_score)]
        return {
            RECORD: ["" if r[ERROR] else output_record(r[TEXT], e, r[FILE], r[LINE], r[FIELDS]) for r, e in zip(rows, found)],
            ERROR: [one_line_json({FILE: r[FILE], LINE: r[LINE], ERROR: r[ERROR]}) if r[ERROR] else "" for r in rows],
        }


# 4. Write

# The entity record's fields and their Arrow types, from the record itself (bert_ner.words.Entity).
ARROW_TYPES = {str: pa.string(), int: pa.int64(), float: pa.float64()}
ENTITIES_TYPE = pa.list_(pa.struct([(k, ARROW_TYPES[type(v)]) for k, v in Entity("", "", 0, 0, 0.0).as_dict().items()]))


def parquet_table(records: list[str]) -> pa.Table:
    """JSON line records as a table; entities keep their struct type even in a shard with none."""
    rows = [json.loads(record) for record in records]
    entities = pa.array([r.pop("entities") for r in rows], type=ENTITIES_TYPE)
    return pa.Table.from_pylist(rows).append_column("entities", entities)


class ShardSink(Datasink):
    """Writes each write task's records as one shard (part-NNNNN.jsonl or .parquet) into
    `directory`; returns the task's bad lines to the driver, which collects them in `bad_lines`.
    A retried task rewrites its own shard: the name is the task's, the file replaced whole."""

    def __init__(self, directory: str, output_format: str):
        self.directory, self.output_format = directory, output_format
        self.bad_lines: list[str] = []
        self.records = 0

    def write(self, blocks: Iterable, ctx) -> tuple[int, list[str]]:
        records, errors = [], []
        for block in blocks:
            table = BlockAccessor.for_block(block).to_arrow()
            records += [r for r in table.column(RECORD).to_pylist() if r]
            errors += [e for e in table.column(ERROR).to_pylist() if e]
        if records:
            path = Path(self.directory) / f"{SHARD_PREFIX}{ctx.task_idx:05d}.{self.output_format}"
            temporary = path.with_name(f".{path.name}.tmp")
            if self.output_format == "parquet":
                pq.write_table(parquet_table(records), temporary)
            else:
                temporary.write_text("".join(record + "\n" for record in records), encoding="utf-8")
            os.replace(temporary, path)
        return len(records), errors

    def on_write_complete(self, write_result: WriteResult) -> None:
        for records, errors in write_result.write_returns:
            self.records += records
            self.bad_lines += errors


@dataclass
class Summary:
    """What a run wrote: records, bad lines (JSON lines {file, line, error}) and where."""

    records: int
    bad_lines: list[str]
    output: Path


def input_paths(pattern: str) -> list[str]:
    """--file's files: a local file, directory or glob, or a URL Ray Data reads (passed as is)."""
    if "://" in pattern:
        return [pattern]
    found = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern] * os.path.exists(pattern)
    if not found:
        raise UserError(f"--file '{pattern}': no such file, directory or match; check the path (quote a glob)")
    return found


def check_output(output: str) -> Path:
    """The output directory, refused now when a finished run could not be published there."""
    if "://" in output:
        raise UserError(f"--output '{output}': write to a local or shared-filesystem directory, then copy it to object storage")
    path = Path(output)
    if path.exists() and not (path / RAY_MANIFEST).is_file():
        raise UserError(
            f"--output '{output}' exists and is not what infer.py --ray wrote; choose another directory, or delete it"
        )
    return path


def publish(output: Path, partial: Path) -> None:
    """Put the finished `partial` directory in `output`'s place (replacing an earlier run's)."""
    previous = sibling_dir(output, "previous")
    shutil.rmtree(previous, ignore_errors=True)
    if output.exists():
        output.rename(previous)
    partial.rename(output)
    shutil.rmtree(previous, ignore_errors=True)


def tag_corpus(
    pattern: str,
    output: str,
    settings: TagSettings,
    workers: int = 1,
    cpus_per_worker: float = 1,
    gpus_per_worker: float = 0,
    output_format: str = "jsonl",
    worker: type = TagBatches,
) -> Summary:
    """Tag every file `pattern` names into the directory `output`, on the Ray cluster that
    ray.init finds (RAY_ADDRESS, a `ray job submit` job's, or a local one it starts).

    Writes shards of one JSON record (or Parquet row) per text, bad_lines.jsonl and the manifest;
    the directory appears only when complete. Raises UserError for a bad pattern or output;
    a run that fails leaves no output (an earlier complete one stays)."""
    target = check_output(output)
    paths = input_paths(pattern)
    partial = sibling_dir(target, "partial")
    shutil.rmtree(partial, ignore_errors=True)  # a killed run's: never published, so nobody reads it
    partial.mkdir(parents=True)
    if not ray.is_initialized():
        ray.init()
    files = ray.data.read_binary_files(paths, include_paths=True, **IO_TASK)
    split = {"text_field": settings.text_field, "documents": settings.documents}
    chunks = files.map_batches(split_files, fn_kwargs=split, **IO_TASK)
    tagged = chunks.map_batches(
        worker,
        fn_constructor_args=(settings,),
        batch_size=1,  # a chunk: TEXTS_PER_CHUNK texts, or a file with documents
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus_per_worker,
        num_gpus=gpus_per_worker,
    )
    # A worker that dies is restarted and its batch retried: Ray Data's default for actor pools.
    sink = ShardSink(str(partial), output_format)
    try:
        tagged.write_datasink(sink, ray_remote_args=IO_TASK)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    (partial / BAD_LINES_FILE).write_text("".join(line + "\n" for line in sorted(sink.bad_lines)), encoding="utf-8")
    manifest = {"records": sink.records, "bad_lines": len(sink.bad_lines), "files": paths, "format": output_format}
    (partial / RAY_MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    publish(target, partial)
    return Summary(sink.records, sorted(sink.bad_lines), target)
