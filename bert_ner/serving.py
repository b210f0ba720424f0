"""The HTTP service behind serve.py: a Starlette app whose requests share batched model calls, in
bert-ner's own API and in the protocols serving platforms speak (bert_ner.protocols).

    POST /v1/entities            {"texts": ["...", ...]} or {"text": "..."} -> a JSON list with one
                                 record per text, in order, as `infer.py --json` writes them
    GET  /health                 {"status": "ok"} once the model is loaded (503 before)
    GET  /v1/model               labels, base model, context, backend, and the model's metrics.json
    /v2/...                      Open Inference Protocol v2 (KServe v2, Triton): health, metadata, infer
    /v1/models/NAME[:predict]    TensorFlow Serving's REST API (KServe v1): status, metadata, predict
    POST /setup, POST /predict   Label Studio's ML backend (with GET /health)
    GET  /metrics                Prometheus: requests by route and status, latency, batch sizes,
                                 queue depth, model calls
    GET  /livez, GET /readyz     liveness (the process answers, also while the model loads) and
                                 readiness (the model is loaded)

The model loads on the model thread after the server starts listening. Requests that arrive
together are tagged as one batch (Batcher): the first waits at most `wait_ms` for others, until
the batch holds `max_batch` texts or more (a request is never split). A batch is tagged in steps
of bounded work (a text read, a model call: bert_ner.inference.Reader.steps), and the model
thread takes turns between the batches in flight, so that a short request is not held behind a
long one. Every bad request is a 4xx with a JSON {"error": ...} that says what was wrong and the
limit; a failure inside the model is a 500 with a one-line JSON error, never a traceback, and the
worker lives on.
"""

import asyncio
import inspect
import logging
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bert_ner import protocols
from bert_ner.inference import MODEL_CALL
from bert_ner.protocols import BadRequest, json_type, parse_json
from bert_ner.spans import json_record

log = logging.getLogger("bert_ner")

# texts -> each text's entities, in order; or a generator of steps that returns them (Tagger.tag_steps)
Tag = Callable[[list[str]], Any]


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

ENTITIES_EXPECTED = '{"texts": ["..."]} or {"text": "..."}'


def texts_of(body: bytes, limits: Limits) -> list[str]:
    """The texts of a POST /v1/entities body, or BadRequest saying what is wrong and the limit."""
    if len(body) > limits.max_body_bytes:
        raise BadRequest(413, f"body of {len(body)} bytes; the limit is {limits.max_body_bytes} (serve.py --max-body-bytes)")
    request = parse_json(body, ENTITIES_EXPECTED)
    if not isinstance(request, dict) or len(request) != 1 or not ({"text", "texts"} & set(request)):
        found = ", ".join(map(str, request)) if isinstance(request, dict) else json_type(request)
        raise BadRequest(400, f"expected {ENTITIES_EXPECTED}; found {found or 'an empty object'}")
    texts = [request["text"]] if "text" in request else request["texts"]
    if not isinstance(texts, list):
        raise BadRequest(400, f'"texts" must be a list of strings, not {json_type(texts)}')
    return checked(texts, limits)


def checked(texts: list, limits: Limits) -> list[str]:
    """The texts of any protocol's request, or BadRequest for one that is not a string, not valid
    Unicode or too long, or for too many."""
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


# ---------------------------------------------------------------------------------------------
# The model thread and the batches


class ModelThread:
    """One thread that runs the model's work in order while the event loop keeps serving. A daemon,
    so that a step still running when the server stops (SIGTERM after --shutdown-timeout) does
    not hold the process back."""

    def __init__(self):
        self.work: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self.serve, name="model", daemon=True).start()

    async def run(self, function: Callable, *args) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.work.put((function, args, future, loop))
        return await future

    def serve(self) -> None:
        while True:
            function, args, future, loop = self.work.get()
            try:
                outcome, result = "set_result", function(*args)
            except BaseException as error:  # handed to the waiting request, never lost on this thread
                outcome, result = "set_exception", error
            try:
                loop.call_soon_threadsafe(settle, future, outcome, result)
            except RuntimeError:  # the loop has closed: nobody waits any more
                pass


def settle(future: asyncio.Future, outcome: str, value: Any) -> None:
    if not future.done():  # a request whose client went away leaves a cancelled future
        getattr(future, outcome)(value)


def stepwise(tag: Tag, texts: list[str]):
    """`tag`'s work on `texts` as steps: its own, when it gives a generator, else one step."""
    result = tag(texts)
    if inspect.isgenerator(result):
        result = yield from result
    return result


