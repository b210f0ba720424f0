"""Does what a text is tagged with change its entities? The CoNLL-2003 test sentences, one per text,
tagged in groups of each --group size (infer.py's chunks of 256 texts, serve.py's batches of 32
under load, 1: each text alone, as a lone request), each group through Tagger.tag, as infer.py tags.

    python bench/batch_effects.py --model DIR [--backends torch onnx-int8] [--group 256 32 1] [--limit N]

For each backend and group size: test F1 (train.py's scorer), and against the first group size,
the sentences whose entity spans differ and the largest change of a score on an entity found
alike. fp32 differs only by float rounding between call shapes; int8 quantizes each call's
activations with one scale for the whole call (ONNX Runtime's DynamicQuantizeLinear), so the
other texts of a call, and its padding, move each text's scores. For onnx-int8, python export.py
--model DIR first.
"""

import argparse
from pathlib import Path

from inference import space_joined_spans  # bench/inference.py, beside this script

from bert_ner import Tagger
from bert_ner.data import TAGS, TOKENS, read_conll, to_iob2
from bert_ner.inference import BATCH_SIZE
from bert_ner.scoring import score
from bert_ner.serving import MAX_BATCH
from bert_ner.tagger import TEXTS_PER_CHUNK
from bert_ner.words import tags_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a directory train.py wrote (exported for the onnx backends)")
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt", help="sentences in CoNLL format")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx-int8"], help="infer.py backends")
    parser.add_argument("--group", type=int, nargs="+", default=[TEXTS_PER_CHUNK, MAX_BATCH, 1], help="texts tagged together")
    parser.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    args = parser.parse_args()

    rows = read_conll(Path(args.conll))
    words, gold = rows[TOKENS][: args.limit], [to_iob2(tags) for tags in rows[TAGS][: args.limit]]
    texts = [" ".join(w) for w in words]
    print(f"{len(texts)} sentences from {args.conll}, one per text; model {args.model}\n")
    columns = ["backend", "texts per group", "test F1", f"sentences with other spans than in groups of {args.group[0]}"]
    print(f"| {' | '.join(columns)} | largest score change |")
    print("|---|---|---|---|---|")
    for backend in args.backends:
        tagger = Tagger.load(args.model, backend, device="cpu")
        reference = None
        for group in args.group:
            groups = [texts[first : first + group] for first in range(0, len(texts), group)]
            found = [entities for texts_in_group in groups for entities in tagger.tag(texts_in_group, BATCH_SIZE)]
            f1 = score(gold, [tags_for(space_joined_spans(w), entities) for w, entities in zip(words, found)])["f1"]
            spans = [[(e["entity_group"], e["start"], e["end"]) for e in entities] for entities in found]
            reference = reference or (spans, found)
            other = sum(a != b for a, b in zip(spans, reference[0]))
            alike = [(e, r) for a, b, x, y in zip(spans, reference[0], found, reference[1]) if a == b for e, r in zip(x, y)]
            change = max((abs(e["score"] - r["score"]) for e, r in alike), default=0.0)
            print(f"| {backend} | {group} | {f1 * 100:.2f} | {other} | {change:.4f} |", flush=True)


if __name__ == "__main__":
    main()
