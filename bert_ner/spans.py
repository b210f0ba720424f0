"""Character-span annotations, as annotation tools export them, read as the words and IOB2 tags
train.py trains on.

A record is a text and its entities as character spans `[start, end)` with a label. The shapes
read (detected from the data):

- bert-ner's own and doccano's: `{"text": ..., "entities": [[start, end, "LABEL"], ...]}` (doccano
  names the list `label`), one JSON object per line;
- spaCy's and Prodigy's: `{"text": ..., "spans": [{"start": ..., "end": ..., "label": ...}, ...]}`
  (`ents` in spaCy's `Doc.to_json`), per line;
- Label Studio's JSON export: a list of tasks, each `{"id", "data": {"text"}, "annotations":
  [{"result": [{"from_name", "to_name", "value": {"start", "end", "text", "labels": [...]}}]}]}`
  (the first annotation is used; results without `labels` are no entities), and its JSON-MIN
  export: per task its data fields and one list of `{"start", "end", "text", "labels"}` per label set;
- spaCy v2's TRAIN_DATA: `[[text, {"entities": [[start, end, label], ...]}], ...]`.

Offsets count code points, or UTF-16 code units (data.span_offsets), as JavaScript tools count
them; spans that fit whole words only in the other unit are an error that says so, and so is a
span whose text as the tool quotes it (Label Studio's value.text) is not the text it covers.

The text is split into sentences and words by bert_ner.words, the splitter infer.py uses, so that
training, scoring and inference see the same words; each record is one document (its sentences
are each other's context). A span must cover whole words; NER here is flat, so spans must not
overlap. Every bad span is an error naming its record and the span, all of a file's at once;
nothing is dropped silently.
"""

import bisect
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

from bert_ner.config import CODE_POINTS, UTF16
from bert_ner.errors import UserError
from bert_ner.words import DEFAULT_LANGUAGE, TREEBANK, split_sentences, split_words, tags_for

log = logging.getLogger("bert_ner")


UNIT_NAMES = {CODE_POINTS: "code points (as Python counts)", UTF16: "UTF-16 code units (as doccano and JavaScript count)"}
# At most this many bad spans are listed; the rest are counted.
SHOWN_PROBLEMS = 20


@dataclass
class Record:
    """One annotated text: its entities as (start, end, label), where it came from (for errors),
    and per span the text the tool says it covers, where the tool says so (Label Studio's value.text)."""

    text: str
    spans: list[tuple[Any, Any, Any]]
    where: str
    quoted: list[str | None] = field(default_factory=list)


def looks_like_spans(first_line: str, tokens_key: str, tags_key: str) -> bool:
    """Whether a .json/.jsonl file holds span records rather than word and tag lists (which win
    when a record has both, as Hub-style records with a "text" field do)."""
    stripped = first_line.lstrip()
    if stripped.startswith("["):
        return True
    try:
        record = json.loads(stripped)
    except json.JSONDecodeError:
        return False
    words_and_tags_given = isinstance(record, dict) and tokens_key in record and tags_key in record
    return isinstance(record, dict) and isinstance(record.get("text"), str) and not words_and_tags_given


# Prodigy's answers that say the example is not a right annotation
REJECTED_ANSWERS = ("reject", "ignore")
NOT_ANNOTATED = "tasks have no annotation (not yet annotated, or cancelled) and were left out"
# What Label Studio's JSON-MIN export adds to a task's data fields, besides a list per label set
JSON_MIN_KEYS = {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "agreement"}
SHAPES = (
    '{"text", "entities": [[start, end, label], ...]} per line (or doccano\'s, spaCy\'s, Prodigy\'s), '
    'Label Studio\'s JSON or JSON-MIN export, or spaCy v2 TRAIN_DATA [[text, {"entities": [...]}], ...]'
)


@dataclass
class Found:
    """What a file held besides its records, for one warning and one line of what was read."""

    left_out: dict[str, int] = field(default_factory=dict)  # what was left out and why -> how many
    taken: set[str] = field(default_factory=set)  # which shape, label sets and text field were read
    task_ids: set = field(default_factory=set)  # Label Studio tasks read (JSON-MIN repeats a task per annotation)

    def leave_out(self, why: str) -> None:
        self.left_out[why] = self.left_out.get(why, 0) + 1


