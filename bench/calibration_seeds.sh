#!/usr/bin/env bash
# How much calibration and its thresholds move with the training seed: all-MiniLM-L6-v2 on
# CoNLL-2003 sentences (bench/conll2003_minilm.sh data.context_tokens=0), once per seed, side by
# side, then bench/calibration.py on each model.
#
#   MACHINE="one H200" bash bench/calibration_seeds.sh 1 2 3 [-- section.key=value ...]
#   MACHINE="2 CPU cores" bash bench/calibration_seeds.sh 1    # a few cores: one seed per call
#
# Settings after -- go to every training run (data.max_train_samples=200 for a quick try).
# Each seed N trains into runs/minilm-conll2003-seed-N (its log beside it) and writes
# bench/results/calibration-minilm-conll2003-seed-N.json. MACHINE says where it ran, as the docs
# print it; MODEL, CONLL_DIR as for bench/conll2003_minilm.sh; WNUT the WNUT-17 test file.
set -euo pipefail
MACHINE=${MACHINE:?say where this runs, e.g. MACHINE="one H200"}
WNUT=${WNUT:-../shared/data/wnut17/test.txt}
CONLL_DIR=${CONLL_DIR:-../shared/data/conll2003}
# the figures' source, as it was typed
command="MACHINE='$MACHINE' bash bench/calibration_seeds.sh $*"
seeds=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do seeds+=("$1"); shift; done
[ $# -gt 0 ] && shift  # the --
mkdir -p runs
pids=()
for seed in "${seeds[@]}"; do
  (
    out=runs/minilm-conll2003-seed-$seed
    OUT=$out bash bench/conll2003_minilm.sh data.context_tokens=0 training.seed="$seed" "$@" >"$out.log" 2>&1
    python bench/calibration.py --model "$out" --train "$CONLL_DIR/train.txt" --validation "$CONLL_DIR/valid.txt" \
      --test "$CONLL_DIR/test.txt" --wnut "$WNUT" --machine "$MACHINE" --command "$command" >>"$out.log" 2>&1
    echo "seed $seed: done ($out.log)"
  ) &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
