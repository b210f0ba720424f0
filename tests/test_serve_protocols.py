"""serve.py in the protocols of serving platforms, spoken to by their own clients and request
shapes: Open Inference Protocol v2 (tritonclient), TensorFlow Serving's REST API (the bodies of
its documentation), Label Studio's ML backend (the requests Label Studio sends), Prometheus
/metrics (prometheus_client's parser); liveness and readiness."""

import contextlib
import io
import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from bert_ner.data import TOKENS, read_conll
from bert_ner.serving import start_server
from infer import main as infer
from tests.conftest import NER_CONFIG, REPO

pytest.importorskip("starlette", reason="serve.py is optional: pip install -r requirements-serve.txt")
pytest.importorskip("uvicorn", reason="serve.py is optional: pip install -r requirements-serve.txt")
pytest.importorskip("prometheus_client", reason="serve.py is optional: pip install -r requirements-serve.txt")

SENTENCES = [" ".join(words) for words in read_conll(REPO / "data/demo/test.txt")[TOKENS]][:12]
NAME = "demo"
LS_LABELS = {"PER": "Person", "ORG": "Organization", "LOC": "Location", "MISC": "Miscellaneous"}


def call(url: str, method: str, path: str, body=None, headers=None) -> tuple[int, object]:
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(demo_run):
    process, url = start_server(demo_run, "--model-name", NAME)
    yield url
    process.terminate()
    process.wait(timeout=60)


def infer_output(demo_run, *options) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert infer(["--model", str(demo_run), *options, *SENTENCES]) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def expected(demo_run) -> list[list[dict]]:
    """Each sentence's entities as infer.py --json writes them."""
    found = [json.loads(line)["entities"] for line in infer_output(demo_run, "--json").splitlines()]
    assert sum(map(len, found)) > 3
    return found


# ---------------------------------------------------------------------------------------------
# Open Inference Protocol v2, through Triton's own HTTP client


@pytest.fixture(scope="module")
def triton(server):
    http = pytest.importorskip("tritonclient.http", reason="pip install 'tritonclient[http]'")
    client = http.InferenceServerClient(server.removeprefix("http://"))
    yield http, client
    client.close()


def test_v2_health_and_metadata(triton):
    _, client = triton
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(NAME)
    assert client.get_server_metadata()["name"] == "bert-ner"
    metadata = client.get_model_metadata(NAME)
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert metadata["outputs"] == [{"name": "entities", "datatype": "BYTES", "shape": [-1]}]
    assert "PER" in metadata["parameters"]["entity_types"]


@pytest.mark.parametrize("binary", [True, False])
def test_v2_infer_gives_infer_py_entities(triton, expected, binary):
    http, client = triton
    text = http.InferInput("text", [len(SENTENCES)], "BYTES")
    text.set_data_from_numpy(np.array(SENTENCES, dtype=np.object_), binary_data=binary)
    result = client.infer(NAME, [text], request_id="42", outputs=[http.InferRequestedOutput("entities", binary_data=False)])
    assert result.get_response()["id"] == "42"
    assert [json.loads(s) for s in result.as_numpy("entities")] == expected


def test_v2_unknown_model_is_404(triton, server):
    _, client = triton
    assert not client.is_model_ready("nope")
    status, reply = call(server, "GET", "/v2/models/nope")
    assert status == 404 and reply["error"] == "no model 'nope' here; this server serves 'demo'"


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"{", 400, "invalid JSON"),
        ({"inputs": [{"name": "text", "datatype": "INT64", "shape": [1], "data": [1]}]}, 400, 'expected "text" of BYTES'),
        ({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [None]}]}, 400, "text 0 is null"),
        ({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [300], "data": ["a"] * 300}]}, 413, "300 texts"),
    ],
)
def test_v2_bad_requests_are_4xx_json_errors(server, body, status, message):
    got, reply = call(server, "POST", f"/v2/models/{NAME}/infer", body)
    assert got == status and message in reply["error"]
    assert call(server, "GET", "/v2/health/ready") == (200, {"ready": True})


# ---------------------------------------------------------------------------------------------
# TensorFlow Serving's REST API (KServe v1), with the bodies of its documentation


def test_v1_status_and_metadata(server):
    status, reply = call(server, "GET", f"/v1/models/{NAME}")
    assert status == 200 and reply["model_version_status"][0]["state"] == "AVAILABLE"
    status, reply = call(server, "GET", f"/v1/models/{NAME}/metadata")
    assert status == 200 and reply["model_spec"]["name"] == NAME
    assert "serving_default" in reply["metadata"]["signature_def"]["signature_def"]


@pytest.mark.parametrize(
    "body, key",
    [
        ({"signature_name": "serving_default", "instances": SENTENCES}, "predictions"),
        ({"instances": [{"text": s} for s in SENTENCES]}, "predictions"),
        ({"signature_name": "serving_default", "inputs": {"text": SENTENCES}}, "outputs"),
        ({"inputs": SENTENCES}, "outputs"),
    ],
)
def test_v1_predict_gives_infer_py_entities(server, expected, body, key):
    assert call(server, "POST", f"/v1/models/{NAME}:predict", body) == (200, {key: expected})


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        (f"/v1/models/{NAME}:predict", {"instances": "a"}, 400, '"instances" must be a list'),
        (f"/v1/models/{NAME}:predict", {"examples": []}, 400, "found examples"),
        (f"/v1/models/{NAME}:predict", {"instances": ["a" * 100_001]}, 413, "the limit is 100000"),
        ("/v1/models/nope:predict", {"instances": ["a"]}, 404, "no model 'nope' here"),
    ],
)
def test_v1_bad_requests_are_4xx_json_errors(server, path, body, status, message):
    got, reply = call(server, "POST", path, body)
    assert got == status and message in reply["error"]


