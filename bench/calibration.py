"""Calibrated entity scores of a model train.py saved: fitted on CoNLL validation, measured on test
and cross-domain, with the thresholds that keep a precision (bert_ner.calibration).

    python bench/calibration.py --model runs/minilm-conll2003 [--train ../shared/data/conll2003/train.txt] \\
        [--validation ../shared/data/conll2003/valid.txt] [--test ../shared/data/conll2003/test.txt] \\
        [--wnut ../shared/data/wnut17/test.txt] [--min-precision 0.90 0.95] [--machine M] \\
        [--write DIR [--record-min-precision P]]

The model is only read; --train is the data it was trained on (its entities are the known ones,
bert_ner.calibration). For each test set: entity-level ECE (10 equal-width bins) and Brier score
before calibration, with the temperature alone, and after (temperature and isotonic map); span F1
before and after (the tags do not change); and on each test set, the precision and recall kept
at each --min-precision's threshold chosen on validation, and at the one infer.py --min-precision
estimates from that test set's calibrated scores alone (no labels). --write DIR copies the model
to DIR with the calibration (and, with --record-min-precision P, P's threshold) in its record, and the
calibration's measures in its metrics.json, reliability.png and model card, as train.py would
have written them: a calibrated model for infer.py and serve.py. With --machine, the figures also
go to bench/results/calibration-NAME.json (NAME: the model directory's name) for docs/results.md;
without it, they are only printed.
"""

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

from results import write_result

from bert_ner import Tagger
from bert_ner.calibration import (
    ASKED_PRECISION,
    Calibration,
    EntityTable,
    Sentence,
    at_threshold,
    calibrated,
    entity_table,
    estimated_threshold,
    fit,
    is_asked_precision,
    measure,
    metrics_entry,
    scored,
    threshold_of,
    training_entities,
)
from bert_ner.data import map_types, read_conll, to_iob2
from bert_ner.errors import run_cli
from bert_ner.insights import write_insights
from bert_ner.outputs import METRICS_FILE, add_own_files, read_metrics, write_metrics
from bert_ner.record import read_record, write_record
from bert_ner.scoring import score
from bert_ner.tags import DOCUMENT, TAGS, TOKENS
from bert_ner.words import decode, shown_score

SHARED = Path("../shared/data")  # beside the checkout, where bench/ is run from (its root), as every bench script
# WNUT-17's types as CoNLL-2003's, as bench/wnut17.sh maps them
WNUT_TYPES = {"person": "PER", "location": "LOC", "corporation": "ORG", "group": "ORG", "product": "MISC"}
WNUT_TYPES["creative-work"] = "MISC"
WNUT = SHARED / "wnut17" / "test.txt"


def sentences_of(tagger: Tagger, path: Path, label_map: dict[str, str] | None = None) -> list[Sentence]:
    """A CoNLL file's sentences as the model sees them, their gold tags in IOB2 (types mapped by `label_map`)."""
    rows = read_conll(path)
    progress(f"tagging {path} ({len(rows[TOKENS])} sentences)")
    gold = [to_iob2(map_types(tags, label_map) if label_map else tags) for tags in rows[TAGS]]
    found = tagger.word_probabilities(rows[TOKENS], rows[DOCUMENT])
    return [Sentence(probabilities, seen, tags, words) for (probabilities, seen), tags, words in zip(found, gold, rows[TOKENS])]


def f1(sentences: list[Sentence], labels: list[str], use_viterbi: bool, temperature: float) -> float:
    """Span F1 of the tags decoded at `temperature` (percent)."""
    predicted = [decode(s.probabilities, s.seen, labels, use_viterbi, temperature).tags for s in sentences]
    return round(100 * score([s.gold for s in sentences], predicted)["f1"], 2)


