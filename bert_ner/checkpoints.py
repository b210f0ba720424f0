"""Checkpoints and the output directory: resume after a crash, never publish a half-written model.

Trainer writes `checkpoint-N/` directories into output_dir while it trains. A run killed at any
moment can leave the newest one half-written, so a checkpoint counts only when every file a resume
needs is there, our own marker last of all. The final model is written beside output_dir and put
in its place with one rename: a reader sees the previous complete output or the new one.
"""

import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bert_ner.errors import UserError, shown_names
from bert_ner.outputs import (
    CHECKPOINT_PREFIX,
    OPTIMIZER,
    RESOLVED_CONFIG_FILE,
    TRAINER_STATE,
    WEIGHTS,
    WRITE_PROBE,
    edited_files,
    f1_summary,
    files_under,
    read_labels,
    read_metrics,
    read_own_files,
    sibling_dir,
)

log = logging.getLogger("bert_ner")

# Written by bert_ner.trainer.MarkCompleteCheckpoints after Trainer has written everything else, so it also marks completeness.
MARKER = RESOLVED_CONFIG_FILE
# Sections of the resolved config a checkpoint must share with the run that resumes it: other
# weights, data or labels would be silently mixed with the checkpoint's.
MUST_MATCH = ("model", "data")
# Training keys that may differ on resume without changing what is learned.
MAY_DIFFER = {"output_dir", "disable_tqdm", "logging_steps", "report_to"}
# Adam keeps two moments per weight: a checkpoint is about three times the weights.
CHECKPOINT_WEIGHT_COPIES = 3


def checkpoint_step(name: str) -> int | None:
    """The global step in a checkpoint directory's name, or None for anything else."""
    step = name.removeprefix(CHECKPOINT_PREFIX)
    return int(step) if name.startswith(CHECKPOINT_PREFIX) and step.isdigit() else None


def is_complete(files: set[str]) -> bool:
    """Whether a checkpoint holding `files` can be resumed from."""
    return MARKER in files and TRAINER_STATE in files and any(weights in files for weights in WEIGHTS)


def newest_complete(checkpoints: dict[str, set[str]]) -> str | None:
    """Of checkpoint directory name -> the files in it, the complete one with the highest step."""
    complete = [name for name, files in checkpoints.items() if checkpoint_step(name) is not None and is_complete(files)]
    return max(complete, key=checkpoint_step, default=None)


def list_checkpoints(output_dir: Path) -> dict[str, set[str]]:
    """Checkpoint directories in output_dir and the files in each."""
    if not output_dir.is_dir():
        return {}
    return {
        path.name: {file.name for file in path.iterdir()}
        for path in output_dir.iterdir()
        if path.is_dir() and checkpoint_step(path.name) is not None
    }


def config_differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configs, as `key: old -> new`."""
    differences = []
    for key in sorted(set(saved) | set(current), key=str):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += config_differences(old, new, f"{prefix}{key}.")
        elif old != new:
            differences.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return differences


def with_defaults(saved: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`saved` with the keys it lacks taken from `defaults`, at every depth: for a checkpoint written
    before a key existed, what the key meant then (bert_ner.config.saved_defaults)."""
    filled = dict(saved)
    for key, default in defaults.items():
        if key not in filled:
            filled[key] = default
        elif isinstance(filled[key], dict) and isinstance(default, dict):
            filled[key] = with_defaults(filled[key], default)
    return filled


def resume_problems(
    saved: dict[str, Any], current: dict[str, Any], defaults: dict[str, Any] | None = None
) -> tuple[list[str], list[str]]:
    """What stops a resume (model or data changed) and what merely changed (training keys).
    Keys missing from `saved` count as their `defaults` (with_defaults)."""
    saved = with_defaults(saved, defaults or {})
    blocking = [
        d for section in MUST_MATCH for d in config_differences(saved.get(section, {}), current.get(section, {}), f"{section}.")
    ]
    training = {k: v for k, v in current.get("training", {}).items() if k not in MAY_DIFFER}
    saved_training = {k: v for k, v in saved.get("training", {}).items() if k not in MAY_DIFFER}
    return blocking, config_differences(saved_training, training, "training.")


def checkpoint_bytes(parameters: int, bytes_per_parameter: int = 4) -> int:
    """Roughly what one checkpoint of a model this size takes on disk: weights and optimizer state."""
    return parameters * bytes_per_parameter * CHECKPOINT_WEIGHT_COPIES


