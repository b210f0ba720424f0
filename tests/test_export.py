"""export.py and infer.py's ONNX backends, on the demo model."""

import errno
import json
import shutil
import sys
from pathlib import Path

import pytest

import export
from bert_ner.data import TOKENS, read_conll
from infer import main as infer
from tests.conftest import REPO

for package in ("onnx", "onnxscript", "onnxruntime"):
    pytest.importorskip(package, reason="ONNX support is optional: pip install -r requirements-export.txt")


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
    from bert_ner.checkpoints import check_replaceable
    from bert_ner.errors import UserError

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
    texts = demo_sentences()
    torch_entities = entities(capsys, exported, "torch", texts)
    assert sum(map(len, torch_entities)) > 100
    assert entities(capsys, exported, "onnx", texts) == torch_entities
    int8 = entities(capsys, exported, "onnx-int8", texts)
    agree = sum(a == b for a, b in zip(int8, torch_entities))
    assert agree >= 0.9 * len(texts)


def test_onnx_texts_tagged_together_get_what_each_gets_alone(exported):
    from bert_ner import Tagger
    from tests.test_infer import MIXED_TEXTS, assert_tagged_together_as_alone

    assert_tagged_together_as_alone(Tagger.load(str(exported), "onnx"), MIXED_TEXTS)


