"""The HTTP service behind serve.py: a Starlette app whose requests share batched model calls.

    POST /v1/entities   {"texts": ["...", ...]} or {"text": "..."} -> a JSON list with one record
                        per text, in order, as `infer.py --json` writes them
    GET  /health        {"status": "ok"} (the model is loaded before the server listens)
    GET  /v1/model      labels, base model, context, backend, and the model's metrics.json

Requests that arrive together are tagged as one batch (Batcher): the first waits at most
`wait_ms` for others, until the batch holds `max_batch` texts or more (a request is never split).
The `tag` function serve.py gives it is infer.py's, which cuts the batch's inputs into model calls
by length (bert_ner.inference.model_calls). Every bad request is a 4xx with a JSON {"error": ...}
that says what was wrong and the limit; a failure inside the model is a 500 with a one-line JSON
error, never a traceback, and the worker lives on.
"""

import asyncio
import json
import logging
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("bert_ner")

Tag = Callable[[list[str]], list[list[dict]]]  # texts -> each text's entities, in order


@dataclass(frozen=True)
class Limits:
    """What one request may hold; each has a command-line option in serve.py."""

    max_body_bytes: int = 1_000_000
    max_texts: int = 256
    max_text_chars: int = 100_000


# How requests share model calls (Batcher); serve.py's --max-batch and --batch-wait-ms. How these
# serve 32 clients on 2 cores, against infer.py's batched rate: docs/speed.md.
MAX_BATCH = 32  # texts gathered from requests into one batch
BATCH_WAIT_MS = 5.0  # how long the first request of a batch waits for others


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def texts_of(body: bytes, limits: Limits) -> list[str]:
    """The texts of a POST /v1/entities body, or BadRequest saying what is wrong and the limit."""
    if len(body) > limits.max_body_bytes:
        raise BadRequest(413, f"body of {len(body)} bytes; the limit is {limits.max_body_bytes} (serve.py --max-body-bytes)")
    try:
        request = json.loads(body)
    except (ValueError, RecursionError) as error:  # also bad UTF-8, 5,000-digit numbers, arrays nested 100,000 deep
        raise BadRequest(400, f'invalid JSON ({error}); expected {{"texts": ["..."]}} or {{"text": "..."}}') from None
    if not isinstance(request, dict) or len(request) != 1 or not ({"text", "texts"} & set(request)):
        found = ", ".join(map(str, request)) if isinstance(request, dict) else json_type(request)
        raise BadRequest(400, f'expected {{"texts": ["..."]}} or {{"text": "..."}}; found {found or "an empty object"}')
    texts = [request["text"]] if "text" in request else request["texts"]
    if not isinstance(texts, list):
        raise BadRequest(400, f'"texts" must be a list of strings, not {json_type(texts)}')
    if len(texts) > limits.max_texts:
        raise BadRequest(413, f"{len(texts)} texts; the limit is {limits.max_texts} per request (serve.py --max-texts)")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise BadRequest(400, f"text {i} is {json_type(text)}, not a string")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:  # JSON lets "\ud800" through; no text has it
            raise BadRequest(400, f"text {i} is not valid Unicode (a lone surrogate at character {error.start})") from None
        if len(text) > limits.max_text_chars:
            raise BadRequest(
                413, f"text {i} has {len(text)} characters; the limit is {limits.max_text_chars} (serve.py --max-text-chars)"
            )
    return texts


def json_type(value: Any) -> str:
    """A value's type as JSON names it."""
    names = {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }
    return names.get(type(value), type(value).__name__)


class Batcher:
    """Collects the texts of requests that arrive together into one call of `tag`, run on one
    worker thread so that the event loop keeps accepting requests meanwhile."""

    def __init__(self, tag: Tag, max_batch: int, wait_ms: float):
        self.tag, self.max_batch, self.wait_s = tag, max_batch, wait_ms / 1000
        self.queue: asyncio.Queue | None = None
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def submit(self, texts: list[str]) -> list[list[dict]]:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, future))
        return await future

    async def run(self) -> None:
        self.queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            count, deadline = len(batch[0][0]), loop.time() + self.wait_s
            while count < self.max_batch and (left := deadline - loop.time()) > 0:
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), left))
                except asyncio.TimeoutError:  # not the built-in TimeoutError before Python 3.11
                    break
                count += len(batch[-1][0])
            texts = [text for request, _ in batch for text in request]
            try:
                found = await loop.run_in_executor(self.worker, self.tag, texts)
            except Exception as error:  # the model failed: each request again alone, so one cannot fail the others
                log.error(f"tagging {len(texts)} texts of {len(batch)} requests failed ({error!r}); running each alone")
                for request, future in batch:
                    try:
                        result = await loop.run_in_executor(self.worker, self.tag, request)
                    except Exception as alone:
                        result = alone
                    if not future.done():
                        (future.set_exception if isinstance(result, Exception) else future.set_result)(result)
                continue
            first = 0
            for request, future in batch:
                if not future.done():  # a client that went away leaves a cancelled future
                    future.set_result(found[first : first + len(request)])
                first += len(request)


