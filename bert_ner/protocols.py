"""What serving platforms send and expect, translated to and from bert-ner's texts and entities.

Each protocol is two pure functions, a request -> its texts and the texts' entities -> the
response, so that serve.py runs one code path (the same checks, batching and model) for all:

1. Open Inference Protocol v2 (KServe v2, Triton): a BYTES tensor of texts in, a BYTES tensor
   out holding one JSON string per text (infer.py --json's entity list). JSON or the binary
   tensor extension (tritonclient's default) in; always JSON out.
2. TensorFlow Serving's REST API (also KServe v1): `instances` (texts, or {"text": ...}
   objects) -> `predictions`, or the columnar `inputs` -> `outputs`; one entity list per text.
3. Label Studio's ML backend: tasks and the project's labeling config in, one prediction per
   task out, in the result format `infer.py --format label-studio` writes, with the model's
   entity types mapped to the project's labels (`label_mapping`).

A request that does not fit raises BadRequest (a 4xx status and a one-line message).
"""

import json
import struct
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any

from bert_ner.spans import label_studio_prediction

TENSOR_IN, TENSOR_OUT = "text", "entities"  # the v2 tensor names the model metadata gives
MODEL_VERSION = "1"  # one model per server: the version the v1 and v2 metadata give
TEXT_FIELD = "text"  # the field of a TF Serving instance object holding its text


class BadRequest(Exception):
    """A request serve.py refuses: `status` (4xx) and a message saying what is wrong."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


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


def parse_json(body: bytes, expected: str) -> Any:
    """The JSON value of a body, or BadRequest naming what was `expected`."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:  # also bad UTF-8, 5,000-digit numbers, arrays nested 100,000 deep
        raise BadRequest(400, f"invalid JSON ({error}); expected {expected}") from None


# ---------------------------------------------------------------------------------------------
# 1. Open Inference Protocol v2

V2_EXPECTED = f'{{"inputs": [{{"name": "{TENSOR_IN}", "datatype": "BYTES", "shape": [N], "data": ["...", ...]}}]}}'