@pytest.mark.parametrize(
    "name, fragments",
    [
        ("onnx/model.int8.onnx", ["ONNX Runtime cannot load it (", "export again (python export.py --model"]),
        ("config.json", ["cannot read it (", "copy the model directory again"]),
        ("tokenizer.json", ["cannot read it (", "copy the model directory again"]),
    ],
)
def test_a_damaged_file_of_an_export_is_a_one_line_error(exported, tmp_path, capsys, name, fragments):
    model = tmp_path / "model"
    shutil.copytree(exported, model)
    damaged = model / name
    damaged.write_bytes(damaged.read_bytes()[:100])  # a copy that stopped early
    assert infer(["--model", str(model), "--backend", "onnx-int8", "x"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {damaged}: ") and all(f in error for f in fragments) and "Traceback" not in error


def read_only(names: set[str], original):
    """A stand-in for Path.mkdir or Path.open (`original`) that fails as a read-only file system
    does for paths named `names`: every mkdir, and every open to write."""
    making = original is Path.mkdir

    def call(self, *args, **kwargs):
        mode = str(args[0] if args else kwargs.get("mode", "r"))
        if self.name in names and (making or set(mode) & set("wax+")):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return original(self, *args, **kwargs)

    return call


def no_room(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "model.int8.onnx")


@pytest.mark.parametrize(
    "case, expected",
    [
        ("read-only, no export yet", "onnx (Read-only file system); nothing was exported"),
        ("writable onnx/, read-only model dir", ".bert-ner-files (Read-only file system); nothing was exported"),
        ("disk full midway", "model.int8.onnx (No space left on device); nothing was exported"),
    ],
)
def test_an_export_that_cannot_be_written_is_one_line_and_loses_nothing(exported, tmp_path, capsys, monkeypatch, case, expected):
    from bert_ner import onnx_backend

    model = tmp_path / "model"
    shutil.copytree(exported, model)
    if case.startswith("read-only"):
        shutil.rmtree(model / "onnx")
        monkeypatch.setattr(Path, "mkdir", read_only({"onnx"}, Path.mkdir))
    elif case.startswith("writable"):
        monkeypatch.setattr(Path, "open", read_only({".bert-ner-files"}, Path.open))
    else:
        monkeypatch.setattr(onnx_backend, "quantize", no_room)
    before = {path.name: path.read_bytes() for path in model.rglob("*") if path.is_file()}
    assert export.main(["--model", str(model)]) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and len(error.splitlines()) == 1
    assert error.startswith("error: --model: cannot write ") and expected in error
    assert {path.name: path.read_bytes() for path in model.rglob("*") if path.is_file()} == before  # nothing half-written


def test_onnx_backend_without_an_export_says_how_to_make_one(demo_run, capsys):
    assert infer(["--model", str(demo_run), "--backend", "onnx", "x"]) == 2
    assert (
        f"no ONNX model at {demo_run}/onnx/model.onnx: run python export.py --model {demo_run} first" in capsys.readouterr().err
    )


def test_missing_onnxruntime_says_what_to_install(exported, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    assert infer(["--model", str(exported), "--backend", "onnx", "x"]) == 2
    assert "needs the onnxruntime package: pip install -r requirements-onnx.txt" in capsys.readouterr().err


def test_onnx_threads_reach_the_session(exported):
    from bert_ner.onnx_backend import OnnxModel

    assert OnnxModel(str(exported), "onnx-int8", threads=1).session.get_session_options().intra_op_num_threads == 1


def test_the_export_has_eager_attention_and_its_sessions_run_without_the_slower_fusions(exported, tmp_path):
    """Eager attention exports as plain MatMul and Softmax, without SDPA's mask ops; a session runs
    the int8 graph with Add and LayerNormalization apart (SLOWER_FUSIONS: a misspelt fusion name
    would be ignored silently, so the optimized graph itself is read)."""
    import onnx
    import onnxruntime

    from bert_ner.onnx_backend import onnx_path, session

    operators = {node.op_type for node in onnx.load(onnx_path(exported, "onnx")).graph.node}
    assert "Softmax" in operators and "IsNaN" not in operators
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    session(onnx_path(exported, "onnx-int8"), options=options)
    operators = {node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node}
    assert "LayerNormalization" in operators and "SkipLayerNormalization" not in operators


def demo_sentences() -> list[str]:
    return [" ".join(words) for words in read_conll(REPO / "data/demo/test.txt")[TOKENS]]


def test_onnx_gives_pytorchs_entities_on_long_texts_and_in_context(exported, tmp_path, capsys):
    """Texts of many windows (every test sentence on one line, far beyond the model's 128
    sub-tokens), and a model trained with document context reading --documents: the same
    entities from ONNX fp32 as from PyTorch."""
    import yaml

    sentences = demo_sentences()
    long_texts = [" ".join(sentences[i : i + 40]) for i in range(0, len(sentences), 40)]
    torch_entities = entities(capsys, exported, "torch", long_texts)
    assert sum(map(len, torch_entities)) > 100
    assert entities(capsys, exported, "onnx", long_texts) == torch_entities

    in_context = tmp_path / "in-context"
    shutil.copytree(exported, in_context)
    saved = yaml.safe_load((in_context / "train_config.yaml").read_text())
    saved["data"]["context_tokens"] = 16  # read each sentence between its neighbours, as such a model was trained
    (in_context / "train_config.yaml").write_text(yaml.safe_dump(saved))
    lines = sentences[:30] + [""] + sentences[30:60]
    documents = tmp_path / "news.txt"
    documents.write_text("\n".join(lines) + "\n")
    outputs = {}
    for backend in ("torch", "onnx"):
        assert infer(["--json", "--documents", "--model", str(in_context), "--backend", backend, "--file", str(documents)]) == 0
        outputs[backend] = capsys.readouterr().out
    assert outputs["onnx"] == outputs["torch"] and outputs["torch"].count('"entity_group"') > 20


ONNX_RUN = """
import sys
import infer
code = infer.main(sys.argv[1:])
heavy = sorted({name.split(".")[0] for name in sys.modules} & {"torch", "transformers", "datasets", "accelerate"})
print("heavy modules:", heavy, file=sys.stderr)
raise SystemExit(code)
"""


def test_the_onnx_backends_import_neither_torch_nor_transformers(exported):
    import subprocess

    for backend in ("onnx", "onnx-int8"):
        run = subprocess.run(
            [sys.executable, "-c", ONNX_RUN, "--model", str(exported), "--backend", backend, "Anna Schmidt flew to Paris ."],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert "heavy modules: []" in run.stderr


def extra_requirements(extra: str) -> list[str]:
    """What `pip install bert-ner[extra]` asks for: the base dependencies and the extra's, following
    the extras that name bert-ner itself (pyproject.toml)."""
    import tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted, todo = list(project["dependencies"]), [extra]
    while todo:
        for line in project["optional-dependencies"][todo.pop()]:
            requirement = Requirement(line)
            if requirement.name == project["name"]:
                todo += sorted(requirement.extras)
            else:
                wanted.append(line)
    return wanted


def distributions_of(requirements: Path) -> set[str]:
    """The distributions a requirements file names (following -r, and `-e .[extra]` through
    pyproject.toml), with everything they need in turn."""
    from importlib import metadata

    from packaging.requirements import Requirement

    names, todo = set(), []
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            todo += distributions_of(requirements.parent / line[3:].strip())
        elif line.startswith("-e .["):
            todo += [Requirement(text).name for text in extra_requirements(line[len("-e .[") : -1])]
        elif line:
            todo.append(Requirement(line).name)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in names:
            continue
        names.add(name)
        for text in metadata.distribution(name).requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):  # this platform, no extras
                todo.append(requirement.name)
    return names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """bert-ner built as a wheel from this clone, as `pip install .` builds it (with this
    environment's setuptools, so that no network is needed)."""
    import subprocess

    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return next(out.glob("bert_ner-*.whl"))


def environment_with(path: Path, distributions: set[str], wheel: Path) -> Path:
    """A virtual environment at `path` that holds `distributions` (linked from this environment,
    so the test needs no network) and bert-ner installed from `wheel`; its python."""
    import subprocess
    import venv
    from importlib import metadata

    venv.create(path, with_pip=False)
    site = next(path.glob("lib/python*/site-packages"))
    for name in distributions:
        for entry in {Path(str(file)).parts[0] for file in metadata.distribution(name).files or []}:
            source = Path(metadata.distribution(name).locate_file(entry))
            if entry != ".." and source.exists() and not (site / entry).exists():
                (site / entry).symlink_to(source)
    python = path / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)]
    run = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return python


TAG_WITH_THE_PACKAGE = """
import json, sys
from bert_ner import Tagger
tagger = Tagger.load(sys.argv[1], backend=sys.argv[2], device="cpu")
for text, entities in zip(sys.argv[3:], tagger.pipe(sys.argv[3:])):
    print(json.dumps({"text": text, "entities": [entity.as_dict() for entity in entities]}, ensure_ascii=False))
import bert_ner
print(bert_ner.__file__, file=sys.stderr)
"""


def test_the_installed_package_tags_as_infer_py_from_outside_the_clone(exported, wheel, tmp_path, capsys):
    """pip install . into a fresh environment, then Tagger.load in a directory outside the clone, on
    a copy of the model alone: exactly infer.py --json's entities, PyTorch and ONNX int8."""
    import subprocess

    model = tmp_path / "elsewhere" / "model"
    shutil.copytree(exported, model)  # the model directory alone, far from the clone and its configs
    python = environment_with(
        tmp_path / "env", distributions_of(REPO / "requirements-onnx.txt") | distributions_of(REPO / "requirements.txt"), wheel
    )
    texts = demo_sentences()[:40]
    for backend in ("torch", "onnx-int8"):
        assert infer(["--json", "--model", str(exported), "--backend", backend, *texts]) == 0
        expected = capsys.readouterr().out
        command = [str(python), "-c", TAG_WITH_THE_PACKAGE, str(model), backend, *texts]
        run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert run.stdout == expected and '"entity_group"' in expected
        assert str(tmp_path / "env") in run.stderr  # the installed copy, not the clone


def test_an_export_runs_with_requirements_onnx_alone(exported, wheel, tmp_path):
    """A virtual environment that holds only what requirements-onnx.txt names (bert-ner[onnx], and
    what those need) runs infer.py on an export, as a deployment image without torch would. The
    packages are linked from this environment, so the test needs no network."""
    import subprocess

    wanted = distributions_of(REPO / "requirements-onnx.txt")
    assert not wanted & {"torch", "transformers"}
    environment = tmp_path / "deploy"
    python = environment_with(environment, wanted, wheel)
    command = [
        str(python),
        "infer.py",
        "--json",
        "--model",
        str(exported),
        "--backend",
        "onnx-int8",
        "Anna Schmidt flew to Paris .",
    ]
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["text"] == "Anna Schmidt flew to Paris ."
    api = [str(python), "-c", TAG_WITH_THE_PACKAGE, str(exported), "onnx-int8", "Anna Schmidt flew to Paris ."]
    run_api = subprocess.run(api, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run_api.returncode == 0, run_api.stderr
    assert run_api.stdout == run.stdout  # the installed package, outside the clone, gives infer.py's record
    blocked = subprocess.run([str(python), "-c", "import torch"], capture_output=True, timeout=60)
    assert blocked.returncode != 0  # the environment really is without torch