def make_app(
    tag: Tag,
    record: Callable[[str, list[dict]], dict],
    model_info: dict[str, Any],
    limits: Limits,
    max_batch: int = MAX_BATCH,
    wait_ms: float = BATCH_WAIT_MS,
):
    """The Starlette app: `tag` finds the entities, `record` makes infer.py's JSON record of a text."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    batcher = Batcher(tag, max_batch, wait_ms)

    async def entities(request):
        try:
            texts = texts_of(await read_body(request, limits), limits)
        except BadRequest as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        try:
            found = await batcher.submit(texts)
        except Exception as error:
            return JSONResponse({"error": f"the model failed on this request: {error}"}, status_code=500)
        return JSONResponse([record(text, text_entities) for text, text_entities in zip(texts, found)])

    async def health(_):
        return JSONResponse({"status": "ok"})

    async def model(_):
        return JSONResponse(model_info)

    async def http_error(_, error: HTTPException):
        allowed = {405: " (POST /v1/entities, GET /health, GET /v1/model)", 404: ": try POST /v1/entities"}
        return JSONResponse({"error": f"{error.detail}{allowed.get(error.status_code, '')}"}, status_code=error.status_code)

    @asynccontextmanager
    async def lifespan(_):
        task = asyncio.create_task(batcher.run())
        yield
        task.cancel()
        batcher.worker.shutdown(wait=True)

    routes = [
        Route("/v1/entities", entities, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/v1/model", model, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)


# Bytes of an oversized body read and dropped before the 413 goes out: a client still sending
# would otherwise find the connection closed under it and never read the answer.
DRAIN_BYTES = 64 * 2**20


async def read_body(request, limits: Limits) -> bytes:
    """The request body, kept no further than the limit: a huge body costs no memory."""
    declared = request.headers.get("content-length")
    too_large = declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes
    chunks, seen = [], 0
    async for chunk in request.stream():
        seen += len(chunk)
        if not too_large and seen <= limits.max_body_bytes:
            chunks.append(chunk)
        if seen > DRAIN_BYTES:
            break
    if too_large or seen > limits.max_body_bytes:
        size = f"body of {declared} bytes" if too_large else f"body over {limits.max_body_bytes} bytes"
        raise BadRequest(413, f"{size}; the limit is {limits.max_body_bytes} (serve.py --max-body-bytes)")
    return b"".join(chunks)


# ---------------------------------------------------------------------------------------------
# A server in a child process (tests, bench/serve.py)


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def options_among(options: Iterable[str], names: Iterable[str]) -> list[str]:
    """Which of the long option `names` the command-line words `options` set, spelt out or
    abbreviated as argparse accepts (`--mod` for `--model`).

    >>> options_among(["--mod", "x", "--max-batch=4", "--port=1"], ["--model", "--port", "--backend"])
    ['--model', '--port']
    """
    given = {word.split("=")[0] for word in options if word.startswith("--") and len(word.split("=")[0]) > 2}
    return sorted(name for name in names if any(name.startswith(option) for option in given))


def start_server(model_dir: str | Path, *options: str, timeout_s: float = 120) -> tuple[subprocess.Popen, str]:
    """serve.py for `model_dir` in a child process on a free loopback port, with serve.py's
    `options` (not --model or --port: this sets them); returns the process and its base URL once
    GET /health answers. Its log goes to a temporary file, never to a pipe that could fill up and
    stall it. RuntimeError with serve.py's own message if it exits first or does not answer within
    `timeout_s` seconds; stop it with terminate() and wait()."""
    if taken := options_among(options, ("--model", "--port")):
        raise ValueError(f"start_server sets {' and '.join(taken)} itself")
    port = free_port()
    serve = Path(__file__).resolve().parent.parent / "serve.py"
    command = [sys.executable, str(serve), "--model", str(model_dir), "--port", str(port), *options]
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    # The server writes to its own handle of the file; this one, only for reading its last words, is
    # closed on the way out.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log_file:
        process = subprocess.Popen(command, cwd=serve.parent, stdout=subprocess.DEVNULL, stderr=log_file)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log_file.seek(0)
                raise RuntimeError(f"serve.py exited with {process.returncode}: {log_file.read().strip()}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as response:
                    if response.status == 200:
                        return process, url
            except OSError:
                time.sleep(0.2)
    process.kill()
    process.wait()
    raise RuntimeError(f"serve.py did not answer GET /health within {timeout_s:.0f} s")
