"""Fine-tune BERT for named-entity recognition and save a ready-to-use model.

    python train.py                                   # bert-base-cased on CoNLL-2003 (needs the Hub)
    python train.py --config configs/demo.yaml        # offline demo (make demo): MiniLM fine-tuned on a shipped sample
    python train.py training.learning_rate=3e-5       # override any config key, dotted
    python train.py search.trials=20                  # search hyperparameters first (pip install -r requirements-search.txt)

Everything a run needs is in config.yaml; everything it makes goes to training.output_dir.
"""

import argparse
import dataclasses
import functools
import logging
import shutil
from pathlib import Path

import yaml

from bert_ner import calibration, checkpoints, outputs, search
from bert_ner.calibration import Calibration, Sentence
from bert_ner.config import (
    CONFIG_FILE,
    EVALUATE_ONLY_TRAINING,
    Config,
    describe,
    load_config,
    saved_defaults,
    to_yaml,
)
from bert_ner.context import has_documents, with_context
from bert_ner.data import TAGS, TOKENS, load_splits
from bert_ner.errors import UserError, one_line, quiet_log, require_packages, run_cli, setup_logging
from bert_ner.hardware import add_hardware_defaults
from bert_ner.insights import write_insights
from bert_ner.modeling import (
    Trust,
    build_model,
    input_limit,
    label_order,
    load_tokenizer,
    load_trained,
    named_labels,
    pretrained_config,
)
from bert_ner.record import ModelRecord, write_record
from bert_ner.scoring import metric_names, report_text, score, zero_f1_warning
from bert_ner.training_options import best_model_problems, short_run_warning
from bert_ner.words import (
    DEFAULT_LANGUAGE,
    TREEBANK,
    decode,
    entity_types,
    labels_of,
    rules_of,
    sentence_scores,
    tokenize_and_align,
    visible_words,
)

log = logging.getLogger("bert_ner")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fine-tune BERT for NER; every setting lives in the config file.",
        epilog="config keys (override any as section.key=value):\n" + "\n".join(describe()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=CONFIG_FILE, help=f"YAML config file (default: {CONFIG_FILE})")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value", help="e.g. training.num_train_epochs=1")
    return parser.parse_args(argv)


def banner(stage: str) -> None:
    log.info(f"== {stage} ==")


def training_arguments(cfg: Config):
    """TrainingArguments from the `training:` section; its own checks become config errors."""
    from transformers import TrainingArguments

    try:
        return TrainingArguments(**cfg.training)
    except (ValueError, TypeError, ImportError) as error:
        raise UserError(f"training: {one_line(error)}") from None


def prepare_output_dir(cfg: Config, training_args) -> Path | None:
    """Fail before training, not after it, when the output can't be written; tidy up after a run
    killed while saving; delete old checkpoints when asked to start fresh. Returns the checkpoint
    to resume from, if any. The main process goes first; the others then find what it left."""
    with training_args.main_process_first(local=False, desc="prepare output_dir"):
        if training_args.process_index == 0:
            checkpoints.check_replaceable(cfg.output_dir)
            if cfg.search.trials:
                search.check_scratch(cfg.output_dir)
            checkpoints.recover(cfg.output_dir)
            checkpoints.check_writable(cfg.output_dir)
            if cfg.checkpoints.fresh:
                checkpoints.start_fresh(cfg.output_dir)
    if not cfg.model.fine_tune:
        return None
    return checkpoints.resume_point(cfg.output_dir, cfg.checkpoints.resume, yaml.safe_load(to_yaml(cfg)), saved_defaults())


def load_model(cfg: Config, splits, labels: list[str]):
    """Tokenizer and model, and the label order the model uses."""
    model_cfg = cfg.model
    if model_cfg.scratch is not None:
        tokenizer = load_tokenizer(model_cfg, splits["train"][TOKENS])
        return build_model(model_cfg, labels, tokenizer), tokenizer, labels
    if not model_cfg.fine_tune:
        return *load_trained(model_cfg.name_or_path, model_cfg.revision, trust=Trust.of(model_cfg)), labels
    config = pretrained_config(model_cfg.name_or_path, model_cfg.revision, trust=Trust.of(model_cfg))
    tokenizer = load_tokenizer(model_cfg, None, config.model_type)
    labels = label_order(labels, named_labels(config))
    return build_model(model_cfg, labels, tokenizer, config), tokenizer, labels


