"""Export a model train.py saved to ONNX (fp32 and int8), then check the export against PyTorch.

    pip install -r requirements-export.txt
    python export.py [--model bert-ner]
    python infer.py --backend onnx-int8 "Barack Obama was born in Hawaii"

Writes DIR/onnx/model.onnx (dynamic batch and sequence axes) and DIR/onnx/model.int8.onnx
(dynamic int8 quantization). On sample sentences it prints the largest logit difference to
PyTorch and how many predicted tags agree, and exits 1 if fp32 does not match PyTorch.
"""

import argparse
import functools
from pathlib import Path

from bert_ner import Tagger
from bert_ner.errors import UserError, require_packages, run_cli
from bert_ner.hub import check_model_dir
from bert_ner.modeling import Trust
from bert_ner.onnx_backend import EXPORT_REQUIREMENTS, onnx_path, write_exports
from bert_ner.outputs import DEFAULT_OUTPUT_DIR, add_own_files, check_own_files_writable

DEFAULT_MODEL = DEFAULT_OUTPUT_DIR
FP32_TOLERANCE = 1e-3  # float32 kernels differ in summation order; a real export bug is far larger
SAMPLES = [
    "Barack Obama was born in Hawaii .",
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn",
    "BRUSSELS 1996-08-22",
    "  Jürgen Müller met Anna Schmidt in Köln , then flew to 東京 😀 .",
    "Shares in Northwind Bank closed lower in New York on Friday after the Federal Reserve said rates would rise .",
    " ".join(["The talks in Geneva ended without agreement , a spokesman for the United Nations said ."] * 12),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"directory train.py wrote (default: {DEFAULT_MODEL})")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="also load pickle weights (pytorch_model.bin), which can run code; only if you trust them",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return parser.parse_args(argv)


COPY_IT = "copy the model to a directory you can write, and export there"


def unwritable(error: OSError, default: str | Path) -> str:
    return f"cannot write {error.filename or default} ({error.strerror or error})"


def compare(reference: Tagger, export: Tagger) -> tuple[float, int, int]:
    """Largest |logit difference| to PyTorch over the real (non-padding) sub-tokens of the model
    inputs the Tagger makes of SAMPLES, and how many of them get the same predicted tag, out of how many."""
    import numpy as np

    inputs = [ids for text in SAMPLES for ids, _ in reference.reader.prepare(text).inputs]
    expected, got = reference.backend.logits(inputs), export.backend.logits(inputs)
    real = np.zeros(expected.shape[:2], dtype=bool)
    for row, ids in enumerate(inputs):
        real[row, : len(ids["input_ids"])] = True
    same = int((got.argmax(-1) == expected.argmax(-1))[real].sum())
    return float(np.abs(got - expected)[real].max()), same, int(real.sum())


def run(args: argparse.Namespace) -> int:
    check_model_dir(args.model, DEFAULT_MODEL)
    require_packages(
        "torch", "transformers", hint=f"export.py needs PyTorch: pip install -r requirements.txt -r {EXPORT_REQUIREMENTS}"
    )
    reference = Tagger.load(args.model, device="cpu", trust=Trust(allow_pickle=args.allow_pickle, opt_in="--allow-pickle"))
    model, tokenizer = reference.pipeline.model, reference.pipeline.tokenizer
    fp32, int8 = onnx_path(args.model, "onnx"), onnx_path(args.model, "onnx-int8")
    print(f"exporting {args.model} to {fp32} ...", flush=True)
    try:
        check_own_files_writable(Path(args.model))  # before the export, which it would otherwise leave unrecorded
        write_exports(model, tokenizer, Path(args.model))
    except OSError as error:
        raise UserError(f"--model: {unwritable(error, fp32.parent)}; nothing was exported: {COPY_IT}") from None
    try:  # bert-ner's own files now, which a rerun of train.py into this directory may replace
        add_own_files(Path(args.model), [path.relative_to(args.model).as_posix() for path in (fp32, int8)])
    except OSError as error:
        raise UserError(
            f"--model: {unwritable(error, args.model)}; the exports are in {fp32.parent}, but a rerun of train.py "
            f"will refuse to replace them: {COPY_IT}"
        ) from None

    status = 0
    for name, backend, path in (("fp32", "onnx", fp32), ("int8", "onnx-int8", int8)):
        difference, same, total = compare(reference, Tagger.load(args.model, backend))
        size = path.stat().st_size / 2**20
        print(f"{name}: {path} ({size:.1f} MiB): max |logit difference| {difference:.2g}, same tag on {same}/{total} sub-tokens")
        if name == "fp32" and (difference > FP32_TOLERANCE or same != total):
            print(f"error: the fp32 export does not match PyTorch (tolerance {FP32_TOLERANCE}); do not deploy it")
            status = 1
    return status


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cli(functools.partial(run, args), args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
