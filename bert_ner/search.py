"""Hyperparameter search: Trainer.hyperparameter_search with Optuna over the `search:` space,
maximizing a validation score at the epoch the final run would keep (trial_score). Optuna is
optional (requirements-search.txt).

Trials train without checkpoints in a scratch directory beside output_dir. The sampler is seeded
with training.seed, so on CPU the same config searches the same way every time: a search killed
during the final training finds the same best settings when rerun, and that training resumes.
"""

import logging
import shutil
from pathlib import Path
from typing import Any

import yaml

from bert_ner.config import SEARCH_SPACE, SearchConfig
from bert_ner.errors import UserError
from bert_ner.outputs import TRIAL_DIR_PREFIX, sibling_dir

log = logging.getLogger("bert_ner")

INSTALL_HINT = "pip install -r requirements-search.txt"
# transformers warns at each trial that early stopping will not load the best model: a trial keeps
# none, and its judge reads its evaluations instead (TrialJudge), so the warning says nothing here.
NO_BEST_MODEL_WARNING = "Using EarlyStoppingCallback without load_best_model_at_end"
STUDY_NAME = "bert-ner"
# What changes for a trial: no checkpoints (trials are cheap to repeat, and many), nothing kept.
TRIAL_TRAINING = {"save_strategy": "no", "load_best_model_at_end": False}


def require_optuna():
    try:
        import optuna
    except ImportError:
        raise UserError(f"search.trials needs Optuna: {INSTALL_HINT}") from None
    return optuna


class SearchSpace:
    """The `hp_space` Trainer calls with each Optuna trial: TrainingArguments field -> value.
    With training.max_steps above 0, num_train_epochs is not searched: max_steps "overrides
    num_train_epochs" (TrainingArguments' docs), so every sampled value would train the same."""

    def __init__(self, search: SearchConfig, max_steps: int = -1):
        self.search = search
        self.names = [name for name in SEARCH_SPACE if not (name == "num_train_epochs" and max_steps > 0)]

    def __call__(self, trial) -> dict[str, Any]:
        values = self.sample(trial)
        log.info(f"trial {trial.number + 1} of {self.search.trials}: {settings_text(values)}")
        return values

    def sample(self, trial) -> dict[str, Any]:
        values = {}
        for name in self.names:
            dimension, bounds = SEARCH_SPACE[name], getattr(self.search, name)
            if dimension.kind == "choice":
                values[name] = trial.suggest_categorical(name, bounds)
            elif dimension.kind == "int":
                values[name] = trial.suggest_int(name, *bounds)
            else:
                values[name] = trial.suggest_float(name, *bounds, log=dimension.kind == "log")
        return values


def settings_text(values: dict[str, Any]) -> str:
    """`learning_rate=3.2e-05, per_device_train_batch_size=16`: a trial's settings on one line."""
    return ", ".join(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}" for name, value in values.items())


def trial_score(evaluations: list[dict[str, float]], objective: str, best_metric: str | None, greater_is_better: bool) -> float:
    """The number a trial is judged by, as the final run is judged: its validation `objective` at
    the evaluation the final run would keep. With load_best_model_at_end (`best_metric`, Trainer's
    metric_for_best_model) that is the first evaluation best by best_metric, else the last one.
    `evaluations` are the trial's evaluation logs in order (eval_-prefixed keys); ValueError if none."""
    key = f"eval_{objective}"
    rows = [row for row in evaluations if key in row]
    if not rows:
        raise ValueError(f"no evaluation reported {key}")
    if best_metric is None:
        return rows[-1][key]
    metric = best_metric if best_metric.startswith("eval_") else f"eval_{best_metric}"
    kept = rows[0]
    for row in rows[1:]:  # strictly better only, as Trainer keeps the first of equal checkpoints
        if (row[metric] > kept[metric]) if greater_is_better else (row[metric] < kept[metric]):
            kept = row
    return kept[key]