def records(path: Path, text: str) -> list[Record]:
    """The span records of a file's text, whatever the shape (one JSON value per line, or one JSON
    array); each item's shape is recognised on its own, and an unknown one names the keys found.
    Records that hold no annotation to learn from (Prodigy's rejected or ignored examples, Label
    Studio tasks not yet annotated or cancelled) are left out, and a warning counts them."""
    found, seen = [], Found()
    for where, item in items(path, text):
        if (record := item_record(item, where, path, seen)) is not None:
            found.append(record)
    for why, count in seen.left_out.items():
        log.warning(f"{path}: {count} {why}")
    for taken in sorted(seen.taken):
        log.info(f"{path}: {taken}")
    return found


def items(path: Path, text: str) -> list[tuple[str, Any]]:
    """(where, value) for each JSON value: a whole-file array's items, or one per line."""
    if text.lstrip().startswith("["):
        try:
            array = json.loads(text)
        except json.JSONDecodeError as error:
            if error.msg != "Extra data":  # else: one array per line, read below
                raise UserError(f"{path}:{error.lineno}: invalid JSON ({error.msg}); expected {SHAPES}") from None
        else:
            if not isinstance(array, list) or (array and isinstance(array[0], str)):  # one [text, {...}] pair
                array = [array]
            return [(f"{path}: item {index}", item) for index, item in enumerate(array)]
    found = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            found.append((f"{path}:{number}", json.loads(line)))
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{number}: invalid JSON ({error.msg}); expected one object per line") from None
    return found


def item_record(item: Any, where: str, path: Path, seen: Found) -> Record | None:
    """One JSON value as a record, by its shape; None when it holds no annotation to learn from."""
    if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], dict):
        entities = item[1].get("entities")  # spaCy v2 TRAIN_DATA
        if not isinstance(entities, list) or not all(triples := [as_triple(e) for e in entities]):
            raise UserError(f'{where}: spaCy v2 TRAIN_DATA needs [text, {{"entities": [[start, end, label], ...]}}]')
        seen.taken.add("spaCy v2 TRAIN_DATA")
        return Record(item[0], triples, where)
    if not isinstance(item, dict):
        raise UserError(f"{where}: found a {type(item).__name__}; expected {SHAPES}")
    if item.get("answer") in REJECTED_ANSWERS:
        seen.leave_out("records answered reject or ignore (Prodigy) were left out")
        return None
    if "id" in item and ("data" in item or "annotations" in item or "annotator" in item):
        where = f"{path}: task {item['id']}"  # Label Studio's own name for it
    if isinstance(item.get("data"), dict):
        return label_studio_record(item, where, seen)
    if (JSON_MIN_KEYS - {"id"}) & set(item) or any(region_lists(item)):
        return json_min_record(item, where, seen)
    return line_record(item, where)


def region_lists(item: dict) -> Iterator[tuple[str, list]]:
    """JSON-MIN's label sets: the keys whose value is a list of regions with start, end and labels."""
    for key, value in item.items():
        if isinstance(value, list) and value and all(isinstance(r, dict) and "labels" in r and "start" in r for r in value):
            yield key, value


def text_field(data: dict, named: set, quoted: list[tuple[int, int, str]], where: str) -> str:
    """Which of a task's data fields the spans are over: the only text there is, else the one the
    results name (to_name), else `text`, else the one every span's quoted text fits."""
    texts = [key for key, value in data.items() if isinstance(value, str)]
    chosen = (
        texts
        if len(texts) <= 1
        else [key for key in texts if key in named]
        or [key for key in texts if key == "text"]
        or [key for key in texts if all(fits_quote(data[key], start, end, quote) for start, end, quote in quoted)]
    )
    if not texts:
        raise UserError(f"{where}: no text among the data fields ({', '.join(map(str, data)) or 'none'}); expected one")
    if len(chosen) != 1:
        raise UserError(
            f"{where}: several text fields ({', '.join(texts)}) and the labels do not say which they are over; "
            "keep the one labelled (or name it text)"
        )
    return chosen[0]


