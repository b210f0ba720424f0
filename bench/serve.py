"""Load test of serve.py on this machine: a bounded number of concurrent clients, each sending one
CoNLL-2003 test sentence per request over loopback, against infer.py's own batched rate; in
bert-ner's API (POST /v1/entities) and in the Open Inference Protocol v2 (POST /v2/models/NAME/infer).

    python bench/serve.py --model DIR [--backends torch onnx-int8] [--protocols entities v2] [--clients 32]
                          [--limit 2000] [--repeats 3] [--shuffle] [--serve-options="--max-batch 64 --batch-wait-ms 2"]

Writes bench/results/serve-DIR.json. For each backend: starts serve.py (its defaults, or
--serve-options) on a free port, warms it up in each protocol, then, --repeats times, sends
--limit sentences in each protocol, alternating their order from one round to the next (A B, B A,
...) so that a drift of the machine's speed falls on both alike. Each send comes from --clients
concurrent clients (each keeps its connection open and waits for its answer before sending the
next). Reported per protocol: the median round's requests/s (= sentences/s) with the slowest and
fastest rounds, that round's p50/p95/p99 latency, and errors over all rounds; then infer.py's
batched loop on the same sentences in this process (Tagger.tag, as infer.py runs it), for the
ratio. The clients share the CPU with the server, as they would on one machine, so they are made
cheap: asyncio connections on one thread that write ready-made HTTP/1.1 requests and read the
answers, rather than a thread and an HTTP library per client.
"""

import argparse
import asyncio
import json
import random
import shlex
import statistics
import time
import urllib.parse
from pathlib import Path

from results import write_result

from bert_ner import Tagger
from bert_ner.data import TOKENS, read_conll
from bert_ner.inference import BATCH_SIZE
from bert_ner.serving import options_among, start_server
from bert_ner.tagger import TEXTS_PER_CHUNK

MODEL_NAME = "bench"  # the name serve.py serves the model under (--model-name)


def http_request(host: str, text: str, protocol: str) -> bytes:
    if protocol == "v2":
        path = f"/v2/models/{MODEL_NAME}/infer"
        body = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [text]}]}).encode()
    else:
        path, body = "/v1/entities", json.dumps({"text": text}).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def answered(body: bytes, protocol: str) -> bool:
    """Whether a 200's body answers one text."""
    reply = json.loads(body)
    return len(reply["outputs"][0]["data"]) == 1 if protocol == "v2" else len(reply) == 1


