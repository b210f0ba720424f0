"""Character-span annotations, as annotation tools export them, read as the words and IOB2 tags
train.py trains on.

A record is a text and its entities as character spans `[start, end)` with a label. The shapes
read (detected from the data):

- bert-ner's own and doccano's: `{"text": ..., "entities": [[start, end, "LABEL"], ...]}` (doccano
  names the list `label`), one JSON object per line;
- spaCy's and Prodigy's: `{"text": ..., "spans": [{"start": ..., "end": ..., "label": ...}, ...]}`
  (`ents` in spaCy's `Doc.to_json`), per line;
- Label Studio's JSON export: a list of tasks, each `{"id", "data": {"text"}, "annotations":
  [{"result": [{"value": {"start", "end", "labels": [...]}}]}]}` (the first annotation is used).

The text is split into sentences and words by bert_ner.words, the splitter infer.py uses, so that
training, scoring and inference see the same words; each record is one document (its sentences
are each other's context). A span must cover whole words; NER here is flat, so spans must not
overlap. Every bad span is an error naming its record and the span; nothing is dropped silently.
"""

import bisect
import json
import logging
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

from bert_ner.errors import UserError
from bert_ner.words import split_sentences, split_words, tags_for

log = logging.getLogger("bert_ner")


@dataclass
class Record:
    """One annotated text: its entities as (start, end, label), and where it came from (for errors)."""

    text: str
    spans: list[tuple[Any, Any, Any]]
    where: str


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


def records(path: Path, text: str) -> list[Record]:
    """The span records of a file's text, whatever the shape; an unknown shape names the keys found.
    Records that hold no annotation to learn from (Prodigy's rejected or ignored examples, Label
    Studio tasks not yet annotated or cancelled) are left out, and a warning counts them."""
    if text.lstrip().startswith("["):
        return label_studio_records(path, text)
    found, rejected = [], 0
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{where}: invalid JSON ({error.msg}); expected one object per line") from None
        if isinstance(record, dict) and record.get("answer") in REJECTED_ANSWERS:
            rejected += 1
            continue
        found.append(line_record(record, where))
    if rejected:
        log.warning(f"{path}: {rejected} records answered reject or ignore (Prodigy) were left out")
    return found


def line_record(record: Any, where: str) -> Record:
    """One JSON line: bert-ner's and doccano's `entities` / `label` lists, or spaCy's `spans`."""
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        keys = ", ".join(map(str, record)) if isinstance(record, dict) else type(record).__name__
        raise UserError(f'{where}: expected {{"text": ..., "entities": [[start, end, label], ...]}}; found {keys}')
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


def label_studio_records(path: Path, text: str) -> list[Record]:
    """Label Studio's JSON export: a list of tasks; a task's first annotation gives its spans."""
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{error.lineno}: invalid JSON ({error.msg}); expected Label Studio's JSON export") from None
    found, unannotated = [], 0
    for index, task in enumerate(tasks):
        task_id = task.get("id", index) if isinstance(task, dict) else index
        where = f"{path}: task {task_id}"
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            keys = ", ".join(map(str, task)) if isinstance(task, dict) else type(task).__name__
            raise UserError(f"{where}: expected a Label Studio task with data.text and annotations; found {keys}")
        annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        if not annotations:
            unannotated += 1
            continue
        results = annotations[0].get("result", [])
        spans = []
        for result in results:
            value = result.get("value", {}) if isinstance(result, dict) else {}
            if "start" not in value:
                continue  # relations and other non-span results
            labels = value.get("labels") or [None]
            spans.append((value.get("start"), value.get("end"), labels[0] if len(labels) == 1 else labels))
        found.append(Record(data["text"], spans, where))
    if unannotated:
        log.warning(
            f"{path}: {unannotated} tasks have no annotation (not yet annotated, or cancelled) and were left out; "
            "predictions are not read as annotations"
        )
    return found


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


def words_and_tags(record: Record, widen: bool = False) -> tuple[list[list[str]], list[list[str]], int]:
    """A record's sentences as words and IOB2 tags, and how many spans were widened to whole words.

    Errors (UserError, naming the record and the span): a bad span (span_problem), overlapping
    spans, a span that covers no word, and, unless `widen`, a span whose boundary falls inside a
    word. Sentences that one span crosses are kept together as one sentence."""
    text, sentences = record.text, split_sentences(record.text)
    words = [word for sentence in sentences for word in sentence]
    sentence_of = [i for i, sentence in enumerate(sentences) for _ in sentence]
    starts, ends = [s for s, _ in words], [e for _, e in words]  # both ascending: words do not overlap
    tags, widened, taken = ["O"] * len(words), 0, {}
    joins = set()  # sentence i continues into sentence i + 1: a span crosses between them
    for span in sorted(record.spans, key=lambda s: (s[0], s[1]) if all(isinstance(v, int) for v in s[:2]) else (0, 0)):
        shown = f"span {list(span)!r}"
        if problem := span_problem(span, len(text)):
            raise UserError(f"{record.where}: {shown}: {problem}")
        start, end, label = span
        inside = range(bisect.bisect_right(ends, start), bisect.bisect_left(starts, end))  # s < end and e > start
        if not inside:
            raise UserError(f"{record.where}: {shown} covers no word ({text[start:end]!r})")
        first, last = words[inside[0]], words[inside[-1]]
        if first[0] < start or last[1] > end:
            cut = first if first[0] < start else last
            edge = "starts" if first[0] < start else "ends"
            if not widen:
                raise UserError(
                    f"{record.where}: {shown} ({text[start:end]!r}) {edge} inside the word {text[cut[0] : cut[1]]!r}; "
                    "fix the span, or set data.widen_spans: true to widen such spans to whole words"
                )
            widened += 1
        for i in inside:
            if i in taken:
                other = taken[i]
                raise UserError(f"{record.where}: {shown} overlaps span {list(other)!r}; entities here are flat, keep one")
            taken[i] = span
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
    """A Label Studio task with the entities as its pre-annotations ("predictions"): a score per
    entity, and per text the mean of them (Label Studio sorts tasks by it; 1.0 with none found)."""
    result = [
        {
            "from_name": LABEL_STUDIO_FROM,
            "to_name": LABEL_STUDIO_TO,
            "type": "labels",
            "value": {"start": e["start"], "end": e["end"], "text": e["word"], "labels": [e["entity_group"]]},
            "score": e["score"],
        }
        for e in entities
    ]
    score = sum(e["score"] for e in entities) / len(entities) if entities else 1.0
    return {"data": {"text": text}, "predictions": [{"model_version": model_version, "score": round(score, 4), "result": result}]}


def conll_block(text: str, entities: list[dict]) -> str:
    """One word and its IOB2 tag per line (the words of bert_ner.words, as train.py reads them), then a
    blank line: for rescoring with conlleval-style tools."""
    words = split_words(text)
    if not words:
        return ""  # a blank text: no block, not an extra blank line
    tags = tags_for(words, entities)
    return "".join(f"{text[start:end]} {tag}\n" for (start, end), tag in zip(words, tags)) + "\n"