def fits_quote(text: str, start: Any, end: Any, quote: str) -> bool:
    """Whether [start, end) of text is `quote`, in code points or in UTF-16 code units."""
    if not isinstance(start, int) or not isinstance(end, int):
        return False
    utf16 = text.encode("utf-16-le")[2 * start : 2 * end].decode("utf-16-le", errors="replace")
    return quote.strip() in (text[start:end].strip(), utf16.strip())


def label_studio_record(task: dict, where: str, seen: Found) -> Record | None:
    """A task of Label Studio's JSON export; its first annotation not cancelled gives the spans.
    Every result with `labels` is a span (several label sets on one text are read together);
    per-region TextArea, Choices and other results, and relations, carry no entity and are passed over."""
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not annotations:
        seen.leave_out(NOT_ANNOTATED + "; predictions are not read as annotations")
        return None
    spans, quoted, from_names, to_names = [], [], set(), set()
    for result in annotations[0].get("result") or []:
        value = result.get("value") if isinstance(result, dict) else None
        if not isinstance(value, dict):
            continue
        if "hypertextlabels" in value:
            raise UserError(f"{where}: HyperText regions (XPath offsets) are not read; label the text with <Labels> over <Text>")
        if "labels" not in value and result.get("type") != "labels":
            continue  # relations, and per-region TextArea, Choices, Rating... results
        labels = value.get("labels") or [None]
        spans.append((value.get("start"), value.get("end"), labels[0] if len(labels) == 1 else labels))
        quoted.append(value.get("text") if isinstance(value.get("text"), str) else None)
        from_names.add(result.get("from_name"))
        to_names.add(result.get("to_name"))
    if len(to_names - {None}) > 1:
        raise UserError(
            f"{where}: labels over several texts (to_name {', '.join(sorted(to_names - {None}))}); "
            "bert-ner reads one text per task: export each labelled text as its own task"
        )
    quotes = [(s, e, q) for (s, e, _), q in zip(spans, quoted) if q is not None]
    field_name = text_field(task["data"], to_names, quotes, where)
    names = ", ".join(f"'{name}'" for name in sorted(from_names - {None})) or "(unnamed)"
    seen.taken.add(f"Label Studio JSON export: labels from_name {names} over data.{field_name}")
    return Record(task["data"][field_name], spans, where, quoted)


def json_min_record(item: dict, where: str, seen: Found) -> Record | None:
    """A record of Label Studio's JSON-MIN export: the task's data fields, one list of regions per
    label set (named by its from_name), and the annotation's id, annotator and times. One record
    per annotation: the first of a task is read, the others are left out and counted."""
    if "annotation_id" in item and item["annotation_id"] is None:
        seen.leave_out(NOT_ANNOTATED)
        return None
    if item.get("id") is not None and item["id"] in seen.task_ids:
        seen.leave_out(
            "more annotations of tasks already read were left out (JSON-MIN: a record per annotation, the first is read)"
        )
        return None
    seen.task_ids.add(item.get("id"))
    label_sets = dict(region_lists(item))
    spans, quoted = [], []
    for regions in label_sets.values():
        for region in regions:
            labels = region.get("labels") or [None]
            spans.append((region.get("start"), region.get("end"), labels[0] if len(labels) == 1 else labels))
            quoted.append(region.get("text") if isinstance(region.get("text"), str) else None)
    data = {
        key: value
        for key, value in item.items()
        if key not in JSON_MIN_KEYS and key not in label_sets and not isinstance(value, list | dict)
    }
    quotes = [(s, e, q) for (s, e, _), q in zip(spans, quoted) if q is not None]
    field_name = text_field(data, set(), quotes, where)
    names = ", ".join(f"'{name}'" for name in sorted(label_sets)) or "(none)"
    seen.taken.add(f"Label Studio JSON-MIN export: labels from_name {names} over the field {field_name}")
    return Record(item[field_name], spans, where, quoted)


