"""Throughput of infer.py --ray (Ray Data, a pool of actors) with 1 and 2 workers against infer.py's
loop in one process, on the same texts, machine and run; and what Ray adds per batch.

    python bench/ray_throughput.py --model DIR [--backend onnx-int8] [--conll data/demo/test.txt]
                                   [--repeat 20] [--workers 1 2] [--machine "2 CPU cores, shared"]

Texts are the CoNLL file's sentences, words joined by spaces, the file repeated --repeat times.
Each worker holds one CPU and runs the model on one thread; the one-process run uses one thread too,
so a worker's rate is comparable with it. A Ray run's time is from the call to the published output
(reading, splitting, tagging, writing shards), after a local Ray with one CPU per worker started;
the model's load is timed apart in the one-process run. Ray's cost per batch: the run's time less
the one-process tagging time of the same texts, per worker call of TEXTS_PER_CHUNK texts (with one
worker); and, with no model at all (a worker that tags nothing), the pipeline's own time per batch.
"""

import argparse
import tempfile
import time
from pathlib import Path

import ray
from results import write_result

from bert_ner import Tagger
from bert_ner.data import TOKENS, read_conll
from bert_ner.ray_batch import ERROR, RECORD, TEXT, TagBatches, TagSettings, tag_corpus
from bert_ner.tagger import TEXTS_PER_CHUNK


class NoModel(TagBatches):
    """A worker that loads nothing and tags nothing: the Ray pipeline's own cost."""

    def __init__(self, settings: TagSettings):
        self.settings = settings

    def __call__(self, batch):
        texts = sum(len(chunk) for chunk in batch.column(TEXT).to_pylist())
        return {RECORD: [""] * texts, ERROR: [""] * texts}


def one_process(model: str, backend: str, texts: list[str]) -> dict:
    """infer.py's loop (Tagger.records) in this process, one thread."""
    start = time.perf_counter()
    tagger = Tagger.load(model, backend, device="cpu", threads=1)
    loaded = time.perf_counter()
    count = sum(1 for _ in tagger.records(texts))
    seconds = time.perf_counter() - loaded
    return {
        "texts": count,
        "load_s": round(loaded - start, 3),
        "tag_s": round(seconds, 3),
        "texts_per_s": round(count / seconds, 1),
    }


def on_ray(model: str, backend: str, corpus: Path, workers: int, worker=TagBatches) -> dict:
    settings = TagSettings({"model": model, "backend": backend, "device": "cpu", "threads": 1})
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        with tempfile.TemporaryDirectory() as scratch:
            start = time.perf_counter()
            summary = tag_corpus(str(corpus), f"{scratch}/out", settings, workers=workers, worker=worker)
            seconds = time.perf_counter() - start
    finally:
        ray.shutdown()
    return {"workers": workers, "wall_s": round(seconds, 3), "texts_per_s": round(summary.records / seconds, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--backend", default="onnx-int8")
    parser.add_argument("--conll", default="data/demo/test.txt")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--machine", default=None)
    args = parser.parse_args(argv)

    texts = [" ".join(words) for words in read_conll(Path(args.conll))[TOKENS]] * args.repeat
    batches = -(-len(texts) // TEXTS_PER_CHUNK)
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "texts.txt"
        corpus.write_text("".join(text + "\n" for text in texts), encoding="utf-8")
        alone = one_process(args.model, args.backend, texts)
        print(f"one process: {alone}")
        runs = []
        for workers in args.workers:
            runs.append(on_ray(args.model, args.backend, corpus, workers))
            print(f"ray: {runs[-1]}")
        empty = on_ray(args.model, args.backend, corpus, 1, worker=NoModel)
        print(f"ray, no model: {empty}")
    one_worker = next((run for run in runs if run["workers"] == 1), None)
    figures = {
        "texts": len(texts),
        "backend": args.backend,
        "texts_per_batch": TEXTS_PER_CHUNK,
        "batches": batches,
        "one_process": alone,
        "ray": runs,
        "ray_no_model_wall_s": empty["wall_s"],
        "ray_pipeline_s_per_batch": round(empty["wall_s"] / batches, 4),
    }
    if one_worker:
        # What Ray adds to the same tagging work: its run time less the one-process tagging and model load.
        added = one_worker["wall_s"] - alone["tag_s"] - alone["load_s"]
        figures["ray_added_s_per_batch"] = round(added / batches, 4)
    write_result("ray-throughput", figures, machine=args.machine)


if __name__ == "__main__":
    main()
