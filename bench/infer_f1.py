"""What infer.py finds on raw text, scored as train.py scores.

CoNLL-2003 test as text, through infer.py's own code (bert_ner.Tagger: word splitting, model calls,
Viterbi), its entities mapped back to the gold words and scored with train.py's scorer
(bert_ner.scoring, seqeval strict IOB2).

    python bench/infer_f1.py --model runs/minilm-conll2003 [--conll ../shared/data/conll2003/test.txt]
                             [--forms spaces detokenized] [--limit N] [--metrics FILE]

Three forms of the same sentences:
- spaces: one sentence per line, the gold tokens joined by spaces (`Obama 's`, `( IBM )`);
- detokenized: one sentence per line, the tokens put back together by sacremoses' Moses
  detokenizer (`Obama's`, `(IBM)`), which is what real text looks like;
- documents: each article's detokenized sentences joined by spaces, one article per line;
- lines as documents: one detokenized sentence per line, each article's lines read together as
  `infer.py --documents` reads them (a context-trained model sees its neighbours).
For each: the sentences the splitter finds (CoNLL-2003 has one per gold sentence), the word
splitter's token agreement (gold tokens it reproduces exactly, by offsets), the entities whose edge
falls inside a gold word, and span F1 next to train.py's test F1 for the model (its metrics.json).
Needs requirements-dev.txt (sacremoses).
"""

import argparse
import json
import sys
import time
from pathlib import Path

from results import write_result

from bert_ner import Tagger
from bert_ner.data import DOCUMENT, TAGS, TOKENS, read_conll, to_iob2
from bert_ner.inference import BATCH_SIZE
from bert_ner.outputs import METRICS_FILE
from bert_ner.scoring import score
from bert_ner.tagger import BACKENDS
from bert_ner.words import split_sentences, split_words, tags_for

FORMS = ("spaces", "detokenized", "documents", "lines-as-documents")


def texts_of(sentences: list[list[str]], form: str) -> list[str]:
    """One text per sentence (spaces, detokenized)."""
    if form == "spaces":
        return [" ".join(words) for words in sentences]
    from sacremoses import MosesDetokenizer

    detokenizer = MosesDetokenizer(lang="en")
    return [detokenizer.detokenize(words) for words in sentences]


def lines_of(sentences: list[list[str]], documents: list[int], form: str) -> tuple[list[str], list[list[int]]]:
    """The input lines of a form, and which sentences each line holds."""
    texts = texts_of(sentences, "spaces" if form == "spaces" else "detokenized")
    if form not in ("documents", "lines-as-documents"):
        return texts, [[i] for i in range(len(sentences))]
    groups: list[list[int]] = []
    for i, document in enumerate(documents):
        if groups and documents[groups[-1][-1]] == document:
            groups[-1].append(i)
        else:
            groups.append([i])
    joiner = "\n" if form == "lines-as-documents" else " "  # infer.py --documents joins a document's lines so
    return [joiner.join(texts[i] for i in group) for group in groups], groups


def locate(words: list[str], text: str) -> list[tuple[int, int]]:
    """Character spans of `words` in `text`, which holds them in order (detokenizing only moves spaces)."""
    found, position = [], 0
    for word in words:
        start = text.index(word, position)
        found.append((start, start + len(word)))
        position = start + len(word)
    return found


def inside_a_word(entity: dict, gold_spans: list[tuple[int, int]]) -> bool:
    """Whether the entity starts or ends strictly inside a gold word."""
    return any(s < entity["start"] < e or s < entity["end"] < e for s, e in gold_spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a directory train.py wrote")
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt")
    parser.add_argument("--forms", nargs="+", choices=FORMS, default=list(FORMS))
    parser.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--backend", default="torch", choices=BACKENDS, help="as infer.py's")
    parser.add_argument(
        "--metrics", help="train.py's scores to compare with (default: MODEL/metrics.json; an evaluate-only run's)"
    )
    parser.add_argument("--machine", default=None, help="where this ran, as the docs say it (default: this machine)")
    args = parser.parse_args()

    rows = read_conll(Path(args.conll))
    sentences, gold = rows[TOKENS][: args.limit], [to_iob2(tags) for tags in rows[TAGS][: args.limit]]
    tagger = Tagger.load(args.model, args.backend, device="cpu")
    metrics_file = Path(args.metrics or Path(args.model) / METRICS_FILE)
    trained_f1 = json.loads(metrics_file.read_text())["test"]["f1"] if metrics_file.is_file() else None

    documents = rows[DOCUMENT][: args.limit]
    print(f"{len(sentences)} sentences from {args.conll}; model {args.model}")
    columns = ["text", "sentences found", "token agreement", "entities cut inside a word", "infer.py test F1"]
    print(f"| {' | '.join(columns)} | train.py test F1 | difference |")
    print("|---|---|---|---|---|---|---|")
    measured = []
    for form in args.forms:
        texts, groups = lines_of(sentences, documents, form)
        line_spans = [locate([w for i in group for w in sentences[i]], text) for group, text in zip(groups, texts)]
        agreed = sum(len(set(spans) & set(split_words(text))) for spans, text in zip(line_spans, texts))
        found_sentences = sum(len(split_sentences(text)) for text in texts)
        start = time.perf_counter()
        found = [entities for _, entities in tagger.records(texts, args.batch_size)]  # TEXTS_PER_CHUNK at a time
        seconds = time.perf_counter() - start
        predicted = []
        for group, spans, entities in zip(groups, line_spans, found):
            tags = tags_for(spans, entities)
            for i in group:  # back to the line's sentences, in order
                predicted.append(tags[: len(sentences[i])])
                tags = tags[len(sentences[i]) :]
        cut = sum(inside_a_word(e, spans) for spans, entities in zip(line_spans, found) for e in entities)
        f1 = score(gold, predicted)["f1"] * 100
        tokens = sum(len(words) for words in sentences)
        reference = f"{trained_f1 * 100:.2f}" if trained_f1 is not None else "-"
        difference = f"{f1 - trained_f1 * 100:+.2f}" if trained_f1 is not None else "-"
        print(
            f"| {form} | {found_sentences} of {len(sentences)} | {agreed / tokens:.2%} of {tokens} | {cut} | {f1:.2f} "
            f"| {reference} | {difference} |",
            flush=True,
        )
        print(f"  ({seconds:.0f} s)", file=sys.stderr)
        measured.append(
            {"form": form, "sentences_found": found_sentences, "token_agreement": round(agreed / tokens, 4),
             "entities_cut_inside_a_word": cut, "infer_f1": round(f1, 2)}
        )  # fmt: skip
    figures = {"model": Path(args.model).name, "sentences": len(sentences), "backend": args.backend,
               "train_f1": round(trained_f1 * 100, 2) if trained_f1 is not None else None, "forms": measured}  # fmt: skip
    write_result(f"infer-f1-{Path(args.model).name}", figures, args.machine)


if __name__ == "__main__":
    main()
