"""export.py and infer.py's ONNX backends, on the demo model."""

import json
import shutil
import sys

import pytest

import export
from infer import main as infer
from ner.data import TOKENS, read_conll
from tests.conftest import REPO

for package in ("onnx", "onnxscript", "onnxruntime"):
    pytest.importorskip(package, reason="ONNX support is optional: pip install -r requirements-onnx.txt")


@pytest.fixture(scope="module")
def exported(demo_run, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("export") / "model"
    shutil.copytree(demo_run, model_dir, ignore=shutil.ignore_patterns("checkpoint-*"))
    assert export.main(["--model", str(model_dir)]) == 0
    return model_dir


def test_export_writes_fp32_and_int8(exported):
    assert (exported / "onnx" / "model.onnx").stat().st_size > 0
    assert (exported / "onnx" / "model.int8.onnx").stat().st_size < (exported / "onnx" / "model.onnx").stat().st_size


def test_the_export_is_bert_ner_s_own_but_a_user_file_beside_it_is_not(exported, tmp_path):
    """A rerun of train.py may replace the export with the model it belongs to, never a file of the user's."""
    from ner.checkpoints import check_replaceable
    from ner.errors import UserError

    copy = tmp_path / "model"
    shutil.copytree(exported, copy)
    check_replaceable(copy)
    (copy / "onnx" / "deploy-notes.txt").write_text("mine")
    with pytest.raises(UserError, match="onnx/deploy-notes.txt"):
        check_replaceable(copy)


def test_export_reports_parity_and_fails_when_fp32_differs(exported, capsys, monkeypatch):
    assert export.main(["--model", str(exported)]) == 0
    out = capsys.readouterr().out
    fp32 = next(line for line in out.splitlines() if line.startswith("fp32:"))
    same, total = fp32.rsplit("same tag on ", 1)[1].split(" ")[0].split("/")
    assert same == total and "max |logit difference|" in fp32
    assert any(line.startswith("int8:") for line in out.splitlines())
    monkeypatch.setattr(export, "FP32_TOLERANCE", -1.0)  # no export can meet this
    assert export.main(["--model", str(exported)]) == 1
    assert "does not match PyTorch" in capsys.readouterr().out


def entities(capsys, model_dir, backend: str, texts: list[str]) -> list[list[tuple]]:
    assert infer(["--json", "--model", str(model_dir), "--backend", backend, *texts]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [[(e["entity_group"], e["start"], e["end"]) for e in r["entities"]] for r in records]


def test_onnx_fp32_gives_the_same_entities_as_pytorch(exported, capsys):
    texts = [" ".join(words) for words in read_conll(REPO / "data/demo/test.txt")[TOKENS]]
    torch_entities = entities(capsys, exported, "torch", texts)
    assert sum(map(len, torch_entities)) > 100
    assert entities(capsys, exported, "onnx", texts) == torch_entities
    int8 = entities(capsys, exported, "onnx-int8", texts)
    agree = sum(a == b for a, b in zip(int8, torch_entities))
    assert agree >= 0.9 * len(texts)


def test_onnx_backend_without_an_export_says_how_to_make_one(demo_run, capsys):
    assert infer(["--model", str(demo_run), "--backend", "onnx", "x"]) == 2
    assert f"no ONNX model at {demo_run}/onnx/model.onnx: run python export.py --model {demo_run} first" in capsys.readouterr().err


def test_missing_onnxruntime_says_what_to_install(exported, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    assert infer(["--model", str(exported), "--backend", "onnx", "x"]) == 2
    assert "needs the onnxruntime package: pip install -r requirements-onnx.txt" in capsys.readouterr().err


def test_onnx_threads_reach_the_session(exported):
    from ner.modeling import load_trained

    model, _ = load_trained(str(exported), backend="onnx-int8", threads=1)
    assert model.session.get_session_options().intra_op_num_threads == 1
