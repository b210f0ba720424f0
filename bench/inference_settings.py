"""Which inference settings pay off: torch.inference_mode against no_grad, and the CPU thread
count, for infer.py's batched loop (PyTorch, and ONNX int8 when exported), in one run.

    python bench/inference_settings.py --model DIR [--conll ../shared/data/conll2003/test.txt] [--limit 1000]

Each row runs the same sentences through infer.py's own chunked, longest-first loop after a
warm-up call, and reports sentences per second.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.inference import timed  # noqa: E402
from infer import load_tagger  # noqa: E402
from ner.data import TOKENS, read_conll  # noqa: E402
from ner.inference import BATCH_SIZE  # noqa: E402
from ner.onnx_backend import onnx_path  # noqa: E402


def no_grad(ner):
    """The pipeline as transformers ships it: torch.no_grad around the forward pass."""
    import torch

    ner.get_inference_context = lambda: torch.no_grad
    return ner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    texts = [" ".join(words) for words in read_conll(Path(args.conll))[TOKENS][: args.limit]]
    cores = os.cpu_count()
    variants = [("torch", "no_grad", n) for n in (1, cores)] + [("torch", "inference_mode", n) for n in (1, cores)]
    if onnx_path(args.model, "onnx-int8").is_file():
        variants += [("onnx-int8", "-", n) for n in (1, cores)]
    print(
        f"{len(texts)} sentences from {args.conll}; model {args.model}; {cores} CPUs; "
        f"torch default threads {torch.get_num_threads()}"
    )
    print("| backend | autograd context | threads | sentences/s |\n|---|---|---|---|")
    for backend, context, threads in variants:
        ner = load_tagger(args.model, backend, threads=threads)
        if context == "no_grad":
            ner = no_grad(ner)
        ner([texts[0]])
        start = time.perf_counter()
        timed(ner, texts, args.batch_size, batched=True)
        print(f"| {backend} | {context} | {threads} | {len(texts) / (time.perf_counter() - start):.1f} |", flush=True)


if __name__ == "__main__":
    main()