def warn_missing_types(labels: list[str], model) -> None:
    """Evaluate-only: say which entity types the model can never predict, rather than score 0 silently."""
    missing = sorted(set(entity_types(labels)) - set(entity_types(list(model.config.id2label.values()))))
    if missing:
        log.warning(f"the model has no labels for {', '.join(missing)}; those types will score 0")


def text_rules(cfg: Config, splits) -> tuple[str, str]:
    """How infer.py is to split raw text for this model (bert_ner.words): data.word_rules and
    data.language where set, else what the training words show (`rules_of`)."""
    shown_rules, shown_language = rules_of(splits["train" if "train" in splits else next(iter(splits))][TOKENS])
    word_rules, language = cfg.data.word_rules or shown_rules, cfg.data.language or shown_language
    if word_rules == TREEBANK and language in ("zh", "ja") and not cfg.data.word_rules:
        log.warning(
            "most training words of Chinese or Japanese text are longer than one character, but infer.py reads "
            "such text one character per word (docs/inference.md); train on character-level data for raw text"
        )
    if (word_rules, language) != (TREEBANK, DEFAULT_LANGUAGE):
        log.info(f"raw text: words by the {word_rules} rules, sentences by pySBD's {language!r} rules")
    return word_rules, language


def without_invisible_words(splits, tokenizer):
    """Every split without the words the tokenizer turns into no sub-token (bert_ner.words.visible_words)."""
    cleaned = {}
    for split, dataset in splits.items():
        cleaned[split] = dataset.map(visible_words, batched=True, fn_kwargs={"tokenizer": tokenizer})
        if dropped := sum(map(len, dataset[TOKENS])) - sum(map(len, cleaned[split][TOKENS])):
            log.warning(
                f"{split}: {dropped} words become no sub-token at all (zero-width or control characters, or empty); "
                "the model cannot see them, so they are left out of training and scores"
            )
    return cleaned


def encode(splits, tokenizer, labels: list[str], cfg: Config, max_length: int, seed: int = 0):
    """Sub-token inputs and labels for every split, with document context when configured and the
    data has documents; and the context used. Only train uses label_all_tokens: scores are per word.
    `seed` draws which training sentences go without context in each epoch (data.context_dropout)."""
    label2id = {label: i for i, label in enumerate(labels)}
    context_tokens = cfg.data.context_tokens
    if context_tokens and not has_documents(splits):
        log.warning(
            f"data.context_tokens is {context_tokens}, but the data has no documents (-DOCSTART- lines or "
            "data.document_column); training on sentences alone (data.context_tokens: 0 silences this)"
        )
        context_tokens = 0
    encoded = {}
    for split, dataset in splits.items():
        options = {
            "tokenizer": tokenizer,
            "label2id": label2id,
            "max_length": max_length,
            "label_all_tokens": cfg.data.label_all_tokens and split == "train",
        }
        alone = dataset
        if context_tokens:
            dataset = with_context(dataset, tokenizer, context_tokens, max_length)
        encoded[split] = dataset.map(tokenize_and_align, batched=True, remove_columns=dataset.column_names, fn_kwargs=options)
        if lost := sum(len(words) for words in dataset[TOKENS]) - sum(encoded[split]["words_kept"]):
            log.warning(
                f"{split}: {lost} words lie beyond max_length {max_length} and cannot be labelled; they count as O in scores"
            )
        if split == "train" and context_tokens and cfg.data.context_dropout:
            from bert_ner.trainer import ContextDropout

            # Validation and test keep their context; training also sees sentences alone.
            alone = alone.map(tokenize_and_align, batched=True, remove_columns=alone.column_names, fn_kwargs=options)
            encoded[split] = ContextDropout(encoded[split], alone, cfg.data.context_dropout, seed)
    return encoded, context_tokens


def new_model(cfg: Config, splits, labels: list[str]):
    """A model as load_model made it, afresh: for each search trial, and the training after the
    search. It says nothing load_model has not said already."""
    with quiet_log():
        return load_model(cfg, splits, labels)[0]


