"""The Trainer train.py uses, and how it is set up (make_trainer): transformers' own, evaluating in
dataset order, with a loss that is exact across processes, and marking each checkpoint complete
once it is fully written."""

import functools
import time
from pathlib import Path

import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState

from bert_ner.checkpoints import mark_complete
from bert_ner.context import drops_context
from bert_ner.errors import UserError, one_line
from bert_ner.inference import MODEL_INPUT_NAMES
from bert_ner.outputs import CHECKPOINT_PREFIX
from bert_ner.scoring import SeqevalMetrics
from bert_ner.words import IGNORE_INDEX


def token_cross_entropy(
    outputs, labels: torch.Tensor, num_items_in_batch: int | torch.Tensor | None = None, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy summed over labelled sub-tokens, divided by the labelled sub-tokens of the whole
    step: every process of a distributed run and every accumulated batch together.

    Trainer multiplies the loss by the number of processes, expecting the model to divide by that
    global count, but BERT's token-classification head takes a per-process mean: two processes
    trained with doubled gradients. With this loss, two processes of 16 sentences learn what one
    process of 32 learns.

    `label_smoothing` is TrainingArguments.label_smoothing_factor, which Trainer itself applies only
    without a compute_loss_func: (1 - e) * cross-entropy + e * the mean of -log p over all labels,
    per labelled sub-token (transformers' LabelSmoother, and torch's label_smoothing)."""
    logits = outputs["logits"]
    total = torch.nn.functional.cross_entropy(
        logits.view(-1, logits.size(-1)).float(),
        labels.view(-1).to(logits.device),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
        label_smoothing=label_smoothing,
    )
    count = num_items_in_batch if num_items_in_batch is not None else (labels != IGNORE_INDEX).sum()
    return total / count


MODEL_INPUTS = (*MODEL_INPUT_NAMES, "labels")  # what the model takes in training


def model_inputs(dataset):
    """An encoded split with only the columns the model takes (word_index and words_kept stay
    behind for scoring), so that Trainer's batches are the same whatever remove_unused_columns says."""
    if dataset is None or isinstance(dataset, ContextDropout):
        return dataset
    return dataset.select_columns([column for column in MODEL_INPUTS if column in dataset.column_names])


class InOrderTrainer(Trainer):
    """Evaluates and predicts in dataset order, which train.py relies on to pair predictions with
    sentences. (With train_sampling_strategy: group_by_length, transformers 5 length-groups
    evaluation batches too, and predictions come back shuffled.)"""

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is None:
            return None
        # transformers' own choice when not grouping: sequential here, its ordered default when distributed
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None


class MarkCompleteCheckpoints(TrainerCallback):
    """Writes the run's resolved config into each checkpoint after Trainer has saved all of it, so
    that a checkpoint cut off by a kill is never taken for a complete one."""

    def __init__(self, resolved_yaml: str):
        self.resolved_yaml = resolved_yaml

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            mark_complete(Path(args.output_dir) / f"{CHECKPOINT_PREFIX}{state.global_step}", self.resolved_yaml)


class TrainingClock(TrainerCallback, ExportableState):
    """Seconds of training across resumes: each checkpoint keeps the seconds trained until it was
    written (Trainer saves the state of such callbacks and, with
    restore_callback_states_from_checkpoint, rebuilds them from it), so that a run resumed after
    a crash reports its whole training time, not the part after the checkpoint. Work lost in the
    crash (after the last checkpoint) is not counted: the run did not keep it."""

    def __init__(self, seconds_before: float = 0.0):
        self.seconds_before = seconds_before
        self.started = time.monotonic()  # a restored clock is built as training begins
        self.stopped: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "train_runtime" in logs:  # Trainer's own end of training, before it loads the best model
            self.stopped = time.monotonic()

    def seconds(self) -> float:
        return self.seconds_before + (self.stopped or time.monotonic()) - self.started

    def state(self) -> dict:
        return {"args": {"seconds_before": self.seconds()}, "attributes": {}}


def training_seconds(trainer) -> float:
    """The run's TrainingClock reading (the one Trainer may have rebuilt from a checkpoint)."""
    return next(c for c in trainer.callback_handler.callbacks if isinstance(c, TrainingClock)).seconds()


class ContextDropout(torch.utils.data.Dataset):
    """The training sentences encoded twice, with their context and alone; each epoch shows a
    share `probability` of them alone (`drops_context`). EpochOfContextDropout tells it the epoch."""

    def __init__(self, with_context, alone, probability: float, seed: int):
        self.with_context, self.alone, self.probability, self.seed = with_context, alone, probability, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.with_context)

    def __getitem__(self, index: int) -> dict:
        source = self.alone if drops_context(self.seed, self.epoch, index, self.probability) else self.with_context
        row = source[int(index)]
        return {key: row[key] for key in MODEL_INPUTS if key in row}


class EpochOfContextDropout(TrainerCallback):
    """Tells a ContextDropout training set which epoch begins, so each epoch draws anew."""

    def __init__(self, dataset: ContextDropout):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.dataset.epoch = int(state.epoch or 0)


def make_trainer(
    model,
    tokenizer,
    args,
    encoded,
    labels: list[str],
    use_viterbi: bool,
    resolved_yaml: str = "",
    model_init=None,
    early_stopping=None,
    validation_tags: list[list[str]] | None = None,
):
    """The Trainer for `model`, or for a new model from `model_init` at every search trial.
    `validation_tags`, every validation word's tag, make each evaluation score what the final
    scores score (SeqevalMetrics)."""
    from transformers import DataCollatorForTokenClassification

    id2label = model.config.id2label if model is not None else dict(enumerate(labels))
    try:
        return InOrderTrainer(
            model=model,
            model_init=model_init,
            args=args,
            data_collator=DataCollatorForTokenClassification(tokenizer),
            train_dataset=model_inputs(encoded.get("train")),
            eval_dataset=model_inputs(encoded.get("validation")),
            processing_class=tokenizer,
            compute_metrics=SeqevalMetrics(id2label, use_viterbi, validation_tags or []),
            compute_loss_func=functools.partial(token_cross_entropy, label_smoothing=args.label_smoothing_factor),
            callbacks=trainer_callbacks(resolved_yaml, encoded.get("train"), early_stopping),
        )
    except (ValueError, ImportError) as error:  # Trainer's own checks of the arguments, e.g. fsdp in one process
        raise UserError(f"training: {one_line(error)}") from None


def trainer_callbacks(resolved_yaml: str, train_dataset, early_stopping) -> list:
    """Checkpoints marked complete and the clock, always; the epoch for context dropout; early
    stopping if asked."""
    from transformers import EarlyStoppingCallback

    callbacks = [MarkCompleteCheckpoints(resolved_yaml), TrainingClock()]
    if isinstance(train_dataset, ContextDropout):
        callbacks.append(EpochOfContextDropout(train_dataset))
    if early_stopping and early_stopping.patience:
        callbacks.append(EarlyStoppingCallback(early_stopping.patience, early_stopping.threshold))
    return callbacks
