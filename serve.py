"""Serve a model train.py saved over HTTP: batched, with limits, loopback only by default.

    pip install -r requirements-serve.txt
    python serve.py [--model bert-ner] [--port 8000] [--backend onnx-int8]
    curl -s localhost:8000/v1/entities -d '{"texts": ["Barack Obama was born in Hawaii"]}'

POST /v1/entities answers with the records `infer.py --json` writes for the same texts (docs/serving.md
says what texts tagged in the same model call change);
GET /health and GET /v1/model describe the service. The same model also answers in the Open Inference
Protocol v2 (/v2/...), TensorFlow Serving's REST API (/v1/models/NAME...) and as a Label Studio ML
backend (/setup, /predict), with Prometheus /metrics and /livez, /readyz (bert_ner/serving.py).
SIGTERM or Ctrl-C finishes the requests in flight, then exits.
"""

import argparse
import functools
import json
import logging
from pathlib import Path

from bert_ner.errors import UserError, require_packages, run_cli, setup_logging
from bert_ner.inference import floor_precision, score_floor, threshold_note
from bert_ner.options import add_model_options, check_model, check_model_options, load_tagger
from bert_ner.outputs import METRICS_FILE, RESOLVED_CONFIG_FILE

REQUIREMENTS = "requirements-serve.txt"
log = logging.getLogger("bert_ner")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from bert_ner.serving import BATCH_WAIT_MS, MAX_BATCH, Limits

    limits = Limits()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--model-name",
        default=None,
        help="the name the v2, TF Serving and Label Studio APIs serve the model under (default: the --model directory's name)",
    )
    parser.add_argument(
        "--max-batch", type=int, default=MAX_BATCH, help=f"texts gathered from requests into one batch (default: {MAX_BATCH})"
    )
    parser.add_argument(
        "--batch-wait-ms",
        type=float,
        default=BATCH_WAIT_MS,
        help=f"how long a request waits for others to batch with (default: {BATCH_WAIT_MS:g})",
    )
    parser.add_argument(
        "--max-texts", type=int, default=limits.max_texts, help=f"texts per request (default: {limits.max_texts})"
    )
    parser.add_argument(
        "--max-text-chars",
        type=int,
        default=limits.max_text_chars,
        help=f"characters per text (default: {limits.max_text_chars})",
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=limits.max_body_bytes, help=f"request body size (default: {limits.max_body_bytes})"
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=120.0,
        help="on SIGTERM, seconds to let requests in flight finish before they are cut off (default: 120)",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    check_model_options(parser, args)
    for name in ("max_batch", "max_texts", "max_text_chars", "max_body_bytes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.batch_wait_ms < 0:
        parser.error("--batch-wait-ms must be 0 or more")
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a port number (1-65535)")
    if args.shutdown_timeout < 0:
        parser.error("--shutdown-timeout must be 0 or more")
    if args.model_name is None:
        args.model_name = Path(args.model.rstrip("/")).name or "bert-ner"
    if not args.model_name or any(c in args.model_name for c in "/:?#% "):
        parser.error(f"--model-name {args.model_name!r}: give a name without /, :, ?, #, % or spaces (it is part of URLs)")
    return args


def model_info(args: argparse.Namespace, tagger) -> dict:
    """What GET /v1/model says: the model's labels, what it was fine-tuned from, its context, the
    backend serving it, whether its entity scores are calibrated, the score below which it leaves
    entities out (--min-score, else the threshold recorded for a precision, else 0) and that
    precision when it is the recorded threshold, and its scores (metrics.json)."""
    import yaml

    directory = Path(args.model)
    resolved = directory / RESOLVED_CONFIG_FILE
    saved = yaml.safe_load(resolved.read_text(encoding="utf-8")) if resolved.is_file() else {}
    model = saved.get("model") or {}
    metrics = directory / METRICS_FILE
    return {
        "model": args.model,
        "base_model": "(trained from scratch)" if model.get("scratch") else model.get("name_or_path"),
        "labels": tagger.labels,
        "context_tokens": tagger.record.context_tokens,
        "backend": args.backend,
        "calibrated": tagger.record.calibration is not None,
        "min_score": score_floor(args.min_score, tagger.record),
        "min_score_for_precision": floor_precision(args.min_score, tagger.record),
        "metrics": json.loads(metrics.read_text()) if metrics.is_file() else None,
    }


def check_port_free(host: str, port: int) -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise UserError(f"--host {host} --port {port}: cannot listen there ({error.strerror}); pick another --port") from None


def load_model(args: argparse.Namespace):
    """The model serve.py serves (bert_ner.serving.Model), as infer.py loads it."""
    from bert_ner.serving import Model

    tagger = load_tagger(args)
    said = threshold_note(tagger.record, args.model) if args.min_score is None else None
    if said:
        log.info(said)
    tag = functools.partial(tagger.tag_steps, batch_size=args.batch_size, min_score=args.min_score)
    return Model(tag, tagger.labels, model_info(args, tagger))


def run(args: argparse.Namespace) -> None:
    check_model(args)
    require_packages(
        "starlette", "uvicorn", "prometheus_client", hint=f"serve.py needs a web server: pip install -r {REQUIREMENTS}"
    )
    import uvicorn

    from bert_ner.serving import Limits, make_app

    setup_logging()
    check_port_free(args.host, args.port)  # before the model loads, not after
    limits = Limits(max_body_bytes=args.max_body_bytes, max_texts=args.max_texts, max_text_chars=args.max_text_chars)
    failed: list[Exception] = []

    def stop_on_error(error: Exception) -> None:
        failed.append(error)
        server.should_exit = True

    app = make_app(
        functools.partial(load_model, args), args.model_name, limits, args.max_batch, args.batch_wait_ms, stop_on_error
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(f"--host {args.host}: others on the network can reach this server, which has no authentication")
    log.info(
        f"serving {args.model} ({args.backend}) as {args.model_name} on http://{args.host}:{args.port}: POST /v1/entities, "
        "/v2 (Open Inference Protocol), /v1/models (TF Serving), /predict (Label Studio), /metrics; loading the model"
    )
    # uvicorn finishes the requests in flight on SIGTERM and Ctrl-C before it exits, within --shutdown-timeout
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=args.shutdown_timeout
    )
    server = uvicorn.Server(config)
    server.run()
    if failed:
        raise failed[0]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cli(functools.partial(run, args), args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
