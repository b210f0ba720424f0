"""Time loading CoNLL-2003 from its original files (all three splits, IOB1 -> IOB2, labels).

python bench/load_conll.py [CONLL_DIR]      # default ../shared/data/conll2003
"""

import argparse
import time
from pathlib import Path

from bert_ner.config import DataConfig
from bert_ner.data import TOKENS, load_splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("conll_dir", nargs="?", default="../shared/data/conll2003", help="holds train.txt, valid.txt, test.txt")
    root = Path(parser.parse_args().conll_dir)
    files = {"train_file": "train.txt", "validation_file": "valid.txt", "test_file": "test.txt"}
    if missing := [name for name in files.values() if not (root / name).is_file()]:
        parser.error(f"{root}: no {', '.join(missing)}; give the directory of CoNLL-2003's original files")
    cfg = DataConfig(dataset=None, **{key: str(root / name) for key, name in files.items()})
    start = time.perf_counter()
    splits, labels = load_splits(cfg)
    seconds = time.perf_counter() - start
    sentences = sum(len(d) for d in splits.values())
    words = sum(len(w) for d in splits.values() for w in d[TOKENS])
    print(f"loaded {sentences} sentences, {words} words, {len(labels)} labels in {seconds:.1f} s")


if __name__ == "__main__":
    main()
