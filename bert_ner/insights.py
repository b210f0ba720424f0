"""Insight into a finished run, made from the files it wrote: plots, the test-set error analysis
and the model card. train.py writes them at the end of every run; to make them again:

    python -m bert_ner.insights bert-ner
"""

import argparse
import sys
from pathlib import Path

import yaml

from bert_ner import analysis, plots
from bert_ner.card import model_card
from bert_ner.errors import UserError, require_packages, run_cli, shown_names
from bert_ner.outputs import (
    CONFUSION,
    ERRORS_JSONL,
    ERRORS_MD,
    LEARNING_CURVES,
    LOG_FILE,
    METRICS_FILE,
    MODEL_CARD,
    PER_TYPE,
    PREDICTIONS_FILE,
    RELIABILITY,
    RESOLVED_CONFIG_FILE,
    add_own_files,
    edited_files,
    read_labels,
    read_log,
    read_metrics,
    read_own_files,
    read_predictions,
)
from bert_ner.record import read_record

# what write_insights may write
INSIGHTS = [LEARNING_CURVES, PER_TYPE, CONFUSION, RELIABILITY, ERRORS_MD, ERRORS_JSONL, MODEL_CARD]


def write_insights(output_dir: Path, name: str | None = None, path: str | None = None) -> list[str]:
    """Write plots, errors.md/errors.jsonl and the model card into output_dir; return their names.
    `name` is how the card refers to the model (default: the directory's name), `path` where its
    usage snippets load it from (default: output_dir)."""
    metrics = read_metrics(output_dir)
    written = []
    rows = read_log(output_dir) if (output_dir / LOG_FILE).is_file() else []
    # A run shorter than logging_steps logged no training loss, but its evaluations still make a
    # curve; an evaluate-only run (no "training" in its metrics) has none to draw.
    if "training" in metrics and any(row.get("loss") is not None or row.get("eval_loss") is not None for row in rows):
        plots.learning_curves(rows, output_dir / LEARNING_CURVES)
        written.append(LEARNING_CURVES)
    if "test" in metrics:
        plots.per_type_scores(metrics["test"]["per_type"], output_dir / PER_TYPE)
        written.append(PER_TYPE)
    if calibrated := metrics.get("calibration"):
        split = "test" if "test" in calibrated else "validation"
        plots.reliability_diagram(calibrated[split], output_dir / RELIABILITY, split)
        written.append(RELIABILITY)
    if (output_dir / PREDICTIONS_FILE).is_file():
        words, gold, predicted = read_predictions(output_dir)
        plots.confusion_matrix(analysis.type_confusion(gold, predicted), output_dir / CONFUSION)
        errors = analysis.all_errors(gold, predicted)
        (output_dir / ERRORS_MD).write_text(analysis.errors_markdown(words, errors), encoding="utf-8")
        (output_dir / ERRORS_JSONL).write_text(analysis.errors_jsonl(words, errors), encoding="utf-8")
        written += [CONFUSION, ERRORS_MD, ERRORS_JSONL]
    labels = read_labels(output_dir)
    if labels:
        resolved = yaml.safe_load((output_dir / RESOLVED_CONFIG_FILE).read_text(encoding="utf-8"))
        card = model_card(resolved, metrics, labels, name or output_dir.name, path or str(output_dir), read_record(output_dir))
        (output_dir / MODEL_CARD).write_text(card, encoding="utf-8")
        written.append(MODEL_CARD)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Draw the plots, error analysis and model card of a run again.")
    parser.add_argument("output_dir", type=Path, help="a directory train.py wrote")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)

    def body() -> None:
        require_packages("matplotlib", hint="bert_ner.insights draws its plots with it: pip install matplotlib")
        if not (args.output_dir / METRICS_FILE).is_file():
            raise UserError(f"no {METRICS_FILE} in {args.output_dir}/: give a directory train.py wrote")
        if edited := edited_files(args.output_dir, INSIGHTS):
            it = "it" if len(edited) == 1 else "them"
            raise UserError(
                f"{args.output_dir}/: {shown_names(edited)} changed since bert-ner wrote {it}, and this would write {it} "
                f"again; move {it} out first"
            )
        recorded, written = [name for name in INSIGHTS if name in (read_own_files(args.output_dir) or set())], []
        try:
            written = write_insights(args.output_dir)
        finally:  # also when a plot fails midway: the files it already wrote again must not read as edited
            add_own_files(args.output_dir, recorded + written)
        for name in written:
            print(args.output_dir / name)

    return run_cli(body, args.debug)


if __name__ == "__main__":
    sys.exit(main())
