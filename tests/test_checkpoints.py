"""Checkpoint bookkeeping: which checkpoint a rerun resumes from, what blocks a resume, and the
output directory replaced whole."""

from pathlib import Path

import pytest
import yaml

from bert_ner.checkpoints import (
    MARKER,
    TRAINER_STATE,
    check_replaceable,
    config_differences,
    foreign_files,
    newest_complete,
    partial_dir,
    previous_dir,
    publish,
    recover,
    removed_if_failed,
    resume_problems,
    room_problem,
)
from bert_ner.config import Config, saved_defaults, to_yaml
from bert_ner.errors import UserError

COMPLETE = {MARKER, TRAINER_STATE, "model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth"}


@pytest.mark.parametrize(
    "checkpoints, expected",
    [
        ({}, None),
        ({"checkpoint-10": COMPLETE}, "checkpoint-10"),
        # by step number, not by name: 100 is newer than 20
        ({"checkpoint-20": COMPLETE, "checkpoint-100": COMPLETE}, "checkpoint-100"),
        # the newest was cut off before our marker (killed while saving): the one before it
        ({"checkpoint-20": COMPLETE, "checkpoint-30": COMPLETE - {MARKER}}, "checkpoint-20"),
        # cut off before the trainer state, or half deleted by Trainer's rotation (weights gone)
        ({"checkpoint-20": COMPLETE - {TRAINER_STATE}}, None),
        ({"checkpoint-20": COMPLETE - {"model.safetensors"}}, None),
        # sharded weights count through their index
        ({"checkpoint-5": COMPLETE - {"model.safetensors"} | {"model.safetensors.index.json"}}, "checkpoint-5"),
        # names that are not Trainer's checkpoints
        ({"checkpoint-best": COMPLETE, "checkpoint-": COMPLETE}, None),
    ],
)
def test_newest_complete(checkpoints, expected):
    assert newest_complete(checkpoints) == expected


@pytest.mark.parametrize(
    "saved, current, expected",
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1}, {"a": 2}, ["a: 1 -> 2"]),
        ({"m": {"name": "x", "k": 1}}, {"m": {"name": "y", "k": 1}}, ["m.name: 'x' -> 'y'"]),
        ({"a": 1}, {}, ["a: 1 -> None"]),
    ],
)
def test_config_differences(saved, current, expected):
    assert config_differences(saved, current) == expected


def resolved(model="bert-base-cased", train_file="a.txt", epochs=3, output_dir="bert-ner"):
    return {
        "model": {"name_or_path": model},
        "data": {"train_file": train_file},
        "checkpoints": {"resume": True, "fresh": False},
        "training": {"num_train_epochs": epochs, "output_dir": output_dir},
    }


@pytest.mark.parametrize(
    "current, blocking, changed",
    [
        (resolved(), [], []),
        (resolved(output_dir="elsewhere"), [], []),  # the same run, moved
        (resolved(epochs=5), [], ["training.num_train_epochs: 3 -> 5"]),  # train longer: allowed, said
        (resolved(model="roberta-base"), ["model.name_or_path: 'bert-base-cased' -> 'roberta-base'"], []),
        (resolved(train_file="b.txt"), ["data.train_file: 'a.txt' -> 'b.txt'"], []),
    ],
)
def test_resume_problems(current, blocking, changed):
    assert resume_problems(resolved(), current) == (blocking, changed)


def with_key(config, section, key, value):
    return {**config, section: {**config[section], key: value}}


# What a key missing from a checkpoint's config means (train.py passes bert_ner.config.saved_defaults()).
DEFAULTS = {"data": {"widen_spans": False}}


@pytest.mark.parametrize(
    "current, blocking, changed",
    [
        (with_key(resolved(), "data", "widen_spans", False), [], []),  # the new key at its default: the same run
        (with_key(resolved(), "data", "widen_spans", True), ["data.widen_spans: False -> True"], []),
    ],
)
def test_keys_a_checkpoint_predates_count_as_their_defaults(current, blocking, changed):
    assert resume_problems(resolved(), current, DEFAULTS) == (blocking, changed)


def test_a_saved_value_wins_over_the_default():
    saved = with_key(resolved(), "data", "widen_spans", True)
    assert resume_problems(saved, with_key(resolved(), "data", "widen_spans", False), DEFAULTS)[0] == [
        "data.widen_spans: True -> False"
    ]


