#!/usr/bin/env bash
# The MNIST quick start (SPEC §3.5): train the LeNet5 teacher, then distil LeNet5Half without data.
# DATA_ROOT=../shared/data bash run_mnist.sh   uses MNIST already on disk (MNIST/raw under it).
# PYTHON picks the interpreter (default: the repo's .venv when present, else python3).
set -euo pipefail
cd "$(dirname "$0")"
DATA_ROOT=${DATA_ROOT:-data}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

echo "===== Teacher ====="
"$PYTHON" train_teacher.py --batch_size 256 --epochs 10 --lr 0.01 --dataset mnist \
  --model lenet5 --weight_decay 1e-4 --data_root "$DATA_ROOT" --download "$@"

echo "===== DFAD ====="
"$PYTHON" DFAD_mnist.py --ckpt checkpoint/teacher/mnist-lenet5.pt --data_root "$DATA_ROOT" "$@"
