"""Which inference settings pay off: the CPU thread count, for infer.py's batched loop (PyTorch,
and ONNX int8 when exported), in one run. (The PyTorch backend always runs its model calls under
torch.inference_mode: bert_ner.torch_backend.TaggingPipeline.logits.)

    python bench/inference_settings.py --model DIR [--conll ../shared/data/conll2003/test.txt] [--limit 1000]

Each row runs the same sentences through infer.py's own chunked, longest-first loop after a
warm-up call, and reports sentences per second.
"""

import argparse
import os
import time
from pathlib import Path

from inference import timed  # bench/inference.py, beside this script

from bert_ner import Tagger
from bert_ner.data import TOKENS, read_conll
from bert_ner.inference import BATCH_SIZE
from bert_ner.onnx_backend import onnx_path


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
    variants = [("torch", n) for n in (1, cores)]
    if onnx_path(args.model, "onnx-int8").is_file():
        variants += [("onnx-int8", n) for n in (1, cores)]
    print(
        f"{len(texts)} sentences from {args.conll}; model {args.model}; {cores} CPUs; "
        f"torch default threads {torch.get_num_threads()}"
    )
    print("| backend | threads | sentences/s |\n|---|---|---|")
    for backend, threads in variants:
        tagger = Tagger.load(args.model, backend, device="cpu", threads=threads)
        tagger.tag([texts[0]])
        start = time.perf_counter()
        timed(tagger, texts, args.batch_size, batched=True)
        print(f"| {backend} | {threads} | {len(texts) / (time.perf_counter() - start):.1f} |", flush=True)


if __name__ == "__main__":
    main()
