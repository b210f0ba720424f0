"""Where every benchmark's figures go: one JSON file per claim under bench/results/, with the command
that produced it, the machine, the date and the commit, so that docs/results.md and docs/speed.md
are rendered from runs (python bench/render.py) and never copied by hand.

    from results import write_result
    write_result("inference-onnx-int8", {"texts_per_s": 412.0}, machine=args.machine)

A file holds one run's latest figures; rerunning the command replaces it (git keeps the history).
"""

import datetime
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def this_machine() -> str:
    """The machine in the docs' words: "one NVIDIA H200" where a GPU runs the work, else "N CPU cores"."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"one {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"{len(os.sched_getaffinity(0))} CPU cores"


def this_commit() -> str:
    """The short hash of HEAD, with "+changes" when the tracked files differ from it; "" outside git.
    Figures already written to bench/results/ are outputs, not the code measured: they do not count."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode:
        return ""
    outputs = f":(exclude){RESULTS.relative_to(REPO)}"
    status = [*git, "status", "--porcelain", "--untracked-files=no", "--", ".", outputs]
    dirty = subprocess.run(status, capture_output=True, text=True)
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def this_command() -> str:
    """The command line that is running, as typed from the repository root."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    return shlex.join(["python", str(shown), *sys.argv[1:]])


def write_result(name: str, figures: dict, machine: str | None = None, command: str | None = None) -> Path:
    """Write bench/results/NAME.json: {name, command, machine, date, commit, figures}; returns its path.

    `machine` defaults to this_machine(); say "shared" in it when other work ran beside the benchmark.
    """
    record = {
        "name": name,
        "command": command or this_command(),
        "machine": machine or this_machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": this_commit(),
        "figures": figures,
    }
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(REPO)}")
    return path