# ---------------------------------------------------------------------------------------------
# Label Studio's ML backend, with the requests Label Studio sends (label_studio/ml/api_connector.py)


def test_label_studio_health_and_setup(server):
    assert call(server, "GET", "/health") == (200, {"status": "ok"})
    setup = {"project": "1.1700000000", "schema": NER_CONFIG, "hostname": "http://localhost:8080", "access_token": "x"}
    assert call(server, "POST", "/setup", setup) == (200, {"model_version": NAME})


def test_label_studio_predict_is_infer_py_label_studio_format_with_the_projects_labels(server, demo_run):
    tasks = json.loads(infer_output(demo_run, "--format", "label-studio"))
    for task in tasks:  # what infer.py writes, with the model's types named as the project names them
        for result in task["predictions"][0]["result"]:
            result["value"]["labels"] = [LS_LABELS[label] for label in result["value"]["labels"]]
        task["predictions"][0]["model_version"] = NAME
    request = {
        "tasks": [{"id": i, "data": {"text": text}, "meta": {}, "project": 1} for i, text in enumerate(SENTENCES)],
        "model_version": None,
        "project": "1.1700000000",
        "label_config": NER_CONFIG,
        "params": {"login": None, "password": None, "context": None},
    }
    status, reply = call(server, "POST", "/predict", request)
    assert status == 200 and reply == {"results": [task["predictions"][0] for task in tasks], "model_version": NAME}


@pytest.mark.parametrize(
    "path, body, message",
    [
        ("/predict", {"tasks": [{"data": {"text": "a"}}]}, "the labeling config must be the project's XML"),
        ("/predict", {"tasks": [{"data": {"body": "a"}}], "label_config": NER_CONFIG}, "task 0 has no data.text"),
        ("/setup", {"project": "1", "schema": NER_CONFIG.replace("Person", "Cat").replace("Location", "Dog")
                                                       .replace("Organization", "Bird").replace("Miscellaneous", "Fish")},
         "none of the model's entity types"),
    ],
)  # fmt: skip
def test_label_studio_bad_requests_are_400_json_errors(server, path, body, message):
    status, reply = call(server, "POST", path, body)
    assert status == 400 and message in reply["error"]


# ---------------------------------------------------------------------------------------------
# Operations


def test_metrics_in_prometheus_text_format(server):
    from prometheus_client.parser import text_string_to_metric_families

    call(server, "POST", f"/v1/models/{NAME}:predict", {"instances": SENTENCES[:2]})
    call(server, "POST", f"/v1/models/{NAME}:predict", {"instances": "a"})
    request = urllib.request.Request(server + "/metrics")
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        families = {family.name: family for family in text_string_to_metric_families(response.read().decode())}
    requests = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["bert_ner_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests[("/v1/models/{name}:predict", "200")] >= 1 and requests[("/v1/models/{name}:predict", "400")] >= 1
    assert next(s.value for s in families["bert_ner_model_calls"].samples if s.name.endswith("_total")) >= 1
    assert {"bert_ner_request_seconds", "bert_ner_batch_texts", "bert_ner_queue_texts"} <= set(families)


def test_live_and_ready(server):
    assert call(server, "GET", "/livez") == (200, {"live": True})
    assert call(server, "GET", "/readyz") == (200, {"ready": True})


def test_alive_but_not_ready_while_the_model_loads():
    """Liveness answers at once; readiness, /health and every model route only once loaded."""
    import uvicorn

    from bert_ner.serving import Limits, Model, free_port, make_app

    go = threading.Event()

    def load():
        go.wait(timeout=60)
        return Model(lambda texts: [[] for _ in texts], ["O", "B-PER"], {"model": "fake"})

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(load, "fake", Limits()), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if not server.started:
                time.sleep(0.1)
        assert call(url, "GET", "/livez") == (200, {"live": True}) and call(url, "GET", "/v2/health/live")[0] == 200
        assert call(url, "GET", "/readyz") == (503, {"ready": False}) and call(url, "GET", "/v2/health/ready")[0] == 503
        assert call(url, "GET", "/health") == (503, {"status": "loading"})
        status, reply = call(url, "POST", "/v1/entities", {"text": "a"})
        assert status == 503 and "still loading" in reply["error"]
        go.set()
        for _ in range(300):
            if call(url, "GET", "/readyz")[0] != 200:
                time.sleep(0.1)
        assert call(url, "POST", "/v1/entities", {"text": "a"}) == (200, [{"text": "a", "entities": []}])
    finally:
        go.set()
        server.should_exit = True
        thread.join(timeout=30)


# ---------------------------------------------------------------------------------------------
# The docs' examples


def test_the_kserve_example_runs_serve_py_with_options_it_takes():
    import yaml

    import serve

    service = yaml.safe_load((REPO / "docs/examples/kserve-inferenceservice.yaml").read_text(encoding="utf-8"))
    assert service["apiVersion"] == "serving.kserve.io/v1beta1" and service["kind"] == "InferenceService"
    (container,) = service["spec"]["predictor"]["containers"]
    assert container["command"] == ["python", "serve.py"]
    args = serve.parse_args(container["args"])
    assert args.model_name == "bert-ner" and args.port == container["ports"][0]["containerPort"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"


def test_the_label_studio_example_config_maps_every_conll_type():
    from bert_ner.protocols import label_control, project_mapping

    control = label_control((REPO / "docs/examples/label-studio-ner.xml").read_text(encoding="utf-8"))
    assert project_mapping(["PER", "ORG", "LOC", "MISC"], control) == LS_LABELS
