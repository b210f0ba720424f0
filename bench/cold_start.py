"""Cold-start wall time of `python infer.py "one sentence"`, next to importing torch and
transformers alone (the floor for any script that runs a model).

    python bench/cold_start.py --model DIR [--runs 5]

Each command runs --runs times in a fresh interpreter; the median is reported.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, capture_output=True)  # the error path exits 2 by design
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    commands = {
        'python -c "import torch, transformers"': [sys.executable, "-c", "import torch, transformers"],
        'python infer.py "Barack Obama was born in Hawaii"': [
            sys.executable, "infer.py", "--model", args.model, "Barack Obama was born in Hawaii",
        ],
        "python infer.py --help": [sys.executable, "infer.py", "--help"],
        "python infer.py --model missing-dir x (error path)": [sys.executable, "infer.py", "--model", "./missing-dir", "x"],
    }
    print("| command | median wall time |\n|---|---|")
    for name, command in commands.items():
        seconds = median_seconds(command, args.runs)
        print(f"| `{name}` | {seconds:.2f} s |", flush=True)


if __name__ == "__main__":
    main()