def room_problem(output_dir: Path, free_bytes: int, parameters: int) -> str | None:
    """Why output_dir cannot hold a checkpoint, or None when it can."""
    needed = checkpoint_bytes(parameters)
    if free_bytes >= needed:
        return None
    return (
        f"training.output_dir: '{output_dir}' has {free_bytes / 2**30:.1f} GiB free, but one checkpoint of this model "
        f"takes about {needed / 2**30:.1f} GiB; free some space or choose another directory"
    )


# ---------------------------------------------------------------------------------------------
# The output directory


def foreign_files(files: list[str], own: set[str] | None) -> list[str]:
    """Of the files under an existing output_dir (relative paths, `files_under`), those that no
    earlier run wrote: neither listed in its record of own files (`own`; None where there is none)
    nor Trainer's checkpoints. output_dir is replaced whole at the end of a run, so anything else in
    it would be lost."""
    own = own or set()
    return [
        name
        for name in files
        if name not in own and checkpoint_step(name.split("/")[0]) is None and not name.startswith(WRITE_PROBE)
    ]


def check_replaceable(output_dir: Path) -> None:
    """Refuse an output_dir that holds anything a run would destroy, naming it; say in one line
    when the run will replace a finished model."""
    if not output_dir.is_dir():
        return
    files = files_under(output_dir)
    own = read_own_files(output_dir)
    if own is None and MARKER in files:
        raise UserError(
            f"training.output_dir: '{output_dir}' holds a model from an older bert-ner, which did not record the files it "
            "wrote; move out anything of yours, delete the directory, and rerun (or choose another output_dir)"
        )
    if foreign := foreign_files(files, own):
        raise UserError(
            f"training.output_dir: '{output_dir}' holds files that train.py did not write ({shown_names(foreign)}), and a run "
            "replaces the whole directory; move them out, or choose a new or empty directory"
        )
    if edited := edited_files(output_dir):
        raise UserError(
            f"training.output_dir: '{output_dir}' holds files changed since bert-ner wrote them ({shown_names(edited)}), "
            "and a run replaces the whole directory; move them out, or choose a new or empty directory"
        )
    if MARKER in files:
        log.info(f"{output_dir} holds a finished model{scores_of(output_dir)}; this run replaces it when it finishes")


def scores_of(output_dir: Path) -> str:
    """' (dev f1 0.912, test f1 0.889)' from a finished run's metrics, or '' where there are none."""
    try:
        metrics = read_metrics(output_dir)
    except (OSError, ValueError):
        return ""
    parts = f1_summary(metrics)
    return f" ({', '.join(parts)})" if parts else ""


def partial_dir(output_dir: Path) -> Path:
    """Where the final output is written before it replaces output_dir."""
    return sibling_dir(output_dir, "partial")


def previous_dir(output_dir: Path) -> Path:
    """Where the previous output_dir waits while the new one takes its name."""
    return sibling_dir(output_dir, "previous")


def recover(output_dir: Path) -> None:
    """Undo what a kill in the middle of publish() left: the previous output back in its place,
    a half-written new one removed."""
    output_dir = output_dir.resolve()  # a symlinked output_dir: its target is what publish() replaced
    previous = previous_dir(output_dir)
    if previous.is_dir():
        if output_dir.exists():
            shutil.rmtree(previous)
        else:
            previous.rename(output_dir)
            log.info(f"restored {output_dir}/ from an interrupted save")
    shutil.rmtree(partial_dir(output_dir), ignore_errors=True)


def publish(output_dir: Path, partial: Path) -> None:
    """Put the finished `partial` directory in output_dir's place. The old output_dir, with the
    checkpoints of the run that just finished, is removed: they have done their job."""
    # check_replaceable ran before training; an own file edited during a long run (the model card)
    # counts too. New files are not checked here: Trainer may write some (logging_dir's runs/).
    if output_dir.is_dir() and (changed := edited_files(output_dir)):
        raise UserError(
            f"training.output_dir: '{output_dir}' changed while this run trained ({shown_names(changed)}), so nothing "
            "was replaced; move those files out and rerun: it resumes from the last checkpoint and saves the model"
        )
    # A symlinked output_dir (bert-ner/ linked to a bigger disk) is published into its target, where
    # partial_dir was written: renaming the link itself would leave the target stale, or cross filesystems.
    output_dir = output_dir.resolve()
    previous = previous_dir(output_dir)
    if output_dir.exists():
        output_dir.rename(previous)
    partial.rename(output_dir)
    shutil.rmtree(previous, ignore_errors=True)