def v2_texts(body: bytes, header_length: str | None) -> tuple[list, str | None]:
    """The texts of a v2 infer request and its id. `header_length` is the
    Inference-Header-Content-Length header: the JSON part's size when binary tensor data follows."""
    binary = b""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise BadRequest(400, f"Inference-Header-Content-Length {header_length!r} is not a size within the body")
        body, binary = body[: int(header_length)], body[int(header_length) :]
    request = parse_json(body, V2_EXPECTED)
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise BadRequest(400, f"expected {V2_EXPECTED}")
    if len(request["inputs"]) != 1 or not isinstance(request["inputs"][0], dict):
        raise BadRequest(400, f'expected one input tensor, "{TENSOR_IN}"; found {len(request["inputs"])} inputs')
    tensor = request["inputs"][0]
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if name != TENSOR_IN or datatype != "BYTES":
        raise BadRequest(400, f'input {name!r} of {datatype}: expected "{TENSOR_IN}" of BYTES (see GET /v2/models/NAME)')
    size = (tensor.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        texts = bytes_elements(binary[:size] if isinstance(size, int) else b"")
    elif isinstance(tensor.get("data"), list):
        texts = tensor["data"]
    else:
        raise BadRequest(400, f'input "{TENSOR_IN}" has no "data" list and no binary data')
    if not isinstance(shape, list) or shape not in ([len(texts)], [len(texts), 1], [1, len(texts)]):
        raise BadRequest(400, f'input "{TENSOR_IN}" has shape {shape} for {len(texts)} texts; expected [{len(texts)}]')
    request_id = request.get("id")
    return texts, request_id if isinstance(request_id, str) else None


def bytes_elements(data: bytes) -> list:
    """The elements of a BYTES tensor in the binary extension: each a 4-byte little-endian length,
    then that many bytes of UTF-8."""
    texts, at = [], 0
    while at < len(data):
        if at + 4 > len(data) or at + 4 + (size := struct.unpack_from("<I", data, at)[0]) > len(data):
            raise BadRequest(400, f"binary tensor data is cut off at byte {at}")
        try:
            texts.append(data[at + 4 : at + 4 + size].decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest(400, f"text {len(texts)} of the binary tensor data is not UTF-8") from None
        at += 4 + size
    return texts


def v2_response(model: str, request_id: str | None, found: list[list[dict]]) -> dict:
    """A v2 infer response: output TENSOR_OUT holds each text's entity list as a JSON string."""
    response = {
        "model_name": model,
        "model_version": MODEL_VERSION,
        "outputs": [
            {
                "name": TENSOR_OUT,
                "datatype": "BYTES",
                "shape": [len(found)],
                "data": [json.dumps(entities, ensure_ascii=False) for entities in found],
            }
        ],
    }
    return {"id": request_id, **response} if request_id is not None else response


def v2_model_metadata(model: str, labels: list[str]) -> dict:
    """GET /v2/models/{name}: the tensors, and the entity types the JSON strings can hold."""
    return {
        "name": model,
        "versions": [MODEL_VERSION],
        "platform": "bert-ner",
        "inputs": [{"name": TENSOR_IN, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": TENSOR_OUT, "datatype": "BYTES", "shape": [-1]}],
        "parameters": {"entity_types": entity_types(labels)},
    }


def v2_server_metadata(version: str) -> dict:
    return {"name": "bert-ner", "version": version, "extensions": ["binary_tensor_data"]}


def entity_types(labels: list[str]) -> list[str]:
    """The entity types of IOB labels, in order: [O, B-PER, I-PER, B-LOC] -> [PER, LOC]."""
    return list(dict.fromkeys(label.split("-", 1)[-1] for label in labels if label != "O"))


# ---------------------------------------------------------------------------------------------
# 2. TensorFlow Serving's REST API (KServe v1)

V1_EXPECTED = '{"instances": ["...", ...]} or {"instances": [{"text": "..."}, ...]} or {"inputs": ["...", ...]}'


def v1_texts(body: bytes) -> tuple[list, bool]:
    """The texts of a :predict request, and whether it was columnar (`inputs`, answered as `outputs`)."""
    request = parse_json(body, V1_EXPECTED)
    if not isinstance(request, dict) or len({"instances", "inputs"} & set(request)) != 1:
        found = ", ".join(map(str, request)) if isinstance(request, dict) else json_type(request)
        raise BadRequest(400, f"expected {V1_EXPECTED}; found {found or 'an empty object'}")
    columnar = "inputs" in request
    values = request["inputs"] if columnar else request["instances"]
    if columnar and isinstance(values, dict):
        if set(values) != {TEXT_FIELD}:
            raise BadRequest(400, f'"inputs" names {", ".join(values) or "nothing"}; the one input is "{TEXT_FIELD}"')
        values = values[TEXT_FIELD]
    if not isinstance(values, list):
        raise BadRequest(400, f'"{"inputs" if columnar else "instances"}" must be a list of texts, not {json_type(values)}')
    return [instance_text(value, i) for i, value in enumerate(values)], columnar


def instance_text(value: Any, i: int) -> Any:
    """An instance's text: the value itself, or an object's TEXT_FIELD (checked as text later)."""
    if not isinstance(value, dict):
        return value
    if set(value) != {TEXT_FIELD}:
        raise BadRequest(400, f'instance {i} has {", ".join(value) or "no fields"}; expected {{"{TEXT_FIELD}": "..."}}')
    return value[TEXT_FIELD]


def v1_response(found: list[list[dict]], columnar: bool) -> dict:
    return {"outputs" if columnar else "predictions": found}


def v1_status() -> dict:
    """GET /v1/models/{name}: TF Serving's model status of a loaded model."""
    return {
        "model_version_status": [
            {"version": MODEL_VERSION, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


def v1_metadata(model: str, labels: list[str]) -> dict:
    """GET /v1/models/{name}/metadata: the one signature, a string in and the entities out."""
    tensor = {"dtype": "DT_STRING", "tensor_shape": {"dim": [{"size": "-1"}]}}
    signature = {
        "inputs": {TEXT_FIELD: {**tensor, "name": TEXT_FIELD}},
        "outputs": {TENSOR_OUT: {**tensor, "name": TENSOR_OUT}},
        "method_name": "bert_ner/entities",
    }
    return {
        "model_spec": {"name": model, "signature_name": "", "version": MODEL_VERSION},
        "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}, "entity_types": entity_types(labels)},
    }


# ---------------------------------------------------------------------------------------------
# 3. Label Studio's ML backend


@dataclass(frozen=True)
class LabelControl:
    """A <Labels name=from_name toName=to_name> control over <Text name=to_name value="$field">,
    and its label values (each with its alias, when it has one)."""

    from_name: str
    to_name: str
    field: str
    labels: dict[str, str]  # label value -> what a result names it (its alias, else the value)


def label_control(config: Any) -> LabelControl:
    """The first <Labels> control over a <Text> in a Label Studio labeling config (XML)."""
    if not isinstance(config, str) or not config.strip():
        raise BadRequest(400, f"the labeling config must be the project's XML, not {json_type(config)}")
    try:
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError as error:
        raise BadRequest(400, f"the labeling config is not XML ({error})") from None
    texts = {tag.get("name"): tag.get("value", "") for tag in root.iter("Text")}
    for control in root.iter("Labels"):
        target = control.get("toName")
        if target in texts and texts[target].startswith("$"):
            labels = {label.get("value"): label.get("alias") or label.get("value") for label in control.iter("Label")}
            return LabelControl(control.get("name"), target, texts[target][1:], {k: v for k, v in labels.items() if k})
    raise BadRequest(400, 'the labeling config has no <Labels toName="..."> over a <Text value="$field">: not an NER project')


def label_mapping(types: list[str], labels: dict[str, str]) -> dict[str, str]:
    """Which project label each of the model's entity types becomes: the label of that name, else
    the one with that alias, else the one that matches ignoring case, else one that starts with it
    (PER -> Person, ORG -> Organization); a type with none is left out of the predictions."""
    mapping = {}
    for kind in types:
        folded = kind.casefold()
        for matches in (
            lambda value: value == kind,
            lambda value: labels[value] == kind,
            lambda value: value.casefold() == folded,
            lambda value: value.casefold().startswith(folded),
        ):
            if found := [value for value in labels if matches(value)]:
                mapping[kind] = labels[found[0]]
                break
    return mapping


def project_mapping(types: list[str], control: LabelControl) -> dict[str, str]:
    """label_mapping, or BadRequest when none of the model's types has a label in the project."""
    if not (mapping := label_mapping(types, control.labels)):
        raise BadRequest(
            400,
            f'none of the model\'s entity types ({", ".join(types)}) matches a label of <Labels name="{control.from_name}"> '
            f"({', '.join(control.labels) or 'none'}); name the labels after them",
        )
    return mapping


LS_EXPECTED = '{"tasks": [{"data": {"text": "..."}}, ...], "label_config": "<View>...</View>"}'


def label_studio_texts(body: bytes) -> tuple[list, LabelControl]:
    """The texts of a /predict request's tasks, and the control to predict for."""
    request = parse_json(body, LS_EXPECTED)
    if not isinstance(request, dict) or not isinstance(request.get("tasks"), list):
        raise BadRequest(400, f"expected {LS_EXPECTED}")
    control = label_control(request.get("label_config"))
    texts = []
    for i, task in enumerate(request["tasks"]):
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or control.field not in data:
            raise BadRequest(
                400, f'task {i} has no data.{control.field} (the labeling config reads <Text value="${control.field}">)'
            )
        texts.append(data[control.field])
    return texts, control


def label_studio_response(found: list[list[dict]], control: LabelControl, mapping: dict[str, str], model_version: str) -> dict:
    """/predict's answer: one prediction per task, as infer.py --format label-studio writes them,
    with the entity types renamed to the project's labels."""
    results = [
        label_studio_prediction(
            [{**e, "entity_group": mapping[e["entity_group"]]} for e in entities if e["entity_group"] in mapping],
            model_version,
            control.from_name,
            control.to_name,
        )
        for entities in found
    ]
    return {"results": results, "model_version": model_version}
