"""serve.py under clients that misbehave or stay long: a body declared too large, a client that
goes away mid-body, a shutdown that cuts a request off, and a long request beside a short one."""

import asyncio
import json
import signal
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from bert_ner.serving import Batcher, start_server

pytest.importorskip("starlette", reason="serve.py is optional: pip install -r requirements-serve.txt")
pytest.importorskip("uvicorn", reason="serve.py is optional: pip install -r requirements-serve.txt")

LONG_TEXT = ("Anna Schmidt said on Tuesday that Reuters would open a new office in Germany . " * 1300)[:100_000]


def raw_request(url: str, head: str, body: bytes = b"") -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    connection.sendall(head.encode() + body)
    return connection


@pytest.fixture(scope="module")
def logged_server(demo_run, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    process, url = start_server(demo_run, "--max-body-bytes", "2000", log_path=log)
    yield url, log
    process.terminate()
    process.wait(timeout=60)


def read_response(connection) -> str:
    """One whole HTTP response: headers and the body their content-length declares (a single recv
    may return the headers alone)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < declared_length(data):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode()


def declared_length(data: bytes) -> int:
    head = data.partition(b"\r\n\r\n")[0].decode().lower()
    lengths = [line.split(":", 1)[1] for line in head.split("\r\n") if line.startswith("content-length:")]
    return int(lengths[0]) if lengths else 0


def test_a_body_declared_too_large_is_refused_before_it_is_sent(logged_server):
    url, _ = logged_server
    head = "POST /v1/entities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
    with raw_request(url, head) as connection:  # not one byte of the body goes out
        answer = read_response(connection)
    assert answer.startswith("HTTP/1.1 413")
    assert '"body of 50000000 bytes; the limit is 2000 (serve.py --max-body-bytes)"' in answer


def test_a_client_gone_mid_body_is_one_log_line(logged_server):
    url, log = logged_server
    head = "POST /v1/entities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    raw_request(url, head, b'{"texts": ["Anna').close()
    for _ in range(100):
        if "went away" in log.read_text():
            break
        time.sleep(0.1)
    text = log.read_text()
    assert text.count("the client went away while sending its body") == 1
    assert "Traceback" not in text and "ClientDisconnect" not in text


def test_shutdown_timeout_cuts_a_long_request_off_with_a_json_503_and_exits(demo_run, tmp_path):
    log = tmp_path / "serve.log"
    options = ["--shutdown-timeout", "2", "--max-text-chars", "100000", "--max-body-bytes", "5000000"]
    process, url = start_server(demo_run, *options, log_path=log)
    reply = {}

    def send():
        body = json.dumps({"texts": [LONG_TEXT] * 20}).encode()
        request = urllib.request.Request(url + "/v1/entities", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                reply["answer"] = response.status, response.headers["Content-Type"], json.loads(response.read())
        except urllib.error.HTTPError as error:
            reply["answer"] = error.code, error.headers["Content-Type"], json.loads(error.read())

    client = threading.Thread(target=send)
    client.start()
    time.sleep(1.5)  # the request is in the model now
    process.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    process.wait(timeout=60)
    exited_after = time.monotonic() - stopped
    client.join(timeout=60)
    status, content_type, body = reply["answer"]
    assert status == 503 and content_type == "application/json"
    assert body == {"error": "the server is shutting down; send the request again"}
    assert exited_after < 15  # 2 s of grace, then out: not held by the model thread
    text = log.read_text()
    assert "Traceback" not in text and "CancelledError" not in text


def test_a_short_request_is_not_held_behind_a_long_one():
    """The model thread takes turns between batches a step at a time: a short request submitted
    while a long one runs is answered within a few of the long one's steps, not after all of them."""
    steps_done = []

    def tag(texts):
        for _ in range(200 if texts == ["long"] else 1):
            time.sleep(0.02)  # one bounded step of work
            steps_done.append(texts[0])
            yield "model call"
        return [[{"word": text}] for text in texts]

    async def scenario():
        batcher = Batcher(tag, max_batch=8, wait_ms=0)
        worker = asyncio.create_task(batcher.run())
        await asyncio.sleep(0)
        long = asyncio.create_task(batcher.submit(["long"]))
        while steps_done.count("long") < 5:
            await asyncio.sleep(0.01)
        begin, before = time.monotonic(), steps_done.count("long")
        short = await batcher.submit(["short"])
        waited, long_steps_meanwhile = time.monotonic() - begin, steps_done.count("long") - before
        assert short == [[{"word": "short"}]] and not long.done()
        await long
        worker.cancel()
        return waited, long_steps_meanwhile

    waited, long_steps_meanwhile = asyncio.run(scenario())
    assert long_steps_meanwhile <= 3  # deterministic: the turns, not the clock
    assert waited < 2.0  # the whole long request takes 200 steps of 20 ms: at least 4 s
