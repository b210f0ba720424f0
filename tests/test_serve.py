"""serve.py: the real server on a free local port, spoken to over HTTP."""

import json
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from bert_ner.data import TOKENS, read_conll
from bert_ner.serving import start_server
from infer import main as infer
from tests.conftest import REPO

pytest.importorskip("starlette", reason="serve.py is optional: pip install -r requirements-serve.txt")
pytest.importorskip("uvicorn", reason="serve.py is optional: pip install -r requirements-serve.txt")

SENTENCES = [" ".join(words) for words in read_conll(REPO / "data/demo/test.txt")[TOKENS]][:80]
LIMITS = ["--max-texts", "100", "--max-text-chars", "3000", "--max-body-bytes", "200000"]


def start(model_dir, *extra) -> tuple[subprocess.Popen, str]:
    return start_server(model_dir, *LIMITS, *extra)


def call(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, object]:
    request = urllib.request.Request(url + path, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post(url: str, payload) -> tuple[int, object]:
    return call(url, "POST", "/v1/entities", json.dumps(payload).encode())


@pytest.fixture(scope="module")
def server(demo_run):
    process, url = start(demo_run)
    yield url
    process.terminate()
    process.wait(timeout=60)


@pytest.fixture(scope="module")
def expected(demo_run):
    """What infer.py --json writes for SENTENCES, by text."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert infer(["--json", "--model", str(demo_run), *SENTENCES]) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_answers_exactly_what_infer_json_writes(server, expected):
    status, records = post(server, {"texts": SENTENCES})
    assert status == 200 and records == expected
    assert sum(len(r["entities"]) for r in records) > 20


def test_one_text_and_an_empty_one(server, expected):
    assert post(server, {"text": SENTENCES[3]}) == (200, [expected[3]])
    assert post(server, {"texts": ["", "   "]}) == (200, [{"text": "", "entities": []}, {"text": "   ", "entities": []}])


def test_a_long_text_is_read_in_windows(server):
    text = " ".join(SENTENCES[:20])[:2900]
    status, (record,) = post(server, {"text": text})
    assert status == 200 and record["text"] == text and record["entities"]


@pytest.mark.parametrize(
    "method, path, body, status, message",
    [
        ("POST", "/v1/entities", b"{not json", 400, "invalid JSON"),
        ("POST", "/v1/entities", b'["a"]', 400, 'expected {"texts": ["..."]} or {"text": "..."}; found an array'),
        ("POST", "/v1/entities", b"{}", 400, "found an empty object"),
        ("POST", "/v1/entities", b'{"text": "a", "texts": ["b"]}', 400, "found text, texts"),
        ("POST", "/v1/entities", b'{"texts": "a"}', 400, '"texts" must be a list of strings, not a string'),
        ("POST", "/v1/entities", b'{"texts": ["a", null]}', 400, "text 1 is null, not a string"),
        (
            "POST",
            "/v1/entities",
            b'{"text": "Obama \\ud800 Paris"}',
            400,
            "text 0 is not valid Unicode (a lone surrogate at character 6)",
        ),
        ("POST", "/v1/entities", b'{"texts": [' + b"1" * 5000 + b"]}", 400, "invalid JSON"),
        ("POST", "/v1/entities", b"[" * 100000 + b"]" * 100000, 400, "invalid JSON"),
        ("POST", "/v1/entities", json.dumps({"texts": ["a"] * 101}).encode(), 413, "101 texts; the limit is 100 per request"),
        ("POST", "/v1/entities", json.dumps({"text": "a " * 1501}).encode(), 413, "3002 characters; the limit is 3000"),
        (
            "POST",
            "/v1/entities",
            json.dumps({"text": "é" * 150000}).encode(),
            413,
            "the limit is 200000 (serve.py --max-body-bytes)",
        ),
        ("POST", "/v1/entities", b"\xff\xfe", 400, "invalid JSON"),
        ("GET", "/v1/entities", None, 405, "Method Not Allowed"),
        ("POST", "/health", b"{}", 405, "Method Not Allowed"),
        ("GET", "/v2/entities", None, 404, "Not Found: try POST /v1/entities"),
    ],
)
def test_a_bad_request_is_a_4xx_with_a_json_error(server, method, path, body, status, message):
    got_status, reply = call(server, method, path, body)
    assert got_status == status and message in reply["error"]
    assert call(server, "GET", "/health") == (200, {"status": "ok"})  # the worker lives on


def test_model_describes_itself(server, demo_run):
    status, info = call(server, "GET", "/v1/model")
    metrics = json.loads((demo_run / "metrics.json").read_text())
    assert status == 200 and info["backend"] == "torch" and info["context_tokens"] == 0
    assert "B-PER" in info["labels"] and info["metrics"] == metrics and info["base_model"] == "(trained from scratch)"
    assert info["calibrated"] is True and info["min_score"] == 0.0  # calibrated, no precision asked: nothing left out
    assert info["min_score_for_precision"] is None


def test_concurrent_requests_are_all_answered_correctly_and_in_order(server, expected):
    """32 clients at once, each with its own slice of texts: batched together, split back right."""
    slices = [(i % 40, i % 40 + 1 + i % 7) for i in range(32)]
    with ThreadPoolExecutor(max_workers=32) as pool:
        replies = list(pool.map(lambda s: post(server, {"texts": SENTENCES[s[0] : s[1]]}), slices))
    for (first, end), (status, records) in zip(slices, replies):
        assert status == 200 and records == expected[first:end]


def test_sigterm_finishes_the_requests_in_flight(demo_run, expected):
    process, url = start(demo_run, "--batch-size", "4")
    reply = {}
    client = threading.Thread(target=lambda: reply.update(answer=post(url, {"texts": SENTENCES})))
    client.start()
    time.sleep(0.3)  # the request is in the model now
    process.send_signal(signal.SIGTERM)
    client.join(timeout=60)
    assert reply["answer"] == (200, expected)
    assert process.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has finished


def test_without_the_web_stack_serve_py_says_what_to_install(demo_run, capsys, monkeypatch):
    import importlib.util

    import serve

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else find_spec(name, *a))
    assert serve.main(["--model", str(demo_run)]) == 2
    assert "uvicorn not installed: serve.py needs a web server: pip install -r requirements-serve.txt" in capsys.readouterr().err


@pytest.mark.parametrize(
    "options, found",
    [
        (["--max-batch", "64", "--batch-wait-ms=2"], []),
        (["--model", "x"], ["--model"]),
        (["--mod", "x"], ["--model"]),  # argparse takes an abbreviation of a long option
        (["--port=9"], ["--port"]),
        (["--back", "onnx", "--po", "1"], ["--backend", "--port"]),
        (["--", "-m"], []),
    ],
)
def test_options_among_finds_reserved_options_spelt_out_or_abbreviated(options, found):
    from bert_ner.serving import options_among

    assert options_among(options, ["--model", "--port", "--backend"]) == found


def test_one_failing_request_does_not_fail_the_others_in_its_batch():
    """The model fails on one request's text: that request gets the error, the rest their answers."""
    import asyncio

    from bert_ner.serving import Batcher

    def tag(texts):
        if "boom" in texts:
            raise RuntimeError("cannot tag boom")
        return [[{"word": text}] for text in texts]

    async def scenario():
        batcher = Batcher(tag, max_batch=64, wait_ms=50)
        worker = asyncio.create_task(batcher.run())
        await asyncio.sleep(0.01)
        results = await asyncio.gather(
            batcher.submit(["a", "b"]), batcher.submit(["boom"]), batcher.submit(["c"]), return_exceptions=True
        )
        worker.cancel()
        return results

    good, bad, other = asyncio.run(scenario())
    assert good == [[{"word": "a"}], [{"word": "b"}]] and other == [[{"word": "c"}]]
    assert isinstance(bad, RuntimeError)


def test_a_port_in_use_is_one_line_before_the_model_loads(demo_run, capsys):
    import serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve.main(["--model", str(demo_run), "--port", str(port)]) == 2
    assert f"--host 127.0.0.1 --port {port}: cannot listen there" in capsys.readouterr().err
