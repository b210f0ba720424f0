"""Which word splitter matches CoNLL-2003's tokens: how many gold test tokens each reproduces
exactly (same character offsets), on the tokens joined by spaces and on detokenized text.

    pip install sacremoses syntok spacy      # the detokenizer and the candidates NLTK is measured against
    python bench/word_splitters.py [--conll ../shared/data/conll2003/test.txt]

Candidates: NLTK's NLTKWordTokenizer (what ner.words uses), NLTK's plain TreebankWordTokenizer,
syntok, and spaCy's rule-based English tokenizer (spacy.blank("en"), no model download). A
candidate that is not installed is skipped.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.infer_f1 import locate, texts_of  # noqa: E402
from ner.data import TOKENS, read_conll  # noqa: E402


def nltk_words(text: str) -> list[tuple[int, int]]:
    from ner.words import split_words

    return split_words(text)


def treebank(text: str) -> list[tuple[int, int]]:
    from nltk.tokenize import TreebankWordTokenizer

    return list(TreebankWordTokenizer().span_tokenize(text))


def syntok_words(text: str) -> list[tuple[int, int]]:
    from syntok.tokenizer import Tokenizer

    return [(token.offset, token.offset + len(token.value)) for token in Tokenizer().tokenize(text)]


_SPACY = {}


def spacy_words(text: str) -> list[tuple[int, int]]:
    if "en" not in _SPACY:
        import spacy

        _SPACY["en"] = spacy.blank("en")
    return [(token.idx, token.idx + len(token.text)) for token in _SPACY["en"].make_doc(text)]


CANDIDATES = {
    "NLTK NLTKWordTokenizer (ner.words)": nltk_words,
    "NLTK TreebankWordTokenizer": treebank,
    "syntok": syntok_words,
    "spaCy blank English": spacy_words,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt")
    args = parser.parse_args()
    sentences = read_conll(Path(args.conll))[TOKENS]
    forms = {form: texts_of(sentences, form) for form in ("spaces", "detokenized")}
    tokens = sum(map(len, sentences))
    print(f"{len(sentences)} sentences, {tokens} tokens from {args.conll}")
    print("| splitter | tokens joined by spaces | detokenized text | seconds (both) |\n|---|---|---|---|")
    for name, split in CANDIDATES.items():
        try:
            start, shares = time.perf_counter(), []
            for texts in forms.values():
                agreed = sum(len(set(locate(words, text)) & set(split(text))) for words, text in zip(sentences, texts))
                shares.append(f"{agreed / tokens:.2%}")
            print(f"| {name} | {shares[0]} | {shares[1]} | {time.perf_counter() - start:.1f} |", flush=True)
        except ImportError as error:
            print(f"| {name} | not installed ({error.name}) | | |")


if __name__ == "__main__":
    main()
