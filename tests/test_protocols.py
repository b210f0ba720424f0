"""bert_ner/protocols.py: each protocol's request -> texts and entities -> response, by tables."""

import json
import struct

import pytest

from bert_ner.protocols import (
    BadRequest,
    entity_types,
    label_control,
    label_mapping,
    label_studio_response,
    label_studio_texts,
    project_mapping,
    v1_response,
    v1_texts,
    v2_response,
    v2_texts,
)
from tests.conftest import NER_CONFIG

ENTITY = {"entity_group": "PER", "word": "Anna", "start": 0, "end": 4, "score": 0.9}


def binary(*texts: str) -> bytes:
    return b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)


def with_binary(data: bytes) -> tuple[bytes, str]:
    """A v2 body of one text tensor in binary, and its Inference-Header-Content-Length."""
    tensor = {"name": "text", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(data)}}
    header = json.dumps({"inputs": [tensor]}).encode()
    return header + data, str(len(header))


def v2_body(data=None, **tensor) -> bytes:
    return json.dumps(
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(data or [])], "data": data, **tensor}]}
    ).encode()


@pytest.mark.parametrize(
    "body, header, texts",
    [
        (v2_body(["a", "b"]), None, ["a", "b"]),
        (v2_body(["a"], shape=[1, 1]), None, ["a"]),
        (
            json.dumps({"id": "7", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["x"]}]}).encode(),
            None,
            ["x"],
        ),
    ],
)
def test_v2_texts_of_json_tensors(body, header, texts):
    assert v2_texts(body, header)[0] == texts


def test_v2_binary_tensor_data_as_tritonclient_sends_it():
    data = binary("Anna", "Wien é")
    header = json.dumps(
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": len(data)}}]}
    ).encode()
    body = header + data
    assert v2_texts(body, str(len(header))) == (["Anna", "Wien é"], None)


@pytest.mark.parametrize(
    "body, header, message",
    [
        (b"{", None, "invalid JSON"),
        (b"[]", None, 'expected {"inputs"'),
        (json.dumps({"inputs": []}).encode(), None, "expected one input tensor"),
        (v2_body(["a"], name="input_ids"), None, "input 'input_ids' of BYTES: expected \"text\" of BYTES"),
        (v2_body(["a"], datatype="INT64"), None, "of INT64"),
        (v2_body(["a"], shape=[3]), None, "shape [3] for 1 texts"),
        (v2_body(None), None, 'has no "data" list'),
        (b"{}", "99", "Inference-Header-Content-Length '99'"),
        (*with_binary(b"\x09\x00\x00\x00abc"), "cut off at byte 0"),
    ],
)
def test_v2_bad_requests_say_what_is_wrong(body, header, message):
    with pytest.raises(BadRequest, match=None) as error:
        v2_texts(body, header)
    assert error.value.status == 400 and message in str(error.value)


def test_v2_response_holds_each_texts_entities_as_a_json_string():
    response = v2_response("demo", "7", [[ENTITY], []])
    assert response["id"] == "7" and response["model_name"] == "demo"
    (output,) = response["outputs"]
    assert output["name"] == "entities" and output["datatype"] == "BYTES" and output["shape"] == [2]
    assert [json.loads(s) for s in output["data"]] == [[ENTITY], []]
    assert "id" not in v2_response("demo", None, [])


@pytest.mark.parametrize(
    "request_body, texts, columnar",
    [
        ({"instances": ["a", "b"]}, ["a", "b"], False),
        ({"signature_name": "serving_default", "instances": [{"text": "a"}]}, ["a"], False),
        ({"inputs": ["a"]}, ["a"], True),
        ({"inputs": {"text": ["a", "b"]}}, ["a", "b"], True),
        ({"instances": [None]}, [None], False),  # not a string: refused with the other checks on texts
    ],
)
def test_v1_texts_of_tf_serving_requests(request_body, texts, columnar):
    assert v1_texts(json.dumps(request_body).encode()) == (texts, columnar)