def search_hyperparameters(cfg: Config, splits, tokenizer, encoded, labels: list[str]) -> dict[str, str]:
    """Try search.trials settings, put the best into cfg.training, and return the report files."""
    search.require_optuna()  # before the first trial, not after
    scratch = {"output_dir": str(search.scratch_dir(cfg.output_dir))}
    trial_cfg = dataclasses.replace(cfg, training=cfg.training | search.TRIAL_TRAINING | scratch)
    model_init = functools.partial(new_model, cfg, splits, labels)
    from bert_ner.trainer import make_trainer

    trainer = make_trainer(
        None,
        tokenizer,
        training_arguments(trial_cfg),
        encoded,
        labels,
        cfg.inference.viterbi,
        model_init=model_init,
        early_stopping=cfg.early_stopping,  # a trial trains as the final run will
        validation_tags=splits["validation"][TAGS],
    )
    try:
        final = training_arguments(cfg)  # how the final run keeps its model is how a trial is judged
        best_metric = final.metric_for_best_model if final.load_best_model_at_end else None
        best, trials = search.run_search(trainer, cfg.search, cfg.training["seed"], best_metric, final.greater_is_better)
    finally:
        search.cleanup(cfg.output_dir)
    table = search.trials_table(trials, cfg.search.objective)
    log.info("trials:\n" + "\n".join(table))
    for key, value in best.items():
        log.info(f"best: training.{key} = {value!r}")
    cfg.training |= best
    return {outputs.BEST_FILE: search.best_yaml(best, trials, cfg.search.objective), outputs.TRIALS_FILE: "\n".join(table) + "\n"}


def train(trainer, cfg: Config, resume_from: Path | None) -> dict:
    """Fine-tune, continuing from `resume_from` when a killed run left it; time and steps taken
    (the time across resumes: TrainingClock)."""
    from bert_ner.trainer import training_seconds

    args = trainer.args
    sentences = len(trainer.train_dataset)
    batching = (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.world_size)
    if warning := short_run_warning(sentences, *batching, args.num_train_epochs, args.max_steps):
        log.warning(warning)
    checkpoints.check_room(cfg.output_dir, trainer.model)
    banner("train")
    if resume_from:
        checkpoints.check_labels(resume_from, list(trainer.model.config.id2label.values()))
        log.info(f"resuming from {resume_from}")
        if stopped := checkpoints.stopped_early_at(resume_from):
            # Trainer clears the decision to stop when training begins; ending the run at the step
            # where it stopped makes Trainer only load the best model, as the stopped run would have.
            log.info(f"the run had stopped early at step {stopped}; keeping its best model without training on")
            trainer.args.max_steps = stopped
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    epochs = round(trainer.state.epoch or 0, 2)
    planned = trainer.args.num_train_epochs if cfg.training.get("max_steps", -1) <= 0 else None
    if cfg.early_stopping.patience and planned and epochs < planned:
        log.info(
            f"early stopping: validation {trainer.args.metric_for_best_model} did not improve for "
            f"{cfg.early_stopping.patience} evaluations; stopped after epoch {epochs:g} of {planned:g}"
        )
    return {"training": {"runtime_s": round(training_seconds(trainer), 1), "steps": result.global_step, "epochs": epochs}}


def predict(trainer, words, encoded_split, use_viterbi: bool) -> tuple[list[list[str]], list[list[str]], list[Sentence]]:
    """Gold and predicted tags for every word of a split, paired by word_ids, and each sentence's
    word probabilities (for calibration); a word truncated away or without any sub-token is predicted O."""
    from bert_ner.trainer import model_inputs

    # Only the logits are needed here: the scores come from the words below, not compute_metrics.
    compute_metrics, trainer.compute_metrics = trainer.compute_metrics, None
    try:
        output = trainer.predict(model_inputs(encoded_split))
    finally:
        trainer.compute_metrics = compute_metrics
    labels = labels_of(trainer.model.config.id2label)
    gold = words[TAGS]
    sentences = [
        Sentence(*sentence_scores(word_index, logits, len(tags)), tags, sentence_words)
        for word_index, logits, tags, sentence_words in zip(encoded_split["word_index"], output.predictions, gold, words[TOKENS])
    ]
    predicted = [decode(s.probabilities, s.seen, labels, use_viterbi).tags for s in sentences]
    return gold, predicted, sentences


