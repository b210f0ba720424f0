"""A self-contained HTML page of texts with their entities highlighted: one file, inline CSS, no
scripts, fonts or images from anywhere, so it opens in any browser with no network."""

import html

from bert_ner.words import shown_score

# Marks a page as infer.py's, so that --html may replace it but never a file of the user's.
GENERATOR = '<meta name="generator" content="bert-ner infer.py">'

# CoNLL-2003's types get fixed colours; any other type takes the next colour of the palette.
TYPE_COLOURS = {"PER": "#ffd08a", "ORG": "#9fd3ff", "LOC": "#a8e6a1", "MISC": "#e3b8ff"}
PALETTE = ("#ffb3b3", "#fff29e", "#b8f0ec", "#d9c7a3", "#c9c9ff", "#f6c1dd")

STYLE = """
body { font: 17px/1.9 system-ui, -apple-system, "Segoe UI", sans-serif;
       margin: 2em auto; max-width: 52em; padding: 0 1em; color: #222; }
h1 { font-size: 1.3em; }
.legend span, mark { border-radius: 0.3em; padding: 0.1em 0.3em; }
.legend span { margin-right: 0.6em; }
p.text { border-bottom: 1px solid #eee; padding-bottom: 0.6em; white-space: pre-wrap; }
mark { position: relative; color: inherit; }
mark .type { font-size: 0.65em; font-weight: 700; margin-left: 0.35em; opacity: 0.75; }
mark:hover::after { content: attr(data-score); position: absolute; left: 0; top: -1.9em; background: #222; color: #fff;
  font-size: 0.75em; padding: 0 0.4em; border-radius: 0.3em; white-space: nowrap; }
.none { color: #888; font-size: 0.85em; }
"""


def colours(types: list[str]) -> dict[str, str]:
    """A colour per entity type: the fixed ones first, then the palette in order of appearance."""
    extra = [t for t in types if t not in TYPE_COLOURS]
    return {**TYPE_COLOURS, **{t: PALETTE[i % len(PALETTE)] for i, t in enumerate(extra)}}


def highlighted(text: str, entities: list[dict], colour: dict[str, str]) -> str:
    """The text as HTML with each entity in a <mark>; entities are non-overlapping and sorted."""
    parts, position = [], 0
    for entity in entities:
        start, end, kind = entity["start"], entity["end"], entity["entity_group"]
        if start < position:
            continue
        label = f"{kind} {shown_score(entity['score'])}"
        parts.append(html.escape(text[position:start]))
        parts.append(
            f'<mark style="background:{colour[kind]}" title="{html.escape(label)}" data-score="{html.escape(label)}">'
            f'{html.escape(text[start:end])}<span class="type">{html.escape(kind)}</span></mark>'
        )
        position = end
    parts.append(html.escape(text[position:]))
    return "".join(parts)


def page(records: list[tuple[str, list[dict]]], title: str = "Named entities") -> str:
    """The whole page for (text, entities) pairs, in input order."""
    types = list(dict.fromkeys(e["entity_group"] for _, entities in records for e in entities))
    colour = colours(types)
    legend = "".join(f'<span style="background:{colour[t]}">{html.escape(t)}</span>' for t in types)
    body = [
        f'<p class="text">{highlighted(text, entities, colour)}'
        + ("" if entities else ' <span class="none">(no entities)</span>')
        + "</p>"
        for text, entities in records
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            GENERATOR,
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f'<p class="legend">{legend or "no entities found"} <span class="none">hover an entity for its score</span></p>',
            *body,
            "</body></html>",
            "",
        ]
    )


def is_our_page(path) -> bool:
    """Whether the file at `path` is a page this module wrote (read from its first few KiB)."""
    try:
        with open(path, "rb") as file:
            return GENERATOR.encode() in file.read(4096)
    except OSError:
        return False
