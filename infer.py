"""Find named entities with a model train.py saved (or any token-classification model).

python infer.py "Barack Obama was born in Hawaii"
python infer.py --file news.txt --json > entities.jsonl      # one text per line, streamed
cat news.txt | python infer.py                               # stdin works too (or TEXT "-")
python infer.py --ray --file 'corpus/*.jsonl' --output tagged/ --backend onnx-int8 --workers 4   # on Ray Data
"""

import argparse
import functools
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from bert_ner import spans
from bert_ner.calibration import ASKED_PRECISION, estimated_threshold, is_asked_precision
from bert_ner.data import decoded_lines
from bert_ner.errors import UserError, require_packages, run_cli
from bert_ner.inference import kept, require_calibrated, threshold_note
from bert_ner.options import add_model_options, check_model, check_model_options, load_tagger, trust
from bert_ner.outputs import BAD_LINES_FILE
from bert_ner.record import ModelRecord
from bert_ner.words import shown_score

STDIN = "-"
SHOWN_BAD_LINES = 5  # of a --ray run's bad lines, shown on stderr; all are in the output's BAD_LINES_FILE
FORMATS = ("table", "jsonl", "conll", "spans", "label-studio")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", metavar="TEXT", help='texts to tag; "-" reads stdin, one text per line')
    parser.add_argument("--file", help='read texts from this file, one per line ("-" = stdin)')
    parser.add_argument(
        "--format",
        default=None,  # table, unless --json: None tells an explicit --format table apart
        choices=FORMATS,
        help="table (for people, the default); jsonl (one JSON object per line); conll (a word and its tag per line, "
        "for rescoring); spans (span records train.py reads back); label-studio (a task list with the entities as "
        "pre-annotations)",
    )
    parser.add_argument("--json", action="store_true", help="the same as --format jsonl")
    parser.add_argument(
        "--documents",
        action="store_true",
        help="consecutive non-blank lines form one document and are each other's context (a blank line ends it); "
        "each line is still its own record. For models trained with data.context_tokens",
    )
    parser.add_argument(
        "--html", metavar="PATH", help="also write a page with the entities highlighted (self-contained, opens offline)"
    )
    add_model_options(parser)
    parser.add_argument(
        "--min-precision",
        type=float,
        metavar="P",
        help="instead of --min-score, for calibrated models: keep the best-scored entities of the whole input while "
        "their mean calibrated score, the precision to expect, stays at least P (above 0, below 1: calibrated "
        "scores never reach 1), and print the threshold that does it, to pass as --min-score elsewhere. The input "
        "is tagged in full, and held in memory, before anything is written (docs/inference.md)",
    )
    add_ray_options(parser)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    check_ray_options(parser, args)  # before --format gets its default: --ray takes none
    if args.json or args.ray:
        if args.format not in (None, "jsonl"):
            parser.error(f"--json is --format jsonl; give one of them, not --format {args.format} too")
        args.format = "jsonl"
    args.format = args.format or "table"
    check_model_options(parser, args)
    if args.min_precision is not None:
        if not is_asked_precision(args.min_precision):
            parser.error(f"--min-precision {args.min_precision:g}: give {ASKED_PRECISION}")
        if args.min_score is not None or args.ray:
            parser.error(
                "--min-precision picks the score threshold from the whole input, so it takes no --min-score and no "
                "--ray; run it on a sample, then pass the threshold it prints as --min-score"
            )
    return args


RAY_HINT = "infer.py --ray needs Ray Data: pip install -r requirements-ray.txt"
RAY_DEFAULTS = {"output": None, "workers": 1, "cpus_per_worker": 1.0, "gpus_per_worker": 0.0, "text_field": "text"}