def advance(steps) -> tuple[bool, Any]:
    """One step: (False, what the step did), or (True, the result) when there were none left."""
    try:
        return False, next(steps)
    except StopIteration as stop:
        return True, stop.value


class ShuttingDown(Exception):
    pass


class NoAnswer(Exception):
    """A request that was right but gets no entities: the model failed (500), the server is stopping (503)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Job:
    """A batch of requests (texts, future) tagged together, and its steps."""

    requests: list[tuple[list[str], asyncio.Future]]
    steps: Any = None
    texts: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.texts = [text for request, _ in self.requests for text in request]

    def abandoned(self) -> bool:
        return all(future.done() for _, future in self.requests)


class Batcher:
    """Collects the texts of requests that arrive together into one job of `tag`, and runs the
    jobs in flight on the model thread a step at a time, taking turns."""

    def __init__(self, tag: Tag, max_batch: int, wait_ms: float, thread: ModelThread | None = None):
        self.tag, self.max_batch, self.wait_s = tag, max_batch, wait_ms / 1000
        self.queue: asyncio.Queue | None = None
        self.thread = thread or ModelThread()
        self.jobs: deque[Job] = deque()
        self.waiting = 0  # texts submitted and not yet answered (the queue depth)
        self.on_job: Callable[[Job], None] = lambda job: None
        self.on_step: Callable[[str], None] = lambda step: None

    async def submit(self, texts: list[str]) -> list[list[dict]]:
        future = asyncio.get_running_loop().create_future()
        self.waiting += len(texts)
        try:
            await self.queue.put((texts, future))
            return await future
        finally:
            self.waiting -= len(texts)

    async def run(self) -> None:
        self.queue = asyncio.Queue()
        while True:
            if not self.jobs:
                self.start(await self.gather())
            while not self.queue.empty():  # new requests take turns with the jobs in flight at once
                self.start(self.take_queued())
            job = self.jobs.popleft()
            if job.abandoned():
                continue
            try:
                done, value = await self.thread.run(advance, job.steps)
            except Exception as error:
                self.failed(job, error)
                continue
            if not done:
                self.on_step(value)
                self.jobs.append(job)
                continue
            first = 0
            for request, future in job.requests:
                settle(future, "set_result", value[first : first + len(request)])
                first += len(request)

    def start(self, requests: list) -> None:
        job = Job(requests)
        job.steps = stepwise(self.tag, job.texts)
        self.on_job(job)
        self.jobs.append(job)

    async def gather(self) -> list:
        """The next batch: the first request, and those that come within wait_s of it."""
        loop = asyncio.get_running_loop()
        batch = [await self.queue.get()]
        count, deadline = len(batch[0][0]), loop.time() + self.wait_s
        while count < self.max_batch and (left := deadline - loop.time()) > 0:
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except asyncio.TimeoutError:  # not the built-in TimeoutError before Python 3.11
                break
            count += len(batch[-1][0])
        return batch

    def take_queued(self) -> list:
        batch = [self.queue.get_nowait()]
        count = len(batch[0][0])
        while count < self.max_batch and not self.queue.empty():
            batch.append(self.queue.get_nowait())
            count += len(batch[-1][0])
        return batch

    def failed(self, job: Job, error: Exception) -> None:
        """The model failed: each request again alone, so that one cannot fail the others."""
        if len(job.requests) == 1:
            settle(job.requests[0][1], "set_exception", error)
            return
        log.error(f"tagging {len(job.texts)} texts of {len(job.requests)} requests failed ({error!r}); running each alone")
        for request in job.requests:
            self.start([request])

    def stop(self) -> None:
        """Fail every request not yet answered with ShuttingDown."""
        pending = [future for job in self.jobs for _, future in job.requests]
        while self.queue is not None and not self.queue.empty():
            pending.append(self.queue.get_nowait()[1])
        for future in pending:
            settle(future, "set_exception", ShuttingDown())
        self.jobs.clear()


# ---------------------------------------------------------------------------------------------
# The app


@dataclass
class Model:
    """What the app serves, once loaded: `tag`, the entity types' labels, and GET /v1/model's description."""

    tag: Tag
    labels: list[str]
    info: dict[str, Any]


class Metrics:
    """The Prometheus metrics of one app, in a registry of its own."""

    def __init__(self, batcher: Batcher):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bert_ner_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram("bert_ner_request_seconds", "time to answer a request", ["route"], registry=self.registry)
        self.batch = Histogram(
            "bert_ner_batch_texts",
            "texts tagged together",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.model_calls = Counter("bert_ner_model_calls", "model calls made", registry=self.registry)
        depth = Gauge("bert_ner_queue_texts", "texts submitted and not yet answered", registry=self.registry)
        depth.set_function(lambda: batcher.waiting)
        batcher.on_job = lambda job: self.batch.observe(len(job.texts))
        batcher.on_step = lambda step: self.model_calls.inc() if step == MODEL_CALL else None


def server_version() -> str:
    try:
        return metadata.version("bert-ner")
    except metadata.PackageNotFoundError:
        return "unknown"


def make_app(
    load: Callable[[], Model],
    name: str,
    limits: Limits,
    max_batch: int = MAX_BATCH,
    wait_ms: float = BATCH_WAIT_MS,
    on_load_error: Callable[[Exception], None] = lambda failure: log.error(f"error: {failure}"),
):
    """The Starlette app serving the model `load` gives (called on the model thread once the server
    listens) under the name `name`; `on_load_error` hears when loading fails (by default, it is logged)."""
    from contextlib import asynccontextmanager

    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    thread = ModelThread()
    loaded: dict[str, Model] = {}  # "model" once loaded
    batcher = Batcher(lambda texts: loaded["model"].tag(texts), max_batch, wait_ms, thread)
    metrics = Metrics(batcher)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def route(path: str, method: str, needs_model: bool = True, model_name: bool = False):
        """A Route whose endpoint is measured, answers 503 until the model is loaded (needs_model),
        404 for a model name not served (model_name), and turns BadRequest into its 4xx."""

        def decorate(endpoint):
            async def measured(request):
                begin = time.perf_counter()
                if needs_model and "model" not in loaded:
                    response = error(503, "the model is still loading; retry when GET /readyz answers 200")
                elif model_name and request.path_params["name"] != name:
                    response = error(404, f"no model {request.path_params['name']!r} here; this server serves {name!r}")
                else:
                    try:
                        response = await endpoint(request)
                    except (BadRequest, NoAnswer) as refused:
                        response = error(refused.status, str(refused))
                    except ClientDisconnect:
                        log.info(f"{method} {request.url.path}: the client went away while sending its body")
                        response = Response(status_code=400)  # nobody reads it
                metrics.requests.labels(path, str(response.status_code)).inc()
                metrics.latency.labels(path).observe(time.perf_counter() - begin)
                return response

            return Route(path, measured, methods=[method])

        return decorate

    async def tagged(texts: list[str]) -> list[list[dict]]:
        """Each text's entities; BadRequest-like answers for a failed model or a server stopping."""
        try:
            return await batcher.submit(texts)
        except (asyncio.CancelledError, ShuttingDown):  # cut off by --shutdown-timeout, or stopped with it
            raise NoAnswer(503, "the server is shutting down; send the request again") from None
        except Exception as failure:
            raise NoAnswer(500, f"the model failed on this request: {failure}") from None

    # bert-ner's own API
    async def entities(request):
        texts = texts_of(await read_body(request, limits), limits)
        found = await tagged(texts)
        return JSONResponse([json_record(text, text_entities) for text, text_entities in zip(texts, found)])

    async def health(_):
        if "model" not in loaded:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def model_info(_):
        return JSONResponse(loaded["model"].info)

    # Open Inference Protocol v2
    async def v2_live(_):
        return JSONResponse({"live": True})

    async def v2_ready(_):
        ready = "model" in loaded
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def v2_server(_):
        return JSONResponse(protocols.v2_server_metadata(server_version()))

    async def v2_model(_):
        return JSONResponse(protocols.v2_model_metadata(name, loaded["model"].labels))

    async def v2_model_ready(_):
        return JSONResponse({"name": name, "ready": True})

    async def v2_infer(request):
        body = await read_body(request, limits)
        texts, request_id = protocols.v2_texts(body, request.headers.get("inference-header-content-length"))
        found = await tagged(checked(texts, limits))
        return JSONResponse(protocols.v2_response(name, request_id, found))

    # TensorFlow Serving's REST API
    async def v1_status(_):
        return JSONResponse(protocols.v1_status())

    async def v1_metadata(_):
        return JSONResponse(protocols.v1_metadata(name, loaded["model"].labels))

    async def v1_predict(request):
        texts, columnar = protocols.v1_texts(await read_body(request, limits))
        return JSONResponse(protocols.v1_response(await tagged(checked(texts, limits)), columnar))

    # Label Studio's ML backend
    async def ls_setup(request):
        setup = parse_json(await read_body(request, limits), '{"project": "...", "schema": "<View>...</View>"}')
        if isinstance(setup, dict) and setup.get("schema") is not None:
            protocols.project_mapping(protocols.entity_types(loaded["model"].labels), protocols.label_control(setup["schema"]))
        return JSONResponse({"model_version": name})

    async def ls_predict(request):
        texts, control = protocols.label_studio_texts(await read_body(request, limits))
        mapping = protocols.project_mapping(protocols.entity_types(loaded["model"].labels), control)
        found = await tagged(checked(texts, limits))
        return JSONResponse(protocols.label_studio_response(found, control, mapping, name))

    # Operations
    async def prometheus(_):
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        route("/v1/entities", "POST")(entities),
        route("/health", "GET", needs_model=False)(health),
        route("/v1/model", "GET")(model_info),
        route("/v2/health/live", "GET", needs_model=False)(v2_live),
        route("/v2/health/ready", "GET", needs_model=False)(v2_ready),
        route("/v2", "GET", needs_model=False)(v2_server),
        route("/v2/models/{name}", "GET", model_name=True)(v2_model),
        route("/v2/models/{name}/ready", "GET", model_name=True)(v2_model_ready),
        route("/v2/models/{name}/infer", "POST", model_name=True)(v2_infer),
        route("/v1/models/{name}:predict", "POST", model_name=True)(v1_predict),
        route("/v1/models/{name}", "GET", model_name=True)(v1_status),
        route("/v1/models/{name}/metadata", "GET", model_name=True)(v1_metadata),
        route("/setup", "POST")(ls_setup),
        route("/predict", "POST")(ls_predict),
        route("/metrics", "GET", needs_model=False)(prometheus),
        route("/livez", "GET", needs_model=False)(v2_live),
        route("/readyz", "GET", needs_model=False)(v2_ready),
    ]

    async def http_error(_, failure: HTTPException):
        allowed = {405: " (python serve.py --help lists the routes)", 404: ": try POST /v1/entities"}
        return error(failure.status_code, f"{failure.detail}{allowed.get(failure.status_code, '')}")

    async def load_model() -> None:
        try:
            loaded["model"] = await thread.run(load)
        except Exception as failure:
            on_load_error(failure)
            return
        log.info(f"model loaded: serving {name}")

    @asynccontextmanager
    async def lifespan(_):
        loading = asyncio.create_task(load_model())
        batching = asyncio.create_task(batcher.run())
        yield
        loading.cancel()
        batching.cancel()
        batcher.stop()
        await asyncio.sleep(0.1)  # requests that were just told to stop send their answers

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)