def line_record(record: dict, where: str) -> Record:
    """One record of bert-ner's and doccano's `entities` / `label` lists, or spaCy's `spans`."""
    if not isinstance(record.get("text"), str):
        raise UserError(f"{where}: found {', '.join(map(str, record)) or 'an empty object'}; expected {SHAPES}")
    for key in ("spans", "ents"):  # Prodigy's and spaCy's span lists (spaCy's Doc.to_json: ents)
        if key in record:
            spans = record[key] or []
            if not isinstance(spans, list) or not all(isinstance(span, dict) for span in spans):
                raise UserError(f"{where}: '{key}' must be a list of {{start, end, label}} objects (spaCy, Prodigy)")
            return Record(record["text"], [(s.get("start"), s.get("end"), s.get("label")) for s in spans], where)
    for key in ("entities", "label"):
        if key in record:
            entities = [as_triple(entity) for entity in record[key] or []]
            if not all(entities):
                raise UserError(
                    f"{where}: '{key}' must be a list of [start, end, label] triples "
                    "(or doccano's {start_offset, end_offset, label} objects)"
                )
            return Record(record["text"], entities, where)
    keys = ", ".join(map(str, record))
    raise UserError(f"{where}: no entities: expected 'entities' (or doccano's 'label', spaCy's 'ents' or 'spans'); found {keys}")


def as_triple(entity: Any) -> tuple | None:
    """[start, end, label], or doccano's {"start_offset", "end_offset", "label"}; None for anything else."""
    if isinstance(entity, list) and len(entity) == 3:
        return tuple(entity)
    if isinstance(entity, dict) and {"start_offset", "end_offset", "label"} <= set(entity):
        return entity["start_offset"], entity["end_offset"], entity["label"]
    return None


def span_problem(span: tuple, text_length: int) -> str | None:
    """What is wrong with one span on its own, or None."""
    start, end, label = span
    if not isinstance(label, str) or not label:
        return "its label is not a non-empty string"
    if label == "O" or label[:2] in ("B-", "I-") or any(character.isspace() for character in label):
        return f"its label {label!r} is not an entity type name (no B-/I- prefix, not O, no spaces)"
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool):
        return "start and end must be whole numbers"
    if start < 0 or end > text_length:
        return f"it lies outside the text (0 to {text_length})"
    if start >= end:
        return "it is empty (start must be below end)"
    return None


def code_point_offsets(text: str) -> dict[int, int]:
    """UTF-16 offset -> code point offset, at every boundary between characters (and the end):
    an offset inside a surrogate pair has none."""
    offsets, unit = {}, 0
    for point, character in enumerate(text):
        offsets[unit] = point
        unit += 2 if ord(character) > 0xFFFF else 1
    offsets[unit] = len(text)
    return offsets


def in_code_points(spans: list[tuple], text: str, unit: str) -> list[tuple]:
    """The spans with offsets counted in code points; an offset that is no character boundary in
    `unit` becomes -1 (outside the text, an error)."""
    if unit == CODE_POINTS or text.isascii():
        return list(spans)
    offsets = code_point_offsets(text)

    def converted(offset: Any) -> Any:
        return offsets.get(offset, -1) if isinstance(offset, int) and not isinstance(offset, bool) else offset

    return [(converted(start), converted(end), label) for start, end, label in spans]