def evaluate(
    trainer, splits, encoded, use_viterbi: bool, fine_tuned: bool = True
) -> tuple[dict, dict, list[list[str]] | None, dict]:
    """Scores and reports for validation and test, the test predictions, and each split's
    sentences with their word probabilities; `fine_tuned`: whether the model trained here."""
    scores, reports, test_predictions, sentences = {}, {}, None, {}
    for split in ("validation", "test"):
        if split not in splits:
            continue
        banner(f"score {split}")
        gold, predicted, sentences[split] = predict(trainer, splits[split], encoded[split], use_viterbi)
        scores[split], reports[split] = score(gold, predicted), report_text(gold, predicted)
        if scores[split]["f1"] == 0:
            log.warning(zero_f1_warning(split, gold, predicted, trainer.state.global_step if fine_tuned else None))
        if split == "test":
            test_predictions = predicted
    return scores, reports, test_predictions, sentences


def unrecorded_precision(cfg: Config, splits: dict) -> str | None:
    """Why the threshold inference.min_precision asks for cannot be recorded with the model; None
    when it can be, or none is asked."""
    if cfg.inference.min_precision is None:
        return None
    if not cfg.model.fine_tune:
        return "model.fine_tune is false, so no model is saved to record it with"
    if not cfg.inference.calibrate:
        return "it needs calibrated scores; set inference.calibrate: true"
    if "validation" not in splits:
        return "it is chosen on validation, and the data has no validation split"
    return None


def calibrate(cfg: Config, sentences: dict, labels: list[str], train_split) -> tuple[Calibration | None, dict]:
    """The calibration fitted on validation (bert_ner.calibration) with the entities of
    `train_split`, and its measures on validation and test for metrics.json; none without
    validation, or with inference.calibrate off."""
    if not cfg.inference.calibrate or "validation" not in sentences:
        return None, {}
    banner("calibrate scores")
    viterbi, asked = cfg.inference.viterbi, cfg.inference.min_precision
    known = calibration.training_entities(train_split[TOKENS], train_split[TAGS])
    fitted = calibration.fit(sentences["validation"], labels, viterbi, asked, known)
    if asked is not None and fitted.threshold is None:
        log.warning(
            f"no score threshold reaches precision {asked} on validation, so none is recorded; "
            "ask for less with inference.min_precision"
        )
    measured = calibration.metrics_entry(fitted, sentences, labels, viterbi)
    split = "test" if "test" in measured else "validation"
    shown = measured[split]
    threshold = ""
    if fitted.threshold is not None:
        kept = measured["validation"]["threshold"]["kept"] == measured["validation"]["after"]["entities"]
        threshold = f"; threshold {fitted.threshold:g} for precision {asked:g}" + (" (keeps every entity)" if kept else "")
    log.info(
        f"temperature {fitted.temperature:g}; on {split}, entity ECE {shown['before']['ece']:.3f} -> "
        f"{shown['after']['ece']:.3f}, Brier {shown['before']['brier']:.3f} -> {shown['after']['brier']:.3f}{threshold}"
    )
    return fitted, {"calibration": measured}


def save(
    trainer, cfg: Config, record: ModelRecord, splits, scores: dict, reports: dict, test_predictions, extra: dict[str, str]
) -> None:
    """Model, tokenizer, the model's record, resolved config, metrics, reports, test predictions, the training log, plots,
    the error analysis and the model card, written beside output_dir and then put in its place
    whole: never a half-written model."""
    partial = checkpoints.partial_dir(cfg.output_dir)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    if cfg.model.fine_tune:
        trainer.save_model(str(partial))
        write_record(partial, record)
    (partial / outputs.RESOLVED_CONFIG_FILE).write_text(to_yaml(cfg), encoding="utf-8")
    outputs.write_metrics(partial, scores)
    outputs.write_reports(partial, reports)
    if test_predictions is not None:
        test = splits["test"]
        outputs.write_predictions(partial, test[TOKENS], test[TAGS], test_predictions)
    outputs.write_log(partial, trainer.state.log_history)
    for name, text in extra.items():
        (partial / name).write_text(text, encoding="utf-8")
    try:
        write_insights(partial, name=cfg.output_dir.name, path=str(cfg.output_dir))
    except Exception as error:  # a plot or report that fails must not cost the model it describes
        log.warning(
            f"could not write the plots, error analysis or model card ({error!r}); the model is saved: "
            f"run python -m bert_ner.insights {cfg.output_dir} to retry"
        )
    outputs.write_own_files(partial)  # last: what a rerun may replace
    checkpoints.publish(cfg.output_dir, partial)


