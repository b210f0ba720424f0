"""Inference speed and accuracy on the CoNLL-2003 test sentences, side by side in one run:
the pipeline called once per sentence (the usual example), infer.py's batched path with
PyTorch, and the ONNX fp32 and int8 exports (python export.py --model DIR first).

    python bench/inference.py --model DIR [--conll ../shared/data/conll2003/test.txt]
                              [--limit N] [--batch-size 32] [--runs per-sentence torch onnx onnx-int8]

Batched runs go through infer.py's own loop: chunks of TEXTS_PER_CHUNK texts (bert_ner.tagger), each
cut into model calls by length (bert_ner.inference.model_calls).
Reports sentences/s, p50/p95 latency (per sentence for single calls, per chunk otherwise),
test F1 of each run (seqeval, strict), and how many sentences get exactly the entity spans of
the batched PyTorch run. Texts are the CoNLL words joined by spaces.

The limit: the machine's own peak rate for a matrix product at the model's feed-forward shape
(fp32, and int8 as the int8 export computes), measured with the same threads, and each run's
achieved rate (the encoder's useful operations, padding excluded, per second) as a share of it.
"""

import argparse
import statistics
import time
from pathlib import Path

from results import write_result

from bert_ner import Tagger
from bert_ner.data import TAGS, TOKENS, read_conll, to_iob2
from bert_ner.inference import BATCH_SIZE
from bert_ner.onnx_backend import read_json
from bert_ner.outputs import MODEL_CONFIG_FILE, TOKENIZER_FILE
from bert_ner.scoring import score
from bert_ner.tagger import TEXTS_PER_CHUNK
from bert_ner.words import tags_for

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


def timed(tagger: Tagger, texts: list[str], batch_size: int, batched: bool) -> tuple[list, list[float]]:
    """Entities per text and the latency of every call: batched, infer.py's chunks through
    `Tagger.tag`; otherwise the PyTorch backend's transformers pipeline called on one text at a time."""
    results, latencies = [], []
    step = TEXTS_PER_CHUNK if batched else 1
    for first in range(0, len(texts), step):
        group = texts[first : first + step]
        start = time.perf_counter()
        results += tagger.tag(group, batch_size) if batched else [tagger.pipeline(group[0])]
        latencies.append(time.perf_counter() - start)
    return results, latencies


def percentiles(values: list[float]) -> list[float]:
    """The 1st to 99th percentiles; all the one value when there is only one (a single chunk)."""
    return statistics.quantiles(values, n=100) if len(values) > 1 else values * 99


def input_lengths(model_dir: str, texts: list[str]) -> list[int]:
    """Sub-tokens of each model input for `texts` (special tokens included), each sentence alone as
    a sentence-level model reads it: bert_ner.inference.prepare with the model's tokenizer.json."""
    from bert_ner.inference import prepare
    from bert_ner.onnx_backend import FastTokenizer

    tokenizer = FastTokenizer(Path(model_dir) / TOKENIZER_FILE)
    return [len(ids["input_ids"]) for text in texts for ids, _ in prepare(tokenizer, text).inputs]


def useful_operations(model_dir: str, texts: list[str]) -> float:
    """Multiply-adds x 2 the encoder does for `texts`, padding excluded: per sentence of n sub-tokens,
    the layers' linear maps 2n(4H^2 + 2HI) and attention's two products 4n^2 H, times the layers."""
    config = read_json(Path(model_dir) / MODEL_CONFIG_FILE)
    hidden, inner, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    return sum(
        layers * (2 * n * (4 * hidden**2 + 2 * hidden * inner) + 4 * n * n * hidden) for n in input_lengths(model_dir, texts)
    )


def peak_shape(model_dir: str) -> tuple[int, int, int]:
    """The product the peak is measured at: a batch of 32 sentences of ~20 sub-tokens through the
    model's feed-forward layer, [640 x hidden] x [hidden x intermediate]."""
    config = read_json(Path(model_dir) / MODEL_CONFIG_FILE)
    return 32 * 20, config["hidden_size"], config["intermediate_size"]


def peak_shape_text(model_dir: str) -> str:
    rows, inner, columns = peak_shape(model_dir)
    return f"[{rows} x {inner}] x [{inner} x {columns}]"


def model_peak(model_dir: str, int8: bool, threads: int) -> float:
    """This machine's peak (operations/s) at `model_dir`'s feed-forward shape (`matmul_peak`)."""
    return matmul_peak(*peak_shape(model_dir), int8, threads)


