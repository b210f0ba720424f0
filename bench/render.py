"""Render the tables of docs/results.md and docs/speed.md from the JSON that the benchmarks wrote
under bench/results/, so that no figure in the docs is copied by hand.

    python bench/render.py            # rewrite the tables in place
    python bench/render.py --check    # exit 1 and name the pages whose tables differ from their JSON

A page asks for a table with a pair of markers; everything between them is replaced:

    <!-- table: accuracy -->
    <!-- end of table -->

Each table is one function of the loaded results (name -> record, as bench/results.py writes them),
and ends with the command, machine, date and commit of every result it shows.
"""

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PAGES = ("README.md", "docs/results.md", "docs/speed.md", "docs/deployment.md")
MARKERS = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end of table -->)", re.DOTALL)


def load_results(folder: Path) -> dict[str, dict]:
    """Every result record in `folder` (the *.json files at its top), by name."""
    records = (json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json")))
    return {record["name"]: record for record in records}


def markdown(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join("" if cell is None else str(cell) for cell in row) + " |" for row in rows]


def provenance(records: list[dict]) -> list[str]:
    """Where each figure came from: command, machine, date and commit (once for records one command wrote)."""
    lines = (f"- `{r['command']}`: {r['machine']}, {r['date'][:10]}, commit {r['commit'] or 'none'}" for r in records)
    return ["", *dict.fromkeys(lines)]


def matching(results: dict[str, dict], prefix: str) -> list[dict]:
    return [record for name, record in sorted(results.items()) if name.startswith(prefix)]


def accuracy(results: dict[str, dict]) -> list[str]:
    """One row per trained model (accuracy-*.json), the context sweep aside."""
    records = [r for r in matching(results, "accuracy-") if r["name"] != "accuracy-minilm-context-sweep"]
    rows = []
    for record in records:
        for run in record["figures"]["runs"]:
            types = ", ".join(f"{kind} {f1:.1f}" for kind, f1 in sorted(run["test_f1_per_type"].items()))
            rows.append(
                [record["name"].removeprefix("accuracy-"), run["encoder"], run["context_tokens"], run["epochs"],
                 f"{run['validation_f1']:.2f}", f"**{run['test_f1']:.2f}**", types, f"`{record['figures']['trained_by']}`",
                 record["machine"]]
            )  # fmt: skip
    header = ["run", "encoder", "context", "epochs", "dev F1", "test F1", "test F1 by type", "trained by", "machine"]
    return markdown(header, rows) + provenance(records)


def context_sweep(results: dict[str, dict]) -> list[str]:
    """Test F1 by context size, mean and standard deviation over seeds."""
    record = results["accuracy-minilm-context-sweep"]
    dev: dict[int, list[float]] = {}
    for run in record["figures"]["runs"]:
        dev.setdefault(run["context_tokens"], []).append(run["validation_f1"])
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    rows = [
        [context, s["runs"], f"{mean(dev[int(context)]):.2f}", f"{s['test_f1_mean']:.2f} ± {s['test_f1_sd']:.2f}"]
        for context, s in record["figures"]["by_context"].items()
    ]
    header = ["context sub-tokens per side", "seeds", "dev F1 (mean)", "test F1 (mean ± sd)"]
    return markdown(header, rows) + [f"\nTrained by `{record['figures']['trained_by']}`."] + provenance([record])


def infer_f1(results: dict[str, dict]) -> list[str]:
    """What infer.py finds on raw text against train.py's score (infer-f1-*.json from bench/infer_f1.py)."""
    records = matching(results, "infer-f1-")
    rows = [
        [record["figures"]["model"], run["form"], f"{run['sentences_found']} of {record['figures']['sentences']}",
         f"{run['token_agreement']:.2%}", run["entities_cut_inside_a_word"], f"{run['infer_f1']:.2f}",
         f"{record['figures']['train_f1']:.2f}"]
        for record in records
        for run in record["figures"]["forms"]
    ]  # fmt: skip
    header = ["model", "text", "sentences found", "token agreement", "entities cut inside a word", "infer.py F1", "train.py F1"]
    return markdown(header, rows) + provenance(records)


def inference(results: dict[str, dict]) -> list[str]:
    """infer.py's backends on the same sentences (inference-*.json from bench/inference.py)."""
    records = matching(results, "inference-")
    rows = [
        [record["figures"]["model"], run["run"], f"{run['sentences_per_s']:.1f}", f"{run['p50_ms']:.1f}", f"{run['p95_ms']:.1f}",
         f"{run['test_f1']:.2f}", run["same_spans_as_torch"], f"{run['share_of_peak']:.0%}"]
        for record in records
        for run in record["figures"]["runs"]
    ]  # fmt: skip
    header = ["model", "run", "sentences/s", "p50 ms", "p95 ms", "test F1", "spans as batched PyTorch", "of the machine's peak"]
    return markdown(header, rows) + provenance(records)


def cold_start(results: dict[str, dict]) -> list[str]:
    """infer.py's wall time for one sentence from a cold process (cold-start-*.json from bench/cold_start.py)."""
    records = matching(results, "cold-start-")
    rows = [
        [record["figures"]["model"], row["interpreter"], f"`{row['command']}`", f"{row['median_s']:.2f} s",
         f"{row['fastest_s']:.2f} s", row["slowest_imports"]]
        for record in records
        for row in record["figures"]["rows"]
    ]  # fmt: skip
    header = ["model", "interpreter", "command", "median wall", "fastest", "slowest imports (one run)"]
    return markdown(header, rows) + provenance(records)


def serve(results: dict[str, dict]) -> list[str]:
    """serve.py under load, per backend and API, against infer.py's batched rate (serve-*.json from bench/serve.py)."""
    records = matching(results, "serve-")
    rows = [
        [record["name"].removeprefix("serve-"), row["backend"], row["api"], f"{row['rate']:.1f}",
         f"{row['rate_low']:.1f}-{row['rate_high']:.1f}", f"{row['p50'] * 1000:.0f}",
         f"{row['p95'] * 1000:.0f}", row["errors"], f"{row['infer_batched_rate']:.1f}",
         f"{row['rate'] / row['infer_batched_rate']:.0%}"]
        for record in records
        for row in record["figures"]["rows"]
    ]  # fmt: skip
    header = ["model", "backend", "API", "requests/s", "slowest-fastest round", "p50 ms", "p95 ms", "errors",
              "infer.py batched sentences/s", "share"]  # fmt: skip
    notes = [
        f"\n{r['name'].removeprefix('serve-')}: median of {r['figures']['repeats']} rounds of {r['figures']['requests']} "
        "one-sentence requests from "
        f"{r['figures']['clients']} clients, the APIs taking turns on one server."
        for r in records
    ]
    return markdown(header, rows) + notes + provenance(records)


def main_job(results: dict[str, dict]) -> list[str]:
    """The main job's training time, from bench/main_job_time.py."""
    record = results["main-job-time"]
    f = record["figures"]
    rows = [[f["main_job_steps"], f["measured_steps"], f"{f['seconds_per_step']:.2f}", f"{f['main_job_training_hours']:.1f}"]]
    header = ["steps of the main job", "steps measured", "seconds per step", "training hours"]
    return markdown(header, rows) + provenance([record])


def headline(results: dict[str, dict]) -> list[str]:
    """README's few rows: what to expect from the demo and on CoNLL-2003, and how fast int8 tags.
    A row whose result has not been measured is left out."""
    rows = []
    for name, what in (("accuracy-demo", "offline demo, all-MiniLM-L6-v2 on the synthetic sample"),
                       ("accuracy-minilm-conll2003-sentences", "all-MiniLM-L6-v2 on CoNLL-2003, sentences alone")):  # fmt: skip
        if name not in results:
            continue
        record = results[name]
        run = record["figures"]["runs"][0]
        rows.append([what, f"{run['test_f1']:.2f} test F1", f"`{record['figures']['trained_by']}`", record["machine"]])
    sweep = results["accuracy-minilm-context-sweep"]
    best = sweep["figures"]["by_context"]["128"]
    rows.append(
        ["all-MiniLM-L6-v2 on CoNLL-2003, 128 sub-tokens of document context",
         f"{best['test_f1_mean']:.2f} ± {best['test_f1_sd']:.2f} test F1 ({best['runs']} seeds)",
         f"`{sweep['figures']['trained_by'].replace('=N', '=128')}`", sweep["machine"]]
    )  # fmt: skip
    for record in matching(results, "inference-"):
        int8 = next(run for run in record["figures"]["runs"] if "int8" in run["run"])
        rows.append(
            [f"inference, ONNX int8, {record['figures']['model']}", f"{int8['sentences_per_s']:.0f} sentences/s",
             f"`{record['command']}`", record["machine"]]
        )  # fmt: skip
    return markdown(["what", "figure", "command", "machine"], rows)


def sentence_split(results: dict[str, dict]) -> list[str]:
    """Sentence splitting's time by text length, read in pieces and whole, from bench/sentence_split.py."""
    record = results["sentence-split"]
    rows = [
        [f"{row['characters']:,}", f"{row['pieces_s']:.2f}", f"{row['pieces_us_per_character']:.1f}",
         f"{row['whole_s']:.2f}" if "whole_s" in row else "not run"]
        for row in record["figures"]["lengths"]
    ]  # fmt: skip
    header = ["characters", "seconds, in pieces", "µs per character, in pieces", "seconds, pySBD on the whole text"]
    return markdown(header, rows) + provenance([record])


def calibration(results: dict[str, dict]) -> list[str]:
    """Entity-score calibration per model and test set, then the thresholds for a precision
    (calibration-*.json from bench/calibration.py)."""
    records = matching(results, "calibration-")
    rows, thresholds = [], []
    for record in records:
        figures = record["figures"]
        for name, key in (("CoNLL-2003 test", "test"), ("WNUT-17 test", "wnut17_test")):
            if key in figures:
                f = figures[key]
                known = f"{f['after']['known'] / f['after']['entities']:.0%}" if "known" in f["after"] else ""
                rows.append(
                    [figures["model"], name, f"{f['f1_before']:.2f}", f"{f['f1_after']:.2f}", known, f"{f['before']['ece']:.3f}",
                     f"{f['temperature']['ece']:.3f}", f"**{f['after']['ece']:.3f}**", f"{f['before']['brier']:.3f}",
                     f"{f['after']['brier']:.3f}", figures["temperature"]]
                )  # fmt: skip
        percent = lambda value: "" if value is None else f"{100 * value:.2f}"  # noqa: E731
        for row in figures["thresholds"]:
            for name, key in (("CoNLL-2003 test", "test"), ("WNUT-17 test", "wnut17_test")):
                recorded, estimated = row.get(key) or {}, row.get(f"{key}_estimated") or {}
                if not recorded and not estimated:
                    continue
                thresholds.append(
                    [figures["model"], f"{row['min_precision']:.2f}", name, row["threshold"], percent(recorded.get("precision")),
                     percent(recorded.get("recall")), estimated.get("threshold", ""), percent(estimated.get("precision")),
                     percent(estimated.get("recall"))]
                )  # fmt: skip
    header = ["model", "test set", "F1 before", "F1 after", "entities known", "ECE before", "ECE, T alone", "ECE after"]
    header += ["Brier before", "Brier after", "T"]
    threshold_header = ["model", "min precision", "test set", "recorded threshold", "precision", "recall"]
    threshold_header += ["estimated threshold", "precision", "recall"]
    return markdown(header, rows) + [""] + markdown(threshold_header, thresholds) + provenance(records)


CLUSTER_WORKERS = (16, 64, 256)  # the cluster sizes docs/deployment.md estimates for


def ray_throughput(results: dict[str, dict]) -> list[str]:
    """infer.py --ray against one process (bench/ray_throughput.py), and on paper what N CPU
    workers would tag per hour: N x B / (B / r + o) x 3600, with r the one-process rate on one
    thread, B the texts per worker call and o what Ray added per call."""
    record = results["ray-throughput"]
    f = record["figures"]
    rows = [
        [
            "infer.py, one process, one thread",
            f["one_process"]["texts_per_s"],
            f"{f['one_process']['tag_s']} (+ load {f['one_process']['load_s']})",
        ]
    ]
    rows += [[f"infer.py --ray, {run['workers']} worker(s) of one CPU", run["texts_per_s"], run["wall_s"]] for run in f["ray"]]
    lines = markdown(["run", "texts/s", "seconds"], rows)
    batch, added, rate = f["texts_per_batch"], f["ray_added_s_per_batch"], f["one_process"]["texts_per_s"]
    per_worker = batch / (batch / rate + added)
    lines += [
        "",
        f"{f['texts']} texts, {f['backend']}, {f['batches']} worker calls of up to {batch} texts. Ray added "
        f"{added} s per call (its run time less the one-process tagging and load, per call: start-up included), "
        f"and its pipeline alone (a worker with no model) took {f['ray_pipeline_s_per_batch']} s per call.",
        "",
        *markdown(
            ["CPU workers (N)", "texts per hour, on paper"],
            [[n, f"{n * per_worker * 3600:,.0f}"] for n in CLUSTER_WORKERS],
        ),
    ]
    return lines + provenance([record])


TABLES = {
    "headline": headline,
    "accuracy": accuracy,
    "context-sweep": context_sweep,
    "infer-f1": infer_f1,
    "inference": inference,
    "main-job": main_job,
    "cold-start": cold_start,
    "serve": serve,
    "sentence-split": sentence_split,
    "calibration": calibration,
    "ray-throughput": ray_throughput,
}


def render(page: str, results: dict[str, dict]) -> str:
    """`page` with every marked table rendered from `results`; KeyError names a table with no JSON."""

    def table(match: re.Match) -> str:
        lines = TABLES[match["name"]](results)
        return match[1] + "\n".join(lines) + "\n" + match[4]

    return MARKERS.sub(table, page)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page differs from its JSON")
    args = parser.parse_args(argv)
    results = load_results(RESULTS)
    stale = []
    for name in PAGES:
        path = REPO / name
        old = path.read_text(encoding="utf-8")
        new = render(old, results)
        if new != old:
            stale.append(name)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    verb = "out of date with bench/results/ (run python bench/render.py)" if args.check else "rendered"
    for name in stale:
        print(f"{name}: {verb}", file=sys.stderr if args.check else sys.stdout)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
