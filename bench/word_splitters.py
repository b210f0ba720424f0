"""Which word splitter matches CoNLL-2003's tokens: how many gold test tokens each reproduces
exactly (same character offsets), on the tokens joined by spaces, on detokenized text (one
sentence per line), and on whole detokenized articles (one per line).

    pip install sacremoses syntok spacy      # the detokenizer and the candidates bert_ner.words is measured against
    python bench/word_splitters.py [--conll ../shared/data/conll2003/test.txt]

Candidates: bert_ner.words.split_words (pySBD sentences, then NLTK's NLTKWordTokenizer), NLTK's
NLTKWordTokenizer and TreebankWordTokenizer on the whole line, syntok (its own sentences and
words), and spaCy's rule-based English tokenizer (spacy.blank("en"), no model download). A
candidate that is not installed is skipped.
"""

import argparse
import time
from pathlib import Path

from infer_f1 import lines_of, locate  # bench/infer_f1.py, beside this script

from bert_ner.data import DOCUMENT, TOKENS, read_conll


def ner_words(text: str) -> list[tuple[int, int]]:
    from bert_ner.words import split_words

    return split_words(text)


def nltk_words(text: str) -> list[tuple[int, int]]:
    from nltk.tokenize import NLTKWordTokenizer

    return list(NLTKWordTokenizer().span_tokenize(text))


def treebank(text: str) -> list[tuple[int, int]]:
    from nltk.tokenize import TreebankWordTokenizer

    return list(TreebankWordTokenizer().span_tokenize(text))


def syntok_words(text: str) -> list[tuple[int, int]]:
    import syntok.segmenter

    return [(t.offset, t.offset + len(t.value)) for paragraph in syntok.segmenter.analyze(text) for s in paragraph for t in s]


_SPACY = {}


def spacy_words(text: str) -> list[tuple[int, int]]:
    if "en" not in _SPACY:
        import spacy

        _SPACY["en"] = spacy.blank("en")
    return [(token.idx, token.idx + len(token.text)) for token in _SPACY["en"].make_doc(text)]


CANDIDATES = {
    "bert_ner.words: pySBD sentences, then NLTK NLTKWordTokenizer": ner_words,
    "NLTK NLTKWordTokenizer": nltk_words,
    "NLTK TreebankWordTokenizer": treebank,
    "syntok": syntok_words,
    "spaCy blank English": spacy_words,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt")
    args = parser.parse_args()
    rows = read_conll(Path(args.conll))
    sentences = rows[TOKENS]
    forms = [lines_of(sentences, rows[DOCUMENT], form) for form in ("spaces", "detokenized", "documents")]
    tokens = sum(map(len, sentences))
    print(f"{len(sentences)} sentences, {tokens} tokens from {args.conll}")
    print("| splitter | sentences, tokens joined by spaces | sentences, detokenized | articles, detokenized | seconds (all) |")
    print("|---|---|---|---|---|")
    for name, split in CANDIDATES.items():
        try:
            start, shares = time.perf_counter(), []
            for texts, groups in forms:
                agreed = 0
                for text, group in zip(texts, groups):
                    gold = locate([w for i in group for w in sentences[i]], text)
                    agreed += len(set(gold) & set(split(text)))
                shares.append(f"{agreed / tokens:.2%}")
            print(f"| {name} | {' | '.join(shares)} | {time.perf_counter() - start:.1f} |", flush=True)
        except ImportError as error:
            print(f"| {name} | not installed ({error.name}) | | |")


if __name__ == "__main__":
    main()
