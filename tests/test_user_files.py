"""No file of a user's is ever lost: a rerun, --html and export.py stop with one line naming it."""

import shutil

from infer import main as infer
from tests.conftest import SCRATCH, SENTENCE
from train import main as train


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def test_a_rerun_never_deletes_what_the_user_added_to_a_finished_output(demo_run, tmp_path, capsys):
    """The issue's case: notes and an --html page saved in runs/x, then the same train.py command."""
    output = tmp_path / "x"
    shutil.copytree(demo_run, output)
    (output / "my_notes.md").write_text("notes")
    assert infer(["--model", str(output), "--html", str(output / "page.html"), SENTENCE]) == 0
    capsys.readouterr()

    assert train(["--config", SCRATCH, f"training.output_dir={output}"]) == 2
    (error,) = error_lines(capsys)
    assert "holds files that train.py did not write ('my_notes.md', 'page.html')" in error
    assert (output / "my_notes.md").read_text() == "notes" and (output / "page.html").is_file()
    assert (output / "model.safetensors").is_file()


def test_html_never_overwrites_a_file_it_did_not_write(demo_run, tmp_path, capsys):
    page = tmp_path / "page.html"
    page.write_text("<p>my own page</p>")
    assert infer(["--model", str(demo_run), "--html", str(page), SENTENCE]) == 2
    (error,) = error_lines(capsys)
    assert f"--html '{page}' exists and is not a page infer.py wrote" in error
    assert page.read_text() == "<p>my own page</p>"

    ours = tmp_path / "ours.html"
    assert infer(["--model", str(demo_run), "--html", str(ours), SENTENCE]) == 0
    assert infer(["--model", str(demo_run), "--html", str(ours), "Nothing here ."]) == 0  # its own page: replaced
    assert "Nothing" in ours.read_text() and "Schmidt" not in ours.read_text()


def test_a_failed_run_leaves_no_empty_output_directory(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("Anna B-PERSON-X-\n")
    output = tmp_path / "runs" / "first"
    assert train(["--config", SCRATCH, f"data.train_file={bad}", f"training.output_dir={output}"]) == 2
    assert error_lines(capsys)
    assert not (tmp_path / "runs").exists()
