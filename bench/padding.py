"""How much of a batched model call is padding, on the CoNLL-2003 test sentences: texts taken in
groups of --group as they arrive (infer.py's chunks of lines, serve.py's batches), each group cut,
longest first, into model calls of --batch-size texts, each call padded to its longest input; and
cut as infer.py and serve.py cut them (bert_ner.inference.model_calls, at most BATCH_SIZE per call).
Texts arrive in the file's order (neighbouring sentences of an article are often of similar
length) or shuffled (seed 0), as requests from many unrelated clients would.

    python bench/padding.py --model DIR [--group 256 32 16] [--batch-size 32 16 8 4]

Counts the sub-tokens of each sentence alone with the model's tokenizer.json, special tokens
included (bert_ner.inference.prepare without document context, as a sentence-level model reads them).
Padding is the share of a call's positions that hold no text; the model computes them all the same.
"""

import argparse
import random
from pathlib import Path

from inference import input_lengths  # bench/inference.py and bench/model_calls.py, beside this script
from model_calls import fixed_calls

from bert_ner.data import TOKENS, read_conll
from bert_ner.inference import BATCH_SIZE, model_calls
from bert_ner.outputs import TOKENIZER_FILE
from bert_ner.serving import MAX_BATCH
from bert_ner.tagger import TEXTS_PER_CHUNK


def padded_positions(lengths: list[int], group: int, batch_size: int | None) -> int:
    """Positions computed when `lengths` (sub-tokens per input, in arrival order) are taken `group`
    at a time and each group runs longest first in calls of `batch_size` (None: model_calls' cut)."""
    total = 0
    for first in range(0, len(lengths), group):
        part = lengths[first : first + group]
        calls = model_calls(part, BATCH_SIZE) if batch_size is None else fixed_calls(part, batch_size)
        total += sum(part[call[0]] * len(call) for call in calls)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a directory train.py wrote (its tokenizer.json is used)")
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt", help="sentences in CoNLL format")
    parser.add_argument(
        "--group", type=int, nargs="+", default=[TEXTS_PER_CHUNK, MAX_BATCH, 16], help="texts that arrive together"
    )
    parser.add_argument("--batch-size", type=int, nargs="+", default=[BATCH_SIZE, 16, 8, 4], help="texts per model call")
    args = parser.parse_args()
    if min(args.group + args.batch_size) < 1:
        parser.error("--group and --batch-size take sizes of at least 1")
    if not (Path(args.model) / TOKENIZER_FILE).is_file():
        parser.error(f"--model {args.model}: no {TOKENIZER_FILE} there; give a directory train.py wrote")
    if not Path(args.conll).is_file():
        parser.error(f"--conll {args.conll}: no such file")

    texts = [" ".join(words) for words in read_conll(Path(args.conll))[TOKENS]]
    lengths = input_lengths(args.model, texts)
    shuffled = random.Random(0).sample(lengths, len(lengths))
    print(f"{len(lengths)} inputs, {sum(lengths)} sub-tokens\n")
    print("| texts per group | texts per model call | padding, file order | padding, shuffled |\n|---|---|---|---|")
    for group in args.group:
        for batch_size in [*sorted({min(size, group) for size in args.batch_size}, reverse=True), None]:
            padding = [1 - sum(lengths) / padded_positions(order, group, batch_size) for order in (lengths, shuffled)]
            print(f"| {group} | {batch_size or 'model_calls'} | {padding[0]:.1%} | {padding[1]:.1%} |")


if __name__ == "__main__":
    main()