@pytest.mark.parametrize(
    "request_body, message",
    [
        ({}, "found an empty object"),
        ({"instances": ["a"], "inputs": ["b"]}, "found instances, inputs"),
        ({"instances": "a"}, '"instances" must be a list of texts, not a string'),
        ({"instances": [{"sentence": "a"}]}, 'instance 0 has sentence; expected {"text": "..."}'),
        ({"inputs": {"sentence": ["a"]}}, '"inputs" names sentence'),
    ],
)
def test_v1_bad_requests_say_what_is_wrong(request_body, message):
    with pytest.raises(BadRequest) as error:
        v1_texts(json.dumps(request_body).encode())
    assert error.value.status == 400 and message in str(error.value)


def test_v1_response_rows_or_columns():
    assert v1_response([[ENTITY]], columnar=False) == {"predictions": [[ENTITY]]}
    assert v1_response([[ENTITY]], columnar=True) == {"outputs": [[ENTITY]]}


def test_entity_types_of_iob_labels():
    assert entity_types(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC"]) == ["PER", "LOC", "MISC"]


@pytest.mark.parametrize(
    "types, labels, mapping",
    [
        (["PER", "ORG", "LOC", "MISC"], ["Person", "Organization", "Location", "Miscellaneous"],
         {"PER": "Person", "ORG": "Organization", "LOC": "Location", "MISC": "Miscellaneous"}),
        (["PER", "LOC"], ["PER", "Person"], {"PER": "PER"}),  # the exact name first; LOC has none
        (["person"], ["PERSON"], {"person": "PERSON"}),
        (["PRODUCT"], ["Product", "Prod"], {"PRODUCT": "Product"}),
        (["PER"], [], {}),
    ],
)  # fmt: skip
def test_label_mapping(types, labels, mapping):
    assert label_mapping(types, {label: label for label in labels}) == mapping


def test_a_label_alias_is_what_the_result_names():
    assert label_mapping(["PER"], {"Person": "PER"}) == {"PER": "PER"}


def test_label_control_of_the_ner_template():
    control = label_control(NER_CONFIG)
    assert (control.from_name, control.to_name, control.field) == ("label", "text", "text")
    assert list(control.labels) == ["Person", "Organization", "Location", "Miscellaneous"]


@pytest.mark.parametrize(
    "config, message",
    [
        (None, "not null"),
        ("<View", "not XML"),
        ('<View><Choices name="c" toName="t"/><Text name="t" value="$x"/></View>', "not an NER project"),
    ],
)
def test_a_labeling_config_that_is_not_ner_is_refused(config, message):
    with pytest.raises(BadRequest) as error:
        label_control(config)
    assert message in str(error.value)


def test_no_matching_label_is_refused_with_both_lists():
    labels = '<Labels name="label" toName="text"><Label value="Cat"/><Label value="Dog"/></Labels>'
    config = f'<View>{labels}<Text name="text" value="$text"/></View>'
    with pytest.raises(BadRequest, match=r"none of the model's entity types \(PER, LOC\) matches .*\(Cat, Dog\)"):
        project_mapping(["PER", "LOC"], label_control(config))


def test_label_studio_predict_of_a_custom_text_field():
    config = NER_CONFIG.replace('value="$text"', 'value="$body"')
    body = json.dumps({"tasks": [{"id": 1, "data": {"body": "Anna"}}], "label_config": config, "project": "1.1"}).encode()
    texts, control = label_studio_texts(body)
    assert texts == ["Anna"] and control.field == "body"
    response = label_studio_response([[ENTITY, {**ENTITY, "entity_group": "DATE"}]], control, {"PER": "Person"}, "demo")
    (prediction,) = response["results"]
    assert response["model_version"] == "demo" and prediction["model_version"] == "demo" and prediction["score"] == 0.9
    assert prediction["result"] == [
        {
            "from_name": "label",
            "to_name": "text",
            "type": "labels",
            "value": {"start": 0, "end": 4, "text": "Anna", "labels": ["Person"]},
            "score": 0.9,
        }
    ]


def test_a_task_without_the_configs_field_is_refused():
    body = json.dumps({"tasks": [{"data": {"content": "x"}}], "label_config": NER_CONFIG}).encode()
    with pytest.raises(BadRequest, match=r"task 0 has no data.text"):
        label_studio_texts(body)