@pytest.mark.parametrize("key, then", [("context_dropout", 0.0), ("context_tokens", 0)])
def test_a_checkpoint_from_before_a_key_was_made_with_what_it_meant_then(key, then):
    """data.context_tokens and data.context_dropout came in off and took other defaults later: a
    checkpoint whose config lacks one cannot be resumed under today's default, which trains otherwise."""
    today = yaml.safe_load(to_yaml(Config()))
    before = {**today, "data": {k: v for k, v in today["data"].items() if k != key}}
    assert resume_problems(before, today, saved_defaults())[0] == [f"data.{key}: {then!r} -> {today['data'][key]!r}"]
    assert resume_problems(before, with_key(today, "data", key, then), saved_defaults()) == ([], [])


@pytest.mark.parametrize(
    "free, parameters, fits",
    [(10 * 2**30, 110_000_000, True), (1 * 2**30, 110_000_000, False), (1 * 2**30, 1_000_000, True)],
)
def test_room_for_a_checkpoint(free, parameters, fits, tmp_path):
    problem = room_problem(tmp_path, free, parameters)
    assert (problem is None) == fits
    if not fits:
        assert problem.startswith(f"training.output_dir: '{tmp_path}' has 1.0 GiB free") and "1.2 GiB" in problem


@pytest.mark.parametrize(
    "files, own, foreign",
    [
        ([], None, []),
        (["checkpoint-10/model.safetensors", ".write-test-77"], None, []),  # an unfinished first run
        ([MARKER, "model.safetensors", ".bert-ner-files"], {MARKER, "model.safetensors", ".bert-ner-files"}, []),
        ([MARKER, "model.safetensors", "onnx/model.onnx"], {MARKER, "model.safetensors", "onnx/model.onnx"}, []),  # exported
        # what the user adds to a finished run's directory is theirs, however it got there
        (
            [MARKER, "my_notes.md", "page.html", "onnx/mine.txt", "data/"],
            {MARKER},
            ["my_notes.md", "page.html", "onnx/mine.txt", "data/"],
        ),
        (["thesis.tex", "checkpoint-10/optimizer.pt"], None, ["thesis.tex"]),  # somebody's directory: never replaced
        ([".hidden"], None, [".hidden"]),
    ],
)
def test_foreign_files(files, own, foreign):
    assert foreign_files(files, own) == foreign


def test_a_directory_of_other_files_is_never_replaced(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match="holds files that train.py did not write .'thesis.tex'."):
        check_replaceable(tmp_path)


def test_an_older_finished_output_without_a_record_of_its_files_is_refused(tmp_path):
    (tmp_path / MARKER).write_text("model: {}")
    (tmp_path / "notes.md").write_text("mine")
    with pytest.raises(UserError, match="from an older bert-ner, which did not record the files it wrote"):
        check_replaceable(tmp_path)


def test_a_finished_output_is_replaced_with_a_line_that_says_so(tmp_path, caplog):
    import logging

    from bert_ner.outputs import write_own_files

    (tmp_path / MARKER).write_text("model: {}")
    (tmp_path / "metrics.json").write_text('{"validation": {"f1": 0.9}, "test": {"f1": 0.85}}')
    write_own_files(tmp_path)
    with caplog.at_level(logging.INFO, logger="bert_ner"):
        check_replaceable(tmp_path)
    assert "holds a finished model (dev f1 0.900, test f1 0.850); this run replaces it when it finishes" in caplog.text


@pytest.mark.parametrize(
    "change, refused",
    [
        (None, False),
        ("README.md", True),  # the model card, edited before uploading it
        ("labels.txt", True),
    ],
)
def test_an_own_file_edited_since_it_was_written_stops_the_rerun_that_would_replace_it(tmp_path, change, refused):
    from bert_ner.outputs import write_own_files

    (tmp_path / MARKER).write_text("model: {}")
    (tmp_path / "README.md").write_text("# model card\n")
    (tmp_path / "labels.txt").write_text("O\nB-PER\n")
    write_own_files(tmp_path)
    if change:
        with (tmp_path / change).open("a") as file:
            file.write("my notes\n")
    if refused:
        with pytest.raises(UserError, match=f"holds files changed since bert-ner wrote them \\('{change}'\\)"):
            check_replaceable(tmp_path)
    else:
        check_replaceable(tmp_path)