async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response (serve.py always sends Content-Length)."""
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def client(url: str, work, results: list[tuple[float, bool]], protocol: str) -> None:
    """Sends the texts it takes from `work` one at a time over one kept-open connection; a broken
    connection counts as an error and is opened again."""
    address = urllib.parse.urlsplit(url)
    connection = None
    for text in work:
        begin = time.perf_counter()
        try:
            if connection is None:
                connection = await asyncio.open_connection(address.hostname, address.port)
            reader, writer = connection
            writer.write(http_request(address.netloc, text, protocol))
            status, body = await answer(reader)
            ok = status == 200 and answered(body, protocol)
        except (OSError, ValueError, IndexError, KeyError, asyncio.IncompleteReadError):
            connection, ok = None, False
        results.append((time.perf_counter() - begin, ok))
    if connection is not None:
        connection[1].close()


def load(url: str, texts: list[str], clients: int, protocol: str) -> dict:
    results: list[tuple[float, bool]] = []
    work = iter(texts)  # shared: each client takes the next text when it is free

    async def all_clients():
        await asyncio.gather(*(client(url, work, results, protocol) for _ in range(clients)))

    start_time = time.perf_counter()
    asyncio.run(all_clients())
    seconds = time.perf_counter() - start_time
    latencies = sorted(latency for latency, _ in results)
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "rate": len(texts) / seconds,
        "p50": cuts[49],
        "p95": cuts[94],
        "p99": cuts[98],
        "errors": sum(not ok for _, ok in results),
    }


def median_round(runs: list[dict]) -> dict:
    """The round of median rate (its latencies with it), the slowest and fastest rates, all errors."""
    ranked = sorted(runs, key=lambda run: run["rate"])
    middle = ranked[(len(ranked) - 1) // 2]
    return {
        **middle,
        "rate_low": ranked[0]["rate"],
        "rate_high": ranked[-1]["rate"],
        "rounds": [run["rate"] for run in runs],
        "errors": sum(run["errors"] for run in runs),
    }


def batched_rate(model: str, backend: str, texts: list[str], batch_size: int = BATCH_SIZE) -> float:
    """Sentences/s of infer.py's own loop: chunks of TEXTS_PER_CHUNK, in model calls of at most batch_size."""
    tagger = Tagger.load(model, backend)  # as serve.py: a GPU for torch where there is one
    tagger.tag(texts[:8])  # warm-up
    begin = time.perf_counter()
    for first in range(0, len(texts), TEXTS_PER_CHUNK):
        tagger.tag(texts[first : first + TEXTS_PER_CHUNK], batch_size)
    return len(texts) / (time.perf_counter() - begin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a directory train.py wrote (exported for onnx-int8)")
    parser.add_argument("--conll", default="../shared/data/conll2003/test.txt", help="the sentences to send")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx-int8"], help="serve.py backends, one run each")
    parser.add_argument(
        "--protocols",
        nargs="+",
        default=["entities", "v2"],
        choices=("entities", "v2"),
        help="APIs to send to, each in every round",
    )
    parser.add_argument("--machine", default=None, help="where this ran, as the docs say it (default: this machine)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients, each waiting for its answer")
    parser.add_argument("--limit", type=int, default=2000, help="sentences sent per round and protocol")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per backend, each sending in every protocol")
    parser.add_argument(
        "--shuffle",
        action="store_true",
        help="send the sentences in a random order (seed 0), as unrelated clients would, not the file's "
        "(where neighbours are often of similar length); infer.py's rate is measured on the same order",
    )
    parser.add_argument(
        "--serve-options",
        default="",
        help='serve.py options, in one string: --serve-options="--max-batch 64" (not --model, --port or --backend)',
    )
    args = parser.parse_args()
    if taken := options_among(shlex.split(args.serve_options), ("--backend", "--model", "--port", "--model-name")):
        parser.error(
            f"--serve-options: leave out {', '.join(sorted(taken))}; the benchmark sets them (--backends, --model, a free port)"
        )

    protocols = list(dict.fromkeys(args.protocols))
    texts = [" ".join(words) for words in read_conll(Path(args.conll))[TOKENS]][: args.limit]
    if args.shuffle:
        random.Random(0).shuffle(texts)
    options = f"; serve.py {args.serve_options}" if args.serve_options else ""
    order = "shuffled" if args.shuffle else "in the file's order"
    print(f"{len(texts)} single-sentence requests, {order}, from {args.clients} clients; model {args.model}{options}\n")
    print(
        "| backend | API | requests/s | slowest-fastest round | p50 | p95 | p99 | errors | infer.py batched sentences/s | share |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for backend in args.backends:
        batched = batched_rate(args.model, backend, texts)
        options = ["--backend", backend, "--model-name", MODEL_NAME, *shlex.split(args.serve_options)]
        process, url = start_server(args.model, *options)
        rounds: dict[str, list[dict]] = {protocol: [] for protocol in protocols}
        try:
            for protocol in protocols:
                load(url, texts[:64], args.clients, protocol)  # warm-up
            for round_number in range(args.repeats):
                for protocol in protocols[:: -1 if round_number % 2 else 1]:
                    rounds[protocol].append(load(url, texts, args.clients, protocol))
        finally:
            process.terminate()
            process.wait(timeout=60)
        for protocol, runs in rounds.items():
            row = {"backend": backend, "api": protocol, **median_round(runs), "infer_batched_rate": batched}
            rows.append(row)
            print(
                f"| {backend} | {protocol} | {row['rate']:.1f} | {row['rate_low']:.1f}-{row['rate_high']:.1f} "
                f"| {row['p50'] * 1000:.0f} ms | {row['p95'] * 1000:.0f} ms | {row['p99'] * 1000:.0f} ms "
                f"| {row['errors']} | {batched:.1f} | {row['rate'] / batched:.0%} |",
                flush=True,
            )
    figures = {
        "requests": len(texts),
        "clients": args.clients,
        "repeats": args.repeats,
        "order": order,
        "serve_options": args.serve_options,
        "rows": rows,
    }
    write_result(f"serve-{Path(args.model).name}", figures, args.machine)


if __name__ == "__main__":
    main()
