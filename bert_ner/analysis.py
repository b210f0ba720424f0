"""Error analysis at the entity level: what went wrong with each test entity, and how often.

Spans are read as strict IOB2, as seqeval scores them: an entity starts with B- and continues with
I- of the same type; an I- that starts nowhere is not an entity. Each mistake is one of four kinds:

- missed: a gold entity that no prediction touches;
- spurious: a predicted entity that touches no gold entity;
- wrong type: gold and predicted entities overlap, and a type differs (boundaries may differ too);
- wrong boundary: they overlap with the same type, but the spans differ.

Overlapping gold and predicted spans form one mistake together, so a name split in two by the
model is one boundary error, not a boundary error and a spurious entity.
"""

import json
from collections import Counter
from dataclasses import asdict, dataclass

from bert_ner.words import Span, spans

MISSED, SPURIOUS, WRONG_TYPE, WRONG_BOUNDARY = "missed", "spurious", "wrong type", "wrong boundary"
KINDS = (MISSED, SPURIOUS, WRONG_TYPE, WRONG_BOUNDARY)
NONE = "-"  # the type of the side that has no entity (missed: nothing predicted; spurious: nothing gold)


def _overlap(a: Span, b: Span) -> bool:
    return a[1] < b[2] and b[1] < a[2]


@dataclass
class EntityError:
    """One mistake in one sentence: the gold and predicted spans it involves."""

    sentence: int
    kind: str
    gold_type: str
    predicted_type: str
    gold: list[Span]
    predicted: list[Span]


def classify(sentence: int, gold_tags: list[str], predicted_tags: list[str]) -> list[EntityError]:
    """The mistakes in one sentence, in word order."""
    gold, predicted = spans(gold_tags), spans(predicted_tags)
    exact = set(gold) & set(predicted)
    gold = [s for s in gold if s not in exact]
    predicted = [s for s in predicted if s not in exact]
    errors = []
    # Group spans that overlap, directly or through each other: each group is one mistake.
    unseen_gold, unseen_predicted = list(gold), list(predicted)
    while unseen_gold or unseen_predicted:
        group_gold = [unseen_gold.pop(0)] if unseen_gold else []
        group_predicted = [] if group_gold else [unseen_predicted.pop(0)]
        grew = True
        while grew:
            grew = False
            for span in list(unseen_predicted):
                if any(_overlap(span, g) for g in group_gold):
                    unseen_predicted.remove(span)
                    group_predicted.append(span)
                    grew = True
            for span in list(unseen_gold):
                if any(_overlap(span, p) for p in group_predicted):
                    unseen_gold.remove(span)
                    group_gold.append(span)
                    grew = True
        errors.append(_error(sentence, sorted(group_gold, key=lambda s: s[1]), sorted(group_predicted, key=lambda s: s[1])))
    return sorted(errors, key=lambda e: min(s[1] for s in e.gold + e.predicted))


def _error(sentence: int, gold: list[Span], predicted: list[Span]) -> EntityError:
    if not predicted:
        return EntityError(sentence, MISSED, gold[0][0], NONE, gold, predicted)
    if not gold:
        return EntityError(sentence, SPURIOUS, NONE, predicted[0][0], gold, predicted)
    if len({s[0] for s in gold + predicted}) == 1:
        return EntityError(sentence, WRONG_BOUNDARY, gold[0][0], predicted[0][0], gold, predicted)
    # Name the types that differ: an overlapping pair if there is one (a group can hold several
    # spans of each side, some of which agree), else any pair.
    pairs = [(g, p) for g in gold for p in predicted if g[0] != p[0]]
    g, p = next(((g, p) for g, p in pairs if _overlap(g, p)), pairs[0])
    return EntityError(sentence, WRONG_TYPE, g[0], p[0], gold, predicted)


def all_errors(gold: list[list[str]], predicted: list[list[str]]) -> list[EntityError]:
    return [error for i, (g, p) in enumerate(zip(gold, predicted)) for error in classify(i, g, p)]