@contextmanager
def removed_if_failed(output_dir: Path) -> Iterator[None]:
    """A run that fails leaves no empty directories behind: output_dir and the parents it creates
    for it are removed again when they are still empty (a killed run's checkpoints stay)."""
    output_dir = output_dir.resolve()
    missing = [directory for directory in (output_dir, *output_dir.parents) if not directory.exists()]
    try:
        yield
    except BaseException:
        for directory in missing:  # deepest first
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        raise


def start_fresh(output_dir: Path) -> None:
    """Delete the checkpoints an earlier run left (checkpoints.fresh)."""
    for name in list_checkpoints(output_dir):
        shutil.rmtree(output_dir / name)
        log.info(f"deleted {output_dir / name} (checkpoints.fresh)")


def resume_point(output_dir: Path, resume: bool, current: dict[str, Any], defaults: dict[str, Any] | None = None) -> Path | None:
    """The checkpoint to continue from, after checking it was made by this same configuration
    (resume_problems: `current` and `defaults` are resolved configs as plain dicts)."""
    checkpoints = list_checkpoints(output_dir)
    newest = newest_complete(checkpoints)
    if newest is None:
        if checkpoints:
            log.info(f"{output_dir}: no complete checkpoint to resume from (the last save was cut off); training from the start")
        return None
    path = output_dir / newest
    if not resume:
        raise UserError(
            f"training.output_dir: '{output_dir}' holds checkpoints of an unfinished run ({newest}) and checkpoints.resume "
            "is false; set checkpoints.fresh=true to delete them and start over, or choose another output_dir"
        )
    saved = yaml.safe_load((path / MARKER).read_text(encoding="utf-8")) or {}
    blocking, changed = resume_problems(saved, current, defaults)
    if blocking:
        raise UserError(
            f"{path} was made with another configuration ({'; '.join(blocking)}); "
            "rerun with the same model and data, set checkpoints.fresh=true to start over, or choose another output_dir"
        )
    if OPTIMIZER not in checkpoints[newest]:
        raise UserError(
            f"{path} holds the weights but no optimizer state (training.save_only_model: true), so training cannot "
            "continue from it as the transformers docs say; set checkpoints.fresh=true to start over"
        )
    for change in changed:
        log.warning(f"resuming with a changed setting: {change}")
    return path


def stopped_early_at(checkpoint: Path) -> int | None:
    """The step at which the run that wrote `checkpoint` decided to stop before its planned last
    step (early stopping), or None. Trainer forgets that decision when training begins again, so a
    resumed run would train on."""
    state = json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))
    control = state.get("stateful_callbacks", {}).get("TrainerControl", {}).get("args", {})
    step, planned = state.get("global_step", 0), state.get("max_steps", 0)
    return step if control.get("should_training_stop") and step < planned else None


def check_labels(checkpoint: Path, labels: list[str]) -> None:
    """Refuse a checkpoint whose classifier was made for other labels: the same config can name a
    data file whose tags have changed since."""
    saved = read_labels(checkpoint)
    if saved != labels:
        raise UserError(
            f"{checkpoint} was trained for the labels {' '.join(saved)}, but the data now has {' '.join(labels)}; "
            "set checkpoints.fresh=true to start over, or choose another output_dir"
        )


def mark_complete(checkpoint: Path, resolved_yaml: str) -> None:
    """Write the marker (the run's resolved config) into a checkpoint Trainer has finished writing."""
    temporary = checkpoint / f".{MARKER}.tmp"
    temporary.write_text(resolved_yaml, encoding="utf-8")
    temporary.rename(checkpoint / MARKER)


def check_writable(path: Path) -> None:
    """Write and delete a file in output_dir and beside it, or say which can't be written."""
    path = path.resolve()  # "." has a parent too: where its .NAME.partial sibling goes
    for directory in (path.parent, path):  # the final output is written beside output_dir first
        if directory.exists() and not directory.is_dir():
            raise UserError(f"training.output_dir: '{directory}' is a file, not a directory; choose another output_dir")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe = directory / f"{WRITE_PROBE}{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as error:
            raise UserError(
                f"training.output_dir: cannot write to '{directory}' ({error.strerror}); choose another directory"
            ) from None


def check_room(output_dir: Path, model) -> None:
    """Fail now, not at the first save an hour from now, when a checkpoint will not fit."""
    problem = room_problem(output_dir, shutil.disk_usage(output_dir).free, model.num_parameters())
    if problem:
        raise UserError(problem)
