"""Model time of the CoNLL-2003 test sentences under different cuts into model calls: calls of a
fixed size, longest first, against bert_ner.inference.model_calls at several call costs (CALL_COST is
the default). Texts are taken in groups of --group as they arrive (infer.py's chunks of lines,
serve.py's batches), in the file's order.

    python bench/model_calls.py --model DIR [--backends torch onnx-int8] [--group 256 32]
                                [--fixed 32 8] [--call-costs 0 16 40 64 100 160] [--limit 1600]

Only the model calls are timed (each backend's model call, Tagger.call, padding included), on inputs prepared
beforehand, each sentence alone as a sentence-level model reads it (no document context):
splitting, tokenizing and decoding cost the same under every cut. Each cut runs --rounds times,
interleaved with the others, and the least time is reported, the one least disturbed by other
work on the machine. For onnx-int8, python export.py --model DIR first.
"""

import argparse
import time
from pathlib import Path

from bert_ner import Tagger
from bert_ner.data import TOKENS, read_conll
from bert_ner.inference import BATCH_SIZE, CALL_COST, model_calls, prepare
from bert_ner.serving import MAX_BATCH
from bert_ner.tagger import TEXTS_PER_CHUNK


def fixed_calls(lengths: list[int], size: int) -> list[list[int]]:
    """Calls of `size` inputs, longest first: the cut before model_calls."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[first : first + size] for first in range(0, len(order), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a directory train.py wrote (exported for the onnx backends)")
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt", help="sentences in CoNLL format")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx-int8"], help="infer.py backends")
    parser.add_argument("--group", type=int, nargs="+", default=[TEXTS_PER_CHUNK, MAX_BATCH], help="texts that arrive together")
    parser.add_argument("--fixed", type=int, nargs="+", default=[BATCH_SIZE, 8], help="fixed call sizes to compare")
    parser.add_argument("--call-costs", type=int, nargs="+", default=[0, 16, 40, CALL_COST, 100, 160])
    parser.add_argument("--limit", type=int, default=1600, help="sentences tagged")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    texts = [" ".join(words) for words in read_conll(Path(args.conll))[TOKENS]][: args.limit]
    print(f"{len(texts)} sentences in the file's order; model {args.model}; the least model time of {args.rounds} rounds\n")
    print("| backend | texts per group | cut | model calls | padding | model time |\n|---|---|---|---|---|---|")
    for backend in args.backends:
        tagger = Tagger.load(args.model, backend, device="cpu")
        tokenizer = tagger.reader.tokenizer
        for group in args.group:
            groups = []
            for first in range(0, len(texts), group):
                prepared = [prepare(tokenizer, text) for text in texts[first : first + group]]
                groups.append([ids for text in prepared for ids, _ in text.inputs])
            cuts = {f"fixed {size}": lambda lengths, size=size: fixed_calls(lengths, size) for size in args.fixed}
            for cost in args.call_costs:
                name = f"model_calls, cost {cost}" + (" (default)" if cost == CALL_COST else "")
                cuts[name] = lambda lengths, cost=cost: model_calls(lengths, BATCH_SIZE, cost)
            tagger.backend.logits(groups[0][:8])  # warm-up
            best = dict.fromkeys(cuts, float("inf"))
            for _ in range(args.rounds):
                for name, cut in cuts.items():
                    begin = time.perf_counter()
                    for inputs in groups:
                        for call in cut([len(ids["input_ids"]) for ids in inputs]):
                            tagger.backend.logits([inputs[i] for i in call])
                    best[name] = min(best[name], time.perf_counter() - begin)
            for name, cut in cuts.items():
                calls = [cut([len(ids["input_ids"]) for ids in inputs]) for inputs in groups]
                positions = sum(len(call) * len(inputs[call[0]]["input_ids"]) for inputs, c in zip(groups, calls) for call in c)
                real = sum(len(ids["input_ids"]) for inputs in groups for ids in inputs)
                count = sum(map(len, calls))
                print(f"| {backend} | {group} | {name} | {count} | {1 - real / positions:.0%} | {best[name]:.2f} s |", flush=True)


if __name__ == "__main__":
    main()