def add_ray_options(parser: argparse.ArgumentParser) -> None:
    ray = parser.add_argument_group(
        "Ray Data (--ray)", "tag files on a Ray cluster (RAY_ADDRESS, ray job submit) or a local one started for the run"
    )
    ray.add_argument(
        "--ray",
        action="store_true",
        help="tag --file's files (a file, directory, quoted glob or URL) on Ray Data into --output: *.jsonl and *.json are "
        "JSON lines with a text field, *.parquet has a text column, any other file has a text per line",
    )
    ray.add_argument("--output", metavar="DIR", help="directory of output shards; appears only when complete")
    ray.add_argument(
        "--workers", type=int, metavar="N", default=RAY_DEFAULTS["workers"], help="Ray actors, each loading the model once"
    )
    ray.add_argument(
        "--cpus-per-worker", type=float, metavar="N", default=RAY_DEFAULTS["cpus_per_worker"], help="CPUs each worker holds"
    )
    ray.add_argument(
        "--gpus-per-worker",
        type=float,
        metavar="N",
        default=RAY_DEFAULTS["gpus_per_worker"],
        help="GPUs each worker holds (PyTorch backend)",
    )
    ray.add_argument(
        "--text-field",
        metavar="NAME",
        default=RAY_DEFAULTS["text_field"],
        help="the text's field (JSON lines) or column (Parquet)",
    )
    ray.add_argument(
        "--output-format",
        default="jsonl",
        choices=("jsonl", "parquet"),
        help="shards of JSON lines (infer.py --json's) or Parquet",
    )


def check_ray_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """parser.error for Ray options without --ray, and for what --ray cannot do."""
    if not args.ray:
        if given := [name for name, default in RAY_DEFAULTS.items() if getattr(args, name) != default]:
            parser.error(f"--{given[0].replace('_', '-')} is for --ray; add --ray, or drop it")
        return
    if not args.file or not args.output or args.texts:
        parser.error("--ray tags files: give --file PATH_OR_GLOB and --output DIR, and no TEXT")
    if args.format not in (None, "jsonl") or args.html:
        parser.error("--ray writes JSON lines or Parquet (--output-format); drop --format and --html")
    if args.workers < 1 or args.cpus_per_worker <= 0 or args.gpus_per_worker < 0:
        parser.error("--workers and --cpus-per-worker must be positive, --gpus-per-worker 0 or more")
    if args.gpus_per_worker and args.backend != "torch":
        parser.error("--gpus-per-worker runs the PyTorch backend; drop --backend, or --gpus-per-worker for ONNX on CPUs")


def file_lines(path: str) -> Iterator[str]:
    file = Path(path)
    if file.is_dir():
        raise UserError(f"--file '{path}' is a directory; give a text file with one text per line")
    try:
        stream = file.open("rb")
    except OSError as error:
        raise UserError(f"--file '{path}': cannot read it ({error.strerror}); check the path, or pass - to read stdin") from None
    with stream:
        yield from decoded_lines(stream, path)


def input_texts(args: argparse.Namespace) -> tuple[Iterator[str], bool]:
    """The texts to tag, lazily, and whether they come from a stream (file or stdin)."""
    if args.file and args.texts:
        raise UserError(
            f"give TEXT or --file, not both (--file {args.file} and {len(args.texts)} TEXT); put the texts in the file"
        )
    if STDIN in args.texts and len(args.texts) > 1:
        raise UserError('TEXT "-" reads stdin and must come alone; give the other texts on stdin too')
    if args.file:
        stream = decoded_lines(sys.stdin.buffer, "stdin") if args.file == STDIN else file_lines(args.file)
        return stream, True
    if args.texts == [STDIN] or (not args.texts and not sys.stdin.isatty()):
        return decoded_lines(sys.stdin.buffer, "stdin"), True
    if not args.texts:
        raise UserError("nothing to tag: give TEXT, --file PATH, or pipe text in (python infer.py --help)")
    check_arguments(args.texts)
    if len(args.texts) > 1 and all(len(text.split()) == 1 for text in args.texts):
        joined = " ".join(args.texts)
        print(
            f"note: each argument is one text, so these are {len(args.texts)} one-word texts; to tag a sentence, "
            f'quote it: python infer.py "{joined}"',
            file=sys.stderr,
        )
    return iter(args.texts), False


def check_arguments(texts: list[str]) -> None:
    """TEXT arguments, all of them UTF-8: Python hands over argv bytes that are not UTF-8 as lone
    surrogates (surrogateescape), which no tokenizer takes. Checked all at once, before any output."""
    for number, text in enumerate(texts, 1):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            code = ord(text[error.start])
            what = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"character U+{code:04X}"
            raise UserError(
                f"TEXT {number}: not UTF-8 ({what}); set your terminal and shell to UTF-8, "
                "or put the text in a UTF-8 file and pass --file"
            ) from None


def json_line(text: str, entities: list[dict]) -> str:
    """One JSON Lines record, readable (non-ASCII kept) and always one line."""
    return spans.one_line_json(spans.json_record(text, entities))


