"""What people naturally do next gets one line that says what to do, never a traceback."""

import shutil

import pytest

from infer import main as infer
from tests.conftest import SCRATCH
from train import main as train


def errors(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_cuda_without_cuda_is_one_line(demo_run, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert infer(["--model", str(demo_run), "--device", "cuda", "Anna ."]) == 2
    (error,) = errors(capsys)
    assert error.startswith("error: --device cuda: PyTorch") and "use --device cpu" in error


def test_onnx_on_cuda_is_one_line(demo_run, capsys):
    assert infer(["--model", str(demo_run), "--backend", "onnx", "--device", "cuda", "Anna ."]) == 2
    assert errors(capsys) == [
        "error: --device cuda: the ONNX backends run on CPU; use --backend torch for a GPU, or --device cpu"
    ]


def test_a_config_file_given_without_config_flag(capsys):
    assert train(["configs/demo.yaml"]) == 2
    assert errors(capsys) == [
        "error: 'configs/demo.yaml' looks like a config file, and a config file needs --config: --config configs/demo.yaml"
    ]


def test_unquoted_words_are_one_text_each_and_infer_says_how_to_quote(demo_run, capsys):
    assert infer(["--model", str(demo_run), "--json", "Anna", "Schmidt", "works", "for", "Reuters"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 5
    assert captured.err.count("note: each argument is one text") == 1
    assert 'quote it: python infer.py "Anna Schmidt works for Reuters"' in captured.err
    assert infer(["--model", str(demo_run), "--json", "Anna Schmidt", "Reuters"]) == 0  # meant as texts: no note
    assert "note:" not in capsys.readouterr().err


def test_a_run_directory_with_only_a_checkpoint_points_at_it(demo_run, tmp_path, capsys):
    run = tmp_path / "ckpt"
    shutil.copytree(demo_run, run / "checkpoint-64")
    shutil.copytree(demo_run, run / "checkpoint-8")
    assert infer(["--model", str(run), "x"]) == 2
    assert errors(capsys) == [
        f"error: no model in {run}/; it holds a checkpoint of an unfinished run: --model {run / 'checkpoint-64'}"
    ]


@pytest.mark.parametrize("name", ["runs/nothere", "./nothere", "tests/nothere"])
def test_a_mistyped_local_path_is_no_such_directory_not_the_hub(name, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "tests").mkdir()
    assert infer(["--model", name, "x"]) == 2
    assert errors(capsys) == [
        f"error: --model {name}: no such directory; check the path (a Hub id would not start with a local directory)"
    ]


def test_a_model_that_predicts_no_entities_says_why(tmp_path, caplog):
    """The issue's case: 500 sentences, one epoch (16 steps): the tiny model has learned only that most words are O."""
    args = [
        "--config",
        SCRATCH,
        f"training.output_dir={tmp_path / 'quick'}",
        "training.num_train_epochs=1",
        "data.max_train_samples=500",
        "training.per_device_train_batch_size=32",
    ]
    assert train(args) == 0
    assert "on test, so its F1 is 0. This usually means it has not learned yet: 16 training steps are too few" in caplog.text
    assert "train longer" in caplog.text


def test_texts_are_never_silently_ignored(demo_run, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("Anna Schmidt .\n")
    assert infer(["--model", str(demo_run), "--file", str(texts), "Reuters ."]) == 2
    assert errors(capsys) == [f"error: give TEXT or --file, not both (--file {texts} and 1 TEXT); put the texts in the file"]
    assert infer(["--model", str(demo_run), "Anna Schmidt .", "-"]) == 2
    assert errors(capsys) == ['error: TEXT "-" reads stdin and must come alone; give the other texts on stdin too']


def test_checkpoints_fresh_never_deletes_a_user_file(tmp_path, capsys):
    output = tmp_path / "out"
    (output / "checkpoint-5").mkdir(parents=True)
    (output / "notes.md").write_text("mine")
    assert train(["--config", SCRATCH, f"training.output_dir={output}", "checkpoints.fresh=true"]) == 2
    assert "holds files that train.py did not write ('notes.md')" in errors(capsys)[0]
    assert (output / "notes.md").read_text() == "mine" and (output / "checkpoint-5").is_dir()


def test_a_mistyped_path_that_could_be_a_hub_id_says_both(tmp_path, capsys, monkeypatch):
    """`runs/nothere` in a fresh clone (no runs/ yet) reads like a Hub id; the message covers both readings."""
    import huggingface_hub.constants

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    assert infer(["--model", "runs/nothere", "x"]) == 2
    (error,) = errors(capsys)
    assert error.startswith(
        "error: --model: 'runs/nothere' is no local directory, and the Hugging Face Hub, where it would be a model id,"
    )
    assert "check the path" in error


@pytest.mark.parametrize(
    "command, hint",
    [
        ("infer", "or use --backend onnx-int8 with an export"),
        ("export", "export.py needs PyTorch: pip install -r requirements.txt -r requirements-export.txt"),
        ("train", "training needs PyTorch"),
    ],
)
def test_a_deployment_without_torch_gets_one_line(demo_run, capsys, monkeypatch, command, hint):
    """An environment made from requirements-onnx.txt has no torch or transformers: the PyTorch
    backend, export.py and train.py say what is missing and what to do."""
    import importlib.util

    import export

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in ("torch", "transformers") else find_spec(name, *a)
    )
    main = {"infer": infer, "export": export.main, "train": train}[command]
    args = {"infer": ["--model", str(demo_run), "Anna ."], "export": ["--model", str(demo_run)], "train": ["--config", SCRATCH]}
    assert main(args[command]) == 2
    (error,) = errors(capsys)
    assert error.startswith("error: torch, transformers not installed: ") and hint in error


def test_insights_without_matplotlib_gets_one_line(demo_run, capsys, monkeypatch):
    """A deployment environment (requirements-onnx.txt) has no matplotlib for the plots."""
    import importlib.util

    from bert_ner import insights

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else find_spec(name, *a))
    assert insights.main([str(demo_run)]) == 2
    (error,) = errors(capsys)
    assert error == "error: matplotlib not installed: bert_ner.insights draws its plots with it: pip install matplotlib"


def test_insights_refuses_to_write_over_an_edited_model_card(demo_run, capsys, tmp_path):
    """`python -m bert_ner.insights DIR` writes the card again; one edited by hand stops it, and one
    it wrote itself does not (its record is brought up to date)."""
    import shutil

    from bert_ner import insights

    run = tmp_path / "run"
    shutil.copytree(demo_run, run)
    assert insights.main([str(run)]) == 0
    assert insights.main([str(run)]) == 0  # what it wrote again counts as its own
    capsys.readouterr()
    with (run / "README.md").open("a", encoding="utf-8") as card:
        card.write("Notes of mine.\n")
    assert insights.main([str(run)]) == 2
    (error,) = errors(capsys)
    assert (
        error == f"error: {run}/: 'README.md' changed since bert-ner wrote it, and this would write it again; move it out first"
    )
    assert (run / "README.md").read_text(encoding="utf-8").endswith("Notes of mine.\n")


def test_insights_that_fail_midway_leave_what_they_rewrote_recorded_as_their_own(demo_run, monkeypatch, tmp_path):
    """A plot that fails after another was drawn again must not leave that one reading as edited,
    which would stop every later rerun."""
    import shutil

    from bert_ner import insights, plots
    from bert_ner.outputs import LEARNING_CURVES, edited_files

    run = tmp_path / "run"
    shutil.copytree(demo_run, run)
    monkeypatch.setattr(plots, "learning_curves", lambda rows, path: path.write_bytes(b"drawn again, differently"))
    monkeypatch.setattr(plots, "confusion_matrix", lambda *args: (_ for _ in ()).throw(RuntimeError("no plot")))
    with pytest.raises(RuntimeError):
        insights.main([str(run), "--debug"])
    assert (run / LEARNING_CURVES).read_bytes() == b"drawn again, differently"
    assert edited_files(run) == []