def report(sentences: list[Sentence], labels: list[str], calibration: Calibration, use_viterbi: bool) -> dict:
    measured = measure(sentences, labels, calibration, use_viterbi)
    return {
        "sentences": len(sentences),
        "f1_before": f1(sentences, labels, use_viterbi, 1.0),
        "f1_after": f1(sentences, labels, use_viterbi, calibration.temperature),
        **{stage: measured[stage] for stage in ("before", "temperature", "after")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="a directory train.py wrote (only read)")
    parser.add_argument("--train", type=Path, default=SHARED / "conll2003" / "train.txt", help="the model's training data")
    parser.add_argument("--validation", type=Path, default=SHARED / "conll2003" / "valid.txt")
    parser.add_argument("--test", type=Path, default=SHARED / "conll2003" / "test.txt")
    parser.add_argument("--wnut", type=Path, default=None, help=f"cross-domain test set (default: {WNUT}, where it exists)")
    parser.add_argument("--min-precision", type=float, nargs="*", default=[0.90, 0.95], help="the precisions measured")
    parser.add_argument("--write", type=Path, default=None, help="copy the model here, calibrated (a new directory)")
    parser.add_argument(
        "--record-min-precision",
        type=float,
        metavar="P",
        default=None,
        help="with --write: also record the threshold that keeps precision P on validation, as train.py "
        "inference.min_precision does (default: none, every entity kept)",
    )
    parser.add_argument("--device", default="auto", help="where the model runs: auto (a GPU if there is one), cpu, cuda")
    parser.add_argument(
        "--machine",
        default=None,
        help='where it runs, as docs/results.md prints it ("2 CPU cores"): also record the figures in bench/results/',
    )
    parser.add_argument("--command", default=None, help="the command to record as the figures' source (default: this one)")
    args = parser.parse_args()
    asked = [*args.min_precision, *([] if args.record_min_precision is None else [args.record_min_precision])]
    wrong = [p for p in asked if not is_asked_precision(p)]
    if wrong:
        parser.error(f"precision {wrong[0]:g}: --min-precision and --record-min-precision take {ASKED_PRECISION}")
    if args.write and args.write.exists():
        parser.error(f"--write {args.write}: it exists; name a new directory for the calibrated copy")
    if args.record_min_precision is not None and not args.write:
        parser.error("--record-min-precision records a threshold in the copy --write makes; give --write DIR too")
    if not args.model.is_dir():
        parser.error(f"--model {args.model}: no such directory; give a directory train.py wrote")
    for split in ("train", "validation", "test"):  # before the model loads
        if not getattr(args, split).is_file():
            parser.error(f"--{split} {getattr(args, split)}: no such file; give the model's {split} data, a CoNLL file")
    if args.wnut is not None and not args.wnut.is_file():
        parser.error(f"--wnut {args.wnut}: no such file; give WNUT-17's test set, a CoNLL file, or leave --wnut out")
    if args.wnut is None and WNUT.is_file():
        args.wnut = WNUT
    elif args.wnut is None:
        print(f"no WNUT-17 test set at {WNUT}: measuring on CoNLL alone (--wnut names one)", file=sys.stderr)
    raise SystemExit(run_cli(lambda: calibrate(args), debug=False))


def calibrate(args: argparse.Namespace) -> None:
    tagger = Tagger.load(str(args.model), device=args.device)
    labels, use_viterbi = tagger.labels, tagger.record.viterbi
    train = read_conll(args.train)
    known = training_entities(train[TOKENS], [to_iob2(tags) for tags in train[TAGS]])
    validation = sentences_of(tagger, args.validation)
    progress("fitting the calibration on validation")
    calibration = fit(validation, labels, use_viterbi, known=known)
    test = sentences_of(tagger, args.test)
    figures = {
        "model": args.model.name,
        "temperature": calibration.temperature,
        "map_points": len(calibration.points[0]) if calibration.points else 0,
        "known_map_points": len(calibration.known_points[0]) if calibration.known_points else 0,
        "bins": "10 equal-width bins of the entity score; an entity is right when its span and type are gold's",
        "validation": report(validation, labels, calibration, use_viterbi),
        "test": report(test, labels, calibration, use_viterbi),
    }
    validation_table = entity_table(validation, labels, use_viterbi, calibration.temperature)
    targets = {"test": scored(test, labels, calibration, use_viterbi)}
    if args.wnut:
        wnut = sentences_of(tagger, args.wnut, WNUT_TYPES)
        figures["wnut17_test"] = report(wnut, labels, calibration, use_viterbi)
        targets["wnut17_test"] = scored(wnut, labels, calibration, use_viterbi)
    figures["thresholds"] = [thresholds(validation_table, calibration, targets, p) for p in args.min_precision]
    print(summary(figures))
    if args.machine:
        write_result(f"calibration-{args.model.name}", figures, args.machine, args.command)
    if args.write:
        shutil.copytree(args.model, args.write)
        recorded = args.record_min_precision
        row = None if recorded is None else thresholds(validation_table, calibration, targets, recorded)
        threshold = None if row is None else row["threshold"]
        chosen = dataclasses.replace(calibration, min_precision=recorded, threshold=threshold)
        write_record(args.write, dataclasses.replace(read_record(args.model), calibration=chosen))
        describe(args.write, chosen, {"validation": validation, "test": test}, labels, use_viterbi)
        if row is not None and recorded not in args.min_precision:  # not among the summary's lines already
            print("\n".join(threshold_lines(row)))
        print(f"calibrated copy in {args.write}" + recorded_note(recorded, threshold))


def progress(step: str) -> None:
    """A step of the run, on stderr as it starts: tagging a large test set takes minutes."""
    print(f"{step} ...", file=sys.stderr, flush=True)


def recorded_note(precision: float | None, threshold: float | None) -> str:
    """What the calibrated copy drops, in the words of its last line."""
    if precision is None:
        return ""
    if threshold is None:
        return f", with no threshold: no score keeps precision {precision:g} on validation, so every entity is kept"
    if threshold == 0:
        return f", with threshold 0: the validation entities reach precision {precision:g} without one, so none is dropped"
    return f", dropping entities scored below {shown_score(threshold)} (precision {precision:g} on validation)"


def summary(figures: dict) -> str:
    """The figures in a few lines for the terminal: ECE before and after on each test set, and
    the precision and recall each threshold keeps there."""
    lines = [f"temperature {figures['temperature']:g}"]
    for name in ("test", "wnut17_test"):
        if name in figures:
            before, after = figures[name]["before"], figures[name]["after"]
            lines.append(
                f"{name}: entity ECE {before['ece']:.3f} -> {after['ece']:.3f}, "
                f"Brier {before['brier']:.3f} -> {after['brier']:.3f}"
            )
    for row in figures["thresholds"]:
        lines += threshold_lines(row)
    return "\n".join(lines)


def threshold_lines(row: dict) -> list[str]:
    """What one precision's thresholds keep on each test set (a row of `thresholds`), a line each."""
    precision = f"min precision {row['min_precision']:g}"
    lines = (
        [] if row["threshold"] is not None else [f"{precision}: no validation threshold reaches it (by the rule of succession)"]
    )
    for name in ("test", "wnut17_test"):
        for kind, kept in (("validation", row.get(name)), ("estimated", row.get(f"{name}_estimated"))):
            if kept is not None:
                threshold = "no threshold needed" if kept["threshold"] == 0 else f"threshold {shown_score(kept['threshold'])}"
                lines.append(
                    f"{precision}, {kind} {threshold} on {name}: "
                    f"precision {100 * kept['precision']:.2f}, recall {100 * kept['recall']:.2f}"
                )
    return lines


def thresholds(validation: EntityTable, calibration: Calibration, targets: dict[str, tuple], precision: float) -> dict:
    """What `precision` keeps: the threshold recorded from validation's labels (`threshold_of`),
    measured on validation and each target (calibrated scores, rightness, gold count); and on
    each target, the one infer.py --min-precision estimates from the target's scores alone."""
    threshold = threshold_of(validation, calibration, precision)
    row = {"min_precision": precision, "threshold": threshold}
    if threshold is not None:
        row["validation"] = at_threshold(
            calibrated(validation, calibration), validation.correct, validation.gold_count, threshold
        )
        row |= {name: at_threshold(*target, threshold) for name, target in targets.items()}
    for name, target in targets.items():
        estimated = estimated_threshold(target[0], precision)
        row[f"{name}_estimated"] = None if estimated is None else at_threshold(*target, estimated)
    return row


def describe(model_dir: Path, chosen: Calibration, splits: dict[str, list[Sentence]], labels: list[str], use_viterbi: bool):
    """A calibrated copy's metrics.json gets its `calibration`, as train.py writes it, and its
    plots and model card are drawn again (reliability.png, the card's words on scores)."""
    metrics = read_metrics(model_dir) if (model_dir / METRICS_FILE).is_file() else {}  # none for a model not train.py's
    metrics["calibration"] = metrics_entry(chosen, splits, labels, use_viterbi)
    write_metrics(model_dir, metrics)
    add_own_files(model_dir, write_insights(model_dir))


if __name__ == "__main__":
    main()
