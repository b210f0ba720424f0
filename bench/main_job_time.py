"""How long the main job (`python train.py`: bert-base-cased on CoNLL-2003, 3 epochs, sentences
alone) takes on this machine, from a short run of a model of the same shape.

    python bench/main_job_time.py [--conll DIR] [--vocab bert-base-cased/vocab.txt] [--steps 20]

bert-base-cased's weights need the Hub; a model of its shape and vocabulary with random weights
(configs/bert-base-random.yaml) runs at its speed. train.py trains it for --steps steps with
config.yaml's recipe (batch 32, length-grouped batches, sentences alone as the Hub copy of CoNLL-2003
gives them) on the CoNLL-2003 train split; the seconds per step, times the main job's steps, give
its training time (evaluation and loading not included).
"""

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from results import write_result

from bert_ner.data import TOKENS, read_conll

REPO = Path(__file__).resolve().parent.parent
EPOCHS, BATCH = 3, 32  # config.yaml's recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conll", default="../shared/data/conll2003", help="holds train.txt")
    parser.add_argument("--vocab", default="../shared/data/bert-base-cased/vocab.txt", help="bert-base-cased's vocab.txt")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--machine", default=None, help="where this ran, as the docs say it (default: this machine)")
    args = parser.parse_args()
    train = Path(args.conll) / "train.txt"
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable, "train.py", "--config", "configs/bert-base-random.yaml",
            f"model.scratch.vocab={args.vocab}", f"data.train_file={train}", "data.context_tokens=0",
            f"training.max_steps={args.steps}", f"training.per_device_train_batch_size={BATCH}",
            "data.max_eval_samples=8", "data.max_test_samples=8", f"training.output_dir={out}/model",
        ]  # fmt: skip
        subprocess.run(command, cwd=REPO, check=True)
        training = json.loads((Path(out) / "model" / "metrics.json").read_text())["training"]
    sentences = len(read_conll(train)[TOKENS])
    steps = EPOCHS * math.ceil(sentences / BATCH)
    per_step = training["runtime_s"] / training["steps"]
    figures = {
        "measured_steps": training["steps"],
        "seconds_per_step": round(per_step, 2),
        "train_sentences": sentences,
        "main_job_steps": steps,
        "main_job_training_hours": round(per_step * steps / 3600, 1),
    }
    print(json.dumps(figures, indent=2))
    write_result("main-job-time", figures, args.machine)


if __name__ == "__main__":
    main()
