"""Checks the one-sentence shortcut of bert_ner/words.py against pySBD on real sentences, and times it.

For each file (CoNLL-2003 and WNUT-17 by default), every sentence's words joined by spaces, as
infer.py reads one sentence per line: the share that takes the shortcut (no pySBD), splitting time
with and without the shortcut, and the sentences whose words differ, which must be none.

    python bench/one_sentence.py [--conll FILE ...]
"""

import argparse
import sys
import time
from pathlib import Path

import bert_ner.words
from bert_ner.data import TOKENS, read_conll
from bert_ner.words import split_sentences

SHARED = "../shared/data"
FILES = [f"{SHARED}/conll2003/{split}.txt" for split in ("train", "valid", "test")] + [
    f"{SHARED}/wnut17/{split}.txt" for split in ("train", "dev", "test")
]


def timed_split(texts: list[str]) -> tuple[list, float]:
    start = time.perf_counter()
    words = [split_sentences(text) for text in texts]
    return words, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conll", nargs="+", default=FILES, help="files of words and tags (default: CoNLL-2003 and WNUT-17)")
    args = parser.parse_args()
    missing = [name for name in args.conll if not Path(name).is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")

    split_sentences("Warm up. Both splitters.")
    shortcut = bert_ner.words._one_sentence
    print("| file | sentences | shortcut taken | seconds with | seconds without | different words |")
    print("|---|---|---|---|---|---|")
    differences = 0
    for name in args.conll:
        texts = [" ".join(words) for words in read_conll(Path(name))[TOKENS]]
        taken = sum(map(shortcut, texts))
        fast, with_shortcut = timed_split(texts)
        bert_ner.words._one_sentence = lambda text: False
        try:
            slow, without = timed_split(texts)
        finally:
            bert_ner.words._one_sentence = shortcut
        different = [text for text, a, b in zip(texts, fast, slow) if a != b]
        differences += len(different)
        print(f"| {name} | {len(texts)} | {taken / len(texts):.0%} | {with_shortcut:.2f} | {without:.2f} | {len(different)} |")
        for text in different[:3]:
            print(f"  differs: {text!r}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
