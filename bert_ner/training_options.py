"""Which `training:` fields (transformers.TrainingArguments) train.py cannot honour as the
transformers docs describe them, and why; and the checks that find a broken field in seconds
rather than after an epoch. docs/training.md, Training options, keeps the same list.

Everything not refused here goes to TrainingArguments unchanged and does what its docs say.
"""

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Refusal:
    refused: Callable[[Any], bool]  # the values train.py cannot honour
    reason: str


def _true(value: Any) -> bool:
    return bool(value)


def _false(value: Any) -> bool:
    return value is False


def _set(value: Any) -> bool:
    return value is not None


NOT_READ_BY_TRAINER = (
    "Trainer does not read it (the transformers docs leave it to scripts); train.py trains when "
    "model.fine_tune is true and scores the validation and test files it is given"
)

REFUSED_TRAINING_ARGS = {
    "push_to_hub": Refusal(
        _true,
        (
            "train.py writes the finished model, its scores and reports to output_dir only after scoring; "
            "upload that directory afterwards (hf upload NAME OUTPUT_DIR)"
        ),
    ),
    "prediction_loss_only": Refusal(_true, "every evaluation is scored by span F1, which needs the predictions"),
    "batch_eval_metrics": Refusal(_true, "span F1 is computed over a whole split at once, not batch by batch"),
    "eval_do_concat_batches": Refusal(_false, "train.py pairs the predictions with the sentences across batches"),
    "label_names": Refusal(lambda value: value not in (None, ["labels"]), "the loss and the scores read the labels column"),
    "enable_jit_checkpoint": Refusal(
        _true,
        (
            "a run stopped by SIGTERM would be scored and saved as if it had finished; train.py resumes from the "
            "checkpoints save_strategy writes (checkpoints.resume)"
        ),
    ),
    "resume_from_checkpoint": Refusal(
        _set, ("train.py resumes by itself from the newest complete checkpoint in output_dir (checkpoints.resume: true)")
    ),
    "do_train": Refusal(_set, NOT_READ_BY_TRAINER),
    "do_eval": Refusal(_set, NOT_READ_BY_TRAINER),
    "do_predict": Refusal(_set, NOT_READ_BY_TRAINER),
}

# transformers' Trainer treats any other value as "random", silently.
SAMPLING_STRATEGIES = ("random", "sequential", "group_by_length", "batch_rebalance")

# Fields that need a package bert-ner does not install: field -> (module to import, pip name).
NEEDS_PACKAGE = {"deepspeed": ("deepspeed", "deepspeed"), "use_liger_kernel": ("liger_kernel", "liger-kernel")}


# Fields whose value "no" YAML 1.1 reads as false when it is not quoted (eval_strategy: no).
NO_WORD_FIELDS = ("eval_strategy", "save_strategy", "logging_strategy")


def as_written(key: str, value: Any) -> Any:
    """The value the user wrote: `eval_strategy: no` arrives from YAML as False."""
    return "no" if key in NO_WORD_FIELDS and value is False else value


def refusal(key: str, value: Any) -> str | None:
    """Why train.py refuses `training.<key>: value`, or None."""
    if key in REFUSED_TRAINING_ARGS and REFUSED_TRAINING_ARGS[key].refused(value):
        return f"training.{key}: {value!r} is not supported: {REFUSED_TRAINING_ARGS[key].reason}"
    return None


def option_problems(training: dict[str, Any]) -> list[str]:
    """One line per checked `training:` value that cannot work here."""
    problems = []
    strategy = training.get("train_sampling_strategy")
    if strategy is not None and strategy not in SAMPLING_STRATEGIES:
        problems.append(f"training.train_sampling_strategy: {strategy!r} is not one of {', '.join(SAMPLING_STRATEGIES)}")
    for key, (module, package) in NEEDS_PACKAGE.items():
        if training.get(key) and importlib.util.find_spec(module) is None:
            problems.append(
                f"training.{key}: needs the {package} package, which is not installed; pip install {package}, or unset it"
            )
    problems += report_to_problems(training.get("report_to"))
    return problems


