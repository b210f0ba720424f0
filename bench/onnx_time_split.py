"""Where an ONNX run of infer.py spends its time on the CoNLL-2003 test sentences: splitting texts
into sentences and words, all of `prepare` (splitting and tokenizing), and ONNX Runtime itself; and
the graph's own rate against the machine's peak for its number type (fp32 or int8, measured as
bench/inference.py measures it); and,
with --ops, ONNX Runtime's own profile of the graph: its kernel time per operator type.

    python bench/onnx_time_split.py --model DIR [--backend onnx-int8] [--batch-size 32 64] [--ops]
"""

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from inference import model_peak, useful_operations  # bench/inference.py, beside this script

from bert_ner.data import TOKENS, read_conll
from bert_ner.inference import BATCH_SIZE
from bert_ner.onnx_backend import OnnxModel, onnx_path, require, session
from bert_ner.outputs import BACKEND_FILES
from bert_ner.words import split_sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt")
    parser.add_argument("--backend", default="onnx-int8", choices=list(BACKEND_FILES))
    parser.add_argument("--batch-size", type=int, nargs="+", default=[32])
    parser.add_argument("--ops", action="store_true", help="also ONNX Runtime's kernel time per operator type")
    args = parser.parse_args()

    texts = [" ".join(words) for words in read_conll(Path(args.conll))[TOKENS]]
    model = OnnxModel(args.model, args.backend)
    tag(model, texts[:10])  # warm-up
    start = time.perf_counter()
    for text in texts:
        split_sentences(text, ())
    split = time.perf_counter() - start
    start = time.perf_counter()
    for text in texts:
        model.reader.prepare(text)
    prepared = time.perf_counter() - start

    run, in_session = model.session.run, [0.0]

    def timed_run(*args, **kwargs):
        begin = time.perf_counter()
        result = run(*args, **kwargs)
        in_session[0] += time.perf_counter() - begin
        return result

    model.session.run = timed_run
    operations = useful_operations(args.model, texts)
    print(f"{len(texts)} sentences, {args.backend}; splitting {split:.2f} s, prepare (splitting + tokenizing) {prepared:.2f} s")
    threads = model.session.get_session_options().intra_op_num_threads  # 0: ONNX Runtime's default, for both
    peak = model_peak(args.model, args.backend == "onnx-int8", threads)
    unit = "GOP/s" if args.backend == "onnx-int8" else "GFLOP/s"  # int8 operations or fp32 floating-point ones
    print(f"this machine's peak, as bench/inference.py measures it: {peak / 1e9:.0f} {unit}")
    print(f"| batch size | total | in ONNX Runtime | share | ONNX Runtime {unit} | of peak |\n|---|---|---|---|---|---|")
    for batch_size in args.batch_size:
        in_session[0] = 0.0
        start = time.perf_counter()
        tag(model, texts, batch_size)
        total = time.perf_counter() - start
        rate = operations / in_session[0] / 1e9
        share, of_peak = in_session[0] / total, rate * 1e9 / peak
        print(f"| {batch_size} | {total:.2f} s | {in_session[0]:.2f} s | {share:.0%} | {rate:.0f} | {of_peak:.0%} |")

    if args.ops:
        print_operator_profile(model, args.model, args.backend, texts, args.batch_size[0])


def tag(model: OnnxModel, texts: list[str], batch_size: int = BATCH_SIZE) -> list[list[dict]]:
    """Each text's entities, as infer.py tags with this export: its reader around its model calls."""
    return model.reader.tag(texts, model.logits, batch_size, model.call_cost)


def print_operator_profile(model: OnnxModel, model_dir: str, backend: str, texts: list[str], batch_size: int) -> None:
    """ONNX Runtime's profile of tagging `texts`: kernel time per operator type, largest first.
    Profiling adds its own overhead, so read the shares, not the totals."""
    onnxruntime = require()
    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.intra_op_num_threads = model.session.get_session_options().intra_op_num_threads
    with tempfile.TemporaryDirectory() as directory:
        options.profile_file_prefix = str(Path(directory) / "profile")
        model.session = session(onnx_path(model_dir, backend), options=options)
        tag(model, texts, batch_size)
        events = json.loads(Path(model.session.end_profiling()).read_text())
    kernel = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            kernel[event["args"]["op_name"]] += event["dur"]  # microseconds
    total = sum(kernel.values())
    print(f"\nONNX Runtime's kernel time by operator type ({backend}, batch size {batch_size}, profiled):")
    print("| operator | time | share |\n|---|---|---|")
    for operator, microseconds in kernel.most_common():
        if microseconds / total >= 0.005:
            print(f"| {operator} | {microseconds / 1e6:.2f} s | {microseconds / total:.1%} |")
    print(f"| (others, each under 0.5%) | {sum(m for m in kernel.values() if m / total < 0.005) / 1e6:.2f} s | |")


if __name__ == "__main__":
    main()
