"""Serve a model train.py saved over HTTP: batched, with limits, loopback only by default.

    pip install -r requirements-serve.txt
    python serve.py [--model bert-ner] [--port 8000] [--backend onnx-int8]
    curl -s localhost:8000/v1/entities -d '{"texts": ["Barack Obama was born in Hawaii"]}'

POST /v1/entities answers with the records `infer.py --json` writes for the same texts (README:
Serving over HTTP, for what texts tagged in the same model call change);
GET /health and GET /v1/model describe the service (ner/serving.py). SIGTERM or Ctrl-C finishes
the requests in flight, then exits.
"""

import argparse
import functools
import json
import logging
from pathlib import Path

from infer import BACKENDS, DEFAULT_MODEL, json_record, load_tagger
from ner.errors import UserError, require_packages, run_cli, setup_logging
from ner.hub import check_model_dir
from ner.inference import BATCH_SIZE, BATCH_SIZE_HELP, predict
from ner.outputs import METRICS_FILE, RESOLVED_CONFIG_FILE
from ner.words import AGGREGATIONS, DEFAULT_AGGREGATION

REQUIREMENTS = "requirements-serve.txt"
log = logging.getLogger("ner")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from ner.serving import BATCH_WAIT_MS, MAX_BATCH, Limits

    limits = Limits()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"directory train.py wrote (default: {DEFAULT_MODEL})")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--backend", default="torch", choices=BACKENDS, help="as infer.py's (onnx backends: python export.py first)"
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the model (default: one per physical core)")
    parser.add_argument("--aggregation", default=DEFAULT_AGGREGATION, choices=AGGREGATIONS)
    parser.add_argument("--min-score", type=float, default=0.0, help="drop entities scored below this (0-1)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=BATCH_SIZE_HELP)
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
    for name in ("batch_size", "max_batch", "max_texts", "max_text_chars", "max_body_bytes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.batch_wait_ms < 0:
        parser.error("--batch-wait-ms must be 0 or more")
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a port number (1-65535)")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if not 0 <= args.min_score <= 1:
        parser.error("--min-score is a probability: 0 to 1")
    if args.shutdown_timeout < 0:
        parser.error("--shutdown-timeout must be 0 or more")
    return args


def model_info(args: argparse.Namespace, labels: list[str]) -> dict:
    """What GET /v1/model says: the model's labels, what it was fine-tuned from, its context, the
    backend serving it, and its scores (metrics.json)."""
    import yaml

    from ner.config import trained_data_config

    directory = Path(args.model)
    resolved = directory / RESOLVED_CONFIG_FILE
    saved = yaml.safe_load(resolved.read_text(encoding="utf-8")) if resolved.is_file() else {}
    model = saved.get("model") or {}
    metrics = directory / METRICS_FILE
    return {
        "model": args.model,
        "base_model": "(trained from scratch)" if model.get("scratch") else model.get("name_or_path"),
        "labels": labels,
        "context_tokens": trained_data_config(args.model).context_tokens,
        "backend": args.backend,
        "metrics": json.loads(metrics.read_text()) if metrics.is_file() else None,
    }


def labels_of_tagger(tagger) -> list[str]:
    from ner.words import labels_of

    return tagger.labels if hasattr(tagger, "labels") else labels_of(tagger.model.config.id2label)


def check_port_free(host: str, port: int) -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise UserError(f"--host {host} --port {port}: cannot listen there ({error.strerror}); pick another --port") from None


def run(args: argparse.Namespace) -> None:
    check_model_dir(args.model, DEFAULT_MODEL)
    require_packages("starlette", "uvicorn", hint=f"serve.py needs a web server: pip install -r {REQUIREMENTS}")
    import uvicorn

    from ner.serving import Limits, make_app

    setup_logging()
    check_port_free(args.host, args.port)  # before the model loads, not after
    tagger = load_tagger(args.model, args.backend, args.device, args.threads, args.aggregation)
    tag = functools.partial(predict, tagger, batch_size=args.batch_size, min_score=args.min_score)
    limits = Limits(max_body_bytes=args.max_body_bytes, max_texts=args.max_texts, max_text_chars=args.max_text_chars)
    app = make_app(tag, json_record, model_info(args, labels_of_tagger(tagger)), limits, args.max_batch, args.batch_wait_ms)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(f"--host {args.host}: others on the network can reach this server, which has no authentication")
    log.info(
        f"serving {args.model} ({args.backend}) on http://{args.host}:{args.port}: POST /v1/entities, GET /health, GET /v1/model"
    )
    # uvicorn finishes the requests in flight on SIGTERM and Ctrl-C before it exits, within --shutdown-timeout
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=args.shutdown_timeout)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cli(functools.partial(run, args), args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