def span_problems(record: Record, spans: list[tuple], words: list[tuple[int, int]], widen: bool) -> list[tuple[int, str, bool]]:
    """(index of the span, what is wrong, whether it is a boundary inside a word) for every bad span,
    with spans in code points: a bad span on its own (span_problem), one whose quoted text (Label
    Studio's value.text) is not what it covers, one that covers no word, and, unless `widen`, one
    whose boundary falls inside a word; one that overlaps another."""
    text, problems, taken = record.text, [], {}
    starts, ends = [s for s, _ in words], [e for _, e in words]  # both ascending: words do not overlap
    quoted = record.quoted or [None] * len(spans)
    order = sorted(range(len(spans)), key=lambda i: spans[i][:2] if all(isinstance(v, int) for v in spans[i][:2]) else (0, 0))
    for i in order:
        if problem := span_problem(spans[i], len(text)):
            problems.append((i, f": {problem}", False))
            continue
        start, end, _ = spans[i]
        covered = text[start:end]
        if quoted[i] is not None and quoted[i].strip() != covered.strip():
            problems.append((i, f" covers {covered!r}, but the file says it covers {quoted[i]!r}", False))
            continue
        inside = range(bisect.bisect_right(ends, start), bisect.bisect_left(starts, end))  # s < end and e > start
        if not inside:
            problems.append((i, f" covers no word ({covered!r})", False))
            continue
        first, last = words[inside[0]], words[inside[-1]]
        if not widen and (first[0] < start or last[1] > end):
            cut, edge = (first, "starts") if first[0] < start else (last, "ends")
            problems.append((i, f" ({covered!r}) {edge} inside the word {text[cut[0] : cut[1]]!r}", True))
            continue
        if (clash := next((taken[w] for w in inside if w in taken), None)) is not None:
            problems.append((i, f" overlaps span {list(record.spans[clash])!r}; entities here are flat, keep one", False))
            continue
        taken.update(dict.fromkeys(inside, i))
    return problems


def beyond_bmp(text: str) -> bool:
    """Whether text has a character that UTF-16 counts as 2 (an emoji, a rare CJK character)."""
    return not text.isascii() and any(ord(character) > 0xFFFF for character in text)


def words_and_tags(
    record: Record, problems: list[str], widen: bool = False, unit: str = CODE_POINTS
) -> tuple[list[list[str]], list[list[str]], int]:
    """A record's sentences as words and IOB2 tags, and how many spans were widened to whole words.
    `unit` is what the offsets count (bert_ner.config.OFFSET_UNITS).

    Every bad span (span_problems) is appended to `problems` as a line naming the record and the
    span, and the record gives no sentences. Spans that fit whole words only when counted in the
    other unit are one problem for the record, which says so: shifted offsets never become labels,
    widened or not. Sentences that one span crosses are kept together as one sentence."""
    text, sentences = record.text, split_sentences(record.text)
    words = [word for sentence in sentences for word in sentence]
    spans = in_code_points(record.spans, text, unit)
    found = span_problems(record, spans, words, widen=False)
    if found and beyond_bmp(text):
        other = UTF16 if unit == CODE_POINTS else CODE_POINTS
        if not span_problems(record, in_code_points(record.spans, text, other), words, widen=False):
            problems.append(
                f"{record.where}: the spans fit whole words only when counted in {UNIT_NAMES[other]}, not in "
                f"{UNIT_NAMES[unit]}; set data.span_offsets: {other}"
            )
            return [], [], 0
    if widen:
        found = span_problems(record, spans, words, widen=True)
    for i, problem, cut in found:
        hint = ""
        if cut:  # widening shifted offsets would make wrong labels: suggest it only where nothing shifts them
            hint = (
                "; fix the span, or set data.widen_spans: true to widen such spans to whole words"
                if not beyond_bmp(text[: spans[i][1]])
                else "; fix the span (or data.span_offsets, when the offsets count another unit: docs/data.md)"
            )
        problems.append(f"{record.where}: span {list(record.spans[i])!r}{problem}{hint}")
    if found:
        return [], [], 0
    sentence_of = [i for i, sentence in enumerate(sentences) for _ in sentence]
    starts, ends = [s for s, _ in words], [e for _, e in words]
    tags, widened, joins = ["O"] * len(words), 0, set()  # joins: sentence i continues into i + 1
    for start, end, label in spans:
        inside = range(bisect.bisect_right(ends, start), bisect.bisect_left(starts, end))
        widened += words[inside[0]][0] < start or words[inside[-1]][1] > end
        tags[inside[0]] = f"B-{label}"
        for i in inside[1:]:
            tags[i] = f"I-{label}"
        joins |= {sentence_of[i] for i in inside[:-1] if sentence_of[i] != sentence_of[i + 1]}  # one entity, one sentence
    groups, current, bounds = [], [], [0, *accumulate(map(len, sentences))]
    for i in range(len(sentences)):
        current += range(bounds[i], bounds[i + 1])
        if i not in joins:
            groups.append(current)
            current = []
    return [[text[slice(*words[i])] for i in g] for g in groups], [[tags[i] for i in g] for g in groups], widened


