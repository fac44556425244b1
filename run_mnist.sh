#!/usr/bin/env bash
# The MNIST quick start: train the LeNet5 teacher, then distil LeNet5Half without data.
# DATA_ROOT=../shared/data bash run_mnist.sh   uses MNIST already on disk (MNIST/raw under it).
# Other variables (TEACHER_ARGS, DFAD_ARGS, NPROC, FRESH, PYTHON) and re-runs: scripts/common.sh.
set -euo pipefail
cd "$(dirname "$0")"
DATA_ROOT=${DATA_ROOT:-data}
source scripts/common.sh
teacher_ckpt=checkpoint/teacher/mnist-lenet5.pt  # the teacher writes it, DFAD reads it
student_ckpt=checkpoint/student/mnist-lenet5_half.pt

teacher=(train_teacher.py --batch_size 256 --epochs 10 --lr 0.01 --dataset mnist \
  --model lenet5 --weight_decay 1e-4 --data_root "$DATA_ROOT" --download "$@" "${TEACHER_FLAGS[@]}")

dfad=(DFAD_mnist.py --ckpt "$teacher_ckpt" --data_root "$DATA_ROOT" \
  "$@" "${DFAD_FLAGS[@]}")

run_row
