#!/usr/bin/env bash
# CIFAR-100 row of Table 2: the ResNet34_8x teacher, then DFAD to ResNet18_8x.
# DATA_ROOT=/path/to/datasets uses <DATA_ROOT>/cifar-100-python when there, else downloads
# it (default: data). Other variables and re-runs: scripts/common.sh, docs/experiments.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_ROOT=${DATA_ROOT:-data}
source scripts/common.sh
teacher_ckpt=checkpoint/teacher/cifar100-resnet34_8x.pt  # the teacher writes it, DFAD reads it
student_ckpt=checkpoint/student/cifar100-resnet18_8x.pt

# The original README command: no --scheduler, so the LR stays 0.1 and --step_size does nothing
# (docs/experiments.md#cifar-10--cifar-100: add --scheduler for a stronger teacher).
teacher=(train_teacher.py --dataset cifar100 --batch_size 128 --step_size 80 --epochs 200 \
  --model resnet34_8x --data_root "$DATA_ROOT" --download "$@" "${TEACHER_FLAGS[@]}")

dfad=(DFAD_cifar.py --dataset cifar100 --ckpt "$teacher_ckpt" \
  --scheduler --data_root "$DATA_ROOT" "$@" "${DFAD_FLAGS[@]}")

run_row
