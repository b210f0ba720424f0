"""Inference speed and accuracy on the CoNLL-2003 test sentences, side by side in one run:
the pipeline called once per sentence (the usual example), infer.py's batched path with
PyTorch, and the ONNX fp32 and int8 exports (python export.py --model DIR first).

    python bench/inference.py --model DIR [--conll ../shared/data/conll2003/test.txt]
                              [--limit N] [--batch-size 32] [--runs per-sentence torch onnx onnx-int8]

Batched runs go through infer.py's own loop: chunks of TEXTS_PER_CHUNK texts, longest first.
Reports sentences/s, p50/p95 latency (per sentence for single calls, per chunk otherwise),
test F1 of each run (seqeval, strict), and how many sentences get exactly the entity spans of
the batched PyTorch run. Texts are the CoNLL words joined by spaces.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infer import TEXTS_PER_CHUNK, load_tagger  # noqa: E402
from ner.data import TAGS, TOKENS, read_conll, to_iob2  # noqa: E402
from ner.inference import clean_entities, predict  # noqa: E402
from ner.scoring import score  # noqa: E402
from ner.words import tags_for  # noqa: E402

RUNS = {  # name -> (backend, batched); batched PyTorch first: the others are compared with it
    "torch": ("torch", True),
    "per-sentence": ("torch", False),
    "onnx": ("onnx", True),
    "onnx-int8": ("onnx-int8", True),
}
LABELS = {
    "per-sentence": "pipeline, one call per sentence (PyTorch)",
    "torch": "infer.py batched, PyTorch",
    "onnx": "infer.py batched, ONNX fp32",
    "onnx-int8": "infer.py batched, ONNX int8",
}


def space_joined_spans(words: list[str]) -> list[tuple[int, int]]:
    """Where each word lies in " ".join(words)."""
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
    return [(start, start + len(word)) for start, word in zip(starts, words)]


def timed(ner, texts: list[str], batch_size: int, batched: bool) -> tuple[list, list[float]]:
    """Entities per text and the latency of every call."""
    results, latencies = [], []
    step = TEXTS_PER_CHUNK if batched else 1
    for first in range(0, len(texts), step):
        group = texts[first : first + step]
        start = time.perf_counter()
        results += predict(ner, group, batch_size) if batched else [clean_entities(ner(group[0]))]
        latencies.append(time.perf_counter() - start)
    return results, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a directory train.py wrote (exported for the ONNX runs)")
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt")
    parser.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    rows = read_conll(Path(args.conll))
    words, gold = rows[TOKENS][: args.limit], [to_iob2(tags) for tags in rows[TAGS][: args.limit]]
    texts = [" ".join(w) for w in words]
    print(f"{len(texts)} sentences from {args.conll}; model {args.model}; torch threads {torch.get_num_threads()}")
    print("| run | sentences/s | p50 latency | p95 latency | test F1 | spans as batched PyTorch |")
    print("|---|---|---|---|---|---|")
    reference = None
    for name in sorted(args.runs, key=list(RUNS).index):
        backend, batched = RUNS[name]
        ner = load_tagger(args.model, backend)
        ner([texts[0]])  # warm-up: the first call pays for lazy initialisation
        start = time.perf_counter()
        results, latencies = timed(ner, texts, args.batch_size, batched)
        seconds = time.perf_counter() - start
        spans = [[(e["entity_group"], e["start"], e["end"]) for e in r] for r in results]
        reference = spans if name == "torch" else reference
        same = f"{sum(a == b for a, b in zip(spans, reference))}/{len(texts)}" if reference else "n/a"
        f1 = score(gold, [tags_for(space_joined_spans(w), r) for w, r in zip(words, results)])["f1"]
        cuts = statistics.quantiles(latencies, n=100)
        print(
            f"| {LABELS[name]} | {len(texts) / seconds:.1f} | {cuts[49] * 1000:.1f} ms | {cuts[94] * 1000:.1f} ms "
            f"| {f1 * 100:.2f} | {same} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