# A body over the limit but within this is read and dropped before the 413: most clients (urllib,
# requests) send the whole body before reading, and a connection closed under them is a reset, not
# an answer. A larger one is refused at once, before the client sends it.
DRAIN_LIMIT_BYTES = 16 * 1024 * 1024


async def read_body(request, limits: Limits) -> bytes:
    """The request body, or BadRequest 413 once it is known to be over the limit: from its declared
    Content-Length, at once when that is over DRAIN_LIMIT_BYTES, else after reading and dropping
    the rest; likewise when the bytes received pass the limit. ClientDisconnect when the client goes away."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        if int(declared) <= DRAIN_LIMIT_BYTES:
            async for _ in request.stream():
                pass
        raise BadRequest(413, f"body of {declared} bytes; the limit is {limits.max_body_bytes} (serve.py --max-body-bytes)")
    chunks, seen = [], 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > DRAIN_LIMIT_BYTES:
            break
        if seen <= limits.max_body_bytes:
            chunks.append(chunk)
    if seen > limits.max_body_bytes:
        raise BadRequest(
            413, f"body over {limits.max_body_bytes} bytes; the limit is {limits.max_body_bytes} (serve.py --max-body-bytes)"
        )
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


def start_server(
    model_dir: str | Path, *options: str, timeout_s: float = 120, log_path: Path | None = None
) -> tuple[subprocess.Popen, str]:
    """serve.py for `model_dir` in a child process on a free loopback port, with serve.py's
    `options` (not --model or --port: this sets them); returns the process and its base URL once
    GET /health answers. Its log goes to `log_path`, or a temporary file, never to a pipe that
    could fill up and stall it. RuntimeError with serve.py's own message if it exits first or does not answer within
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
    opened = open(log_path, "w+", encoding="utf-8") if log_path else tempfile.TemporaryFile("w+", encoding="utf-8")
    with opened as log_file:
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