def formatter(name: str, model: str, record: ModelRecord):
    """How one text and its entities are written in --format `name`, for `model` and its record."""
    return {
        "table": table,
        "jsonl": json_line,
        "conll": lambda text, entities: spans.conll_block(text, entities, record.word_rules, record.language),
        "spans": lambda text, entities: spans.one_line_json(spans.span_record(text, entities)),
        # one task of a JSON list: run() writes the brackets and commas around them
        "label-studio": lambda text, entities: spans.one_line_json(spans.label_studio_task(text, entities, model)),
    }[name]


def table(text: str, entities: list[dict]) -> str:
    """A readable block per text: the text, then one row per entity."""
    if not entities:
        return f"{text}\n  (no entities)\n"
    rows = [("entity", "type", "score", "start", "end")] + [
        (e["word"], e["entity_group"], shown_score(e["score"]), str(e["start"]), str(e["end"])) for e in entities
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  " + "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in rows
    ]
    return f"{text}\n" + "\n".join(lines) + "\n"


def check_html_path(path: str | None) -> None:
    """Say now, not after tagging a whole file, when the page can't be written where asked."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise UserError(f"--html '{path}' is a directory; give a file name such as entities.html")
    if not target.parent.is_dir():
        raise UserError(f"--html '{path}': no directory '{target.parent}'; create it or choose another path")
    from bert_ner.htmlview import is_our_page

    if target.exists() and not is_our_page(target):
        raise UserError(f"--html '{path}' exists and is not a page infer.py wrote; choose another path, or delete it first")


def run_on_ray(args: argparse.Namespace) -> None:
    check_model(args)
    require_packages("ray", hint=RAY_HINT)
    # Ray takes seconds to import and is an optional extra: only for --ray.
    from bert_ner.ray_batch import TagSettings, tag_corpus

    device = "cuda" if args.gpus_per_worker else "cpu"  # a CPU worker on a GPU node leaves the GPU to GPU workers
    threads = args.threads or max(1, int(args.cpus_per_worker))
    load = {"model": args.model, "backend": args.backend, "device": device, "threads": threads, "aggregation": args.aggregation}
    settings = TagSettings({**load, "trust": trust(args)}, args.batch_size, args.min_score, args.documents, args.text_field)
    summary = tag_corpus(
        args.file, args.output, settings, args.workers, args.cpus_per_worker, args.gpus_per_worker, args.output_format
    )
    for line in summary.bad_lines[:SHOWN_BAD_LINES]:
        bad = json.loads(line)
        print(f"skipped {bad['error']}", file=sys.stderr)
    if len(summary.bad_lines) > SHOWN_BAD_LINES:
        print(f"... and {len(summary.bad_lines) - SHOWN_BAD_LINES} more", file=sys.stderr)
    skipped = f", {len(summary.bad_lines)} bad lines skipped (listed in {BAD_LINES_FILE})" if summary.bad_lines else ""
    print(f"tagged {summary.records} texts{skipped} | wrote {summary.output}/", file=sys.stderr)


def run(args: argparse.Namespace) -> None:
    if args.ray:
        return run_on_ray(args)
    check_model(args)
    check_html_path(args.html)
    texts, streamed = input_texts(args)
    first = next(texts, None)  # read before loading the model, so input errors come at once
    if first is None:
        if args.format == "label-studio":
            print("[]")  # still a task list to import
        if args.min_precision is not None:
            print("note: the input holds no text, so there is no entity to keep", file=sys.stderr)
        if args.html:
            write_page(args.html, [], finished=True)  # says that it wrote none
        return

    from tqdm.auto import tqdm

    tagger = load_tagger(args)
    if args.min_precision is not None:
        require_calibrated(tagger.record, args.model)  # before any tagging
    if args.documents and not tagger.record.context_tokens:
        print(
            f"note: {args.model} was trained without context (data.context_tokens 0), so --documents changes nothing: "
            "each sentence is read alone",
            file=sys.stderr,
        )
    said = threshold_note(tagger.record, args.model) if args.min_score is None and args.min_precision is None else None
    if said:
        print(f"note: {said}", file=sys.stderr)
    # A progress bar for files and pipes, shown only when stderr is a terminal (disable=None).
    progress = tqdm(desc="texts", unit=" texts", disable=True if not streamed else None, file=sys.stderr)
    page_records = []  # kept only for --html
    lines = itertools.chain([first], texts)
    write, in_list = formatter(args.format, args.model, tagger.record), args.format == "label-studio"
    if in_list:
        print("[")
    separator, finished, stopped = "", False, None
    min_score = 0.0 if args.min_precision is not None else args.min_score  # --min-precision cuts every entity itself
    found = counted(tagger.records(lines, args.batch_size, args.documents, min_score), progress)
    try:
        if args.min_precision is not None:
            found, stopped = tagged_until_stopped(found)
            progress.close()  # the note comes on a line of its own
            if found and stopped is not None:
                texts = f"{len(found)} text" + ("s" if len(found) > 1 else "")
                print(f"note: stopped after {texts}; the threshold comes only from what was tagged", file=sys.stderr)
            if found:
                found = kept_for_precision(found, args.min_precision)
        for text, entities in found:
            if args.html:
                page_records.append((text, entities))
            print(separator + write(text, entities), end="" if args.format in ("conll", "label-studio") else "\n")
            separator = ",\n" if in_list else ""
            sys.stdout.flush()  # partial output survives an interruption
        finished = stopped is None
    finally:
        if in_list:
            print("\n]")  # the tasks written so far stay a list that imports, even after an error
        progress.close()
        if args.html:
            write_page(args.html, page_records, finished)
    if stopped is not None:
        raise stopped  # its one-line message and exit status, after what was tagged before it


def counted(found: Iterator[tuple[str, list[dict]]], progress) -> Iterator[tuple[str, list[dict]]]:
    """`found`, each text counted on the progress bar as it is tagged."""
    for item in found:
        yield item
        progress.update()


def tagged_until_stopped(found: Iterator[tuple[str, list[dict]]]):
    """The texts of `found` tagged before an error or Ctrl-C, and what stopped it (None: nothing),
    so that --min-precision, which must see every text before it can print one, loses none."""
    tagged = []
    try:
        for item in found:
            tagged.append(item)
    except (Exception, KeyboardInterrupt) as error:
        return tagged, error
    return tagged, None


def kept_for_precision(found: list[tuple[str, list[dict]]], min_precision: float):
    """The texts of `found` with the entities that reach `min_precision` together by their
    calibrated scores (bert_ner.calibration.estimated_threshold), said on stderr with the threshold."""
    scores = [entity["score"] for _, entities in found for entity in entities]
    floor = estimated_threshold(scores, min_precision)
    if not scores:
        print("note: no entity found, so none to keep", file=sys.stderr)
        return found
    if floor is None:
        short = f"short of precision {min_precision:g} by"
        found_ones = (
            f"the one entity found falls {short} its"
            if len(scores) == 1
            else f"even the best-scored of the {len(scores)} fall {short} their"
        )
        print(f"note: no entity kept: {found_ones} calibrated scores", file=sys.stderr)
        return [(text, []) for text, _ in found]
    chosen = [score for score in scores if score >= floor]
    mean = sum(chosen) / len(chosen)
    expected = (
        f"their mean calibrated score, the precision to expect on text like the model's validation data, is {shown_score(mean)}"
    )
    if floor == 0:
        every = "the one entity" if len(scores) == 1 else f"all {len(scores)} entities"
        print(
            f"note: kept {every}: {expected}, at least {min_precision:g} without a threshold; --min-score 0 keeps "
            "every entity elsewhere (serve.py, --ray), or run --min-precision on more text for a threshold",
            file=sys.stderr,
        )
        return found
    print(
        f"note: kept {len(chosen)} of {len(scores)} entities, those scored {shown_score(floor)} or more: {expected}; "
        f"--min-score {shown_score(floor)} applies this threshold elsewhere (serve.py, --ray)",
        file=sys.stderr,
    )
    return [(text, kept(entities, floor)) for text, entities in found]


def write_page(path: str, records: list[tuple[str, list[dict]]], finished: bool) -> None:
    """The --html page of the texts tagged; after an error (named on the next line) or an
    interruption, of those tagged before it, as the printed results are."""
    from bert_ner.htmlview import page

    if not records:
        print(f"did not write {path}: no text was tagged", file=sys.stderr)
        return
    Path(path).write_text(page(records), encoding="utf-8")
    if finished:
        print(f"wrote {path}", file=sys.stderr)
    else:
        texts = f"{len(records)} text" + ("s" if len(records) > 1 else "")
        print(f"wrote {path} with the {texts} tagged before stopping", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cli(functools.partial(run, args), args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