def summary(scores: dict, output_dir: Path) -> str:
    return " | ".join(outputs.f1_summary(scores) + [f"saved to {output_dir}/"])


def run(args: argparse.Namespace) -> None:
    require_packages(
        "torch",
        "transformers",
        "datasets",
        hint="training needs PyTorch (docs/training.md: Install), then pip install -r requirements.txt",
    )
    from transformers.utils import logging as transformers_logging

    setup_logging()
    transformers_logging.disable_progress_bar()  # weight loading and writing bars; Trainer's own bar stays
    cfg = load_config(args.config, args.overrides)
    add_hardware_defaults(cfg.training)
    if not cfg.model.fine_tune:
        cfg.training |= EVALUATE_ONLY_TRAINING
    training_args = training_arguments(cfg)
    with checkpoints.removed_if_failed(cfg.output_dir):
        fit(cfg, training_args, prepare_output_dir(cfg, training_args))


def fit(cfg: Config, training_args, resume_from: Path | None) -> None:
    """Data -> model -> (search) -> train -> score -> save."""
    from transformers import set_seed

    banner("data")
    splits, labels = load_splits(cfg.data)
    word_rules, language = text_rules(cfg, splits)
    log.info(", ".join(f"{split} {len(dataset)} sentences" for split, dataset in splits.items()) + f"; labels {' '.join(labels)}")
    if cfg.model.fine_tune and (problems := best_model_problems(cfg.training, metric_names(entity_types(labels)))):
        raise UserError("\n".join(problems))
    if reason := unrecorded_precision(cfg, splits):  # said now, not after training
        log.warning(f"inference.min_precision {cfg.inference.min_precision:g} will not be recorded: {reason}")

    banner("model")
    set_seed(training_args.seed)
    model, tokenizer, labels = load_model(cfg, splits, labels)
    if not cfg.model.fine_tune:
        warn_missing_types(labels, model)
    log.info(f"{model.config.model_type} with {model.num_parameters() / 1e6:.1f}M parameters")
    splits = without_invisible_words(splits, tokenizer)
    max_length = input_limit(tokenizer, model, cfg.data.max_length)
    encoded, context_tokens = encode(splits, tokenizer, labels, cfg, max_length, training_args.seed)

    search_files = {}
    if cfg.search.trials:
        banner(f"search: {cfg.search.trials} trials")
        search_files = search_hyperparameters(cfg, splits, tokenizer, encoded, labels)
        training_args = training_arguments(cfg)
        set_seed(training_args.seed)  # the final model starts as a plain run with these settings would
        model = new_model(cfg, splits, labels)
    from bert_ner.trainer import make_trainer

    trainer = make_trainer(
        model,
        tokenizer,
        training_args,
        encoded,
        labels,
        cfg.inference.viterbi,
        to_yaml(cfg),
        early_stopping=cfg.early_stopping,
        validation_tags=splits["validation"][TAGS] if "validation" in splits else None,
    )

    metrics = train(trainer, cfg, resume_from) if cfg.model.fine_tune else {}
    scores, reports, test_predictions, sentences = evaluate(trainer, splits, encoded, cfg.inference.viterbi, cfg.model.fine_tune)
    if trainer.is_world_process_zero():
        model_labels = labels_of(trainer.model.config.id2label)  # the columns of the probabilities
        fitted, calibration_metrics = (None, {})
        if cfg.model.fine_tune:
            fitted, calibration_metrics = calibrate(cfg, sentences, model_labels, splits["train"])
        metrics |= calibration_metrics
        # What inference must do with the model, as it was trained and scored; the run's config
        # records the context it really had (none where the data has no documents).
        record = ModelRecord(
            max_length=max_length,
            context_tokens=context_tokens,
            viterbi=cfg.inference.viterbi,
            word_rules=word_rules,
            language=language,
            calibration=fitted,
        )
        as_trained = dataclasses.replace(
            cfg, data=dataclasses.replace(cfg.data, context_tokens=context_tokens, word_rules=word_rules, language=language)
        )
        save(trainer, as_trained, record, splits, scores | metrics, reports, test_predictions, search_files)
        log.info(summary(scores, cfg.output_dir))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cli(functools.partial(run, args), args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