def test_recording_more_own_files_keeps_an_edit_to_the_others_visible(tmp_path):
    """export.py and bert_ner.insights add to the record: an edited model card must still read as edited."""
    from bert_ner.outputs import add_own_files, edited_files, write_own_files

    (tmp_path / MARKER).write_text("model: {}")
    (tmp_path / "README.md").write_text("# model card\n")
    write_own_files(tmp_path)
    (tmp_path / "README.md").write_text("# model card\nmy notes\n")
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"graph")
    add_own_files(tmp_path, ["onnx/model.onnx"])
    assert edited_files(tmp_path) == ["README.md"]
    with pytest.raises(UserError, match="changed since bert-ner wrote them \\('README.md'\\)"):
        check_replaceable(tmp_path)


def test_a_file_edited_while_the_run_trained_stops_the_publish(tmp_path):
    from bert_ner.outputs import write_own_files

    output, partial = tmp_path / "bert-ner", tmp_path / ".bert-ner.partial"
    for directory in (output, partial):
        directory.mkdir()
        (directory / "README.md").write_text("# model card\n")
        write_own_files(directory)
    check_replaceable(output)  # as the run starts
    (output / "README.md").write_text("# model card\nmy notes\n")  # during training
    with pytest.raises(UserError, match="changed while this run trained \\('README.md'\\), so nothing was replaced"):
        publish(output, partial)
    assert (output / "README.md").read_text() == "# model card\nmy notes\n" and partial.is_dir()


def test_a_record_of_own_files_from_before_digests_still_reads(tmp_path):
    """Older versions recorded names only: their files count as own, and as unedited."""
    from bert_ner.outputs import OWN_FILES, edited_files, read_own_files

    (tmp_path / "README.md").write_text("# edited card\n")
    (tmp_path / OWN_FILES).write_text(f"README.md\n{OWN_FILES}\n")
    assert read_own_files(tmp_path) == {"README.md", OWN_FILES}
    assert edited_files(tmp_path) == []


def test_a_failed_run_leaves_no_empty_directories(tmp_path):
    output = tmp_path / "runs" / "x"
    with pytest.raises(RuntimeError), removed_if_failed(output):
        output.mkdir(parents=True)
        raise RuntimeError("failed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt), removed_if_failed(output):  # a killed run keeps its checkpoints
        (output / "checkpoint-5").mkdir(parents=True)
        raise KeyboardInterrupt
    assert (output / "checkpoint-5").is_dir()


def test_search_scratch_with_a_user_file_is_refused(tmp_path):
    from bert_ner.search import check_scratch, scratch_dir

    output = tmp_path / "bert-ner"
    check_scratch(output)  # none yet
    scratch = scratch_dir(output)
    (scratch / "run-0").mkdir(parents=True)  # a killed search's trial: ours
    check_scratch(output)
    (scratch / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="keep.txt"):
        check_scratch(output)


def test_publish_replaces_the_output_whole_and_recover_undoes_a_cut_off_publish(tmp_path):
    output = tmp_path / "bert-ner"
    output.mkdir()
    (output / "old.txt").write_text("old")
    (output / "checkpoint-1").mkdir()
    partial = partial_dir(output)
    partial.mkdir()
    (partial / "new.txt").write_text("new")
    publish(output, partial)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bert-ner"]
    assert sorted(p.name for p in output.iterdir()) == ["new.txt"]

    # killed between the two renames: no output_dir, the previous one aside, the new one unfinished
    output.rename(previous_dir(output))
    partial_dir(output).mkdir()
    recover(output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bert-ner"]
    assert (output / "new.txt").read_text() == "new"


@pytest.mark.parametrize("output_dir", [".", "out", "out/", "./a/../out"])
def test_working_directories_sit_beside_output_dir_under_one_rule(tmp_path, monkeypatch, output_dir):
    """The final output being written, the old one, and the search trials: hidden siblings of
    output_dir, also when output_dir is "." (which has no name of its own)."""
    from bert_ner.search import scratch_dir

    (tmp_path / "work" / "a").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    name = "work" if output_dir == "." else "out"
    parent = tmp_path if output_dir == "." else tmp_path / "work"
    assert partial_dir(Path(output_dir)) == parent / f".{name}.partial"
    assert previous_dir(Path(output_dir)) == parent / f".{name}.previous"
    assert scratch_dir(Path(output_dir)) == parent / f".{name}.search"
