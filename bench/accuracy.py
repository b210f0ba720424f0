"""The scores of finished training runs, as one result for docs/results.md: each run's validation
and test span F1 (seqeval, strict, overall and per type) from the metrics.json train.py wrote, with
what varied between the runs (context, seed, encoder) from its train_config.yaml.

    python bench/accuracy.py --name NAME --trained-by "COMMAND" [--machine M] RUN_DIR [RUN_DIR ...]

    make demo && python bench/accuracy.py --name demo --trained-by "make demo" bert-ner
    bash bench/conll2003_minilm.sh data.context_tokens=0 && \
        python bench/accuracy.py --name minilm-conll2003-sentences \
            --trained-by "bash bench/conll2003_minilm.sh data.context_tokens=0" runs/minilm-conll2003

--trained-by is the command that trained the runs (the figures are train.py's own); --machine is
where they trained (default: this machine).
"""

import argparse
import json
import statistics
from pathlib import Path

import yaml
from results import write_result

from bert_ner.outputs import METRICS_FILE, RESOLVED_CONFIG_FILE


def run_scores(run: Path) -> dict:
    """One run's settings and scores, F1 in percent rounded to two decimals."""
    metrics = json.loads((run / METRICS_FILE).read_text())
    config = yaml.safe_load((run / RESOLVED_CONFIG_FILE).read_text())
    percent = lambda value: round(100 * value, 2)  # noqa: E731
    return {
        "run": run.name,
        "encoder": Path(str(config["model"]["name_or_path"])).name,
        "context_tokens": config["data"]["context_tokens"],
        "seed": config["training"].get("seed"),
        "epochs": config["training"].get("num_train_epochs"),
        "validation_f1": percent(metrics["validation"]["f1"]),
        "test_f1": percent(metrics["test"]["f1"]),
        "test_f1_per_type": {kind: percent(s["f1"]) for kind, s in metrics["test"]["per_type"].items()},
        "training_s": metrics.get("training", {}).get("runtime_s"),
    }


def summary(runs: list[dict]) -> dict:
    """Mean and sample standard deviation of test F1 over runs that differ only in seed, by context."""
    by_context: dict[int, list[float]] = {}
    for run in runs:
        by_context.setdefault(run["context_tokens"], []).append(run["test_f1"])
    return {
        str(context): {
            "runs": len(f1s),
            "test_f1_mean": round(statistics.mean(f1s), 2),
            "test_f1_sd": round(statistics.stdev(f1s), 2) if len(f1s) > 1 else None,
        }
        for context, f1s in sorted(by_context.items())
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="names the result: bench/results/accuracy-NAME.json")
    parser.add_argument("--trained-by", required=True, help="the command that trained the runs")
    parser.add_argument("--machine", default=None, help="where the runs trained (default: this machine)")
    parser.add_argument("runs", nargs="+", type=Path, help="directories train.py wrote")
    args = parser.parse_args()
    runs = [run_scores(run) for run in args.runs]
    figures = {"trained_by": args.trained_by, "runs": runs, "by_context": summary(runs)}
    write_result(f"accuracy-{args.name}", figures, args.machine)


if __name__ == "__main__":
    main()
