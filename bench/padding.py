"""How much of a batched model call is padding, on the CoNLL-2003 test sentences: texts taken in
groups of --group in arrival order (serve.py's batches; infer.py's chunks are 256), each group cut,
longest first, into model calls of --batch-size texts, each call padded to its longest input.

    python bench/padding.py --model DIR [--group 256 32 16] [--batch-size 32 16 8 4]

Counts sub-tokens as the model sees them (ner.inference.prepare, special tokens included). Padding
is the share of a call's positions that hold no text; the model computes them all the same.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ner.data import TOKENS, read_conll  # noqa: E402
from ner.inference import prepare  # noqa: E402
from ner.onnx_backend import FastTokenizer  # noqa: E402
from ner.outputs import TOKENIZER_FILE  # noqa: E402


def padded_positions(lengths: list[int], group: int, batch_size: int) -> int:
    """Positions computed when `lengths` (sub-tokens per input, in arrival order) are taken `group`
    at a time and each group runs longest first in calls of `batch_size`."""
    total = 0
    for first in range(0, len(lengths), group):
        ordered = sorted(lengths[first : first + group], reverse=True)
        for start in range(0, len(ordered), batch_size):
            call = ordered[start : start + batch_size]
            total += call[0] * len(call)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a directory train.py wrote (its tokenizer.json is used)")
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt")
    parser.add_argument("--group", type=int, nargs="+", default=[256, 32, 16])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[32, 16, 8, 4])
    args = parser.parse_args()

    tokenizer = FastTokenizer(Path(args.model) / TOKENIZER_FILE)
    texts = [" ".join(words) for words in read_conll(Path(args.conll))[TOKENS]]
    lengths = [len(ids["input_ids"]) for text in texts for ids, _ in prepare(tokenizer, text).inputs]
    print(f"{len(lengths)} inputs, {sum(lengths)} sub-tokens\n")
    print("| texts per group | texts per model call | padding |\n|---|---|---|")
    for group in args.group:
        for batch_size in (size for size in args.batch_size if size <= group):
            print(f"| {group} | {batch_size} | {1 - sum(lengths) / padded_positions(lengths, group, batch_size):.1%} |")


if __name__ == "__main__":
    main()