def report_to_problems(report_to: Any) -> list[str]:
    """Integrations named in report_to that transformers does not know or that are not installed:
    Trainer only finds out after the data and the model are loaded."""
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK, get_available_reporting_integrations

    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    names = [name for name in names if name not in ("none", "all")]
    if unknown := [name for name in names if name not in INTEGRATION_TO_CALLBACK]:
        return [
            f"training.report_to: {', '.join(unknown)} unknown; "
            f"expected none, all or some of {', '.join(INTEGRATION_TO_CALLBACK)}"
        ]
    available = get_available_reporting_integrations()
    return [
        f"training.report_to: {name} is not installed (pip install {name}), or set report_to: none"
        for name in names
        if name not in available
    ]


def is_loss(metric: str) -> bool:
    """Trainer's own rule: a metric whose name ends in "loss" is better when lower."""
    return metric.endswith("loss")


def best_model_problems(training: dict[str, Any], metrics: list[str]) -> list[str]:
    """`metric_for_best_model` must name something each evaluation reports (`metrics`, without the
    eval_ prefix, or the loss), else Trainer fails at the end of the first epoch; and a score is
    never better lower."""
    metric = training.get("metric_for_best_model")
    if metric is None:
        return []
    name = metric.removeprefix("eval_")
    if name != "loss" and name not in metrics:
        return [
            f"training.metric_for_best_model: {metric!r} is not reported by an evaluation; "
            f"expected loss or one of {', '.join(metrics)}"
        ]
    better = training.get("greater_is_better")
    if better is not None and better == is_loss(name):
        worst = "highest" if better else "lowest"
        return [f"training.greater_is_better: {str(better).lower()} would keep the epoch with the {worst} {name}; unset it"]
    return []


# Below this many optimizer steps a run is too short to learn: the learning rate warms up and decays
# again within a few dozen updates, and the classifier starts from random weights.
MIN_OPTIMIZER_STEPS = 100
SMALL_DATA_BATCH = 8  # what the warning suggests for a small dataset: more updates per epoch


def planned_steps(sentences: int, batch_size: int, accumulation: int, processes: int, epochs: float, max_steps: int) -> int:
    """Optimizer steps a run will take, as Trainer counts them: max_steps when above 0, else the
    epochs times the updates per epoch (a last, partial batch is still a batch)."""
    if max_steps > 0:
        return max_steps
    batches = -(-sentences // (batch_size * processes))
    return math.ceil(epochs * max(-(-batches // accumulation), 1))


def short_run_warning(
    sentences: int, batch_size: int, accumulation: int, processes: int, epochs: float, max_steps: int
) -> str | None:
    """Say before training, in one line, when a run takes fewer than MIN_OPTIMIZER_STEPS steps, and
    what to change; None when it takes enough."""
    steps = planned_steps(sentences, batch_size, accumulation, processes, epochs, max_steps)
    if steps >= MIN_OPTIMIZER_STEPS:
        return None
    if max_steps > 0:
        change = f"raise training.max_steps to {MIN_OPTIMIZER_STEPS} or more"
    else:
        per_epoch = planned_steps(sentences, min(batch_size, SMALL_DATA_BATCH), 1, processes, 1, -1)
        epochs_needed = math.ceil(MIN_OPTIMIZER_STEPS / per_epoch)
        change = f"train longer, e.g. training.num_train_epochs={epochs_needed}"
        if batch_size > SMALL_DATA_BATCH:
            change += f" training.per_device_train_batch_size={SMALL_DATA_BATCH}"
        change += ", or add sentences"
    return (
        f"this run takes only {steps} optimizer steps ({sentences} training sentences), fewer than the "
        f"{MIN_OPTIMIZER_STEPS} a model needs to learn NER; expect a low F1. {change[0].upper()}{change[1:]} "
        "(docs/training.md: Small datasets)"
    )


# END
