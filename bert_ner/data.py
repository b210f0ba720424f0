"""Sentences and their tags, from the Hub or from local files, through one code path.

Every source ends up as the same `DatasetDict`: a `tokens` column (words), a `tags` column (IOB2
tag names) and a `document` column (document index, NO_DOCUMENT where the source has none).
The Hub and local files differ only in how the rows are read; after that, the same functions run.
"""

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bert_ner import hub
from bert_ner.config import CONLL_SUFFIXES, DataConfig
from bert_ner.errors import UserError
from bert_ner.spans import CODE_POINTS, looks_like_spans, records, tagged_records
from bert_ner.tags import DOCSTART, DOCUMENT, NO_DOCUMENT, OUTSIDE, TAGS, TOKENS, tag_problem, to_iob2
from bert_ner.words import split_lines

log = logging.getLogger("bert_ner")

SPLITS = ("train", "validation", "test")
CAP_KEYS = {"train": "max_train_samples", "validation": "max_eval_samples", "test": "max_test_samples"}


def standard_features():
    """The columns every source is turned into."""
    from datasets import Features, Sequence, Value

    return Features({TOKENS: Sequence(Value("string")), TAGS: Sequence(Value("string")), DOCUMENT: Value("int64")})


# ---------------------------------------------------------------------------------------------
# Pure tag logic


def map_types(tags: list[str], label_map: dict[str, str | None]) -> list[str]:
    """Tags with their entity types renamed by `label_map` (data.label_map); a type mapped to None
    becomes O. Types the map does not name stay as they are (`unmapped_types` finds them)."""
    mapped = []
    for tag in tags:
        if tag == OUTSIDE or tag[2:] not in label_map:
            mapped.append(tag)
        else:
            new = label_map[tag[2:]]
            mapped.append(OUTSIDE if new is None else f"{tag[:2]}{new}")
    return to_iob2(mapped)


def unmapped_types(tag_lists: Iterable[list[str]], label_map: dict[str, str | None]) -> list[str]:
    """The entity types in the tags that `label_map` does not name."""
    return sorted({tag[2:] for tags in tag_lists for tag in tags if tag != OUTSIDE} - set(label_map))


def case_variants(tag_lists: Iterable[list[str]]) -> list[tuple[str, str]]:
    """Pairs of entity types that differ only in case (`Product`, `PRODUCT`), each spelling as
    written, sorted. Such a pair is one type mistyped far more often than two types meant."""
    spellings: dict[str, set[str]] = {}
    for tags in tag_lists:
        for tag in tags:
            if tag != OUTSIDE:
                spellings.setdefault(tag[2:].casefold(), set()).add(tag[2:])
    return [tuple(sorted(found)[:2]) for _, found in sorted(spellings.items()) if len(found) > 1]


def build_labels(tag_lists: Iterable[list[str]]) -> list[str]:
    """The label list for tags seen in training: O, then B-/I- pairs by entity type, alphabetically.

    Both halves of a pair are included even when train lacks one (say, no multi-word MISC), so
    that a longer entity in validation or test is scoreable rather than an error.
    """
    types = sorted({tag[2:] for tags in tag_lists for tag in tags if tag != OUTSIDE})
    return [OUTSIDE] + [f"{prefix}-{entity_type}" for entity_type in types for prefix in "BI"]


# ---------------------------------------------------------------------------------------------
# Readers: bytes -> rows


def decoded_lines(stream, source: str) -> Iterator[str]:
    """The lines of a byte stream (a file, stdin) as text, read lazily, without their line ending
    (LF, CRLF or a lone CR: bert_ner.words.split_lines); a BOM is dropped; bad bytes are an error
    naming source:line."""
    for _, line in numbered_lines(stream, source):
        if isinstance(line, UserError):
            raise line
        yield line


