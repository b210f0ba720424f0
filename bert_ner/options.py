"""The model options that infer.py and serve.py share: declared once, checked once, and turned
into a Tagger in one place."""

import argparse

from bert_ner.hub import check_model_dir
from bert_ner.inference import BATCH_SIZE, BATCH_SIZE_HELP
from bert_ner.modeling import Trust
from bert_ner.outputs import DEFAULT_OUTPUT_DIR
from bert_ner.tagger import BACKENDS, Tagger
from bert_ner.words import AGGREGATIONS, DEFAULT_AGGREGATION

DEFAULT_MODEL = DEFAULT_OUTPUT_DIR


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model, --backend, --device, --threads, --aggregation, --batch-size, --min-score and the
    trust flags."""
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"directory train.py wrote, or a Hub model id (default: {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "--backend",
        default="torch",
        choices=BACKENDS,
        help="torch, or the ONNX export of the model (python export.py): onnx (fp32) or onnx-int8; ONNX runs on CPU",
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto = cuda when available")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the model (default: one per physical core)")
    parser.add_argument(
        "--aggregation",
        default=DEFAULT_AGGREGATION,
        choices=AGGREGATIONS,
        help=f"how a word's sub-token predictions combine into the word's (default: {DEFAULT_AGGREGATION}, "
        "as training labels words)",
    )
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=BATCH_SIZE_HELP)
    parser.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="drop entities scored below this (0-1; default: the threshold recorded with the model for a precision, "
        "by train.py inference.min_precision or bench/calibration.py --record-min-precision, else 0)",
    )
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="run model code a Hub repository ships; only if you trust it"
    )
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="also load pickle weights (pytorch_model.bin), which can run code; only if you trust them",
    )


def check_model_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """parser.error (exit 2, one line) for a value outside its range."""
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.min_score is not None and not 0 <= args.min_score <= 1:
        parser.error(f"--min-score {args.min_score:g}: give a score from 0 to 1 (0 keeps every entity)")


def check_model(args: argparse.Namespace) -> None:
    """Fail at once, before anything loads, when there is no model where --model points."""
    check_model_dir(args.model, DEFAULT_MODEL)


def trust(args: argparse.Namespace) -> Trust:
    """What the trust flags allow to load."""
    return Trust(allow_pickle=args.allow_pickle, remote_code=args.trust_remote_code, opt_in="--allow-pickle")


def load_tagger(args: argparse.Namespace) -> Tagger:
    return Tagger.load(args.model, args.backend, args.device, args.threads, args.aggregation, trust(args))