def tagged_records(found: list[Record], widen: bool = False, unit: str = CODE_POINTS) -> tuple[list[tuple[list, list]], int]:
    """Each record's sentences as (words, tags), and how many spans were widened. Every bad span
    of every record is reported at once (UserError, one line each, the first SHOWN_PROBLEMS of them)."""
    problems, tagged, widened = [], [], 0
    for record in found:
        words, tags, count = words_and_tags(record, problems, widen, unit)
        tagged.append((words, tags))
        widened += count
    if problems:
        more = len(problems) - SHOWN_PROBLEMS
        raise UserError("\n".join(problems[:SHOWN_PROBLEMS] + ([f"... and {more} more bad spans"] if more > 0 else [])))
    return tagged, widened


# ---------------------------------------------------------------------------------------------
# Predictions back out, for the tools (infer.py --format)

# The names in Label Studio's default NER labeling config: <Labels name="label" toName="text">
# over <Text name="text" value="$text">. Predictions must name the same controls to load.
LABEL_STUDIO_FROM, LABEL_STUDIO_TO = "label", "text"


def json_record(text: str, entities: list[dict]) -> dict:
    """What --json writes for a text (and serve.py answers): the text and its entities."""
    return {"text": text, "entities": entities}


# Characters that JSON leaves as they are but line-splitting readers (Python's str.splitlines,
# JavaScript) take for line ends: escaped, so that one record stays one line.
LINE_BREAKS_JSON_KEEPS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def one_line_json(record: dict) -> str:
    """A record as one JSON Lines line: readable (non-ASCII kept) and always one line."""
    line = json.dumps(record, ensure_ascii=False)
    for character, escape in LINE_BREAKS_JSON_KEEPS.items():
        line = line.replace(character, escape)
    return line


def span_record(text: str, entities: list[dict]) -> dict:
    """infer.py's entities as a span record train.py reads back: {"text", "entities": [[start, end, label]]}."""
    return {"text": text, "entities": [[e["start"], e["end"], e["entity_group"]] for e in entities]}


def label_studio_task(text: str, entities: list[dict], model_version: str) -> dict:
    """A Label Studio task with the entities as its pre-annotations ("predictions")."""
    return {"data": {"text": text}, "predictions": [label_studio_prediction(entities, model_version)]}


def label_studio_prediction(
    entities: list[dict], model_version: str, from_name: str = LABEL_STUDIO_FROM, to_name: str = LABEL_STUDIO_TO
) -> dict:
    """One Label Studio prediction of a text's entities, for the <Labels name=from_name
    toName=to_name> control: a score per entity, and per text the mean of them (Label Studio sorts
    tasks by it; 1.0 with none found)."""
    result = [
        {
            "from_name": from_name,
            "to_name": to_name,
            "type": "labels",
            "value": {"start": e["start"], "end": e["end"], "text": e["word"], "labels": [e["entity_group"]]},
            "score": e["score"],
        }
        for e in entities
    ]
    score = sum(e["score"] for e in entities) / len(entities) if entities else 1.0
    return {"model_version": model_version, "score": round(score, 4), "result": result}


def conll_block(text: str, entities: list[dict], word_rules: str = TREEBANK, language: str = DEFAULT_LANGUAGE) -> str:
    """One word and its IOB2 tag per line (the words of bert_ner.words under the model's
    `word_rules` and `language`, as inference split them), then a blank line: for rescoring with
    conlleval-style tools."""
    words = split_words(text, word_rules, language)
    if not words:
        return ""  # a blank text: no block, not an extra blank line
    tags = tags_for(words, entities)
    return "".join(f"{text[start:end]} {tag}\n" for (start, end), tag in zip(words, tags)) + "\n"
