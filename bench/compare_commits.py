"""Run one benchmark command at two commits, alternately, on the same machine and inputs: whether a
change made the figures worse, with the machine's drift between runs visible beside it.

    python bench/compare_commits.py --before 0d2b7b3 --after HEAD --rounds 2 -- \
        python bench/inference.py --model runs/minilm-quick --conll ../shared/data/conll2003/test.txt --limit 1000

Each commit is checked out into a temporary git worktree and the command runs there (so each
commit's own code and bench script), with the same arguments; paths in them are taken from this
directory. Writes bench/results/compare-<name>.json with each run's output, in the order run.
"""

import argparse
import datetime
import json
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def absolute(arguments: list[str]) -> list[str]:
    """Arguments that name an existing path here, made absolute, so that they mean the same in a worktree."""
    return [str((REPO / arg).resolve()) if "/" in arg and (REPO / arg).exists() else arg for arg in arguments]


def run_at(commit: str, worktree: Path, command: list[str]) -> dict:
    start = time.perf_counter()
    run = subprocess.run(command, cwd=worktree, capture_output=True, text=True, env={"PYTHONPATH": str(worktree), **_env()})
    return {
        "commit": commit,
        "seconds": round(time.perf_counter() - start, 1),
        "returncode": run.returncode,
        "output": run.stdout,
        "errors": run.stderr[-2000:] if run.returncode else "",
    }


def short_hash(ref: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def _env() -> dict:
    import os

    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the commit before the change")
    parser.add_argument("--after", default="HEAD", help="the commit with the change (default: HEAD)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each commit, alternating")
    parser.add_argument("--name", required=True, help="names the JSON file: bench/results/compare-NAME.json")
    parser.add_argument("--machine", default="2 CPU cores, shared", help="where this ran, as the docs will say")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command, as run from the repository root")
    args = parser.parse_args()
    command = absolute(args.command[1:] if args.command[:1] == ["--"] else args.command)
    commits = {name: short_hash(ref) for name, ref in (("before", args.before), ("after", args.after))}
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        trees = {}
        for name, commit in commits.items():
            trees[name] = Path(scratch) / name
            subprocess.run(["git", "worktree", "add", "-q", "--detach", str(trees[name]), commit], cwd=REPO, check=True)
            if (REPO / "models").exists():
                (trees[name] / "models").symlink_to((REPO / "models").resolve())
        try:
            for round_ in range(args.rounds):
                for name in ("before", "after"):
                    print(f"round {round_ + 1}: {name} ({commits[name]})", flush=True)
                    runs.append({"round": round_ + 1, "which": name, **run_at(commits[name], trees[name], command)})
                    print(runs[-1]["output"] or runs[-1]["errors"], flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
    record = {
        "name": f"compare-{args.name}",
        "command": "python bench/compare_commits.py "
        + " ".join(
            [f"--before {args.before}", f"--after {args.after}", f"--rounds {args.rounds}", f"--name {args.name}", "--"]
            + (args.command[1:] if args.command[:1] == ["--"] else args.command)
        ),
        "machine": args.machine,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commits["after"],
        "figures": {"commits": commits, "runs": runs},
    }
    out = REPO / "bench" / "results" / f"compare-{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
