"""Find named entities with a model train.py saved (or any token-classification model).

python infer.py "Barack Obama was born in Hawaii"
python infer.py --file news.txt --json > entities.jsonl      # one text per line, streamed
cat news.txt | python infer.py                               # stdin works too (or TEXT "-")
"""

import argparse
import functools
import itertools
import json
import sys
from bisect import bisect_right
from collections.abc import Iterator
from pathlib import Path

from ner.data import decoded_lines
from ner.errors import UserError, require_packages, run_cli
from ner.hub import check_model_dir
from ner.inference import BATCH_SIZE, BATCH_SIZE_HELP, chunks
from ner.outputs import BACKEND_FILES, DEFAULT_OUTPUT_DIR
from ner.words import AGGREGATIONS, DEFAULT_AGGREGATION

DEFAULT_MODEL = DEFAULT_OUTPUT_DIR
STDIN = "-"
BACKENDS = ("torch", *BACKEND_FILES)
TEXTS_PER_CHUNK = 256  # texts read, run and printed together: bounds memory and shows output early
FORMATS = ("table", "jsonl", "conll", "spans", "label-studio")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", metavar="TEXT", help='texts to tag; "-" reads stdin, one text per line')
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"directory train.py wrote, or a Hub model id (default: {DEFAULT_MODEL})"
    )
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
    parser.add_argument(
        "--aggregation",
        default=DEFAULT_AGGREGATION,
        choices=AGGREGATIONS,
        help=f"how a word's sub-token predictions combine into the word's (default: {DEFAULT_AGGREGATION}, "
        "as training labels words)",
    )
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=BATCH_SIZE_HELP)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto = cuda when available")
    parser.add_argument(
        "--backend",
        default="torch",
        choices=BACKENDS,
        help="torch, or the ONNX export of the model (python export.py): onnx (fp32) or onnx-int8; ONNX runs on CPU",
    )
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="run model code a Hub repository ships; only if you trust it"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the model (default: one per physical core)")
    parser.add_argument("--min-score", type=float, default=0.0, help="drop entities scored below this (0-1)")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="also load pickle weights (pytorch_model.bin), which can run code; only if you trust them",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    if args.json:
        if args.format not in (None, "jsonl"):
            parser.error(f"--json is --format jsonl; give one of them, not --format {args.format} too")
        args.format = "jsonl"
    args.format = args.format or "table"
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if not 0 <= args.min_score <= 1:
        parser.error("--min-score is a probability: 0 to 1")
    return args


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
    if len(args.texts) > 1 and all(len(text.split()) == 1 for text in args.texts):
        joined = " ".join(args.texts)
        print(
            f"note: each argument is one text, so these are {len(args.texts)} one-word texts; to tag a sentence, "
            f'quote it: python infer.py "{joined}"',
            file=sys.stderr,
        )
    return iter(args.texts), False


# Characters that JSON leaves as they are but line-splitting readers (Python's str.splitlines,
# JavaScript) take for line ends: escaped, so that one record stays one line.
LINE_BREAKS_JSON_KEEPS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def json_record(text: str, entities: list[dict]) -> dict:
    """What --json writes for a text (and serve.py answers): the text and its entities."""
    return {"text": text, "entities": entities}


def json_line(text: str, entities: list[dict]) -> str:
    """One JSON Lines record, readable (non-ASCII kept) and always one line."""
    return one_line_json(json_record(text, entities))


def one_line_json(record: dict) -> str:
    line = json.dumps(record, ensure_ascii=False)
    for character, escape in LINE_BREAKS_JSON_KEEPS.items():
        line = line.replace(character, escape)
    return line


def formatter(name: str, model: str):
    """How one text and its entities are written in --format `name`."""
    from ner import spans

    return {
        "table": table,
        "jsonl": json_line,
        "conll": spans.conll_block,
        "spans": lambda text, entities: one_line_json(spans.span_record(text, entities)),
        # one task of a JSON list: run() writes the brackets and commas around them
        "label-studio": lambda text, entities: one_line_json(spans.label_studio_task(text, entities, model)),
    }[name]