def matmul_peak(rows: int, inner: int, columns: int, int8: bool, threads: int) -> float:
    """This machine's measured rate (operations/s) for one [rows, inner] x [inner, columns] product in
    ONNX Runtime with `threads` threads: MatMul in fp32, or MatMulInteger (uint8 x int8 -> int32),
    what the int8 export's products run on. The best of its runs over one second: a machine shared
    with anything else gives fewer fast runs, and the best of a few was sometimes half the peak."""
    import numpy as np
    import onnxruntime
    from onnx import TensorProto, helper

    kind, weight_kind = (TensorProto.UINT8, TensorProto.INT8) if int8 else (TensorProto.FLOAT, TensorProto.FLOAT)
    weights = np.random.default_rng(0).integers(-100, 100, (inner, columns)).astype(np.int8 if int8 else np.float32)
    node = helper.make_node("MatMulInteger" if int8 else "MatMul", ["a", "w"], ["y"])
    graph = helper.make_graph(
        [node],
        "peak",
        [helper.make_tensor_value_info("a", kind, [rows, inner])],
        [helper.make_tensor_value_info("y", TensorProto.INT32 if int8 else TensorProto.FLOAT, [rows, columns])],
        [helper.make_tensor("w", weight_kind, weights.shape, weights.tobytes(), raw=True)],
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(1).integers(0, 200, (rows, inner)).astype(np.uint8 if int8 else np.float32)
    best, until = float("inf"), time.perf_counter() + 1.0
    while time.perf_counter() < until:
        start = time.perf_counter()
        session.run(["y"], {"a": a})
        best = min(best, time.perf_counter() - start)
    return 2 * rows * inner * columns / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a directory train.py wrote (exported for the ONNX runs)")
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt")
    parser.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--machine", default=None, help="where this ran, as the docs say it (default: this machine)")
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    rows = read_conll(Path(args.conll))
    words, gold = rows[TOKENS][: args.limit], [to_iob2(tags) for tags in rows[TAGS][: args.limit]]
    texts = [" ".join(w) for w in words]
    threads = torch.get_num_threads()
    print(f"{len(texts)} sentences from {args.conll}; model {args.model}; torch threads {threads}")
    operations = useful_operations(args.model, texts)
    peaks = {int8: model_peak(args.model, int8, threads) for int8 in (False, True)}
    print(
        f"peak of this machine, {threads} threads, {peak_shape_text(args.model)}: "
        f"fp32 {peaks[False] / 1e9:.0f} GFLOP/s, int8 {peaks[True] / 1e9:.0f} GOP/s; "
        f"the encoder's work: {operations / 1e9:.1f} GOP\n"
    )
    print("| run | sentences/s | p50 latency | p95 latency | test F1 | spans as batched PyTorch | achieved GOP/s | of peak |")
    print("|---|---|---|---|---|---|---|---|")
    reference, runs = None, []
    for name in sorted(args.runs, key=list(RUNS).index):
        backend, batched = RUNS[name]
        tagger = Tagger.load(args.model, backend, device="cpu")
        tagger.tag([texts[0]])  # warm-up: the first call pays for lazy initialisation
        start = time.perf_counter()
        results, latencies = timed(tagger, texts, args.batch_size, batched)
        seconds = time.perf_counter() - start
        spans = [[(e["entity_group"], e["start"], e["end"]) for e in r] for r in results]
        reference = spans if name == "torch" else reference
        same = f"{sum(a == b for a, b in zip(spans, reference))}/{len(texts)}" if reference else "n/a"
        f1 = score(gold, [tags_for(space_joined_spans(w), r) for w, r in zip(words, results)])["f1"]
        cuts = percentiles(latencies)
        achieved = operations / seconds
        print(
            f"| {LABELS[name]} | {len(texts) / seconds:.1f} | {cuts[49] * 1000:.1f} ms | {cuts[94] * 1000:.1f} ms "
            f"| {f1 * 100:.2f} | {same} | {achieved / 1e9:.0f} | {achieved / peaks[backend == 'onnx-int8']:.0%} |",
            flush=True,
        )
        runs.append(
            {"run": LABELS[name], "sentences_per_s": round(len(texts) / seconds, 1), "p50_ms": round(cuts[49] * 1000, 1),
             "p95_ms": round(cuts[94] * 1000, 1), "test_f1": round(f1 * 100, 2), "same_spans_as_torch": same,
             "achieved_gops": round(achieved / 1e9, 1), "share_of_peak": round(achieved / peaks[backend == "onnx-int8"], 3)}
        )  # fmt: skip
    figures = {
        "model": Path(args.model).name, "sentences": len(texts), "torch_threads": threads, "batch_size": args.batch_size,
        "peak_gflops_fp32": round(peaks[False] / 1e9), "peak_gops_int8": round(peaks[True] / 1e9), "runs": runs,
    }  # fmt: skip
    write_result(f"inference-{Path(args.model).name}", figures, args.machine)


if __name__ == "__main__":
    main()
