"""A training run killed with SIGKILL and rerun loses nothing: it resumes from its newest complete
checkpoint and ends exactly where an uninterrupted run ends."""

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from bert_ner.checkpoints import MARKER
from tests.conftest import REPO, SCRATCH
from train import main

# Short enough for a test, long enough to learn something (F1 well above 0) and to be killed midway.
SHORT = ["training.num_train_epochs=3", "data.max_eval_samples=64", "data.max_test_samples=64", "training.disable_tqdm=true"]
STEPS_PER_EPOCH = 64  # the demo's 1,024 training sentences in batches of 16


def train_command(output_dir, *extra) -> list[str]:
    return [sys.executable, "train.py", "--config", SCRATCH, *SHORT, f"training.output_dir={output_dir}", *extra]


def run_train(output_dir, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(train_command(output_dir, *extra), cwd=REPO, capture_output=True, text=True, timeout=300)


def kill_after_first_checkpoint(output_dir, *extra) -> None:
    process = subprocess.Popen(train_command(output_dir, *extra), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = output_dir / f"checkpoint-{STEPS_PER_EPOCH}" / MARKER
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert process.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def killed_and_rerun(tmp_path_factory):
    """An uninterrupted run, and a run killed after its first checkpoint then rerun: both output dirs,
    the rerun's output, and the training seconds its checkpoint kept."""
    root = tmp_path_factory.mktemp("resume")
    straight, resumed = root / "straight", root / "resumed"
    assert run_train(straight).returncode == 0
    kill_after_first_checkpoint(resumed)
    assert not (resumed / "model.safetensors").exists()  # killed mid-training: no final model yet
    before = clock_at(resumed / f"checkpoint-{STEPS_PER_EPOCH}")
    rerun = run_train(resumed)
    assert rerun.returncode == 0, rerun.stderr
    return straight, resumed, rerun.stdout + rerun.stderr, before


def clock_at(checkpoint) -> float:
    """The training seconds a checkpoint's TrainingClock kept."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return state["stateful_callbacks"]["TrainingClock"]["args"]["seconds_before"]


def test_rerun_says_where_it_resumes_and_continues_the_global_step(killed_and_rerun):
    _, resumed, output, _ = killed_and_rerun
    assert f"resuming from {resumed}/checkpoint-{STEPS_PER_EPOCH}" in output
    epochs = [float(e) for e in re.findall(r"'epoch': '([\d.]+)'", output)]
    assert epochs and min(epochs) > 1  # nothing of the first epoch was trained again
    metrics = json.loads((resumed / "metrics.json").read_text())
    assert metrics["training"]["steps"] == 3 * STEPS_PER_EPOCH


def test_resumed_run_counts_the_training_time_before_its_checkpoint(killed_and_rerun):
    _, resumed, output, before = killed_and_rerun
    after = float(re.search(r"'train_runtime': '([\d.]+)'", output).group(1))  # Trainer's: this call only
    runtime = json.loads((resumed / "metrics.json").read_text())["training"]["runtime_s"]
    assert before > 0 and runtime >= before + 0.9 * after


def test_resumed_run_ends_with_the_same_metrics_as_an_uninterrupted_one(killed_and_rerun):
    straight, resumed, *_ = killed_and_rerun
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (straight, resumed))
    assert a["test"]["f1"] > 0.3  # a run that learned nothing would match trivially
    assert {k: a[k] for k in ("validation", "test")} == {k: b[k] for k in ("validation", "test")}


def test_finished_run_keeps_only_the_model_not_the_checkpoints(killed_and_rerun):
    straight, resumed, *_ = killed_and_rerun
    for directory in (straight, resumed):
        assert not [p for p in directory.iterdir() if p.is_dir()]
        assert sorted(p.name for p in directory.parent.iterdir()) == ["resumed", "straight"]  # nothing left beside


def test_half_written_checkpoint_is_skipped(tmp_path, caplog):
    """A checkpoint without the marker (the kill came while it was written) is never loaded."""
    output_dir = tmp_path / "out"
    kill_after_first_checkpoint(output_dir)
    (output_dir / f"checkpoint-{STEPS_PER_EPOCH}" / MARKER).unlink()
    caplog.set_level("INFO", logger="bert_ner")
    assert main(["--config", SCRATCH, *SHORT, "training.num_train_epochs=1", f"training.output_dir={output_dir}"]) == 0
    assert "no complete checkpoint to resume from" in caplog.text and "resuming from" not in caplog.text


@pytest.fixture
def interrupted(tmp_path):
    output_dir = tmp_path / "out"
    kill_after_first_checkpoint(output_dir)
    return output_dir


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.max_train_samples=100", "was made with another configuration (data.max_train_samples: None -> 100)"),
        ("model.scratch.hidden_size=64", "was made with another configuration (model.scratch.hidden_size: 128 -> 64)"),
        ("checkpoints.resume=false", "holds checkpoints of an unfinished run (checkpoint-64) and checkpoints.resume is false"),
    ],
)
def test_rerun_that_cannot_resume_is_refused_and_keeps_the_checkpoint(interrupted, capsys, override, message):
    assert main(["--config", SCRATCH, *SHORT, f"training.output_dir={interrupted}", override]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "checkpoints.fresh=true" in errors[0]
    assert (interrupted / f"checkpoint-{STEPS_PER_EPOCH}" / MARKER).exists()


def test_checkpoint_for_other_labels_is_refused(tmp_path, capsys):
    """The same config, but the training file's tags changed since the checkpoint was made."""
    import shutil

    data = tmp_path / "train.txt"
    shutil.copy(REPO / "data/demo/train.txt", data)
    output_dir = tmp_path / "out"
    kill_after_first_checkpoint(output_dir, f"data.train_file={data}")
    data.write_text(data.read_text().rstrip("\n") + "\n\nAnna B-PER\nbought O\nWidgetPro B-PRODUCT\n")
    assert main(["--config", SCRATCH, *SHORT, f"data.train_file={data}", f"training.output_dir={output_dir}"]) == 2
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "was trained for the labels O B-LOC I-LOC B-MISC" in error[0] and "B-PRODUCT" in error[0]


def test_fresh_deletes_the_checkpoints_and_starts_from_step_zero(interrupted, caplog):
    caplog.set_level("INFO", logger="bert_ner")
    args = [
        "--config",
        SCRATCH,
        *SHORT,
        "training.num_train_epochs=1",
        f"training.output_dir={interrupted}",
        "checkpoints.fresh=true",
    ]
    assert main(args) == 0
    assert "resuming from" not in caplog.text and f"deleted {interrupted}/checkpoint-{STEPS_PER_EPOCH}" in caplog.text
    assert json.loads((interrupted / "metrics.json").read_text())["training"]["steps"] == STEPS_PER_EPOCH


def test_output_dir_that_cannot_be_written_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # fails for root as well, unlike a read-only directory
    assert main(["--config", SCRATCH, f"training.output_dir={blocker / 'out'}"]) == 2
    error = capsys.readouterr().err
    assert f"training.output_dir: '{blocker}' is a file, not a directory; choose another output_dir" in error
    assert "== train ==" not in error


def test_the_working_directory_is_never_an_output_dir(capsys):
    """output_dir "." would replace the project itself: refused, like any directory of other files."""
    assert main(["--config", SCRATCH, "training.output_dir=."]) == 2
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "training.output_dir: '.' holds files that train.py did not write" in error[0]


def test_scoring_a_model_never_replaces_it(demo_run, tmp_path, capsys):
    """Evaluate-only into the model's own directory would swap the model for a directory of scores."""
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(demo_run, model_dir)
    args = ["--config", SCRATCH, "model.scratch=null", f"model.name_or_path={model_dir}", "model.fine_tune=false"]
    assert main([*args, f"training.output_dir={model_dir}"]) == 2
    assert "is the model being scored" in capsys.readouterr().err
    assert (model_dir / "model.safetensors").is_file()


def test_checkpoint_without_optimizer_state_is_not_resumed(tmp_path, capsys):
    """training.save_only_model checkpoints cannot be resumed (transformers docs): the rerun says so
    rather than continue with a fresh optimizer."""
    output_dir = tmp_path / "out"
    kill_after_first_checkpoint(output_dir, "training.save_only_model=true")
    assert main(["--config", SCRATCH, *SHORT, f"training.output_dir={output_dir}", "training.save_only_model=true"]) == 2
    assert "holds the weights but no optimizer state (training.save_only_model: true)" in capsys.readouterr().err
    assert (output_dir / f"checkpoint-{STEPS_PER_EPOCH}" / MARKER).exists()


def test_the_training_clock_stops_where_trainer_ends_training():
    from bert_ner.trainer import TrainingClock

    clock = TrainingClock(seconds_before=10.0)
    clock.on_log(None, None, None, logs={"loss": 0.1})
    assert clock.stopped is None
    clock.on_log(None, None, None, logs={"train_runtime": 1.0})  # then Trainer loads the best model: not training
    stopped = clock.seconds()
    time.sleep(0.01)
    assert clock.seconds() == stopped >= 10.0
    assert clock.state() == {"args": {"seconds_before": stopped}, "attributes": {}}
