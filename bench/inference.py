"""Sentences per second: the pipeline called once per sentence (the usual example) against
infer.py's batched path, on the CoNLL-2003 test sentences.

    python bench/inference.py --model DIR [--conll ../shared/data/conll2003/test.txt] [--limit N] [--batch-size 32]

Both runs use the same model, pipeline and aggregation; only the calling differs. The entities
of both are compared, so the speed-up is not bought with different answers.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ner.data import TOKENS, read_conll  # noqa: E402
from ner.inference import clean_entities, make_pipeline, predict  # noqa: E402
from ner.modeling import load_trained  # noqa: E402


def per_sentence(ner, texts: list[str]) -> tuple[list, list[float]]:
    results, latencies = [], []
    for text in texts:
        start = time.perf_counter()
        results.append(clean_entities(text, ner(text)))
        latencies.append(time.perf_counter() - start)
    return results, latencies


def batched(ner, texts: list[str], batch_size: int) -> tuple[list, list[float]]:
    return predict(ner, texts, batch_size), []


def report(name: str, seconds: float, count: int, latencies: list[float]) -> str:
    row = f"| {name} | {count / seconds:.1f} | {seconds:.1f} s"
    if latencies:
        cuts = statistics.quantiles(latencies, n=100)
        row += f" | {cuts[49] * 1000:.1f} ms | {cuts[94] * 1000:.1f} ms |"
    else:
        row += " | | |"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a directory train.py wrote")
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt")
    parser.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import torch

    texts = [" ".join(words) for words in read_conll(Path(args.conll))[TOKENS]][: args.limit]
    model, tokenizer = load_trained(args.model, key="--model")
    ner = make_pipeline(model, tokenizer, device="cpu")
    ner(texts[0])  # warm-up: first call pays for lazy initialisation

    print(f"{len(texts)} sentences from {args.conll}; model {args.model}; torch threads {torch.get_num_threads()}")
    print("| run | sentences/s | wall | p50 latency | p95 latency |\n|---|---|---|---|---|")
    runs = {
        "pipeline, one call per sentence": lambda: per_sentence(ner, texts),
        f"infer.py batched (batch {args.batch_size})": lambda: batched(ner, texts, args.batch_size),
    }
    answers = []
    for name, run in runs.items():
        start = time.perf_counter()
        results, latencies = run()
        print(report(name, time.perf_counter() - start, len(texts), latencies), flush=True)
        answers.append(results)
    spans = [[[(e["entity_group"], e["start"], e["end"]) for e in text] for text in answer] for answer in answers]
    differ = sum(any(a[i] != spans[0][i] for a in spans) for i in range(len(texts)))
    print(f"texts whose entity spans differ between runs: {differ} of {len(texts)} (scores may differ in the last digits: padding)")


if __name__ == "__main__":
    main()
