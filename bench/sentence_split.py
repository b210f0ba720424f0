"""How sentence splitting's time grows with a text's length: bert_ner.words.sentence_starts on
texts of 10,000 characters to 1 MB, made of the demo sample's sentences, against pySBD reading
the text whole (whose time grows with the square of the length) up to --whole-up-to characters.

    python bench/sentence_split.py [--whole-up-to 80000]

Writes bench/results/sentence-split.json: seconds per text and microseconds per character by length.
"""

import argparse
import time
from pathlib import Path

from results import write_result

from bert_ner.data import TOKENS, read_conll
from bert_ner.words import sentence_starts

REPO = Path(__file__).resolve().parent.parent
LENGTHS = (10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 1_000_000)


def sample_text(length: int) -> str:
    """`length` characters of the demo sample's sentences, one after another on one line."""
    sentences = [" ".join(words) for words in read_conll(REPO / "data/demo/train.txt")[TOKENS]]
    text, i = [], 0
    while sum(map(len, text)) + len(text) < length:
        text.append(sentences[i % len(sentences)])
        i += 1
    return " ".join(text)[:length]


def seconds(split, text: str) -> float:
    start = time.perf_counter()
    split(text)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--whole-up-to", type=int, default=80_000, help="longest text pySBD reads whole (default: 80000)")
    parser.add_argument("--machine", default=None, help="where this ran, as the docs say it (default: this machine)")
    args = parser.parse_args()
    import pysbd

    segmenter, rows = pysbd.Segmenter(language="en", clean=False), []
    for length in LENGTHS:
        text = sample_text(length)
        row = {"characters": length, "pieces_s": round(seconds(sentence_starts, text), 3)}
        if length <= args.whole_up_to:
            row["whole_s"] = round(seconds(lambda t: segmenter.processor(t).process(), text), 3)
        row["pieces_us_per_character"] = round(row["pieces_s"] / length * 1e6, 2)
        rows.append(row)
        print(row, flush=True)
    write_result("sentence-split", {"lengths": rows}, args.machine)


if __name__ == "__main__":
    main()