def table(text: str, entities: list[dict]) -> str:
    """A readable block per text: the text, then one row per entity."""
    if not entities:
        return f"{text}\n  (no entities)\n"
    rows = [("entity", "type", "score", "start", "end")] + [
        (e["word"], e["entity_group"], f"{e['score']:.3f}", str(e["start"]), str(e["end"])) for e in entities
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
    from ner.htmlview import is_our_page

    if target.exists() and not is_our_page(target):
        raise UserError(f"--html '{path}' exists and is not a page infer.py wrote; choose another path, or delete it first")


def documents(lines: list[str]) -> list[list[int]]:
    """The indexes of each run of consecutive non-blank lines (blank lines belong to none)."""
    found: list[list[int]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if found and found[-1][-1] == i - 1:
            found[-1].append(i)
        else:
            found.append([i])
    return found


def by_line(lines: list[str], entities: list[dict]) -> list[list[dict]]:
    """Entities of "\n".join(lines) as each line's own, with offsets into that line."""
    starts = [0, *itertools.accumulate(len(line) + 1 for line in lines)][:-1]
    result: list[list[dict]] = [[] for _ in lines]
    for entity in entities:
        i = bisect_right(starts, entity["start"]) - 1
        result[i].append({**entity, "start": entity["start"] - starts[i], "end": entity["end"] - starts[i]})
    return result


def tag(ner, chunk: list[str], args: argparse.Namespace) -> list[list[dict]]:
    """Entities for each line of `chunk`: each line alone, or with --documents each document's
    lines together, one text with a line break between lines (which always ends a sentence)."""
    from ner.inference import predict

    if not args.documents:
        return predict(ner, chunk, args.batch_size, args.min_score)
    groups = documents(chunk)
    found = predict(ner, ["\n".join(chunk[i] for i in group) for group in groups], args.batch_size, args.min_score)
    result: list[list[dict]] = [[] for _ in chunk]
    for group, entities in zip(groups, found):
        for i, line_entities in zip(group, by_line([chunk[i] for i in group], entities)):
            result[i] = line_entities
    return result


def load_tagger(
    model: str,
    backend: str = "torch",
    device: str = "cpu",
    threads: int | None = None,
    aggregation: str = DEFAULT_AGGREGATION,
    trust=None,
):
    """What tags texts: `tagger(texts, batch_size=N)` -> each text's entities. The ONNX backends
    import neither torch nor transformers, and start in about a second."""
    from ner.config import trained_data_config

    trained = trained_data_config(model)
    if backend != "torch":
        from ner.onnx_backend import OnnxTagger

        if device == "cuda":
            raise UserError("--device cuda: the ONNX backends run on CPU; use --backend torch for a GPU, or --device cpu")
        return OnnxTagger(model, backend, threads, aggregation, trained)

    require_packages(
        "torch",
        "transformers",
        hint="pip install -r requirements.txt for --backend torch, or use --backend onnx-int8 with an export",
    )
    from transformers.utils import logging as transformers_logging

    from ner.inference import make_pipeline, resolve_device, set_threads
    from ner.modeling import Trust, load_trained

    transformers_logging.disable_progress_bar()  # "Loading weights" bars would bury the answer
    device = resolve_device(device)  # before the model loads
    set_threads(threads)
    weights, tokenizer = load_trained(model, key="--model", trust=trust or Trust())
    return make_pipeline(weights, tokenizer, aggregation, device, trained)


def run(args: argparse.Namespace) -> None:
    check_model_dir(args.model, DEFAULT_MODEL)
    check_html_path(args.html)
    texts, streamed = input_texts(args)
    first = next(texts, None)  # read before loading the model, so input errors come at once
    if first is None:
        if args.format == "label-studio":
            print("[]")  # still a task list to import
        return

    from tqdm.auto import tqdm

    from ner.config import trained_data_config
    from ner.modeling import Trust

    trust = Trust(allow_pickle=args.allow_pickle, remote_code=args.trust_remote_code, opt_in="--allow-pickle")
    ner = load_tagger(args.model, args.backend, args.device, args.threads, args.aggregation, trust)
    if args.documents and not trained_data_config(args.model).context_tokens:
        print(
            f"note: {args.model} was trained without context (data.context_tokens 0), so --documents changes nothing: "
            "each sentence is read alone",
            file=sys.stderr,
        )
    # A progress bar for files and pipes, shown only when stderr is a terminal (disable=None).
    progress = tqdm(desc="texts", unit=" texts", disable=True if not streamed else None, file=sys.stderr)
    page_records = []  # kept only for --html
    lines = itertools.chain([first], texts)
    # With --documents a chunk ends only at a blank line: a document is read whole.
    can_start = (lambda line: not line.strip()) if args.documents else (lambda line: True)
    write, in_list = formatter(args.format, args.model), args.format == "label-studio"
    if in_list:
        print("[")
    separator = ""
    try:
        for chunk in chunks(lines, TEXTS_PER_CHUNK, can_start):
            for text, entities in zip(chunk, tag(ner, chunk, args)):
                if args.html:
                    page_records.append((text, entities))
                print(separator + write(text, entities), end="" if args.format in ("conll", "label-studio") else "\n")
                separator = ",\n" if in_list else ""
            sys.stdout.flush()  # partial output survives an interruption
            progress.update(len(chunk))
    finally:
        if in_list:
            print("\n]")  # the tasks written so far stay a list that imports, even after an error
    progress.close()
    if args.html:
        from ner.htmlview import page

        Path(args.html).write_text(page(page_records), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cli(functools.partial(run, args), args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
