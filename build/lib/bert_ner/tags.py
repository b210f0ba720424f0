"""The ground floor: the column names every data source is turned into, and the tag scheme.

Tags are IOB2 (B-TYPE opens an entity, I-TYPE continues it, O is outside), as seqeval and
conlleval read them; IOB1 sources are repaired to IOB2 when they are read (`to_iob2`).
Nothing here imports another module of bert_ner.
"""

TOKENS, TAGS, DOCUMENT = "tokens", "tags", "document"  # the columns of every split
NO_DOCUMENT = -1  # in the DOCUMENT column: the source says nothing of documents
DOCSTART = "-DOCSTART-"  # how CoNLL files mark a new document
OUTSIDE = "O"
TAG_SCHEME = "IOB2"


def tag_problem(tag: str) -> str | None:
    """Why `tag` is not an IOB tag (O, B-TYPE, I-TYPE), or None when it is."""
    if tag == OUTSIDE:
        return None
    prefix, sep, entity_type = tag.partition("-")
    if sep and prefix in ("B", "I") and entity_type:
        return None
    return f"tag '{tag}' is not IOB; expected O, B-TYPE or I-TYPE (e.g. B-PER)"


def to_iob2(tags: list[str]) -> list[str]:
    """Repair IOB1 (and stray I- tags) to IOB2: an I-X that starts a span becomes B-X.

    IOB2 input comes back unchanged, so this is safe to run on every source.
    """
    repaired, previous = [], OUTSIDE
    for tag in tags:
        if tag.startswith("I-") and (previous == OUTSIDE or previous[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        repaired.append(tag)
        previous = tag
    return repaired
