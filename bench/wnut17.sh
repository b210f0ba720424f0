#!/usr/bin/env bash
# Cross-domain: score a CoNLL-2003 model on WNUT-17 test (tweets and comments, six types) with
# train.py's evaluate-only mode, its types mapped to CoNLL's by data.label_map.
#
#   bash bench/wnut17.sh MODEL_DIR [section.key=value ...]
#
# WNUT_DIR holds test.txt (default ../shared/data/wnut17); OUT is the output directory
# (default runs/wnut17). Scores land in $OUT/metrics.json.
set -euo pipefail
MODEL=${1:?give the model directory train.py wrote}
shift
WNUT_DIR=${WNUT_DIR:-../shared/data/wnut17}
OUT=${OUT:-runs/wnut17}
exec python train.py \
  model.name_or_path="$MODEL" \
  model.fine_tune=false \
  data.dataset=null \
  data.test_file="$WNUT_DIR/test.txt" \
  data.context_tokens=0 \
  "data.label_map={person: PER, location: LOC, corporation: ORG, group: ORG, product: MISC, creative-work: MISC}" \
  training.output_dir="$OUT" \
  training.disable_tqdm=true \
  "$@"
