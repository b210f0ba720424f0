"""Where an ONNX run of infer.py spends its time on the CoNLL-2003 test sentences: splitting texts
into sentences and words, all of `prepare` (splitting and tokenizing), and ONNX Runtime itself; and
the graph's own rate against the machine's peak for its number type (fp32 or int8, measured as
bench/inference.py measures it); and,
with --ops, ONNX Runtime's own profile of the graph: its kernel time per operator type.

    python bench/onnx_time_split.py --model DIR [--backend onnx-int8] [--batch-size 32 64] [--ops]
"""

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.inference import model_peak, useful_operations  # noqa: E402
from ner.data import TOKENS, read_conll  # noqa: E402
from ner.inference import prepare  # noqa: E402
from ner.onnx_backend import OnnxTagger, onnx_path, require, session  # noqa: E402
from ner.outputs import BACKEND_FILES  # noqa: E402
from ner.words import split_sentences  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt")
    parser.add_argument("--backend", default="onnx-int8", choices=list(BACKEND_FILES))
    parser.add_argument("--batch-size", type=int, nargs="+", default=[32])
    parser.add_argument("--ops", action="store_true", help="also ONNX Runtime's kernel time per operator type")
    args = parser.parse_args()

    texts = [" ".join(words) for words in read_conll(Path(args.conll))[TOKENS]]
    tagger = OnnxTagger(args.model, args.backend)
    tagger(texts[:10])  # warm-up
    start = time.perf_counter()
    for text in texts:
        split_sentences(text, ())
    split = time.perf_counter() - start
    start = time.perf_counter()
    for text in texts:
        prepare(tagger.tokenizer, text, tagger.max_length, tagger.stride, tagger.context_tokens)
    prepared = time.perf_counter() - start

    run, in_session = tagger.session.run, [0.0]

    def timed_run(*args, **kwargs):
        begin = time.perf_counter()
        result = run(*args, **kwargs)
        in_session[0] += time.perf_counter() - begin
        return result

    tagger.session.run = timed_run
    operations = useful_operations(args.model, texts)
    print(f"{len(texts)} sentences, {args.backend}; splitting {split:.2f} s, prepare (splitting + tokenizing) {prepared:.2f} s")
    threads = tagger.session.get_session_options().intra_op_num_threads  # 0: ONNX Runtime's default, for both
    peak = model_peak(args.model, args.backend == "onnx-int8", threads)
    unit = "GOP/s" if args.backend == "onnx-int8" else "GFLOP/s"  # int8 operations or fp32 floating-point ones
    print(f"this machine's peak, as bench/inference.py measures it: {peak / 1e9:.0f} {unit}")
    print(f"| batch size | total | in ONNX Runtime | share | ONNX Runtime {unit} | of peak |\n|---|---|---|---|---|---|")
    for batch_size in args.batch_size:
        in_session[0] = 0.0
        start = time.perf_counter()
        tagger(texts, batch_size=batch_size)
        total = time.perf_counter() - start
        rate = operations / in_session[0] / 1e9
        share, of_peak = in_session[0] / total, rate * 1e9 / peak
        print(f"| {batch_size} | {total:.2f} s | {in_session[0]:.2f} s | {share:.0%} | {rate:.0f} | {of_peak:.0%} |")

    if args.ops:
        print_operator_profile(tagger, args.model, args.backend, texts, args.batch_size[0])


def print_operator_profile(tagger, model: str, backend: str, texts: list[str], batch_size: int) -> None:
    """ONNX Runtime's profile of tagging `texts`: kernel time per operator type, largest first.
    Profiling adds its own overhead, so read the shares, not the totals."""
    onnxruntime = require()
    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.intra_op_num_threads = tagger.session.get_session_options().intra_op_num_threads
    with tempfile.TemporaryDirectory() as directory:
        options.profile_file_prefix = str(Path(directory) / "profile")
        tagger.session = session(onnx_path(model, backend), options=options)
        tagger(texts, batch_size=batch_size)
        events = json.loads(Path(tagger.session.end_profiling()).read_text())
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