def numbered_lines(stream, source: str) -> Iterator[tuple[int, "str | UserError"]]:
    """`decoded_lines` with each line's 1-based number, and a UserError in place of a line with bad
    bytes instead of stopping there (for a reader that reports bad lines and goes on: infer.py --ray)."""
    number = 0
    for index, raw in enumerate(stream):
        try:
            text = raw.decode("utf-8-sig" if index == 0 else "utf-8")
        except UnicodeDecodeError as error:
            where = number + len(split_lines(raw[: error.start].decode("utf-8", "replace") + "x"))  # the line holding the byte
            message = f"{source}:{where}: not UTF-8 (byte 0x{raw[error.start]:02x}); re-save the file as UTF-8"
            lines = split_lines(raw.decode("utf-8", "replace"))
            for offset in range(len(lines)):
                yield number + offset + 1, UserError(message) if number + offset + 1 == where else lines[offset]
            number += len(lines)
            continue
        for line in split_lines(text):
            number += 1
            yield number, line


def _decode(path: Path) -> str:
    """A data file's text with LF line endings (whatever ended its lines: decoded_lines)."""
    with path.open("rb") as stream:
        return "\n".join(decoded_lines(stream, str(path)))


def read_conll(path: Path) -> dict[str, list]:
    """Sentences from a CoNLL column file: the first column is the word, the last is the tag.

    `-DOCSTART-` lines start a new document and are never sentences. Columns may be separated by
    spaces or tabs; every token line must have the same number of them.
    """
    rows: dict[str, list] = {TOKENS: [], TAGS: [], DOCUMENT: []}
    words: list[str] = []
    tags: list[str] = []
    document, width = NO_DOCUMENT, None

    def end_sentence() -> None:
        if words:
            rows[TOKENS].append(words[:])
            rows[TAGS].append(tags[:])
            rows[DOCUMENT].append(document)
            words.clear()
            tags.clear()

    for number, line in enumerate(_decode(path).split("\n"), 1):
        columns = line.split()
        if not columns:
            end_sentence()
        elif columns[0].startswith(DOCSTART):
            end_sentence()
            document += 1
        elif len(columns) < 2:
            raise UserError(f"{path}:{number}: one column ({line.strip()!r}); expected 'word tag' or 'word POS chunk tag'")
        elif width is not None and len(columns) != width:
            raise UserError(f"{path}:{number}: {len(columns)} columns, but earlier lines have {width}; use one layout per file")
        else:
            width = len(columns)
            if problem := tag_problem(columns[-1]):
                raise UserError(f"{path}:{number}: {problem}")
            words.append(columns[0])
            tags.append(columns[-1])
    end_sentence()
    return rows