def type_confusion(gold: list[list[str]], predicted: list[list[str]]) -> Counter:
    """(gold type, predicted type) -> count at the entity level. Each gold entity counts once: with
    its own type only when a prediction matches it exactly; with WRONG_BOUNDARY when the first
    prediction it overlaps has its type but other boundaries; with that prediction's type when the
    type differs; or MISSED. Each prediction that overlaps no gold entity counts as (SPURIOUS, its type)."""
    counts: Counter = Counter()
    for gold_tags, predicted_tags in zip(gold, predicted):
        gold_spans, predicted_spans = spans(gold_tags), spans(predicted_tags)
        for span in gold_spans:
            counts[(span[0], _matched_type(span, predicted_spans))] += 1
        for span in predicted_spans:
            if not any(_overlap(span, g) for g in gold_spans):
                counts[(SPURIOUS, span[0])] += 1
    return counts


def _matched_type(gold: Span, predicted: list[Span]) -> str:
    """The confusion-matrix column of one gold entity (type_confusion)."""
    if gold in predicted:
        return gold[0]
    match = next((p for p in predicted if _overlap(gold, p)), None)
    if match is None:
        return MISSED
    return WRONG_BOUNDARY if match[0] == gold[0] else match[0]


# ---------------------------------------------------------------------------------------------
# errors.md and errors.jsonl


def marked(words: list[str], entity_spans: list[Span]) -> str:
    """The sentence with entities in brackets and their type after: `[Anna Schmidt]PER sang`."""
    starts = {s[1]: s for s in entity_spans}
    ends = {s[2] - 1: s for s in entity_spans}
    out = []
    for i, word in enumerate(words):
        out.append(("[" if i in starts else "") + word + (f"]{ends[i][0]}" if i in ends else ""))
    return " ".join(out)


def confusion_key(error: EntityError) -> tuple[str, str, str]:
    return error.kind, error.gold_type, error.predicted_type


def errors_jsonl(sentences: list[list[str]], errors: list[EntityError]) -> str:
    records = [
        {
            **asdict(error),
            "words": sentences[error.sentence],
            "gold_text": [" ".join(sentences[error.sentence][s[1] : s[2]]) for s in error.gold],
            "predicted_text": [" ".join(sentences[error.sentence][s[1] : s[2]]) for s in error.predicted],
        }
        for error in errors
    ]
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def errors_markdown(sentences: list[list[str]], errors: list[EntityError], title: str = "Test-set errors") -> str:
    """A readable report: counts by type and kind, the confusions by frequency, then every error,
    grouped by confusion, most frequent first."""
    types = sorted({t for e in errors for t in (e.gold_type, e.predicted_type) if t != NONE})
    by_type_kind = Counter((e.gold_type if e.kind != SPURIOUS else e.predicted_type, e.kind) for e in errors)
    lines = [
        f"# {title}",
        "",
        f"{len(errors)} errors. Kinds: " + ", ".join(f"{k} {sum(e.kind == k for e in errors)}" for k in KINDS),
        "",
    ]
    lines += [
        "## Counts by entity type and kind",
        "",
        "| type | " + " | ".join(KINDS) + " | all |",
        "|---" * (len(KINDS) + 2) + "|",
    ]
    for entity_type in types:
        cells = [by_type_kind[(entity_type, kind)] for kind in KINDS]
        lines.append(f"| {entity_type} | " + " | ".join(map(str, cells)) + f" | {sum(cells)} |")
    confusions = Counter(confusion_key(e) for e in errors).most_common()
    lines += ["", "## Confusions, most frequent first", "", "| kind | gold | predicted | count |", "|---|---|---|---|"]
    lines += [f"| {kind} | {gold} | {predicted} | {count} |" for (kind, gold, predicted), count in confusions]
    lines += ["", "## Every error", "", "Gold entities in the first line, predicted ones in the second."]
    rank = {key: i for i, (key, _) in enumerate(confusions)}
    for key, group in _grouped(sorted(errors, key=lambda e: (rank[confusion_key(e)], e.sentence))):
        kind, gold, predicted = key
        lines += ["", f"### {kind}: {gold} -> {predicted} ({len(group)})", ""]
        for error in group:
            words = sentences[error.sentence]
            lines += [
                f"- sentence {error.sentence + 1}",
                f"  - gold: {marked(words, error.gold)}",
                f"  - pred: {marked(words, error.predicted)}",
            ]
    return "\n".join(lines) + "\n"


def _grouped(errors: list[EntityError]):
    group: list[EntityError] = []
    for error in errors:
        if group and confusion_key(group[0]) != confusion_key(error):
            yield confusion_key(group[0]), group
            group = []
        group.append(error)
    if group:
        yield confusion_key(group[0]), group
