"""Cold start of infer.py: the wall time of one whole `python infer.py --model DIR --backend B TEXT`,
the way a user or a short-lived job runs it, for each backend, with what each spends importing;
next to importing torch and transformers alone (the PyTorch path's floor), --help and an error.

    python export.py --model DIR                     # the ONNX backends need the export
    python bench/cold_start.py --model DIR [--runs 5] [--python PATH ...]

Each command runs --runs times in a row (the first also warms the file cache); the table gives the
median and the fastest. --python adds other interpreters for the ONNX backends, e.g. a deployment
environment made with requirements-onnx.txt alone:

    python -m venv /tmp/deploy && /tmp/deploy/bin/pip install -r requirements-onnx.txt
    python bench/cold_start.py --model DIR --python /tmp/deploy/bin/python

The figures also go to bench/results/cold-start-MODEL.json (docs/speed.md's table).
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results import write_result

from bert_ner.tagger import BACKENDS

REPO = Path(__file__).resolve().parent.parent

TEXT = "Barack Obama was born in Hawaii"


def wall_times(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, capture_output=True)  # the error path exits 2 by design
        times.append(time.perf_counter() - start)
    return times


def slowest_imports(python: str, command: list[str], count: int = 4) -> str:
    """The top-level packages that took longest to import in one run (python -X importtime)."""
    run = subprocess.run([python, "-X", "importtime", *command], cwd=REPO, capture_output=True, text=True)
    totals: dict[str, float] = {}
    for line in run.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            if cumulative.isdigit() and not name.startswith(" ") and "." not in name:
                totals[name] = max(totals.get(name, 0.0), int(cumulative) / 1e6)
    top = sorted(totals.items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a directory train.py wrote, exported with export.py")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", nargs="*", default=[], help="more interpreters to time the ONNX backends with")
    parser.add_argument("--machine", help="where it ran, for the JSON (default: this machine's CPU count or GPU)")
    args = parser.parse_args()

    print(f'{args.runs} runs each; TEXT = "{TEXT}"\n')
    print("| interpreter | command | median wall | fastest | slowest imports (one run) |\n|---|---|---|---|---|")
    runs = [(sys.executable, ["-c", "import torch, transformers"]), (sys.executable, ["infer.py", "--help"])]
    runs.append((sys.executable, ["infer.py", "--model", "./missing-dir", "x"]))  # the error path, exit 2
    runs += [(sys.executable, ["infer.py", "--model", args.model, "--backend", backend, TEXT]) for backend in BACKENDS]
    runs += [
        (python, ["infer.py", "--model", args.model, "--backend", backend, TEXT])
        for python in args.python
        for backend in BACKENDS[1:]
    ]
    rows = []
    for python, command in runs:
        times = wall_times([python, *command], args.runs)
        name = "this environment" if python == sys.executable else python
        shown = " ".join(part if " " not in part else "TEXT" if part == TEXT else f'"{part}"' for part in command)
        imports = slowest_imports(python, command) if command[0] == "infer.py" else ""
        print(f"| {name} | `python {shown}` | {statistics.median(times):.2f} s | {min(times):.2f} s | {imports} |", flush=True)
        rows.append({"interpreter": name, "command": f"python {shown}", "median_s": statistics.median(times),
                     "fastest_s": min(times), "slowest_imports": imports})  # fmt: skip
    write_result(f"cold-start-{Path(args.model).name}", {"model": args.model, "runs": args.runs, "rows": rows}, args.machine)


if __name__ == "__main__":
    main()