def read_jsonl(path: Path, tokens_key: str, tags_key: str) -> dict[str, list]:
    """Sentences from JSON lines: one object per line with a word list and a tag list."""
    rows: dict[str, list] = {TOKENS: [], TAGS: [], DOCUMENT: []}
    for number, line in enumerate(_decode(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{number}: invalid JSON ({error.msg}); expected one object per line") from None
        where = f"{path}:{number}"
        if not isinstance(record, dict) or tokens_key not in record or tags_key not in record:
            found = ", ".join(map(str, record)) if isinstance(record, dict) else type(record).__name__
            raise UserError(
                f"{where}: expected an object with '{tokens_key}' and '{tags_key}' lists (set data.tokens_column / "
                f"data.tags_column), or character spans with 'text' (docs/data.md); found {found}"
            )
        words, tags = record[tokens_key], record[tags_key]
        if not isinstance(words, list) or not isinstance(tags, list) or len(words) != len(tags):
            raise UserError(f"{where}: '{tokens_key}' and '{tags_key}' must be lists of the same length")
        for tag in tags:
            if isinstance(tag, int) and not isinstance(tag, bool):
                raise UserError(
                    f"{where}: tag {tag} is a number (a class id?); data files hold tag names: write the names "
                    "(O, B-PER, ...) in their place, e.g. from a Hugging Face dataset's features['ner_tags'].feature.names"
                )
            if problem := tag_problem(str(tag)):
                raise UserError(f"{where}: {problem}")
        rows[TOKENS].append([str(w) for w in words])
        rows[TAGS].append([str(t) for t in tags])
        rows[DOCUMENT].append(NO_DOCUMENT)
    return rows


def first_line(path: Path) -> str:
    """A file's first non-blank line, read no further."""
    with path.open("rb") as stream:
        return next((line for line in decoded_lines(stream, str(path)) if line.strip()), "")


def read_spans(path: Path, widen: bool = False, unit: str = CODE_POINTS) -> dict[str, list]:
    """Sentences from a file of character-span annotations (bert_ner.spans): each record one document;
    every bad span of the file is reported at once."""

    rows: dict[str, list] = {TOKENS: [], TAGS: [], DOCUMENT: []}
    tagged, widened = tagged_records(records(path, _decode(path)), widen, unit)
    for document, (words, tags) in enumerate(tagged):
        rows[TOKENS] += words
        rows[TAGS] += tags
        rows[DOCUMENT] += [document] * len(words)
    if widened:
        log.warning(f"{path}: {widened} spans started or ended inside a word and were widened to whole words (data.widen_spans)")
    return rows


def read_file(path: str, cfg: DataConfig):
    """One local file as a Dataset with the standard columns."""
    from datasets import Dataset

    file = Path(path)
    if file.suffix.lower() in CONLL_SUFFIXES:
        rows, expected = read_conll(file), "one 'word tag' line per word, blank lines between sentences"
    elif looks_like_spans(first_line(file), cfg.tokens_column, cfg.tags_column):
        rows = read_spans(file, cfg.widen_spans, cfg.span_offsets)
        expected = "texts with their entity spans, or annotated Label Studio tasks (docs/data.md)"
    else:
        rows = read_jsonl(file, cfg.tokens_column, cfg.tags_column)
        expected = f"one JSON object per line with '{cfg.tokens_column}' and '{cfg.tags_column}' lists"
    if not rows[TOKENS]:
        raise UserError(f"{file}: no sentences found; expected {expected}")
    return Dataset.from_dict(rows, features=standard_features())


def read_hub(cfg: DataConfig):
    """A Hub dataset as a DatasetDict with the standard columns (tag ids become names)."""
    import datasets

    key = "data.dataset"
    if not hub.looks_local(cfg.dataset):
        hub.require(cfg.dataset, key)
    try:
        raw = datasets.load_dataset(cfg.dataset, revision=cfg.revision)
    except Exception as error:  # datasets raises many types; each becomes the same one-line message
        raise hub.load_error(cfg.dataset, key, error) from None
    splits, label_names = {}, None
    for split, dataset in raw.items():
        split = "validation" if split in ("valid", "dev") else split
        wanted = [cfg.tokens_column, cfg.tags_column] + ([cfg.document_column] if cfg.document_column else [])
        missing = [c for c in wanted if c not in dataset.column_names]
        if missing and hub.looks_local(cfg.dataset) and dataset.column_names == ["text"]:
            raise UserError(  # datasets reads a directory of .txt files as lines of plain text
                f"data.dataset: '{cfg.dataset}' holds plain text files, which datasets reads as lines, not words and "
                f"tags; for CoNLL files (a 'word tag' line per word), {hub.LOCAL_DATA}"
            )
        if missing:
            raise UserError(
                f"data.dataset '{cfg.dataset}' split {split}: no column {missing[0]!r} (has {dataset.column_names}); "
                "set data.tokens_column / data.tags_column / data.document_column"
            )
        feature = dataset.features[cfg.tags_column]
        names = getattr(getattr(feature, "feature", None), "names", None)
        label_names = label_names or names
        renames = {cfg.tokens_column: TOKENS, cfg.tags_column: TAGS}
        if cfg.document_column:
            renames[cfg.document_column] = DOCUMENT
        dataset = dataset.select_columns(wanted).rename_columns(renames)
        # Explicit features: otherwise map would encode the names back into the ClassLabel ids.
        # One batch per split, so document ids are numbered consistently across it.
        dataset = dataset.map(_tag_names, batched=True, batch_size=None, fn_kwargs={"names": names}, features=standard_features())
        splits[split] = dataset
    return datasets.DatasetDict(splits), label_names


def _tag_names(batch: dict[str, list], names: list[str] | None) -> dict[str, list]:
    tags = batch[TAGS]
    if names is not None:
        tags = [[names[t] for t in sentence] for sentence in tags]
    documents = document_numbers(batch[DOCUMENT]) if DOCUMENT in batch else [NO_DOCUMENT] * len(tags)
    return {TAGS: [[str(t) for t in sentence] for sentence in tags], DOCUMENT: documents}


def document_numbers(ids: list) -> list[int]:
    """Document ids of any type (strings, ints, None for none) as 0, 1, 2... in order of appearance."""
    numbers: dict = {}
    return [NO_DOCUMENT if i is None else numbers.setdefault(i, len(numbers)) for i in ids]


# ---------------------------------------------------------------------------------------------
# One path from here on


def _rename_types(batch: dict[str, list], label_map: dict[str, str | None]) -> dict[str, list]:
    return {TAGS: [map_types(tags, label_map) for tags in batch[TAGS]]}


def _repair(batch: dict[str, list]) -> dict[str, list]:
    return {TAGS: [to_iob2(tags) for tags in batch[TAGS]]}


def load_splits(cfg: DataConfig) -> tuple[Any, list[str]]:
    """Load train/validation/test from the Hub or local files; return them and the label list."""
    import datasets

    if cfg.dataset:
        splits, names = read_hub(cfg)
        source = {split: f"data.dataset '{cfg.dataset}' split {split}" for split in splits}
    else:
        splits = datasets.DatasetDict({s: read_file(p, cfg) for s, p in cfg.local_files().items()})
        names, source = None, {s: f"data.{s}_file '{p}'" for s, p in cfg.local_files().items()}
    splits = datasets.DatasetDict({s: splits[s] for s in SPLITS if s in splits})

    for split, dataset in splits.items():
        cap = getattr(cfg, CAP_KEYS[split])
        if cap is not None and cap < len(dataset):
            splits[split] = dataset.select(range(cap))
    splits = splits.map(_repair, batched=True)

    check_tags(splits, source)
    if cfg.label_map:
        for split, dataset in splits.items():
            if missing := unmapped_types(dataset[TAGS], cfg.label_map):
                raise UserError(
                    f"data.label_map: {source[split]} has types the map does not name: {', '.join(missing)}; "
                    "map each to a type (or to null to drop it)"
                )
        splits = splits.map(_rename_types, batched=True, fn_kwargs={"label_map": cfg.label_map})
    check_case(splits, source)
    # Evaluate-only runs may have no train split; their labels come from what they score.
    labelled = [splits["train"]] if "train" in splits else list(splits.values())
    labels = names or build_labels(tags for dataset in labelled for tags in dataset[TAGS])
    check_tags_known(splits, labels, source)
    return splits, labels


def check_tags(splits, source: dict[str, str]) -> None:
    """Every tag is IOB. Local readers already said file:line; this catches Hub columns too."""
    for split, dataset in splits.items():
        for tag in sorted({tag for tags in dataset[TAGS] for tag in tags}):
            if problem := tag_problem(tag):
                raise UserError(f"{source[split]}: {problem}; set data.tags_column to the tag column")


def check_case(splits, source: dict[str, str]) -> None:
    """Refuse entity types that differ only in case, across all splits: silently two types, they
    would split one type's examples and scores in two."""
    if variants := case_variants(tags for dataset in splits.values() for tags in dataset[TAGS]):
        one, other = variants[0]
        holding = [
            source[split]
            for split, dataset in splits.items()
            if {one, other} & {tag[2:] for tags in dataset[TAGS] for tag in tags}
        ]
        raise UserError(
            f"{' and '.join(holding)}: the entity types {one!r} and {other!r} differ only in case; write one spelling "
            "throughout (or let data.label_map map both to one type)"
        )


def check_tags_known(splits, labels: list[str], source: dict[str, str]) -> None:
    """Every tag must be in the label list; one that train never had is an error, not a silent O."""
    known = set(labels)
    for split, dataset in splits.items():
        unknown = sorted({tag for tags in dataset[TAGS] for tag in tags} - known)
        if unknown:
            raise UserError(
                f"{source[split]}: tag {unknown[0]!r} does not occur in the training data (labels: {', '.join(labels)}); "
                "add training examples of it or fix the tag"
            )
