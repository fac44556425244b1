#!/usr/bin/env bash
# Table 2, MNIST column: the LeNet5 teacher once, then KD-ORI, RANDOM, DAFL and DFAD for each seed,
# each in RUNS/<method>-s<seed> (a finished one skipped, a stopped one resumed), then the table.
#   DATA_ROOT=/path/to/datasets bash scripts/run_table2_mnist.sh     # MNIST/raw under DATA_ROOT
#   SEEDS=1 TEACHER_ARGS="--epochs 1" bash scripts/run_table2_mnist.sh --epochs 1 --epoch_itrs 2
# Extra arguments go to every method; RUNS, SEEDS, METHODS, TEACHER: docs/experiments.md.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
DATA_ROOT=$(realpath -m "${DATA_ROOT:-data}")
RUNS=$(realpath -m "${RUNS:-runs/table2-mnist}")
SEEDS=${SEEDS:-1 2 3}
METHODS=${METHODS:-KD_ORI RANDOM DAFL DFAD}
source scripts/common.sh  # PYTHON, TEACHER_FLAGS, run_step
TEACHER=$(realpath -m "${TEACHER:-$REPO/checkpoint/teacher/mnist-lenet5.pt}")

if [ "$TEACHER" != "$REPO/checkpoint/teacher/mnist-lenet5.pt" ]; then
  if [ ! -f "$TEACHER" ]; then
    echo "error: TEACHER=$TEACHER does not exist: unset TEACHER to train the README's teacher" >&2
    exit 1
  fi
  echo "===== Teacher: reusing $TEACHER ====="
else
  run_step Teacher "$TEACHER" train_teacher.py --batch_size 256 --epochs 10 --lr 0.01 \
    --dataset mnist --model lenet5 --weight_decay 1e-4 --data_root "$DATA_ROOT" --download \
    "${TEACHER_FLAGS[@]}"
fi

source scripts/table2_methods.sh

for seed in $SEEDS; do
  for method in $METHODS; do
    script=$(table2_script "$method")
    work=$RUNS/$method-s$seed  # a finished run says so; one of other flags is refused
    mkdir -p "$work/checkpoint/teacher"
    ln -sf "$TEACHER" "$work/checkpoint/teacher/mnist-lenet5.pt"
    resume=()
    if compgen -G "$work/checkpoint/*/*-state.pt" >/dev/null; then resume=(--resume); fi
    echo "===== $method seed $seed ($work) ====="
    # shellcheck disable=SC2086  # $script is the script and its fixed flags
    (cd "$work" && "$PYTHON" $script --ckpt checkpoint/teacher/mnist-lenet5.pt \
      --data_root "$DATA_ROOT" --seed "$seed" "${resume[@]}" "$@")
  done
done

echo "===== Table 2, MNIST ====="
"$PYTHON" get_results.py --table mnist --root "$RUNS" \
  --teacher_metrics "$REPO/log/teacher-mnist-lenet5.metrics.jsonl"