class TrialJudge:
    """`compute_objective` for Trainer.hyperparameter_search: Trainer hands it only the latest
    evaluation, but the final run keeps its best epoch, so it reads the trial's whole evaluation
    log (trainer.state.log_history, which each trial starts afresh)."""

    def __init__(self, trainer, objective: str, best_metric: str | None, greater_is_better: bool):
        self.trainer, self.objective = trainer, objective
        self.best_metric, self.greater_is_better = best_metric, greater_is_better

    def __call__(self, metrics: dict[str, float]) -> float:
        evaluations = [row for row in self.trainer.state.log_history if f"eval_{self.objective}" in row] or [metrics]
        return trial_score(evaluations, self.objective, self.best_metric, self.greater_is_better)


def trials_table(trials: list[dict[str, Any]], objective: str) -> list[str]:
    """Tab-separated rows, one per trial: number, its score, its time, its settings."""
    names = sorted({name for trial in trials for name in trial["params"]})
    rows = ["\t".join(["trial", f"validation_{objective}", "seconds", *names])]
    for trial in trials:
        value = "failed" if trial["value"] is None else f"{trial['value']:.4f}"
        params = [
            f"{trial['params'][n]:.3g}" if isinstance(trial["params"].get(n), float) else str(trial["params"].get(n, ""))
            for n in names
        ]
        rows.append("\t".join([str(trial["number"]), value, f"{trial['seconds']:.0f}", *params]))
    return rows


def run_search(
    trainer, search: SearchConfig, seed: int, best_metric: str | None = None, greater_is_better: bool = True
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the trials on a Trainer made with model_init; the best settings and every trial. Each
    trial is judged as the final run keeps its model (trial_score): `best_metric` and
    `greater_is_better` are the final run's metric_for_best_model, None without load_best_model_at_end."""
    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    space = SearchSpace(search, trainer.args.max_steps)
    if unsearched := [name for name in SEARCH_SPACE if name not in space.names]:
        log.info(
            f"search: training.max_steps={trainer.args.max_steps} overrides {', '.join(unsearched)}, "
            "so the trials do not vary it (set training.max_steps=-1 to search epochs)"
        )
    callback_log = logging.getLogger("transformers.trainer_callback")
    callback_log.addFilter(no_best_model_warning)
    try:
        best = trainer.hyperparameter_search(
            hp_space=space,
            compute_objective=TrialJudge(trainer, search.objective, best_metric, greater_is_better),
            n_trials=search.trials,
            direction="maximize",
            backend="optuna",
            sampler=optuna.samplers.TPESampler(seed=seed),
            storage=storage,
            study_name=STUDY_NAME,
        )
    finally:
        callback_log.removeFilter(no_best_model_warning)
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
    trials = [
        {
            "number": t.number,
            "value": t.value,
            "seconds": (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else 0.0,
            "params": t.params,
        }
        for t in study.trials
    ]
    return dict(best.hyperparameters), trials


def no_best_model_warning(record: logging.LogRecord) -> bool:
    """A logging filter: False for transformers' NO_BEST_MODEL_WARNING, True for the rest."""
    return NO_BEST_MODEL_WARNING not in record.getMessage()


def best_yaml(best: dict[str, Any], trials: list[dict[str, Any]], objective: str) -> str:
    """The best settings as a `training:` section to paste, with where they came from."""
    winner = max((t for t in trials if t["value"] is not None), key=lambda t: t["value"])
    header = f"# best of {len(trials)} trials: trial {winner['number']}, validation {objective} {winner['value']:.4f}\n"
    return header + yaml.safe_dump({"training": best}, sort_keys=True)


def scratch_dir(output_dir: Path) -> Path:
    """Where the trials train, beside output_dir."""
    return sibling_dir(output_dir, "search")


def check_scratch(output_dir: Path) -> None:
    """The scratch directory is removed after the search: refuse one that holds anything but the
    trial directories a killed search left."""
    scratch = scratch_dir(output_dir)
    if scratch.exists():
        foreign = sorted(p.name for p in scratch.iterdir() if not (p.is_dir() and p.name.startswith(TRIAL_DIR_PREFIX)))
        if foreign or not scratch.is_dir():
            raise UserError(
                f"search: '{scratch}' is where the trials run and is deleted after them, but it holds other files "
                f"(e.g. '{foreign[0] if foreign else scratch.name}'); move them out or choose another training.output_dir"
            )


def cleanup(output_dir: Path) -> None:
    shutil.rmtree(scratch_dir(output_dir), ignore_errors=True)
